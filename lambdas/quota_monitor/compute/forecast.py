"""When will a key run out? A projection from its burn rate over the current quota period.

:func:`forecast` projects only for a key of a plan with a quota, with some quota left and some use
in the period, once ``min_elapsed_percent`` of the period has passed and the key has used at least
``min_utilization_percent`` of its quota (:class:`quota_monitor.config.ForecastSettings`). The burn
rate is the period's average (requests used over the time since the period started), so the quota
runs out at ``now + remaining / rate``; a warning is due only when it would run out before the
reset even at a rate ``margin_percent`` lower: ``remaining * (1 + margin) <= rate * time left``.
Why it is this conservative: docs/alerts.md, "The forecast".

GetUsage can lag real traffic by minutes (docs/aws-behaviour.md#getusage-and-its-paginator), which
makes the rate, and so the warning, slightly late rather than early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quota_monitor.config import ForecastSettings
    from quota_monitor.models import KeyUsage


@dataclass(frozen=True)
class Forecast:
    """The projected exhaustion of one key's quota in the current period."""

    exhausts_at: datetime
    requests_per_hour: float
    #: How long before the reset the quota runs out.
    ahead_of_reset: timedelta


def period_started_at(key: KeyUsage) -> datetime:
    start = key.period_start
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def forecast(key: KeyUsage, now: datetime, settings: ForecastSettings) -> Forecast | None:
    """The projected exhaustion of ``key``'s quota before its period resets, or None (see the module doc)."""
    if not settings.enabled or key.limit is None or key.remaining is None or key.utilization is None:
        return None
    if key.remaining <= 0 or key.used <= 0 or key.utilization < settings.min_utilization_percent:
        return None
    started = period_started_at(key)
    elapsed = (now - started).total_seconds()
    length = (key.resets_at - started).total_seconds()
    left = (key.resets_at - now).total_seconds()
    if elapsed <= 0 or left <= 0 or length <= 0:
        return None
    if 100.0 * elapsed / length < settings.min_elapsed_percent:
        return None
    rate = key.used / elapsed  # requests a second
    if key.remaining * (1.0 + settings.margin_percent / 100.0) > rate * left:
        return None
    exhausts_at = now + timedelta(seconds=key.remaining / rate)
    return Forecast(
        exhausts_at=exhausts_at,
        requests_per_hour=rate * 3600.0,
        ahead_of_reset=key.resets_at - exhausts_at,
    )
