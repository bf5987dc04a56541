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
import threading
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Final

import boto3
import botocore.session

from quota_monitor.models import Target

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient
    from mypy_boto3_sts.type_defs import CredentialsTypeDef

#: An IAM role ARN: partition, the 12-digit account, an optional path and the name.
ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
)
ACCOUNT_ID = re.compile(r"^\d{12}$")


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


def targets(
    home_account: str | None, home_region: str, regions: Iterable[str], spoke_role_arns: Iterable[str]
) -> list[Target]:
    """Every (account, region) pair: the monitor's own account first, then each spoke, region by region.

    The home target is the monitor's own account in its own region (:class:`Target`'s ``home``).
    """
    regions = list(regions)
    found = [Target(home_account, region, home=region == home_region) for region in regions]
    for role_arn in spoke_role_arns:
        found += [Target(role_account(role_arn), region, role_arn, home=False) for region in regions]
    return found


def spoke_accounts(ssm: SSMClient, path: str) -> tuple[str, ...]:
    """The spoke account ids listed under the SSM parameter path ``path``: each parameter a list of
    12-digit ids separated by commas (the stack writes as many as a standard parameter's 4 KB hold),
    in the parameters' name order, each once. Raises what SSM raises, and ValueError naming the
    parameter whose value is not such a list: an account the monitor cannot read correctly is an
    error, never left out."""
    parameters = [
        parameter
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=False)
        for parameter in page.get("Parameters", [])
    ]
    accounts: dict[str, None] = {}
    for parameter in sorted(parameters, key=lambda p: p.get("Name", "")):
        for account in parameter.get("Value", "").split(","):
            if not ACCOUNT_ID.match(account.strip()):
                raise ValueError(
                    f"SSM parameter {parameter.get('Name')}: {account!r} is not a 12-digit account id"
                )
            accounts[account.strip()] = None
    return tuple(accounts)


def spoke_role_arn(account: str, role_name: str, partition: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


#: Targets read at the same time at most: each holds threads and connections (Lambda allows 1,024 of
#: each), and past this many the run's CPU, not the targets' API waits, sets its pace.
MAX_TARGETS_AT_ONCE: Final = 64
#: Targets whose metrics are published at the same time: each waits on its own CloudWatch (a quarter
#: of a second or so a target), which one after another would take most of a large fleet's run.
PUBLISH_AT_ONCE: Final = 16
#: How the monitor names itself in the role sessions it opens (CloudTrail shows it).
ROLE_SESSION_NAME = "apigw-quota-monitor"


@dataclass(frozen=True)
class TargetClients:
    """What a run uses in one target: API Gateway to read, CloudWatch for the target's metrics."""

    apigateway: APIGatewayClient
    cloudwatch: CloudWatchClient


class TargetAccess:
    """How a run reaches one target: its clients, made when the target's turn comes, so that a role
    that cannot be assumed fails that target alone. One AssumeRole a spoke account, whatever the
    number of its regions (the credentials are shared through ``assumed``)."""

    def __init__(
        self,
        target: Target,
        *,
        base: boto3.Session,
        make: Callable[[boto3.Session, str], TargetClients],
        assumed: AssumedRoles | None = None,
    ) -> None:
        self.target = target
        self._base = base
        self._make = make
        self._assumed = assumed

    def connect(self) -> TargetClients:
        target = self.target
        session = self._base
        if target.role_arn is not None:
            if self._assumed is None:
                raise ValueError(
                    f"{target.describe()}: a role to assume, and no STS client to assume it with"
                )
            session = self._assumed.session(target.role_arn, base=session)
        return self._make(session, target.region)


class AssumedRoles:
    """The spoke roles, each assumed once a run, and a session each (shared by the role's regions).

    Every session shares the base session's botocore data loader: a session of its own loads
    botocore's service models again, about 10 MB and 130 ms of CPU a session, which at 200 targets
    was most of a run's memory and CPU (docs/benchmarks.md, "200 targets in one run")."""

    def __init__(self, sts: STSClient) -> None:
        self._sts = sts
        self._lock = threading.Lock()
        self._credentials: dict[str, CredentialsTypeDef] = {}
        self._sessions: dict[str, boto3.Session] = {}

    def session(self, role_arn: str, *, base: boto3.Session) -> boto3.Session:
        """A session with the role's credentials, made once and sharing ``base``'s service models."""
        credentials = self.credentials(role_arn)
        with self._lock:
            known = self._sessions.get(role_arn)
            if known is None:
                core = botocore.session.Session()
                # The loader caches every model it reads; botocore has no public way to share it.
                core.register_component("data_loader", base._session.get_component("data_loader"))
                known = self._sessions[role_arn] = boto3.Session(
                    aws_access_key_id=credentials["AccessKeyId"],
                    aws_secret_access_key=credentials["SecretAccessKey"],
                    aws_session_token=credentials["SessionToken"],
                    botocore_session=core,
                )
            return known

    def credentials(self, role_arn: str) -> CredentialsTypeDef:
        with self._lock:
            known = self._credentials.get(role_arn)
            if known is None:
                response = self._sts.assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION_NAME)
                known = self._credentials[role_arn] = response["Credentials"]
            return known
