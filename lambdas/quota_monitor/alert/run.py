"""One run's alerts: rules over every scanned key, claims, one publish per message, confirm or release.

The order (see :mod:`quota_monitor.alert.state` for why it is safe twice):

1. Load every state item (one consistent Scan).
2. For each key the scan read, resolve its levels (tags, :mod:`quota_monitor.alert.thresholds`),
   apply the crossing rules (:mod:`quota_monitor.alert.rules`) and choose its route
   (:mod:`quota_monitor.alert.routes`). Keys of plans the scan could not read are not evaluated at
   all: no data is not a recovery.
3. Claim every key with something to say; keys another run holds or changed are left to it.
4. Compose the messages route by route (one each, or a digest of the route's notifications) and
   publish each to its route's topic. A message that went out confirms its keys' new state; a
   message that failed releases them, so the next run sends again.
5. Store changes with nothing to say (resets with recovery notifications off).

Each step returns what it found; :func:`run_alerts` adds it up into one :class:`AlertReport`.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.alert.routes import DEFAULT_ROUTE, route_for
from quota_monitor.alert.rules import evaluate, state_key
from quota_monitor.alert.thresholds import policy_for
from quota_monitor.deliver.messages import compose
from quota_monitor.deliver.sns import publish
from quota_monitor.errors import describe
from quota_monitor.models import AlertReport

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from mypy_boto3_sns import SNSClient

    from quota_monitor.alert.rules import Decision, Notification
    from quota_monitor.alert.state import AlertStateStore, StoredStates
    from quota_monitor.config import AlertSettings
    from quota_monitor.deliver.messages import AlertMessage
    from quota_monitor.models import ScanResult, TagProblem

#: DynamoDB writes in flight at once (claims and confirms are one small write per key).
STATE_WORKERS = 8


@dataclass(frozen=True)
class Decisions:
    """Step 2's outcome: what to do for each key, the tags that could not be used, and how many keys
    were left unevaluated."""

    decisions: tuple[Decision, ...]
    tag_problems: tuple[TagProblem, ...]
    #: Keys whose own record (their tags) the scan did not get (:func:`decide`).
    unevaluated: int


def decide(result: ScanResult, settings: AlertSettings, stored: StoredStates, now: datetime) -> Decisions:
    """Step 2: the decisions for every key the scan read.

    A key whose own record (its tags) the scan did not get is not evaluated this run: the
    GetApiKeys listing failed (a ``ScanErrors`` failure of its own), or the key was created after
    it. Its tags may mute it or set other levels; evaluating it with its plan's would alert a muted
    key, or reset an alerted one and alert it again once the tags are back. A key whose state item
    did not parse is left alone (its claim would fail anyway).

    Each notification carries its route. A bad route tag is reported once per resource, like a
    bad level tag, whether or not the key has something to say this run.
    """
    plans = {plan.id: plan for plan in result.plans}
    problems: dict[tuple[str, str], TagProblem] = {}
    decisions: list[Decision] = []
    unevaluated = 0
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
        pk = state_key(key.usage_plan_id, key.api_key_id)
        if pk in stored.unreadable:
            continue
        decision = evaluate(key, policy, stored.states.get(pk), now=now, settings=settings)
        if decision is None:
            continue
        if decision.notification is not None:
            decision = replace(decision, notification=replace(decision.notification, route=route.name))
        decisions.append(decision)
    return Decisions(tuple(decisions), tuple(problems.values()), unevaluated)


@dataclass(frozen=True)
class StateWrites:
    """The outcome of one state write per decision: True done, False refused by its condition (another
    run holds or changed the key), None failed (the error is in ``errors``)."""

    outcomes: tuple[bool | None, ...]
    errors: tuple[str, ...]

    def count(self, outcome: bool | None) -> int:
        return sum(1 for done in self.outcomes if done is outcome)


def run_alerts(
    result: ScanResult,
    settings: AlertSettings,
    *,
    store: AlertStateStore,
    sns: SNSClient,
    now: datetime,
    claim_until: datetime,
    region: str,
    token: str | None = None,
    on_message: Callable[[AlertMessage], None] | None = None,
) -> AlertReport:
    """Evaluate and deliver the alerts for one scan (module doc). AWS errors are reported, not raised."""
    token = token or uuid.uuid4().hex
    try:
        stored = store.load()
    except (ClientError, BotoCoreError) as error:
        return AlertReport(state_errors=(f"loading alert state from {store.table_name}: {describe(error)}",))
    decided = decide(result, settings, stored, now)
    state_errors = [f"state item {pk} unreadable: {why}" for pk, why in stored.unreadable.items()]
    loud = [decision for decision in decided.decisions if decision.notification is not None]
    quiet = [decision for decision in decided.decisions if decision.notification is None]

    claims = _each(lambda d: store.claim(d.pk, d.key, d.read, token=token, until=claim_until, now=now), loud)
    state_errors += claims.errors
    claimed = [decision for decision, done in zip(loud, claims.outcomes, strict=True) if done is True]
    skipped = claims.count(False)

    by_event = {d.notification.event_id: d for d in claimed if d.notification is not None}
    messages = compose_by_route(
        [d.notification for d in claimed if d.notification is not None], settings, region=region, now=now
    )
    messages_sent = alerts_sent = delivery_failures = unconfirmed = 0
    publish_errors: list[str] = []
    for route, message in messages:
        carried = [by_event[note.event_id] for note in message.notes]
        try:
            publish(sns, topic_of(route, settings), message)
        except (ClientError, BotoCoreError) as error:
            delivery_failures += len(carried)
            publish_errors.append(f"publishing {len(carried)} alert(s) to route {route}: {describe(error)}")
            releases = _each(lambda d: store.release(d.pk, token=token), carried)
            state_errors += releases.errors
            state_errors += ["a claim was lost before it could be released"] * releases.count(False)
            continue
        messages_sent += 1
        alerts_sent += len(carried)
        if on_message is not None:
            on_message(message)
        confirmations = _each(lambda d: store.confirm(d.pk, d.key, d.new, token=token, now=now), carried)
        state_errors += confirmations.errors
        unconfirmed += len(carried) - confirmations.count(True)

    writes = _each(lambda d: store.write(d.pk, d.key, d.read, d.new, now=now), quiet)
    state_errors += writes.errors
    skipped += writes.count(False)
    return AlertReport(
        evaluated=len(result.keys) - decided.unevaluated,
        notifications=len(loud),
        messages_sent=messages_sent,
        alerts_sent=alerts_sent,
        delivery_failures=delivery_failures,
        skipped=skipped,
        unevaluated=decided.unevaluated,
        state_errors=tuple(state_errors),
        unconfirmed=unconfirmed,
        tag_problems=decided.tag_problems,
        publish_errors=tuple(publish_errors),
    )


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


def _each(action: Callable[[Decision], bool], decisions: Iterable[Decision]) -> StateWrites:
    """Run one state write per decision, a few at a time."""
    items = list(decisions)
    if not items:
        return StateWrites((), ())
    errors: list[str] = []

    def attempt(decision: Decision) -> bool | None:
        try:
            return action(decision)
        except (ClientError, BotoCoreError) as error:
            errors.append(f"state item {decision.pk}: {describe(error)}")
            return None

    with ThreadPoolExecutor(max_workers=min(STATE_WORKERS, len(items))) as pool:
        outcomes = tuple(pool.map(attempt, items))
    return StateWrites(outcomes, tuple(errors))
