"""Lambda entry point: wiring only. The work is in :mod:`quota_monitor.monitor`.

Configured by environment variables only (:mod:`quota_monitor.config`); a bad value fails the
cold start with a message naming the variable. With nothing but credentials and a region set,
a run scans every usage plan and publishes the metrics; with ``ALERT_TOPIC_ARN`` and
``ALERT_TABLE_NAME`` it also evaluates and delivers alerts (to the routes' topics with
``ALERT_ROUTES``, and as EventBridge events with ``EVENT_BUS_NAME``).

When a run raises (:class:`RunFailed`), so that Lambda's error metric, its retries and the
dead-letter queue come into play: when it could not do its job at all, which is when a retry can
help and a person must look:

- the usage plans could not be listed: nothing was scanned;
- there were usage plans, and not one of them could be read (every plan failed, or was skipped at
  the deadline);
- the metrics could not be published (after botocore's retries).

Otherwise it returns, having published what it read: some plans failed (``ScanErrors`` and one
error log line per plan, naming it and the cause), alerts could not be delivered
(``AlertDeliveryFailures``; the claims were released, so the next run sends them), bad tags
(warnings). Raising there would only repeat the whole scan, spending the account's shared API
Gateway budget, for the plans that already worked; the next scheduled run is minutes away. A
retried run never doubles an alert (:mod:`quota_monitor.alert.state`).

Near the timeout: no API call is started after ``stop_calls_at`` (:func:`reserve_for`); plans not
read by then are reported as skipped, and what was read is published.

Every run prints its records to stdout, one JSON line per key and per plan
(:mod:`quota_monitor.publish.records`), before the summary line: written by hand, not through
Powertools' Logger, whose own fields would more than double each line's bytes.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Tracer

from quota_monitor.config import Settings
from quota_monitor.errors import RunFailed
from quota_monitor.monitor import AlertClients, RunReport, records, run_once
from quota_monitor.publish.records import write_records

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from quota_monitor.publish.records import RecordsWritten

SERVICE = "apigw-quota-monitor"
SETTINGS = Settings.from_env(os.environ)
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
#: Kept at the end of an invocation: for the API Gateway calls still in flight when the scan stops
#: starting new ones (one can take the client's connect and read timeouts, 5 + 30 s,
#: :mod:`quota_monitor.clients`), then alerts and metrics.
RESERVE_FOR_PUBLISHING = timedelta(seconds=60)
#: ... but never more than this share of the invocation, so that a short timeout still scans.
MAX_RESERVE_SHARE = 0.4


def reserve_for(remaining: timedelta) -> timedelta:
    """How much of an invocation with ``remaining`` time left is kept from the scan."""
    return min(RESERVE_FOR_PUBLISHING, remaining * MAX_RESERVE_SHARE)


@cache
def _clients() -> tuple[Any, Any, AlertClients | None]:
    from quota_monitor.clients import apigateway_client, client, cloudwatch_client  # noqa: PLC0415 - cold start

    alert_clients = None
    if SETTINGS.alerts is not None:
        sns = client("sns")
        alert_clients = AlertClients(
            sns=sns,
            dynamodb=client("dynamodb"),
            region=sns.meta.region_name,
            events=client("events") if SETTINGS.alerts.event_bus is not None else None,
        )
    return apigateway_client(max_workers=SETTINGS.scan.max_workers), cloudwatch_client(), alert_clients


def _log(report: RunReport, written: RecordsWritten) -> None:
    for failure in report.result.failures:
        logger.error(
            "scan failure",
            extra={
                "resource": failure.resource,
                "resourceId": failure.resource_id,
                "resourceName": failure.name,
                "cause": failure.cause,
                "detail": failure.message,
            },
        )
    for mismatch in report.result.period_mismatches:
        logger.warning(
            "period start assumption",
            extra={
                "usagePlanId": mismatch.usage_plan_id,
                "period": mismatch.period,
                "detail": mismatch.describe(),
            },
        )
    alerts = report.alerts
    metric_tag_problems = report.metric_keys.problems if report.metric_keys is not None else ()
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
        for error in alerts.publish_errors:
            logger.error("alert delivery failed; the next run sends again", extra={"detail": error})
        for error in alerts.event_errors:
            logger.error("event delivery failed", extra={"detail": error})
        for error in alerts.state_errors:
            logger.error("alert state", extra={"detail": error})
    if report.publish_error is not None:
        logger.error("metrics not published", extra={"detail": report.publish_error})
    chosen = report.metric_keys
    if chosen is not None and chosen.over_cap:
        logger.warning(
            "per-key metrics capped",
            extra={
                "keyMetrics": SETTINGS.key_metrics.describe(),
                "keysWithMetrics": len(chosen.keys),
                "keysOverMetricCap": chosen.over_cap,
                "detail": "more keys qualified for per-key metrics than KEY_METRICS allows; every key is "
                "still alerted and in the records (KEY_METRICS=auto,top:N sets the cap)",
            },
        )
    logger.info("run summary", extra=report.summary(written))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    apigateway, cloudwatch, alert_clients = _clients()
    now = datetime.now(UTC)
    remaining = timedelta(milliseconds=context.get_remaining_time_in_millis())
    ends_at = now + remaining
    stop_calls_at = ends_at - reserve_for(remaining)
    report = run_once(
        SETTINGS,
        apigateway=apigateway,
        cloudwatch=cloudwatch,
        now=now,
        deadline=lambda: datetime.now(UTC) >= stop_calls_at,
        alert_clients=alert_clients,
        claim_until=ends_at,
    )
    written = write_records(records(report, SETTINGS), sys.stdout.write)
    _log(report, written)
    if report.publish_error is not None:
        raise RunFailed(f"metrics not published: {report.publish_error}")
    result = report.result
    if any(failure.resource == "usage-plans" for failure in result.failures):
        raise RunFailed("the usage plans could not be listed: nothing was scanned")
    if result.plans and result.stats.plans_scanned == 0:
        raise RunFailed(
            f"none of the {len(result.plans)} usage plans could be read: "
            f"{'; '.join(failure.describe() for failure in result.failures[:3])}"
            + (f"; and {len(result.failures) - 3} more" if len(result.failures) > 3 else "")
        )
    return report.summary(written)
