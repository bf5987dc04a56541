"""A client-side rate limit for API Gateway's control plane, shared by every thread of a scan.

All API Gateway control-plane calls of an account and region share 10 requests a second, burst
40 (docs/aws-behaviour.md#account-limits): the console, the CLI, deploys and this monitor. The
limiter keeps the monitor inside its share instead of discovering the limit by 429s, and yields
when 429s show that others need the budget.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

#: API Gateway's account-wide token bucket for control-plane calls: 10 a second, burst 40.
ACCOUNT_RATE: Final = 10.0
ACCOUNT_BURST: Final = 40


class CallLimiter(Protocol):
    """What :class:`~quota_monitor.read.calls.ApiGatewayCalls` asks before every attempt: a
    :class:`RateLimiter`, or one with the runs' shared budget behind it
    (:class:`quota_monitor.read.budget.BudgetLimiter`)."""

    def acquire(self) -> float:
        """Wait for the next call's turn; the seconds waited."""
        ...

    def throttled(self) -> None:
        """The service answered 429."""
        ...


def usable_burst(burst: int, in_flight: int) -> int:
    """The burst the monitor's bucket holds: ``burst``, but never more than the account's bucket can
    still take: the account's burst less the calls that can be on their way (``in_flight``, the
    monitor's threads).

    Why: a call leaves the monitor's bucket when it is sent and the account's when it arrives. While
    calls are on their way both buckets refill, and when the account's is full its refill is lost
    while the monitor's goes on: the monitor's bucket then holds up to ``in_flight`` tokens that the
    account's does not. With the account's whole budget (``APIGATEWAY_BURST=40``,
    ``APIGATEWAY_MAX_RPS=10``) the two would run in lockstep with the account's that much behind,
    and the first burst after a pause would meet a 429, which halves the rate for seconds
    (docs/benchmarks.md, "The whole budget"). Keeping ``in_flight`` out of the burst leaves the
    account's bucket never behind.
    """
    return max(1, min(burst, ACCOUNT_BURST - max(0, in_flight)))


class RateLimiter:
    """A blocking token bucket: at most ``rate`` calls a second on average, ``burst`` at once.

    It also yields to the account's other callers: a 429 means the shared budget is spent, so
    :meth:`throttled` halves the rate (once a second at most: the 429s of calls already in flight
    say the same thing), down to ``min_rate``; the rate then grows back linearly, ``recovery``
    calls a second every second, up to ``rate``. Without 429s it never changes.

    Thread safe; every thread of a scan shares one. ``clock`` and ``sleep`` are injectable so
    that tests and benchmarks can run it on simulated time.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        min_rate: float | None = None,
        recovery: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate {rate} must be above 0 requests a second")
        if burst < 1:
            raise ValueError(f"burst {burst} must be at least 1")
        self.max_rate = rate
        self.rate = rate
        self.min_rate = min(rate, min_rate if min_rate is not None else rate / 8)
        self.recovery = recovery if recovery is not None else rate / 20
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._updated = clock()
        self._cut_at: float | None = None

    def _advance(self, now: float) -> None:
        elapsed = now - self._updated
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate + elapsed * self.recovery)
        self._updated = now

    def acquire(self) -> float:
        """Take one token, waiting for it if need be; returns the seconds waited."""
        with self._lock:
            self._advance(self._clock())
            # Reserve the token now (the balance may go negative) so that waiting threads queue
            # up in order instead of all waking for the same token.
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait

    def throttled(self) -> None:
        """The service answered 429: slow down, to leave the account's budget to its other callers."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._cut_at is None or now - self._cut_at >= 1.0:
                self.rate = max(self.min_rate, self.rate / 2)
                self._cut_at = now
