"""Where alerts go: the default SNS topic and a topic per route, under one key of their own, and what
reads them (email, AWS Chatbot for Slack and Microsoft Teams, the Slack webhook forwarder).

The key is customer managed because CloudWatch alarms cannot publish to a topic encrypted with
``alias/aws/sns``: the key policy must let ``cloudwatch.amazonaws.com`` use the key
(docs/aws-behaviour.md#sns-kms-and-chat). The alarms publish to the default topic only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from aws_cdk import Annotations, Aws, Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.functions import FunctionSpec, dead_letter_queue, python_function
from infra.names import regional_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from infra.settings import AlertRoute, SlackChannel, SlackWebhook, TeamsChannel

SERVICE_NAME: Final = "apigw-quota-monitor"
FORWARDER_SERVICE_NAME: Final = "apigw-quota-monitor-slack"
SLACK_HANDLER: Final = "quota_monitor.deliver.slack.handler.handler"
#: What a created webhook secret holds until the user puts the URL in. Not a URL, so the forwarder
#: fails loudly (and its dead-letter alarm fires) rather than posting anywhere.
WEBHOOK_PLACEHOLDER: Final = "replace-me-with-the-slack-incoming-webhook-url"
#: AWS Chatbot configuration names: at most 128 of A-Z a-z 0-9 - _.
MAX_CHAT_CONFIGURATION_NAME: Final = 128


class AlertTopic(Construct):
    """The topic for quota alerts and the monitor's own alarms, encrypted with a rotating key; and a
    topic per route (:class:`RouteTopic`) under the same key.

    With ``ops_topic``, one more topic under the same key for the alarms about the Slack webhook
    forwarder itself: the forwarder reads the default topic, so a broken webhook would swallow the
    alarm that says so. The ops topic reaches people some other way: the same email addresses, and
    the default topic's AWS Chatbot channels when they are set up (:func:`chat_channels`); never the
    forwarder.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        emails: Sequence[str],
        removal_policy: RemovalPolicy,
        routes: Sequence[AlertRoute] = (),
        ops_topic: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the API Gateway quota monitor's alert topics",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # The statement AWS documents for alarms publishing to an encrypted topic. This key
        # encrypts nothing but the topic.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseTheKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = self._alarm_topic("Topic", "API Gateway quota alerts", emails)
        self.ops_topic = (
            self._alarm_topic("OpsTopic", "API Gateway quota monitor: Slack forwarder alarms", emails)
            if ops_topic
            else None
        )
        #: Route name -> its topic.
        self.routes: dict[str, sns.Topic] = {
            route.name: RouteTopic(self, f"Route{route.name}", route=route, key=self.key).topic
            for route in routes
        }

    def _alarm_topic(self, id_: str, display_name: str, emails: Sequence[str]) -> sns.Topic:
        """A topic under the key that this account's CloudWatch alarms may publish to."""
        topic = sns.Topic(self, id_, display_name=display_name, master_key=self.key, enforce_ssl=True)
        this_accounts_alarms = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
        # enforce_ssl gives the topic a policy of its own, which replaces SNS's default one: say
        # explicitly that this account's alarms may publish.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": this_accounts_alarms},
                },
            )
        )
        for email in emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    @property
    def topics(self) -> list[sns.Topic]:
        """The default topic, then each route's: the topics the monitor publishes to (not the ops topic)."""
        return [self.topic, *self.routes.values()]

    def grant_publish_to(self, grantee: iam.IGrantable) -> None:
        """``sns:Publish`` on the topics and the key calls SNS makes for the publisher: exactly these."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishAlerts",
                actions=["sns:Publish"],
                resources=[topic.topic_arn for topic in self.topics],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptAlertsForTheTopic",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
            )
        )


class RouteTopic(Construct):
    """A route's topic: under the stack's key, TLS only, with the route's email subscriptions. Only
    the monitor publishes to it: the alarms go to the default topic."""

    def __init__(self, scope: Construct, id_: str, *, route: AlertRoute, key: kms.IKey) -> None:
        super().__init__(scope, id_)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"API Gateway quota alerts: {route.name}",
            master_key=key,
            enforce_ssl=True,
        )
        for email in route.emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        if not (route.emails or route.slack_channel or route.teams_channel):
            Annotations.of(self).add_warning_v2(
                "quota-monitor:route-unread",
                f"{route.setting} has no emails, Slack or Teams channel: its keys' alerts go to a "
                "topic nothing reads (output AlertRouteTopicArns). Add one, or subscribe to the "
                "topic yourself.",
            )


#: The guardrail of every chat channel: what anyone could do from the channel, capped at reading
#: CloudWatch, instead of Chatbot's default of AdministratorAccess.
GUARDRAIL_POLICY: Final = "CloudWatchReadOnlyAccess"


def slack_channel_configuration(
    scope: Construct, id_: str, *, channel: SlackChannel, topics: Sequence[sns.ITopic], name: str
) -> chatbot.SlackChannelConfiguration:
    """AWS Chatbot posting the topics' messages (the ``default`` body, a Chatbot custom notification;
    alarms natively) to a Slack channel. Notifications only: its role has no permissions, and the
    guardrail (:data:`GUARDRAIL_POLICY`) caps what anyone could do from the channel."""
    return chatbot.SlackChannelConfiguration(
        scope,
        id_,
        slack_channel_configuration_name=name,
        slack_workspace_id=channel.workspace_id,
        slack_channel_id=channel.channel_id,
        notification_topics=list(topics),
        logging_level=chatbot.LoggingLevel.ERROR,
        guardrail_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(GUARDRAIL_POLICY)],
    )


def teams_channel_configuration(
    scope: Construct, id_: str, *, channel: TeamsChannel, topics: Sequence[sns.ITopic], name: str
) -> chatbot.CfnMicrosoftTeamsChannelConfiguration:
    """AWS Chatbot posting the topics' messages to a Microsoft Teams channel; the same custom
    notification format serves Teams and Slack. Notifications only, like the Slack channels: a role
    of its own with no permissions (CloudFormation requires one; CDK has no L2 for Teams to make it)."""
    role = iam.Role(
        scope,
        f"{id_}Role",
        assumed_by=iam.ServicePrincipal("chatbot.amazonaws.com"),
        description="AWS Chatbot, Microsoft Teams channel for quota alerts: notifications only",
    )
    return chatbot.CfnMicrosoftTeamsChannelConfiguration(
        scope,
        id_,
        configuration_name=name,
        iam_role_arn=role.role_arn,
        team_id=channel.team_id,
        teams_channel_id=channel.channel_id,
        teams_tenant_id=channel.tenant_id,
        sns_topic_arns=[topic.topic_arn for topic in topics],
        logging_level="ERROR",
        guardrail_policies=[
            iam.ManagedPolicy.from_aws_managed_policy_name(GUARDRAIL_POLICY).managed_policy_arn
        ],
    )


@dataclass
class ChatChannels:
    """Every AWS Chatbot channel of the stack, one configuration per chat channel.

    AWS Chatbot configures a Slack channel once per account, and a configuration takes several topics
    (docs/aws-behaviour.md#sns-kms-and-chat): so the routes (and the default topic) that name the same
    channel share one configuration holding all their topics. A configuration is named after its
    channel, not after a route, so that routes can come and go without replacing it; and, as its
    name is global to the account, after the region too (:func:`infra.names.regional_name`).
    """

    #: The default topic's Slack channel, as the stack has always named it (``SlackChannel``).
    default_slack: chatbot.SlackChannelConfiguration | None = None
    slack: dict[tuple[str, str], chatbot.SlackChannelConfiguration] = field(default_factory=dict)
    teams: dict[tuple[str, str, str], chatbot.CfnMicrosoftTeamsChannelConfiguration] = field(
        default_factory=dict
    )


def chat_channels(
    scope: Construct,
    *,
    alerts: AlertTopic,
    slack: SlackChannel | None,
    teams: TeamsChannel | None,
    routes: Sequence[AlertRoute],
) -> ChatChannels:
    """The chat channels of the default topic (``slack``, ``teams``) and of each route."""
    slack_topics: dict[tuple[str, str], tuple[SlackChannel, list[sns.ITopic]]] = {}
    teams_topics: dict[tuple[str, str, str], tuple[TeamsChannel, list[sns.ITopic]]] = {}
    owners: list[tuple[SlackChannel | None, TeamsChannel | None, sns.ITopic]] = [(slack, teams, alerts.topic)]
    if alerts.ops_topic is not None:  # the forwarder's alarms, to the default topic's channels
        owners.append((slack, teams, alerts.ops_topic))
    owners += [(route.slack_channel, route.teams_channel, alerts.routes[route.name]) for route in routes]
    for slack_channel, teams_channel, topic in owners:
        if slack_channel is not None:
            key = (slack_channel.workspace_id, slack_channel.channel_id)
            slack_topics.setdefault(key, (slack_channel, []))[1].append(topic)
        if teams_channel is not None:
            teams_key = (teams_channel.tenant_id, teams_channel.team_id, teams_channel.channel_id)
            teams_topics.setdefault(teams_key, (teams_channel, []))[1].append(topic)

    made = ChatChannels()
    for key, (channel, topics) in slack_topics.items():
        if channel == slack:
            made.default_slack = made.slack[key] = slack_channel_configuration(
                scope,
                "SlackChannel",
                channel=channel,
                topics=topics,
                name=regional_name(scope, "quota-alerts", max_length=MAX_CHAT_CONFIGURATION_NAME),
            )
        else:
            made.slack[key] = slack_channel_configuration(
                scope,
                f"SlackChannel{channel.workspace_id}{channel.channel_id}",
                channel=channel,
                topics=topics,
                name=regional_name(
                    scope, f"slack-{channel.channel_id}", max_length=MAX_CHAT_CONFIGURATION_NAME
                ),
            )
    for teams_key, (teams_channel, topics) in teams_topics.items():
        digest = hashlib.sha256("/".join(teams_key).encode()).hexdigest()[:12]
        made.teams[teams_key] = teams_channel_configuration(
            scope,
            f"TeamsChannel{digest}",
            channel=teams_channel,
            topics=topics,
            name=regional_name(scope, f"teams-{digest}", max_length=MAX_CHAT_CONFIGURATION_NAME),
        )
    return made


class SlackWebhookForwarder(Construct):
    """A function subscribed to the topic that posts each message to a Slack incoming webhook.

    The webhook URL is a secret (anyone holding it can post to the channel): it lives in Secrets
    Manager, and the function receives only the secret's ARN. Deliveries that fail after Lambda's
    retries land in the dead-letter queue, whose alarm tells someone.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        alert_topic: AlertTopic,
        webhook: SlackWebhook,
        layer: lambda_.ILayerVersion,
        log_level: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        tracing: bool,
    ) -> None:
        super().__init__(scope, id_)
        self.secret: secretsmanager.ISecret
        self.created_secret: secretsmanager.Secret | None = None
        if webhook.secret_arn is None:
            self.created_secret = secretsmanager.Secret(
                self,
                "WebhookUrl",
                description="Slack incoming-webhook URL for API Gateway quota alerts. "
                "Replace the placeholder with the URL (put-secret-value); see docs/deploy.md.",
                # A fixed, non-secret placeholder: the stack never holds the URL.
                secret_string_value=SecretValue.unsafe_plain_text(WEBHOOK_PLACEHOLDER),
                removal_policy=removal_policy,
            )
            self.secret = self.created_secret
        else:
            self.secret = secretsmanager.Secret.from_secret_complete_arn(
                self, "WebhookUrl", webhook.secret_arn
            )
        self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue")
        self.function = python_function(
            self,
            "Function",
            spec=FunctionSpec(
                handler=SLACK_HANDLER,
                description="Posts API Gateway quota alerts to a Slack incoming webhook",
                environment={
                    "SLACK_WEBHOOK_SECRET_ARN": self.secret.secret_arn,
                    "POWERTOOLS_SERVICE_NAME": FORWARDER_SERVICE_NAME,
                    "POWERTOOLS_LOG_LEVEL": log_level,
                    **({} if tracing else {"POWERTOOLS_TRACE_DISABLED": "true"}),
                },
                # Five attempts of up to 10 s each, with up to 15 s of backoff between them (more when
                # Slack asks with Retry-After): 65 s at worst. It starts no attempt the time left
                # cannot cover (quota_monitor.deliver.slack.handler), so a timeout never cuts a POST short.
                timeout=Duration.seconds(90),
                memory_mb=256,
                # Lambda's default, said on purpose: two more tries over a few minutes ride out a
                # Slack outage's start; an alert an hour late is better read in email or the queue.
                retry_attempts=2,
                max_event_age=Duration.hours(1),
                dead_letter_queue=self.dead_letter_queue,
                tracing=tracing,
            ),
            layer=layer,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadSlackWebhookUrl",
                actions=["secretsmanager:GetSecretValue"],
                resources=[self.secret.secret_arn],
            )
        )
        if webhook.secret_key_arn is not None:
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="DecryptSlackWebhookUrl", actions=["kms:Decrypt"], resources=[webhook.secret_key_arn]
                )
            )
        alert_topic.topic.add_subscription(subscriptions.LambdaSubscription(self.function))
