"""Lambda entry point: wiring only. The work is in :mod:`quota_monitor.monitor`.

Configured by environment variables only (:mod:`quota_monitor.config`); a bad value fails the
cold start with a message naming the variable. With nothing but credentials and a region set,
a run scans every usage plan and publishes the metrics.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Tracer

from quota_monitor.config import Settings
from quota_monitor.monitor import RunReport, run_once

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "apigw-quota-monitor"
SETTINGS = Settings.from_env(os.environ)
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


@cache
def _clients() -> tuple[Any, Any]:
    from quota_monitor.clients import apigateway_client, cloudwatch_client  # noqa: PLC0415 - cold start

    return apigateway_client(max_workers=SETTINGS.scan.max_workers), cloudwatch_client()


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
    logger.info("scan summary", extra=report.summary())


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    apigateway, cloudwatch = _clients()
    report = run_once(SETTINGS, apigateway=apigateway, cloudwatch=cloudwatch, now=datetime.now(UTC))
    _log(report)
    return report.summary()
