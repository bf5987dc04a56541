"""Quota period maths, in UTC.

What AWS does, and what this module assumes (sources and certainty:
docs/aws-behaviour.md#getusage-and-its-paginator):

- Days are UTC days. DAY: the period is the UTC day. MONTH: it runs from the 1st of the month.
- WEEK: the day a week starts on is not in the current reference; older SDK documentation had it
  start on Sunday with the default offset, which is :data:`DEFAULT_WEEK_START` here, and
  ``WEEK_START_DAY`` overrides it. ``remaining`` and utilization come from AWS's own counter
  whatever the start day; ``used`` and the reset time shown depend on it. The alerts do not: the
  scan checks from the data whether AWS's counter reset at the assumed start
  (:func:`quota_monitor.compute.key_usage.reset_at_period_start`), and where it did not, the alert
  state is kept and the scan warns.
- ``quota.offset`` is a number of requests taken off the first period, not a weekday, so it
  never moves a period boundary.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from quota_monitor.models import PERIOD_TYPES, PeriodType, QuotaPeriod

WEEKDAYS: tuple[str, ...] = tuple(name.upper() for name in calendar.day_name)  # MONDAY .. SUNDAY
SUNDAY = WEEKDAYS.index("SUNDAY")
DEFAULT_WEEK_START = SUNDAY


def parse_weekday(value: str) -> int:
    """``"SUNDAY"`` -> 6 (Monday is 0, as in :meth:`date.weekday`)."""
    name = value.strip().upper()
    if name not in WEEKDAYS:
        raise ValueError(f"{value!r} is not a weekday; allowed: {', '.join(WEEKDAYS)}")
    return WEEKDAYS.index(name)


def period_containing(period: PeriodType, day: date, *, week_start: int = DEFAULT_WEEK_START) -> QuotaPeriod:
    """The quota period of type ``period`` that contains ``day``."""
    if period == "DAY":
        return QuotaPeriod(period, day, day + timedelta(days=1))
    if period == "WEEK":
        if not 0 <= week_start <= 6:
            raise ValueError(f"week_start {week_start} is not a weekday number 0 (Monday) .. 6 (Sunday)")
        start = day - timedelta(days=(day.weekday() - week_start) % 7)
        return QuotaPeriod(period, start, start + timedelta(days=7))
    if period == "MONTH":
        start = day.replace(day=1)
        next_start = date(start.year + 1, 1, 1) if start.month == 12 else date(start.year, start.month + 1, 1)
        return QuotaPeriod(period, start, next_start)
    raise ValueError(f"quota period {period!r} is not one of {', '.join(PERIOD_TYPES)}")


def days_between(start: date, end: date) -> int:
    """Days from ``start`` to ``end``, both included: the number of entries GetUsage returns per key."""
    return (end - start).days + 1
