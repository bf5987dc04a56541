"""The plain data a scan passes along: read API Gateway, compute usage per key, publish.

Nothing here holds an API key's value: keys are known by id and name only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

PeriodType = Literal["DAY", "WEEK", "MONTH"]
#: The alert state table's items that are not a key's alert state start with this (the API budget,
#: the fast path's watch lists and lease): plan ids and account ids never do.
RESERVED_PREFIX = "~"
PERIOD_TYPES: tuple[PeriodType, ...] = ("DAY", "WEEK", "MONTH")


@dataclass(frozen=True, slots=True)
class Quota:
    """A usage plan's quota. ``offset`` is a number of requests taken off the first period only."""

    limit: int
    period: PeriodType
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Target:
    """One account and region the monitor reads (usage plans and keys belong to one of each).

    ``role_arn``: the role the monitor assumes to read another account; None for its own.
    ``home``: the monitor's own account in its own region. Its keys are named by plan and key id
    alone (the alert state's keys, the events' ids); every other target's are qualified by account
    and region, so that equal plan or key ids never collide.
    """

    #: None when nobody could say (the CLI asks STS whose its credentials are, and may not get an answer).
    account_id: str | None
    region: str
    role_arn: str | None = None
    home: bool = True

    def describe(self) -> str:
        return f"account {self.account_id or 'unknown'}, {self.region}"


@dataclass(frozen=True, slots=True)
class ApiStage:
    """A stage of a REST API that a usage plan covers: its keys are metered on it."""

    api_id: str
    stage: str


@dataclass(frozen=True, slots=True)
class UsagePlan:
    id: str
    name: str
    quota: Quota | None
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    #: Where the plan is; None when nobody said (a plan built by hand).
    target: Target | None = None
    api_stages: tuple[ApiStage, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the monitor knows it: never its value."""

    id: str
    name: str | None
    enabled: bool = True
    tags: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class QuotaPeriod:
    """The quota period that contains a given day, in UTC."""

    period: PeriodType
    start: date
    next_start: date

    @property
    def resets_at(self) -> datetime:
        return datetime(self.next_start.year, self.next_start.month, self.next_start.day, tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.next_start - self.start).days


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """One day of GetUsage: requests used that day, and what was left of the period after it."""

    used: int
    remaining: int | None


@dataclass(frozen=True, slots=True)
class ReadSpan:
    """When GetUsage was read for a key: from the first request of the read to its last answer.

    API Gateway's answer reflects the key's usage at some moment in between (and lags real traffic
    itself: docs/aws-behaviour.md#getusage-and-its-paginator), so of two readings only one that
    began after the other ended is known to be newer (:meth:`after`); two that overlap, or touch,
    are not ordered.
    """

    started: datetime
    ended: datetime

    def after(self, ended: datetime | None) -> bool:
        """Whether this reading began after a reading that ended at ``ended`` (None: no reading)."""
        return ended is None or self.started > ended


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """Where one API key stands against its plan's quota in the current period."""

    usage_plan_id: str
    usage_plan_name: str
    api_key_id: str
    api_key_name: str | None
    period: PeriodType
    period_start: date
    resets_at: datetime
    used: int
    remaining: int | None
    limit: int | None
    utilization: float | None
    #: False when AWS left the key out of the usage data and the plan-key cross-check added it as unused.
    in_usage_data: bool = True
    #: What the key's own data says about AWS's counter at ``period_start`` (the assumed start):
    #: True, it reset there; False, it ran on from the day before (the assumption is wrong for this
    #: key's plan); None, the data cannot tell (an idle key, an extension that day, a first period).
    period_reset: bool | None = None
    #: Where the key is (its plan's target).
    target: Target | None = None
    #: Requests used today (UTC), the latest day of the data: how fast the key goes now, for the
    #: fast path's watch list (:mod:`quota_monitor.alert.watch`). None when not known.
    used_today: int | None = None
    #: When its numbers were read (:class:`ReadSpan`); None for a key built by hand.
    read: ReadSpan | None = None

    def as_json(self) -> dict[str, object]:
        """The CLI's JSON contract: exactly these fields (``accountId`` and ``region`` say where the
        key is; null only for a key built by hand)."""
        return {
            "usagePlanId": self.usage_plan_id,
            "usagePlanName": self.usage_plan_name,
            "apiKeyId": self.api_key_id,
            "apiKeyName": self.api_key_name,
            "period": self.period,
            "periodStart": self.period_start.isoformat(),
            "used": self.used,
            "remaining": self.remaining,
            "limit": self.limit,
            "utilization": self.utilization,
            "accountId": self.target.account_id if self.target else None,
            "region": self.target.region if self.target else None,
        }


@dataclass(frozen=True)
class ScanFailure:
    """Something the scan could not read: a usage plan, one key of a plan (``api-key``, with the plan's
    id in ``usage_plan_id``), an account-wide listing, or a whole target (its role could not be
    assumed, its region is not enabled...)."""

    resource: Literal["usage-plan", "api-key", "api-keys", "usage-plans", "target"]
    resource_id: str | None
    name: str | None
    cause: str
    message: str
    #: The usage plan concerned: the plan itself, or the plan of the key (None for the listings).
    usage_plan_id: str | None = None
    #: The account and region it belongs to, when the scan knew.
    target: Target | None = None

    def describe(self, *, with_target: bool = False) -> str:
        """``usage-plan abc123 (gold): Cause: message``; ``with_target`` (several targets) puts the
        account and region first. A whole target's failure always names them."""
        if self.resource == "target" and self.target is not None:
            return f"{self.target.describe()}: {self.cause}: {self.message}"
        what = self.resource if self.resource_id is None else f"{self.resource} {self.resource_id}"
        if self.name:
            what += f" ({self.name})"
        if self.resource == "api-key" and self.usage_plan_id is not None:
            what += f" in usage plan {self.usage_plan_id}"
        if with_target and self.target is not None:
            what = f"{self.target.describe()}: {what}"
        return f"{what}: {self.cause}: {self.message}"


@dataclass(frozen=True)
class PeriodMismatch:
    """Keys of a plan whose counter did not reset at the assumed start of their quota period."""

    usage_plan_id: str
    usage_plan_name: str
    period: PeriodType
    assumed_start: date
    keys: int

    def describe(self) -> str:
        hint = (
            ": set WEEK_START_DAY to the day this account's WEEK quotas reset"
            if self.period == "WEEK"
            else ": days and months are assumed to be UTC's"
        )
        return (
            f"usage plan {self.usage_plan_id} ({self.usage_plan_name}): the {self.period} quota of "
            f"{self.keys} key(s) did not reset on {self.assumed_start.isoformat()}, the assumed start of "
            f"the period{hint}. Alerts are not repeated; used and the reset time may be off."
        )


@dataclass
class ScanStats:
    plans_scanned: int = 0
    keys_scanned: int = 0
    usage_pages: int = 0
    api_calls: int = 0
    throttles: int = 0
    duration_seconds: float = 0.0

    @classmethod
    def total(cls, stats: Iterable[ScanStats]) -> ScanStats:
        """Scans made at the same time, as one: the counts added up, the longest duration."""
        parts = list(stats)
        return cls(
            plans_scanned=sum(s.plans_scanned for s in parts),
            keys_scanned=sum(s.keys_scanned for s in parts),
            usage_pages=sum(s.usage_pages for s in parts),
            api_calls=sum(s.api_calls for s in parts),
            throttles=sum(s.throttles for s in parts),
            duration_seconds=max((s.duration_seconds for s in parts), default=0.0),
        )


@dataclass(frozen=True)
class ScanResult:
    scanned_at: datetime
    plans: tuple[UsagePlan, ...]
    keys: tuple[KeyUsage, ...]
    failures: tuple[ScanFailure, ...]
    stats: ScanStats
    api_keys: dict[str, ApiKey] = field(default_factory=dict, hash=False)
    #: Plans whose keys' data contradicts the assumed start of their period (models.KeyUsage.period_reset).
    period_mismatches: tuple[PeriodMismatch, ...] = ()
    #: The account and region scanned, when the scan knew.
    target: Target | None = None

    @property
    def complete(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class TagProblem:
    """A tag that could not be used; the warning names the resource, the tag and the value."""

    resource: Literal["usage plan", "API key"]
    resource_id: str
    tag: str
    value: str
    reason: str
    #: What applies instead.
    fallback: str = "the next level of configuration applies"

    def describe(self) -> str:
        return (
            f"{self.resource} {self.resource_id}: tag {self.tag}={self.value!r} ignored ({self.reason}); "
            f"{self.fallback}"
        )


@dataclass(frozen=True)
class EventEntry:
    """One EventBridge event as PutEvents takes it (:mod:`quota_monitor.deliver.events`), kept as
    built, so that an event sent again (after a failed attempt) is the same event."""

    #: The detail's ``id``: the same for the same event (``Notification.event_id``).
    id: str
    detail_type: str
    #: The detail, as the JSON text PutEvents sends.
    detail: str
    resources: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """The entry's size as EventBridge counts it (docs/aws-behaviour.md#eventbridge), without
        ``Source`` and ``Time``, which the sender adds."""
        return (
            len(self.detail_type.encode())
            + len(self.detail.encode())
            + sum(len(r.encode()) for r in self.resources)
        )


@dataclass(frozen=True)
class AlertReport:
    """What a run's alerting did, for the summary log line and the health metrics."""

    evaluated: int = 0
    notifications: int = 0
    messages_sent: int = 0
    alerts_sent: int = 0
    delivery_failures: int = 0
    #: Keys another run held or changed since this one read them.
    skipped: int = 0
    #: Keys not evaluated because the scan did not get their tags.
    unevaluated: int = 0
    state_errors: tuple[str, ...] = ()
    #: Deliveries that went out but whose confirmation failed (a later run may send them again).
    unconfirmed: int = 0
    #: Notifications left to the next run because this one was running out of time: claims
    #: released, nothing sent (:func:`quota_monitor.alert.run.run_alerts`).
    deferred: int = 0
    tag_problems: tuple[TagProblem, ...] = ()
    publish_errors: tuple[str, ...] = ()
    #: EventBridge (``EVENT_BUS_NAME``): whether events are on, the events that went out and those
    #: that failed (after the run's retries; kept for the next run), and those still owed after it.
    events_enabled: bool = False
    events_sent: int = 0
    event_failures: int = 0
    events_owed: int = 0
    event_errors: tuple[str, ...] = ()
    #: State keys (``alert.rules.state_key``) with a notification this run did not deliver: claimed
    #: by another run, deferred, refused by SNS, or their state unreadable. The watch list keeps them
    #: (:func:`quota_monitor.alert.watch.choose_watched`), so that the fast path delivers them if the
    #: other run does not, even when they are at their highest level.
    unsettled: frozenset[str] = frozenset()
    #: The alert state could not be read at all: nothing was evaluated, and every key at a level is
    #: taken as unsettled by the watch list (``choose_watched(state_unread=)``).
    state_unread: bool = False
    #: State keys whose alert state another run set, in the current period, from a reading newer than
    #: this run's: (level, forecast sent) as it stands. The watch list takes it over this run's own
    #: older reading (``choose_watched(newer=)``).
    newer: Mapping[str, tuple[int, bool]] = field(default_factory=dict, hash=False)

    @property
    def all_delivery_failures(self) -> int:
        """What the ``AlertDeliveryFailures`` metric counts: alerts SNS did not take, events
        EventBridge did not take, and alerts deferred by a run out of time. Either way the next run
        delivers them; a run that defers every time (too long for its timeout) reaches the alarm."""
        return self.delivery_failures + self.event_failures + self.deferred

    def summary(self) -> dict[str, int]:
        summary = {
            "alertsEvaluated": self.evaluated,
            "alertsSent": self.alerts_sent,
            "alertMessages": self.messages_sent,
            "alertDeliveryFailures": self.delivery_failures,
            "alertsSkipped": self.skipped,
            "alertsNotEvaluated": self.unevaluated,
            "alertsDeferred": self.deferred,
            "alertStateErrors": len(self.state_errors),
        }
        if self.events_enabled:
            summary |= {
                "eventsSent": self.events_sent,
                "eventDeliveryFailures": self.event_failures,
                "eventsOwed": self.events_owed,
            }
        return summary
