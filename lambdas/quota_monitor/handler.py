"""Lambda entry point: wiring only. The work is in :mod:`quota_monitor.monitor`.

Configured by environment variables only (:mod:`quota_monitor.config`); a bad value fails the
cold start with a message naming the variable. With nothing but credentials and a region set,
a run scans every usage plan and publishes the metrics; with ``ALERT_TOPIC_ARN`` and
``ALERT_TABLE_NAME`` it also evaluates and delivers alerts.

When a run raises: only when nothing useful was done and a retry can help (the usage-plan list
could not be read, or the metrics could not be published), so that Lambda's error metric, its
retries and the dead-letter queue come into play. Plans that failed, alerts that could not be
delivered, bad tags: the run returns, having published what it read; ``ScanErrors`` and
``AlertDeliveryFailures`` carry the failures to their alarms. A retried run never doubles an
alert (:mod:`quota_monitor.alert_state`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Tracer

from quota_monitor.config import Settings
from quota_monitor.monitor import AlertClients, RunReport, run_once

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "apigw-quota-monitor"
SETTINGS = Settings.from_env(os.environ)
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
#: Calls are not started in the last part of the invocation, which is kept for publishing.
RESERVE_FOR_PUBLISHING = timedelta(seconds=20)


class RunFailed(RuntimeError):  # noqa: N818 - reads as what happened
    """The run could not do its job; raised so that Lambda retries it and counts an error."""


@cache
def _clients() -> tuple[Any, Any, AlertClients | None]:
    from quota_monitor.clients import apigateway_client, client, cloudwatch_client  # noqa: PLC0415 - cold start

    alert_clients = None
    if SETTINGS.alerts is not None:
        sns = client("sns")
        alert_clients = AlertClients(sns=sns, dynamodb=client("dynamodb"), region=sns.meta.region_name)
    return apigateway_client(max_workers=SETTINGS.scan.max_workers), cloudwatch_client(), alert_clients


def _log(report: RunReport) -> None:
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
    alerts = report.alerts
    if alerts is not None:
        for problem in alerts.tag_problems:
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
        for error in alerts.publish_errors:
            logger.error("alert delivery failed; the next run sends again", extra={"detail": error})
        for error in alerts.state_errors:
            logger.error("alert state", extra={"detail": error})
    if report.publish_error is not None:
        logger.error("metrics not published", extra={"detail": report.publish_error})
    logger.info("run summary", extra=report.summary())


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    apigateway, cloudwatch, alert_clients = _clients()
    now = datetime.now(UTC)
    ends_at = now + timedelta(milliseconds=context.get_remaining_time_in_millis())
    stop_calls_at = ends_at - RESERVE_FOR_PUBLISHING
    report = run_once(
        SETTINGS,
        apigateway=apigateway,
        cloudwatch=cloudwatch,
        now=now,
        deadline=lambda: datetime.now(UTC) >= stop_calls_at,
        alert_clients=alert_clients,
        claim_until=ends_at,
    )
    _log(report)
    if report.publish_error is not None:
        raise RunFailed(f"metrics not published: {report.publish_error}")
    if any(failure.resource == "usage-plans" for failure in report.result.failures):
        raise RunFailed("the usage plans could not be listed: nothing was scanned")
    return report.summary()
