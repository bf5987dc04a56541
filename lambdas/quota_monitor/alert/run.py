"""One run's alerts: rules over every scanned key, claims, events and one publish per message, confirm
or release.

The order (see :mod:`quota_monitor.alert.state` for why it is safe twice):

1. Load every state item (one consistent Scan); the fast path loads only the keys it evaluates.
2. For each key the scan read, resolve its levels (tags, :mod:`quota_monitor.alert.thresholds`),
   apply the crossing rules (:mod:`quota_monitor.alert.rules`) and choose its route
   (:mod:`quota_monitor.alert.routes`). Keys of plans the scan could not read are not evaluated at
   all: no data is not a recovery.
3. Claim every key with something to deliver; keys another run holds or changed are left to it.
   With events on (``EVENT_BUS_NAME``), a key that owes events from an earlier run is claimed too,
   even with nothing new to say.
4. Events first: every claimed key's events (what it owes, and its notification's) on EventBridge,
   10 to a call (:mod:`quota_monitor.deliver.events`).
5. Compose the messages route by route (one each, or a digest of the route's notifications) and
   publish each to its route's topic. A message that went out confirms its keys' new state; a
   message that failed releases them, so the next run sends again. Either way each key's item
   records what EventBridge still owes it, or took ahead of SNS (:func:`channels_after`).
6. Store changes with nothing to say (resets with recovery notifications off).

Near the end of the invocation (``out_of_time``), nothing more is sent: before the claims, before
the events and before each SNS message, a run out of time releases what it has claimed and not
yet sent, and leaves it to the next run (``alertsDeferred``). A message published but never
confirmed, because the timeout cut the run off after it, would be sent again by the next run;
stopping early and releasing is how that is avoided.

Every step writes its items up to a hundred to a DynamoDB transaction, each under its own
condition (:meth:`~quota_monitor.alert.state.AlertStateStore.apply`; the sizes at 10,000 keys:
docs/benchmarks.md, "The alert step at 10,000 keys").

Each step returns what it found; :func:`run_alerts` adds it up into one :class:`AlertReport`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.alert.routes import DEFAULT_ROUTE, route_for
from quota_monitor.alert.rules import evaluate, state_key
from quota_monitor.alert.state import MAX_PENDING_BYTES, Channels
from quota_monitor.alert.thresholds import policy_for
from quota_monitor.deliver.events import EventsSent, TagsOf, build_entry, put_events
from quota_monitor.deliver.messages import compose
from quota_monitor.deliver.sns import publish
from quota_monitor.errors import describe
from quota_monitor.models import AlertReport, ScanResult

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Sequence
    from datetime import datetime

    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

    from quota_monitor.alert.rules import AlertState, Decision, Notification
    from quota_monitor.alert.state import AlertStateStore, StateWrite, StoredStates
    from quota_monitor.config import AlertSettings
    from quota_monitor.deliver.messages import AlertMessage
    from quota_monitor.models import EventEntry, TagProblem

#: DynamoDB transactions in flight at once (each up to 100 claims, confirms or releases:
#: :meth:`quota_monitor.alert.state.AlertStateStore.apply`).
STATE_WORKERS = 4


@dataclass(frozen=True)
class Decisions:
    """Step 2's outcome: what to do for each key, the tags that could not be used, and how many keys
    were left unevaluated."""

    decisions: tuple[Decision, ...]
    tag_problems: tuple[TagProblem, ...]
    #: Keys whose own record (their tags) the scan did not get (:func:`decide`).
    unevaluated: int
    #: Keys whose state another run set from a reading newer than this run's, by state key
    #: (:func:`decide`): (level, forecast sent) as it stands.
    newer: dict[str, tuple[int, bool]] = field(default_factory=dict)
    #: Of those, the keys this run's older reading would have changed: left alone.
    stale: int = 0


def decide(result: ScanResult, settings: AlertSettings, stored: StoredStates, now: datetime) -> Decisions:
    """Step 2: the decisions for every key the scan read.

    A key whose own record (its tags) the scan did not get is not evaluated this run: the
    GetApiKeys listing failed (a ``ScanErrors`` failure of its own), or the key was created after
    it. Its tags may mute it or set other levels; evaluating it with its plan's would alert a muted
    key, or reset an alerted one and alert it again once the tags are back. A key whose state item
    did not parse is left alone (its claim would fail anyway).

    Each notification carries its route. A bad route tag is reported once per resource, like a
    bad level tag, whether or not the key has something to say this run.

    A key whose state was set from a reading that this run's did not begin after (another run read
    it later: ``KeyUsage.read``, ``AlertState.read_at``) is left as that run left it: an older
    reading never recovers a key, lowers its level or alerts it again (the claim's condition says the
    same to DynamoDB, for a state changed after this load: ``AlertStateStore.claim_write``).
    """
    plans = {plan.id: plan for plan in result.plans}
    problems: dict[tuple[str, str], TagProblem] = {}
    decisions: list[Decision] = []
    newer: dict[str, tuple[int, bool]] = {}
    unevaluated = stale = 0
    for key in result.keys:
        plan = plans.get(key.usage_plan_id)
        api_key = result.api_keys.get(key.api_key_id)
        if plan is None or api_key is None:
            unevaluated += 1
            continue
        policy = policy_for(plan, api_key, settings.levels)
        route = route_for(plan, api_key, settings.routes, settings.topic_arn)
        for problem in (*policy.problems, *route.problems):
            problems.setdefault((problem.resource_id, problem.tag), problem)
        pk = state_key(key.usage_plan_id, key.api_key_id, key.target)
        if pk in stored.unreadable:
            continue
        state = stored.states.get(pk)
        decision = evaluate(key, policy, state, now=now, settings=settings)
        if state is not None and key.read is not None and not key.read.after(state.read_at):
            if state.period_start == key.period_start:
                newer[pk] = (state.level, state.forecast_sent)
            if decision is not None:
                stale += 1
            continue
        if decision is None:
            continue
        if decision.notification is not None:
            decision = replace(decision, notification=replace(decision.notification, route=route.name))
        decisions.append(decision)
    return Decisions(tuple(decisions), tuple(problems.values()), unevaluated, newer, stale)


@dataclass(frozen=True)
class Delivery:
    """One key this run delivers for, under its claim: a notification, the events it owes from
    earlier runs (``read.pending_events``, with events on), or both."""

    pk: str
    read: AlertState
    #: What the rules decided for it this run; None when it is claimed only for the events it owes.
    decision: Decision | None
    #: Its notification's event, unless EventBridge already took it (``read.event_sent``) or events are off.
    event: EventEntry | None = None

    @property
    def notification(self) -> Notification | None:
        return self.decision.notification if self.decision is not None else None

    @property
    def entries(self) -> tuple[EventEntry, ...]:
        """The events to put for it this run: what it owes first, then its notification's."""
        return (*self.read.pending_events, *((self.event,) if self.event is not None else ()))


def channels_after(delivery: Delivery, *, sent: frozenset[str], sns_ok: bool | None) -> Channels:
    """What the key owes and has delivered ahead of SNS once this run's deliveries are done
    (:mod:`quota_monitor.alert.state`): events EventBridge did not take stay owed when the state
    advances (SNS went out, or there was nothing for SNS); an event it took while SNS failed is
    remembered, so that the next run, deciding the same notification, sends only the email."""
    owed = tuple(entry for entry in delivery.read.pending_events if entry.id not in sent)
    event = delivery.event
    if delivery.notification is None:
        return Channels(owed, delivery.read.event_sent if delivery.decision is None else None)
    if sns_ok:
        return Channels(owed + ((event,) if event is not None and event.id not in sent else ()), None)
    taken = event is not None and event.id in sent
    return Channels(owed, event.id if taken and event is not None else delivery.read.event_sent)


def run_alerts(
    result: ScanResult | Sequence[ScanResult],
    settings: AlertSettings,
    *,
    store: AlertStateStore,
    sns: SNSClient,
    now: datetime,
    claim_until: datetime,
    region: str,
    events: EventBridgeClient | None = None,
    token: str | None = None,
    on_message: Callable[[AlertMessage], None] | None = None,
    out_of_time: Callable[[], bool] | None = None,
    state_keys: Collection[str] | None = None,
) -> AlertReport:
    """Evaluate and deliver the alerts for one scan, or for the scans of several targets together
    (module doc). AWS errors are reported, not raised.

    With ``settings.event_bus`` and an ``events`` client, every notification also goes to EventBridge
    as one event, under the same claim, before the SNS messages: a run that dies in between repeats
    an event (same ``id``, which consumers drop) rather than an email.

    ``state_keys``: read the state of these keys only (the fast path's few), not the whole table;
    ``result`` must then hold only those keys.
    """
    bus = settings.event_bus if events is not None else None
    try:
        stored = store.load() if state_keys is None else store.load_keys(state_keys)
    except (ClientError, BotoCoreError) as error:
        return AlertReport(
            state_errors=(f"loading alert state from {store.table_name}: {describe(error)}",),
            events_enabled=bus is not None,
            state_unread=True,
        )
    results = (result,) if isinstance(result, ScanResult) else tuple(result)
    parts = [decide(scan, settings, stored, now) for scan in results]
    decided = Decisions(
        tuple(decision for part in parts for decision in part.decisions),
        tuple(problem for part in parts for problem in part.tag_problems),
        sum(part.unevaluated for part in parts),
        {pk: seen for part in parts for pk, seen in part.newer.items()},
        sum(part.stale for part in parts),
    )
    deliveries, quiet = _deliveries(
        decided, stored, results, settings, region=region, now=now, events_on=bus is not None
    )
    run = _Delivering(
        store, token=token or uuid.uuid4().hex, now=now, bus=bus, out_of_time=out_of_time or _never
    )
    run.skipped += decided.stale
    run.state_errors += [f"state item {pk} unreadable: {why}" for pk, why in stored.unreadable.items()]
    run.unsettled.update(pk for pk in stored.unreadable)
    if run.out_of_time():
        run.deferred = sum(1 for d in deliveries if d.notification is not None)
        run.unsettled.update(d.pk for d in deliveries if d.notification is not None)
        if bus is not None:  # still owed, as the items say
            run.events_owed = sum(len(d.read.pending_events) for d in deliveries)
    else:
        claimed = run.claim(deliveries, until=claim_until)
        if bus is not None and events is not None and not run.out_of_time():
            run.put_events(events, bus, claimed)
        run.publish(sns, claimed, settings, region=region, on_message=on_message)
        run.settle_silent(claimed)
        if not run.out_of_time():
            run.write_quiet(quiet)
    return run.report(
        evaluated=sum(len(scan.keys) for scan in results) - decided.unevaluated,
        notifications=sum(1 for d in deliveries if d.notification is not None),
        unevaluated=decided.unevaluated,
        tag_problems=decided.tag_problems,
        newer=decided.newer,
    )


class _Delivering:
    """The delivery steps of one run (claim, events, messages, settle), and what they added up to."""

    def __init__(
        self,
        store: AlertStateStore,
        *,
        token: str,
        now: datetime,
        bus: str | None,
        out_of_time: Callable[[], bool],
    ) -> None:
        self.store, self.token, self.now, self.bus = store, token, now, bus
        self.out_of_time = out_of_time
        self.put = EventsSent()
        self.state_errors: list[str] = []
        self.publish_errors: list[str] = []
        self.event_errors: list[str] = []
        self.skipped = self.messages_sent = self.alerts_sent = self.delivery_failures = 0
        self.unconfirmed = self.events_owed = self.deferred = 0
        #: State keys whose notification this run did not deliver (AlertReport.unsettled).
        self.unsettled: set[str] = set()

    def claim(self, deliveries: list[Delivery], *, until: datetime) -> list[Delivery]:
        """Step 3: the deliveries this run won; keys another run holds or changed are left to it."""
        claims = self.store.apply(
            [
                self.store.claim_write(
                    d.pk,
                    d.decision.key if d.decision else None,
                    d.read,
                    token=self.token,
                    until=until,
                    now=self.now,
                )
                for d in deliveries
            ],
            workers=STATE_WORKERS,
        )
        self.state_errors += claims.errors
        self.skipped += claims.count(False)
        self.unsettled.update(
            d.pk
            for d, done in zip(deliveries, claims.outcomes, strict=True)
            if done is not True and d.notification is not None
        )
        return [delivery for delivery, done in zip(deliveries, claims.outcomes, strict=True) if done is True]

    def put_events(self, events: EventBridgeClient, bus: str, claimed: list[Delivery]) -> None:
        """EventBridge first: every claimed key's events, in as few calls as PutEvents allows."""
        entries = list({entry.id: entry for d in claimed for entry in d.entries}.values())
        if entries:
            self.put = put_events(events, bus, entries)
        self.event_errors += _event_errors(self.put)

    def publish(
        self,
        sns: SNSClient,
        claimed: list[Delivery],
        settings: AlertSettings,
        *,
        region: str,
        on_message: Callable[[AlertMessage], None] | None,
    ) -> None:
        """Step 4: each route's messages to its topic; each message's keys settled right after it.
        Out of time, the keys of the messages not yet sent are released instead, for the next run."""
        by_event = {d.notification.event_id: d for d in claimed if d.notification is not None}
        notes = [d.notification for d in claimed if d.notification is not None]
        messages = compose_by_route(notes, settings, region=region, now=self.now) if notes else []
        for index, (route, message) in enumerate(messages):
            if self.out_of_time():
                self.defer([by_event[note.event_id] for _, left in messages[index:] for note in left.notes])
                return
            carried = [by_event[note.event_id] for note in message.notes]
            try:
                publish(sns, topic_of(route, settings), message)
            except (ClientError, BotoCoreError) as error:
                self.delivery_failures += len(carried)
                self.unsettled.update(d.pk for d in carried)
                self.publish_errors.append(
                    f"publishing {len(carried)} alert(s) to route {route}: {describe(error)}"
                )
                releases = self.store.apply(
                    [self.settle(d, sns_ok=False) for d in carried], workers=STATE_WORKERS
                )
                self.state_errors += releases.errors
                self.state_errors += ["a claim was lost before it could be released"] * releases.count(False)
                continue
            self.messages_sent += 1
            self.alerts_sent += len(carried)
            if on_message is not None:
                on_message(message)
            confirmations = self.store.apply(
                [self.settle(d, sns_ok=True) for d in carried], workers=STATE_WORKERS
            )
            self.state_errors += confirmations.errors
            self.unconfirmed += len(carried) - confirmations.count(True)

    def defer(self, unsent: list[Delivery]) -> None:
        """Release the claims of notifications this run has no time left to send; what EventBridge
        took is remembered as after a failed publish (:func:`channels_after`)."""
        self.deferred += len(unsent)
        self.unsettled.update(d.pk for d in unsent)
        releases = self.store.apply([self.settle(d, sns_ok=False) for d in unsent], workers=STATE_WORKERS)
        self.state_errors += releases.errors
        self.state_errors += ["a claim was lost before it could be released"] * releases.count(False)

    def settle_silent(self, claimed: list[Delivery]) -> None:
        """The keys claimed for the events they owe alone (and, maybe, a quiet change of state)."""
        silent = [d for d in claimed if d.notification is None]
        settled = self.store.apply([self.settle(d, sns_ok=None) for d in silent], workers=STATE_WORKERS)
        self.state_errors += settled.errors
        self.unconfirmed += len(silent) - settled.count(True)

    def write_quiet(self, quiet: list[Decision]) -> None:
        """Step 5: changes with nothing to deliver."""
        writes = self.store.apply(
            [self.store.change_write(d.pk, d.key, d.read, d.new, now=self.now) for d in quiet],
            workers=STATE_WORKERS,
        )
        self.state_errors += writes.errors
        self.skipped += writes.count(False)

    def settle(self, delivery: Delivery, *, sns_ok: bool | None) -> StateWrite:
        """The confirmation (the state advances: SNS went out, or there was nothing for SNS) or the
        release (it does not); with events on, it stores what the key still owes (:func:`channels_after`)."""
        channels: Channels | None = None
        if self.bus is not None:
            channels, dropped = channels_after(delivery, sent=self.put.sent, sns_ok=sns_ok).bounded()
            self.events_owed += len(channels.pending_events)
            if dropped:
                self.event_errors.append(
                    f"{len(dropped)} undelivered event(s) of {delivery.pk} dropped, the oldest, such as "
                    f"{dropped[0].id}: more than {MAX_PENDING_BYTES:,} bytes of them were owed"
                )
        decision = delivery.decision
        if decision is not None and (sns_ok or delivery.notification is None):
            return self.store.confirm_write(
                delivery.pk, decision.key, decision.new, token=self.token, now=self.now, channels=channels
            )
        unchanged = channels is None or channels == Channels.of(delivery.read)
        return self.store.release_write(
            delivery.pk, token=self.token, channels=None if unchanged else channels
        )

    def report(
        self,
        *,
        evaluated: int,
        notifications: int,
        unevaluated: int,
        tag_problems: tuple[TagProblem, ...],
        newer: dict[str, tuple[int, bool]],
    ) -> AlertReport:
        return AlertReport(
            newer=newer,
            evaluated=evaluated,
            notifications=notifications,
            messages_sent=self.messages_sent,
            alerts_sent=self.alerts_sent,
            delivery_failures=self.delivery_failures,
            skipped=self.skipped,
            unevaluated=unevaluated,
            state_errors=tuple(self.state_errors),
            unconfirmed=self.unconfirmed,
            deferred=self.deferred,
            tag_problems=tag_problems,
            publish_errors=tuple(self.publish_errors),
            events_enabled=self.bus is not None,
            events_sent=len(self.put.sent),
            event_failures=len(self.put.failed),
            events_owed=self.events_owed,
            event_errors=tuple(self.event_errors),
            unsettled=frozenset(self.unsettled),
        )


def _deliveries(
    decided: Decisions,
    stored: StoredStates,
    results: Sequence[ScanResult],
    settings: AlertSettings,
    *,
    region: str,
    now: datetime,
    events_on: bool,
) -> tuple[list[Delivery], list[Decision]]:
    """(the keys to claim and deliver for, the changes to write with nothing to deliver).

    With events on, a key that owes events is claimed even when the rules have nothing new for it,
    and a quiet change of its state is stored under that claim."""
    owed = {pk: state for pk, state in stored.states.items() if state.pending_events} if events_on else {}
    # Plans and keys by target: equal ids in two targets are two plans, two keys.
    plans = {(plan.target, plan.id): plan for scan in results for plan in scan.plans}
    api_keys = {(scan.target, key_id): key for scan in results for key_id, key in scan.api_keys.items()}
    deliveries: list[Delivery] = []
    quiet: list[Decision] = []
    for decision in decided.decisions:
        note = decision.notification
        if note is None and decision.pk not in owed:
            quiet.append(decision)
            continue
        owed.pop(decision.pk, None)
        event = None
        if events_on and note is not None and note.event_id != decision.read.event_sent:
            where = note.key.target
            plan, api_key = (
                plans.get((where, note.key.usage_plan_id)),
                api_keys.get((where, note.key.api_key_id)),
            )
            tags = TagsOf(plan.tags if plan else {}, api_key.tags if api_key else {})
            event = build_entry(
                note,
                tags,
                region=region,
                partition=settings.partition,
                now=now,
                account_id=settings.account_id,
            )
        deliveries.append(Delivery(decision.pk, decision.read, decision, event))
    deliveries += [Delivery(pk, state, None) for pk, state in owed.items()]
    return deliveries, quiet


def _never() -> bool:
    return False


def _event_errors(put: EventsSent) -> list[str]:
    """One line per distinct reason, however many events it stopped (a bus refusing every event is
    one line, not one an event)."""
    by_reason: dict[str, list[str]] = {}
    for event_id, reason in put.failed.items():
        by_reason.setdefault(reason, []).append(event_id)
    return [
        f"{len(ids)} event(s) not taken by EventBridge, such as {ids[0]}: {reason}; the next run sends them"
        for reason, ids in by_reason.items()
    ]


def topic_of(route: str, settings: AlertSettings) -> str:
    """The SNS topic of a route (:mod:`quota_monitor.alert.routes` only ever names a configured one)."""
    return settings.topic_arn if route == DEFAULT_ROUTE else settings.routes[route]


def compose_by_route(
    notes: Iterable[Notification], settings: AlertSettings, *, region: str, now: datetime
) -> list[tuple[str, AlertMessage]]:
    """Each route's messages, built from its notifications alone: a digest is a route's digest, and
    ``DIGEST_MIN_ALERTS`` counts a route's notifications. The default route first, then by name."""
    by_route: dict[str, list[Notification]] = {}
    for note in notes:
        by_route.setdefault(note.route, []).append(note)
    order = sorted(by_route, key=lambda route: (route != DEFAULT_ROUTE, route))
    return [
        (route, message)
        for route in order
        for message in compose(by_route[route], digest_min=settings.digest_min_alerts, region=region, now=now)
    ]
