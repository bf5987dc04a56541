"""One run's alerts: rules over every scanned key, claims, one publish per message, confirm or release.

The order (see :mod:`quota_monitor.alert_state` for why it is safe twice):

1. Load every state item (one consistent Scan).
2. For each key the scan read, resolve its levels (tags, :mod:`quota_monitor.thresholds`) and apply
   the crossing rules (:mod:`quota_monitor.alerts`). Keys of plans the scan could not read are not
   evaluated at all: no data is not a recovery.
3. Claim every key with something to say; keys another run holds or changed are left to it.
4. Compose the messages (one each, or a digest) and publish them. A message that went out confirms
   its keys' new state; a message that failed releases them, so the next run sends again.
5. Store changes with nothing to say (resets with recovery notifications off).
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.alerts import evaluate, state_key
from quota_monitor.messages import compose
from quota_monitor.thresholds import TagProblem, policy_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from mypy_boto3_sns import SNSClient

    from quota_monitor.alert_state import AlertStateStore
    from quota_monitor.alerts import Decision
    from quota_monitor.config import AlertSettings
    from quota_monitor.messages import AlertMessage
    from quota_monitor.models import ScanResult

#: DynamoDB writes in flight at once (claims and confirms are one small write per key).
STATE_WORKERS = 8


@dataclass
class AlertReport:
    """What a run's alerting did, for the summary log line and the health metrics."""

    evaluated: int = 0
    notifications: int = 0
    messages_sent: int = 0
    alerts_sent: int = 0
    delivery_failures: int = 0
    #: Keys another run held or changed since this one read them.
    skipped: int = 0
    #: Keys not evaluated because the scan did not get their tags (decide).
    unevaluated: int = 0
    state_errors: list[str] = field(default_factory=list)
    #: Deliveries that went out but whose confirmation failed (a later run may send them again).
    unconfirmed: int = 0
    tag_problems: list[TagProblem] = field(default_factory=list)
    publish_errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "alertsEvaluated": self.evaluated,
            "alertsSent": self.alerts_sent,
            "alertMessages": self.messages_sent,
            "alertDeliveryFailures": self.delivery_failures,
            "alertsSkipped": self.skipped,
            "alertsNotEvaluated": self.unevaluated,
            "alertStateErrors": len(self.state_errors),
        }


def _describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'ClientError')}: {details.get('Message', error)}"
    return f"{type(error).__name__}: {error}"


def decide(
    result: ScanResult, settings: AlertSettings, store: AlertStateStore, now: datetime, report: AlertReport
) -> tuple[list[Decision], list[TagProblem]]:
    """Steps 1 and 2: the decisions for every key the scan read.

    A key whose own record (its tags) the scan did not get is not evaluated this run: the
    GetApiKeys listing failed (a ``ScanErrors`` failure of its own), or the key was created after
    it. Its tags may mute it or set other levels; evaluating it with its plan's would alert a muted
    key, or reset an alerted one and alert it again once the tags are back.
    """
    states = store.load()
    plans = {plan.id: plan for plan in result.plans}
    problems: dict[tuple[str, str], TagProblem] = {}
    decisions: list[Decision] = []
    for key in result.keys:
        plan = plans.get(key.usage_plan_id)
        api_key = result.api_keys.get(key.api_key_id)
        if plan is None or api_key is None:
            report.unevaluated += 1
            continue
        policy = policy_for(plan, api_key, settings.levels)
        for problem in policy.problems:
            problems.setdefault((problem.resource_id, problem.tag), problem)
        pk = state_key(key.usage_plan_id, key.api_key_id)
        if pk in store.unreadable:
            continue
        decision = evaluate(key, policy, states.get(pk), now=now, settings=settings)
        if decision is not None:
            decisions.append(decision)
    return decisions, list(problems.values())


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
    report = AlertReport()
    token = token or uuid.uuid4().hex
    try:
        decisions, report.tag_problems = decide(result, settings, store, now, report)
    except (ClientError, BotoCoreError) as error:
        report.state_errors.append(f"loading alert state from {store.table_name}: {_describe(error)}")
        return report
    report.state_errors += [f"state item {pk} unreadable: {why}" for pk, why in store.unreadable.items()]
    report.evaluated = len(result.keys) - report.unevaluated
    loud = [decision for decision in decisions if decision.notification is not None]
    quiet = [decision for decision in decisions if decision.notification is None]
    report.notifications = len(loud)

    def claim(decision: Decision) -> bool:
        return store.claim(decision.pk, decision.key, decision.read, token=token, until=claim_until, now=now)

    outcomes = _each(claim, loud, report)
    claimed = [decision for decision, ok in zip(loud, outcomes, strict=True) if ok is True]
    report.skipped += sum(1 for ok in outcomes if ok is False)

    by_event = {d.notification.event_id: d for d in claimed if d.notification is not None}
    messages = compose(
        [d.notification for d in claimed if d.notification is not None],
        digest_min=settings.digest_min_alerts,
        region=region,
        now=now,
    )
    for message in messages:
        carried = [by_event[note.event_id] for note in message.notes]
        try:
            sns.publish(
                TopicArn=settings.topic_arn,
                Subject=message.subject,
                Message=message.message,
                MessageStructure="json",
            )
        except (ClientError, BotoCoreError) as error:
            report.delivery_failures += len(carried)
            report.publish_errors.append(f"publishing {len(carried)} alert(s): {_describe(error)}")
            for ok in _each(lambda d: store.release(d.pk, token=token), carried, report):
                if ok is False:
                    report.state_errors.append("a claim was lost before it could be released")
            continue
        report.messages_sent += 1
        report.alerts_sent += len(carried)
        if on_message is not None:
            on_message(message)
        confirmations = _each(
            lambda d: store.confirm(d.pk, d.key, d.new, token=token, now=now), carried, report
        )
        report.unconfirmed += sum(1 for ok in confirmations if ok is not True)

    for ok in _each(lambda d: store.write(d.pk, d.key, d.read, d.new, now=now), quiet, report):
        if ok is False:
            report.skipped += 1
    return report


def _each(
    action: Callable[[Decision], bool], decisions: Iterable[Decision], report: AlertReport
) -> list[bool | None]:
    """Run one state write per decision, a few at a time; None where the write failed (recorded)."""
    items = list(decisions)
    if not items:
        return []

    def attempt(decision: Decision) -> bool | None:
        try:
            return action(decision)
        except (ClientError, BotoCoreError) as error:
            report.state_errors.append(f"state item {decision.pk}: {_describe(error)}")
            return None

    with ThreadPoolExecutor(max_workers=min(STATE_WORKERS, len(items))) as pool:
        return list(pool.map(attempt, items))
