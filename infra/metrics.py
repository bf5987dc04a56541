"""The monitor's own CloudWatch metrics for the stack: each one built once, from the namespace and the
names the runtime publishes (``quota_monitor.MetricName``).

The alarms (:mod:`infra.alarms`) and the dashboard (:mod:`infra.dashboard`) share these objects, so an
alarm and the widget that shows it read the same statistic over the same period, and no metric name
is spelled anywhere else in the stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_cloudwatch as cloudwatch

from quota_monitor import KEY_DIMENSION, PLAN_DIMENSION, MetricName

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_cdk import Duration


class MonitorMetrics:
    """The namespace's metrics at the schedule's period, as the stack uses them."""

    def __init__(self, namespace: str, period: Duration) -> None:
        self.namespace = namespace
        self.period = period
        #: Every run publishes KeysScanned, zero keys included: its count of data points is the
        #: heartbeat (runs that finished).
        self.runs_finished = self.metric(MetricName.KEYS_SCANNED, "SampleCount")
        self.keys_scanned = self.metric(MetricName.KEYS_SCANNED, "Maximum")
        self.plans_scanned = self.metric(MetricName.PLANS_SCANNED, "Maximum")
        self.scan_errors = self.metric(MetricName.SCAN_ERRORS, "Sum")
        self.api_calls = self.metric(MetricName.API_CALLS, "Sum")
        self.api_throttles = self.metric(MetricName.API_THROTTLES, "Sum")
        self.scan_duration = self.metric(MetricName.SCAN_DURATION, "Maximum")
        self.alerts_sent = self.metric(MetricName.ALERTS_SENT, "Sum")
        self.alert_delivery_failures = self.metric(MetricName.ALERT_DELIVERY_FAILURES, "Sum")
        self.alert_state_errors = self.metric(MetricName.ALERT_STATE_ERRORS, "Sum")
        #: Published only by a run whose archive could not be written (no data: none failed).
        self.archive_failures = self.metric(MetricName.ARCHIVE_FAILURES, "Sum")
        #: Published only by a run that could not write a target's key snapshots (the quota endpoint's).
        self.snapshot_failures = self.metric(MetricName.SNAPSHOT_FAILURES, "Sum")

    def metric(self, name: MetricName, statistic: str) -> cloudwatch.Metric:
        """Without a label: an alarm on a labelled metric becomes a metric-math alarm. Widgets label
        their copy (``metric.with_(label=...)``)."""
        return cloudwatch.Metric(
            namespace=self.namespace, metric_name=name.value, statistic=statistic, period=self.period
        )

    def top(
        self, name: MetricName, *, function: str, per: Sequence[str], order: str, limit: int
    ) -> cloudwatch.MathExpression:
        """A Metrics Insights query: the ``limit`` series of ``name`` with the highest (``DESC``) or
        lowest (``ASC``) ``function``, one series per value of the ``per`` dimensions.

        Keys come and go without a redeploy, because the query finds them. CDK has no construct for
        Metrics Insights (aws-cdk issue 22844); a ``MathExpression`` holding the query works in a graph
        widget (docs/aws-behaviour.md#cloudwatch-metrics). A query scans up to 10,000 metrics and
        returns up to 500 series.
        """
        return cloudwatch.MathExpression(
            expression=insights_query(
                self.namespace, select=f"{function}({name.value})", dimensions=per, order=order, limit=limit
            ),
            using_metrics={},
            period=self.period,
            # An empty label: each series is then named by its group (plan and key ids), not by the query.
            label="",
        )


#: The dimensions of a per-key metric, and of a per-plan one.
KEY_DIMENSIONS = (PLAN_DIMENSION, KEY_DIMENSION)
PLAN_DIMENSIONS = (PLAN_DIMENSION,)


def insights_query(namespace: str, *, select: str, dimensions: Sequence[str], order: str, limit: int) -> str:
    """``SELECT MAX(QuotaUtilization) FROM SCHEMA("ns", UsagePlanId, ApiKeyId) GROUP BY ... ``.

    ``select`` is ``FUNCTION(Metric)``; the query orders by that function, ``order`` ASC or DESC.
    """
    if order not in ("ASC", "DESC"):
        raise ValueError(f"order {order!r} is not ASC or DESC")
    function = select.split("(", 1)[0]
    schema = ", ".join([f'"{namespace}"', *dimensions])
    group = ", ".join(dimensions)
    # Metrics Insights, not a database; every part comes from this module or the checked namespace.
    return (
        f"SELECT {select} FROM SCHEMA({schema}) GROUP BY {group} ORDER BY {function}() {order} LIMIT {limit}"  # noqa: S608
    )
