"""The client-side rate limiter, on simulated time: its pace, and how it yields after 429s."""

from __future__ import annotations

import pytest

from quota_monitor import RateLimiter
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
