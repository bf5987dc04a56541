"""``QuotaMonitorStack``: the monitor as a deployable stack, with its outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Aws, CfnOutput, Fn, Stack

from infra.console import console_output
from infra.monitor import UsageQuotaMonitor

if TYPE_CHECKING:
    from constructs import Construct

    from infra.settings import MonitorSettings


def spoke_deploy_command(stack_name: str, role_arn: str, monitor: UsageQuotaMonitor) -> str:
    """``npx cdk deploy <stack>Spoke`` with every setting a spoke role must share with its hub: the
    hub role it trusts, the regions it may be read in, the metric namespace it may publish to, its
    own name, and the stack name its stacks are named after."""
    settings = monitor.settings
    regions = ",".join(settings.regions) if settings.regions else Aws.REGION
    return Fn.join(
        "",
        [
            f"npx cdk deploy {stack_name}Spoke -c stackName={stack_name} -c hubRoleArn=",
            role_arn,
            " -c regions=",
            regions,
            f" -c metricNamespace={monitor.namespace} -c spokeRoleName={settings.spoke_role_name}",
        ],
    )


class QuotaMonitorStack(Stack):
    def __init__(
        self, scope: Construct, id_: str, *, settings: MonitorSettings | None = None, **stack_options: Any
    ) -> None:
        super().__init__(scope, id_, **stack_options)
        self.monitor = monitor = UsageQuotaMonitor(self, "Monitor", settings=settings)
        role = monitor.function.role
        assert role is not None  # python_function always gives the function a role
        CfnOutput(
            self,
            "MonitorRoleArn",
            value=role.role_arn,
            description="Spoke roles trust this role (-c hubRoleArn=... when deploying them)",
        )
        if monitor.settings.spoke_accounts:
            CfnOutput(
                self,
                "SpokeDeployCommand",
                value=spoke_deploy_command(self.stack_name, role.role_arn, monitor),
                description="Deploys the spoke role in a spoke account with the settings it must share "
                "with this hub; for an organization, deploy <stack>SpokeStackSet instead with "
                "-c spokeOrganizationalUnits=... (docs/deploy.md)",
            )
        CfnOutput(
            self,
            "AlertTopicArn",
            value=monitor.alerts.topic.topic_arn,
            description="Alerts and alarms go here",
        )
        console_output(
            self,
            "DashboardUrl",
            path="cloudwatch/home?region={region}#dashboards/dashboard/" + monitor.dashboard.dashboard_name,
            description="The quota dashboard (in partitions whose console address is known)",
        )
        if monitor.alerts.routes:
            CfnOutput(
                self,
                "AlertRouteTopicArns",
                value=self.to_json_string(
                    {name: topic.topic_arn for name, topic in monitor.alerts.routes.items()}
                ),
                description="Each route's topic (route name -> topic ARN)",
            )
        CfnOutput(
            self, "StateTableName", value=monitor.table.table_name, description="Alert state (DynamoDB)"
        )
        CfnOutput(
            self,
            "MonitorFunctionName",
            value=monitor.function.function_name,
            description="Invoke it for a run now (aws lambda invoke)",
        )
        if monitor.fast_function is not None:
            CfnOutput(
                self,
                "FastFunctionName",
                value=monitor.fast_function.function_name,
                description="The fast path: its log group says what each run read and alerted",
            )
        if monitor.quota_endpoint is not None:
            CfnOutput(
                self,
                "QuotaEndpointFunctionArn",
                value=monitor.quota_endpoint.function.function_arn,
                description="GET /quota's function: attach it to your REST API (docs/endpoint.md)",
            )
        if monitor.archive is not None:
            CfnOutput(
                self,
                "ArchiveBucketName",
                value=monitor.archive.bucket.bucket_name,
                description="Every full run's records, under records/ (docs/archive.md)",
            )
            CfnOutput(
                self,
                "ArchiveWorkGroup",
                value=monitor.archive.work_group_name,
                description="The Athena workgroup with the archive's saved queries",
            )
            CfnOutput(
                self,
                "ArchiveDatabase",
                value=monitor.archive.database_name,
                description="The Glue database of the archive's table, records",
            )
        CfnOutput(
            self,
            "RunDeadLetterQueueUrl",
            value=monitor.run_dead_letter_queue.queue_url,
            description="Scheduled runs that were dropped",
        )
        ops_topic = monitor.alerts.ops_topic
        if ops_topic is not None:
            CfnOutput(
                self,
                "OpsTopicArn",
                value=ops_topic.topic_arn,
                description="The Slack webhook forwarder's own alarms go here (not through the forwarder)",
            )
        if monitor.events is not None:
            CfnOutput(
                self,
                "EventBusName",
                value=monitor.events.bus_name,
                description="The monitor's events go to this bus (docs/events.md)",
            )
            CfnOutput(
                self,
                "EventSchemaRegistryName",
                value=monitor.events.registry.attr_registry_name,
                description="The events' schema, apigw-quota-monitor@QuotaEvent, is in this registry",
            )
            if monitor.events.queue is not None:
                CfnOutput(
                    self,
                    "EventsQueueUrl",
                    value=monitor.events.queue.queue_url,
                    description="The example rule puts every event in this queue",
                )
        forwarder = monitor.slack_forwarder
        if forwarder is not None:
            CfnOutput(
                self,
                "SlackWebhookSecretArn",
                value=forwarder.secret.secret_arn,
                description="Put the Slack incoming-webhook URL in this secret",
            )
