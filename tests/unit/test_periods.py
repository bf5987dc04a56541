"""Quota period maths: properties over all dates, and agreement with the sandbox's own model."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apigw_sandbox.account import SandboxAccount
from quota_monitor.compute.periods import SUNDAY, WEEKDAYS, days_between, parse_weekday, period_containing

days = st.dates(min_value=date(1999, 1, 1), max_value=date(2101, 12, 31))
weekdays = st.integers(min_value=0, max_value=6)


@given(day=days)
def test_day_period_is_the_day(day: date) -> None:
    period = period_containing("DAY", day)
    assert (period.start, period.next_start, period.days) == (day, day + timedelta(days=1), 1)


@given(day=days, week_start=weekdays)
def test_week_period_contains_the_day_and_starts_on_the_week_start(day: date, week_start: int) -> None:
    period = period_containing("WEEK", day, week_start=week_start)
    assert period.start <= day < period.next_start
    assert period.days == 7
    assert period.start.weekday() == week_start


@given(day=days)
def test_month_period_runs_from_the_first_to_the_first_of_the_next_month(day: date) -> None:
    period = period_containing("MONTH", day)
    assert period.start == date(day.year, day.month, 1)
    assert period.start <= day < period.next_start
    assert period.next_start.day == 1
    assert period.days == calendar.monthrange(day.year, day.month)[1]
    assert (period.next_start - timedelta(days=1)).month == day.month


@given(day=days, kind=st.sampled_from(["DAY", "WEEK", "MONTH"]), week_start=weekdays)
def test_consecutive_periods_tile_time(day: date, kind: str, week_start: int) -> None:
    period = period_containing(kind, day, week_start=week_start)  # type: ignore[arg-type]
    following = period_containing(kind, period.next_start, week_start=week_start)  # type: ignore[arg-type]
    previous = period_containing(kind, period.start - timedelta(days=1), week_start=week_start)  # type: ignore[arg-type]
    assert following.start == period.next_start
    assert previous.next_start == period.start
    assert period.resets_at.date() == period.next_start
    assert period.resets_at.utcoffset() == timedelta(0)


@given(day=days, kind=st.sampled_from(["DAY", "WEEK", "MONTH"]), week_start=weekdays)
def test_agrees_with_the_sandbox_model_of_aws(day: date, kind: str, week_start: int) -> None:
    sandbox = SandboxAccount(week_start=week_start)
    assert period_containing(kind, day, week_start=week_start).start == sandbox.period_start(kind, day)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("day", "kind", "start", "next_start"),
    [
        (date(2024, 2, 29), "MONTH", date(2024, 2, 1), date(2024, 3, 1)),  # leap day
        (date(2023, 2, 28), "MONTH", date(2023, 2, 1), date(2023, 3, 1)),
        (date(2100, 2, 28), "MONTH", date(2100, 2, 1), date(2100, 3, 1)),  # 2100 is not a leap year
        (date(2026, 12, 31), "MONTH", date(2026, 12, 1), date(2027, 1, 1)),  # turn of the year
        (date(2026, 12, 31), "DAY", date(2026, 12, 31), date(2027, 1, 1)),
        (
            date(2027, 1, 1),
            "WEEK",
            date(2026, 12, 27),
            date(2027, 1, 3),
        ),  # a Friday; the week began on a Sunday
        (date(2026, 11, 29), "WEEK", date(2026, 11, 29), date(2026, 12, 6)),  # a Sunday starts its own week
        (date(2026, 1, 31), "MONTH", date(2026, 1, 1), date(2026, 2, 1)),
    ],
)
def test_known_periods(day: date, kind: str, start: date, next_start: date) -> None:
    period = period_containing(kind, day, week_start=SUNDAY)  # type: ignore[arg-type]
    assert (period.start, period.next_start) == (start, next_start)


def test_days_between_counts_both_ends() -> None:
    assert days_between(date(2026, 11, 1), date(2026, 11, 30)) == 30
    assert days_between(date(2026, 12, 31), date(2026, 12, 31)) == 1


def test_weekday_names() -> None:
    assert parse_weekday("sunday") == SUNDAY == 6
    assert parse_weekday(" Monday ") == 0
    assert WEEKDAYS[0] == "MONDAY"
    with pytest.raises(ValueError, match=r"'Sun' is not a weekday; allowed: MONDAY, .*SUNDAY"):
        parse_weekday("Sun")


def test_unknown_period_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="quota period 'YEAR' is not one of DAY, WEEK, MONTH"):
        period_containing("YEAR", date(2026, 1, 1))  # type: ignore[arg-type]
