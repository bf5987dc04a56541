"""Backoff between attempts, shared by every caller that retries (API Gateway, the Slack webhook).

Both services say how long to wait with a ``Retry-After`` header in seconds (API Gateway's 429,
Slack's 429). A retry never comes sooner than that, and never waits longer than the caller's cap.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def exponential(attempt: int, *, base: float, cap: float) -> float:
    """``base`` doubled for each attempt after the first, at most ``cap``."""
    return min(cap, base * 2.0 ** (attempt - 1))


def full_jitter(attempt: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Anywhere from 0 to the exponential delay: callers that retry together spread out."""
    return rand() * exponential(attempt, base=base, cap=cap)


def at_least_retry_after(delay: float, retry_after: float | None, *, cap: float) -> float:
    """``delay``, but never sooner than the service's ``Retry-After`` (itself capped at ``cap``)."""
    if retry_after is None:
        return delay
    return max(delay, min(retry_after, cap))


def retry_after_seconds(value: object) -> float | None:
    """A ``Retry-After`` header in seconds; None when absent or not a finite number."""
    if value is None:
        return None
    try:
        seconds = float(str(value))
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
