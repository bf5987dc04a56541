"""Lambda entry point of the fast path: wiring only. The work is in :mod:`quota_monitor.fast`.

The same package and environment as the full scan's function (:mod:`quota_monitor.handler`), with
``FAST_SCHEDULE_MINUTES`` set; EventBridge Scheduler invokes it every that many minutes.

When it raises (:class:`RunFailed`), so that Lambda's error metric and the fast path's alarm see
it: the lease or the watch lists could not be read (DynamoDB), or there were watched plans and not
one could be read. It is not retried (the next minute is the retry). Otherwise it returns, with
what it could not do in its log: a plan that failed (one ``scan failure`` line each, read again by
the next run of either path), a list missing or stale, an alert that could not be delivered
(released for the next run of either path).

Every run prints one summary line; a run that found the lease held prints only that.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.alert.state import AlertStateStore
from quota_monitor.errors import RunFailed, describe
from quota_monitor.fast import FastReport, run_fast
from quota_monitor.handler import (
    SETTINGS,
    alert_clients,
    health_cloudwatch,
    home_account,
    invocation,
    log_alerts,
    log_failure,
    log_snapshots,
    logger,
    shared_budget,
    snapshot_store,
    target_accesses,
    tracer,
    watch_store,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = invocation(context)  # first: the clients' calls are bounded by it
    clients, alerts = alert_clients(), SETTINGS.alerts
    if not SETTINGS.fast.enabled or clients is None or alerts is None:
        raise RunFailed(
            "the fast path is off: set FAST_SCHEDULE_MINUTES, ALERT_TOPIC_ARN and ALERT_TABLE_NAME"
        )
    try:
        report = run_fast(
            SETTINGS,
            target_accesses(home_account(context)),
            run,
            store=watch_store(),
            states=AlertStateStore(clients.dynamodb, alerts.table_name),
            alert_clients=clients,
            budget=shared_budget,
            health_cloudwatch=health_cloudwatch,
            snapshots=snapshot_store(),
        )
    except (ClientError, BotoCoreError) as error:
        raise RunFailed(
            f"the fast path's lease or watch lists could not be read: {describe(error)}"
        ) from error
    _log(report)
    raise_if_failed(report)
    return report.summary()


def _log(report: FastReport) -> None:
    for part in report.targets:
        where = {"accountId": part.target.account_id, "region": part.target.region}
        if part.list_problem is not None:
            logger.warning("watch list not used", extra={"detail": part.list_problem, **where})
        for failure in part.failures:
            log_failure(
                replace(failure, target=failure.target or part.target),
                then="; the next run of either path reads it again",
            )
    if report.alerts is not None:
        log_alerts(report.alerts)
    if report.publish_error is not None:
        logger.error("health metrics not published", extra={"detail": report.publish_error})
    log_snapshots(report.snapshots)
    if report.lease_error is not None:
        logger.warning("lease not released", extra={"detail": report.lease_error})
    logger.info("run summary", extra=report.summary())


def raise_if_failed(report: FastReport) -> None:
    """Raise :class:`RunFailed` when there were watched plans and not one could be read."""
    results = [part.result for part in report.targets if part.result is not None]
    tried = sum(len(result.plans) for result in results) + sum(
        1 for part in report.targets for f in part.failures if f.resource == "target"
    )
    read = sum(result.stats.plans_scanned for result in results)
    if tried and not read and report.failures:
        first = report.failures[0]
        raise RunFailed(
            f"none of the {tried} watched plans could be read: {first.describe(with_target=True)}"
            + (f"; and {len(report.failures) - 1} more" if len(report.failures) > 1 else "")
        )
