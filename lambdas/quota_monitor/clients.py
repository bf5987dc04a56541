"""boto3 clients for the monitor, configured on purpose.

Endpoints and credentials come from boto3's standard configuration, so the same code talks to
AWS, to the sandbox (``AWS_ENDPOINT_URL_API_GATEWAY``) or to moto (``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from quota_monitor.read.raw_counts import register_raw_checks
from quota_monitor.read.targets import TargetClients

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_cloudwatch import CloudWatchClient

USER_AGENT = "apigw-quota-monitor/0.1"


def apigateway_client(
    session: boto3.Session | None = None, *, max_workers: int = 4, region: str | None = None
) -> APIGatewayClient:
    """botocore's retries are off: :mod:`quota_monitor.read.calls` owns rate limiting and retries."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=max(10, max_workers * 2),
        user_agent_extra=USER_AGENT,
    )
    apigateway = (session or boto3.Session()).client("apigateway", config=config, region_name=region)
    register_raw_checks(apigateway)
    return apigateway


def cloudwatch_client(session: boto3.Session | None = None, *, region: str | None = None) -> CloudWatchClient:
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra=USER_AGENT,
    )
    return (session or boto3.Session()).client("cloudwatch", config=config, region_name=region)


def client(service: str, session: boto3.Session | None = None) -> Any:
    """Any other client (SNS, DynamoDB, EventBridge, Secrets Manager) with standard retries."""
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    make: Any = (session or boto3.Session()).client
    return make(service, config=config)


def target_clients(session: boto3.Session, region: str, *, max_workers: int = 4) -> TargetClients:
    """A target's API Gateway and CloudWatch clients (:class:`quota_monitor.read.targets.TargetAccess`)."""
    return TargetClients(
        apigateway=apigateway_client(session, max_workers=max_workers, region=region),
        cloudwatch=cloudwatch_client(session, region=region),
    )
