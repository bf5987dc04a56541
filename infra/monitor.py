"""``UsageQuotaMonitor``: the whole monitor as one construct, to drop into any stack.

What it builds, and the safety that comes with it whatever the settings:

- the monitor function (``lambdas/`` only, python3.14, arm64), run by EventBridge Scheduler every
  ``schedule_minutes`` with a retry policy and an encrypted dead-letter queue; a timeout shorter
  than the interval, reserved concurrency 1 (unless turned off), one asynchronous retry, and
  events that can no longer run before the next one is due dropped to the same queue;
- a role with exactly the calls the runtime makes (:mod:`infra.permissions`);
- the alert topic under a rotating customer managed key, email subscriptions, optionally AWS
  Chatbot (Slack, Microsoft Teams) and the Slack webhook forwarder; a topic per route under the
  same key, with its own emails and chat channels (:mod:`infra.alerting`);
- optionally an EventBridge event per notification, on the default bus or one of the stack's own,
  with the events' schema in a registry and an example rule to an SQS queue (:mod:`infra.events`);
- the alert state table: on-demand, point-in-time recovery, encrypted, TTL ``expiresAt``;
- self-monitoring alarms to the topic (:mod:`infra.alarms`) and a dashboard (:mod:`infra.dashboard`)
  that shows every key from the records in the function's log group (Logs Insights) and the keys
  with per-key metrics;
- cdk-nag acknowledgements, each with its reason (:mod:`infra.nag`).

Lambda's asynchronous invocation and the scheduler both deliver at least once: the runtime makes
every side effect safe twice (docs/aws-behaviour.md#scheduling-and-delivery).
"""

from __future__ import annotations

import json
from typing import Final

from aws_cdk import Annotations, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra import nag, permissions
from infra.alarms import WatchedParts, self_monitoring_alarms
from infra.alerting import SERVICE_NAME, AlertTopic, SlackWebhookForwarder, chat_channels
from infra.archive import UsageArchive
from infra.dashboard import DashboardParts, quota_dashboard
from infra.endpoint import QuotaEndpoint
from infra.events import QuotaEvents
from infra.functions import RETENTION, FunctionSpec, dead_letter_queue, python_function
from infra.metrics import MonitorMetrics
from infra.permissions import SpokeAccess
from infra.powertools import powertools_layer
from infra.settings import (
    SPOKE_ACCOUNTS_PER_PARAMETER,
    MonitorSettings,
    check_environment_size,
    check_runtime_environment,
    deploy_time_value_bytes,
    spoke_accounts_path,
)

MONITOR_HANDLER: Final = "quota_monitor.handler.handler"
FAST_HANDLER: Final = "quota_monitor.fast_handler.handler"
#: The shortest wait Lambda allows an asynchronous event (MaximumEventAgeInSeconds): a fast run's
#: event older than this is dropped, the next minute's run reads afresh.
FAST_MAX_EVENT_AGE: Final = Duration.seconds(60)
STATE_PARTITION_KEY: Final = "pk"
STATE_TTL_ATTRIBUTE: Final = "expiresAt"
#: EventBridge Scheduler retries a failed invocation (the Invoke API refusing, not the function
#: failing) with backoff, within the event age below.
SCHEDULER_RETRY_ATTEMPTS: Final = 5
#: Lambda's asynchronous retries after a function error: one, for a transient failure; the next
#: scheduled run is the real retry, and more would pile onto it.
LAMBDA_RETRY_ATTEMPTS: Final = 1
LAMBDA_MAX_EVENT_AGE_LIMIT: Final = Duration.hours(6)


#: Memory the month's first run needs at 10,000 alerted keys with room to spare: the recovery storm
#: peaked at 161 MiB in ``make bench`` (docs/benchmarks.md), the scan alone at 87.
ALERT_STORM_MEMORY_MB = 256


class UsageQuotaMonitor(Construct):
    """Remaining-quota metrics and alerts for every API Gateway usage plan of the account and region.

    ``settings`` is checked when it is created (:class:`~infra.settings.MonitorSettings`);
    ``powertools_layer`` replaces the layer built from this project's ``uv.lock``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        settings: MonitorSettings | None = None,
        powertools_layer: lambda_.ILayerVersion | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.settings = settings = settings or MonitorSettings()
        stack = Stack.of(self)
        removal = RemovalPolicy.RETAIN if settings.removal_policy == "retain" else RemovalPolicy.DESTROY
        log_retention = RETENTION[settings.log_retention_days]
        self.interval = interval = Duration.minutes(settings.schedule_minutes)
        layer = powertools_layer or _default_layer(self)

        self.alerts = AlertTopic(
            self,
            "Alerts",
            emails=settings.alert_emails,
            routes=settings.alert_routes,
            removal_policy=removal,
            # The forwarder's own alarms need a way to people that does not go through it.
            ops_topic=settings.slack_webhook is not None,
        )
        self.table = dynamodb.Table(
            self,
            "AlertState",
            partition_key=dynamodb.Attribute(name=STATE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=STATE_TTL_ATTRIBUTE,
            removal_policy=removal,
        )
        self.run_dead_letter_queue = dead_letter_queue(self, "RunDeadLetterQueue")

        self.events = (
            QuotaEvents(
                self,
                "Events",
                bus=settings.event_bus,
                to_queue=settings.events_to_queue,
                removal_policy=removal,
            )
            if settings.event_bus is not None
            else None
        )
        #: The usage archive (None unless ``archive`` or ``archiveBucketName``): every full run's records
        #: in S3, Athena over them (docs/archive.md).
        self.archive = (
            UsageArchive(
                self,
                "Archive",
                bucket_name=settings.archive_bucket_name,
                cold_after_days=settings.archive_cold_after_days,
                retention_days=settings.archive_retention_days,
                removal_policy=removal,
            )
            if settings.archived
            else None
        )
        routes = {name: topic.topic_arn for name, topic in self.alerts.routes.items()}
        environment = {
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_LOG_LEVEL": settings.log_level,
            **({} if settings.tracing else {"POWERTOOLS_TRACE_DISABLED": "true"}),
            "ALERT_TOPIC_ARN": self.alerts.topic.topic_arn,
            "ALERT_TABLE_NAME": self.table.table_name,
            **({"ALERT_ROUTES": stack.to_json_string(routes)} if routes else {}),
            **({"EVENT_BUS_NAME": self.events.bus_name} if self.events is not None else {}),
            **settings.runtime,
            **settings.fast_environment(),
            **({"KEY_SNAPSHOTS": "on"} if settings.quota_endpoint else {}),
            **({"ARCHIVE_BUCKET": self.archive.bucket.bucket_name} if self.archive is not None else {}),
        }
        #: The spoke accounts, listed in SSM parameters (not in the environment: Lambda allows 4 KB
        #: of it in all, and 1,000 accounts take 13 KB), read by the functions every run.
        self.spoke_accounts = spoke_account_parameters(self, settings, stack.stack_name)
        environment.update(settings.spoke_environment(stack.stack_name))
        runtime = check_runtime_environment(environment, examples=settings.deploy_time_examples())
        generated = "x" * deploy_time_value_bytes(stack.stack_name)
        check_environment_size(
            {**environment, "METRIC_NAMESPACE": runtime.namespace},
            stack_name=stack.stack_name,
            deploy_time={"ALERT_ROUTES": json.dumps(dict.fromkeys(routes, generated), separators=(",", ":"))},
        )
        # Spelled out, so that the IAM condition, the dashboard and the function agree on it.
        environment["METRIC_NAMESPACE"] = self.namespace = runtime.namespace
        self.function = python_function(
            self,
            "Function",
            spec=FunctionSpec(
                handler=MONITOR_HANDLER,
                description=f"Scans API Gateway usage-plan quotas every {settings.schedule_minutes} "
                "minutes: remaining-quota metrics and alerts",
                environment=environment,
                timeout=Duration.seconds(settings.timeout),
                memory_mb=settings.memory_mb,
                retry_attempts=LAMBDA_RETRY_ATTEMPTS,
                # An event that waited (throttled) a whole interval would run next to the next
                # one: drop it to the dead-letter queue instead.
                max_event_age=_shorter(interval, LAMBDA_MAX_EVENT_AGE_LIMIT),
                dead_letter_queue=self.run_dead_letter_queue,
                reserved_concurrency=1 if settings.reserved_concurrency else None,
                tracing=settings.tracing,
                # Spoke roles trust this role by its ARN: a name that survives a replacement. Role
                # names are global to an account, so the region is in it (docs/deploy.md).
                role_name=hub_role_name(stack.stack_name) if settings.spoke_accounts else None,
            ),
            layer=layer,
            log_retention=log_retention,
            removal_policy=removal,
        )
        for statement in permissions.monitor_statements(
            namespace=runtime.namespace,
            cross_check_plan_keys=runtime.scan.cross_check_plan_keys,
            table_arn=self.table.table_arn,
            regions=runtime.targets.regions,
            spokes=SpokeAccess(
                role_name=settings.spoke_role_name,
                accounts=settings.spoke_accounts,
                organization_id=settings.spoke_organization_id,
                parameters_path=spoke_accounts_path(stack.stack_name),
            )
            if settings.spoke_accounts
            else None,
            fast_path=settings.fast_path,
            key_snapshots=settings.quota_endpoint,
        ):
            self.function.add_to_role_policy(statement)
        self.alerts.grant_publish_to(self.function)
        if self.events is not None:
            self.events.grant_put_events(self.function)
        #: The fast path's function (None when ``fastScheduleMinutes`` is 0).
        self.fast_function = (
            self._fast_function(environment, layer=layer, log_retention=log_retention, removal=removal)
            if settings.fast_path
            else None
        )
        if self.archive is not None:
            self.archive.grant_write(self.function)
        #: ``GET /quota``'s function (None unless ``quotaEndpoint``): attach it to your API.
        self.quota_endpoint = (
            QuotaEndpoint(
                self,
                "QuotaEndpoint",
                table=self.table,
                schedule_minutes=settings.schedule_minutes,
                layer=layer,
                log_retention=log_retention,
                removal_policy=removal,
            )
            if settings.quota_endpoint
            else None
        )
        if self.quota_endpoint is not None:
            # The GET routes of the REST APIs named in quotaEndpointApiIds may call it, or of any of
            # this account's (the console or an OpenAPI import attaches it): it answers a caller's
            # own key only (docs/endpoint.md).
            for api_id in settings.quota_endpoint_api_ids or ("*",):
                self.quota_endpoint.function.add_permission(
                    "InvokedByApiGateway" if api_id == "*" else f"InvokedBy{api_id}",
                    principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
                    source_account=stack.account,
                    source_arn=f"arn:{Aws.PARTITION}:execute-api:{Aws.REGION}:{Aws.ACCOUNT_ID}:{api_id}/*/GET/*",
                )

        # A role of our own rather than the stack-wide one CDK would make, so that its grant sits
        # with the monitor (and its cdk-nag acknowledgement with it).
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="EventBridge Scheduler: invokes the quota monitor, dead letters to its queue",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=f"Runs the API Gateway quota monitor every {settings.schedule_minutes} minutes",
            schedule=scheduler.ScheduleExpression.rate(interval),
            target=targets.LambdaInvoke(
                self.function,
                role=self.schedule_role,
                dead_letter_queue=self.run_dead_letter_queue,
                retry_attempts=SCHEDULER_RETRY_ATTEMPTS,
                max_event_age=_shorter(interval, Duration.hours(24)),
            ),
        )
        if self.fast_function is not None:
            scheduler.Schedule(
                self,
                "FastSchedule",
                description=f"Runs the quota monitor's fast path every {settings.fast_schedule_minutes} "
                "minute(s): the hot plans of the full scan's watch lists",
                schedule=scheduler.ScheduleExpression.rate(Duration.minutes(settings.fast_schedule_minutes)),
                # No retries and no dead-letter queue: a missed minute is superseded by the next one.
                target=targets.LambdaInvoke(
                    self.fast_function,
                    role=self.schedule_role,
                    retry_attempts=0,
                    max_event_age=FAST_MAX_EVENT_AGE,
                ),
            )

        self.chat = chat_channels(
            self,
            alerts=self.alerts,
            slack=settings.slack_channel,
            teams=settings.teams_channel,
            routes=settings.alert_routes,
        )
        #: The default topic's Slack channel, if any.
        self.chatbot = self.chat.default_slack
        self.slack_forwarder = (
            SlackWebhookForwarder(
                self,
                "SlackWebhook",
                alert_topic=self.alerts,
                webhook=settings.slack_webhook,
                layer=layer,
                log_level=settings.log_level,
                log_retention=log_retention,
                removal_policy=removal,
                tracing=settings.tracing,
            )
            if settings.slack_webhook is not None
            else None
        )

        self.metrics = MonitorMetrics(runtime.namespace, interval)
        self.alarms = self_monitoring_alarms(
            self,
            parts=WatchedParts(
                metrics=self.metrics,
                monitor_function=self.function,
                run_dead_letter_queue=self.run_dead_letter_queue,
                forwarder_function=self.slack_forwarder.function if self.slack_forwarder else None,
                forwarder_dead_letter_queue=(
                    self.slack_forwarder.dead_letter_queue if self.slack_forwarder else None
                ),
                fast_function=self.fast_function,
                fast_interval=Duration.minutes(settings.fast_schedule_minutes)
                if settings.fast_path
                else None,
                archived=settings.archived,
                key_snapshots=settings.quota_endpoint,
            ),
            topic=self.alerts.topic,
            forwarder_topic=self.alerts.ops_topic,
            name_prefix=stack.stack_name,
        )
        read_elsewhere = settings.alert_emails or settings.slack_channel or settings.teams_channel
        if self.alerts.ops_topic is not None and not read_elsewhere:
            Annotations.of(self).add_warning_v2(
                "quota-monitor:forwarder-alarms-unread",
                "The Slack webhook forwarder's own alarms go to the ops topic (output OpsTopicArn), "
                "which nothing reads: with neither alertEmails nor an AWS Chatbot channel, a broken "
                "webhook would be noticed by nobody. Set alertEmails, or subscribe to OpsTopicArn.",
            )
        if settings.memory_mb < ALERT_STORM_MEMORY_MB:
            Annotations.of(self).add_warning_v2(
                "quota-monitor:memory-below-alert-storm",
                f"memoryMb={settings.memory_mb}: the first run of a month, when every key alerted the "
                "month before recovers at once, peaked at 161 MiB at 10,000 alerted keys (make bench), "
                f"over {settings.memory_mb} MB. Keep {ALERT_STORM_MEMORY_MB} or more unless the account "
                "has far fewer keys; a run out of memory fails, and the next one starts over.",
            )
        thresholds = runtime.alerts.levels if runtime.alerts is not None else ()
        self.dashboard = quota_dashboard(
            self,
            "Dashboard",
            parts=DashboardParts(
                metrics=self.metrics,
                thresholds=thresholds,
                monitor_function=self.function,
                alarms=self.alarms,
                records_log_group=self.function.log_group.log_group_name,
                key_metrics=runtime.key_metrics.describe(),
                plan_rollups=runtime.key_metrics.plan_rollups,
                other_regions=tuple(region for region in runtime.targets.regions if region != stack.region),
                spoke_accounts=settings.spoke_accounts,
                archived=settings.archived,
                key_snapshots=settings.quota_endpoint,
            ),
        )
        nag.acknowledge_monitor(self)

    def _fast_function(
        self,
        environment: dict[str, str],
        *,
        layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
        removal: RemovalPolicy,
    ) -> lambda_.Function:
        """The fast path's function: the same code, settings and role (the one the spoke roles trust,
        granted what the fast path adds when it is on), its own log group, at most one run at a time
        (the lease in the table keeps two runs apart even without reserved concurrency), no retries."""
        settings = self.settings
        return python_function(
            self,
            "FastFunction",
            spec=FunctionSpec(
                handler=FAST_HANDLER,
                description=f"Reads the hot usage plans every {settings.fast_schedule_minutes} minute(s) "
                "and alerts a crossing at once (the quota monitor's fast path)",
                environment=environment,
                timeout=Duration.seconds(settings.fast_timeout),
                memory_mb=settings.fast_memory_mb,
                retry_attempts=0,
                max_event_age=FAST_MAX_EVENT_AGE,
                dead_letter_queue=None,
                reserved_concurrency=1 if settings.reserved_concurrency else None,
                tracing=settings.tracing,
                role=self.function.role,
            ),
            layer=layer,
            log_retention=log_retention,
            removal_policy=removal,
        )


def spoke_account_parameters(
    scope: Construct, settings: MonitorSettings, stack_name: str
) -> list[ssm.StringParameter]:
    """The spoke accounts in standard SSM parameters under :func:`spoke_accounts_path`,
    :data:`SPOKE_ACCOUNTS_PER_PARAMETER` a parameter (``quota_monitor.read.targets.spoke_accounts``)."""
    accounts = settings.spoke_accounts
    chunks = [
        accounts[start : start + SPOKE_ACCOUNTS_PER_PARAMETER]
        for start in range(0, len(accounts), SPOKE_ACCOUNTS_PER_PARAMETER)
    ]
    return [
        ssm.StringParameter(
            scope,
            f"SpokeAccounts{number}",
            parameter_name=f"{spoke_accounts_path(stack_name)}/{number:03}",
            string_value=",".join(chunk),
            description="Accounts the API Gateway quota monitor scans through their spoke role "
            f"({number} of {len(chunks)})",
            tier=ssm.ParameterTier.STANDARD,
        )
        for number, chunk in enumerate(chunks, start=1)
    ]


def hub_role_name(stack_name: str) -> str:
    """The monitor function's role name when spoke accounts trust it: ``<stack>-monitor-<region>``,
    at most 64 characters (a region name is at most 14)."""
    return f"{stack_name[:40]}-monitor-{Aws.REGION}"


def _shorter(first: Duration, second: Duration) -> Duration:
    return first if first.to_seconds() <= second.to_seconds() else second


def _default_layer(scope: Construct) -> lambda_.ILayerVersion:
    return powertools_layer(scope, "PowertoolsLayer")
