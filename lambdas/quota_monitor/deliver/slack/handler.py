"""Lambda entry point of the Slack webhook forwarder: wiring only. The work is in
:mod:`quota_monitor.deliver.slack.blocks` (rendering) and
:mod:`quota_monitor.deliver.slack.webhook` (posting).

Subscribed to the alert topic; SNS invokes it asynchronously. The webhook URL is read from the
Secrets Manager secret named by ``SLACK_WEBHOOK_SECRET_ARN`` through Powertools Parameters (cached
for :data:`SECRET_MAX_AGE` seconds), never from an environment variable, and never logged. A
message that finally fails raises, so that Lambda's retries and the function's dead-letter queue
see it.

Settings: ``SLACK_MAX_ATTEMPTS`` and ``SLACK_RETRY_BASE_SECONDS`` (:data:`MAX_ATTEMPTS`,
:data:`RETRY_BASE_SECONDS`; the backoff doubles each attempt, never shorter than Slack's
``Retry-After``). No attempt is started that the invocation's remaining time cannot cover
(:func:`~quota_monitor.deliver.slack.webhook.post`): the forwarder then raises, and Lambda retries
the event, rather than being cut off in the middle of a POST that Slack may already have taken.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters

from quota_monitor.config import read_float, read_int
from quota_monitor.deliver.slack.blocks import message_for
from quota_monitor.deliver.slack.webhook import check_webhook_url, post
from quota_monitor.errors import SlackDeliveryError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "apigw-quota-monitor-slack"
SECRET_VARIABLE = "SLACK_WEBHOOK_SECRET_ARN"  # noqa: S105 - the name of a variable holding an ARN
SECRET_MAX_AGE = 300
#: Attempts a message (429 and 5xx are retried with backoff) and the first backoff, in seconds.
MAX_ATTEMPTS = read_int(os.environ, "SLACK_MAX_ATTEMPTS", 5, 1, 10)
RETRY_BASE_SECONDS = read_float(os.environ, "SLACK_RETRY_BASE_SECONDS", 1.0, 0.0, 30.0)
logger = Logger(service=SERVICE)
#: One provider per cold start (Powertools' module-wide default would outlive its client's settings).
secrets = parameters.SecretsProvider()


def webhook_url() -> str:
    secret = os.environ.get(SECRET_VARIABLE, "").strip()
    if not secret:
        raise SlackDeliveryError(
            f"{SECRET_VARIABLE} is not set: use the ARN of the secret holding the webhook URL"
        )
    value = secrets.get(secret, max_age=SECRET_MAX_AGE)
    if not isinstance(value, str):
        raise SlackDeliveryError(f"secret {secret} does not hold a string")
    return check_webhook_url(value)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    url = webhook_url()
    posted = 0
    for record in event.get("Records", []):
        sns = record.get("Sns", {})
        message = message_for(sns.get("Subject"), str(sns.get("Message", "")))
        attempts = post(
            url,
            message,
            attempts=MAX_ATTEMPTS,
            base_delay=RETRY_BASE_SECONDS,
            seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )
        posted += 1
        logger.info(
            "posted to Slack",
            extra={"messageId": sns.get("MessageId"), "attempts": attempts, "blocks": len(message["blocks"])},
        )
    return {"posted": posted}
