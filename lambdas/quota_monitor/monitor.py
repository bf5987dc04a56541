"""One monitoring run: scan, publish metrics (and, with alerts configured, evaluate them).

Shared by the Lambda handler and the CLI, so that both do exactly the same thing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quota_monitor.calls import ApiGatewayCalls, RateLimiter, RetryPolicy
from quota_monitor.key_metrics import select_keys
from quota_monitor.metrics import PublishReport, iter_metric_data, publish
from quota_monitor.scan import PlanScan, ScanOptions, scan_account

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from mypy_boto3_cloudwatch import CloudWatchClient

    from quota_monitor.calls import ApiGatewayClient
    from quota_monitor.config import ScanSettings, Settings
    from quota_monitor.models import ScanResult


def guarded_api(
    client: ApiGatewayClient,
    settings: ScanSettings,
    *,
    deadline: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ApiGatewayCalls:
    """The API Gateway client behind the monitor's rate limit and retry policy.

    ``clock`` and ``sleep`` let the benchmark run the limiter and the backoff on scaled time.
    """
    return ApiGatewayCalls(
        client,
        limiter=RateLimiter(settings.max_rps, settings.burst, clock=clock, sleep=sleep),
        policy=RetryPolicy(max_attempts=settings.max_attempts),
        deadline=deadline,
        sleep=sleep,
    )


def scan_options(settings: ScanSettings) -> ScanOptions:
    return ScanOptions(
        page_size=settings.page_size,
        week_start=settings.week_start,
        cross_check_plan_keys=settings.cross_check_plan_keys,
        max_workers=settings.max_workers,
    )


def run_scan(
    api: ApiGatewayCalls,
    settings: ScanSettings,
    *,
    now: datetime,
    on_plan: Callable[[PlanScan, int, int], None] | None = None,
) -> ScanResult:
    return scan_account(api, now=now, options=scan_options(settings), on_plan=on_plan)


@dataclass(frozen=True)
class RunReport:
    result: ScanResult
    published: PublishReport | None

    def summary(self) -> dict[str, Any]:
        """The one summary line a run logs, and what the handler returns."""
        stats = self.result.stats
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
        }


def publish_metrics(cloudwatch: CloudWatchClient, settings: Settings, result: ScanResult) -> PublishReport:
    """Per-key metrics for the keys ``KEY_METRICS`` selects; plan roll-ups and health always whole."""
    keys = select_keys(result.keys, settings.key_metrics)
    return publish(cloudwatch, settings.namespace, iter_metric_data(result, keys))


def run_once(
    settings: Settings,
    *,
    apigateway: ApiGatewayClient,
    cloudwatch: CloudWatchClient,
    now: datetime,
    deadline: Callable[[], bool] | None = None,
) -> RunReport:
    api = guarded_api(apigateway, settings.scan, deadline=deadline)
    result = run_scan(api, settings.scan, now=now)
    published = publish_metrics(cloudwatch, settings, result)
    return RunReport(result=result, published=published)
