"""One fast run: the hot plans of the full scan's watch lists, read every minute, alerted at once.

The full scan (:mod:`quota_monitor.monitor`) reads every plan every interval and leaves, for each
account and region, a watch list of the keys that may cross a level before its next run
(:mod:`quota_monitor.alert.watch`). A fast run, every ``FAST_SCHEDULE_MINUTES``:

1. takes the lease (:mod:`quota_monitor.alert.watch_store`) until its own end: a run that finds it
   held (the previous run still going, or the same run delivered twice) ends at once;
2. reads every target's watch list (one BatchGetItem); a list that is missing (no full scan since
   the fast path was turned on) or stale (the full scan has stopped) is skipped and said so;
3. reads the watched keys of every target at once, the most urgent plan first, in the fewest calls
   (:func:`quota_monitor.read.scan.scan_watched`), every call inside the API budget it shares with
   the full scan (:mod:`quota_monitor.read.budget`; no slot, no call). Near its deadline it starts no
   more calls: the plans not reached are left to the next run (``plansSkipped``), not failures;
4. keeps the keys whose rules, applied to what it read against what the full scan saw of them
   (:func:`quota_monitor.alert.watch.seen_state`), say something; the others are done with, and
   their alert state is not even read;
5. runs the full scan's alert step (:func:`quota_monitor.alert.run.run_alerts`) on those keys
   alone, their state read key by key: the same claims, events, messages and confirmations, so that
   a crossing either path sees first is alerted once, and two runs of either path never double it;
6. publishes only the health counts that are not zero (``ScanErrors``, ``ApiThrottles``,
   ``AlertsSent``, ``AlertDeliveryFailures``, ``AlertStateErrors``), one PutMetricData request, and
   none in a quiet run: the alarms see a fast run's failures, and the bill does not grow by a
   request a minute;
7. gives the lease back.

A plan the fast run could not read is named in its log and read again by the next fast run and the
next full scan. Nothing here writes records or per-key metrics: those are the full scan's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.alert.rules import evaluate, state_key
from quota_monitor.alert.run import run_alerts
from quota_monitor.alert.thresholds import policy_for
from quota_monitor.alert.watch import seen_state
from quota_monitor.errors import describe, describe_error, is_configuration_error
from quota_monitor.models import ScanFailure, ScanResult, ScanStats
from quota_monitor.publish.metrics import fast_health_metric_data, publish
from quota_monitor.publish.snapshots import SnapshotStore, SnapshotsWritten, fast_run_writes
from quota_monitor.read.guarded import finish_budget, guarded_api
from quota_monitor.read.scan import WatchedRead, scan_watched
from quota_monitor.read.targets import MAX_TARGETS_AT_ONCE

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from mypy_boto3_cloudwatch import CloudWatchClient

    from quota_monitor.alert.state import AlertStateStore
    from quota_monitor.alert.watch import WatchList
    from quota_monitor.alert.watch_store import StoredList, WatchStore
    from quota_monitor.config import AlertSettings, Settings
    from quota_monitor.deliver.messages import AlertMessage
    from quota_monitor.invocation import Invocation
    from quota_monitor.models import AlertReport, Target
    from quota_monitor.monitor import AlertClients
    from quota_monitor.publish.metrics import PublishReport
    from quota_monitor.read.budget import SharedBudget
    from quota_monitor.read.targets import TargetAccess

#: The cause a plan not read for lack of time carries (quota_monitor.errors.describe_error).
SKIPPED = "Skipped"


@dataclass(frozen=True)
class FastTarget:
    """One target's part of a fast run."""

    target: Target
    #: What the watched keys read as (plans: the watched ones); None when nothing was read.
    result: ScanResult | None = None
    #: Why its list was not used (missing, stale, unreadable), if it was not.
    list_problem: str | None = None
    #: The keys of ``result`` the rules had something for, against what the full scan saw (step 4).
    chosen: ScanResult | None = None

    @property
    def candidates(self) -> int:
        return len(self.chosen.keys) if self.chosen is not None else 0

    @property
    def failures(self) -> tuple[ScanFailure, ...]:
        """Failures, apart from the plans left for lack of time."""
        return tuple(f for f in self.result.failures if f.cause != SKIPPED) if self.result else ()

    @property
    def skipped(self) -> int:
        """Plans with keys left unread for lack of time (a plan read key by key counts once)."""
        if self.result is None:
            return 0
        return len({f.usage_plan_id for f in self.result.failures if f.cause == SKIPPED})


@dataclass(frozen=True)
class FastReport:
    """What a fast run did: the run summary, the health counts, and what the handler logs."""

    lease_held: bool = False
    targets: tuple[FastTarget, ...] = ()
    alerts: AlertReport | None = None
    published: PublishReport | None = None
    #: Why the health counts could not be published, if they could not.
    publish_error: str | None = None
    #: Why the lease could not be given back (it then runs out at the run's end), if it could not.
    lease_error: str | None = None
    duration_seconds: float = 0.0
    #: The key snapshots this run wrote (with ``KEY_SNAPSHOTS`` on).
    snapshots: SnapshotsWritten | None = None

    @property
    def failures(self) -> tuple[ScanFailure, ...]:
        return tuple(f for part in self.targets for f in part.failures)

    def combined(self, now: datetime) -> ScanResult:
        """Every target's read as one, for the health counts (no plan, key or name)."""
        results = [part.result for part in self.targets if part.result is not None]
        return ScanResult(now, (), (), self.failures, ScanStats.total(r.stats for r in results))

    def summary(self) -> dict[str, Any]:
        """The one summary line a fast run logs, and what its handler returns."""
        if self.lease_held:
            return {"path": "fast", "leaseHeld": True}
        results = [part.result for part in self.targets if part.result is not None]
        return {
            "path": "fast",
            "leaseHeld": False,
            "targets": len(self.targets),
            "listsUnused": sum(1 for part in self.targets if part.list_problem is not None),
            "plansRead": sum(r.stats.plans_scanned for r in results),
            "plansSkipped": sum(part.skipped for part in self.targets),
            "keysRead": sum(r.stats.keys_scanned for r in results),
            "apiCalls": sum(r.stats.api_calls for r in results),
            "throttles": sum(r.stats.throttles for r in results),
            "scanErrors": len(self.failures),
            "candidates": sum(part.candidates for part in self.targets),
            "durationSeconds": round(self.duration_seconds, 3),
            "metricRequests": self.published.requests if self.published else 0,
            **(self.alerts.summary() if self.alerts is not None else {}),
            **(self.snapshots.summary() if self.snapshots is not None else {}),
        }


def fast_candidates(
    result: ScanResult, watch: WatchList, settings: AlertSettings, *, now: datetime
) -> ScanResult:
    """The keys of ``result`` whose rules say something against what the full scan saw of them
    (step 4), and those the full scan left unsettled (``WatchedKey.unsettled``: their state is read
    whatever they show): any other key is where the full scan left it, and needs no state read."""
    seen = {(plan.id, key.id): seen_state(plan, key) for plan in watch.plans for key in plan.keys}
    owed = {(plan.id, key.id) for plan in watch.plans for key in plan.keys if key.unsettled}
    plans = {plan.id: plan for plan in result.plans}
    kept = []
    for key in result.keys:
        plan = plans.get(key.usage_plan_id)
        state = seen.get((key.usage_plan_id, key.api_key_id))
        if plan is None or state is None:
            continue
        policy = policy_for(plan, result.api_keys.get(key.api_key_id), settings.levels)
        if (key.usage_plan_id, key.api_key_id) in owed or (
            evaluate(key, policy, state, now=now, settings=settings) is not None
        ):
            kept.append(key)
    return replace(result, keys=tuple(kept))


def _reads(watch: WatchList, target: Target) -> list[WatchedRead]:
    return [
        WatchedRead(plan.usage_plan(target), tuple(key.api_key() for key in plan.keys), plan.pages)
        for plan in watch.plans
    ]


def read_targets(
    settings: Settings,
    accesses: Sequence[TargetAccess],
    lists: Sequence[StoredList],
    run: Invocation,
    *,
    budget: Callable[[Target], SharedBudget],
) -> list[FastTarget]:
    """Step 3 for every target with a usable list, all at once; then step 4."""
    by_target = {access.target: access for access in accesses}
    reading = sum(1 for stored in lists if stored.watch is not None and stored.watch.plans)
    scan_settings = settings.scan.per_target(reading)
    alerts = settings.alerts
    assert alerts is not None  # the fast path needs alerts (config.Settings)

    def one(stored: StoredList) -> FastTarget:
        target, watch = stored.target, stored.watch
        if watch is None:
            return FastTarget(target, list_problem=stored.problem)
        if not watch.plans:
            return FastTarget(target)
        access = by_target[target]
        try:
            clients = access.connect()
            with closing(clients.apigateway):  # its connections now, not at the run's end (monitor.py)
                api = guarded_api(
                    clients.apigateway, scan_settings, run, budget=budget(target), budget_calls=watch.calls()
                )
                try:
                    result = scan_watched(
                        api,
                        _reads(watch, target),
                        now=run.now,
                        settings=scan_settings,
                        target=target,
                        clock=run.clocks.monotonic,
                        wall=run.clocks.wall,
                    )
                finally:
                    finish_budget(api)
        except (ClientError, BotoCoreError) as error:
            cause, message = describe_error(error)
            if is_configuration_error(error) and target.home:
                raise
            failure = ScanFailure("target", None, None, cause, message, target=target)
            return FastTarget(target, ScanResult(run.now, (), (), (failure,), ScanStats(), target=target))
        return FastTarget(target, result, chosen=fast_candidates(result, watch, alerts, now=run.now))

    if not lists:
        return []
    with ThreadPoolExecutor(max_workers=min(len(lists), MAX_TARGETS_AT_ONCE)) as pool:
        return list(pool.map(one, lists))


def run_fast(
    settings: Settings,
    accesses: Sequence[TargetAccess],
    run: Invocation,
    *,
    store: WatchStore,
    states: AlertStateStore,
    alert_clients: AlertClients,
    budget: Callable[[Target], SharedBudget],
    health_cloudwatch: Callable[[], CloudWatchClient],
    on_alert: Callable[[AlertMessage], None] | None = None,
    snapshots: SnapshotStore | None = None,
) -> FastReport:
    """One fast run (module doc). DynamoDB failing for the lease or the lists raises (nothing can be
    done safely without them); everything after is reported, not raised. With ``snapshots``, the
    keys it read are kept for the quota endpoint (:meth:`SnapshotStore.put_fast`)."""
    alerts = settings.alerts
    if alerts is None:
        raise ValueError("the fast path needs alerts: ALERT_TOPIC_ARN and ALERT_TABLE_NAME")
    started = run.clocks.monotonic()
    with store.lease(until=run.ends_at, now=run.now) as lease:
        if not lease.held:
            return FastReport(lease_held=True)
        lists = store.get([access.target for access in accesses], now=run.now)
        parts = read_targets(settings, accesses, lists, run, budget=budget)
        fast = alert_watched(
            parts, alerts, run, states=states, alert_clients=alert_clients, on_alert=on_alert
        )
        if snapshots is not None and fast_run_writes(run.now, settings.fast.minutes):
            fast = replace(fast, snapshots=_snapshots(snapshots, parts, now=run.now))
    data = fast_health_metric_data(fast.combined(run.now), run.now, fast.alerts)
    published = publish(health_cloudwatch(), settings.namespace, data) if data else None
    return replace(
        fast,
        published=published,
        publish_error=None if published is None or published.complete else published.describe_failure(),
        lease_error=lease.error,
        duration_seconds=run.clocks.monotonic() - started,
    )


def _snapshots(store: SnapshotStore, parts: Sequence[FastTarget], *, now: datetime) -> SnapshotsWritten:
    written = SnapshotsWritten()
    for part in parts:
        if part.result is None or not part.result.keys:
            continue
        try:
            written += store.put_fast(part.target, part.result.keys, now=now)
        except (ClientError, BotoCoreError, ValueError, RuntimeError) as error:
            problem = f"key snapshots of {part.target.describe()}: {describe(error)}"
            written += SnapshotsWritten(errors=(problem,))
    return written


def alert_watched(
    parts: Sequence[FastTarget],
    alerts: AlertSettings,
    run: Invocation,
    *,
    states: AlertStateStore,
    alert_clients: AlertClients,
    on_alert: Callable[[AlertMessage], None] | None = None,
) -> FastReport:
    """Step 5: the full scan's alert step over the candidates of what :func:`read_targets` read."""
    chosen = [part.chosen for part in parts if part.chosen is not None and part.chosen.keys]
    if not chosen:
        return FastReport(targets=tuple(parts))
    report = run_alerts(
        chosen,
        alerts,
        store=states,
        sns=alert_clients.sns,
        now=run.now,
        claim_until=run.ends_at,
        region=alert_clients.region,
        events=alert_clients.events,
        on_message=on_alert,
        out_of_time=run.alerts_over,
        state_keys=[state_key(k.usage_plan_id, k.api_key_id, k.target) for r in chosen for k in r.keys],
    )
    # Bad tags are the full scan's to report (every interval, not every minute).
    return FastReport(targets=tuple(parts), alerts=replace(report, tag_problems=()))
