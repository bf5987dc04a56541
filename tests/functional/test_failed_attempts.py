"""The retry policy tells an observer about each attempt that failed with an error it retries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from quota_monitor.clients import apigateway_client
from quota_monitor.read.calls import ApiGatewayCalls, FailedAttempt
from tests.conftest import CLOSED_PORT
from tests.fault_support import FAST_RETRIES

if TYPE_CHECKING:
    from apigw_sandbox.local import LocalCloud


def observed(cloud: LocalCloud) -> tuple[ApiGatewayCalls, list[FailedAttempt]]:
    seen: list[FailedAttempt] = []
    return ApiGatewayCalls(apigateway_client(), policy=FAST_RETRIES, on_failed_attempt=seen.append), seen


def test_each_retried_attempt_is_reported_and_the_last_one_says_it_gave_up(cloud: LocalCloud) -> None:
    cloud.sandbox.faults.add("throttle", operation="GetUsagePlans", retry_after=0)
    api, seen = observed(cloud)
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        api.get_usage_plans(limit=500)
    assert [attempt.attempt for attempt in seen] == [1, 2, 3, 4]
    assert [attempt.gave_up for attempt in seen] == [False, False, False, True]
    assert all(attempt.retry_in is not None for attempt in seen[:-1])
    assert {(a.operation, a.max_attempts) for a in seen} == {("get_usage_plans", FAST_RETRIES.max_attempts)}
    assert seen[0].params == {"limit": 500}
    elapsed = [attempt.elapsed for attempt in seen]
    assert elapsed == sorted(elapsed)


def test_an_attempt_that_later_succeeds_is_reported_without_giving_up(cloud: LocalCloud) -> None:
    cloud.account.create_usage_plan("one", limit=10, period="DAY")
    cloud.sandbox.faults.add("unavailable", operation="GetUsagePlans", count=2)
    api, seen = observed(cloud)
    assert len(api.get_usage_plans(limit=500)["items"]) == 1
    assert [(attempt.attempt, attempt.gave_up) for attempt in seen] == [(1, False), (2, False)]


def test_errors_that_are_not_retried_are_not_reported(cloud: LocalCloud) -> None:
    api, seen = observed(cloud)
    with pytest.raises(ClientError, match="NotFoundException"):
        api.get_usage(usagePlanId="nothing", startDate="2026-03-01", endDate="2026-03-02")
    assert seen == []


def test_an_endpoint_that_refuses_connections_is_reported_from_the_first_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_API_GATEWAY", CLOSED_PORT)
    seen: list[FailedAttempt] = []
    api = ApiGatewayCalls(apigateway_client(), policy=FAST_RETRIES, on_failed_attempt=seen.append)
    with pytest.raises(EndpointConnectionError):
        api.get_usage_plans(limit=500)
    assert len(seen) == FAST_RETRIES.max_attempts
    assert isinstance(seen[0].error, EndpointConnectionError)
    assert seen[-1].gave_up
