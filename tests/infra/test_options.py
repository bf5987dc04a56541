"""The stack with every option turned: Slack through AWS Chatbot and through the webhook forwarder
(a created secret, then an existing one), emails, tracing, the plan-keys cross-check, another
namespace, thresholds and schedule, reserved concurrency off, destroy on delete. One synth per
configuration, cdk-nag on."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk import aws_sns as sns

import app as cdk_app
from infra.alerting import WEBHOOK_PLACEHOLDER
from quota_monitor.publish.metrics import MetricName
from tests.infra_support import (
    Synthesized,
    att,
    cdk_json_context,
    cfn_lint,
    ref,
    render,
    statements,
    synthesize,
    warnings,
)

pytestmark = pytest.mark.synth

STACK = "QuotaMonitorTest"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/slack-webhook-AbC123"
SECRET_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
APIGW = "arn:${AWS::Partition}:apigateway:${AWS::Region}::"

EVERYTHING = {
    "stackName": STACK,
    "scheduleMinutes": "5",
    "fastScheduleMinutes": "2",
    "fastMemoryMb": "256",
    "memoryMb": "512",
    "logRetentionDays": "90",
    "logLevel": "debug",
    "reservedConcurrency": "false",
    "removalPolicy": "destroy",
    "tracing": "true",
    "alertEmails": "ops@example.com, quota-owner@example.org",
    "slackWorkspaceId": "T0123ABCD45",
    "slackChannelId": "C0123ABCD45",
    "slackWebhookSecret": "create",
    "metricNamespace": "Acme/Quotas",
    "thresholds": "70,85,95",
    "crossCheckPlanKeys": "true",
    "digestMinAlerts": "10",
    "keyMetrics": "all",
    "archive": "true",
}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("full"), **EVERYTHING)


@pytest.fixture(scope="module")
def existing_secret(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        tmp_path_factory.mktemp("existing-secret"),
        slackWebhookSecret=SECRET_ARN,
        slackWebhookSecretKeyArn=SECRET_KEY_ARN,
        memoryMb="128",
        fastScheduleMinutes="0",
    )


def _function(synth: Synthesized, path: str) -> dict[str, Any]:
    properties: dict[str, Any] = render(synth.resources[synth.logical_id(path)]["Properties"])
    return properties


def test_monitor_function_follows_the_settings(full: Synthesized) -> None:
    function = _function(full, "Monitor/Function")
    assert function["Timeout"] == 240  # a minute under the 5-minute interval
    assert function["MemorySize"] == 512
    assert "ReservedConcurrentExecutions" not in function
    assert function["TracingConfig"] == {"Mode": "Active"}
    topic, table = full.logical_id("Monitor/Alerts/Topic"), full.logical_id("Monitor/AlertState")
    bucket = full.logical_id("Monitor/Archive/Bucket")
    assert function["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "apigw-quota-monitor",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "ALERT_TOPIC_ARN": f"${{{topic}}}",
        "ALERT_TABLE_NAME": f"${{{table}}}",
        "METRIC_NAMESPACE": "Acme/Quotas",
        "THRESHOLDS": "70,85,95",
        "CROSS_CHECK_PLAN_KEYS": "true",
        "DIGEST_MIN_ALERTS": "10",
        "KEY_METRICS": "all",
        "FAST_SCHEDULE_MINUTES": "2",
        "SCHEDULE_MINUTES": "5",
        "ARCHIVE_BUCKET": f"${{{bucket}}}",
    }
    fast = _function(full, "Monitor/FastFunction")
    assert (fast["Timeout"], fast["MemorySize"], fast["TracingConfig"]) == (115, 256, {"Mode": "Active"})
    assert "ReservedConcurrentExecutions" not in fast  # the lease in the table keeps runs apart
    fast_schedule = full.resources[full.logical_id("Monitor/FastSchedule")]["Properties"]
    assert fast_schedule["ScheduleExpression"] == "rate(2 minutes)"
    schedule = full.resources[full.logical_id("Monitor/Schedule")]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert schedule["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 300, "MaximumRetryAttempts": 5}
    monitor = ref(full.logical_id("Monitor/Function"))
    (config,) = [
        render(body["Properties"])
        for body in full.of_type("AWS::Lambda::EventInvokeConfig").values()
        if render(body["Properties"]["FunctionName"]) == monitor
    ]
    assert config["MaximumEventAgeInSeconds"] == 300


def test_monitor_permissions_follow_namespace_cross_check_and_tracing(full: Synthesized) -> None:
    granted = statements(full.resources[full.logical_id("Monitor/FunctionRole/DefaultPolicy")])
    by_sid = {statement.get("Sid", statement["Action"][0]): statement for statement in granted}
    assert by_sid["ReadUsagePlansUsageAndKeys"]["Resource"] == [
        f"{APIGW}/apikeys",
        f"{APIGW}/usageplans",
        f"{APIGW}/usageplans/*/keys",
        f"{APIGW}/usageplans/*/usage",
    ]
    assert by_sid["PublishQuotaMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "Acme/Quotas"}
    }
    assert by_sid["xray:PutTelemetryRecords"] == {
        "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
        "Effect": "Allow",
        "Resource": ["*"],
    }
    # The monitor's eight; with the fast path, the watch lists' and the budget's items, and the
    # fast function's log group (it runs under the same role); with the archive, its records' objects.
    assert len(granted) == 12
    assert [by_sid[sid]["Action"] for sid in ("WriteWatchLists", "ReadApiBudget")] == [
        ["dynamodb:PutItem"],
        ["dynamodb:GetItem"],
    ]
    assert by_sid["WriteFastFunctionLogs"]["Resource"] == [
        att(full.logical_id("Monitor/FastFunctionLogs"), "Arn")
    ]


def test_without_the_fast_path_there_is_no_fast_function_and_no_watch_list_permission(
    existing_secret: Synthesized,
) -> None:
    handlers = {
        body["Properties"]["Handler"] for body in existing_secret.of_type("AWS::Lambda::Function").values()
    }
    assert "quota_monitor.fast_handler.handler" not in handlers
    assert list(existing_secret.of_type("AWS::Scheduler::Schedule").values()) == [
        existing_secret.resources[existing_secret.logical_id("Monitor/Schedule")]
    ]
    function = _function(existing_secret, "Monitor/Function")
    assert "FAST_SCHEDULE_MINUTES" not in function["Environment"]["Variables"]
    granted = statements(
        existing_secret.resources[existing_secret.logical_id("Monitor/FunctionRole/DefaultPolicy")]
    )
    (state,) = [statement for statement in granted if statement.get("Sid") == "KeepAlertState"]
    assert state["Action"] == ["dynamodb:Scan", "dynamodb:UpdateItem"]


def test_email_subscriptions(full: Synthesized) -> None:
    topic = f"${{{full.logical_id('Monitor/Alerts/Topic')}}}"
    ops = f"${{{full.logical_id('Monitor/Alerts/OpsTopic')}}}"
    emails = sorted(
        (body["Properties"]["Endpoint"], render(body["Properties"]["TopicArn"]))
        for body in full.of_type("AWS::SNS::Subscription").values()
        if body["Properties"]["Protocol"] == "email"
    )
    # Each address on the alert topic, and on the ops topic of the Slack forwarder's own alarms.
    assert emails == sorted(
        (address, arn) for address in ("ops@example.com", "quota-owner@example.org") for arn in (topic, ops)
    )


def test_chatbot_slack_channel(full: Synthesized) -> None:
    _, config = full.one("AWS::Chatbot::SlackChannelConfiguration")
    properties = render(config["Properties"])
    role = full.logical_id("Monitor/SlackChannel/ConfigurationRole")
    assert properties == {
        # Chatbot's names are global to the account: the region keeps a second region's apart.
        "ConfigurationName": f"{STACK}-${{AWS::Region}}-quota-alerts",
        "GuardrailPolicies": ["arn:${AWS::Partition}:iam::aws:policy/CloudWatchReadOnlyAccess"],
        "IamRoleArn": f"${{{role}.Arn}}",
        "LoggingLevel": "ERROR",
        "SlackChannelId": "C0123ABCD45",
        "SlackWorkspaceId": "T0123ABCD45",
        # The alerts, and the ops topic with the Slack forwarder's own alarms.
        "SnsTopicArns": [
            f"${{{full.logical_id('Monitor/Alerts/Topic')}}}",
            f"${{{full.logical_id('Monitor/Alerts/OpsTopic')}}}",
        ],
    }
    chatbot_role = render(full.resources[role]["Properties"])
    assert "ManagedPolicyArns" not in chatbot_role  # notifications only: no permissions of its own
    assert "Policies" not in chatbot_role


def test_created_webhook_secret_holds_a_placeholder_never_a_url(full: Synthesized) -> None:
    _, secret = full.one("AWS::SecretsManager::Secret")
    assert secret["Properties"]["SecretString"] == WEBHOOK_PLACEHOLDER
    assert "GenerateSecretString" not in secret["Properties"]
    assert secret["DeletionPolicy"] == "Delete"
    assert "hooks.slack.com" not in json.dumps(full.raw)


def test_slack_forwarder(full: Synthesized) -> None:
    function = _function(full, "Monitor/SlackWebhook/Function")
    secret = full.logical_id("Monitor/SlackWebhook/WebhookUrl")
    dlq = full.logical_id("Monitor/SlackWebhook/DeadLetterQueue")
    assert function["Handler"] == "quota_monitor.deliver.slack.handler.handler"
    assert function["Runtime"] == "python3.14"
    assert function["Architectures"] == ["arm64"]
    assert function["Layers"] == [f"${{{full.logical_id('Monitor/PowertoolsLayer')}}}"]
    assert function["Environment"]["Variables"] == {
        "SLACK_WEBHOOK_SECRET_ARN": f"${{{secret}}}",
        "POWERTOOLS_SERVICE_NAME": "apigw-quota-monitor-slack",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }
    assert function["DeadLetterConfig"] == {"TargetArn": f"${{{dlq}.Arn}}"}
    invoke_configs = [
        render(body["Properties"]) for body in full.of_type("AWS::Lambda::EventInvokeConfig").values()
    ]
    assert {
        "FunctionName": f"${{{full.logical_id('Monitor/SlackWebhook/Function')}}}",
        "MaximumEventAgeInSeconds": 3600,
        "MaximumRetryAttempts": 2,
        "Qualifier": "$LATEST",
    } in invoke_configs
    assert statements(full.resources[full.logical_id("Monitor/SlackWebhook/FunctionRole/DefaultPolicy")]) == [
        {
            "Sid": "WriteOwnLogs",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": [att(full.logical_id("Monitor/SlackWebhook/FunctionLogs"))],
        },
        {"Action": ["sqs:SendMessage"], "Effect": "Allow", "Resource": [f"${{{dlq}.Arn}}"]},
        {
            "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
            "Effect": "Allow",
            "Resource": ["*"],
        },
        {
            "Sid": "ReadSlackWebhookUrl",
            "Action": ["secretsmanager:GetSecretValue"],
            "Effect": "Allow",
            "Resource": [f"${{{secret}}}"],
        },
    ]
    subscriptions = [
        render(body["Properties"])
        for body in full.of_type("AWS::SNS::Subscription").values()
        if body["Properties"]["Protocol"] == "lambda"
    ]
    assert subscriptions == [
        {
            "Endpoint": att(full.logical_id("Monitor/SlackWebhook/Function")),
            "Protocol": "lambda",
            "TopicArn": f"${{{full.logical_id('Monitor/Alerts/Topic')}}}",
        }
    ]
    (permission,) = [render(body["Properties"]) for body in full.of_type("AWS::Lambda::Permission").values()]
    assert permission["Principal"] == "sns.amazonaws.com"
    assert permission["SourceArn"] == f"${{{full.logical_id('Monitor/Alerts/Topic')}}}"


def test_alarms_cover_the_forwarder_and_follow_namespace_and_interval(full: Synthesized) -> None:
    alarms = {
        body["Properties"]["AlarmName"]: render(body["Properties"])
        for body in full.of_type("AWS::CloudWatch::Alarm").values()
    }
    assert sorted(alarms) == sorted(
        f"{STACK}-{name}"
        for name in (
            "monitor-errors",
            "scan-errors",
            "heartbeat-missing",
            "alert-delivery-failures",
            "alert-state-errors",
            "run-dead-letters",
            "fast-path-errors",
            "fast-path-heartbeat",
            "archive-failures",
            "slack-forwarder-errors",
            "slack-dead-letters",
        )
    )
    archive = alarms[f"{STACK}-archive-failures"]
    assert (archive["MetricName"], archive["Namespace"], archive["Threshold"]) == (
        "ArchiveFailures",
        "Acme/Quotas",
        0,
    )
    assert archive["TreatMissingData"] == "notBreaching"
    fast = alarms[f"{STACK}-fast-path-errors"]
    assert (fast["Period"], fast["EvaluationPeriods"], fast["DatapointsToAlarm"]) == (120, 5, 3)
    heartbeat = alarms[f"{STACK}-heartbeat-missing"]
    assert (heartbeat["Namespace"], heartbeat["Period"], heartbeat["EvaluationPeriods"]) == (
        "Acme/Quotas",
        300,
        2,
    )
    forwarder = alarms[f"{STACK}-slack-forwarder-errors"]
    assert forwarder["Dimensions"] == [
        {"Name": "FunctionName", "Value": f"${{{full.logical_id('Monitor/SlackWebhook/Function')}}}"}
    ]
    queue = alarms[f"{STACK}-slack-dead-letters"]
    assert queue["Dimensions"] == [
        {
            "Name": "QueueName",
            "Value": att(full.logical_id("Monitor/SlackWebhook/DeadLetterQueue"), "QueueName"),
        }
    ]
    topic = [f"${{{full.logical_id('Monitor/Alerts/Topic')}}}"]
    ops = [f"${{{full.logical_id('Monitor/Alerts/OpsTopic')}}}"]
    routes = {name: (alarm["AlarmActions"], alarm["OKActions"]) for name, alarm in alarms.items()}
    forwarders = {f"{STACK}-slack-forwarder-errors", f"{STACK}-slack-dead-letters"}
    assert {name: route for name, route in routes.items() if name in forwarders} == dict.fromkeys(
        forwarders, (ops, ops)
    )
    assert {name: route for name, route in routes.items() if name not in forwarders} == dict.fromkeys(
        set(alarms) - forwarders, (topic, topic)
    )


def test_the_forwarders_alarms_reach_people_without_going_through_the_forwarder(full: Synthesized) -> None:
    """A broken webhook must not swallow the alarm that says so: the forwarder's alarms go to an ops
    topic that the forwarder does not read, which the alert emails (and Chatbot) do."""
    ops = full.logical_id("Monitor/Alerts/OpsTopic")
    key = full.logical_id("Monitor/Alerts/Key")
    assert render(full.resources[ops]["Properties"])["KmsMasterKeyId"] == att(key)
    subscribed = sorted(
        (body["Properties"]["Protocol"], body["Properties"].get("Endpoint"))
        for body in full.of_type("AWS::SNS::Subscription").values()
        if render(body["Properties"]["TopicArn"]) == ref(ops)
    )
    assert subscribed == [("email", "ops@example.com"), ("email", "quota-owner@example.org")]
    (policy,) = [
        render(body["Properties"]["PolicyDocument"])
        for body in full.of_type("AWS::SNS::TopicPolicy").values()
        if render(body["Properties"]["Topics"]) == [ref(ops)]
    ]
    sids = {statement.get("Sid") for statement in policy["Statement"]}
    assert "AllowThisAccountsAlarmsToPublish" in sids
    assert any(statement["Effect"] == "Deny" for statement in policy["Statement"])  # TLS only
    assert render(full.raw["Outputs"]["OpsTopicArn"]["Value"]) == ref(ops)


def test_a_forwarder_without_email_or_chatbot_warns_that_its_alarms_reach_nobody(
    existing_secret: Synthesized, full: Synthesized
) -> None:
    assert any("OpsTopicArn" in text and "nothing reads" in text for text in warnings(existing_secret))
    assert not any("OpsTopicArn" in text for text in warnings(full))


def test_memory_under_what_a_months_first_run_needs_warns(
    existing_secret: Synthesized, full: Synthesized
) -> None:
    (warning,) = [text for text in warnings(existing_secret) if "memoryMb" in text]
    assert warning.startswith("memoryMb=128: ")
    assert "161 MiB" in warning
    assert _function(existing_secret, "Monitor/Function")["MemorySize"] == 128
    assert not [text for text in warnings(full) if "memoryMb" in text]  # 512


def test_dashboard_follows_namespace_and_thresholds(full: Synthesized) -> None:
    body = json.loads(
        render(full.resources[full.logical_id("Monitor/Dashboard")]["Properties"]["DashboardBody"])
    )
    expressions = [
        metric[0]["expression"]
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
        if isinstance(metric[0], dict)
    ]
    # KEY_METRICS=all publishes the per-plan roll-ups: their graph is back.
    assert len(expressions) == 3
    assert all('SCHEMA("Acme/Quotas", UsagePlanId' in expression for expression in expressions)
    # A 5-minute schedule: the records window is 10 minutes.
    assert body["start"] == "-PT10M"
    assert "KEY_METRICS=all" in body["widgets"][0]["properties"]["markdown"]
    annotated = [widget for widget in body["widgets"] if "annotations" in widget.get("properties", {})]
    levels = {
        widget["properties"]["title"]: [
            line["value"] for line in widget["properties"]["annotations"]["horizontal"]
        ]
        for widget in annotated
        if str(widget["properties"]["annotations"]["horizontal"][0].get("label", "")).startswith("alert at")
    }
    assert list(levels.values()) == [[70, 85, 95], [70, 85, 95]]
    # The health widgets carry the thresholds of the alarms on their metrics, and nothing else.
    alarm_lines = {
        widget["properties"]["title"]: sorted(
            (line["label"], line["value"]) for line in widget["properties"]["annotations"]["horizontal"]
        )
        for widget in annotated
        if widget["properties"]["title"] not in levels
    }
    assert alarm_lines == {
        "Monitor runs and errors": [("ScanErrors > 0 for 1 datapoints within 5 minutes", 0)],
        "Runs finished (the heartbeat), keys and plans scanned": [
            ("KeysScanned < 1 for 2 datapoints within 10 minutes", 1)
        ],
        "Run duration and alerts": [
            ("AlertDeliveryFailures > 0 for 1 datapoints within 5 minutes", 0),
            ("AlertStateErrors > 0 for 1 datapoints within 5 minutes", 0),
        ],
    }


def test_removal_policy_destroy_reaches_every_stateful_resource(full: Synthesized) -> None:
    for type_ in (
        "AWS::DynamoDB::Table",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::SecretsManager::Secret",
    ):
        for name, body in full.of_type(type_).items():
            assert body.get("DeletionPolicy") == "Delete", name
    retention = {
        body["Properties"]["RetentionInDays"] for body in full.of_type("AWS::Logs::LogGroup").values()
    }
    assert retention == {90}


def test_existing_secret_is_read_by_exact_arn_with_its_key(existing_secret: Synthesized) -> None:
    assert existing_secret.of_type("AWS::SecretsManager::Secret") == {}
    function = _function(existing_secret, "Monitor/SlackWebhook/Function")
    assert function["Environment"]["Variables"]["SLACK_WEBHOOK_SECRET_ARN"] == SECRET_ARN
    granted = statements(
        existing_secret.resources[
            existing_secret.logical_id("Monitor/SlackWebhook/FunctionRole/DefaultPolicy")
        ]
    )
    assert {
        "Sid": "ReadSlackWebhookUrl",
        "Action": ["secretsmanager:GetSecretValue"],
        "Effect": "Allow",
        "Resource": [SECRET_ARN],
    } in granted
    assert {
        "Sid": "DecryptSlackWebhookUrl",
        "Action": ["kms:Decrypt"],
        "Effect": "Allow",
        "Resource": [SECRET_KEY_ARN],
    } in granted
    assert "SlackWebhookSecretArn" in existing_secret.raw["Outputs"]
    assert existing_secret.of_type("AWS::Chatbot::SlackChannelConfiguration") == {}


def test_no_wildcard_actions_in_any_option(full: Synthesized, existing_secret: Synthesized) -> None:
    for synth in (full, existing_secret):
        actions = [
            action
            for policy in synth.of_type("AWS::IAM::Policy").values()
            for statement in statements(policy)
            for action in statement["Action"]
        ]
        assert actions
        assert [action for action in actions if "*" in action] == []


@pytest.mark.parametrize("which", ["full", "existing_secret"])
def test_cfn_lint_passes(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    assert cfn_lint(synth.raw) == []


def test_an_unacknowledged_cdk_nag_finding_fails_the_synth(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The gate is real: the app's own wiring (app.build) stops a synth on a finding."""
    app = App(outdir=str(tmp_path_factory.mktemp("nag")), context=cdk_json_context())
    stack = cdk_app.build(app)
    sns.Topic(stack, "TopicWithoutTls")  # AwsSolutions-SNS3: publishers need not use TLS
    with pytest.raises(RuntimeError, match=r"ValidationFailed(.|\n)*AwsSolutions-SNS3"):
        app.synth()


def test_every_acknowledgement_is_specific_and_says_why(full: Synthesized) -> None:
    """Acknowledgements are written into the template (cdk_nag.rules_to_suppress) for reviewers."""
    acknowledged = {
        (name, rule["id"]): rule["reason"]
        for name, body in full.resources.items()
        for rule in body.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    }
    role = full.logical_id("Monitor/FunctionRole/DefaultPolicy")
    schedule_policy = full.logical_id("Monitor/ScheduleRole/DefaultPolicy")
    forwarder_policy = full.logical_id("Monitor/SlackWebhook/FunctionRole/DefaultPolicy")
    secret = full.logical_id("Monitor/SlackWebhook/WebhookUrl")
    function = full.logical_id("Monitor/Function")
    fast = full.logical_id("Monitor/FastFunction")
    apigw = "arn:<AWS::Partition>:apigateway:<AWS::Region>::"
    bucket = full.logical_id("Monitor/Archive/Bucket")
    assert {key for key in acknowledged if key[0] in {role, schedule_policy, forwarder_policy, secret}} == {
        (role, "AwsSolutions-IAM5[Resource::*]"),
        (role, f"AwsSolutions-IAM5[Resource::{apigw}/usageplans/*/usage]"),
        (role, f"AwsSolutions-IAM5[Resource::{apigw}/usageplans/*/keys]"),
        (role, f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/records/*]"),
        (schedule_policy, f"AwsSolutions-IAM5[Resource::<{function}.Arn>:*]"),
        (schedule_policy, f"AwsSolutions-IAM5[Resource::<{fast}.Arn>:*]"),
        (forwarder_policy, "AwsSolutions-IAM5[Resource::*]"),
        (secret, "AwsSolutions-SMG4"),
    }
    assert all(len(reason) > 40 for reason in acknowledged.values())
    # Nothing is acknowledged wholesale: a new wildcard would be a new finding.
    assert not [rule for _, rule in acknowledged if rule == "AwsSolutions-IAM5"]


def test_every_handler_is_a_function_of_its_asset(full: Synthesized) -> None:
    """The handler strings match the runtime package: a renamed module fails here, not at deploy."""
    functions = full.of_type("AWS::Lambda::Function")
    assert len(functions) == 3  # the monitor, the fast path, the Slack forwarder
    for body in functions.values():
        module, function = body["Properties"]["Handler"].rsplit(".", 1)
        source = full.outdir / body["Metadata"]["aws:asset:path"] / (module.replace(".", "/") + ".py")
        assert f"\ndef {function}(" in source.read_text(encoding="utf-8"), source


def test_every_metric_an_alarm_or_widget_reads_is_one_the_runtime_publishes(full: Synthesized) -> None:
    namespace = "Acme/Quotas"
    published = {name.value for name in MetricName}
    used: set[str] = set()
    for alarm in full.of_type("AWS::CloudWatch::Alarm").values():
        if alarm["Properties"].get("Namespace") == namespace:
            used.add(alarm["Properties"]["MetricName"])
    body = json.loads(
        render(full.resources[full.logical_id("Monitor/Dashboard")]["Properties"]["DashboardBody"])
    )
    for widget in body["widgets"]:
        for metric in widget.get("properties", {}).get("metrics", []):
            if isinstance(metric[0], dict):
                used |= set(
                    re.findall(rf'SELECT \w+\((\w+)\) FROM SCHEMA\("{namespace}"', metric[0]["expression"])
                )
            elif metric[0] == namespace:
                used.add(metric[1])
    assert used <= published, used - published
    # The dashboard and alarms read every metric the runtime publishes but UsedQuota (a roll-up kept
    # for users' own graphs) and SnapshotFailures (only with the quota endpoint, which this synth is
    # without: tests/infra/test_endpoint.py).
    assert published - used == {MetricName.USED_QUOTA.value, MetricName.SNAPSHOT_FAILURES.value}


def test_without_the_fast_path_there_is_no_fast_path_alarm(existing_secret: Synthesized) -> None:
    names = [
        render(body["Properties"]["AlarmName"])
        for body in existing_secret.of_type("AWS::CloudWatch::Alarm").values()
    ]
    assert "ApiGatewayQuotaMonitor-heartbeat-missing" in names
    assert [name for name in names if "fast-path" in name] == []


def test_the_fast_path_heartbeat_watches_its_invocations_and_takes_no_data_as_no_run(
    full: Synthesized,
) -> None:
    (alarm,) = [
        render(body["Properties"])
        for body in full.of_type("AWS::CloudWatch::Alarm").values()
        if render(body["Properties"]["AlarmName"]) == f"{STACK}-fast-path-heartbeat"
    ]
    fast = full.logical_id("Monitor/FastFunction")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": f"${{{fast}}}"}]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == ("Invocations", "Sum", 300)
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["TreatMissingData"]) == (
        "LessThanThreshold",
        1,
        "breaching",
    )
