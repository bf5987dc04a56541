"""The hub with several regions and spoke accounts: its function's settings, exact IAM, the dashboard
across targets, the spoke stacks beside it, and every bad setting refused at synth."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App

import app as cdk_app
from infra.context import settings_from_context
from infra.settings import SettingError
from tests.infra_support import Synthesized, cdk_json_context, cfn_lint, render, statements, synthesize

pytestmark = pytest.mark.synth

SPOKES = ("111111111111", "222222222222")
HUB_ROLE = "arn:aws:iam::999999999999:role/ApiGatewayQuotaMonitor-monitor-us-east-1"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        tmp_path_factory.mktemp("hub"), regions="us-east-1,eu-west-1", spokeAccounts=",".join(SPOKES)
    )


def _function(synth: Synthesized) -> dict[str, Any]:
    properties: dict[str, Any] = render(synth.resources[synth.logical_id("Monitor/Function")]["Properties"])
    return properties


def test_the_function_reads_every_region_and_spoke(hub: Synthesized) -> None:
    variables = _function(hub)["Environment"]["Variables"]
    assert variables["REGIONS"] == "us-east-1,eu-west-1"
    assert variables["SPOKE_ROLE_ARNS"] == ",".join(
        f"arn:${{AWS::Partition}}:iam::{account}:role/ApiGatewayQuotaMonitorSpoke" for account in SPOKES
    )


def test_the_hub_role_reads_those_regions_and_assumes_exactly_those_roles(hub: Synthesized) -> None:
    role = render(hub.resources[hub.logical_id("Monitor/FunctionRole")]["Properties"])
    # A fixed name: the spoke roles trust it by its ARN (unique per region: role names are global).
    assert role["RoleName"] == "ApiGatewayQuotaMonitor-monitor-${AWS::Region}"
    policy = hub.resources[hub.logical_id("Monitor/FunctionRole/DefaultPolicy")]
    by_sid = {statement.get("Sid"): statement for statement in statements(policy)}
    assert sorted(by_sid["ReadUsagePlansUsageAndKeys"]["Resource"]) == sorted(
        f"arn:${{AWS::Partition}}:apigateway:{region}::{path}"
        for region in ("us-east-1", "eu-west-1")
        for path in ("/usageplans", "/usageplans/*/usage", "/apikeys")
    )
    assert by_sid["ReadSpokeAccounts"]["Action"] == ["sts:AssumeRole"]
    assert by_sid["ReadSpokeAccounts"]["Resource"] == [
        f"arn:${{AWS::Partition}}:iam::{account}:role/ApiGatewayQuotaMonitorSpoke" for account in SPOKES
    ]
    assert not any("*" in resource for resource in by_sid["ReadSpokeAccounts"]["Resource"])


def test_the_dashboard_shows_every_target(hub: Synthesized) -> None:
    body = json.loads(
        render(hub.resources[hub.logical_id("Monitor/Dashboard")]["Properties"]["DashboardBody"])
    )
    logs = [widget["properties"] for widget in body["widgets"] if widget["type"] == "log"]
    # Keys and plans told apart by account and region, and each target's latest run.
    assert all("by accountId, region" in widget["query"] for widget in logs)
    targets = [widget for widget in logs if 'record = "target"' in widget["query"]]
    assert len(targets) == 1
    # The graphs of another region's keys are cross-region widgets; a spoke account's metrics stay there.
    regions = {
        widget["properties"].get("region")
        for widget in body["widgets"]
        if widget["type"] == "metric" and widget["properties"]["title"].startswith("eu-west-1:")
    }
    assert regions == {"eu-west-1"}


def test_cfn_lint_passes(hub: Synthesized) -> None:
    assert cfn_lint(hub.raw) == []


def test_the_spoke_stacks_come_with_the_hub_role_they_trust(tmp_path_factory: pytest.TempPathFactory) -> None:
    outdir = tmp_path_factory.mktemp("spokes")
    cli = {"aws:cdk:enable-path-metadata": True}
    app = App(
        outdir=str(outdir),
        context={
            **cdk_json_context(),
            **cli,
            "regions": "us-east-1,eu-west-1",
            "hubRoleArn": HUB_ROLE,
            "spokeOrganizationalUnits": "ou-ab12-34cd56ef",
        },
    )
    cdk_app.build(app)
    assembly = app.synth()  # cdk-nag runs on every stack; a finding raises
    names = sorted(stack.stack_name for stack in assembly.stacks)
    assert names == [
        "ApiGatewayQuotaMonitor",
        "ApiGatewayQuotaMonitorSpoke",
        "ApiGatewayQuotaMonitorSpokeStackSet",
    ]
    spoke = assembly.get_stack_by_name("ApiGatewayQuotaMonitorSpoke").template
    (role,) = (r for r in spoke["Resources"].values() if r["Type"] == "AWS::IAM::Role")
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Condition"] == {"ArnEquals": {"aws:PrincipalArn": HUB_ROLE}}
    stack_set = assembly.get_stack_by_name("ApiGatewayQuotaMonitorSpokeStackSet").template
    (resource,) = stack_set["Resources"].values()
    assert resource["Properties"]["StackInstancesGroup"][0]["DeploymentTargets"] == {
        "OrganizationalUnitIds": ["ou-ab12-34cd56ef"]
    }
    for name in names[1:]:
        assert cfn_lint(assembly.get_stack_by_name(name).template) == []


@pytest.mark.parametrize(
    ("context", "fragments"),
    [
        ({"regions": "us-east-1,eu-wst-1"}, ("regions:", "REGIONS='us-east-1,eu-wst-1'", "eu-wst-1 is not")),
        ({"regions": "us-east-1,cn-north-1"}, ("regions:", "several partitions")),
        ({"spokeAccounts": "1111"}, ("spokeAccounts='1111'", "12-digit")),
        ({"spokeAccounts": "111111111111,111111111111"}, ("spokeAccounts", "each account once")),
        ({"spokeRoleName": "a role"}, ("spokeRoleName='a role'", "IAM role name")),
        ({"hubRoleArn": "arn:aws:iam::1:role/x", "regions": "us-east-1"}, ("hubRoleArn=", "MonitorRoleArn")),
        ({"hubRoleArn": HUB_ROLE}, ("regions=None", "as the hub has it")),
        ({"spokeOrganizationalUnits": "ou-ab12-34cd56ef"}, ("hubRoleArn", "set it too")),
        (
            {"hubRoleArn": HUB_ROLE, "regions": "us-east-1", "spokeOrganizationalUnits": "ou-1"},
            ("spokeOrganizationalUnits='ou-1'", "organizational unit ids"),
        ),
    ],
    ids=lambda value: str(value)[:50],
)
def test_bad_target_settings_fail_at_synth_naming_the_setting(
    context: dict[str, str], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(SettingError) as raised:
        settings_from_context({**cdk_json_context(), **context})
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, message
