"""One monitoring run: scan, evaluate alerts (when configured), publish metrics, then the records.

Shared by the Lambda handler and the CLI, so that both do exactly the same thing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from quota_monitor.alert.run import run_alerts
from quota_monitor.alert.state import AlertStateStore
from quota_monitor.alert.thresholds import key_levels
from quota_monitor.publish.metrics import (
    AUTO_KEY_METRICS,
    PER_KEY_METRICS,
    PublishReport,
    iter_metric_data,
    publish,
)
from quota_monitor.publish.records import record_lines
from quota_monitor.publish.selection import MetricKeys, choose_keys
from quota_monitor.read.calls import ApiGatewayCalls, RetryPolicy
from quota_monitor.read.limiter import RateLimiter
from quota_monitor.read.scan import PlanScan, scan_account

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from datetime import datetime

    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

    from quota_monitor.config import ScanSettings, Settings
    from quota_monitor.deliver.messages import AlertMessage
    from quota_monitor.models import AlertReport, ScanResult
    from quota_monitor.publish.records import RecordsWritten
    from quota_monitor.read.calls import ApiGatewayClient, FailedAttempt

#: How long a run may hold its claims when it cannot tell its own deadline (Lambda's maximum).
DEFAULT_CLAIM_LEASE = timedelta(minutes=15)


def guarded_api(
    client: ApiGatewayClient,
    settings: ScanSettings,
    *,
    deadline: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_failed_attempt: Callable[[FailedAttempt], None] | None = None,
) -> ApiGatewayCalls:
    """The API Gateway client behind the monitor's rate limit and retry policy.

    ``clock`` and ``sleep`` let the benchmark run the limiter and the backoff on scaled time;
    ``on_failed_attempt`` hears of every attempt that failed with an error the policy retries
    (the CLI says from it when API Gateway cannot be reached, and how long it tried).
    """
    return ApiGatewayCalls(
        client,
        limiter=RateLimiter(settings.max_rps, settings.burst, clock=clock, sleep=sleep),
        policy=RetryPolicy(max_attempts=settings.max_attempts),
        deadline=deadline,
        sleep=sleep,
        clock=clock,
        on_failed_attempt=on_failed_attempt,
    )


def run_scan(
    api: ApiGatewayCalls,
    settings: ScanSettings,
    *,
    now: datetime,
    on_plan: Callable[[PlanScan, int, int], None] | None = None,
) -> ScanResult:
    return scan_account(api, now=now, settings=settings, on_plan=on_plan)


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
) -> PublishReport:
    """Per-key metrics for the keys ``KEY_METRICS`` selects (``chosen``, when already known), the plan
    roll-ups unless ``auto``, and the health metrics."""
    selection = settings.key_metrics
    chosen = metric_keys(settings, result) if chosen is None else chosen
    data = iter_metric_data(
        result,
        chosen.keys,
        alerts=alerts,
        key_metrics=AUTO_KEY_METRICS if selection.auto else PER_KEY_METRICS,
        plan_rollups=selection.plan_rollups,
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


def run_once(
    settings: Settings,
    *,
    apigateway: ApiGatewayClient,
    cloudwatch: CloudWatchClient,
    now: datetime,
    deadline: Callable[[], bool] | None = None,
    alert_clients: AlertClients | None = None,
    claim_until: datetime | None = None,
    on_alert: Callable[[AlertMessage], None] | None = None,
) -> RunReport:
    """Scan, then alerts (when configured), then the metrics, alert counts included, in one batch set.

    Alerts are evaluated whatever happens to the metrics, and the metrics are published whatever
    happens to the alerts: each failure is reported in the :class:`RunReport`, not raised.
    """
    api = guarded_api(apigateway, settings.scan, deadline=deadline)
    result = run_scan(api, settings.scan, now=now)
    alerts: AlertReport | None = None
    if settings.alerts is not None and alert_clients is not None:
        alerts = run_alerts(
            result,
            settings.alerts,
            store=AlertStateStore(alert_clients.dynamodb, settings.alerts.table_name),
            sns=alert_clients.sns,
            now=now,
            claim_until=claim_until or now + DEFAULT_CLAIM_LEASE,
            region=alert_clients.region,
            events=alert_clients.events,
            on_message=on_alert,
        )
    levels = key_levels(result, settings.levels)
    chosen = metric_keys(settings, result, levels)
    published = publish_metrics(cloudwatch, settings, result, alerts=alerts, chosen=chosen)
    return RunReport(
        result=result,
        published=published,
        alerts=alerts,
        publish_error=None if published.complete else published.describe_failure(),
        metric_keys=chosen,
        key_levels=levels,
    )
