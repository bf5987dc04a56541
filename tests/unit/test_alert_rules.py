"""The crossing rules, the forecast rule and the tag overrides, as tables of cases and properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota_monitor.alert.rules import AlertState, evaluate
from quota_monitor.alert.thresholds import DEFAULT_LEVELS, AlertPolicy, parse_levels, policy_for
from quota_monitor.compute.forecast import forecast
from quota_monitor.compute.levels import level_reached
from quota_monitor.compute.tags import TAG_MUTE, TAG_THRESHOLDS
from quota_monitor.config import AlertSettings, ForecastSettings
from quota_monitor.errors import InvalidLevels
from quota_monitor.models import ApiKey, KeyUsage, Quota, UsagePlan

NOV = date(2026, 11, 1)
DEC = date(2026, 12, 1)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NO_FORECAST = AlertSettings(
    "arn:aws:sns:us-east-1:123456789012:t", "t", forecast=ForecastSettings(enabled=False)
)
WITH_FORECAST = replace(NO_FORECAST, forecast=ForecastSettings())
DEFAULT = AlertPolicy(levels=DEFAULT_LEVELS, levels_from="default")


def usage(
    used_percent: float, *, limit: int = 1_000, period_start: date = NOV, used: int | None = None
) -> KeyUsage:
    remaining = round(limit * (100 - used_percent) / 100)
    return KeyUsage(
        usage_plan_id="p1",
        usage_plan_name="gold",
        api_key_id="k1",
        api_key_name="billing-client",
        period="MONTH",
        period_start=period_start,
        resets_at=datetime(DEC.year, DEC.month, DEC.day, tzinfo=UTC)
        if period_start == NOV
        else datetime(2027, 1, 1, tzinfo=UTC),
        used=limit - remaining if used is None else used,
        remaining=remaining,
        limit=limit,
        utilization=max(0.0, min(100.0, 100 * (limit - remaining) / limit)),
    )


def state(level: int = 0, *, period: date | None = NOV, forecast_sent: bool = False) -> AlertState:
    return AlertState(period_start=period, level=level, forecast_sent=forecast_sent, rev=3)


# (case, utilization %, state before, expected notification (kind, level) or None, expected level after)
CROSSINGS = [
    ("first crossing", 80.0, None, ("threshold", 80), 80),
    ("below every level, no state", 79.9, None, None, None),
    ("a jump names the highest level only", 100.0, state(0), ("threshold", 100), 100),
    ("70 to 100 in one run", 100.0, state(0), ("threshold", 100), 100),
    ("already alerted at this level", 85.0, state(80), None, None),
    ("the next level", 90.0, state(80), ("threshold", 90), 90),
    ("a level alerts once a period even after a dip", 92.0, state(90), None, None),
    ("down but still over the lowest level: quiet", 81.0, state(90), None, None),
    ("extended back under the lowest level", 40.0, state(90), ("recovered", 90), 0),
    ("new period, was alerted", 10.0, state(100, period=date(2026, 10, 1)), ("recovered", 100), 0),
    ("new period, never alerted: nothing to store", 10.0, state(0, period=date(2026, 10, 1)), None, None),
    (
        "new period and already over a level again",
        85.0,
        state(100, period=date(2026, 10, 1)),
        ("threshold", 80),
        80,
    ),
    ("exactly on the level", 90.0, state(80), ("threshold", 90), 90),
]


def test_a_new_calendar_period_without_a_reset_in_the_data_keeps_what_was_said() -> None:
    """WEEK_START_DAY may be wrong: the calendar says a new week, AWS's counter ran on. Nothing is
    sent then; when the counter does reset, the drop below the lowest level recovers the key."""
    last_week = date(2026, 10, 1)  # the state's period, as the calendar had it
    ran_on = replace(usage(95.0), period_reset=False)
    assert evaluate(ran_on, DEFAULT, state(90, period=last_week), now=NOW, settings=NO_FORECAST) is None
    higher = evaluate(
        replace(usage(100.0), period_reset=False),
        DEFAULT,
        state(90, period=last_week),
        now=NOW,
        settings=NO_FORECAST,
    )
    assert higher is not None
    assert higher.notification is not None
    assert (higher.notification.kind, higher.notification.level) == ("threshold", 100)
    reset = evaluate(
        replace(usage(3.0), period_reset=False),
        DEFAULT,
        state(90, period=last_week),
        now=NOW,
        settings=NO_FORECAST,
    )
    assert reset is not None
    assert reset.notification is not None
    assert (reset.notification.kind, reset.notification.reason) == ("recovered", "back under 80%")
    assert (reset.new.level, reset.new.period_start) == (0, NOV)


def test_a_forecast_flag_clears_quietly_when_use_falls_below_the_forecast_floor() -> None:
    decision = evaluate(usage(20.0), DEFAULT, state(0, forecast_sent=True), now=NOW, settings=WITH_FORECAST)
    assert decision is not None
    assert decision.notification is None
    assert decision.new.forecast_sent is False


@pytest.mark.parametrize(
    ("case", "percent", "before", "expected", "level_after"), CROSSINGS, ids=[c[0] for c in CROSSINGS]
)
def test_crossing_rules(
    case: str,
    percent: float,
    before: AlertState | None,
    expected: tuple[str, int] | None,
    level_after: int | None,
) -> None:
    decision = evaluate(usage(percent), DEFAULT, before, now=NOW, settings=NO_FORECAST)
    if expected is None and level_after is None:
        assert decision is None
        return
    assert decision is not None
    note = decision.notification
    assert ((note.kind, note.level) if note else None) == expected
    assert decision.new.level == level_after
    assert decision.new.period_start == NOV
    assert decision.pk == "p1#k1"


def test_recovery_notifications_can_be_turned_off_but_the_state_still_resets() -> None:
    quiet = replace(NO_FORECAST, recovery=False)
    decision = evaluate(usage(10.0), DEFAULT, state(100, period=date(2026, 10, 1)), now=NOW, settings=quiet)
    assert decision is not None
    assert decision.notification is None
    assert (decision.new.level, decision.new.period_start) == (0, NOV)


def test_muted_keys_and_plans_without_quota_raise_nothing() -> None:
    muted = AlertPolicy(levels=DEFAULT_LEVELS, levels_from="default", muted=True, muted_from="key tag")
    assert evaluate(usage(100.0), muted, None, now=NOW, settings=NO_FORECAST) is None
    no_quota = replace(usage(100.0), remaining=None, limit=None, utilization=None)
    assert evaluate(no_quota, DEFAULT, None, now=NOW, settings=NO_FORECAST) is None


def test_levels_compare_whole_numbers_not_rounded_percentages() -> None:
    # 2,999,999 of 3,000,000 used is 99.99997%: not 100 however it is rounded for display.
    key = replace(usage(0.0, limit=3_000_000), remaining=1, used=2_999_999, utilization=99.99997)
    assert level_reached(key, (80, 90, 100)) == 90
    key = replace(key, remaining=0, used=3_000_000, utilization=100.0)
    assert level_reached(key, (80, 90, 100)) == 100
    # Remaining pushed above the limit by UpdateUsage is no use at all, not negative use.
    assert level_reached(replace(key, remaining=5_000_000), (1,)) == 0


def test_a_threshold_alert_carries_the_forecast_and_sets_its_flag() -> None:
    # 25 Nov noon: 24.5 of 30 days gone, 90% used: the rate runs the rest out well before the reset.
    decision = evaluate(usage(90.0), DEFAULT, state(80), now=NOW, settings=WITH_FORECAST)
    assert decision is not None
    assert decision.notification is not None
    assert decision.notification.kind == "threshold"
    assert decision.notification.forecast is not None
    assert decision.new.forecast_sent is True


def test_a_forecast_alone_alerts_once_a_period() -> None:
    # 75% used by the 20th: 19 days gone, 11 to go at ~3.9% a day runs out around the 26th.
    now = datetime(2026, 11, 20, tzinfo=UTC)
    first = evaluate(usage(75.0), DEFAULT, None, now=now, settings=WITH_FORECAST)
    assert first is not None
    assert first.notification is not None
    assert first.notification.kind == "forecast"
    assert (first.new.level, first.new.forecast_sent) == (0, True)
    again = evaluate(usage(76.0), DEFAULT, first.new, now=now, settings=WITH_FORECAST)
    assert again is None


# (case, used %, now, settings, expect a forecast)
FORECASTS = [
    ("on course to run out", 75.0, datetime(2026, 11, 20, tzinfo=UTC), ForecastSettings(), True),
    ("too early in the period", 75.0, datetime(2026, 11, 5, tzinfo=UTC), ForecastSettings(), False),
    ("too little used to be worth it", 45.0, datetime(2026, 11, 10, tzinfo=UTC), ForecastSettings(), False),
    # 55% by the 18th: 420 more at that rate against 450 left, so it lasts past the reset.
    ("runs out just after the reset", 55.0, datetime(2026, 11, 18, tzinfo=UTC), ForecastSettings(), False),
    # 67% by the 20th 23:00: ~337 more at that rate against 330 left: out, but inside the 10% margin.
    ("within the margin", 67.0, datetime(2026, 11, 20, 23, tzinfo=UTC), ForecastSettings(), False),
    (
        "within the margin, with no margin",
        67.0,
        datetime(2026, 11, 20, 23, tzinfo=UTC),
        ForecastSettings(margin_percent=0),
        True,
    ),
    ("turned off", 75.0, datetime(2026, 11, 20, tzinfo=UTC), ForecastSettings(enabled=False), False),
    ("already exhausted", 100.0, datetime(2026, 11, 20, tzinfo=UTC), ForecastSettings(), False),
]


@pytest.mark.parametrize(
    ("case", "percent", "now", "settings", "expected"), FORECASTS, ids=[c[0] for c in FORECASTS]
)
def test_forecast_rule(
    case: str, percent: float, now: datetime, settings: ForecastSettings, expected: bool
) -> None:
    result = forecast(usage(percent), now, settings)
    assert (result is not None) == expected
    if result is not None:
        key = usage(percent)
        assert now < result.exhausts_at < key.resets_at
        elapsed_hours = (now - datetime(2026, 11, 1, tzinfo=UTC)).total_seconds() / 3600
        assert result.requests_per_hour == pytest.approx(key.used / elapsed_hours)
        assert result.ahead_of_reset == key.resets_at - result.exhausts_at


@given(
    path=st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1, max_size=30),
    levels=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=5, unique=True).map(
        lambda xs: tuple(sorted(xs))
    ),
)
def test_each_level_alerts_at_most_once_a_period_whatever_the_path(
    path: list[float], levels: tuple[int, ...]
) -> None:
    """Utilization wandering up and down within one period: alerts name ascending levels, each once,
    and every level reached is covered by an alert naming it or a higher one, unless a recovery reset it."""
    policy = AlertPolicy(levels=levels, levels_from="default")
    current: AlertState | None = None
    alerted: list[int] = []
    for percent in path:
        decision = evaluate(usage(percent), policy, current, now=NOW, settings=NO_FORECAST)
        if decision is None:
            continue
        note = decision.notification
        if note is not None and note.kind == "threshold":
            assert note.level in levels
            assert note.level > (current.level if current else 0)
            alerted.append(note.level)
        if note is not None and note.kind == "recovered":
            alerted.clear()
        current = decision.new
    assert alerted == sorted(set(alerted))
    reached = level_reached(usage(path[-1]), levels)
    assert (current.level if current else 0) >= reached


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80,90,100", (80, 90, 100)),
        (" 50, 75 ,95 ", (50, 75, 95)),
        ("100", (100,)),
        ("1,2", (1, 2)),
        # The separators AWS's tag rules allow everywhere (docs/aws-behaviour.md#tags).
        ("50/75/95", (50, 75, 95)),
        ("50 75 95", (50, 75, 95)),
        (" 50  75\t95 ", (50, 75, 95)),
        ("50 / 75/ 95", (50, 75, 95)),
        ("50, 75/95", (50, 75, 95)),
    ],
)
def test_parse_levels(text: str, expected: tuple[int, ...]) -> None:
    assert parse_levels(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("80,,90", "empty"),
        ("80//90", "empty"),
        ("80/90/", "empty"),
        ("/80", "empty"),
        ("80,ninety", "'ninety' is not a whole number"),
        ("80.5", "'80.5' is not a whole number"),
        ("-5,80", "'-5' is not a whole number"),
        ("0,50", "0 is outside 1..100"),
        ("50,101", "101 is outside 1..100"),
        ("90,80", "80 does not come after 90"),
        ("80,80", "80 does not come after 80"),
    ],
)
def test_bad_levels_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidLevels, match=message):
        parse_levels(text)


PLAN = UsagePlan("p1", "gold", Quota(1000, "MONTH"), tags={TAG_THRESHOLDS: "60,70"})


@pytest.mark.parametrize(
    ("plan_tags", "key_tags", "levels", "levels_from", "muted"),
    [
        ({}, {}, DEFAULT_LEVELS, "default", False),
        ({TAG_THRESHOLDS: "60,70"}, {}, (60, 70), "plan tag", False),
        ({TAG_THRESHOLDS: "60,70"}, {TAG_THRESHOLDS: "50,75,95"}, (50, 75, 95), "key tag", False),
        ({TAG_THRESHOLDS: "60,70"}, {TAG_THRESHOLDS: "95,50"}, (60, 70), "plan tag", False),
        ({TAG_THRESHOLDS: "oops"}, {TAG_THRESHOLDS: "bad"}, DEFAULT_LEVELS, "default", False),
        ({TAG_MUTE: "true"}, {}, DEFAULT_LEVELS, "default", True),
        ({TAG_MUTE: "true"}, {TAG_MUTE: "false"}, DEFAULT_LEVELS, "default", False),
        ({}, {TAG_MUTE: "TRUE"}, DEFAULT_LEVELS, "default", True),
        ({TAG_THRESHOLDS: "60/70"}, {TAG_THRESHOLDS: "50 75 95"}, (50, 75, 95), "key tag", False),
        ({TAG_THRESHOLDS: "60/70"}, {TAG_THRESHOLDS: "50 75 x"}, (60, 70), "plan tag", False),
        ({TAG_MUTE: "maybe"}, {}, DEFAULT_LEVELS, "default", False),
    ],
)
def test_key_tag_beats_plan_tag_beats_default(
    plan_tags: dict[str, str],
    key_tags: dict[str, str],
    levels: tuple[int, ...],
    levels_from: str,
    muted: bool,
) -> None:
    policy = policy_for(replace(PLAN, tags=plan_tags), ApiKey("k1", "billing", tags=key_tags), DEFAULT_LEVELS)
    assert (policy.levels, policy.levels_from, policy.muted) == (levels, levels_from, muted)


def test_bad_tags_are_reported_naming_resource_tag_and_value() -> None:
    plan = replace(PLAN, tags={TAG_THRESHOLDS: "80,70", TAG_MUTE: "maybe"})
    policy = policy_for(plan, ApiKey("k1", "billing", tags={TAG_THRESHOLDS: "fifty"}), DEFAULT_LEVELS)
    described = [problem.describe() for problem in policy.problems]
    assert described == [
        "API key k1: tag quota-monitor:thresholds='fifty' ignored ('fifty' is not a whole number; use "
        "ascending whole percentages from 1 to 100, separated by / or spaces, such as 50/75/95); the next "
        "level of configuration applies",
        "usage plan p1: tag quota-monitor:thresholds='80,70' ignored (70 does not come after 80: levels must "
        "ascend; use ascending whole percentages from 1 to 100, separated by / or spaces, such as 50/75/95); "
        "the next level of configuration applies",
        "usage plan p1: tag quota-monitor:mute='maybe' ignored ('maybe' is not true or false; use true or "
        "false); the next level of configuration applies",
    ]
    assert policy.levels == DEFAULT_LEVELS


def test_a_key_without_known_tags_uses_its_plan() -> None:
    policy = policy_for(PLAN, None, DEFAULT_LEVELS)
    assert (policy.levels, policy.levels_from) == ((60, 70), "plan tag")


def test_period_start_of_the_state_follows_the_key() -> None:
    december = usage(85.0, period_start=DEC)
    decision = evaluate(
        december, DEFAULT, state(100, period=NOV), now=NOW + timedelta(days=7), settings=NO_FORECAST
    )
    assert decision is not None
    assert decision.notification is not None
    assert (decision.notification.kind, decision.new.period_start) == ("threshold", DEC)
