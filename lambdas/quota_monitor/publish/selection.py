"""Which keys get per-key CloudWatch metrics: ``KEY_METRICS``, the bill's main lever.

Every distinct metric name and dimension set is a custom metric, billed by the hour it receives
data (docs/aws-behaviour.md#cloudwatch-metrics). The setting narrows the per-key metrics only:
alerts are evaluated on every key, and every key has its record in the function's log
(:mod:`quota_monitor.publish.records`); the selection happens inside the metrics step, on the full
scan result. Values (case and spaces ignored):

- ``auto`` (the default): ``RemainingQuota`` and ``QuotaUtilization`` for keys at or above their
  lowest alert level, or tagged ``quota-monitor:metrics=always`` (on the key or its plan), at most
  :data:`DEFAULT_AUTO_CAP` of them (``auto,top:N`` sets another cap): tagged keys first, then the
  most used, ties by plan id and key id so that the same keys keep their series from run to run.
  No per-plan roll-ups: the plan view is in the records;
- ``all``: all three per-key metrics for every key, and every plan's two roll-ups;
- ``none``: no per-key metrics, only the roll-ups and the health metrics;
- ``top:N``, ``above:P``, ``above:P,top:N``: all three per-key metrics for the N keys with the highest
  utilization, or the keys at or above P percent (at most the N highest), and every plan's roll-ups.

Keys of plans without a quota have no utilization: only ``all`` publishes their ``UsedQuota``. Why
these defaults, and what a key leaving the selection means for graphs and alarms: docs/cost.md,
"Why these defaults" and "A key that leaves the selection".
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from quota_monitor.compute.levels import level_reached
from quota_monitor.models import TagProblem

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from quota_monitor.models import ApiKey, KeyUsage, ScanResult, UsagePlan

#: API Gateway allows 10,000 API keys per account and region (docs/aws-behaviour.md#account-limits).
MAX_TOP = 10_000
#: ``auto``'s cap on keys with per-key metrics: two series each, so a fixed ceiling on the per-key
#: series whatever happens (docs/cost.md, "Why these defaults").
DEFAULT_AUTO_CAP = 25
#: The tag that keeps a key (or every key of a plan) in ``auto``'s selection, within the cap.
TAG_METRICS = "quota-monitor:metrics"
METRICS_ALWAYS = "always"
#: The tag's other value: follow the rule (lets one key of an ``always`` plan opt out).
METRICS_AUTO = "auto"
ALLOWED = (
    "use auto, auto,top:N, all, none, top:N (N from 1 to 10000), above:P (P above 0, at most 100) "
    "or above:P,top:N"
)
METRICS_TAG_ALLOWED = f"use {METRICS_ALWAYS} or {METRICS_AUTO}"


@dataclass(frozen=True)
class KeyMetricsSelection:
    """``top``: at most this many keys, highest utilization first; ``above``: only keys at or above it;
    ``auto``: keys at or above their lowest alert level, or tagged, at most ``top`` of them."""

    top: int | None = None
    above: float | None = None
    auto: bool = False

    @property
    def publishes_all(self) -> bool:
        return self.top is None and self.above is None and not self.auto

    @property
    def plan_rollups(self) -> bool:
        """Whether the per-plan roll-ups are published: not with ``auto``, whose plan view is the records."""
        return not self.auto

    def describe(self) -> str:
        if self.auto:
            return "auto" if self.top == DEFAULT_AUTO_CAP else f"auto,top:{self.top}"
        if self.publishes_all:
            return "all"
        if self.top == 0:
            return "none"
        parts = [] if self.above is None else [f"above:{self.above:g}"]
        return ",".join([*parts, *([] if self.top is None else [f"top:{self.top}"])])


ALL_KEYS = KeyMetricsSelection()
NO_KEYS = KeyMetricsSelection(top=0)
AUTO_KEYS = KeyMetricsSelection(top=DEFAULT_AUTO_CAP, auto=True)


def parse_key_metrics(raw: str) -> KeyMetricsSelection:
    """Parse a ``KEY_METRICS`` value; ``ValueError`` says what is allowed."""
    text = raw.strip().lower().replace(" ", "")
    if text == "all":
        return ALL_KEYS
    if text == "none":
        return NO_KEYS
    if text in ("", "auto"):
        return AUTO_KEYS
    top: int | None = None
    above: float | None = None
    auto = False
    for part in text.split(","):
        name, colon, value = part.partition(":")
        if name == "top" and colon and top is None:
            top = _top(value)
        elif name == "above" and colon and above is None:
            above = _above(value)
        elif part == "auto" and not auto:
            auto = True
        else:
            raise ValueError(ALLOWED)
    if auto:
        if above is not None:
            raise ValueError(f"auto takes its level from THRESHOLDS and the tags, not above:; {ALLOWED}")
        return KeyMetricsSelection(top=DEFAULT_AUTO_CAP if top is None else top, auto=True)
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


def _rank(key: KeyUsage) -> tuple[float, str, str]:
    """Most used first; ties by plan id, then key id: the same order every run, whatever the scan's."""
    return (-(key.utilization or 0.0), key.usage_plan_id, key.api_key_id)


def select_keys(keys: Iterable[KeyUsage], selection: KeyMetricsSelection) -> list[KeyUsage]:
    """The keys ``all``, ``none``, ``top`` and ``above`` select, in scan order (not ``auto``: see
    :func:`choose_keys`, which needs the plans, tags and levels)."""
    if selection.publishes_all:
        return list(keys)
    ranked = [
        (index, key)
        for index, key in enumerate(keys)
        if key.utilization is not None and (selection.above is None or key.utilization >= selection.above)
    ]
    if selection.top is not None:
        ranked = heapq.nsmallest(selection.top, ranked, key=lambda pair: _rank(pair[1]))
        ranked.sort(key=lambda pair: pair[0])
    return [key for _, key in ranked]


@dataclass(frozen=True)
class MetricKeys:
    """The keys that get per-key metrics this run, and how many more qualified than the cap allowed."""

    keys: tuple[KeyUsage, ...]
    #: Keys that qualified (at or above their level, or tagged), before the cap.
    eligible: int
    #: Of the eligible keys, those tagged ``quota-monitor:metrics=always`` (on the key or its plan).
    tagged: int = 0
    #: ``quota-monitor:metrics`` tags that could not be read (logged as warnings, then ignored).
    problems: tuple[TagProblem, ...] = ()

    @property
    def over_cap(self) -> int:
        """Eligible keys left without metrics because of the cap."""
        return self.eligible - len(self.keys)

    def pairs(self) -> frozenset[tuple[str, str]]:
        """(usage plan id, API key id) of every selected key."""
        return frozenset((key.usage_plan_id, key.api_key_id) for key in self.keys)


def metrics_tag(
    plan: UsagePlan | None, api_key: ApiKey | None, problems: list[TagProblem] | None = None
) -> bool:
    """Whether ``quota-monitor:metrics=always`` applies: the key's tag beats its plan's (as for the
    other tags, docs/aws-behaviour.md#tags). A value other than ``always`` or ``auto`` is reported in
    ``problems`` and ignored: the next level applies."""
    layers: list[tuple[Literal["API key", "usage plan"], str, Mapping[str, str]]] = []
    if api_key is not None:
        layers.append(("API key", api_key.id, api_key.tags))
    if plan is not None:
        layers.append(("usage plan", plan.id, plan.tags))
    for resource, resource_id, tags in layers:
        raw = tags.get(TAG_METRICS)
        if raw is None:
            continue
        value = raw.strip().lower()
        if value in (METRICS_ALWAYS, METRICS_AUTO):
            return value == METRICS_ALWAYS
        if problems is not None:
            problems.append(TagProblem(resource, resource_id, TAG_METRICS, raw, METRICS_TAG_ALLOWED))
    return False


def choose_keys(
    result: ScanResult,
    selection: KeyMetricsSelection,
    levels: Mapping[tuple[str, str], tuple[int, ...]],
) -> MetricKeys:
    """The keys that get per-key metrics, in scan order.

    ``levels`` holds each key's alert levels by (plan id, key id)
    (:func:`quota_monitor.alert.thresholds.key_levels`); ``auto`` selects a key at or above the
    lowest of them, compared in whole numbers as alerts are (``used * 100 >= level * limit``,
    :func:`quota_monitor.compute.levels.level_reached`), or tagged.
    When more keys qualify than the cap, tagged keys come first: the tag is a promise users build
    alarms on; the rest are still alerted, and every key is in the records.
    """
    if not selection.auto:
        chosen = select_keys(result.keys, selection)
        return MetricKeys(tuple(chosen), eligible=len(chosen))
    plans = {plan.id: plan for plan in result.plans}
    problems: list[TagProblem] = []
    tagged: list[KeyUsage] = []
    hot: list[KeyUsage] = []
    for key in result.keys:
        if key.utilization is None or key.limit is None:
            continue
        if metrics_tag(plans.get(key.usage_plan_id), result.api_keys.get(key.api_key_id), problems):
            tagged.append(key)
            continue
        key_levels = levels.get((key.usage_plan_id, key.api_key_id))
        if key_levels and level_reached(key, key_levels[:1]):
            hot.append(key)
    cap = MAX_TOP if selection.top is None else selection.top
    chosen_ids = {
        id(key) for key in [*sorted(tagged, key=_rank), *heapq.nsmallest(cap, hot, key=_rank)][:cap]
    }
    unique = {(p.resource_id, p.tag): p for p in problems}
    return MetricKeys(
        keys=tuple(key for key in result.keys if id(key) in chosen_ids),
        eligible=len(tagged) + len(hot),
        tagged=len(tagged),
        problems=tuple(unique.values()),
    )
