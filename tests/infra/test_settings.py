"""Deployment settings: what cdk.json / ``-c`` may say, and the error for each thing it may not.

Every error names the setting, the value given and what is allowed. Nothing here synthesizes, but
the settings use the CDK (tokens), so the module needs Node.js like the other infra tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from aws_cdk import Token

from infra.context import DEFAULT_STACK_NAME, settings_from_context
from infra.settings import (
    RUNTIME_SETTINGS,
    MonitorSettings,
    SettingError,
    SlackChannel,
    SlackWebhook,
    check_runtime_environment,
)
from tests.infra_support import REPO_ROOT, cdk_json_context

pytestmark = pytest.mark.synth

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack/webhook-AbC123"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_cdk_json_gives_the_defaults() -> None:
    settings = settings_from_context(cdk_json_context())
    assert settings.stack_name == DEFAULT_STACK_NAME
    assert settings.monitor == MonitorSettings()
    assert settings.monitor.timeout == 300


def test_cli_strings_and_json_types_mean_the_same() -> None:
    from_cli = settings_from_context(
        {
            "scheduleMinutes": "30",
            "reservedConcurrency": "False",
            "alertEmails": "a@example.com, b@example.org",
            "thresholds": "60,80",
            "crossCheckPlanKeys": "true",
        }
    )
    from_json = settings_from_context(
        {
            "scheduleMinutes": 30,
            "reservedConcurrency": False,
            "alertEmails": ["a@example.com", "b@example.org"],
            "thresholds": [60, 80],
            "crossCheckPlanKeys": True,
        }
    )
    assert from_cli == from_json
    assert from_cli.monitor.schedule_minutes == 30
    assert from_cli.monitor.reserved_concurrency is False
    assert from_cli.monitor.alert_emails == ("a@example.com", "b@example.org")
    assert from_cli.monitor.runtime == {"THRESHOLDS": "60,80", "CROSS_CHECK_PLAN_KEYS": "true"}


def test_an_empty_value_means_not_set() -> None:
    settings = settings_from_context(
        {**cdk_json_context(), "slackWebhookSecret": "", "timeoutSeconds": " ", "thresholds": ""}
    )
    assert settings.monitor.slack_webhook is None
    assert settings.monitor.timeout_seconds is None
    assert settings.monitor.runtime == {}


def test_default_timeout_leaves_a_minute_before_the_next_run() -> None:
    assert MonitorSettings(schedule_minutes=5).timeout == 240
    assert MonitorSettings(schedule_minutes=15).timeout == 300
    assert MonitorSettings(schedule_minutes=60).timeout == 300
    assert MonitorSettings(schedule_minutes=15, timeout_seconds=899).timeout == 899


def test_slack_settings() -> None:
    settings = settings_from_context(
        {
            "slackWorkspaceId": "T0123ABCD45",
            "slackChannelId": "C0123ABCD45",
            "slackWebhookSecret": SECRET_ARN,
            "slackWebhookSecretKeyArn": KEY_ARN,
        }
    )
    assert settings.monitor.slack_channel == SlackChannel(
        workspace_id="T0123ABCD45", channel_id="C0123ABCD45"
    )
    assert settings.monitor.slack_webhook == SlackWebhook(secret_arn=SECRET_ARN, secret_key_arn=KEY_ARN)
    created = settings_from_context({"slackWebhookSecret": "create"}).monitor.slack_webhook
    assert created == SlackWebhook(secret_arn=None)


# (context, fragments the message must hold: the setting, the value, what is allowed)
CONTEXT_ERRORS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"scheduleMinutes": "3"}, ("scheduleMinutes=3", "from 5 to 1440")),
    ({"scheduleMinutes": "2000"}, ("scheduleMinutes=2000", "from 5 to 1440")),
    ({"scheduleMinutes": "every hour"}, ("scheduleMinutes='every hour'", "whole number of minutes")),
    ({"scheduleMinutes": "7.5"}, ("scheduleMinutes='7.5'", "whole number of minutes")),
    ({"scheduleMinutes": True}, ("scheduleMinutes=True", "whole number")),
    (
        {"timeoutSeconds": "900"},
        ("timeoutSeconds=900", "from 30 to 899", "shorter than the schedule interval"),
    ),
    (
        {"scheduleMinutes": "5", "timeoutSeconds": "300"},
        ("timeoutSeconds=300", "from 30 to 299", "scheduleMinutes=5"),
    ),
    ({"timeoutSeconds": "10"}, ("timeoutSeconds=10", "from 30 to")),
    ({"memoryMb": "64"}, ("memoryMb=64", "from 128 to 10240")),
    ({"archive": "true", "archiveColdAfterDays": "0"}, ("archiveColdAfterDays=0", "from 1 to 3650")),
    (
        {"archive": "true", "archiveColdAfterDays": "90", "archiveRetentionDays": "150"},
        ("archiveRetentionDays=150", "from 180 to 36500", "archiveColdAfterDays=90"),
    ),
    ({"archiveBucketName": "My_Bucket"}, ("archiveBucketName='My_Bucket'", "S3 bucket name")),
    (
        {
            "quotaEndpoint": "true",
            "quotaEndpointApiIds": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        },
        ("quotaEndpointApiIds='https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com'", "REST API ids"),
    ),
    (
        {"quotaEndpoint": "true", "quotaEndpointApiIds": "a1b2c3d4e5,a1b2c3d4e5"},
        ("quotaEndpointApiIds='a1b2c3d4e5,a1b2c3d4e5'", "each API once"),
    ),
    ({"quotaEndpointApiIds": "a1b2c3d4e5"}, ("quotaEndpointApiIds='a1b2c3d4e5'", "quotaEndpoint=true too")),
    ({"quotaEndpoint": "true", "quotaEndpointApiIds": " , "}, ("quotaEndpointApiIds=' , '", "one or more")),
    ({"logRetentionDays": "10"}, ("logRetentionDays=10", "retention periods", "14, 30")),
    ({"logLevel": "verbose"}, ("logLevel='verbose'", "DEBUG, INFO, WARNING, ERROR, CRITICAL")),
    ({"removalPolicy": "snapshot"}, ("removalPolicy='snapshot'", "'retain'", "'destroy'")),
    ({"reservedConcurrency": "yes"}, ("reservedConcurrency='yes'", "true or false")),
    ({"tracing": "1"}, ("tracing='1'", "true or false")),
    ({"alertEmails": "ops@example"}, ("alertEmails='ops@example'", "email addresses")),
    (
        {"alertEmails": "ops@example.com ops2@example.com"},
        ("alertEmails='ops@example.com ops2@example.com'",),
    ),
    ({"alertEmails": "a@example.com,a@example.com"}, ("alertEmails='a@example.com,a@example.com'", "once")),
    ({"alertEmails": {"to": "a@example.com"}}, ("alertEmails={'to': 'a@example.com'}", "list of strings")),
    ({"slackWorkspaceId": "T0123ABCD45"}, ("slackChannelId=None", "set it too")),
    ({"slackChannelId": "C0123ABCD45"}, ("slackWorkspaceId=None", "set it too")),
    (
        {"slackWorkspaceId": "my-workspace", "slackChannelId": "C0123ABCD45"},
        ("slackWorkspaceId='my-workspace'", "'T'"),
    ),
    (
        {"slackWorkspaceId": "T0123ABCD45", "slackChannelId": "#alerts"},
        ("slackChannelId='#alerts'", "not the channel's name"),
    ),
    ({"slackWebhookSecret": "https://hooks.slack.com/services/T/B/X"}, ("slackWebhookSecret=", "'create'")),
    ({"slackWebhookSecret": SECRET_ARN[:-7]}, ("slackWebhookSecret=", "<6 characters>")),
    ({"slackWebhookSecretKeyArn": KEY_ARN}, ("slackWebhookSecretKeyArn=", "only with slackWebhookSecret")),
    (
        {"slackWebhookSecret": "create", "slackWebhookSecretKeyArn": KEY_ARN},
        ("slackWebhookSecretKeyArn=", "AWS managed key"),
    ),
    (
        {"slackWebhookSecret": SECRET_ARN, "slackWebhookSecretKeyArn": "alias/slack"},
        ("slackWebhookSecretKeyArn='alias/slack'", "KMS key ARN"),
    ),
    ({"stackName": "1st-monitor"}, ("stackName='1st-monitor'", "starting with a letter")),
    ({"stackName": "quota_monitor"}, ("stackName='quota_monitor'", "letters, digits and hyphens")),
    ({"emails": "ops@example.com"}, ("'emails' is not a setting", "known settings are")),
    ({"scheduleMinute": "5"}, ("'scheduleMinute' is not a setting", "did you mean 'scheduleMinutes'?")),
]


@pytest.mark.parametrize(("context", "fragments"), CONTEXT_ERRORS, ids=lambda value: str(value)[:60])
def test_infra_setting_errors(context: dict[str, Any], fragments: tuple[str, ...]) -> None:
    with pytest.raises(SettingError) as raised:
        settings_from_context(context)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message


# Runtime settings are refused by the runtime's own parser, named by their context key.
RUNTIME_ERRORS: list[tuple[dict[str, str], tuple[str, ...]]] = [
    ({"thresholds": "90,80"}, ("thresholds:", "THRESHOLDS='90,80'", "ascending")),
    ({"thresholds": "0,50"}, ("thresholds:", "THRESHOLDS='0,50'", "1")),
    ({"thresholds": "80,101"}, ("thresholds:", "THRESHOLDS='80,101'", "100")),
    ({"thresholds": "high"}, ("thresholds:", "THRESHOLDS='high'", "not a whole number")),
    (
        {"metricNamespace": "AWS/ApiGateway"},
        ("metricNamespace:", "METRIC_NAMESPACE='AWS/ApiGateway'", "AWS/"),
    ),
    ({"apiGatewayMaxRps": "50"}, ("apiGatewayMaxRps:", "APIGATEWAY_MAX_RPS='50'", "at most 10")),
    ({"weekStartDay": "FUNDAY"}, ("weekStartDay:", "WEEK_START_DAY='FUNDAY'", "MONDAY")),
    ({"digestMinAlerts": "1"}, ("digestMinAlerts:", "DIGEST_MIN_ALERTS='1'", "from 2")),
    (
        {"recoveryNotifications": "sometimes"},
        ("recoveryNotifications:", "RECOVERY_NOTIFICATIONS='sometimes'"),
    ),
    ({"usagePageSize": "1000"}, ("usagePageSize:", "USAGE_PAGE_SIZE='1000'", "500")),
    (
        {"crossCheckPlanKeys": "maybe"},
        ("crossCheckPlanKeys:", "CROSS_CHECK_PLAN_KEYS='maybe'", "true or false"),
    ),
    ({"keyMetrics": "top:zero"}, ("keyMetrics:", "KEY_METRICS='top:zero'")),
]


def test_every_variable_the_runtime_reads_can_be_set_from_the_stack() -> None:
    """The stack must not fall behind the runtime: each variable quota_monitor.config reads (but the
    two the stack owns) has a context key."""
    source = (REPO_ROOT / "lambdas/quota_monitor/config.py").read_text()
    read = set(re.findall(r'env(?:\.get\(|, )"([A-Z][A-Z0-9_]+)"', source))
    read |= set(re.findall(r'name: str = "([A-Z][A-Z0-9_]+)"', source))
    owned_by_the_stack = {
        "ALERT_TOPIC_ARN",
        "ALERT_TABLE_NAME",
        "ALERT_ROUTES",
        "EVENT_BUS_NAME",
        "SPOKE_ACCOUNTS_PARAMETER",  # from spokeAccounts (the accounts, in SSM parameters)
        "SPOKE_ROLE_NAME",  # from spokeRoleName
        "KEY_SNAPSHOTS",  # from quotaEndpoint
        "ARCHIVE_BUCKET",  # from archive or archiveBucketName
        "SPOKE_ROLE_ARNS",  # for deployments of your own: the stack lists the accounts in SSM
        "FAST_SCHEDULE_MINUTES",  # from fastScheduleMinutes
        "SCHEDULE_MINUTES",  # from scheduleMinutes
    }
    assert len(read) > 15
    assert read - owned_by_the_stack == set(RUNTIME_SETTINGS.values())


@pytest.mark.parametrize(("context", "fragments"), RUNTIME_ERRORS, ids=lambda value: str(value)[:60])
def test_runtime_setting_errors_come_from_the_runtime_parser(
    context: dict[str, str], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(SettingError) as raised:
        settings_from_context(context)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message


def test_monitor_settings_refuse_variables_the_stack_owns() -> None:
    with pytest.raises(SettingError, match=r"runtime='ALERT_TOPIC_ARN' is not allowed: .*sets the others"):
        MonitorSettings(runtime={"ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:x"})
    with pytest.raises(SettingError, match=r"runtime='THRESHOLD' is not allowed: use one of the monitor"):
        MonitorSettings(runtime={"THRESHOLD": "50"})


def test_construct_users_get_the_same_checks() -> None:
    with pytest.raises(SettingError, match=r"removalPolicy='keep' is not allowed"):
        MonitorSettings(removal_policy="keep")  # type: ignore[arg-type]
    with pytest.raises(SettingError, match=r"memoryMb=100000 is not allowed"):
        MonitorSettings(memory_mb=100_000)
    with pytest.raises(SettingError, match=r"slackChannelId='general' is not allowed"):
        SlackChannel(workspace_id="T0123ABCD45", channel_id="general")
    with pytest.raises(SettingError, match=r"thresholds: THRESHOLDS='50,50'"):
        MonitorSettings(runtime={"THRESHOLDS": "50,50"})


def test_runtime_check_replaces_deploy_time_tokens_only() -> None:
    topic = Token.as_string({"Ref": "Topic"})
    table = Token.as_string({"Ref": "Table"})
    parsed = check_runtime_environment(
        {
            "ALERT_TOPIC_ARN": topic,
            "ALERT_TABLE_NAME": table,
            "THRESHOLDS": "50,75",
            "METRIC_NAMESPACE": "Team/Q",
        }
    )
    assert parsed.namespace == "Team/Q"
    assert parsed.alerts is not None
    assert parsed.alerts.levels == (50, 75)
    # A literal value is checked as it is.
    with pytest.raises(SettingError, match="ALERT_TABLE_NAME"):
        check_runtime_environment({"ALERT_TOPIC_ARN": topic, "ALERT_TABLE_NAME": "x"})


def test_app_reports_a_configuration_error_and_exits_nonzero() -> None:
    """What a user sees from ``cdk synth -c scheduleMinutes=3``: the CLI passes context in
    CDK_CONTEXT_JSON and shows the app's stderr."""
    environment = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"scheduleMinutes": "3"})}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "app.py")],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1
    assert (
        "Configuration error: scheduleMinutes=3 is not allowed: use a whole number of minutes from 5 to 1440"
        in (done.stderr)
    )
