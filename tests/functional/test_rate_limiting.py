"""The client-side rate limiter against the sandbox: the client slows down when the service throttles."""

from __future__ import annotations

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import LocalCloud
from apigw_sandbox.server import Request, Throttled
from quota_monitor.clients import apigateway_client
from quota_monitor.read.calls import ApiGatewayCalls, RetryPolicy
from quota_monitor.read.limiter import RateLimiter
from tests.clock import FakeTime


def test_the_client_slows_down_when_the_service_throttles(cloud: LocalCloud, account: SandboxAccount) -> None:
    account.create_usage_plan("p", limit=10, period="DAY")
    refused = {"count": 0}

    def refuse_three(request: Request) -> None:
        if refused["count"] < 3:
            refused["count"] += 1
            raise Throttled("Too Many Requests", retry_after=0)

    cloud.sandbox.fault_hooks.append(refuse_three)
    time = FakeTime()
    bucket = RateLimiter(5.0, 5, clock=time.clock, sleep=time.sleep)
    api = ApiGatewayCalls(
        apigateway_client(),
        limiter=bucket,
        policy=RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05),
        sleep=time.sleep,
    )
    assert api.get_usage_plans(limit=500)["items"]
    assert api.stats.throttles == 3
    assert bucket.rate < 5.0
