"""The spoke role, on its own and as an organization-wide StackSet: exact trust, exact permissions,
cdk-nag and cfn-lint clean."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Validations
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.spoke import SpokeRoleStack, SpokeSettings, SpokeStackSetStack, spoke_template
from tests.infra_support import cfn_lint, render

pytestmark = pytest.mark.synth

HUB_ROLE = "arn:aws:iam::111111111111:role/ApiGatewayQuotaMonitor-monitor-us-east-1"
SETTINGS = SpokeSettings(
    hub_role_arn=HUB_ROLE, regions=("us-east-1", "eu-west-1"), namespace="ApiGatewayQuota"
)


def synth(build: Any) -> dict[str, Any]:
    app = App()
    stack = build(app)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    template: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return template


def test_the_spoke_role_trusts_exactly_the_hub_role() -> None:
    raw = synth(lambda app: SpokeRoleStack(app, "Spoke", settings=SETTINGS))
    template = Template.from_json(raw)
    template.resource_count_is("AWS::IAM::Role", 1)
    (role,) = template.find_resources("AWS::IAM::Role").values()
    trust = render(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:${AWS::Partition}:iam::111111111111:root"},
            "Condition": {"ArnEquals": {"aws:PrincipalArn": HUB_ROLE}},
        }
    ]
    assert role["Properties"]["RoleName"] == "ApiGatewayQuotaMonitorSpoke"
    assert role["Properties"]["MaxSessionDuration"] == 3600
    assert "ManagedPolicyArns" not in role["Properties"]


def test_the_spoke_role_may_read_usage_and_publish_metrics_in_the_hubs_regions_only() -> None:
    raw = synth(lambda app: SpokeRoleStack(app, "Spoke", settings=SETTINGS))
    (policy,) = Template.from_json(raw).find_resources("AWS::IAM::Policy").values()
    statements = render(policy["Properties"]["PolicyDocument"]["Statement"])
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert set(by_sid) == {"ReadUsagePlansUsageAndKeys", "PublishQuotaMetrics"}
    read = by_sid["ReadUsagePlansUsageAndKeys"]
    assert read["Action"] == "apigateway:GET"
    assert sorted(read["Resource"]) == sorted(
        f"arn:${{AWS::Partition}}:apigateway:{region}::{path}"
        for region in ("us-east-1", "eu-west-1")
        for path in ("/usageplans", "/usageplans/*/usage", "/apikeys", "/usageplans/*/keys")
    )
    publish = by_sid["PublishQuotaMetrics"]
    assert publish["Action"] == "cloudwatch:PutMetricData"
    assert publish["Resource"] == "*"
    assert publish["Condition"] == {
        "StringEquals": {
            "cloudwatch:namespace": "ApiGatewayQuota",
            "aws:RequestedRegion": ["us-east-1", "eu-west-1"],
        }
    }


def test_the_stack_set_deploys_the_same_role_to_every_account_of_the_units() -> None:
    raw = synth(
        lambda app: SpokeStackSetStack(
            app,
            "SpokeSet",
            settings=SETTINGS,
            organizational_units=["ou-ab12-34cd56ef"],
            deployment_region="us-east-1",
        )
    )
    template = Template.from_json(raw)
    template.has_resource_properties(
        "AWS::CloudFormation::StackSet",
        {
            "PermissionModel": "SERVICE_MANAGED",
            "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
            "Capabilities": ["CAPABILITY_NAMED_IAM"],
            "StackInstancesGroup": [
                {
                    "DeploymentTargets": {"OrganizationalUnitIds": ["ou-ab12-34cd56ef"]},
                    "Regions": ["us-east-1"],
                }
            ],
            "TemplateBody": Match.any_value(),
        },
    )
    (stack_set,) = template.find_resources("AWS::CloudFormation::StackSet").values()
    body = json.loads(stack_set["Properties"]["TemplateBody"])
    assert body == spoke_template(SETTINGS)
    # No assets and no bootstrap check: member accounts are never bootstrapped.
    assert "Rules" not in body
    assert "BootstrapVersion" not in json.dumps(body)
    assert {resource["Type"] for resource in body["Resources"].values()} == {
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
    }


def test_cfn_lint_finds_nothing_in_either_stack() -> None:
    role = synth(lambda app: SpokeRoleStack(app, "Spoke", settings=SETTINGS))
    stack_set = synth(
        lambda app: SpokeStackSetStack(
            app,
            "SpokeSet",
            settings=SETTINGS,
            organizational_units=["ou-ab12-34cd56ef"],
            deployment_region="us-east-1",
        )
    )
    assert cfn_lint(role) == []
    assert cfn_lint(stack_set) == []
    assert cfn_lint(spoke_template(SETTINGS)) == []
