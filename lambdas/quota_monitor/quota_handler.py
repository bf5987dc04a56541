"""Lambda entry point of the quota endpoint (``GET /quota``): wiring only. The answers are in
:mod:`quota_monitor.deliver.quota_api`, the snapshots in :mod:`quota_monitor.publish.snapshots`.

Configured by ``ALERT_TABLE_NAME`` (where the monitor keeps the snapshots) and ``SCHEDULE_MINUTES``
(the full scan's interval: numbers older than two of them are stale). It reads, and never writes.
The event is never logged: ``requestContext.identity.apiKey`` holds the caller's key value.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.clients import CallLimits, client
from quota_monitor.config import read_int
from quota_monitor.deliver.quota_api import QuotaRequest, answer, no_key, not_measured, unavailable
from quota_monitor.errors import ConfigError, describe
from quota_monitor.models import Target
from quota_monitor.publish.snapshots import SnapshotStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="apigw-quota-monitor-endpoint")
TABLE = os.environ.get("ALERT_TABLE_NAME", "").strip()
if not TABLE:
    raise ConfigError("ALERT_TABLE_NAME is not set: the quota endpoint reads the monitor's state table")
SCAN_MINUTES = read_int(os.environ, "SCHEDULE_MINUTES", 15, 1, 1440)
#: A read that would make the caller wait longer is given up: an API's integration times out at 29 s.
LIMITS = CallLimits(connect=1.0, read=2.0, attempts=2)


@cache
def store() -> SnapshotStore:
    return SnapshotStore(client("dynamodb", limits=LIMITS), TABLE)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = QuotaRequest.of(event)
    if request.api_key_id is None:
        logger.error(
            "quota route without an API key",
            extra={"apiId": request.api_id, "stage": request.stage, "path": request.path},
        )
        return no_key(request).proxy()
    where = Target(
        request.account_id or context.invoked_function_arn.split(":")[4],
        request.region or os.environ.get("AWS_REGION", "us-east-1"),
    )
    now = datetime.now(UTC)
    try:
        snapshot = store().get(where, request.api_key_id, now=now)
    except (ClientError, BotoCoreError, ValueError) as error:
        logger.error(
            "key snapshots not read", extra={"detail": describe(error), "apiKeyId": request.api_key_id}
        )
        return unavailable(request).proxy()
    if snapshot is None:
        return not_measured(request, scan_minutes=SCAN_MINUTES).proxy()
    stale_after = timedelta(minutes=2 * SCAN_MINUTES)
    return answer(snapshot, request, now=now, stale_after=stale_after).proxy()
