"""The crossing rules: from a key's usage and its alert state to what should be said, once.

Per key and quota period the state holds the highest level already alerted and whether the
forecast warning was sent. Each run:

1. A new quota period (the state's period is not the key's current one) resets the state; keys
   that had been alerted in the old period get a "recovered" notification (``RECOVERY_NOTIFICATIONS``).
   Unless the key's own data says AWS's counter did not reset at the period's assumed start
   (``KeyUsage.period_reset`` is False: the day a WEEK quota resets is not documented, and
   ``WEEK_START_DAY`` may be wrong): then the state is kept as it is, nothing is sent, and rule 2
   resets it when AWS's counter does reset, so that a wrong assumption never repeats an alert.
2. Within a period, a key brought back under its lowest level (an administrator extended it with
   UpdateUsage) resets the state too, with a "recovered" notification. Only on the key's own
   data: a key that the usage data left out (reported as unused by the plan-key cross-check) says
   nothing about its quota, and a key alerted in this period has used some of it, so that absence
   is a gap, not a recovery (else the next run with data would alert the same level again).
   A forecast warning's flag clears (quietly) when the key's use drops below the forecast's floor.
3. A key whose utilization reaches a level higher than the highest already alerted raises one
   alert naming the highest level reached: a jump from 70% to 100% says 100, once.
4. Otherwise a key whose quota is projected to run out before the reset
   (:mod:`quota_monitor.compute.forecast`) gets one forecast warning per period. A threshold alert
   carries the forecast when there is one.

A key gets at most one notification a run: a threshold alert beats a forecast, which beats a
recovery (a key that resets and crosses again in the same run is simply alerted for the new period).
Levels are compared in whole numbers (``used * 100 >= level * limit``), never in rounded percentages.
Plans without a quota and muted keys raise nothing and leave their state alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from quota_monitor.alert.routes import DEFAULT_ROUTE
from quota_monitor.compute.forecast import forecast as project
from quota_monitor.compute.levels import level_reached

if TYPE_CHECKING:
    from datetime import date, datetime

    from quota_monitor.alert.thresholds import AlertPolicy
    from quota_monitor.compute.forecast import Forecast
    from quota_monitor.config import AlertSettings
    from quota_monitor.models import EventEntry, KeyUsage, Target

NotificationKind = Literal["threshold", "forecast", "recovered"]


def state_key(usage_plan_id: str, api_key_id: str, target: Target | None = None) -> str:
    """The state table's partition key for one key of one plan: ``<plan>#<key>`` in the monitor's own
    account and region, ``<account>#<region>#<plan>#<key>`` in any other, so that equal ids in two
    targets never share an item."""
    if target is None or target.home:
        return f"{usage_plan_id}#{api_key_id}"
    return f"{target.account_id}#{target.region}#{usage_plan_id}#{api_key_id}"


@dataclass(frozen=True)
class AlertState:
    """What has been said about one key in its current quota period, as stored.

    ``rev`` counts confirmed changes (None: no item yet); a claim is held by a run until
    ``claim_until``. ``pending_events`` and ``event_sent`` record what the
    EventBridge channel owes and has already delivered (:mod:`quota_monitor.alert.state`); the rules
    carry them over untouched.
    """

    period_start: date | None = None
    level: int = 0
    forecast_sent: bool = False
    rev: int | None = None
    claim_until: datetime | None = None
    #: How many times in this period the key came back under its levels (or below the forecast's
    #: floor): a later crossing of the same level is a new event, with a new id
    #: (:attr:`Notification.event_id`).
    episode: int = 0
    #: Events whose notification went out by SNS (the state advanced) but which EventBridge did not take.
    pending_events: tuple[EventEntry, ...] = ()
    #: The id of an event that EventBridge took while its SNS message failed (the state did not advance).
    event_sent: str | None = None
    #: When the reading that last changed it ended (``KeyUsage.read.ended``): only a reading that
    #: began after that may change it again. None: the item has no ``readAt``.
    read_at: datetime | None = None

    def same_alerts(self, other: AlertState) -> bool:
        return (self.level, self.forecast_sent) == (other.level, other.forecast_sent)


@dataclass(frozen=True)
class Notification:
    """One thing worth telling a person about one key."""

    kind: NotificationKind
    key: KeyUsage
    #: threshold: the level crossed; recovered: the highest level alerted before (0: a forecast only).
    level: int
    levels: tuple[int, ...]
    levels_from: str
    forecast: Forecast | None = None
    #: recovered: why ("the quota period reset", "back under 80%").
    reason: str | None = None
    #: recovered after a reset: the period the alerts belonged to.
    previous_period_start: date | None = None
    #: The route it is delivered on (:mod:`quota_monitor.alert.routes`); not part of :attr:`event_id`,
    #: since the same crossing is the same event whichever team it is sent to.
    route: str = DEFAULT_ROUTE
    #: :attr:`AlertState.episode` of the state it was decided from (or, for a threshold or forecast
    #: after a recovery in the same run, of the state it leads to).
    episode: int = 0

    @property
    def event_id(self) -> str:
        """Stable for the same event, so that consumers can drop a duplicate delivery; different for
        different events: ``<kind>:<plan>:<key>:<period start>:<level>``, and ``:<n>`` after it when
        the key crossed again after it came back under its levels ``n`` times in the period. A key of
        another account or region than the monitor's own has ``<account>:<region>:`` after the kind."""
        period = (self.previous_period_start or self.key.period_start).isoformat()
        episode = f":{self.episode}" if self.episode else ""
        key, target = self.key, self.key.target
        where = "" if target is None or target.home else f"{target.account_id}:{target.region}:"
        return f"{self.kind}:{where}{key.usage_plan_id}:{key.api_key_id}:{period}:{self.level}{episode}"


@dataclass(frozen=True)
class Decision:
    """The outcome of the rules for one key: the state to store, and what to say (if anything)."""

    pk: str
    key: KeyUsage
    read: AlertState
    new: AlertState
    notification: Notification | None


def evaluate(
    key: KeyUsage,
    policy: AlertPolicy,
    state: AlertState | None,
    *,
    now: datetime,
    settings: AlertSettings,
) -> Decision | None:
    """Apply the crossing rules (module doc) to one key; None when nothing changes."""
    if key.limit is None or key.remaining is None or policy.muted:
        return None
    read = state or AlertState()
    base = read

    def note(kind: NotificationKind, level: int, episode: int, **details: Any) -> Notification:
        return Notification(
            kind,
            key,
            level=level,
            levels=policy.levels,
            levels_from=policy.levels_from,
            episode=episode,
            **details,
        )

    recovery: Notification | None = None
    alerted_before = read.level > 0 or read.forecast_sent
    new_period = read.period_start != key.period_start
    if new_period and key.period_reset is not False:
        base = replace(read, period_start=key.period_start, level=0, forecast_sent=False, episode=0)
        if alerted_before and read.period_start is not None:
            recovery = note(
                "recovered",
                read.level,
                read.episode,
                reason="the quota period reset",
                previous_period_start=read.period_start,
            )
    elif key.in_usage_data and read.level > 0 and level_reached(key, policy.levels[:1]) == 0:
        base = replace(
            read, period_start=key.period_start, level=0, forecast_sent=False, episode=read.episode + 1
        )
        recovery = note("recovered", read.level, read.episode, reason=f"back under {policy.levels[0]}%")
    elif (
        key.in_usage_data
        and read.forecast_sent
        and read.level == 0
        and (key.utilization or 0.0) < settings.forecast.min_utilization_percent
    ):
        base = replace(read, period_start=key.period_start, forecast_sent=False, episode=read.episode + 1)

    projection = project(key, now, settings.forecast)
    target = level_reached(key, policy.levels)
    notification: Notification | None = None
    new = base
    if target > base.level:
        notification = note("threshold", target, base.episode, forecast=projection)
        new = replace(base, level=target, forecast_sent=base.forecast_sent or projection is not None)
    elif projection is not None and not base.forecast_sent:
        notification = note("forecast", target, base.episode, forecast=projection)
        new = replace(base, forecast_sent=True)
    elif recovery is not None and settings.recovery:
        notification = recovery

    if notification is None and new.same_alerts(read):
        # Nothing to say and nothing that matters to store (a reset of a never-alerted key).
        return None
    return Decision(
        pk=state_key(key.usage_plan_id, key.api_key_id, key.target),
        key=key,
        read=read,
        new=new,
        notification=notification,
    )
