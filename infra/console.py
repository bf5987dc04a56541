"""Console links in the stack's outputs, for the partition the stack is deployed to.

The partition is known only at deploy time (``AWS::Partition``), so the link is chosen by
CloudFormation conditions: one per partition with a console address the runtime knows
(:data:`quota_monitor.CONSOLE_HOSTS`: commercial, China, AWS GovCloud (US)), and the output exists
only in those partitions. Elsewhere (the isolated and sovereign partitions) the stack has no
``DashboardUrl`` rather than one into the wrong console (docs/aws-behaviour.md#partitions-and-console-links).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from aws_cdk import Aws, CfnCondition, CfnOutput, Fn

from quota_monitor import CONSOLE_HOSTS

if TYPE_CHECKING:
    from aws_cdk import ICfnConditionExpression, Stack


def _condition_id(partition: str) -> str:
    return "IsPartition" + "".join(part.capitalize() for part in partition.split("-"))


def console_output(stack: Stack, id_: str, *, path: str, description: str) -> CfnOutput:
    """An output holding ``<console of the stack's partition>/<path>``; ``path`` may hold tokens and
    ``{region}``, which becomes the stack's region."""
    conditions = {
        partition: CfnCondition(
            stack, _condition_id(partition), expression=Fn.condition_equals(Aws.PARTITION, partition)
        )
        for partition in CONSOLE_HOSTS
    }
    # A CfnCondition is a condition expression (jsii declares it; mypy cannot see it).
    each = [cast("ICfnConditionExpression", condition) for condition in conditions.values()]
    has_console = CfnCondition(stack, "HasKnownConsole", expression=Fn.condition_or(*each))
    partitions = list(CONSOLE_HOSTS)
    # Nested Fn::If over the known partitions; the output's condition rules out the rest.
    value: str = _url(partitions[-1], path)
    for partition in reversed(partitions[:-1]):
        value = Fn.condition_if(conditions[partition].logical_id, _url(partition, path), value).to_string()
    output = CfnOutput(stack, id_, value=value, description=description)
    output.condition = has_console
    return output


def _url(partition: str, path: str) -> str:
    # str.replace, not format: the path may hold tokens, whose text has braces of its own.
    return (
        CONSOLE_HOSTS[partition].replace("{region}", Aws.REGION) + "/" + path.replace("{region}", Aws.REGION)
    )
