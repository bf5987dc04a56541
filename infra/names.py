"""Names the stack gives resources, and the rule for those that AWS keeps account-wide.

Most resources are named per region (alarms, tables, topics, log groups), or are left for
CloudFormation to name, which makes every name unique. A few names are global to the account,
whatever region the stack is in: deploying the same stack name to a second region then fails on a
name the first region already holds (docs/aws-behaviour.md#sns-kms-and-chat for Chatbot). Every
such name the stack sets explicitly carries the region (:func:`regional_name`), and
:data:`ACCOUNT_GLOBAL_NAMES` lists the properties that hold one, so that a test checks any new one.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

from aws_cdk import Stack, Token

if TYPE_CHECKING:
    from constructs import Construct

#: CloudFormation resource type -> the property that names it account-wide (or more widely).
ACCOUNT_GLOBAL_NAMES: Final = {
    "AWS::Chatbot::SlackChannelConfiguration": "ConfigurationName",
    "AWS::Chatbot::MicrosoftTeamsChannelConfiguration": "ConfigurationName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::S3::Bucket": "BucketName",
}
#: Room kept for a region's code when the region is known only at deploy time: the longest today
#: are 15 characters (us-isof-south-1).
MAX_REGION_LENGTH: Final = 20
_HASH_LENGTH: Final = 8


def regional_name(scope: Construct, suffix: str, *, max_length: int) -> str:
    """``<stack name>-<region>-<suffix>``, at most ``max_length`` characters.

    The region is the stack's, or ``AWS::Region`` for an environment-agnostic stack. A stack name
    too long to fit is cut, and ends in a hash of the whole name, so that two long names that start
    alike still differ.
    """
    stack = Stack.of(scope)
    region = stack.region
    region_length = MAX_REGION_LENGTH if Token.is_unresolved(region) else len(region)
    room = max_length - region_length - len(suffix) - 2
    if room < _HASH_LENGTH + 2:
        raise ValueError(
            f"no room for a stack name in a name of {max_length} characters ending in {suffix!r}"
        )
    name = stack.stack_name
    if len(name) > room:
        digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
        name = f"{name[: room - _HASH_LENGTH - 1]}-{digest}"
    return f"{name}-{region}-{suffix}"
