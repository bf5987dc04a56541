"""Each construct on its own, in a bare stack: the alert topic, the self-monitoring alarms, the function
builder and the metric factory. What a construct promises holds whatever stack it is put in."""

from __future__ import annotations

import re

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Capture, Match, Template

from infra.alarms import WatchedParts, self_monitoring_alarms
from infra.alerting import AlertTopic
from infra.functions import FunctionSpec, dead_letter_queue, python_function
from infra.metrics import MonitorMetrics, insights_query
from tests.infra_support import REPO_ROOT

LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:powertools:1"


def bare_stack() -> Stack:
    return Stack(App(), "Bare", env={"account": "123456789012", "region": "us-east-1"})


def a_function(stack: Stack, *, reserved: int | None = None) -> lambda_.Function:
    return python_function(
        stack,
        "Fn",
        spec=FunctionSpec(
            handler="quota_monitor.handler.handler",
            description="a function of the project",
            environment={"A": "b"},
            timeout=Duration.seconds(60),
            memory_mb=256,
            retry_attempts=1,
            max_event_age=Duration.minutes(15),
            dead_letter_queue=sqs.Queue(stack, "Dlq"),
            reserved_concurrency=reserved,
        ),
        layer=lambda_.LayerVersion.from_layer_version_arn(stack, "Layer", LAYER_ARN),
        log_retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )


def test_alert_topic_is_encrypted_tls_only_and_lets_this_accounts_alarms_publish() -> None:
    # GIVEN a bare stack WHEN the topic is added with two addresses
    stack = bare_stack()
    AlertTopic(
        stack, "Alerts", emails=("a@example.com", "b@example.com"), removal_policy=RemovalPolicy.RETAIN
    )
    template = Template.from_stack(stack)

    # THEN the key rotates and lets CloudWatch alarms use it
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "AllowCloudWatchAlarmsToUseTheKey",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            }
                        )
                    ]
                )
            },
        },
    )
    key = Capture()
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": key})
    assert "Fn::GetAtt" in key.as_object()
    # AND the topic policy refuses plain HTTP and admits only this account's alarms
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        ),
                        Match.object_like(
                            {
                                "Sid": "AllowThisAccountsAlarmsToPublish",
                                "Condition": Match.object_like(
                                    {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                                ),
                            }
                        ),
                    ]
                )
            }
        },
    )
    # AND each address gets a subscription
    template.resource_count_is("AWS::SNS::Subscription", 2)
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "a@example.com"}
    )


def test_grant_publish_gives_exactly_publish_and_the_key_calls() -> None:
    stack = bare_stack()
    topic = AlertTopic(stack, "Alerts", emails=(), removal_policy=RemovalPolicy.RETAIN)
    function = a_function(stack)
    topic.grant_publish_to(function)
    statements = Capture()
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy", {"PolicyDocument": {"Statement": statements}}
    )
    actions = sorted(
        (statement["Sid"], str(statement["Action"]))
        for statement in statements.as_array()
        if "Sid" in statement
    )
    assert ("PublishAlerts", "sns:Publish") in actions
    assert ("EncryptAlertsForTheTopic", "['kms:Decrypt', 'kms:GenerateDataKey']") in actions


def test_the_function_builder_gives_each_function_its_own_log_group_and_a_role_for_it_alone() -> None:
    # GIVEN a bare stack WHEN the builder makes a function
    stack = bare_stack()
    a_function(stack, reserved=1)
    template = Template.from_stack(stack)

    # THEN it runs the project's runtime on arm64, with the layer, its dead-letter queue and retries
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Handler": "quota_monitor.handler.handler",
            "Layers": [LAYER_ARN],
            "ReservedConcurrentExecutions": 1,
            "DeadLetterConfig": {"TargetArn": Match.any_value()},
            "LoggingConfig": {"LogGroup": Match.any_value()},
            "Environment": {"Variables": {"A": "b"}},
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 900}
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
    # AND its role has no managed policy, only what the builder grants: writing its own log group
    template.has_resource_properties("AWS::IAM::Role", {"ManagedPolicyArns": Match.absent()})
    statements = Capture()
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": statements}})
    own_logs = [s for s in statements.as_array() if s.get("Sid") == "WriteOwnLogs"]
    assert len(own_logs) == 1
    assert own_logs[0]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert "Fn::GetAtt" in own_logs[0]["Resource"]


def test_dead_letter_queues_are_encrypted_and_tls_only() -> None:
    stack = bare_stack()
    dead_letter_queue(stack, "Q")
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SQS::Queue", {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600}
    )
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_self_monitoring_alarms_watch_the_shared_metrics_and_tell_the_topic() -> None:
    # GIVEN a bare stack with a function, its queue and a topic
    stack = bare_stack()
    topic = AlertTopic(stack, "Alerts", emails=(), removal_policy=RemovalPolicy.RETAIN)
    function = a_function(stack)
    metrics = MonitorMetrics("Acme/Quotas", Duration.minutes(10))
    # WHEN the alarms are added
    alarms = self_monitoring_alarms(
        stack,
        parts=WatchedParts(
            metrics=metrics, monitor_function=function, run_dead_letter_queue=sqs.Queue(stack, "Q")
        ),
        topic=topic.topic,
        name_prefix="Bare",
    )
    template = Template.from_stack(stack)
    # THEN the alarms on the monitor's own metrics use the factory's objects
    assert alarms.scan_errors.metric is metrics.scan_errors
    assert alarms.heartbeat.metric is metrics.runs_finished
    assert alarms.alert_delivery_failures.metric is metrics.alert_delivery_failures
    assert alarms.alert_state_errors.metric is metrics.alert_state_errors
    assert alarms.slack_forwarder_errors is None
    template.resource_count_is("AWS::CloudWatch::Alarm", 6)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "Bare-heartbeat-missing",
            "Namespace": "Acme/Quotas",
            "MetricName": "KeysScanned",
            "Statistic": "SampleCount",
            "Period": 600,
            "TreatMissingData": "breaching",
        },
    )
    # AND every alarm tells the topic when it fires and when it clears
    topic_ref = Capture()
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"AlarmName": "Bare-scan-errors", "AlarmActions": [topic_ref]}
    )
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [topic_ref.as_object()]
        assert alarm["Properties"]["OKActions"] == [topic_ref.as_object()]


def test_insights_queries_order_by_the_selected_function() -> None:
    query = insights_query(
        "Ns", select="MIN(RemainingQuota)", dimensions=("UsagePlanId",), order="ASC", limit=3
    )
    assert query == (
        'SELECT MIN(RemainingQuota) FROM SCHEMA("Ns", UsagePlanId) '
        "GROUP BY UsagePlanId ORDER BY MIN() ASC LIMIT 3"
    )
    with pytest.raises(ValueError, match="order 'UP'"):
        insights_query("Ns", select="MIN(X)", dimensions=(), order="UP", limit=3)


def test_the_stack_spells_no_metric_name_of_its_own() -> None:
    """Metric names come from the runtime (quota_monitor.MetricName) through infra/metrics.py."""
    from quota_monitor.publish.metrics import MetricName  # noqa: PLC0415

    names = "|".join(re.escape(name.value) for name in MetricName)
    for path in sorted((REPO_ROOT / "infra").glob("*.py")):
        literals = re.findall(rf"[\"']({names})[\"']", path.read_text(encoding="utf-8"))
        assert literals == [], f"{path.name} spells metric names {literals}"
