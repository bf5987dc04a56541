"""Where alerts go: one SNS topic under a key of its own, and what reads it (email, AWS Chatbot,
the Slack webhook forwarder).

The key is customer managed because CloudWatch alarms cannot publish to a topic encrypted with
``alias/aws/sns``: the key policy must let ``cloudwatch.amazonaws.com`` use the key
(docs/aws-behaviour.md#sns-kms-and-chat).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aws_cdk import Aws, Duration, RemovalPolicy, SecretValue
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

if TYPE_CHECKING:
    from collections.abc import Sequence

    from infra.settings import SlackChannel, SlackWebhook

SERVICE_NAME: Final = "apigw-quota-monitor"
FORWARDER_SERVICE_NAME: Final = "apigw-quota-monitor-slack"
SLACK_HANDLER: Final = "quota_monitor.deliver.slack.handler.handler"
#: What a created webhook secret holds until the user puts the URL in. Not a URL, so the forwarder
#: fails loudly (and its dead-letter alarm fires) rather than posting anywhere.
WEBHOOK_PLACEHOLDER: Final = "replace-me-with-the-slack-incoming-webhook-url"


class AlertTopic(Construct):
    """The topic for quota alerts and the monitor's own alarms, encrypted with a rotating key.

    With ``ops_topic``, a second topic under the same key for the alarms about the Slack webhook
    forwarder itself: the forwarder reads the first topic, so a broken webhook would swallow the
    alarm that says so. The second topic reaches people some other way: the same email addresses,
    and AWS Chatbot when it is set up (:func:`slack_channel_configuration`); never the forwarder.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        emails: Sequence[str],
        removal_policy: RemovalPolicy,
        ops_topic: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the API Gateway quota monitor's alert topic",
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
        self.topic = self._topic("Topic", "API Gateway quota alerts", emails)
        self.ops_topic = (
            self._topic("OpsTopic", "API Gateway quota monitor: Slack forwarder alarms", emails)
            if ops_topic
            else None
        )

    def _topic(self, id_: str, display_name: str, emails: Sequence[str]) -> sns.Topic:
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

    def grant_publish_to(self, grantee: iam.IGrantable) -> None:
        """``sns:Publish`` on the topic and the key calls SNS makes for the publisher: exactly these."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishAlerts", actions=["sns:Publish"], resources=[self.topic.topic_arn]
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptAlertsForTheTopic",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
            )
        )


def slack_channel_configuration(
    scope: Construct, id_: str, *, channel: SlackChannel, topics: Sequence[sns.ITopic], name: str
) -> chatbot.SlackChannelConfiguration:
    """AWS Chatbot posting the topics' messages (the ``default`` body, a Chatbot custom
    notification; alarms natively) to a Slack channel. Notifications only: the guardrail caps what
    anyone could do from the channel at reading CloudWatch, instead of Chatbot's default of
    AdministratorAccess."""
    return chatbot.SlackChannelConfiguration(
        scope,
        id_,
        slack_channel_configuration_name=name,
        slack_workspace_id=channel.workspace_id,
        slack_channel_id=channel.channel_id,
        notification_topics=list(topics),
        logging_level=chatbot.LoggingLevel.ERROR,
        guardrail_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchReadOnlyAccess")],
    )


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
