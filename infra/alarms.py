"""The monitor watching itself: alarms that publish to the alert topic, on entering ALARM and on
returning to OK, so that somebody learns when the monitor fails or stops.

The heartbeat is the one that matters most: every run publishes ``KeysScanned`` (zero keys is
still a data point), so no data point for two schedule intervals means no run finished, whatever
the cause (schedule disabled, function failing at cold start, permissions, a region outage).
Two intervals rather than one because a run's data point can land just across a period boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

if TYPE_CHECKING:
    from constructs import Construct

    from infra.metrics import MonitorMetrics

#: SQS publishes queue metrics every five minutes.
QUEUE_METRIC_PERIOD = Duration.minutes(5)


@dataclass(frozen=True, kw_only=True)
class WatchedParts:
    """What the alarms watch."""

    metrics: MonitorMetrics
    monitor_function: lambda_.IFunction
    run_dead_letter_queue: sqs.IQueue
    forwarder_function: lambda_.IFunction | None = None
    forwarder_dead_letter_queue: sqs.IQueue | None = None
    #: The fast path's function and its interval, when it is on.
    fast_function: lambda_.IFunction | None = None
    fast_interval: Duration | None = None
    #: Whether runs write the usage archive (its failures have an alarm).
    archived: bool = False
    #: Whether runs write the quota endpoint's key snapshots (their failures have an alarm).
    key_snapshots: bool = False


#: The fast path's alarm: errors in this many of the last :data:`FAST_ERROR_WINDOW` intervals (one
#: failed minute is retried by the next; three in five is a fast path that does not work).
FAST_ERROR_INTERVALS = 3
FAST_ERROR_WINDOW = 5
#: The fast path's heartbeat: no invocation for this long.
FAST_HEARTBEAT = Duration.minutes(5)


@dataclass(frozen=True, kw_only=True)
class MonitorAlarms:
    """The alarms by what they watch; the dashboard draws each one's threshold on its metric's widget."""

    monitor_errors: cloudwatch.Alarm
    scan_errors: cloudwatch.Alarm
    heartbeat: cloudwatch.Alarm
    alert_delivery_failures: cloudwatch.Alarm
    alert_state_errors: cloudwatch.Alarm
    run_dead_letters: cloudwatch.Alarm
    slack_forwarder_errors: cloudwatch.Alarm | None = None
    slack_dead_letters: cloudwatch.Alarm | None = None
    fast_path_errors: cloudwatch.Alarm | None = None
    fast_path_heartbeat: cloudwatch.Alarm | None = None
    archive_failures: cloudwatch.Alarm | None = None
    snapshot_failures: cloudwatch.Alarm | None = None

    @property
    def all(self) -> list[cloudwatch.Alarm]:
        return self.monitor + self.forwarder

    @property
    def monitor(self) -> list[cloudwatch.Alarm]:
        """The alarms about the monitor: to the alert topic."""
        return [
            self.monitor_errors,
            self.scan_errors,
            self.heartbeat,
            self.alert_delivery_failures,
            self.alert_state_errors,
            self.run_dead_letters,
            *(
                alarm
                for alarm in (
                    self.fast_path_errors,
                    self.fast_path_heartbeat,
                    self.archive_failures,
                    self.snapshot_failures,
                )
                if alarm is not None
            ),
        ]

    @property
    def forwarder(self) -> list[cloudwatch.Alarm]:
        """The alarms about the Slack webhook forwarder: never through the forwarder itself."""
        return [
            alarm for alarm in (self.slack_forwarder_errors, self.slack_dead_letters) if alarm is not None
        ]


def _above_zero(
    scope: Construct,
    id_: str,
    *,
    name: str,
    metric: cloudwatch.IMetric,
    description: str,
) -> cloudwatch.Alarm:
    return cloudwatch.Alarm(
        scope,
        id_,
        alarm_name=name,
        alarm_description=description,
        metric=metric,
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        # No data means nothing went wrong here; a monitor that stopped is the heartbeat's case.
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


def _fast_path_errors(scope: Construct, parts: WatchedParts, name_prefix: str) -> cloudwatch.Alarm | None:
    if parts.fast_function is None or parts.fast_interval is None:
        return None
    return cloudwatch.Alarm(
        scope,
        "FastPathErrorsAlarm",
        alarm_name=f"{name_prefix}-fast-path-errors",
        alarm_description=f"The fast path failed in {FAST_ERROR_INTERVALS} of its last {FAST_ERROR_WINDOW} "
        "runs (Lambda Errors): its lease or watch lists could not be read (DynamoDB), or none of the "
        "watched plans could. Crossings are then alerted by the full scan only, up to an interval "
        "late. The fast function's log group says why.",
        metric=parts.fast_function.metric_errors(period=parts.fast_interval, statistic="Sum"),
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=FAST_ERROR_WINDOW,
        datapoints_to_alarm=FAST_ERROR_INTERVALS,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


def _fast_path_heartbeat(scope: Construct, parts: WatchedParts, name_prefix: str) -> cloudwatch.Alarm | None:
    if parts.fast_function is None or parts.fast_interval is None:
        return None
    period = (
        FAST_HEARTBEAT
        if parts.fast_interval.to_seconds() < FAST_HEARTBEAT.to_seconds()
        else parts.fast_interval
    )
    return cloudwatch.Alarm(
        scope,
        "FastPathHeartbeatAlarm",
        alarm_name=f"{name_prefix}-fast-path-heartbeat",
        alarm_description=f"The fast path has not run for {int(period.to_minutes())} minutes (no Lambda "
        "Invocations): EventBridge Scheduler could not invoke it (AWS/Scheduler TargetErrorCount, "
        "InvocationDroppedCount), Lambda dropped its events (AsyncEventsDropped), or the schedule is "
        "off. Crossings are then alerted by the full scan only, up to an interval late.",
        metric=parts.fast_function.metric_invocations(period=period, statistic="Sum"),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        # A function never invoked publishes no Invocations at all: that is the case to catch.
        treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
    )


def self_monitoring_alarms(
    scope: Construct,
    *,
    parts: WatchedParts,
    topic: sns.ITopic,
    name_prefix: str,
    forwarder_topic: sns.ITopic | None = None,
) -> MonitorAlarms:
    """The alarms, each with the topic as its ALARM and OK action; the Slack forwarder's own alarms
    with ``forwarder_topic`` instead, which the forwarder does not read (a broken webhook must not
    swallow the alarm that says so)."""
    metrics = parts.metrics
    interval = metrics.period
    forwarder_errors = forwarder_dead_letters = None
    if parts.forwarder_function is not None:
        forwarder_errors = _above_zero(
            scope,
            "SlackForwarderErrorsAlarm",
            name=f"{name_prefix}-slack-forwarder-errors",
            metric=parts.forwarder_function.metric_errors(period=QUEUE_METRIC_PERIOD, statistic="Sum"),
            description="The Slack webhook forwarder failed to post (it retries; the log says why: "
            "a placeholder or revoked webhook URL, or Slack answering 4xx/5xx).",
        )
    if parts.forwarder_dead_letter_queue is not None:
        forwarder_dead_letters = _above_zero(
            scope,
            "SlackDeadLettersAlarm",
            name=f"{name_prefix}-slack-dead-letters",
            metric=parts.forwarder_dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=QUEUE_METRIC_PERIOD, statistic="Maximum"
            ),
            description="Alerts that never reached Slack after all retries are in the forwarder's "
            "dead-letter queue (email and the other subscribers still had them).",
        )
    alarms = MonitorAlarms(
        monitor_errors=_above_zero(
            scope,
            "MonitorErrorsAlarm",
            name=f"{name_prefix}-monitor-errors",
            metric=parts.monitor_function.metric_errors(period=interval, statistic="Sum"),
            description="The quota monitor function failed (Lambda Errors > 0): the usage plans could "
            "not be listed, none could be read, or the metrics could not be published (or it crashed). "
            "Its log group says why; Lambda retries once.",
        ),
        scan_errors=_above_zero(
            scope,
            "ScanErrorsAlarm",
            name=f"{name_prefix}-scan-errors",
            metric=metrics.scan_errors,
            description="Some usage plans or keys could not be read in the last run of the full scan or "
            "the fast path (ScanErrors > 0); their metrics and alerts are missing. The function's log "
            "has one 'scan failure' line each.",
        ),
        heartbeat=cloudwatch.Alarm(
            scope,
            "HeartbeatAlarm",
            alarm_name=f"{name_prefix}-heartbeat-missing",
            alarm_description="No quota monitor run has finished for two schedule intervals "
            "(no KeysScanned data point): quotas are not being watched. Check the schedule, the "
            "function's errors and its log group.",
            metric=metrics.runs_finished,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        ),
        alert_delivery_failures=_above_zero(
            scope,
            "AlertDeliveryFailuresAlarm",
            name=f"{name_prefix}-alert-delivery-failures",
            metric=metrics.alert_delivery_failures,
            description="Quota alerts could not be published to SNS, events could not be put on "
            "EventBridge, or a run out of time left alerts to the next (AlertDeliveryFailures > 0). "
            "They are kept and retried by the next run; the function's log says why.",
        ),
        alert_state_errors=_above_zero(
            scope,
            "AlertStateErrorsAlarm",
            name=f"{name_prefix}-alert-state-errors",
            metric=metrics.alert_state_errors,
            description="The alert state table could not be read or written, or an item in it did not "
            "parse (AlertStateErrors > 0): no alert goes out for the keys concerned (for any key when the "
            "table cannot be read). The function's log has an 'alert state' line for each.",
        ),
        run_dead_letters=_above_zero(
            scope,
            "RunDeadLettersAlarm",
            name=f"{name_prefix}-run-dead-letters",
            metric=parts.run_dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=QUEUE_METRIC_PERIOD, statistic="Maximum"
            ),
            description="A scheduled run was dropped (EventBridge Scheduler could not invoke the "
            "function, or Lambda gave the event up): its dead-letter queue holds the event.",
        ),
        slack_forwarder_errors=forwarder_errors,
        slack_dead_letters=forwarder_dead_letters,
        fast_path_errors=_fast_path_errors(scope, parts, name_prefix),
        fast_path_heartbeat=_fast_path_heartbeat(scope, parts, name_prefix),
        archive_failures=_above_zero(
            scope,
            "ArchiveFailuresAlarm",
            name=f"{name_prefix}-archive-failures",
            metric=metrics.archive_failures,
            description="A full run's records could not be written to the usage archive "
            "(ArchiveFailures > 0): statements and Athena miss that run. The run's alerts and metrics "
            "went out; the function's log has an 'archive not written' line saying why.",
        )
        if parts.archived
        else None,
        snapshot_failures=_above_zero(
            scope,
            "SnapshotFailuresAlarm",
            name=f"{name_prefix}-snapshot-failures",
            metric=metrics.snapshot_failures,
            description="A run could not write the quota endpoint's key snapshots of a target "
            "(SnapshotFailures > 0): GET /quota answers from the last ones written, their asOf saying how "
            "old, and 404 once they expire (2 days). The function's log has a 'key snapshots not "
            "written' line saying why.",
        )
        if parts.key_snapshots
        else None,
    )
    action = actions.SnsAction(topic)
    forwarder_action = actions.SnsAction(forwarder_topic) if forwarder_topic is not None else action
    for alarms_of, chosen in ((alarms.monitor, action), (alarms.forwarder, forwarder_action)):
        for alarm in alarms_of:
            alarm.add_alarm_action(chosen)
            alarm.add_ok_action(chosen)
    return alarms
