"""The stack as deployed with cdk.json's settings: every resource, exactly. One synth (with cdk-nag
on: a finding would fail the fixture) for the whole module."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest

from infra.permissions import FAST_PATH_ITEMS
from quota_monitor.alert.rules import state_key
from quota_monitor.alert.watch_store import watch_key
from quota_monitor.models import Target
from quota_monitor.read.budget import budget_key
from tests.infra.test_record_views import QUERIES
from tests.infra_support import Synthesized, cfn_lint, deployed_outputs, render, statements, synthesize

pytestmark = pytest.mark.synth

STACK = "ApiGatewayQuotaMonitor"
APIGW = "arn:${AWS::Partition}:apigateway:${AWS::Region}::"
CLOUDWATCH = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def ids(synth: Synthesized) -> dict[str, str]:
    paths = {
        "function": "Monitor/Function",
        "role": "Monitor/FunctionRole",
        "role_policy": "Monitor/FunctionRole/DefaultPolicy",
        "logs": "Monitor/FunctionLogs",
        "layer": "Monitor/PowertoolsLayer",
        "key": "Monitor/Alerts/Key",
        "topic": "Monitor/Alerts/Topic",
        "topic_policy": "Monitor/Alerts/Topic/Policy",
        "table": "Monitor/AlertState",
        "dlq": "Monitor/RunDeadLetterQueue",
        "dlq_policy": "Monitor/RunDeadLetterQueue/Policy",
        "schedule": "Monitor/Schedule",
        "schedule_role": "Monitor/ScheduleRole",
        "schedule_policy": "Monitor/ScheduleRole/DefaultPolicy",
        "dashboard": "Monitor/Dashboard",
        "fast_function": "Monitor/FastFunction",
        "fast_logs": "Monitor/FastFunctionLogs",
        "fast_schedule": "Monitor/FastSchedule",
    }
    return {name: synth.logical_id(path) for name, path in paths.items()}


def test_exactly_these_resources(synth: Synthesized) -> None:
    counts: dict[str, int] = {}
    for body in synth.resources.values():
        counts[body["Type"]] = counts.get(body["Type"], 0) + 1
    assert counts == {
        "AWS::Lambda::LayerVersion": 1,
        "AWS::KMS::Key": 1,
        "AWS::SNS::Topic": 1,
        "AWS::SNS::TopicPolicy": 1,
        "AWS::DynamoDB::Table": 1,
        "AWS::SQS::Queue": 1,
        "AWS::SQS::QueuePolicy": 1,
        # The fast path (fastScheduleMinutes=1): its function, log group, schedule and alarm; it
        # runs under the monitor's role, the one the spoke roles trust.
        "AWS::Logs::LogGroup": 2,
        "AWS::IAM::Role": 2,
        "AWS::IAM::Policy": 2,
        "AWS::Lambda::Function": 2,
        "AWS::Lambda::EventInvokeConfig": 2,
        "AWS::Scheduler::Schedule": 2,
        "AWS::CloudWatch::Alarm": 8,
        "AWS::CloudWatch::Dashboard": 1,
    }


def test_monitor_function(synth: Synthesized, ids: dict[str, str]) -> None:
    properties = render(synth.resources[ids["function"]]["Properties"])
    code = properties.pop("Code")
    assert code["S3Key"].endswith(".zip")
    assert properties == {
        "Architectures": ["arm64"],
        "DeadLetterConfig": {"TargetArn": f"${{{ids['dlq']}.Arn}}"},
        "Description": "Scans API Gateway usage-plan quotas every 15 minutes: "
        "remaining-quota metrics and alerts",
        "Environment": {
            "Variables": {
                "POWERTOOLS_SERVICE_NAME": "apigw-quota-monitor",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "ALERT_TOPIC_ARN": f"${{{ids['topic']}}}",
                "ALERT_TABLE_NAME": f"${{{ids['table']}}}",
                "FAST_SCHEDULE_MINUTES": "1",
                "SCHEDULE_MINUTES": "15",
                "METRIC_NAMESPACE": "ApiGatewayQuota",
            }
        },
        "Handler": "quota_monitor.handler.handler",
        "Layers": [f"${{{ids['layer']}}}"],
        "LoggingConfig": {"LogGroup": f"${{{ids['logs']}}}"},
        "MemorySize": 256,
        "ReservedConcurrentExecutions": 1,
        "Role": f"${{{ids['role']}.Arn}}",
        "Runtime": "python3.14",
        "Timeout": 300,
    }


def test_fast_path_function(synth: Synthesized, ids: dict[str, str]) -> None:
    """The same code, settings and role as the monitor, its own log group; at most one at a time, a
    timeout under its minute, no retries, no dead-letter queue (the next minute supersedes a miss)."""
    monitor = render(synth.resources[ids["function"]]["Properties"])
    properties = render(synth.resources[ids["fast_function"]]["Properties"])
    assert properties.pop("Code") == monitor["Code"]
    assert properties == {
        "Architectures": ["arm64"],
        "Description": "Reads the hot usage plans every 1 minute(s) and alerts a crossing at once (the "
        "quota monitor's fast path)",
        "Environment": monitor["Environment"],
        "Handler": "quota_monitor.fast_handler.handler",
        "Layers": monitor["Layers"],
        "LoggingConfig": {"LogGroup": f"${{{ids['fast_logs']}}}"},
        "MemorySize": 128,
        "ReservedConcurrentExecutions": 1,
        "Role": monitor["Role"],
        "Runtime": "python3.14",
        "Timeout": 55,
    }


def test_fast_schedule_runs_every_minute_without_retries(synth: Synthesized, ids: dict[str, str]) -> None:
    assert render(synth.resources[ids["fast_schedule"]]["Properties"]) == {
        "Description": "Runs the quota monitor's fast path every 1 minute(s): the hot plans of the full "
        "scan's watch lists",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ScheduleExpression": "rate(1 minute)",
        "ScheduleExpressionTimezone": "Etc/UTC",
        "State": "ENABLED",
        "Target": {
            "Arn": f"${{{ids['fast_function']}.Arn}}",
            "RetryPolicy": {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0},
            "RoleArn": f"${{{ids['schedule_role']}.Arn}}",
        },
    }


def test_timeout_is_shorter_than_the_schedule_interval(synth: Synthesized, ids: dict[str, str]) -> None:
    timeout = synth.resources[ids["function"]]["Properties"]["Timeout"]
    rate = synth.resources[ids["schedule"]]["Properties"]["ScheduleExpression"]
    assert rate == "rate(15 minutes)"
    assert timeout < 15 * 60


def test_asynchronous_invocation_is_set_on_purpose(synth: Synthesized, ids: dict[str, str]) -> None:
    configs = sorted(
        (render(config["Properties"]) for config in synth.of_type("AWS::Lambda::EventInvokeConfig").values()),
        key=lambda config: str(config["FunctionName"]),
    )
    assert configs == sorted(
        [
            {
                "FunctionName": f"${{{ids['function']}}}",
                "MaximumEventAgeInSeconds": 900,  # one interval: a later run would overlap the next one
                "MaximumRetryAttempts": 1,
                "Qualifier": "$LATEST",
            },
            {
                "FunctionName": f"${{{ids['fast_function']}}}",
                "MaximumEventAgeInSeconds": 60,  # Lambda's least: the next minute's run reads afresh
                "MaximumRetryAttempts": 0,
                "Qualifier": "$LATEST",
            },
        ],
        key=lambda config: str(config["FunctionName"]),
    )


def test_schedule_uses_eventbridge_scheduler_with_retries_and_dead_letters(
    synth: Synthesized, ids: dict[str, str]
) -> None:
    assert synth.of_type("AWS::Events::Rule") == {}
    assert render(synth.resources[ids["schedule"]]["Properties"]) == {
        "Description": "Runs the API Gateway quota monitor every 15 minutes",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ScheduleExpression": "rate(15 minutes)",
        "ScheduleExpressionTimezone": "Etc/UTC",
        "State": "ENABLED",
        "Target": {
            "Arn": f"${{{ids['function']}.Arn}}",
            "DeadLetterConfig": {"Arn": f"${{{ids['dlq']}.Arn}}"},
            "RetryPolicy": {"MaximumEventAgeInSeconds": 900, "MaximumRetryAttempts": 5},
            "RoleArn": f"${{{ids['schedule_role']}.Arn}}",
        },
    }


def test_schedule_role_can_invoke_the_monitor_and_dead_letter_only(
    synth: Synthesized, ids: dict[str, str]
) -> None:
    role = render(synth.resources[ids["schedule_role"]]["Properties"])
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "${AWS::AccountId}"}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    assert "ManagedPolicyArns" not in role
    function_arn = f"${{{ids['function']}.Arn}}"
    fast_arn = f"${{{ids['fast_function']}.Arn}}"
    assert statements(synth.resources[ids["schedule_policy"]]) == [
        {
            "Action": ["lambda:InvokeFunction"],
            "Effect": "Allow",
            "Resource": [fast_arn, function_arn, f"{fast_arn}:*", f"{function_arn}:*"],
        },
        {"Action": ["sqs:SendMessage"], "Effect": "Allow", "Resource": [f"${{{ids['dlq']}.Arn}}"]},
    ]


def test_monitor_role_has_exactly_the_runtime_contract(synth: Synthesized, ids: dict[str, str]) -> None:
    role = render(synth.resources[ids["role"]]["Properties"])
    assert "ManagedPolicyArns" not in role  # no AWSLambdaBasicExecutionRole
    assert "Policies" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert render(synth.resources[ids["role_policy"]]["Properties"]["Roles"]) == [f"${{{ids['role']}}}"]
    assert statements(synth.resources[ids["role_policy"]]) == [
        {
            "Sid": "WriteOwnLogs",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": [f"${{{ids['logs']}.Arn}}"],
        },
        {"Action": ["sqs:SendMessage"], "Effect": "Allow", "Resource": [f"${{{ids['dlq']}.Arn}}"]},
        {
            "Sid": "ReadUsagePlansUsageAndKeys",
            "Action": ["apigateway:GET"],
            "Effect": "Allow",
            # No /usageplans/*/keys: CROSS_CHECK_PLAN_KEYS is off.
            "Resource": [f"{APIGW}/apikeys", f"{APIGW}/usageplans", f"{APIGW}/usageplans/*/usage"],
        },
        {
            "Sid": "PublishQuotaMetrics",
            "Action": ["cloudwatch:PutMetricData"],
            "Condition": {"StringEquals": {"cloudwatch:namespace": "ApiGatewayQuota"}},
            "Effect": "Allow",
            "Resource": ["*"],
        },
        {
            "Sid": "KeepAlertState",
            # Scan and UpdateItem: the alert state (and the lease and budget, updated in place);
            # BatchGetItem: the fast path's watch lists, and the few keys' states it reads.
            "Action": ["dynamodb:BatchGetItem", "dynamodb:Scan", "dynamodb:UpdateItem"],
            "Effect": "Allow",
            "Resource": [f"${{{ids['table']}.Arn}}"],
        },
        {
            # PutItem replaces a whole item: the watch lists' alone, never an alert state
            "Sid": "WriteWatchLists",
            "Action": ["dynamodb:PutItem"],
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["~watch#*"]}},
            "Effect": "Allow",
            "Resource": [f"${{{ids['table']}.Arn}}"],
        },
        {
            "Sid": "ReadApiBudget",
            "Action": ["dynamodb:GetItem"],
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["~budget#*"]}},
            "Effect": "Allow",
            "Resource": [f"${{{ids['table']}.Arn}}"],
        },
        {
            "Sid": "PublishAlerts",
            "Action": ["sns:Publish"],
            "Effect": "Allow",
            "Resource": [f"${{{ids['topic']}}}"],
        },
        {
            "Sid": "EncryptAlertsForTheTopic",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Effect": "Allow",
            "Resource": [f"${{{ids['key']}.Arn}}"],
        },
        {
            "Sid": "WriteFastFunctionLogs",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": [f"${{{ids['fast_logs']}.Arn}}"],
        },
    ]


def test_the_item_conditions_match_the_keys_the_runtime_writes_and_reads() -> None:
    patterns = {action: keys for _, action, keys in FAST_PATH_ITEMS}
    target = Target("123456789012", "eu-west-1")
    assert fnmatch.fnmatchcase(watch_key(target), patterns["dynamodb:PutItem"])
    assert fnmatch.fnmatchcase(budget_key(target), patterns["dynamodb:GetItem"])
    # and no alert state item matches either: a plan's key does not start with "~"
    state = state_key("abc123", "key456", target)
    assert not any(fnmatch.fnmatchcase(state, keys) for keys in patterns.values())


def test_no_iam_policy_has_a_wildcard_action_or_a_write_verb_on_api_gateway(synth: Synthesized) -> None:
    checked = 0
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for statement in statements(policy):
            for action in statement["Action"]:
                checked += 1
                assert "*" not in action, statement
                assert not action.startswith("apigateway:") or action == "apigateway:GET", statement
    assert checked >= 10


def test_log_group_has_retention_and_is_kept(synth: Synthesized, ids: dict[str, str]) -> None:
    log_group = synth.resources[ids["logs"]]
    assert log_group["Properties"] == {"RetentionInDays": 14}
    assert log_group["DeletionPolicy"] == "Retain"


def test_powertools_layer(synth: Synthesized, ids: dict[str, str]) -> None:
    properties = synth.resources[ids["layer"]]["Properties"]
    assert properties["CompatibleRuntimes"] == ["python3.14"]
    assert properties["CompatibleArchitectures"] == ["arm64"]
    assert properties["Description"] == "Powertools for AWS Lambda (Python) 3.37.0 [tracer], from uv.lock"


def _asset_dir(synth: Synthesized, logical_id: str) -> Path:
    asset_path: str = synth.resources[logical_id]["Metadata"]["aws:asset:path"]
    return synth.outdir / asset_path


def test_function_asset_is_the_runtime_package_only(synth: Synthesized, ids: dict[str, str]) -> None:
    asset = _asset_dir(synth, ids["function"])
    files = sorted(str(path.relative_to(asset)) for path in asset.rglob("*") if path.is_file())
    assert "quota_monitor/handler.py" in files
    assert all(name.startswith("quota_monitor/") for name in files), files
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]


def test_layer_asset_holds_locked_powertools_for_arm64_and_no_sdk(
    synth: Synthesized, ids: dict[str, str]
) -> None:
    site = _asset_dir(synth, ids["layer"]) / "python"
    installed = {path.name for path in site.iterdir()}
    assert {
        "aws_lambda_powertools-3.37.0.dist-info",
        "aws_xray_sdk-2.15.0.dist-info",
        "wrapt-2.5.2.dist-info",
        "typing_extensions-4.16.0.dist-info",
    } <= installed
    assert not {"boto3", "botocore", "s3transfer", "jmespath", "urllib3"} & installed
    wheel_tag = (site / "wrapt-2.5.2.dist-info" / "WHEEL").read_text(encoding="utf-8")
    assert "cp314-cp314-manylinux" in wheel_tag
    assert "aarch64" in wheel_tag


def test_state_table(synth: Synthesized, ids: dict[str, str]) -> None:
    table = synth.resources[ids["table"]]
    assert table["Properties"] == {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
    }
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_key_rotates_and_lets_cloudwatch_alarms_use_it(synth: Synthesized, ids: dict[str, str]) -> None:
    key = render(synth.resources[ids["key"]])
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    policy = key["Properties"]["KeyPolicy"]["Statement"]
    assert {
        "Sid": "AllowCloudWatchAlarmsToUseTheKey",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Resource": "*",
    } in policy
    # The account's administrators keep the key manageable (CDK's default statement).
    assert {
        "Action": "kms:*",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
        "Resource": "*",
    } in policy
    assert len(policy) == 2


def test_topic_is_encrypted_tls_only_and_open_to_this_accounts_alarms(
    synth: Synthesized, ids: dict[str, str]
) -> None:
    topic = render(synth.resources[ids["topic"]]["Properties"])
    assert topic == {"DisplayName": "API Gateway quota alerts", "KmsMasterKeyId": f"${{{ids['key']}.Arn}}"}
    policy = render(synth.resources[ids["topic_policy"]]["Properties"])
    assert policy["Topics"] == [f"${{{ids['topic']}}}"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "AllowPublishThroughSSLOnly",
            "Action": "sns:Publish",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": "*",
            "Resource": f"${{{ids['topic']}}}",
        },
        {
            "Sid": "AllowThisAccountsAlarmsToPublish",
            "Action": "sns:Publish",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": "${AWS::AccountId}"},
                "ArnLike": {"aws:SourceArn": f"{CLOUDWATCH}:alarm:*"},
            },
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Resource": f"${{{ids['topic']}}}",
        },
    ]
    assert synth.of_type("AWS::SNS::Subscription") == {}  # no emails in cdk.json


def test_dead_letter_queue_is_encrypted_and_tls_only(synth: Synthesized, ids: dict[str, str]) -> None:
    assert synth.resources[ids["dlq"]]["Properties"] == {
        "MessageRetentionPeriod": 1209600,
        "SqsManagedSseEnabled": True,
    }
    policy = render(synth.resources[ids["dlq_policy"]]["Properties"]["PolicyDocument"]["Statement"])
    assert policy == [
        {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": f"${{{ids['dlq']}.Arn}}",
        }
    ]


def _alarms(synth: Synthesized) -> dict[str, dict[str, object]]:
    return {
        body["Properties"]["AlarmName"]: render(body["Properties"])
        for body in synth.of_type("AWS::CloudWatch::Alarm").values()
    }


def test_self_monitoring_alarms(synth: Synthesized, ids: dict[str, str]) -> None:
    alarms = _alarms(synth)
    topic = [f"${{{ids['topic']}}}"]
    summary = {
        name: (
            alarm.get("Namespace"),
            alarm.get("MetricName"),
            alarm.get("Statistic"),
            alarm.get("Period"),
            alarm.get("ComparisonOperator"),
            alarm.get("Threshold"),
            alarm.get("EvaluationPeriods"),
            alarm.get("DatapointsToAlarm"),
            alarm.get("TreatMissingData"),
        )
        for name, alarm in alarms.items()
    }
    above_zero = ("GreaterThanThreshold", 0, 1, 1, "notBreaching")
    assert summary == {
        f"{STACK}-monitor-errors": ("AWS/Lambda", "Errors", "Sum", 900, *above_zero),
        f"{STACK}-scan-errors": ("ApiGatewayQuota", "ScanErrors", "Sum", 900, *above_zero),
        # Two intervals without a run, and no data counts as no run.
        f"{STACK}-heartbeat-missing": (
            "ApiGatewayQuota", "KeysScanned", "SampleCount", 900, "LessThanThreshold", 1, 2, 2, "breaching"
        ),
        f"{STACK}-alert-delivery-failures": (
            "ApiGatewayQuota", "AlertDeliveryFailures", "Sum", 900, *above_zero
        ),
        f"{STACK}-alert-state-errors": ("ApiGatewayQuota", "AlertStateErrors", "Sum", 900, *above_zero),
        f"{STACK}-run-dead-letters": (
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300, *above_zero
        ),
        # The fast path failing in 3 of its last 5 minutes: one failed minute the next one retries.
        f"{STACK}-fast-path-errors": (
            "AWS/Lambda", "Errors", "Sum", 60, "GreaterThanThreshold", 0, 5, 3, "notBreaching"
        ),
        # The fast path not invoked at all for 5 minutes (Scheduler or Lambda dropping its events):
        # no Invocations datapoint at all is the case to catch.
        f"{STACK}-fast-path-heartbeat": (
            "AWS/Lambda", "Invocations", "Sum", 300, "LessThanThreshold", 1, 1, 1, "breaching"
        ),
    }  # fmt: skip
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == topic, name
        assert alarm["OKActions"] == topic, name
        assert alarm["AlarmDescription"], name
    assert alarms[f"{STACK}-monitor-errors"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": f"${{{ids['function']}}}"}
    ]
    assert alarms[f"{STACK}-fast-path-errors"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": f"${{{ids['fast_function']}}}"}
    ]
    assert alarms[f"{STACK}-run-dead-letters"]["Dimensions"] == [
        {"Name": "QueueName", "Value": f"${{{ids['dlq']}.QueueName}}"}
    ]


def _dashboard(synth: Synthesized, ids: dict[str, str]) -> dict[str, object]:
    body = render(synth.resources[ids["dashboard"]]["Properties"]["DashboardBody"])
    parsed: dict[str, object] = json.loads(body)
    return parsed


def test_dashboard_queries_metrics_insights(synth: Synthesized, ids: dict[str, str]) -> None:
    widgets = _dashboard(synth, ids)["widgets"]
    assert isinstance(widgets, list)
    queries = {
        widget["properties"]["title"]: widget["properties"]["metrics"]
        for widget in widgets
        if widget["type"] == "metric" and "expression" in widget["properties"]["metrics"][0][0]
    }
    schema_key = 'SCHEMA("ApiGatewayQuota", UsagePlanId, ApiKeyId) GROUP BY UsagePlanId, ApiKeyId'
    assert queries == {
        "Keys with per-key metrics: top 10 by quota utilization (%)": [
            [
                {
                    "expression": f"SELECT MAX(QuotaUtilization) FROM {schema_key} "
                    "ORDER BY MAX() DESC LIMIT 10",
                    "period": 900,
                }
            ]
        ],
        "Keys with per-key metrics: 10 with the least quota remaining": [
            [
                {
                    "expression": f"SELECT MIN(RemainingQuota) FROM {schema_key} ORDER BY MIN() ASC LIMIT 10",
                    "period": 900,
                }
            ]
        ],
    }
    # KEY_METRICS=auto publishes no per-plan roll-up: the plans table of the records replaces it.
    utilization = next(
        w
        for w in widgets
        if w["properties"].get("title") == "Keys with per-key metrics: top 10 by quota utilization (%)"
    )
    assert [line["value"] for line in utilization["properties"]["annotations"]["horizontal"]] == [80, 90, 100]


def test_dashboard_reads_the_records_from_the_functions_log_group(
    synth: Synthesized, ids: dict[str, str]
) -> None:
    widgets = _dashboard(synth, ids)["widgets"]
    assert isinstance(widgets, list)
    logs = {w["properties"]["title"]: w["properties"] for w in widgets if w["type"] == "log"}
    assert list(logs) == [
        "Most used keys now (top 50, from the records)",
        "Keys and plans matching the 'Key or plan (id or name)' box (every key until you type)",
        "Plans and their hottest key (from the records)",
        "Keys forecast to run out before their quota resets (UTC)",
    ]
    for title, properties in logs.items():
        # The function's own log group, where the handler prints the records, and nothing else; then
        # the query, exactly as tests/infra/test_record_views.py writes it.
        first, *rest = QUERIES[False][title]
        assert properties["query"].splitlines() == [f"SOURCE '${{{ids['logs']}}}' | {first}", *rest], title
        assert (properties["view"], properties["region"]) == ("table", "${AWS::Region}")


def test_dashboard_search_box_feeds_one_query_and_time_ranges_bound_the_scans(
    synth: Synthesized, ids: dict[str, str]
) -> None:
    body = _dashboard(synth, ids)
    # The log widgets read the dashboard's range, which opens at the records window: the 15-minute
    # interval and 5 minutes. Every graph keeps its own week.
    assert body["start"] == "-PT20M"
    widgets = body["widgets"]
    assert isinstance(widgets, list)
    assert {w["properties"]["start"] for w in widgets if w["type"] == "metric"} == {"-P7D"}
    assert all("start" not in w["properties"] for w in widgets if w["type"] == "log")
    assert body["variables"] == [
        {
            "type": "pattern",
            "pattern": "__quota_key_or_plan__",
            "inputType": "input",
            "id": "keyOrPlan",
            "label": "Key or plan (id or name)",
            "defaultValue": ".",
            "visible": True,
        }
    ]
    # A pattern variable rewrites every match in the dashboard's JSON: only the search query has it.
    holders = [w["properties"].get("title") for w in widgets if "__quota_key_or_plan__" in json.dumps(w)]
    assert holders == [
        "Keys and plans matching the 'Key or plan (id or name)' box (every key until you type)"
    ]
    (search,) = [w for w in widgets if w["properties"].get("title") == holders[0]]
    query = search["properties"]["query"]
    for field in ("apiKeyId", "apiKeyName", "usagePlanId", "usagePlanName"):
        assert f"{field} like /(?i)__quota_key_or_plan__/" in query
    # What a user types in the box lands only in those regexes: the rest of the query stays as it is.
    assert query.count("__quota_key_or_plan__") == query.count(" like /(?i)__quota_key_or_plan__/") == 4


def test_dashboard_shows_the_monitors_health_and_every_alarm(synth: Synthesized, ids: dict[str, str]) -> None:
    widgets = _dashboard(synth, ids)["widgets"]
    assert isinstance(widgets, list)
    health = {
        metric[1]
        for widget in widgets
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
        if isinstance(metric[0], str)
    }
    assert health == {
        "Invocations",
        "Errors",
        "ScanErrors",
        "KeysScanned",
        "PlansScanned",
        "ApiCalls",
        "ApiThrottles",
        "ScanDuration",
        "AlertsSent",
        "AlertDeliveryFailures",
        "AlertStateErrors",
    }
    (status,) = [widget for widget in widgets if widget["type"] == "alarm"]
    alarm_ids = sorted(synth.of_type("AWS::CloudWatch::Alarm"))
    assert sorted(status["properties"]["alarms"]) == sorted(f"${{{name}.Arn}}" for name in alarm_ids)


def test_outputs(synth: Synthesized, ids: dict[str, str]) -> None:
    outputs = deployed_outputs(synth.raw, {"AWS::Partition": "aws", "AWS::Region": "eu-west-1"})
    assert outputs == {
        "MonitorRoleArn": f"${{{ids['role']}.Arn}}",
        "AlertTopicArn": f"${{{ids['topic']}}}",
        "DashboardUrl": "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        f"#dashboards/dashboard/${{{ids['dashboard']}}}",
        "StateTableName": f"${{{ids['table']}}}",
        "MonitorFunctionName": f"${{{ids['function']}}}",
        "FastFunctionName": f"${{{ids['fast_function']}}}",
        "RunDeadLetterQueueUrl": f"${{{ids['dlq']}}}",
    }


@pytest.mark.parametrize(
    ("partition", "region", "console"),
    [
        ("aws", "ap-southeast-2", "https://ap-southeast-2.console.aws.amazon.com"),
        ("aws-cn", "cn-north-1", "https://console.amazonaws.cn"),
        ("aws-us-gov", "us-gov-west-1", "https://console.amazonaws-us-gov.com"),
        ("aws-iso", "us-iso-east-1", None),
        ("aws-eusc", "eusc-de-east-1", None),
    ],
)
def test_the_dashboard_url_is_in_the_console_of_the_stacks_partition_or_absent(
    synth: Synthesized, ids: dict[str, str], partition: str, region: str, console: str | None
) -> None:
    """The partition is known at deploy time only: CloudFormation conditions choose the console, and
    where none is known the output is left out rather than pointing into the wrong console."""
    outputs = deployed_outputs(synth.raw, {"AWS::Partition": partition, "AWS::Region": region})
    if console is None:
        assert "DashboardUrl" not in outputs
        assert "AlertTopicArn" in outputs
    else:
        assert outputs["DashboardUrl"] == (
            f"{console}/cloudwatch/home?region={region}#dashboards/dashboard/${{{ids['dashboard']}}}"
        )


def test_no_secret_or_webhook_anywhere_by_default(synth: Synthesized) -> None:
    text = json.dumps(synth.raw)
    assert "hooks.slack.com" not in text
    assert synth.of_type("AWS::SecretsManager::Secret") == {}
    assert synth.of_type("AWS::Chatbot::SlackChannelConfiguration") == {}


def test_cfn_lint_passes(synth: Synthesized) -> None:
    assert cfn_lint(synth.raw) == []
