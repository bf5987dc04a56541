"""From one key's daily GetUsage entries to where it stands against its quota.

GetUsage returns, per key, one ``[used, remaining]`` pair per day of the requested range,
both dates included: ``used`` is that day's requests, ``remaining`` what was left of the quota
period after that day (docs/aws-behaviour.md#getusage-and-its-paginator). So for a range from the period start
to today:

- ``remaining`` is the latest day's remaining: AWS's own counter, which already reflects the
  plan's ``offset`` and any UpdateUsage extension;
- ``used`` is the sum of the daily ``used`` values;
- ``utilization`` is ``100 * (limit - remaining) / limit``, clamped to 0..100, because an
  administrator's UpdateUsage can push ``remaining`` above the limit. A limit of 0 allows no
  request at all and reads as 100%.

A response that does not have exactly this shape raises :class:`UsageDataError`: a number the
monitor cannot read correctly is an error, never a zero. That includes a number too big for the
API's own type: the daily counts are ``Long`` in API Gateway's service model (botocore's
``apigateway`` model, ``ListOfLong``), so anything above 2**63 - 1 did not come from the service
intact (and a big enough one would not even convert to a CloudWatch value).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quota_monitor.errors import UsageDataError
from quota_monitor.models import ApiKey, DailyUsage, KeyUsage, QuotaPeriod, ReadSpan, UsagePlan

if TYPE_CHECKING:
    from collections.abc import Sequence


#: The largest value of the API's ``Long``: the type of GetUsage's daily counts.
MAX_LONG = 2**63 - 1


def _whole(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LONG:
        return None
    return value


def parse_daily_usage(
    raw: object, *, expected_days: int, has_quota: bool, usage_plan_id: str, api_key_id: str
) -> list[DailyUsage]:
    """Validate one key's ``[[used, remaining], ...]`` list from GetUsage.

    Without a quota, ``remaining`` carries no meaning (what AWS puts there is unconfirmed) and
    is read as ``None`` whatever it holds.
    """
    where = f"usage plan {usage_plan_id}, key {api_key_id}"
    if not isinstance(raw, list):
        raise UsageDataError(f"{where}: daily usage is {type(raw).__name__}, not a list of [used, remaining]")
    if len(raw) != expected_days:
        raise UsageDataError(f"{where}: {len(raw)} daily entries for a range of {expected_days} days")
    days: list[DailyUsage] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            raise UsageDataError(f"{where}, day {index + 1}: entry {_show(entry)} is not [used, remaining]")
        used = _whole(entry[0])
        if used is None:
            raise UsageDataError(
                f"{where}, day {index + 1}: used {_show(entry[0])} is not a whole number from 0 to 2**63 - 1"
            )
        remaining: int | None = None
        if has_quota:
            remaining = _whole(entry[1])
            if remaining is None:
                raise UsageDataError(
                    f"{where}, day {index + 1}: remaining {_show(entry[1])} is not a whole number "
                    "from 0 to 2**63 - 1"
                )
        days.append(DailyUsage(used=used, remaining=remaining))
    return days


def _show(value: object) -> str:
    """A value for an error message, cut short: a fuzzed or garbled answer can hold anything."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def reset_at_period_start(before: DailyUsage, first: DailyUsage, limit: int) -> bool | None:
    """Did AWS's counter reset between the day before the assumed period start and that first day?

    Within a period a day's remaining is the day before's less that day's use; on the first day of
    a period it is the limit less that day's use. Whichever of the two the numbers satisfy says
    which happened; both (an idle key) or neither (an UpdateUsage that day, the plan's first period
    with its ``offset``) cannot tell.
    """
    if before.remaining is None or first.remaining is None:
        return None
    ran_on = before.remaining - first.used == first.remaining
    started_afresh = first.used + first.remaining == limit
    if ran_on == started_afresh:
        return None
    return started_afresh


def utilization(limit: int, remaining: int) -> float:
    if limit <= 0:
        return 100.0
    return min(100.0, max(0.0, 100.0 * (limit - remaining) / limit))


def key_usage(
    plan: UsagePlan,
    period: QuotaPeriod,
    api_key_id: str,
    daily: Sequence[DailyUsage],
    api_key: ApiKey | None,
    *,
    day_before: DailyUsage | None = None,
    read: ReadSpan | None = None,
) -> KeyUsage:
    """Where one key stands in its plan's current period, from its validated daily entries.

    ``daily`` runs from the period's first day to today; ``day_before`` (the day before the period),
    when given, tells whether AWS's counter really reset at the period's start
    (:func:`reset_at_period_start`, ``KeyUsage.period_reset``).
    """
    used = sum(day.used for day in daily)
    remaining = limit = None
    percent = None
    if plan.quota is not None:
        if not daily or daily[-1].remaining is None:
            raise UsageDataError(
                f"usage plan {plan.id}, key {api_key_id}: no remaining quota for the latest day"
            )
        remaining = daily[-1].remaining
        limit = plan.quota.limit
        percent = utilization(limit, remaining)
    return KeyUsage(
        usage_plan_id=plan.id,
        usage_plan_name=plan.name,
        api_key_id=api_key_id,
        api_key_name=api_key.name if api_key else None,
        period=period.period,
        period_start=period.start,
        resets_at=period.resets_at,
        used=used,
        remaining=remaining,
        limit=limit,
        utilization=percent,
        target=plan.target,
        period_reset=(
            reset_at_period_start(day_before, daily[0], limit)
            if day_before is not None and daily and limit is not None
            else None
        ),
        used_today=daily[-1].used if daily else None,
        read=read,
    )


def unused_key_usage(
    plan: UsagePlan,
    period: QuotaPeriod,
    api_key_id: str,
    api_key: ApiKey | None,
    *,
    read: ReadSpan | None = None,
) -> KeyUsage:
    """A key attached to the plan that AWS left out of the usage data: reported as unused.

    Its remaining is taken as the full limit (the plan's first-period ``offset`` cannot be known
    for a key AWS reports nothing for).
    """
    limit = plan.quota.limit if plan.quota is not None else None
    return KeyUsage(
        usage_plan_id=plan.id,
        usage_plan_name=plan.name,
        api_key_id=api_key_id,
        api_key_name=api_key.name if api_key else None,
        period=period.period,
        period_start=period.start,
        resets_at=period.resets_at,
        used=0,
        remaining=limit,
        limit=limit,
        utilization=None if limit is None else utilization(limit, limit),
        in_usage_data=False,
        target=plan.target,
        read=read,
    )
