"""The quota endpoint's deploy: the construct on a REST API of your own (the example app), and the
project stack's ``-c quotaEndpoint=true``; exact IAM, cdk-nag and cfn-lint clean."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from tests.infra_support import REPO_ROOT, Synthesized, cfn_lint, render, statements, synthesize

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.synth


def example_template(outdir: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(
        "quota_endpoint_app", REPO_ROOT / "examples/quota_endpoint_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = App(outdir=str(outdir), context={"aws:cdk:enable-path-metadata": True})
    stack = module.build(app)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    template: dict[str, Any] = (
        app.synth().get_stack_by_name(stack.stack_name).template
    )  # a nag finding raises
    return template


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return example_template(tmp_path_factory.mktemp("example"))


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def test_the_example_adds_get_quota_with_an_api_key_required_and_a_proxy_integration(
    example: dict[str, Any],
) -> None:
    resources = {
        render(r["Properties"]["PathPart"]) for r in _of_type(example, "AWS::ApiGateway::Resource").values()
    }
    assert resources == {"pets", "quota"}
    (quota,) = [
        render(m["Properties"])
        for m in _of_type(example, "AWS::ApiGateway::Method").values()
        if "quota" in render(m["Properties"]["ResourceId"])
    ]
    assert (quota["HttpMethod"], quota["ApiKeyRequired"]) == ("GET", True)
    assert quota["Integration"]["Type"] == "AWS_PROXY"
    functions = {
        name: render(body["Properties"]) for name, body in _of_type(example, "AWS::Lambda::Function").items()
    }
    (endpoint,) = [f for f in functions.values() if f["Handler"] == "quota_monitor.quota_handler.handler"]
    assert endpoint["MemorySize"] == 128
    assert set(endpoint["Environment"]["Variables"]) == {
        "ALERT_TABLE_NAME",
        "SCHEDULE_MINUTES",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_LOG_LEVEL",
    }
    assert endpoint["LoggingConfig"]["LogGroup"].startswith("${")
    # The monitor's functions keep every key's numbers for it
    monitors = [f for f in functions.values() if f["Handler"] != "quota_monitor.quota_handler.handler"]
    assert all(f["Environment"]["Variables"]["KEY_SNAPSHOTS"] == "on" for f in monitors if "Environment" in f)
    assert cfn_lint(example) == []


def test_the_endpoint_reads_the_snapshot_items_only_and_writes_nothing(example: dict[str, Any]) -> None:
    policies = [
        statements(body)
        for body in _of_type(example, "AWS::IAM::Policy").values()
        if "QuotaEndpoint" in str(body["Properties"]["Roles"])
    ]
    table_statements = [s for policy in policies for s in policy if any("dynamodb" in a for a in s["Action"])]
    assert [(s["Sid"], s["Action"], s["Condition"]) for s in table_statements] == [
        (
            "ReadKeySnapshots",
            ["dynamodb:BatchGetItem"],
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["~snap#*", "~snapfast#*"]}},
        )
    ]


@pytest.fixture(scope="module")
def with_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("endpoint"), quotaEndpoint="true")


def test_the_stack_option_deploys_the_function_and_turns_key_snapshots_on(with_endpoint: Synthesized) -> None:
    outputs = with_endpoint.raw["Outputs"]
    function = with_endpoint.logical_id("Monitor/QuotaEndpoint/Function")
    assert render(outputs["QuotaEndpointFunctionArn"]["Value"]) == f"${{{function}.Arn}}"
    monitor = render(with_endpoint.resources[with_endpoint.logical_id("Monitor/Function")]["Properties"])
    assert monitor["Environment"]["Variables"]["KEY_SNAPSHOTS"] == "on"
    granted = {
        s.get("Sid"): s
        for s in statements(
            with_endpoint.resources[with_endpoint.logical_id("Monitor/FunctionRole/DefaultPolicy")]
        )
    }
    assert granted["WriteKeySnapshots"]["Action"] == ["dynamodb:BatchWriteItem"]
    assert granted["WriteKeySnapshots"]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["~snap#*", "~snapfast#*"]}
    }
    ((logical_id, permission),) = [
        (name, render(p["Properties"]))
        for name, p in with_endpoint.of_type("AWS::Lambda::Permission").items()
        if render(p["Properties"]["FunctionName"]).startswith(f"${{{function}")
    ]
    # The logical id of the first release: a new one would make CloudFormation replace it on upgrade
    assert logical_id == "MonitorQuotaEndpointFunctionInvokedByApiGateway36BE8964"
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert (
        permission["SourceArn"]
        == "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:*/*/GET/*"
    )
    assert cfn_lint(with_endpoint.raw) == []
    # Snapshots a run could not write have their alarm, to the alert topic, and are graphed.
    (alarm,) = [
        render(a["Properties"])
        for a in with_endpoint.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "SnapshotFailures"
    ]
    assert alarm["AlarmName"].endswith("-snapshot-failures")
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        0,
        "GreaterThanThreshold",
        "notBreaching",
    )
    assert alarm["AlarmActions"] == alarm["OKActions"] != []
    dashboard = with_endpoint.resources[with_endpoint.logical_id("Monitor/Dashboard")]
    assert render(dashboard["Properties"]["DashboardBody"]).count('"SnapshotFailures"') == 1


def test_the_apis_named_in_quota_endpoint_api_ids_are_the_only_ones_that_may_invoke_it(
    tmp_path: Path,
) -> None:
    scoped = synthesize(tmp_path, quotaEndpoint="true", quotaEndpointApiIds="a1b2c3d4e5, f6g7h8i9j0")
    function = scoped.logical_id("Monitor/QuotaEndpoint/Function")
    permissions = [
        render(p["Properties"])
        for p in scoped.of_type("AWS::Lambda::Permission").values()
        if render(p["Properties"]["FunctionName"]).startswith(f"${{{function}")
    ]
    assert sorted(p["SourceArn"] for p in permissions) == [
        f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:{api}/*/GET/*"
        for api in ("a1b2c3d4e5", "f6g7h8i9j0")
    ]
    assert {(p["Principal"], p["Action"]) for p in permissions} == {
        ("apigateway.amazonaws.com", "lambda:InvokeFunction")
    }


def test_without_the_option_there_is_no_endpoint_and_no_snapshot(tmp_path: Path) -> None:
    plain = synthesize(tmp_path)
    assert "QuotaEndpointFunctionArn" not in plain.raw["Outputs"]
    monitor = render(plain.resources[plain.logical_id("Monitor/Function")]["Properties"])
    assert "KEY_SNAPSHOTS" not in monitor["Environment"]["Variables"]
    alarms = plain.of_type("AWS::CloudWatch::Alarm").values()
    assert "SnapshotFailures" not in {a["Properties"].get("MetricName") for a in alarms}
    dashboard = plain.resources[plain.logical_id("Monitor/Dashboard")]
    assert '"SnapshotFailures"' not in render(dashboard["Properties"]["DashboardBody"])


def test_the_archive_option_creates_the_bucket_grants_records_only_and_sets_the_variable(
    tmp_path: Path,
) -> None:
    archived = synthesize(tmp_path, archive="true")
    bucket = archived.logical_id("Monitor/Archive/Bucket")
    monitor = render(archived.resources[archived.logical_id("Monitor/Function")]["Properties"])
    assert monitor["Environment"]["Variables"]["ARCHIVE_BUCKET"] == f"${{{bucket}}}"
    granted = [
        s
        for s in statements(archived.resources[archived.logical_id("Monitor/FunctionRole/DefaultPolicy")])
        if any(a.startswith("s3:") for a in s["Action"])
    ]
    assert [(s["Action"], s["Resource"]) for s in granted] == [
        (["s3:PutObject"], [f"${{{bucket}.Arn}}/records/*"])
    ]
    outputs = archived.raw["Outputs"]
    assert {"ArchiveBucketName", "ArchiveWorkGroup", "ArchiveDatabase"} <= set(outputs)
    assert cfn_lint(archived.raw) == []
    # Its failures are graphed with the monitor's health, only where there is an archive.
    for synth, shown in ((archived, 1), (synthesize(tmp_path / "plain"), 0)):
        body = render(synth.resources[synth.logical_id("Monitor/Dashboard")]["Properties"]["DashboardBody"])
        assert body.count('"ArchiveFailures"') == shown
