"""Publishing one alert message to SNS, with a body for each kind of subscriber.

``MessageStructure="json"``: SNS hands each protocol its own body (:mod:`quota_monitor.deliver.messages`).
Errors are raised to the caller, which releases the keys' claims so that the next run sends again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from quota_monitor.deliver.messages import AlertMessage


def publish(sns: SNSClient, topic_arn: str, message: AlertMessage) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Subject=message.subject,
        Message=message.message,
        MessageStructure="json",
    )
