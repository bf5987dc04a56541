"""Links into the AWS Management Console, in the partition of the region they point at.

Each partition has a console of its own (docs/aws-behaviour.md#partitions-and-console-links): the
commercial one at ``https://<region>.console.aws.amazon.com``, China's at
``https://console.amazonaws.cn`` and AWS GovCloud (US)'s at ``https://console.amazonaws-us-gov.com``,
each taking the region as ``?region=``. For a partition without a console address known here (the
isolated and sovereign partitions), or a region botocore does not know, no link is built: a
message then goes without one rather than with a link into the wrong console.

A region's partition comes from botocore's own partition data (``Session.get_partition_for_region``),
so that a new region of a known partition needs no change here.

The stack builds its ``DashboardUrl`` output from :data:`CONSOLE_HOSTS` too (``infra/console.py``).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError

if TYPE_CHECKING:
    import boto3

#: Partition -> the console's address; ``{region}`` is the region's code.
CONSOLE_HOSTS: Final = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-cn": "https://console.amazonaws.cn",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
}


@cache
def _session() -> boto3.session.Session:
    # Imported when the first link is built, not with the module: the handler's cold import
    # stays without boto3 until it makes its clients (docs/benchmarks.md, "Cold import").
    import boto3  # noqa: PLC0415

    return boto3.session.Session()


@cache
def partition_of(region: str) -> str | None:
    """``"cn-north-1"`` -> ``"aws-cn"``; None for a region botocore does not know."""
    try:
        partition: str = _session().get_partition_for_region(region)
    except (BotoCoreError, ValueError):
        return None
    return partition


def console_home(region: str, partition: str | None = None) -> str | None:
    """The console's address for ``region`` (in ``partition``, or the region's own), or None."""
    host = CONSOLE_HOSTS.get(partition or partition_of(region) or "")
    return None if host is None else host.format(region=region)


@cache
def console_url(region: str, usage_plan_id: str, partition: str | None = None) -> str | None:
    """The usage plan in the API Gateway console, or None where no console link can be built.

    The list page (``/apigateway/main/usage-plans?region=``) is the documented form; the path with the
    plan id is the console's deep link as of writing (not in AWS's reference: it may change).
    """
    home = console_home(region, partition)
    if home is None:
        return None
    return f"{home}/apigateway/main/usage-plans/{usage_plan_id}?region={region}"
