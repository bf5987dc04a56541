"""The client-side rate limiter, on simulated time: its pace, how it yields after 429s, and what it
leaves in the account's bucket."""

from __future__ import annotations

import pytest

from apigw_sandbox.account import Throttled
from apigw_sandbox.server import AccountThrottle
from quota_monitor.config import ScanSettings
from quota_monitor.invocation import Clocks
from quota_monitor.read.guarded import rate_limiter
from quota_monitor.read.limiter import ACCOUNT_BURST, ACCOUNT_RATE, RateLimiter, usable_burst
from tests.clock import FakeTime


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


# -- the whole budget: the monitor's bucket is never ahead of the account's ---------------------

WHOLE_BUDGET = ScanSettings(max_rps=10.0, burst=40, max_workers=4)


@pytest.mark.parametrize(
    ("burst", "workers", "usable"),
    [(40, 4, 36), (40, 16, 24), (36, 4, 36), (5, 4, 5), (5, 16, 5), (1, 16, 1)],
)
def test_the_burst_leaves_room_for_the_calls_on_their_way(burst: int, workers: int, usable: int) -> None:
    assert usable_burst(burst, in_flight=workers) == usable
    assert rate_limiter(ScanSettings(max_rps=10.0, burst=burst, max_workers=workers)).burst == usable


def account_429s(bucket: RateLimiter, time: FakeTime, *, workers: int = 4, calls: int = 100) -> int:
    """API Gateway's account bucket (the sandbox's model of it, alone in the account) against the
    limiter: ``workers`` calls leave together and take 150 ms to arrive, while both buckets refill
    and the account's, full, loses its refill; then the calls go as fast as the limiter lets them,
    arriving 50 ms after they leave. Returns how many the account refused."""
    arrivals = []
    for _ in range(workers):
        bucket.acquire()
        arrivals.append(time.now + 0.15)
    time.now += 0.15
    for _ in range(calls):
        bucket.acquire()
        arrivals.append(time.now + 0.05)
    account_time = {"now": 100.0}
    account = AccountThrottle(ACCOUNT_RATE, ACCOUNT_BURST, clock=lambda: account_time["now"])
    refused = 0
    for at in sorted(arrivals):
        account_time["now"] = at
        try:
            account.admit()
        except Throttled:
            refused += 1
    return refused


def test_at_the_whole_budget_the_account_never_refuses_the_monitors_burst() -> None:
    """With the account's whole burst (40) the monitor's bucket got ahead of the account's by the
    calls on their way, and its next burst met a 429 (which halves the rate for seconds). The
    usable burst keeps them out."""
    time = FakeTime()
    assert account_429s(rate_limiter(WHOLE_BUDGET, Clocks(monotonic=time.clock, sleep=time.sleep)), time) == 0

    time = FakeTime()
    all_of_it = RateLimiter(10.0, 40, clock=time.clock, sleep=time.sleep)
    assert account_429s(all_of_it, time) > 0  # what the room is for
