"""Which scanned keys ``scan`` prints: filters applied after the scan, on the scan's own order.

- ``--plan ID|NAME`` and ``--key ID|NAME`` match a usage plan's or an API key's id or name exactly
  (case and all); ``--period`` matches the quota's period (a key of a plan without a quota has none).
  Each may be repeated: a key matches any of the values given (OR).
- ``--above P`` keeps keys at or above P% utilization (keys of plans without a quota have none).
- Different filters all apply (AND), and ``--top N`` comes last: the N most used of the keys
  that matched the rest, in the order the scan prints them.

A ``--plan`` or ``--key`` value that names nothing in the account is a usage error, not an empty
result: a typo in a check (``--fail-above 90 --plan glod``) would otherwise pass forever. It is
judged only when the listing it depends on was read; when it was not, the scan's own error says so.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quota_monitor import PERIOD_TYPES
from quota_monitor_cli.common import whole_number

if TYPE_CHECKING:
    from collections.abc import Sequence

    from quota_monitor import KeyUsage, PeriodType, ScanResult

#: How many plan names an error lists before it says how many more there are.
LISTED_NAMES = 10


def percent(text: str) -> float:
    """An argparse type: a percentage from 0 to 100 (``90`` or ``90%``)."""
    allowed = "a number from 0 to 100"
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}") from None
    if not 0 <= value <= 100:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not allowed: use {allowed}")
    return value


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "filters",
        "applied after the scan: different filters all apply, a repeated one matches any of its\n"
        "values, and --top comes last",
    )
    group.add_argument(
        "--plan",
        action="append",
        default=[],
        metavar="ID|NAME",
        help="only keys of this usage plan, by id or name (repeatable)",
    )
    group.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="ID|NAME",
        help="only this API key, by id or name (repeatable)",
    )
    group.add_argument(
        "--period",
        action="append",
        default=[],
        type=str.upper,
        choices=PERIOD_TYPES,
        metavar="DAY|WEEK|MONTH",
        help="only keys whose plan has a quota of this period (repeatable)",
    )
    group.add_argument(
        "--above", type=percent, metavar="P", help="only keys at or above P%% utilization (0-100)"
    )
    group.add_argument(
        "--top", type=whole_number(1), metavar="N", help="only the N most used keys that match the rest"
    )


@dataclass(frozen=True)
class KeyFilter:
    plans: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    periods: tuple[PeriodType, ...] = ()
    above: float | None = None
    top: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, at_least: float | None = None) -> KeyFilter:
        """The filters given; ``at_least`` (the check's threshold) narrows ``--above`` further."""
        above = args.above
        if at_least is not None:
            above = at_least if above is None else max(above, at_least)
        return cls(
            plans=tuple(dict.fromkeys(args.plan)),
            keys=tuple(dict.fromkeys(args.key)),
            periods=tuple(dict.fromkeys(args.period)),
            above=above,
            top=args.top,
        )

    @property
    def active(self) -> bool:
        return bool(self.plans or self.keys or self.periods) or self.above is not None or self.top is not None

    def matches(self, key: KeyUsage) -> bool:
        if self.plans and key.usage_plan_id not in self.plans and key.usage_plan_name not in self.plans:
            return False
        if self.keys and key.api_key_id not in self.keys and key.api_key_name not in self.keys:
            return False
        if self.periods and (key.limit is None or key.period not in self.periods):
            return False
        return self.above is None or (key.utilization is not None and key.utilization >= self.above)

    def apply(self, keys: Sequence[KeyUsage]) -> list[KeyUsage]:
        """The keys that match, in their given order; ``--top`` last."""
        matched = [key for key in keys if self.matches(key)]
        return matched if self.top is None else matched[: self.top]

    def unknown(self, result: ScanResult) -> list[str]:
        """A message for each ``--plan`` or ``--key`` value that names nothing the scan listed."""
        problems: list[str] = []
        listed = {failure.resource for failure in result.failures}
        if self.plans and "usage-plans" not in listed:
            known = {plan.id for plan in result.plans} | {plan.name for plan in result.plans}
            # A plan listed but not parsed (MalformedResource) exists: its failure says why it is missing.
            known |= {f.resource_id for f in result.failures if f.resource == "usage-plan" and f.resource_id}
            names = sorted({plan.name for plan in result.plans})
            shown = ", ".join(repr(name) for name in names[:LISTED_NAMES])
            if len(names) > LISTED_NAMES:
                shown += f" and {len(names) - LISTED_NAMES:,} more"
            problems += [
                f"--plan {value!r}: no usage plan has this id or name "
                f"(the account's plans: {shown or 'none'})"
                for value in self.plans
                if value not in known
            ]
        if self.keys and not listed & {"usage-plans", "api-keys"}:
            known = {key.api_key_id for key in result.keys} | {
                name for key in result.keys if (name := key.api_key_name) is not None
            }
            for api_key in result.api_keys.values():
                known.add(api_key.id)
                if api_key.name is not None:
                    known.add(api_key.name)
            problems += [
                f"--key {value!r}: no API key of the account has this id or name"
                for value in self.keys
                if value not in known
            ]
        return problems
