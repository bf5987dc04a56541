"""``QuotaEndpoint``: ``GET /<path>`` on your REST API, answered by the monitor's key snapshots.

A function (``quota_monitor.quota_handler.handler``, 128 MB, a log group of its own) that reads the
snapshot items of the monitor's state table, and nothing else (``dynamodb:BatchGetItem`` held to
their keys by ``dynamodb:LeadingKeys``), and writes nothing. Given a ``RestApi``, the construct adds
the route to it with ``apiKeyRequired`` and a Lambda proxy integration; without one, attach the
function to your API yourself (docs/endpoint.md). The monitor's functions must run with
``KEY_SNAPSHOTS=on`` (the project's stack: ``-c quotaEndpoint=true``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.functions import FunctionSpec, python_function
from infra.powertools import powertools_layer

if TYPE_CHECKING:
    from aws_cdk import aws_dynamodb as dynamodb

QUOTA_HANDLER: Final = "quota_monitor.quota_handler.handler"
#: The snapshot items' keys (quota_monitor.publish.snapshots): all the function may read.
SNAPSHOT_KEYS: Final = ("~snap#*", "~snapfast#*")
#: An API's integration gives up after 29 s; the function's one read is bounded far below.
TIMEOUT: Final = Duration.seconds(10)


class QuotaEndpoint(Construct):
    """The quota endpoint's function and, with ``rest_api``, its route (module doc)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        table: dynamodb.ITable,
        schedule_minutes: int,
        rest_api: apigateway.IRestApi | None = None,
        path: str = "quota",
        layer: lambda_.ILayerVersion | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.TWO_WEEKS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, id_)
        self.function = python_function(
            self,
            "Function",
            spec=FunctionSpec(
                handler=QUOTA_HANDLER,
                description="GET /quota: an API key's remaining quota, from the quota monitor's snapshots",
                environment={
                    "ALERT_TABLE_NAME": table.table_name,
                    "SCHEDULE_MINUTES": str(schedule_minutes),
                    "POWERTOOLS_SERVICE_NAME": "apigw-quota-monitor-endpoint",
                    "POWERTOOLS_LOG_LEVEL": "INFO",
                },
                timeout=TIMEOUT,
                memory_mb=128,
                # Invoked synchronously by API Gateway: nothing is retried or dead-lettered.
                retry_attempts=0,
                max_event_age=Duration.seconds(60),
                dead_letter_queue=None,
            ),
            layer=layer or powertools_layer(self, "PowertoolsLayer"),
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadKeySnapshots",
                actions=["dynamodb:BatchGetItem"],
                resources=[table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(SNAPSHOT_KEYS)}},
            )
        )
        self.method = self.attach(rest_api, path) if rest_api is not None else None

    def attach(self, rest_api: apigateway.IRestApi, path: str = "quota") -> apigateway.Method:
        """``GET /<path>`` on ``rest_api``: an API key required, a Lambda proxy integration."""
        return rest_api.root.resource_for_path(path).add_method(
            "GET", apigateway.LambdaIntegration(self.function, proxy=True), api_key_required=True
        )
