"""Lambda entry point: wiring only. The work is in :mod:`quota_monitor.monitor`.

Configured by environment variables only (:mod:`quota_monitor.config`); a bad value fails the
cold start with a message naming the variable. With nothing but credentials and a region set,
a run scans every usage plan and publishes the metrics; with ``ALERT_TOPIC_ARN`` and
``ALERT_TABLE_NAME`` it also evaluates and delivers alerts (to the routes' topics with
``ALERT_ROUTES``, and as EventBridge events with ``EVENT_BUS_NAME``).

When a run raises (:class:`RunFailed`), so that Lambda's error metric, its retries and the
dead-letter queue come into play: when it could not do its job at all, which is when a retry can
help and a person must look:

- the usage plans could not be listed (in any target): nothing was scanned;
- there were usage plans, and not one of them could be read (every plan failed, or was skipped at
  the deadline);
- the metrics could not be published (after botocore's retries) in the monitor's own region.

With several targets (``REGIONS``, ``SPOKE_ROLE_ARNS``), a target that cannot be read, or whose
metrics cannot be published, is a failure of that target alone: a ``ScanErrors`` failure and a log
line naming its account, region and cause.

Otherwise it returns, having published what it read: some plans failed (``ScanErrors`` and one
error log line per plan, naming it and the cause), alerts could not be delivered
(``AlertDeliveryFailures``; the claims were released, so the next run sends them), bad tags
(warnings). Raising there would only repeat the whole scan, spending the account's shared API
Gateway budget, for the plans that already worked; the next scheduled run is minutes away. A
retried run never doubles an alert (:mod:`quota_monitor.alert.state`).

Near the timeout: no API call is started after ``stop_calls_at`` (:func:`reserve_for`); plans not
read by then are reported as skipped, and what was read is published. No alert is started after
``stop_alerts_at`` (the last third of that reserve): what is left is released for the next run
(``alertsDeferred``), so that the timeout does not cut the run off between a publish and its
confirmation, which would send that message again. The check bounds what the run starts: a call
already in flight that hangs past the 20 s (SNS or DynamoDB not answering) can still be cut off.
The 20 s are sized for one target of 10,000 keys at the defaults (the releases, the metrics and
the records take a few seconds there); much larger fleets, or ``KEY_METRICS=all``, need more.

Every run prints its records to stdout, one JSON line per key and per plan
(:mod:`quota_monitor.publish.records`), before the summary line: written by hand, not through
Powertools' Logger, whose own fields would more than double each line's bytes.
"""

from __future__ import annotations

import itertools
import os
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.alert.watch_store import WatchStore
from quota_monitor.clients import (
    DEFAULT_LIMITS,
    CallLimits,
    client,
    cloudwatch_client,
    refuse_late_calls,
    target_clients,
)
from quota_monitor.config import Settings
from quota_monitor.errors import RunFailed, describe
from quota_monitor.invocation import Invocation
from quota_monitor.monitor import AlertClients, FleetReport, RunReport, records, run_targets
from quota_monitor.publish.archive import ArchiveWritten, archive_target
from quota_monitor.publish.metrics import MetricName, failure_data, publish
from quota_monitor.publish.records import target_record, write_records
from quota_monitor.publish.snapshots import SnapshotStore, SnapshotsWritten
from quota_monitor.read.budget import BudgetRate, SharedBudget
from quota_monitor.read.targets import (
    AssumedRoles,
    TargetAccess,
    TargetClients,
    partition_of,
    spoke_accounts,
    spoke_role_arn,
    targets,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient

    from quota_monitor.models import AlertReport, ScanFailure, Target
    from quota_monitor.publish.records import RecordsWritten

SERVICE = "apigw-quota-monitor"
SETTINGS = Settings.from_env(os.environ)
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


@cache
def _session() -> boto3.Session:
    return boto3.Session()


def home_region() -> str:
    """The function's own region (Lambda sets ``AWS_REGION``; boto3 reads ``AWS_DEFAULT_REGION``)."""
    region = os.environ.get("AWS_REGION") or _session().region_name
    if not region:
        raise RunFailed("no AWS region: AWS_REGION is not set")
    return region


#: The invocation in progress (a Lambda environment runs one at a time), which every client's calls
#: are bounded by (:func:`quota_monitor.clients.refuse_late_calls`).
_RUN: list[Invocation] = []


def invocation(context: LambdaContext) -> Invocation:
    """This invocation's time: from now to Lambda's timeout (:mod:`quota_monitor.invocation`)."""
    run = Invocation.lasting(timedelta(milliseconds=context.get_remaining_time_in_millis()))
    _RUN[:] = [run]
    return run


def _ends_at() -> float | None:
    return _RUN[0].ends_at.timestamp() if _RUN else None


def call_limits(run: Invocation) -> tuple[CallLimits, CallLimits]:
    """(reads, writes): a GetUsage started just before calls stop ends before alerts stop; a publish
    and its confirmation started just before alerts stop both end before the timeout."""
    return (
        CallLimits.within((run.stop_alerts_at - run.stop_calls_at).total_seconds()),
        CallLimits.within((run.ends_at - run.stop_alerts_at).total_seconds() / 2),
    )


def _limits() -> tuple[CallLimits, CallLimits]:
    return call_limits(_RUN[0]) if _RUN else (DEFAULT_LIMITS, DEFAULT_LIMITS)


def _bounded(made: Any, limits: CallLimits) -> Any:
    refuse_late_calls(made, limits, _ends_at)
    return made


def _client(service: str) -> Any:
    _, writes = _limits()
    return _bounded(client(service, limits=writes), writes)


def _target_clients(session: boto3.Session, region: str) -> TargetClients:
    reads, writes = _limits()
    made = target_clients(
        session, region, max_workers=SETTINGS.scan.max_workers, read_limits=reads, write_limits=writes
    )
    return TargetClients(_bounded(made.apigateway, reads), _bounded(made.cloudwatch, writes))


@cache
def alert_clients() -> AlertClients | None:
    if SETTINGS.alerts is None:
        return None
    sns = _client("sns")
    return AlertClients(
        sns=sns,
        dynamodb=_client("dynamodb"),
        region=sns.meta.region_name,
        events=_client("events") if SETTINGS.alerts.event_bus is not None else None,
    )


@cache
def _own_clients(region: str) -> TargetClients:
    """The monitor's own clients in one region, kept while the function is warm (a run closes their
    connections when done with them; botocore opens new ones at the next run's first call)."""
    return _target_clients(_session(), region)


def spoke_role_arns(region: str) -> tuple[str, ...]:
    """``SPOKE_ROLE_ARNS``, and a role ``SPOKE_ROLE_NAME`` in each account listed under
    ``SPOKE_ACCOUNTS_PARAMETER`` (read every run: an account added takes effect at the next)."""
    chosen = SETTINGS.targets
    if chosen.spoke_accounts_parameter is None:
        return chosen.spoke_role_arns
    try:
        accounts = spoke_accounts(_client("ssm"), chosen.spoke_accounts_parameter)
    except (ClientError, BotoCoreError, ValueError) as error:
        raise RunFailed(
            f"the spoke accounts under {chosen.spoke_accounts_parameter} could not be read: {describe(error)}"
        ) from error
    partition = partition_of(region) or "aws"
    listed = (spoke_role_arn(account, chosen.spoke_role_name, partition) for account in accounts)
    return tuple(dict.fromkeys((*chosen.spoke_role_arns, *listed)))


def target_accesses(account: str) -> list[TargetAccess]:
    """Every target of a run; spoke roles are assumed anew each run (their credentials expire)."""
    region = home_region()
    role_arns = spoke_role_arns(region)
    assumed = AssumedRoles(_client("sts")) if role_arns else None

    def make(session: boto3.Session, region: str) -> TargetClients:
        if session is _session():
            return _own_clients(region)
        return _target_clients(session, region)

    return [
        TargetAccess(target, base=_session(), make=make, assumed=assumed)
        for target in targets(account, region, SETTINGS.targets.regions_for(region), role_arns)
    ]


def log_failure(failure: ScanFailure, *, then: str = "") -> None:
    """One ``scan failure`` line (both paths'); ``then`` says what happens next."""
    logger.error(
        "scan failure",
        extra={
            "resource": failure.resource,
            "resourceId": failure.resource_id,
            "resourceName": failure.name,
            "usagePlanId": failure.usage_plan_id,
            "cause": failure.cause,
            "detail": f"{failure.message}{then}",
            **_where(failure.target),
        },
    )


def _log(report: FleetReport, written: RecordsWritten) -> None:
    several = report.several
    for failure in report.failures:
        log_failure(failure)
    for run in report.runs:
        for mismatch in run.result.period_mismatches:
            logger.warning(
                "period start assumption",
                extra={
                    "usagePlanId": mismatch.usage_plan_id,
                    "period": mismatch.period,
                    "detail": mismatch.describe(),
                    **_where(run.result.target if several else None),
                },
            )
    alerts = report.alerts
    metric_tag_problems = [
        problem for run in report.runs if run.metric_keys is not None for problem in run.metric_keys.problems
    ]
    for problem in (*metric_tag_problems, *(alerts.tag_problems if alerts is not None else ())):
        logger.warning(
            "bad tag",
            extra={
                "resource": problem.resource,
                "resourceId": problem.resource_id,
                "tag": problem.tag,
                "value": problem.value,
                "detail": problem.describe(),
            },
        )
    if alerts is not None:
        log_alerts(alerts)
    for run in report.runs:
        if run.publish_error is not None:
            logger.error(
                "metrics not published",
                extra={"detail": run.publish_error, **_where(run.result.target if several else None)},
            )
        chosen = run.metric_keys
        if chosen is not None and chosen.over_cap:
            logger.warning(
                "per-key metrics capped",
                extra={
                    "keyMetrics": SETTINGS.key_metrics.describe(),
                    "keysWithMetrics": len(chosen.keys),
                    "keysOverMetricCap": chosen.over_cap,
                    "detail": "more keys qualified for per-key metrics than KEY_METRICS allows; every key "
                    "is still alerted and in the records (KEY_METRICS=auto,top:N sets the cap)",
                    **_where(run.result.target if several else None),
                },
            )
    if report.health_error is not None:
        logger.error("health metrics not published", extra={"detail": report.health_error})
    _log_fast_path_parts(report)
    log_snapshots(report.snapshots)
    logger.info("run summary", extra=report.summary(written))


def _log_fast_path_parts(report: FleetReport) -> None:
    """What the full run did for the fast path: the shared budget, the watch lists."""
    for error in report.budget_errors:
        logger.warning(
            "api budget not shared",
            extra={
                "detail": f"{error}; this scan went on with its own rate limit alone, so that a fast run "
                "at the same time may have taken calls beside it"
            },
        )
    if report.watch is not None:
        for error in report.watch.errors:
            logger.error("watch list not written", extra={"detail": error})
        if report.watch.left_out:
            logger.warning(
                "watch list cut",
                extra={
                    "watchLeftOut": report.watch.left_out,
                    "detail": "more plans qualified for the fast path than a watch list holds; the "
                    "least urgent wait for the full scan",
                },
            )


def log_alerts(alerts: AlertReport) -> None:
    """What a run's alert step could not do (both paths')."""
    for error in alerts.publish_errors:
        logger.error("alert delivery failed; the next run sends again", extra={"detail": error})
    for error in alerts.event_errors:
        logger.error("event delivery failed", extra={"detail": error})
    for error in alerts.state_errors:
        logger.error("alert state", extra={"detail": error})
    if alerts.deferred:
        logger.warning(
            "alerts deferred",
            extra={
                "alertsDeferred": alerts.deferred,
                "detail": "the run was running out of time: these alerts were not sent, and any "
                "claims taken for them were released; the next run sends them",
            },
        )


def _where(target: Target | None) -> dict[str, str | None]:
    return {} if target is None else {"accountId": target.account_id, "region": target.region}


def _records(report: FleetReport, made: Sequence[Iterable[str]] | None = None) -> Iterator[str]:
    """Every target's records (``made``, when already made), then (with several targets) a target
    record each."""
    yield from itertools.chain.from_iterable(made or (records(run, SETTINGS) for run in report.runs))
    if report.several:
        for run in report.runs:
            yield _target_record(run)


def _target_record(run: RunReport) -> str:
    return target_record(run.result, metrics_published=run.publish_error is None)


def archive(report: FleetReport, made: Sequence[Sequence[str]], bucket: str) -> ArchiveWritten:
    """Each target's records (and its target record, with several) to the archive, an object each
    (:mod:`quota_monitor.publish.archive`); what could not be written is counted and logged, and
    ``ArchiveFailures`` published, never raised: the run's alerts and metrics are already out."""
    s3 = _client("s3")
    written = ArchiveWritten.total(
        archive_target(
            s3,
            bucket,
            run_at=run.result.scanned_at,
            target=run.result.target,
            lines=[*lines, *([_target_record(run)] if report.several else [])],
        )
        for run, lines in zip(report.runs, made, strict=True)
    )
    for failure in written.failures:
        logger.error("archive not written", extra={"detail": failure})
    _publish_failures(MetricName.ARCHIVE_FAILURES, len(written.failures))
    return written


def _publish_failures(name: MetricName, count: int) -> None:
    """``ArchiveFailures`` or ``SnapshotFailures`` (nothing when ``count`` is 0); logged when CloudWatch
    refuses it, as its alarm would then say nothing."""
    published = publish(health_cloudwatch(), SETTINGS.namespace, failure_data(name, count, _now()))
    if not published.complete:
        logger.error("health metrics not published", extra={"detail": published.describe_failure()})


def _state_table() -> tuple[DynamoDBClient, str]:
    """The alert state table, where the fast path keeps its watch lists and the shared API budget."""
    clients, alerts = alert_clients(), SETTINGS.alerts
    if clients is None or alerts is None:  # config.Settings refuses the fast path without alerts
        raise RunFailed("the fast path needs ALERT_TOPIC_ARN and ALERT_TABLE_NAME")
    return clients.dynamodb, alerts.table_name


def shared_budget(target: Target) -> SharedBudget:
    """The API budget both paths share in ``target`` (:mod:`quota_monitor.read.budget`)."""
    rate = BudgetRate.within(SETTINGS.scan.max_rps, SETTINGS.scan.burst)
    return SharedBudget(*_state_table(), target, rate=rate)


def snapshot_store() -> SnapshotStore | None:
    """Where the key snapshots go, with ``KEY_SNAPSHOTS`` on (:mod:`quota_monitor.publish.snapshots`)."""
    return SnapshotStore(*_state_table()) if SETTINGS.key_snapshots else None


def log_snapshots(written: SnapshotsWritten | None) -> None:
    """Targets whose key snapshots could not be written: logged, and counted as ``SnapshotFailures``
    (the endpoint answers from the items already there, marked stale once old)."""
    errors = written.errors if written is not None else ()
    for error in errors:
        logger.error("key snapshots not written", extra={"detail": error})
    _publish_failures(MetricName.SNAPSHOT_FAILURES, len(errors))


def watch_store() -> WatchStore:
    return WatchStore(*_state_table())


def home_account(context: LambdaContext) -> str:
    """The function's own account, from its ARN (no STS call)."""
    return context.invoked_function_arn.split(":")[4]


def _now() -> datetime:
    return datetime.now(UTC)


def health_cloudwatch() -> CloudWatchClient:
    _, writes = _limits()
    bounded: CloudWatchClient = _bounded(
        cloudwatch_client(_session(), region=home_region(), limits=writes), writes
    )
    return bounded


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = invocation(context)  # first: the clients' calls are bounded by it
    fast = SETTINGS.fast.enabled
    report = run_targets(
        SETTINGS,
        target_accesses(home_account(context)),
        run,
        health_cloudwatch=health_cloudwatch,
        alert_clients=alert_clients(),
        budget=shared_budget if fast else None,
        watch=watch_store() if fast else None,
        snapshots=snapshot_store(),
    )
    bucket = SETTINGS.archive_bucket
    # With the archive, each target's records are made once, for the log and for the archive.
    made = [list(records(run, SETTINGS)) for run in report.runs] if bucket is not None else None
    written = write_records(_records(report, made), sys.stdout.write)
    archived = archive(report, made, bucket) if bucket is not None and made is not None else None
    _log(report, written)
    raise_if_failed(report)
    return {**report.summary(written), **(archived.summary() if archived is not None else {})}


def raise_if_failed(report: FleetReport) -> None:
    """Raise :class:`RunFailed` when the run could not do its job (module doc)."""
    if report.health_error is not None:
        raise RunFailed(f"metrics not published: {report.health_error}")
    for run in report.runs:
        target = run.result.target
        if run.publish_error is not None and (target is None or target.home):
            raise RunFailed(f"metrics not published: {run.publish_error}")
    results = report.results
    failures = report.failures
    with_target = report.several
    if all(
        any(failure.resource in ("usage-plans", "target") for failure in result.failures)
        for result in results
    ):
        what = "in any target" if with_target else ""
        raise RunFailed(
            f"the usage plans could not be listed{' ' + what if what else ''}: nothing was scanned"
        )
    plans = sum(len(result.plans) for result in results)
    if plans and sum(result.stats.plans_scanned for result in results) == 0:
        plan_failures = [failure for failure in failures if failure.resource == "usage-plan"] or list(
            failures
        )
        raise RunFailed(
            f"none of the {plans} usage plans could be read: "
            f"{'; '.join(failure.describe(with_target=with_target) for failure in plan_failures[:3])}"
            + (f"; and {len(plan_failures) - 3} more" if len(plan_failures) > 3 else "")
        )
