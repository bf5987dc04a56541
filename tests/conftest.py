"""Shared fixtures: the local cloud (API Gateway sandbox + moto) on loopback, and an environment
that cannot reach AWS.

Every test runs with placeholder credentials, no AWS config files, and ``AWS_ENDPOINT_URL`` on a
closed loopback port, so a client that is not pointed at the local cloud fails at once instead of
reaching a real endpoint; pytest-socket (``--allow-hosts`` in pyproject.toml) refuses any
connection that is not to loopback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.data_plane import DataPlane
from apigw_sandbox.local import AlertResources, LocalCloud
from quota_monitor.clients import apigateway_client
from quota_monitor.read.calls import ApiGatewayCalls, RetryPolicy

CLOSED_PORT = "http://127.0.0.1:9"
_SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_ENDPOINT_URL": CLOSED_PORT,
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
_UNSET = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)
    for name, value in _SAFE_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def local_cloud() -> Iterator[LocalCloud]:
    """One sandbox and one moto server per test process; :func:`cloud` resets them per test."""
    with LocalCloud() as cloud:
        yield cloud


@pytest.fixture
def cloud(local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> LocalCloud:
    """The local cloud with a fresh, empty sandbox account and empty moto, and the environment
    (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_API_GATEWAY``) pointing boto3 at both."""
    local_cloud.sandbox.use_account(SandboxAccount())
    local_cloud.reset_moto()
    for name, value in local_cloud.env().items():
        monkeypatch.setenv(name, value)
    return local_cloud


@pytest.fixture
def account(cloud: LocalCloud) -> SandboxAccount:
    return cloud.account


@pytest.fixture
def now(account: SandboxAccount) -> datetime:
    return account.now().astimezone(UTC)


@pytest.fixture
def api(cloud: LocalCloud) -> ApiGatewayCalls:
    """The monitor's guarded API Gateway client against the sandbox, with fast retries and no rate limit."""
    return ApiGatewayCalls(
        apigateway_client(), policy=RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05)
    )


@pytest.fixture
def apigateway(cloud: LocalCloud) -> Any:
    """A plain boto3 API Gateway client against the sandbox (botocore's default settings)."""
    return cloud.client("apigateway")


@pytest.fixture
def data_plane(cloud: LocalCloud) -> DataPlane:
    """The local cloud's REST API stages, with no methods deployed, metered by the test's sandbox account."""
    cloud.data_plane.reset()
    return cloud.data_plane


@pytest.fixture
def alert_infra(cloud: LocalCloud) -> AlertResources:
    """The alert topic, state table and an SQS inbox subscribed to the topic, in moto."""
    return cloud.create_alert_resources()


def health_metric(cloud: LocalCloud, name: str, statistic: str = "Sum") -> list[float]:
    """The monitor's health metric ``name`` as CloudWatch (moto) holds it for the last few minutes."""
    now = datetime.now(UTC)
    stats = cloud.client("cloudwatch").get_metric_statistics(
        Namespace="ApiGatewayQuota",
        MetricName=name,
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=2),
        Period=60,
        Statistics=[statistic],
    )
    return [point[statistic] for point in stats["Datapoints"]]
