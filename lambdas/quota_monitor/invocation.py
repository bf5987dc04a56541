"""One run's time: the clocks it reads and waits on, when it started, and when it must stop.

Near the end of an invocation a run stops starting API Gateway calls (``stop_calls_at``: the calls
in flight, then alerts, metrics and records need the rest) and, a little later, stops sending alerts
(``stop_alerts_at``), so that the timeout never cuts it off between a publish and its confirmation,
which would send that message again (docs/reliability.md). The check bounds what a run starts: a
call already in flight can still take its own timeouts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

#: Kept at the end of an invocation: for the API Gateway calls still in flight when the scan stops
#: starting new ones, then alerts and metrics ...
RESERVE_FOR_PUBLISHING: Final = timedelta(seconds=60)
#: ... but never more than this share of the invocation, so that a short timeout still scans.
MAX_RESERVE_SHARE: Final = 0.4
#: How long a run with no deadline of its own (the CLI) may hold its claims: Lambda's maximum.
UNBOUNDED_LEASE: Final = timedelta(minutes=15)


def reserve_for(remaining: timedelta) -> timedelta:
    """How much of an invocation with ``remaining`` time left is kept from the scan."""
    return min(RESERVE_FOR_PUBLISHING, remaining * MAX_RESERVE_SHARE)


def reserve_after_alerts(remaining: timedelta) -> timedelta:
    """How much of it is kept from sending alerts: for releasing the claims of what was not sent,
    the metrics and the records (20 s of the default 60)."""
    return reserve_for(remaining) / 3


@dataclass(frozen=True)
class Clocks:
    """What a run waits on and measures with: real time in Lambda and the CLI, a faster clock in the
    benchmark. ``wall`` is the clock every run reads alike (readings' times, deadlines)."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], float] = time.time

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)


REAL_TIME: Final = Clocks()


@dataclass(frozen=True)
class Invocation:
    """When one run started and ends, and when it stops starting calls and alerts (module doc)."""

    now: datetime
    ends_at: datetime
    stop_calls_at: datetime
    stop_alerts_at: datetime
    clocks: Clocks = field(default=REAL_TIME, compare=False)

    @classmethod
    def lasting(cls, remaining: timedelta, *, clocks: Clocks = REAL_TIME) -> Invocation:
        """A run with ``remaining`` time left from now (Lambda's remaining time)."""
        now = clocks.now()
        ends_at = now + remaining
        return cls(
            now=now,
            ends_at=ends_at,
            stop_calls_at=ends_at - reserve_for(remaining),
            stop_alerts_at=ends_at - reserve_after_alerts(remaining),
            clocks=clocks,
        )

    @classmethod
    def unbounded(cls, *, clocks: Clocks = REAL_TIME) -> Invocation:
        """A run with no deadline of its own (the CLI): it never stops early, and holds any claim for
        :data:`UNBOUNDED_LEASE`."""
        now = clocks.now()
        never = datetime.max.replace(tzinfo=UTC)
        return cls(now, now + UNBOUNDED_LEASE, stop_calls_at=never, stop_alerts_at=never, clocks=clocks)

    def calls_over(self) -> bool:
        return self.clocks.now() >= self.stop_calls_at

    def alerts_over(self) -> bool:
        return self.clocks.now() >= self.stop_alerts_at
