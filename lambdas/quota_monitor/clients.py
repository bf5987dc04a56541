"""boto3 clients for the monitor, configured on purpose.

Endpoints and credentials come from boto3's standard configuration, so the same code talks to
AWS, to the sandbox (``AWS_ENDPOINT_URL_API_GATEWAY``) or to moto (``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config

from quota_monitor.errors import CallNotStarted
from quota_monitor.read.raw_counts import register_raw_checks
from quota_monitor.read.targets import TargetClients

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_cloudwatch import CloudWatchClient

USER_AGENT = "apigw-quota-monitor/0.1"
#: botocore's standard retry mode waits at most ``2 ** (n - 1)`` seconds before attempt ``n + 1``.
BACKOFF_BASE: Final = 2.0


@dataclass(frozen=True)
class CallLimits:
    """How long one call of a client can take at most: each attempt's connect and read timeouts, and
    the attempts botocore makes (standard retries, with their backoffs in between).

    A read timeout bounds each wait for the next bytes of an answer, not the whole answer: a server
    that trickles bytes can take longer (docs/aws-behaviour.md#scheduling-and-delivery).
    """

    connect: float = 5.0
    read: float = 30.0
    attempts: int = 5

    @property
    def longest(self) -> float:
        """Seconds one call can take, every attempt timing out and every backoff at its longest."""
        backoffs = sum(BACKOFF_BASE ** (n - 1) for n in range(1, self.attempts))
        return self.attempts * (self.connect + self.read) + backoffs

    @classmethod
    def within(cls, seconds: float) -> CallLimits:
        """Limits under which a call ends within ``seconds``: two attempts when they fit, else one."""
        connect = min(1.0, seconds / 4)
        if seconds >= 8:
            return cls(connect=connect, read=min(30.0, (seconds - 1) / 2 - connect), attempts=2)
        return cls(connect=connect, read=max(0.1, seconds - connect), attempts=1)

    def config(self, **more: Any) -> Config:
        return Config(
            retries={"mode": "standard", "total_max_attempts": self.attempts},
            connect_timeout=self.connect,
            read_timeout=self.read,
            user_agent_extra=USER_AGENT,
            **more,
        )


#: Outside Lambda (the CLI, the demo): botocore's usual patience.
DEFAULT_LIMITS: Final = CallLimits()


def refuse_late_calls(
    made: Any, limits: CallLimits, ends_at: Callable[[], float | None], clock: Callable[[], float] = time.time
) -> None:
    """Make ``made`` (a boto3 client) refuse to start a call that could outlast the run: when less than
    ``limits.longest`` is left before ``ends_at()`` (epoch seconds; None: no end), the call raises
    :class:`CallNotStarted`, which callers take as any failed call. So a run never ends by its timeout
    with a call in flight, such as an SNS publish whose confirmation would then be lost."""

    def check(model: Any, **_: Any) -> None:
        end = ends_at()
        if end is not None and clock() + limits.longest > end:
            raise CallNotStarted(operation=model.name, longest=limits.longest, left=end - clock())

    made.meta.events.register("before-call", check)


def apigateway_client(
    session: boto3.Session | None = None,
    *,
    max_workers: int = 4,
    region: str | None = None,
    limits: CallLimits = DEFAULT_LIMITS,
) -> APIGatewayClient:
    """botocore's retries are off: :mod:`quota_monitor.read.calls` owns rate limiting and retries
    (``limits.attempts`` is not used)."""
    config = replace(limits, attempts=1).config(max_pool_connections=max(10, max_workers * 2))
    apigateway = (session or boto3.Session()).client("apigateway", config=config, region_name=region)
    register_raw_checks(apigateway)
    return apigateway


def cloudwatch_client(
    session: boto3.Session | None = None, *, region: str | None = None, limits: CallLimits = DEFAULT_LIMITS
) -> CloudWatchClient:
    return (session or boto3.Session()).client("cloudwatch", config=limits.config(), region_name=region)


def client(service: str, session: boto3.Session | None = None, *, limits: CallLimits = DEFAULT_LIMITS) -> Any:
    """Any other client (SNS, DynamoDB, EventBridge, STS, Secrets Manager) with standard retries."""
    make: Any = (session or boto3.Session()).client
    return make(service, config=limits.config())


def target_clients(
    session: boto3.Session,
    region: str,
    *,
    max_workers: int = 4,
    read_limits: CallLimits = DEFAULT_LIMITS,
    write_limits: CallLimits = DEFAULT_LIMITS,
) -> TargetClients:
    """A target's API Gateway (``read_limits``) and CloudWatch (``write_limits``) clients
    (:class:`quota_monitor.read.targets.TargetAccess`)."""
    return TargetClients(
        apigateway=apigateway_client(session, max_workers=max_workers, region=region, limits=read_limits),
        cloudwatch=cloudwatch_client(session, region=region, limits=write_limits),
    )
