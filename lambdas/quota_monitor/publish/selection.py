"""Which keys get per-key CloudWatch metrics: ``KEY_METRICS``, the bill's main lever in large accounts.

Every distinct metric name and dimension set is a custom metric, billed by the hour it receives
data (docs/aws-behaviour.md#cloudwatch-metrics): 10,000 keys publish 30,000 of them. This setting
narrows the per-key metrics only. The per-plan roll-ups (``MaxQuotaUtilization``, ``UsedQuota``
by ``UsagePlanId``) and the health metrics are computed from every key and always published, and
alerts are evaluated on every key whatever the setting: the selection happens inside the metrics
step, on the full scan result.

Values (case and spaces ignored):

- ``all`` (the default): every key;
- ``none``: no per-key metrics, only the roll-ups and the health metrics;
- ``top:N``: the N keys with the highest quota utilization (N from 1 to 10,000);
- ``above:P``: keys at or above P percent utilization (P above 0, at most 100);
- ``above:P,top:N``: keys at or above P percent, at most the N highest of them.

Keys of plans without a quota have no utilization: only ``all`` publishes their ``UsedQuota``.
A key that drops out of the selection stops receiving data: its graph line stops, and a
single-value widget keeps its last value, so dashboards should show timestamps (or use the plan
roll-ups), and alarms on per-key metrics need ``TreatMissingData`` chosen with this in mind.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from quota_monitor.models import KeyUsage

#: API Gateway allows 10,000 API keys per account and region (docs/aws-behaviour.md#account-limits).
MAX_TOP = 10_000
ALLOWED = "use all, none, top:N (N from 1 to 10000), above:P (P above 0, at most 100) or above:P,top:N"


@dataclass(frozen=True)
class KeyMetricsSelection:
    """``top``: at most this many keys, highest utilization first; ``above``: only keys at or above it."""

    top: int | None = None
    above: float | None = None

    @property
    def publishes_all(self) -> bool:
        return self.top is None and self.above is None

    def describe(self) -> str:
        if self.publishes_all:
            return "all"
        if self.top == 0:
            return "none"
        parts = [] if self.above is None else [f"above:{self.above:g}"]
        return ",".join([*parts, *([] if self.top is None else [f"top:{self.top}"])])


ALL_KEYS = KeyMetricsSelection()
NO_KEYS = KeyMetricsSelection(top=0)


def parse_key_metrics(raw: str) -> KeyMetricsSelection:
    """Parse a ``KEY_METRICS`` value; ``ValueError`` says what is allowed."""
    text = raw.strip().lower().replace(" ", "")
    if text in ("", "all"):
        return ALL_KEYS
    if text == "none":
        return NO_KEYS
    top: int | None = None
    above: float | None = None
    for part in text.split(","):
        name, _, value = part.partition(":")
        if name == "top" and top is None:
            top = _top(value)
        elif name == "above" and above is None:
            above = _above(value)
        else:
            raise ValueError(ALLOWED)
    return KeyMetricsSelection(top=top, above=above)


def _top(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_TOP:
        raise ValueError(f"top:{value} is not a whole number from 1 to {MAX_TOP}; {ALLOWED}")
    return int(value)


def _above(value: str) -> float:
    try:
        percent = float(value)
    except ValueError:
        raise ValueError(f"above:{value} is not a number; {ALLOWED}") from None
    if not 0 < percent <= 100:  # also refuses nan
        raise ValueError(f"above:{value} is not above 0 and at most 100; {ALLOWED}")
    return percent


def select_keys(keys: Iterable[KeyUsage], selection: KeyMetricsSelection) -> list[KeyUsage]:
    """The keys that get per-key metrics, in scan order. Ties at the ``top`` cut keep scan order."""
    if selection.publishes_all:
        return list(keys)
    ranked = [
        (index, key)
        for index, key in enumerate(keys)
        if key.utilization is not None and (selection.above is None or key.utilization >= selection.above)
    ]
    if selection.top is not None:
        ranked = heapq.nsmallest(
            selection.top, ranked, key=lambda pair: (-(pair[1].utilization or 0.0), pair[0])
        )
        ranked.sort(key=lambda pair: pair[0])
    return [key for _, key in ranked]
