"""The CloudWatch dashboard: which keys are closest to their quota, per plan, and the monitor's health.

Keys come and go without a redeploy because the quota graphs are Metrics Insights queries
(``SELECT ... FROM SCHEMA(...) GROUP BY ... ORDER BY ... LIMIT``) rather than lists of metrics.
CDK has no construct for them (aws-cdk issue 22844); a ``MathExpression`` holding the query works
in a graph widget (docs/aws-behaviour.md#cloudwatch-metrics). A query scans up to 10,000 metrics and
returns up to 500 series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_

if TYPE_CHECKING:
    from collections.abc import Sequence

    from constructs import Construct

TOP_KEYS = 10
TOP_PLANS = 20


@dataclass(frozen=True, kw_only=True)
class DashboardParts:
    namespace: str
    interval: Duration
    thresholds: Sequence[int]
    monitor_function: lambda_.IFunction
    alarms: Sequence[cloudwatch.IAlarm]


def insights_query(namespace: str, *, select: str, dimensions: Sequence[str], order: str, limit: int) -> str:
    """``SELECT MAX(QuotaUtilization) FROM SCHEMA("ns", ApiKeyId, UsagePlanId) GROUP BY ... ``.

    ``select`` is ``FUNCTION(Metric)``; the query orders by that function, ``order`` ASC or DESC.
    """
    function = select.split("(", 1)[0]
    schema = ", ".join([f'"{namespace}"', *dimensions])
    group = ", ".join(dimensions)
    # Metrics Insights, not a database; every part comes from this module or the checked namespace.
    return (
        f"SELECT {select} FROM SCHEMA({schema}) GROUP BY {group} ORDER BY {function}() {order} LIMIT {limit}"  # noqa: S608
    )


def _query(expression: str, interval: Duration) -> cloudwatch.MathExpression:
    # An empty label: each series is then named by its group (plan and key ids), not by the query.
    return cloudwatch.MathExpression(expression=expression, using_metrics={}, period=interval, label="")


def quota_dashboard(scope: Construct, id_: str, *, parts: DashboardParts) -> cloudwatch.Dashboard:
    namespace, interval = parts.namespace, parts.interval
    key_dimensions = ("UsagePlanId", "ApiKeyId")
    levels = [
        cloudwatch.HorizontalAnnotation(
            value=level, label=f"alert at {level}%", color=cloudwatch.Color.ORANGE
        )
        for level in parts.thresholds
    ]

    def metric(name: str, statistic: str, label: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=namespace, metric_name=name, statistic=statistic, period=interval, label=label
        )

    dashboard = cloudwatch.Dashboard(scope, id_, default_interval=Duration.days(7))
    dashboard.add_widgets(
        cloudwatch.TextWidget(
            markdown=f"# API Gateway usage-plan quotas\nMetrics in namespace `{namespace}`, published "
            f"every {interval.to_minutes()} minutes by the quota monitor. Series are named by usage "
            "plan id and API key id; `quota-monitor scan` shows names.",
            width=24,
            height=2,
        )
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title=f"Top {TOP_KEYS} keys by quota utilization (%)",
            left=[
                _query(
                    insights_query(
                        namespace,
                        select="MAX(QuotaUtilization)",
                        dimensions=key_dimensions,
                        order="DESC",
                        limit=TOP_KEYS,
                    ),
                    interval,
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
                _query(
                    insights_query(
                        namespace,
                        select="MIN(RemainingQuota)",
                        dimensions=key_dimensions,
                        order="ASC",
                        limit=TOP_KEYS,
                    ),
                    interval,
                )
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="requests", show_units=False),
            width=8,
            height=8,
        ),
        cloudwatch.GraphWidget(
            title=f"Highest key utilization per plan (top {TOP_PLANS} plans, %)",
            left=[
                _query(
                    insights_query(
                        namespace,
                        select="MAX(MaxQuotaUtilization)",
                        dimensions=("UsagePlanId",),
                        order="DESC",
                        limit=TOP_PLANS,
                    ),
                    interval,
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
                function.metric_errors(period=interval, statistic="Sum", label="Function errors"),
                metric("ScanErrors", "Sum", "Scan errors (plans or keys not read)"),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            width=6,
            height=6,
        ),
        cloudwatch.GraphWidget(
            title="Plans and keys scanned (the heartbeat)",
            left=[metric("KeysScanned", "Maximum", "Keys"), metric("PlansScanned", "Maximum", "Plans")],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            width=6,
            height=6,
        ),
        cloudwatch.GraphWidget(
            title="API Gateway calls per run",
            left=[metric("ApiCalls", "Sum", "Calls"), metric("ApiThrottles", "Sum", "Throttled (429)")],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            width=6,
            height=6,
        ),
        cloudwatch.GraphWidget(
            title="Run duration and alerts",
            left=[metric("ScanDuration", "Maximum", "Scan duration (s)")],
            right=[
                metric("AlertsSent", "Sum", "Alerts sent"),
                metric("AlertDeliveryFailures", "Sum", "Alert delivery failures"),
                metric("AlertStateErrors", "Sum", "Alert state errors"),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="seconds", show_units=False),
            right_y_axis=cloudwatch.YAxisProps(min=0, label="alerts", show_units=False),
            width=6,
            height=6,
        ),
    )
    dashboard.add_widgets(
        cloudwatch.AlarmStatusWidget(title="Monitor alarms", alarms=list(parts.alarms), width=24, height=3)
    )
    return dashboard
