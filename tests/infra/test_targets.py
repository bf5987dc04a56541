"""The hub with several regions and spoke accounts: its function's settings, exact IAM, the dashboard
across targets, the spoke stacks beside it, and every bad setting refused at synth."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App

import app as cdk_app
from infra.context import settings_from_context
from infra.settings import MAX_ENVIRONMENT_BYTES, SettingError, deploy_time_value_bytes
from tests.infra_support import Synthesized, cdk_json_context, cfn_lint, render, statements, synthesize

pytestmark = pytest.mark.synth

SPOKES = ("111111111111", "222222222222")
MANY_ACCOUNTS = ",".join(str(100_000_000_000 + n) for n in range(1_000))
ROUTES = json.dumps({f"team-{n:02}": {"emails": [f"team-{n:02}@example.com"]} for n in range(20)})
ORGANIZATION = "o-a1b2c3d4e5"
HUB_ROLE = "arn:aws:iam::999999999999:role/ApiGatewayQuotaMonitor-monitor-us-east-1"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        tmp_path_factory.mktemp("hub"), regions="us-east-1,eu-west-1", spokeAccounts=",".join(SPOKES)
    )


def _function(synth: Synthesized) -> dict[str, Any]:
    properties: dict[str, Any] = render(synth.resources[synth.logical_id("Monitor/Function")]["Properties"])
    return properties


def test_the_function_reads_every_region_and_finds_the_spokes_in_ssm(hub: Synthesized) -> None:
    variables = _function(hub)["Environment"]["Variables"]
    assert variables["REGIONS"] == "us-east-1,eu-west-1"
    assert "SPOKE_ROLE_ARNS" not in variables
    assert variables["SPOKE_ACCOUNTS_PARAMETER"] == "/ApiGatewayQuotaMonitor/spoke-accounts"
    assert variables["SPOKE_ROLE_NAME"] == "ApiGatewayQuotaMonitorSpoke"
    parameters = [render(body["Properties"]) for body in hub.of_type("AWS::SSM::Parameter").values()]
    assert [(p["Name"], p["Value"], p["Type"], p["Tier"]) for p in parameters] == [
        ("/ApiGatewayQuotaMonitor/spoke-accounts/001", ",".join(SPOKES), "String", "Standard")
    ]


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
    # The spoke role's name in the listed accounts only: a condition, not an ARN per account.
    assert by_sid["ReadSpokeAccounts"] == {
        "Sid": "ReadSpokeAccounts",
        "Action": ["sts:AssumeRole"],
        "Effect": "Allow",
        "Resource": ["arn:${AWS::Partition}:iam::*:role/ApiGatewayQuotaMonitorSpoke"],
        "Condition": {"StringEquals": {"aws:ResourceAccount": list(SPOKES)}},
    }
    assert by_sid["ListSpokeAccounts"] == {
        "Sid": "ListSpokeAccounts",
        "Action": ["ssm:GetParametersByPath"],
        "Effect": "Allow",
        "Resource": [
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
            "/ApiGatewayQuotaMonitor/spoke-accounts"
        ],
    }


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
        (
            {"hubRoleArn": HUB_ROLE, "regions": "us-east-1", "spokeStackSetCallAs": "ADMIN"},
            ("spokeStackSetCallAs='ADMIN'", "SELF", "DELEGATED_ADMIN"),
        ),
        (
            {
                "stackName": "Q" * 110,
                "hubRoleArn": HUB_ROLE,
                "regions": "us-east-1",
                "spokeOrganizationalUnits": "ou-ab12-34cd56ef",
            },
            ("stackName=", "at most 109 characters with spokeOrganizationalUnits", "129 characters", "128"),
        ),
        (
            {"spokeAccounts": MANY_ACCOUNTS},
            ("spokeOrganizationId=None", "more than 200 spokeAccounts (1000)"),
        ),
        ({"spokeAccounts": "111111111111", "spokeOrganizationId": "org-1"}, ("spokeOrganizationId='org-1'",)),
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


@pytest.fixture(scope="module")
def organization(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """1,000 spoke accounts of one organization, two regions and 20 alert routes."""
    return synthesize(
        tmp_path_factory.mktemp("organization"),
        regions="us-east-1,eu-west-1",
        spokeAccounts=MANY_ACCOUNTS,
        spokeOrganizationId=ORGANIZATION,
        alertRoutes=ROUTES,
    )


def test_an_organization_of_1000_accounts_and_20_routes_fits_lambda_and_iam(
    organization: Synthesized,
) -> None:
    # Every function's environment under Lambda's 4 KB, a value filled in at deploy time counted as
    # the longest such ARN (infra.settings.deploy_time_value_bytes)
    generated = deploy_time_value_bytes("ApiGatewayQuotaMonitor")
    functions = organization.of_type("AWS::Lambda::Function")
    assert len(functions) == 2
    for name, body in functions.items():
        variables = render(body["Properties"]["Environment"]["Variables"])
        size = sum(
            len(variable) + len(re.sub(r"\$\{[^}]+\}", "x" * generated, value))
            for variable, value in variables.items()
        )
        assert 2_000 < size < MAX_ENVIRONMENT_BYTES, (name, size)
    # Every IAM policy within IAM's limits: 10,240 characters of inline policy a role, whitespace aside
    sizes: dict[str, int] = {}
    for body in organization.of_type("AWS::IAM::Policy").values():
        for role in body["Properties"]["Roles"]:
            key = json.dumps(role)
            sizes[key] = sizes.get(key, 0) + len(
                json.dumps(body["Properties"]["PolicyDocument"], separators=(",", ":"))
            )
    assert sizes
    assert max(sizes.values()) < 10_240, sizes
    # The 1,000 accounts are in the template, in standard SSM parameters (4 KB each)
    values = [render(body["Properties"]) for body in organization.of_type("AWS::SSM::Parameter").values()]
    assert (
        ",".join(parameter["Value"] for parameter in sorted(values, key=lambda p: p["Name"])) == MANY_ACCOUNTS
    )
    assert all(len(parameter["Value"]) <= 4_096 and parameter["Tier"] == "Standard" for parameter in values)
    # The role may assume the spoke role in the organization's accounts only
    policy = organization.resources[organization.logical_id("Monitor/FunctionRole/DefaultPolicy")]
    (assume,) = [s for s in statements(policy) if s.get("Sid") == "ReadSpokeAccounts"]
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORGANIZATION}}
    assert cfn_lint(organization.raw) == []


def test_an_environment_over_4_kb_is_refused_at_synth_naming_the_setting(tmp_path: Any) -> None:
    # A long stack name makes every generated ARN long: 20 routes' topics no longer fit.
    with pytest.raises(SettingError) as raised:
        synthesize(tmp_path, stackName="Q" * 100, alertRoutes=ROUTES)
    message = str(raised.value)
    assert "over Lambda's 4,096" in message, message
    assert "alertRoutes" in message, message


def test_the_hub_says_how_to_deploy_its_spokes_with_the_settings_they_must_share(hub: Synthesized) -> None:
    output = render(hub.raw["Outputs"]["SpokeDeployCommand"]["Value"])
    role = hub.logical_id("Monitor/FunctionRole")
    assert output == (
        "npx cdk deploy ApiGatewayQuotaMonitorSpoke -c stackName=ApiGatewayQuotaMonitor "
        f"-c hubRoleArn=${{{role}.Arn}} -c regions=us-east-1,eu-west-1 -c metricNamespace=ApiGatewayQuota "
        "-c spokeRoleName=ApiGatewayQuotaMonitorSpoke"
    )


def test_a_delegated_administrator_deploys_the_stack_set_as_one(tmp_path: Any) -> None:
    app = App(
        outdir=str(tmp_path),
        context={
            **cdk_json_context(),
            "regions": "us-east-1",
            "hubRoleArn": HUB_ROLE,
            "spokeOrganizationalUnits": "ou-ab12-34cd56ef",
            "spokeStackSetCallAs": "DELEGATED_ADMIN",
        },
    )
    cdk_app.build(app)
    stack_set = app.synth().get_stack_by_name("ApiGatewayQuotaMonitorSpokeStackSet").template
    (resource,) = stack_set["Resources"].values()
    assert resource["Properties"]["CallAs"] == "DELEGATED_ADMIN"
