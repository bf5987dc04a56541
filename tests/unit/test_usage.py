"""From daily GetUsage entries to a key's standing: the rules, and bad data as errors, never zeros."""

from __future__ import annotations

from datetime import date

import pytest

from quota_monitor.compute.key_usage import (
    key_usage,
    parse_daily_usage,
    reset_at_period_start,
    unused_key_usage,
    utilization,
)
from quota_monitor.compute.periods import period_containing
from quota_monitor.errors import UsageDataError
from quota_monitor.models import ApiKey, DailyUsage, Quota, UsagePlan
from tests.contracts import JSON_FIELDS

PLAN = UsagePlan("p1", "gold", Quota(limit=1000, period="MONTH"))
NO_QUOTA = UsagePlan("p2", "internal", None)
PERIOD = period_containing("MONTH", date(2026, 11, 25))


def parse(raw: object, days: int = 3, has_quota: bool = True) -> list[DailyUsage]:
    return parse_daily_usage(
        raw, expected_days=days, has_quota=has_quota, usage_plan_id="p1", api_key_id="k1"
    )


def test_remaining_is_the_latest_day_and_used_is_the_sum() -> None:
    daily = parse([[100, 900], [50, 850], [25, 825]])
    usage = key_usage(PLAN, PERIOD, "k1", daily, ApiKey("k1", "billing"))
    assert (usage.used, usage.remaining, usage.limit) == (175, 825, 1000)
    assert usage.utilization == pytest.approx(17.5)
    assert usage.api_key_name == "billing"
    assert usage.period == "MONTH"
    assert usage.period_start == date(2026, 11, 1)
    assert usage.resets_at.isoformat() == "2026-12-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("limit", "remaining", "expected"),
    [
        (1000, 1000, 0.0),
        (1000, 0, 100.0),
        (1000, 80, 92.0),
        (1000, 1500, 0.0),  # UpdateUsage extended the key above its limit: clamped, not negative
        (0, 0, 100.0),  # a limit of 0 allows nothing
        (3, 1, 100 * 2 / 3),
    ],
)
def test_utilization(limit: int, remaining: int, expected: float) -> None:
    assert utilization(limit, remaining) == pytest.approx(expected)


def test_utilization_is_not_rounded_up_to_a_threshold() -> None:
    assert utilization(1_000_000, 1) < 100.0


def test_plan_without_quota_reports_used_only_whatever_remaining_holds() -> None:
    daily = parse([[5, None], [7, "n/a"], [9, -3]], has_quota=False)
    usage = key_usage(NO_QUOTA, PERIOD, "k1", daily, None)
    assert (usage.used, usage.remaining, usage.limit, usage.utilization) == (21, None, None, None)
    assert usage.api_key_name is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"used": 1}, "daily usage is dict, not a list"),
        ([[1, 2], [3, 4]], "2 daily entries for a range of 3 days"),
        ([[1, 2], [3, 4], [5]], r"day 3: entry \[5\] is not \[used, remaining\]"),
        ([[1, 2], [3, 4], "5,6"], "day 3: entry '5,6' is not"),
        ([[1, 2], [-3, 4], [5, 6]], r"day 2: used -3 is not a whole number from 0 to 2\*\*63 - 1"),
        ([[1, 2], [3, 2**63], [5, 6]], r"day 2: remaining 9223372036854775808 is not a whole number from 0"),
        (
            [[1, 2], [10**400, 4], [5, 6]],
            r"day 2: used 10{56}\.\.\. is not a whole number",
        ),
        ([[1, 2], [None, 4], [5, 6]], "day 2: used None is not a whole number"),
        ([[1, 2], [3, 4], [5, None]], "day 3: remaining None is not a whole number"),
        ([[1, 2], [3, 4], [5, -1]], "day 3: remaining -1 is not a whole number"),
        ([[1, 2], [3, 4], [5, 6.5]], r"day 3: remaining 6.5 is not a whole number"),
        ([[1, 2], [True, 4], [5, 6]], "day 2: used True is not a whole number"),
        ([[1, 2], [3, 4], [5, "6"]], "day 3: remaining '6' is not a whole number"),
    ],
)
def test_malformed_daily_usage_is_an_error_naming_plan_key_and_day(raw: object, message: str) -> None:
    with pytest.raises(UsageDataError, match=message) as caught:
        parse(raw)
    assert "usage plan p1, key k1" in str(caught.value)


def test_unused_key_reads_as_full_remaining() -> None:
    usage = unused_key_usage(PLAN, PERIOD, "k9", None)
    assert (usage.used, usage.remaining, usage.utilization, usage.in_usage_data) == (0, 1000, 0.0, False)
    no_quota = unused_key_usage(NO_QUOTA, PERIOD, "k9", None)
    assert (no_quota.remaining, no_quota.utilization) == (None, None)


def test_json_contract_has_exactly_the_documented_fields() -> None:
    usage = key_usage(PLAN, PERIOD, "k1", parse([[1, 999], [1, 998], [1, 997]]), ApiKey("k1", "billing"))
    assert list(usage.as_json()) == JSON_FIELDS
    assert usage.as_json()["periodStart"] == "2026-11-01"


@pytest.mark.parametrize(
    ("before", "first", "expected"),
    [
        ((100, 200), (30, 970), True),  # 200 left yesterday, 970 today after 30: the counter reset
        ((100, 200), (30, 170), False),  # 200 - 30 = 170: it ran on, no reset at the assumed start
        ((0, 0), (0, 0), False),  # exhausted yesterday and still today: no reset
        ((0, 0), (0, 1000), True),  # exhausted yesterday, full today: reset
        ((0, 1000), (0, 1000), None),  # an idle key: both readings fit, nothing to tell
        ((100, 200), (30, 500), None),  # neither: an UpdateUsage that day, or a first period's offset
    ],
)
def test_the_day_before_the_period_tells_whether_the_counter_reset(
    before: tuple[int, int], first: tuple[int, int], expected: bool | None
) -> None:
    assert reset_at_period_start(DailyUsage(*before), DailyUsage(*first), 1_000) is expected
