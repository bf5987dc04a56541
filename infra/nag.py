"""cdk-nag acknowledgements (AwsSolutions pack), each on the construct it is about, with its reason.

cdk-nag 3 reads CDK's own acknowledgements (``Validations.of(construct).acknowledge``); a finding
with no acknowledgement fails the synth. Findings are acknowledged one by one (``IAM5[...]``
names the exact wildcard), so a new wildcard is a new failure, not silently covered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations

from infra.permissions import apigateway_read_paths

if TYPE_CHECKING:
    from constructs import IConstruct

    from infra.monitor import UsageQuotaMonitor

#: How cdk-nag spells the function's ARN in a finding: ``<LogicalId.Arn>``.
_GET_ATT = "<{}.Arn>"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions-{rule}", reason=reason))


def acknowledge_monitor(monitor: UsageQuotaMonitor) -> None:
    role = monitor.function.role
    assert role is not None  # python_function always gives the function a role
    acknowledge(
        role,
        "IAM5[Resource::*]",
        "cloudwatch:PutMetricData has no resource-level permissions; the statement is limited to the "
        "monitor's namespace by a cloudwatch:namespace condition."
        + (
            " X-Ray's PutTraceSegments and PutTelemetryRecords have none either."
            if monitor.settings.tracing
            else ""
        ),
    )
    for region in monitor.settings.regions or ("<AWS::Region>",):
        for path in apigateway_read_paths(cross_check_plan_keys=True):
            if "*" in path:
                acknowledge(
                    role,
                    f"IAM5[Resource::arn:<AWS::Partition>:apigateway:{region}::{path}]",
                    f"apigateway:GET on {path} for every usage plan: the monitor reads the usage of all "
                    "the account's plans, which it learns at run time. Read-only (GET), and only this path.",
                )
    if monitor.settings.spoke_accounts:
        held = (
            "the organization's (aws:ResourceOrgID)"
            if monitor.settings.spoke_organization_id
            else "those of spokeAccounts (aws:ResourceAccount)"
        )
        acknowledge(
            role,
            f"IAM5[Resource::arn:<AWS::Partition>:iam::*:role/{monitor.settings.spoke_role_name}]",
            "sts:AssumeRole on the spoke role's name in any account, the accounts held by a condition to "
            f"{held}: an ARN per account would pass IAM's policy size near 150 accounts. The spoke "
            "roles trust this role alone (docs/deploy.md).",
        )
    for scheduled in (monitor.function, monitor.fast_function):
        if scheduled is None:
            continue
        function = scheduled.node.default_child
        assert isinstance(function, CfnElement)  # an L2 Function's default child is its CfnFunction
        function_arn = _GET_ATT.format(Stack.of(monitor).get_logical_id(function))
        acknowledge(
            monitor.schedule_role,
            f"IAM5[Resource::{function_arn}:*]",
            "CDK's grantInvoke also allows the function's versions and aliases (<arn>:*); the role can "
            "invoke the monitor's functions (the full scan, the fast path) and nothing else.",
        )
    forwarder = monitor.slack_forwarder
    if forwarder is not None:
        if monitor.settings.tracing:
            forwarder_role = forwarder.function.role
            assert forwarder_role is not None
            acknowledge(
                forwarder_role,
                "IAM5[Resource::*]",
                "X-Ray's PutTraceSegments and PutTelemetryRecords (tracing=true) have no resource-level "
                "permissions.",
            )
        if forwarder.created_secret is not None:
            acknowledge(
                forwarder.created_secret,
                "SMG4",
                "A Slack incoming-webhook URL cannot be rotated by a Lambda function: Slack issues it. "
                "Replace it in the secret when it is regenerated in Slack (docs/deploy.md).",
            )
