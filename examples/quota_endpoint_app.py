"""An API of your own with ``GET /quota`` answered by the quota monitor (docs/endpoint.md).

``cdk synth --app "python examples/quota_endpoint_app.py"`` from the repository's root. The API is
a stand-in for yours: one route, a usage plan with a monthly quota on its stage, and a key.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aws_cdk import App, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_logs as logs
from cdk_nag import AwsSolutionsChecks

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.monitor import UsageQuotaMonitor
from infra.nag import acknowledge
from infra.settings import MonitorSettings


def build(app: App) -> Stack:
    stack = Stack(app, "PetStoreWithQuota")
    access_logs = logs.LogGroup(stack, "ApiAccessLogs", retention=logs.RetentionDays.TWO_WEEKS)
    api = apigateway.RestApi(
        stack,
        "PetStore",
        description="Your API: every route requires an API key and counts against its plan's quota",
        deploy_options=apigateway.StageOptions(
            stage_name="prod",
            access_log_destination=apigateway.LogGroupLogDestination(access_logs),
            access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                caller=False,
                http_method=True,
                ip=True,
                protocol=True,
                request_time=True,
                resource_path=True,
                response_length=True,
                status=True,
                user=False,
            ),
            logging_level=apigateway.MethodLoggingLevel.ERROR,
        ),
        cloud_watch_role=True,
    )
    api.root.add_resource("pets").add_method(
        "GET",
        apigateway.MockIntegration(
            integration_responses=[apigateway.IntegrationResponse(status_code="200")],
            request_templates={"application/json": '{"statusCode": 200}'},
        ),
        method_responses=[apigateway.MethodResponse(status_code="200")],
        api_key_required=True,
    )
    plan = api.add_usage_plan(
        "Gold",
        name="gold",
        quota=apigateway.QuotaSettings(limit=10_000, period=apigateway.Period.MONTH),
        api_stages=[apigateway.UsagePlanPerApiStage(api=api, stage=api.deployment_stage)],
    )
    plan.add_api_key(api.add_api_key("Customer", api_key_name="billing-client"))

    # The monitor in the same stack (or its own: pass its table), with key snapshots on; then the route.
    monitor = UsageQuotaMonitor(stack, "QuotaMonitor", settings=MonitorSettings(quota_endpoint=True))
    assert monitor.quota_endpoint is not None
    monitor.quota_endpoint.attach(api, "quota")

    for rule, reason in (
        ("APIG2", "The example's routes take no request body to validate."),
        ("APIG3", "WAF is the API owner's choice; the example shows the quota route, not perimeter rules."),
        ("APIG4", "The routes are authorised by API keys, which is what the quota route reports on."),
        ("COG4", "The routes are authorised by API keys, not a Cognito user pool."),
        (
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account role for CloudWatch logging is the one AWS documents, with its "
            "managed policy.",
        ),
    ):
        acknowledge(stack, rule, reason)
    return stack


if __name__ == "__main__":
    app = App()
    build(app)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()
