"""The client-side rate limiter, on simulated time: its pace, and how it yields after 429s."""

from __future__ import annotations

import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import LocalCloud
from apigw_sandbox.server import Request, Throttled
from quota_monitor.calls import ApiGatewayCalls, RateLimiter, RetryPolicy
from quota_monitor.clients import apigateway_client


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def limiter(rate: float = 5.0, burst: int = 5, **kwargs: float) -> tuple[RateLimiter, FakeTime]:
    time = FakeTime()
    return RateLimiter(rate, burst, clock=time.clock, sleep=time.sleep, **kwargs), time


def test_burst_then_the_rate() -> None:
    bucket, time = limiter()
    waits = [bucket.acquire() for _ in range(15)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([0.2] * 10)
    assert time.now == pytest.approx(102.0)  # (15 - 5) / 5 seconds


def test_a_429_halves_the_rate_once_a_second_then_it_recovers() -> None:
    bucket, time = limiter(rate=8.0, burst=1)
    bucket.acquire()
    bucket.throttled()
    bucket.throttled()  # the same moment: calls already in flight
    assert bucket.rate == 4.0
    assert bucket.acquire() == pytest.approx(0.25)
    time.now += 1.0
    bucket.throttled()
    # 1.25 s after the cut the rate had grown by 1.25 * 8/20, then halved again.
    assert bucket.rate == pytest.approx((4.0 + 1.25 * 0.4) / 2)
    time.now += 60
    bucket.acquire()
    assert bucket.rate == 8.0  # back to the configured rate, never above


def test_the_rate_never_falls_below_the_floor() -> None:
    bucket, time = limiter(rate=5.0, burst=5)
    rates = []
    for _ in range(8):
        bucket.throttled()
        rates.append(bucket.rate)
        time.now += 1.0
    assert rates[:3] == pytest.approx([2.5, (2.5 + 0.25) / 2, (1.375 + 0.25) / 2])
    assert rates[-1] == bucket.min_rate == 5.0 / 8


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (5, 0)])
def test_bad_limits(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(rate, burst)


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
