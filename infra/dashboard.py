"""The CloudWatch dashboard: which keys are closest to their quota, per plan, and the monitor's health.

The quota graphs are Metrics Insights queries (:meth:`infra.metrics.MonitorMetrics.top`), so keys
come and go without a redeploy. The health graphs show the same metric objects the alarms watch,
with each alarm's threshold drawn on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_

from infra.metrics import KEY_DIMENSIONS, PLAN_DIMENSIONS
from quota_monitor import MetricName

if TYPE_CHECKING:
    from collections.abc import Sequence

    from constructs import Construct

    from infra.alarms import MonitorAlarms
    from infra.metrics import MonitorMetrics

TOP_KEYS = 10
TOP_PLANS = 20


@dataclass(frozen=True, kw_only=True)
class DashboardParts:
    metrics: MonitorMetrics
    thresholds: Sequence[int]
    monitor_function: lambda_.IFunction
    alarms: MonitorAlarms


def quota_dashboard(scope: Construct, id_: str, *, parts: DashboardParts) -> cloudwatch.Dashboard:
    metrics, alarms = parts.metrics, parts.alarms
    interval = metrics.period
    levels = [
        cloudwatch.HorizontalAnnotation(
            value=level, label=f"alert at {level}%", color=cloudwatch.Color.ORANGE
        )
        for level in parts.thresholds
    ]

    dashboard = cloudwatch.Dashboard(scope, id_, default_interval=Duration.days(7))
    dashboard.add_widgets(
        cloudwatch.TextWidget(
            markdown="# API Gateway usage-plan quotas\n"
            f"Metrics in namespace `{metrics.namespace}`, published every {interval.to_minutes()} minutes "
            "by the quota monitor. Series are named by usage plan id and API key id; `quota-monitor scan` "
            "shows names.",
            width=24,
            height=2,
        )
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title=f"Top {TOP_KEYS} keys by quota utilization (%)",
            left=[
                metrics.top(
                    MetricName.QUOTA_UTILIZATION,
                    function="MAX",
                    per=KEY_DIMENSIONS,
                    order="DESC",
                    limit=TOP_KEYS,
                )
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="%", show_units=False),
            left_annotations=levels,
            width=8,
            height=8,
        ),
        cloudwatch.GraphWidget(
            title=f"{TOP_KEYS} keys with the least quota remaining",
            left=[
                metrics.top(
                    MetricName.REMAINING_QUOTA,
                    function="MIN",
                    per=KEY_DIMENSIONS,
                    order="ASC",
                    limit=TOP_KEYS,
                )
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="requests", show_units=False),
            width=8,
            height=8,
        ),
        cloudwatch.GraphWidget(
            title=f"Highest key utilization per plan (top {TOP_PLANS} plans, %)",
            left=[
                metrics.top(
                    MetricName.MAX_QUOTA_UTILIZATION,
                    function="MAX",
                    per=PLAN_DIMENSIONS,
                    order="DESC",
                    limit=TOP_PLANS,
                )
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="%", show_units=False),
            left_annotations=levels,
            width=8,
            height=8,
        ),
    )
    function = parts.monitor_function
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="Monitor runs and errors",
            left=[
                function.metric_invocations(period=interval, statistic="Sum", label="Runs (invocations)"),
                _shown(alarms.monitor_errors.metric, "Function errors"),
                _shown(metrics.scan_errors, "Scan errors (plans or keys not read)"),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            left_annotations=[alarms.scan_errors.to_annotation()],
            width=6,
            height=6,
        ),
        cloudwatch.GraphWidget(
            title="Runs finished (the heartbeat), keys and plans scanned",
            left=[_shown(metrics.runs_finished, "Runs finished")],
            right=[_shown(metrics.keys_scanned, "Keys"), _shown(metrics.plans_scanned, "Plans")],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="runs", show_units=False),
            right_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            left_annotations=[alarms.heartbeat.to_annotation()],
            width=6,
            height=6,
        ),
        cloudwatch.GraphWidget(
            title="API Gateway calls per run",
            left=[_shown(metrics.api_calls, "Calls"), _shown(metrics.api_throttles, "Throttled (429)")],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            width=6,
            height=6,
        ),
        cloudwatch.GraphWidget(
            title="Run duration and alerts",
            left=[_shown(metrics.scan_duration, "Scan duration (s)")],
            right=[
                _shown(metrics.alerts_sent, "Alerts sent"),
                _shown(metrics.alert_delivery_failures, "Alert delivery failures"),
                _shown(metrics.alert_state_errors, "Alert state errors"),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="seconds", show_units=False),
            right_y_axis=cloudwatch.YAxisProps(min=0, label="alerts", show_units=False),
            right_annotations=[
                alarms.alert_delivery_failures.to_annotation(),
                alarms.alert_state_errors.to_annotation(),
            ],
            width=6,
            height=6,
        ),
    )
    dashboard.add_widgets(
        cloudwatch.AlarmStatusWidget(title="Monitor alarms", alarms=alarms.all, width=24, height=3)
    )
    return dashboard


def _shown(metric: cloudwatch.IMetric, label: str) -> cloudwatch.IMetric:
    """The same metric, labelled for a graph's legend."""
    if isinstance(metric, cloudwatch.Metric):
        return metric.with_(label=label)
    return metric
