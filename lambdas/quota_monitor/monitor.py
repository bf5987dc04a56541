"""One monitoring run: scan, evaluate alerts (when configured), publish metrics, then the records.

Shared by the Lambda handler and the CLI, so that both do exactly the same thing. A run reads one
target (an account and region) or several (:func:`run_targets`): each target is scanned at the same
time as the others, within its own API Gateway budget, and its metrics go to its own account and
region; the alerts, the records and the monitor's health metrics stay in the monitor's own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.alert.run import run_alerts
from quota_monitor.alert.state import AlertStateStore
from quota_monitor.alert.thresholds import key_levels
from quota_monitor.alert.watch import carry_over, choose_watched
from quota_monitor.errors import describe, describe_error, is_configuration_error
from quota_monitor.models import ScanFailure, ScanResult, ScanStats
from quota_monitor.publish.metrics import (
    AUTO_KEY_METRICS,
    PER_KEY_METRICS,
    PublishReport,
    health_metric_data,
    iter_metric_data,
    publish,
)
from quota_monitor.publish.records import record_lines
from quota_monitor.publish.selection import MetricKeys, choose_keys
from quota_monitor.publish.snapshots import SnapshotStore, SnapshotsWritten
from quota_monitor.read.guarded import finish_budget, guarded_api
from quota_monitor.read.scan import PlanScan, scan_account
from quota_monitor.read.targets import MAX_TARGETS_AT_ONCE, PUBLISH_AT_ONCE

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
    from datetime import datetime

    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

    from quota_monitor.alert.watch_store import WatchStore
    from quota_monitor.config import Settings
    from quota_monitor.deliver.messages import AlertMessage
    from quota_monitor.invocation import Invocation
    from quota_monitor.models import AlertReport, Target
    from quota_monitor.publish.records import RecordsWritten
    from quota_monitor.read.budget import SharedBudget
    from quota_monitor.read.calls import FailedAttempt
    from quota_monitor.read.targets import TargetAccess


@dataclass(frozen=True)
class AlertClients:
    """What alerting talks to: SNS for delivery, DynamoDB for state, EventBridge for events (with
    ``EVENT_BUS_NAME``), and the region for console links and ARNs."""

    sns: SNSClient
    dynamodb: DynamoDBClient
    region: str
    events: EventBridgeClient | None = None


@dataclass(frozen=True)
class RunReport:
    result: ScanResult
    published: PublishReport | None
    alerts: AlertReport | None = None
    #: Why the metrics could not be published (after botocore's retries), if they could not.
    publish_error: str | None = None
    #: The keys that got per-key metrics (``KEY_METRICS``), and how many more qualified.
    metric_keys: MetricKeys | None = None
    #: Each key's alert levels by (plan id, key id), as the selection and the records read them.
    key_levels: Mapping[tuple[str, str], tuple[int, ...]] | None = None

    def summary(self, records: RecordsWritten | None = None) -> dict[str, Any]:
        """The one summary line a run logs, and what the handler returns."""
        stats = self.result.stats
        chosen = self.metric_keys
        return {
            "plans": len(self.result.plans),
            "plansScanned": stats.plans_scanned,
            "keys": stats.keys_scanned,
            "pages": stats.usage_pages,
            "apiCalls": stats.api_calls,
            "throttles": stats.throttles,
            "durationSeconds": round(stats.duration_seconds, 3),
            "scanErrors": len(self.result.failures),
            "metricRequests": self.published.requests if self.published else 0,
            "metricDatapoints": self.published.datapoints if self.published else 0,
            "metricsPublished": self.publish_error is None,
            **(
                {"keysWithMetrics": len(chosen.keys), "keysOverMetricCap": chosen.over_cap}
                if chosen is not None
                else {}
            ),
            **(records.summary() if records is not None else {}),
            **(self.alerts.summary() if self.alerts is not None else {}),
        }


def metric_keys(
    settings: Settings, result: ScanResult, levels: Mapping[tuple[str, str], tuple[int, ...]] | None = None
) -> MetricKeys:
    """The keys ``KEY_METRICS`` gives per-key metrics (:mod:`quota_monitor.publish.selection`)."""
    return choose_keys(
        result, settings.key_metrics, key_levels(result, settings.levels) if levels is None else levels
    )


def publish_metrics(
    cloudwatch: CloudWatchClient,
    settings: Settings,
    result: ScanResult,
    *,
    alerts: AlertReport | None = None,
    chosen: MetricKeys | None = None,
    health: ScanResult | bool = True,
) -> PublishReport:
    """Per-key metrics for the keys ``KEY_METRICS`` selects (``chosen``, when already known), the plan
    roll-ups unless ``auto``, and the health metrics (``health``: of ``result``, of every target's
    together, or none; :func:`~quota_monitor.publish.metrics.iter_metric_data`)."""
    selection = settings.key_metrics
    chosen = metric_keys(settings, result) if chosen is None else chosen
    data = iter_metric_data(
        result,
        chosen.keys,
        alerts=alerts,
        key_metrics=AUTO_KEY_METRICS if selection.auto else PER_KEY_METRICS,
        plan_rollups=selection.plan_rollups,
        health=health,
    )
    return publish(cloudwatch, settings.namespace, data)


def records(report: RunReport, settings: Settings) -> Iterator[str]:
    """The run's records (:mod:`quota_monitor.publish.records`): a line per key, then per plan."""
    result = report.result
    levels = report.key_levels if report.key_levels is not None else key_levels(result, settings.levels)
    chosen = report.metric_keys if report.metric_keys is not None else metric_keys(settings, result, levels)
    return record_lines(
        result,
        levels=levels,
        with_metrics=chosen.pairs(),
        forecast_settings=settings.alerts.forecast if settings.alerts is not None else settings.forecast,
        default_levels=settings.levels,
    )


def _publish_target(
    cloudwatch: CloudWatchClient,
    settings: Settings,
    result: ScanResult,
    *,
    alerts: AlertReport | None = None,
    health: ScanResult | bool = False,
) -> RunReport:
    """One target's per-key (and per-plan) metrics, with health metrics (:func:`publish_metrics`)."""
    levels = key_levels(result, settings.levels)
    chosen = metric_keys(settings, result, levels)
    published = publish_metrics(cloudwatch, settings, result, alerts=alerts, chosen=chosen, health=health)
    return RunReport(
        result=result,
        published=published,
        publish_error=None if published.complete else published.describe_failure(),
        metric_keys=chosen,
        key_levels=levels,
    )


@dataclass(frozen=True)
class TargetScan:
    """One target's scan, and its CloudWatch client (None when the target could not be reached)."""

    target: Target
    result: ScanResult
    cloudwatch: CloudWatchClient | None
    #: Credentials or region refused in this target (raised when every target failed so).
    configuration_error: BaseException | None = None
    #: Why the shared API budget could not be used (the scan went on with its own limiter).
    budget_error: str | None = None


def scan_targets(
    settings: Settings,
    accesses: Sequence[TargetAccess],
    run: Invocation,
    *,
    on_plan: Callable[[Target, PlanScan, int, int], None] | None = None,
    on_failed_attempt: Callable[[FailedAttempt], None] | None = None,
    budget: Callable[[Target], SharedBudget] | None = None,
) -> list[TargetScan]:
    """Every target's scan, all at once (each has its own control-plane budget and rate limiter).

    A target that cannot be reached (its role cannot be assumed, its region is not enabled, its
    credentials are refused) fails alone: a :class:`ScanFailure` of resource ``target``. When every
    target failed for credentials or region, the first error is raised, as a one-target run does.

    ``APIGATEWAY_MAX_CONCURRENCY`` is shared by the targets, at least 2 each: a target's rate limit,
    not its workers, sets its pace (2 reach the floor at 5 calls a second), and each plan in flight
    holds its GetUsage pages in memory (docs/benchmarks.md, "Every region at once").

    ``budget``: each target's shared API budget, with the fast path on (:mod:`quota_monitor.read.budget`).
    """
    scan_settings = settings.scan.per_target(len(accesses))

    def one(access: TargetAccess) -> TargetScan:
        target = access.target
        try:
            clients = access.connect()
            # Closed when its scan ends: a client keeps its connections (a file descriptor each) until
            # then, and a function holds 1,024 (docs/benchmarks.md, "200 targets in one run").
            with closing(clients.apigateway):
                api = guarded_api(
                    clients.apigateway,
                    scan_settings,
                    run,
                    on_failed_attempt=on_failed_attempt,
                    budget=budget(target) if budget is not None else None,
                )
                progress = None if on_plan is None else partial(on_plan, target)
                result = scan_account(
                    api,
                    now=run.now,
                    settings=scan_settings,
                    on_plan=progress,
                    target=target,
                    clock=run.clocks.monotonic,
                    wall=run.clocks.wall,
                )
        except (ClientError, BotoCoreError) as error:
            cause, message = describe_error(error)
            failure = ScanFailure("target", None, None, cause, message, target=target)
            empty = ScanResult(run.now, (), (), (failure,), ScanStats(), target=target)
            return TargetScan(target, empty, None, error if is_configuration_error(error) else None)
        return TargetScan(target, result, clients.cloudwatch, budget_error=finish_budget(api))

    if not accesses:
        return []
    with ThreadPoolExecutor(max_workers=min(len(accesses), MAX_TARGETS_AT_ONCE)) as pool:
        scans = list(pool.map(one, accesses))
    refused = [scan.configuration_error for scan in scans if scan.configuration_error is not None]
    if len(refused) == len(scans):
        raise refused[0]
    return scans


def combined(scans: Sequence[ScanResult], now: datetime) -> ScanResult:
    """Every target's scan as one: what the health metrics count, and what the CLI shows. The targets
    are scanned at the same time, so the scan's duration is the longest target's. Equal ids in two
    targets stay two plans, two keys (each carries its target); the alerts and the records read each
    target's result on its own."""
    if len(scans) == 1:
        return scans[0]
    stats = ScanStats.total(scan.stats for scan in scans)
    return ScanResult(
        now,
        tuple(plan for scan in scans for plan in scan.plans),
        tuple(key for scan in scans for key in scan.keys),
        tuple(failure for scan in scans for failure in scan.failures),
        stats,
        api_keys={key_id: key for scan in scans for key_id, key in scan.api_keys.items()},
        period_mismatches=tuple(mismatch for scan in scans for mismatch in scan.period_mismatches),
    )


@dataclass(frozen=True)
class FleetReport:
    """A run over every target: a :class:`RunReport` each (in target order), the alerts of all."""

    runs: tuple[RunReport, ...]
    alerts: AlertReport | None = None
    #: The health metrics, when they went apart from every target's (the monitor's own region is
    #: not one of ``REGIONS``).
    health: PublishReport | None = None
    #: Why the health metrics could not be published, if they could not.
    health_error: str | None = None
    #: The fast path's watch lists this run wrote (with the fast path on).
    watch: WatchWritten | None = None
    #: Targets whose shared API budget could not be used (their scans went on without it).
    budget_errors: tuple[str, ...] = ()
    #: The key snapshots this run wrote (with ``KEY_SNAPSHOTS`` on).
    snapshots: SnapshotsWritten | None = None

    @property
    def results(self) -> tuple[ScanResult, ...]:
        return tuple(run.result for run in self.runs)

    @property
    def failures(self) -> tuple[ScanFailure, ...]:
        return tuple(failure for run in self.runs for failure in run.result.failures)

    @property
    def several(self) -> bool:
        return len(self.runs) > 1

    def summary(self, records: RecordsWritten | None = None) -> dict[str, Any]:
        """The run summary: totals over every target (with one target, exactly :meth:`RunReport.summary`)."""
        extra = {
            **(self.watch.summary() if self.watch is not None else {}),
            **(self.snapshots.summary() if self.snapshots is not None else {}),
            **({"budgetErrors": len(self.budget_errors)} if self.budget_errors else {}),
        }
        if not self.several:
            return {**replace(self.runs[0], alerts=self.alerts).summary(records), **extra}
        totals: dict[str, Any] = {}
        for run in self.runs:
            for name, value in run.summary().items():
                if name == "durationSeconds":
                    totals[name] = max(totals.get(name, 0.0), value)
                elif isinstance(value, bool):
                    totals[name] = totals.get(name, True) and value
                else:
                    totals[name] = totals.get(name, 0) + value
        totals["metricsPublished"] = totals.get("metricsPublished", True) and self.health_error is None
        return {
            "targets": len(self.runs),
            "targetsFailed": sum(1 for run in self.runs if _unreachable(run.result)),
            **totals,
            **(records.summary() if records is not None else {}),
            **(self.alerts.summary() if self.alerts is not None else {}),
            **extra,
        }


@dataclass(frozen=True)
class WatchWritten:
    """The watch lists a full run wrote for the fast path, all targets together."""

    plans: int = 0
    keys: int = 0
    #: Plans left out to keep a list under its size bound (:mod:`quota_monitor.alert.watch`).
    left_out: int = 0
    #: Plans kept from the last lists because the scan could not read them (``watch.carry_over``).
    carried: int = 0
    bytes: int = 0
    errors: tuple[str, ...] = ()
    #: Lists not written because a full run that started later had written its own (``WatchStore.put``).
    superseded: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "watchedPlans": self.plans,
            "watchedKeys": self.keys,
            "watchListBytes": self.bytes,
            **({"watchLeftOut": self.left_out} if self.left_out else {}),
            **({"watchCarried": self.carried} if self.carried else {}),
            **({"watchErrors": len(self.errors)} if self.errors else {}),
            **({"watchSuperseded": self.superseded} if self.superseded else {}),
        }


def write_watch_lists(
    settings: Settings,
    store: WatchStore,
    results: Sequence[ScanResult],
    *,
    now: datetime,
    unsettled: Collection[str] = frozenset(),
    state_unread: bool = False,
    newer: Mapping[str, tuple[int, bool]] | None = None,
) -> WatchWritten:
    """Each reachable target's watch list (:mod:`quota_monitor.alert.watch`), for the fast path. A
    target that could not be read keeps its last list, which goes stale on its own; plans of a
    target that could not be read keep their place from the last list (``watch.carry_over``)."""
    if settings.alerts is None:
        return WatchWritten()
    plans = keys = left_out = carried = size = superseded = 0
    errors: list[str] = []
    for result in results:
        target = result.target
        if target is None or _unreachable(result):
            continue
        chosen = choose_watched(
            result,
            settings.alerts,
            now=now,
            scan_interval=settings.fast.scan_interval,
            page_size=settings.scan.page_size,
            unsettled=unsettled,
            state_unread=state_unread,
            newer=newer,
        )
        try:
            unread = {f.usage_plan_id for f in result.failures if f.usage_plan_id is not None}
            if unread:
                (last,) = store.get([target], now=now)
                chosen = carry_over(chosen, last.watch, unread, now=now)
            stored = store.put(target, chosen)
        except (ClientError, BotoCoreError) as error:
            errors.append(f"watch list of {target.describe()}: {describe(error)}")
            continue
        if stored is None:
            superseded += 1
            continue
        kept, written = stored
        plans, keys, size = plans + len(kept.plans), keys + kept.keys, size + written
        left_out, carried = left_out + kept.left_out, carried + kept.carried
    return WatchWritten(plans, keys, left_out, carried, size, tuple(errors), superseded)


def _unreachable(result: ScanResult) -> bool:
    return any(failure.resource in ("target", "usage-plans") for failure in result.failures)


def alert_and_watch(
    settings: Settings,
    results: Sequence[ScanResult],
    run: Invocation,
    *,
    alert_clients: AlertClients | None,
    on_alert: Callable[[AlertMessage], None] | None = None,
    watch: WatchStore | None = None,
) -> tuple[AlertReport | None, WatchWritten | None]:
    """A full run's alert step over every target's scan (when alerts are configured), then (with the
    fast path on, ``watch``) each target's watch list, told what the alert step left unsettled and
    what newer readings set."""
    alerts = None
    if settings.alerts is not None and alert_clients is not None:
        alerts = run_alerts(
            results,
            settings.alerts,
            store=AlertStateStore(alert_clients.dynamodb, settings.alerts.table_name),
            sns=alert_clients.sns,
            now=run.now,
            claim_until=run.ends_at,
            region=alert_clients.region,
            events=alert_clients.events,
            on_message=on_alert,
            out_of_time=run.alerts_over,
        )
    if watch is None:
        return alerts, None
    return alerts, write_watch_lists(
        settings,
        watch,
        results,
        now=run.now,
        unsettled=alerts.unsettled if alerts is not None else frozenset(),
        state_unread=alerts is not None and alerts.state_unread,
        newer=alerts.newer if alerts is not None else None,
    )


def run_targets(
    settings: Settings,
    accesses: Sequence[TargetAccess],
    run: Invocation,
    *,
    health_cloudwatch: Callable[[], CloudWatchClient],
    alert_clients: AlertClients | None = None,
    on_alert: Callable[[AlertMessage], None] | None = None,
    budget: Callable[[Target], SharedBudget] | None = None,
    watch: WatchStore | None = None,
    snapshots: SnapshotStore | None = None,
) -> FleetReport:
    """A full run: scan every target, alert on all of them, then each target's metrics to its own
    CloudWatch (and, with ``snapshots``, every key's numbers for the quota endpoint).

    Alerts are evaluated whatever happens to the metrics, and the metrics are published whatever
    happens to the alerts: each failure is reported, not raised. The health metrics count every
    target together and go to the monitor's own account and region: with the home target's metrics
    when it is one of the targets (one batch set), else on their own through ``health_cloudwatch``.
    A target whose metrics could not be published is a ``ScanErrors`` failure of its own.

    With the fast path on: ``budget`` gives each target's shared API budget, and after the alerts
    each target's watch list goes to ``watch`` (:func:`write_watch_lists`).
    """
    scans = scan_targets(settings, accesses, run, budget=budget)
    results = [scan.result for scan in scans]
    alerts, watched = alert_and_watch(
        settings,
        results,
        run,
        alert_clients=alert_clients,
        on_alert=on_alert,
        watch=watch,
    )
    report = publish_targets(settings, scans, now=run.now, alerts=alerts, health_cloudwatch=health_cloudwatch)
    budget_errors = tuple(
        f"{scan.target.describe()}: {scan.budget_error}" for scan in scans if scan.budget_error
    )
    snapped = write_snapshots(snapshots, results, now=run.now) if snapshots is not None else None
    return replace(report, watch=watched, budget_errors=budget_errors, snapshots=snapped)


def write_snapshots(
    store: SnapshotStore, results: Sequence[ScanResult], *, now: datetime
) -> SnapshotsWritten:
    """Each reachable target's key snapshots (:mod:`quota_monitor.publish.snapshots`); a target that
    could not be read keeps its last ones, which go stale on their own."""
    written = SnapshotsWritten()
    for result in results:
        if result.target is None or _unreachable(result):
            continue
        try:
            written += store.put_scan(result, now=now)
        except (ClientError, BotoCoreError, ValueError, RuntimeError) as error:
            written += SnapshotsWritten(
                errors=(f"key snapshots of {result.target.describe()}: {describe(error)}",)
            )
    return written


def publish_targets(
    settings: Settings,
    scans: Sequence[TargetScan],
    *,
    now: datetime,
    health_cloudwatch: Callable[[], CloudWatchClient],
    alerts: AlertReport | None = None,
) -> FleetReport:
    """Each target's metrics to its own CloudWatch, and the health metrics of all of them to the
    monitor's own (:func:`run_targets`)."""
    home = next((scan for scan in scans if scan.target.home and scan.cloudwatch is not None), None)

    def other(scan: TargetScan) -> RunReport:
        if scan.cloudwatch is None:
            return RunReport(result=scan.result, published=None)
        with closing(scan.cloudwatch):  # its connection, now rather than at the run's end
            run = _publish_target(scan.cloudwatch, settings, scan.result, alerts=alerts)
        if run.publish_error is None:
            return run
        error, target = run.publish_error, scan.target
        failure = ScanFailure("target", None, None, "MetricsNotPublished", error, target=target)
        return replace(run, result=replace(run.result, failures=(*run.result.failures, failure)))

    # Every other target first, so that the health metrics count the targets whose metrics failed;
    # several at once, as each waits on its own CloudWatch.
    rest = [scan for scan in scans if scan is not home]
    with ThreadPoolExecutor(max_workers=max(1, min(len(rest), PUBLISH_AT_ONCE))) as pool:
        by_target = {scan.target: run for scan, run in zip(rest, pool.map(other, rest), strict=True)}
    others = [run.result for run in by_target.values()]
    if home is not None and home.cloudwatch is not None:
        health = combined([home.result, *others], now)
        with closing(home.cloudwatch):
            by_target[home.target] = _publish_target(
                home.cloudwatch, settings, home.result, alerts=alerts, health=health
            )
        return FleetReport(tuple(by_target[scan.target] for scan in scans), alerts)
    health = combined(others, now)
    published = publish(health_cloudwatch(), settings.namespace, health_metric_data(health, now, alerts))
    return FleetReport(
        tuple(by_target[scan.target] for scan in scans),
        alerts,
        health=published,
        health_error=None if published.complete else published.describe_failure(),
    )
