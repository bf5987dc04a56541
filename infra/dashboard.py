"""The CloudWatch dashboard: every key from the records, the keys with metrics, and the monitor's health.

- Logs Insights tables over the records in the function's log group (:mod:`infra.record_views`):
  the most used keys now, any key or plan found through the "Key or plan" box (a dashboard
  variable), every plan with its hottest key, and the keys forecast to run out. They read the
  dashboard's time range, which opens at the records window (the schedule interval and 5 minutes:
  one run's records, two at most), so a refresh scans megabytes (docs/cost.md).
- Graphs of the keys that have per-key metrics (``KEY_METRICS``), as Metrics Insights queries
  (:meth:`infra.metrics.MonitorMetrics.top`), so keys come and go without a redeploy.
- The health graphs, the same metric objects the alarms watch, with each alarm's threshold.

Every graph keeps its own time range (a week; CDK's ``start``, the console's "persist time range",
docs/aws-behaviour.md#cloudwatch-dashboards), so that the dashboard's range, which the Logs Insights
widgets read, can stay short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_

from infra.metrics import KEY_DIMENSIONS, PLAN_DIMENSIONS
from infra.record_views import (
    SEARCH_DEFAULT,
    SEARCH_LABEL,
    SEARCH_PATTERN,
    SEARCH_VARIABLE_ID,
    record_views,
    records_window,
)
from quota_monitor import MetricName

if TYPE_CHECKING:
    from collections.abc import Sequence

    from constructs import Construct

    from infra.alarms import MonitorAlarms
    from infra.metrics import MonitorMetrics

TOP_KEYS = 10
TOP_PLANS = 20
#: The time range every graph keeps, whatever the dashboard's (ISO 8601, relative to now).
GRAPH_RANGE = "-P7D"


@dataclass(frozen=True, kw_only=True)
class DashboardParts:
    metrics: MonitorMetrics
    thresholds: Sequence[int]
    monitor_function: lambda_.IFunction
    alarms: MonitorAlarms
    #: The function's log group, where the records are.
    records_log_group: str
    #: The ``KEY_METRICS`` setting, as described (``auto``, ``all``, ...).
    key_metrics: str
    #: Whether the per-plan roll-ups are published (not with ``auto``).
    plan_rollups: bool
    #: Regions of ``REGIONS`` other than the stack's own (its graphs there are cross-region widgets;
    #: with the stack's region a token, every region of ``REGIONS``).
    other_regions: tuple[str, ...] = ()
    #: Other accounts the monitor reads (their metrics stay there: their keys show in the tables).
    spoke_accounts: tuple[str, ...] = ()
    #: Whether runs write the usage archive (its failures are graphed).
    archived: bool = False
    #: Whether runs write the quota endpoint's key snapshots (their failures are graphed).
    key_snapshots: bool = False

    @property
    def several_targets(self) -> bool:
        return bool(self.other_regions or self.spoke_accounts)


def quota_dashboard(scope: Construct, id_: str, *, parts: DashboardParts) -> cloudwatch.Dashboard:
    metrics, alarms = parts.metrics, parts.alarms
    interval = metrics.period
    window = records_window(int(interval.to_minutes()))
    levels = [
        cloudwatch.HorizontalAnnotation(
            value=level, label=f"alert at {level}%", color=cloudwatch.Color.ORANGE
        )
        for level in parts.thresholds
    ]

    dashboard = cloudwatch.Dashboard(
        scope,
        id_,
        start=f"-PT{window}M",
        variables=[
            cloudwatch.DashboardVariable(
                id=SEARCH_VARIABLE_ID,
                type=cloudwatch.VariableType.PATTERN,
                input_type=cloudwatch.VariableInputType.INPUT,
                value=SEARCH_PATTERN,
                label=SEARCH_LABEL,
                default_value=cloudwatch.DefaultValue.value(SEARCH_DEFAULT),
                visible=True,
            )
        ],
    )
    dashboard.add_widgets(
        cloudwatch.TextWidget(
            markdown="# API Gateway usage-plan quotas\n"
            f"Every key, from the records the quota monitor writes to its log group every "
            f"{interval.to_minutes()} minutes (Logs Insights, first two rows), and the keys with "
            f"per-key metrics in namespace `{metrics.namespace}` (`KEY_METRICS={parts.key_metrics}`). "
            f"The tables read the dashboard's time range: keep it at {window} minutes, one run's "
            "records; a longer range scans more (and costs more) for the same tables. The graphs keep "
            "their own week. Type an id or a name, or part of one, in the box above to find a key or plan.",
            width=24,
            height=3,
        )
    )
    views = record_views(several=parts.several_targets)
    for row in (views[:2], views[2:4], views[4:]):
        dashboard.add_widgets(
            *(
                cloudwatch.LogQueryWidget(
                    title=view.title,
                    log_group_names=[parts.records_log_group],
                    query_lines=list(view.commands),
                    view=cloudwatch.LogQueryVisualizationType.TABLE,
                    width=view.width,
                    height=view.height,
                )
                for view in row
            )
        )
    graph_width = 8 if parts.plan_rollups else 12
    key_graphs: list[cloudwatch.IWidget] = [
        _hottest_keys(
            metrics,
            title=f"Keys with per-key metrics: top {TOP_KEYS} by quota utilization (%)",
            levels=levels,
            width=graph_width,
            height=8,
        ),
        cloudwatch.GraphWidget(
            title=f"Keys with per-key metrics: {TOP_KEYS} with the least quota remaining",
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
            start=GRAPH_RANGE,
            width=graph_width,
            height=8,
        ),
    ]
    if parts.plan_rollups:
        key_graphs.append(
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
                start=GRAPH_RANGE,
                width=8,
                height=8,
            )
        )
    dashboard.add_widgets(*key_graphs)
    if parts.other_regions:
        dashboard.add_widgets(*_other_regions(metrics, parts.other_regions, levels))
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
            start=GRAPH_RANGE,
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
            start=GRAPH_RANGE,
            width=6,
            height=6,
        ),
        cloudwatch.GraphWidget(
            title="API Gateway calls per run",
            left=[_shown(metrics.api_calls, "Calls"), _shown(metrics.api_throttles, "Throttled (429)")],
            left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
            start=GRAPH_RANGE,
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
                *([_shown(metrics.archive_failures, "Archive failures")] if parts.archived else []),
                *([_shown(metrics.snapshot_failures, "Snapshot failures")] if parts.key_snapshots else []),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, label="seconds", show_units=False),
            right_y_axis=cloudwatch.YAxisProps(min=0, label="alerts", show_units=False),
            right_annotations=[
                alarms.alert_delivery_failures.to_annotation(),
                alarms.alert_state_errors.to_annotation(),
            ],
            start=GRAPH_RANGE,
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


def _other_regions(
    metrics: MonitorMetrics, regions: Sequence[str], levels: Sequence[cloudwatch.HorizontalAnnotation]
) -> list[cloudwatch.IWidget]:
    """The keys with per-key metrics in the monitor's own account in other regions: each a graph of
    that region's metrics (a dashboard can show any region's; another account's need CloudWatch
    cross-account observability, docs/deploy.md, so spokes show in the tables only)."""
    width = max(6, 24 // len(regions)) if len(regions) <= 4 else 6
    return [
        _hottest_keys(
            metrics,
            title=f"{region}: keys with per-key metrics, top {TOP_KEYS} by quota utilization (%)",
            levels=levels,
            width=width,
            height=6,
            region=region,
        )
        for region in regions
    ]


def _hottest_keys(
    metrics: MonitorMetrics,
    *,
    title: str,
    levels: Sequence[cloudwatch.HorizontalAnnotation],
    width: int,
    height: int,
    region: str | None = None,
) -> cloudwatch.GraphWidget:
    """A graph of the keys with per-key metrics, the most utilized first, with the alert levels;
    ``region`` reads another region's metrics (the dashboard's own when None)."""
    return cloudwatch.GraphWidget(
        title=title,
        left=[
            metrics.top(
                MetricName.QUOTA_UTILIZATION,
                function="MAX",
                per=KEY_DIMENSIONS,
                order="DESC",
                limit=TOP_KEYS,
            )
        ],
        region=region,
        left_y_axis=cloudwatch.YAxisProps(min=0, label="%", show_units=False),
        left_annotations=list(levels),
        start=GRAPH_RANGE,
        width=width,
        height=height,
    )
