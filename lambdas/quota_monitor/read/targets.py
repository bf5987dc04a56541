"""Where a run reads: targets, each an account and a region, and the credentials to read each one.

Usage plans and API keys belong to one account and one region, and API Gateway's control-plane
budget (10 calls a second) is per account and region (docs/aws-behaviour.md#cross-account-and-cross-region):
so each target is scanned with its own rate limiter, at the same time as the others.

The monitor reads its own account with its own credentials, and another account through a role
there (``SPOKE_ROLE_ARNS``) that it assumes with STS. Region names are checked against botocore's
own endpoint data, which also says which partition (``aws``, ``aws-cn``, ``aws-us-gov``) a region
is in: one set of credentials works in one partition only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from collections.abc import Iterable

#: An IAM role ARN: partition, the 12-digit account, an optional path and the name.
ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
)
ACCOUNT_ID = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class Target:
    """One account and region to scan. ``role_arn`` is None for the monitor's own account."""

    account_id: str
    region: str
    role_arn: str | None = None

    def describe(self) -> str:
        return f"account {self.account_id}, {self.region}"


@cache
def region_partitions() -> dict[str, str]:
    """Every region API Gateway has an endpoint in, by botocore's endpoint data, with its partition."""
    session = boto3.Session()
    return {
        region: partition
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("apigateway", partition_name=partition)
    }


def partition_of(region: str) -> str | None:
    return region_partitions().get(region)


def role_account(role_arn: str) -> str:
    """The account a role ARN belongs to (the ARN must match :data:`ROLE_ARN`)."""
    match = ROLE_ARN.match(role_arn)
    if match is None:
        raise ValueError(f"{role_arn!r} is not an IAM role ARN")
    return match.group("account")


def targets(home_account: str, regions: Iterable[str], spoke_role_arns: Iterable[str]) -> list[Target]:
    """Every (account, region) pair: the monitor's own account first, then each spoke, region by region."""
    regions = list(regions)
    found = [Target(home_account, region) for region in regions]
    for role_arn in spoke_role_arns:
        found += [Target(role_account(role_arn), region, role_arn) for region in regions]
    return found
