"""The stack with two routes and Microsoft Teams: a topic per route under the stack's key, the routes'
email subscriptions, AWS Chatbot Slack and Teams channels (one configuration per chat channel),
the function's ALERT_ROUTES and exact IAM; and every route setting checked at synth, naming the
route and the field. One synth, cdk-nag on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.context import settings_from_context
from infra.settings import MAX_ROUTES, AlertRoute, SettingError
from tests.infra_support import Synthesized, cfn_lint, render, statements, synthesize, warnings

pytestmark = pytest.mark.synth

STACK = "QuotaRoutes"
TEAM = "1234abcd-12ab-34cd-56ef-1234567890ab"
TENANT = "9876fedc-12ab-34cd-56ef-1234567890ab"
TEAMS_CHANNEL = "19%3ab6ef35dc342d4cd2a6c0c5b3e3a4b5c6%40thread.tacv2"
ROUTES = {
    "gold": {
        "emails": ["gold-team@example.com", "partners@example.org"],
        "slackWorkspaceId": "T0123ABCD45",
        "slackChannelId": "C0GOLD0001",
        # The default topic's Teams channel, spelled as Teams shows it: one configuration for both.
        "teamsTeamId": TEAM,
        "teamsChannelId": "19:b6ef35dc342d4cd2a6c0c5b3e3a4b5c6@thread.tacv2",
        "teamsTenantId": TENANT,
    },
    "silver": {
        "emails": "silver-team@example.com",
        # The default topic's Slack channel: that configuration takes the silver topic too.
        "slackWorkspaceId": "T0123ABCD45",
        "slackChannelId": "C0OPS00001",
    },
}
CONTEXT = {
    "stackName": STACK,
    "alertEmails": "ops@example.com",
    "slackWorkspaceId": "T0123ABCD45",
    "slackChannelId": "C0OPS00001",
    "teamsTeamId": TEAM,
    "teamsChannelId": TEAMS_CHANNEL,
    "teamsTenantId": TENANT,
    "alertRoutes": json.dumps(ROUTES),
}


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("routes"), **CONTEXT)


@pytest.fixture(scope="module")
def topics(routed: Synthesized) -> dict[str, str]:
    """Route -> its topic's ``${LogicalId}`` (the default route: ``default``)."""
    return {
        "default": f"${{{routed.logical_id('Monitor/Alerts/Topic')}}}",
        "gold": f"${{{routed.logical_id('Monitor/Alerts/Routegold/Topic')}}}",
        "silver": f"${{{routed.logical_id('Monitor/Alerts/Routesilver/Topic')}}}",
    }


def test_exactly_these_resources_for_two_routes(routed: Synthesized) -> None:
    counts: dict[str, int] = {}
    for body in routed.resources.values():
        counts[body["Type"]] = counts.get(body["Type"], 0) + 1
    assert {kind: count for kind, count in counts.items() if "SNS" in kind or "Chatbot" in kind} == {
        "AWS::SNS::Topic": 3,
        "AWS::SNS::TopicPolicy": 3,
        "AWS::SNS::Subscription": 4,
        "AWS::Chatbot::SlackChannelConfiguration": 2,
        "AWS::Chatbot::MicrosoftTeamsChannelConfiguration": 1,
    }
    assert counts["AWS::KMS::Key"] == 1
    # The function, the schedule, two Slack channels' and one Teams channel's roles.
    assert counts["AWS::IAM::Role"] == 5


def test_each_route_has_a_topic_under_the_stacks_key_tls_only_and_no_alarm_may_publish(
    routed: Synthesized, topics: dict[str, str]
) -> None:
    key = f"${{{routed.logical_id('Monitor/Alerts/Key')}}}"
    for route in ("gold", "silver"):
        logical_id = topics[route][2:-1]
        assert render(routed.resources[logical_id]["Properties"]) == {
            "DisplayName": f"API Gateway quota alerts: {route}",
            "KmsMasterKeyId": key.replace("}", ".Arn}"),
        }
        (policy,) = [
            render(body["Properties"])
            for body in routed.of_type("AWS::SNS::TopicPolicy").values()
            if render(body["Properties"]["Topics"]) == [topics[route]]
        ]
        assert policy["PolicyDocument"]["Statement"] == [
            {
                "Sid": "AllowPublishThroughSSLOnly",
                "Action": "sns:Publish",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                "Effect": "Deny",
                "Principal": "*",
                "Resource": topics[route],
            }
        ]


def test_each_route_has_its_own_email_subscriptions(routed: Synthesized, topics: dict[str, str]) -> None:
    by_topic = {topic: route for route, topic in topics.items()}
    subscriptions = sorted(
        (by_topic[render(body["Properties"]["TopicArn"])], body["Properties"]["Endpoint"])
        for body in routed.of_type("AWS::SNS::Subscription").values()
        if body["Properties"]["Protocol"] == "email"
    )
    assert subscriptions == [
        ("default", "ops@example.com"),
        ("gold", "gold-team@example.com"),
        ("gold", "partners@example.org"),
        ("silver", "silver-team@example.com"),
    ]


def test_one_slack_configuration_per_channel_named_per_region(
    routed: Synthesized, topics: dict[str, str]
) -> None:
    configs = {
        render(body["Properties"]["SlackChannelId"]): render(body["Properties"])
        for body in routed.of_type("AWS::Chatbot::SlackChannelConfiguration").values()
    }
    guardrail = ["arn:${AWS::Partition}:iam::aws:policy/CloudWatchReadOnlyAccess"]
    ops, gold = configs["C0OPS00001"], configs["C0GOLD0001"]
    # The default topic's channel takes the silver route's topic; every name carries the region.
    assert ops["ConfigurationName"] == f"{STACK}-${{AWS::Region}}-quota-alerts"
    assert ops["SnsTopicArns"] == [topics["default"], topics["silver"]]
    assert gold["ConfigurationName"] == f"{STACK}-${{AWS::Region}}-slack-C0GOLD0001"
    assert gold["SnsTopicArns"] == [topics["gold"]]
    for config in (ops, gold):
        assert (config["SlackWorkspaceId"], config["LoggingLevel"]) == ("T0123ABCD45", "ERROR")
        assert config["GuardrailPolicies"] == guardrail


def test_one_teams_configuration_for_the_default_topic_and_the_route_that_share_its_channel(
    routed: Synthesized, topics: dict[str, str]
) -> None:
    _, config = routed.one("AWS::Chatbot::MicrosoftTeamsChannelConfiguration")
    properties = render(config["Properties"])
    role = properties.pop("IamRoleArn")
    configuration_name = properties.pop("ConfigurationName")
    assert properties == {
        "TeamId": TEAM,
        "TeamsTenantId": TENANT,
        "TeamsChannelId": TEAMS_CHANNEL,
        "SnsTopicArns": [topics["default"], topics["gold"]],
        "LoggingLevel": "ERROR",
        "GuardrailPolicies": ["arn:${AWS::Partition}:iam::aws:policy/CloudWatchReadOnlyAccess"],
    }
    assert configuration_name.startswith(f"{STACK}-${{AWS::Region}}-teams-")
    role_id = role.removeprefix("${").removesuffix(".Arn}")
    chatbot_role = render(routed.resources[role_id]["Properties"])
    assert chatbot_role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "chatbot.amazonaws.com"}}
    ]
    assert set(chatbot_role) == {"AssumeRolePolicyDocument", "Description"}  # no permissions at all
    attached = [
        body
        for body in routed.of_type("AWS::IAM::Policy").values()
        if f"${{{role_id}}}" in render(body)["Properties"]["Roles"]
    ]
    assert attached == []


def test_the_function_gets_alert_routes_and_publish_on_exactly_these_topics(
    routed: Synthesized, topics: dict[str, str]
) -> None:
    function = render(routed.resources[routed.logical_id("Monitor/Function")]["Properties"])
    variables = function["Environment"]["Variables"]
    assert json.loads(variables["ALERT_ROUTES"]) == {"gold": topics["gold"], "silver": topics["silver"]}
    assert variables["ALERT_TOPIC_ARN"] == topics["default"]
    granted = statements(routed.resources[routed.logical_id("Monitor/FunctionRole/DefaultPolicy")])
    by_sid: dict[str, Any] = {statement.get("Sid", ""): statement for statement in granted}
    assert by_sid["PublishAlerts"] == {
        "Sid": "PublishAlerts",
        "Action": ["sns:Publish"],
        "Effect": "Allow",
        "Resource": sorted(topics.values()),  # CDK sorts them
    }
    assert by_sid["EncryptAlertsForTheTopic"]["Resource"] == [
        f"${{{routed.logical_id('Monitor/Alerts/Key')}.Arn}}"
    ]
    sns_actions = [action for s in granted for action in s["Action"] if action.startswith("sns:")]
    assert sns_actions == ["sns:Publish"]


def test_the_alarms_keep_going_to_the_default_topic(routed: Synthesized, topics: dict[str, str]) -> None:
    alarms = routed.of_type("AWS::CloudWatch::Alarm").values()
    assert {json.dumps(render(body["Properties"]["AlarmActions"])) for body in alarms} == {
        json.dumps([topics["default"]])
    }


def test_the_route_topics_are_an_output(routed: Synthesized, topics: dict[str, str]) -> None:
    output = render(routed.raw["Outputs"]["AlertRouteTopicArns"]["Value"])
    assert json.loads(output) == {"gold": topics["gold"], "silver": topics["silver"]}


def test_cfn_lint_passes_with_routes(routed: Synthesized) -> None:
    assert cfn_lint(routed.raw) == []


def test_a_route_nobody_reads_is_a_synth_warning_naming_it(
    routed: Synthesized, tmp_path_factory: pytest.TempPathFactory
) -> None:
    unread = synthesize(
        tmp_path_factory.mktemp("unread-route"),
        stackName=STACK,
        alertEmails="ops@example.com",
        alertRoutes=json.dumps({"gold": {"emails": ["gold@example.com"]}, "bronze": {}}),
    )
    found = [text for text in warnings(unread) if "nothing reads" in text]
    assert len(found) == 1
    assert "alertRoutes.bronze" in found[0]
    assert "AlertRouteTopicArns" in found[0]
    assert not [text for text in warnings(routed) if "nothing reads" in text]


# -- settings ------------------------------------------------------------------------------------
ROUTE_ERRORS: list[tuple[Any, tuple[str, ...]]] = [
    ("gold", ("alertRoutes='gold'", "it is not JSON", '"gold": {"emails"')),
    ('["gold"]', ("alertRoutes='[\"gold\"]'", "use a JSON object of routes")),
    ({"gold team": {}}, ("alertRoutes='gold team'", "a route's name: use 1 to 40 letters")),
    ({"default": {}}, ("alertRoutes='default'", "'default' is the name of ALERT_TOPIC_ARN's route")),
    (
        {"gold": "gold@example.com"},
        ("alertRoutes.gold='gold@example.com'", "use an object with some of emails"),
    ),
    ({"gold": {"email": "a@example.com"}}, ("alertRoutes.gold.email=", "did you mean 'emails'?")),
    ({"gold": {"emails": "gold@example"}}, ("alertRoutes.gold.emails='gold@example'", "email addresses")),
    ({"gold": {"emails": ["a@example.com", "a@example.com"]}}, ("alertRoutes.gold.emails=", "once")),
    ({"gold": {"slackChannelId": "C0123ABCD45"}}, ("alertRoutes.gold.slackWorkspaceId=None", "set it too")),
    (
        {"gold": {"slackWorkspaceId": "T0123ABCD45", "slackChannelId": "#gold"}},
        ("alertRoutes.gold.slackChannelId='#gold'", "not the channel's name"),
    ),
    (
        {"gold": {"slackWorkspaceId": "gold", "slackChannelId": "C0123ABCD45"}},
        ("alertRoutes.gold.slackWorkspaceId='gold'", "'T'"),
    ),
    (
        {"gold": {"teamsTeamId": TEAM}},
        ("alertRoutes.gold.teamsChannelId=None", "set it too", "teamsTenantId"),
    ),
    (
        {"gold": {"teamsTeamId": "gold", "teamsChannelId": TEAMS_CHANNEL, "teamsTenantId": TENANT}},
        ("alertRoutes.gold.teamsTeamId='gold'", "a GUID"),
    ),
    (
        {"gold": {"teamsTeamId": TEAM, "teamsChannelId": "General", "teamsTenantId": TENANT}},
        ("alertRoutes.gold.teamsChannelId='General'", "the channel's link in Teams"),
    ),
    (
        {"gold": {"teamsTeamId": TEAM, "teamsChannelId": TEAMS_CHANNEL, "teamsTenantId": "x"}},
        ("alertRoutes.gold.teamsTenantId='x'", "tenant id"),
    ),
    ({f"r{n}": {} for n in range(MAX_ROUTES + 1)}, ("alertRoutes=", f"at most {MAX_ROUTES} routes", "4 KB")),
]


@pytest.mark.parametrize(("routes", "fragments"), ROUTE_ERRORS, ids=lambda value: str(value)[:50])
def test_every_route_setting_is_checked_naming_the_route_and_the_field(
    routes: Any, fragments: tuple[str, ...]
) -> None:
    with pytest.raises(SettingError) as raised:
        settings_from_context({"alertRoutes": routes})
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_routes_from_the_command_line_and_from_cdk_json_mean_the_same() -> None:
    from_cli = settings_from_context({"alertRoutes": json.dumps(ROUTES)}).monitor.alert_routes
    from_json = settings_from_context({"alertRoutes": ROUTES}).monitor.alert_routes
    assert from_cli == from_json
    gold, silver = from_cli
    assert (gold.name, gold.emails, silver.emails) == (
        "gold",
        ("gold-team@example.com", "partners@example.org"),
        ("silver-team@example.com",),
    )
    assert gold.teams_channel is not None
    assert gold.teams_channel.channel_id == TEAMS_CHANNEL  # decoded as given, encoded here
    assert settings_from_context({"alertRoutes": "{}"}).monitor.alert_routes == ()


def test_teams_for_the_default_topic_needs_all_three_ids() -> None:
    with pytest.raises(SettingError, match=r"teamsTenantId=None is not allowed: set it too"):
        settings_from_context({"teamsTeamId": TEAM, "teamsChannelId": TEAMS_CHANNEL})


def test_construct_users_get_the_route_checks_too() -> None:
    with pytest.raises(SettingError, match=r"alertRoutes.gold.emails='nobody' is not allowed"):
        AlertRoute(name="gold", emails=("nobody",))
