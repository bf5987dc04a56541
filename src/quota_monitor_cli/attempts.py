"""What the retries are doing, in words: at once when API Gateway cannot be reached, and, for a
call that gave up, how many attempts were made over how long.

The monitor retries throttling, 5xx and network errors up to ``APIGATEWAY_MAX_ATTEMPTS`` times
(``--max-attempts``) with backoff, which at the default of 8 can take about a minute. Someone at a
terminal should not stare at nothing meanwhile: the first attempt that could not connect is
reported on stderr straight away, and the error that ends the call says how long it tried.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

from quota_monitor import describe

if TYPE_CHECKING:
    from collections.abc import Callable

    from quota_monitor import FailedAttempt, ScanFailure

#: Errors that mean the endpoint was not reached at all (refused, no route, no DNS, no answer).
UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError)

#: The calls whose giving up fails each kind of scan failure.
_OPERATIONS = {
    "usage-plans": ("get_usage_plans",),
    "api-keys": ("get_api_keys",),
    "usage-plan": ("get_usage", "get_usage_plan_keys"),
}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def gave_up_after(attempt: FailedAttempt) -> str:
    tries = "1 attempt" if attempt.attempt == 1 else f"{attempt.attempt} attempts"
    return f"gave up after {tries} over {attempt.elapsed:.1f}s"


class AttemptReport:
    """The ``on_failed_attempt`` hook of the CLI's API Gateway client. Thread-safe: plans are read
    concurrently."""

    def __init__(self, notify: Callable[[str], None] = _stderr) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._told_unreachable = False
        self._gave_up: dict[tuple[str, str | None], FailedAttempt] = {}
        self.last_gave_up: FailedAttempt | None = None

    def __call__(self, attempt: FailedAttempt) -> None:
        if attempt.gave_up:
            plan_id = attempt.params.get("usagePlanId")
            with self._lock:
                self._gave_up[attempt.operation, plan_id if isinstance(plan_id, str) else None] = attempt
                self.last_gave_up = attempt
            return
        if not isinstance(attempt.error, UNREACHABLE):
            return
        with self._lock:
            if self._told_unreachable:
                return
            self._told_unreachable = True
        self._notify(
            f"quota-monitor: cannot reach API Gateway ({describe(attempt.error)}); retrying, "
            f"{attempt.max_attempts} attempts at most (--max-attempts)"
        )

    def gave_up_on(self, failure: ScanFailure) -> FailedAttempt | None:
        """The call whose giving up made this failure, if it was one that retries."""
        with self._lock:
            for operation in _OPERATIONS.get(failure.resource, ()):
                found = self._gave_up.get((operation, failure.resource_id))
                if found is not None:
                    return found
        return None

    def describe(self, failure: ScanFailure, *, with_target: bool = False) -> str:
        """The failure, and after how many attempts over how long when the call gave up retrying."""
        attempt = self.gave_up_on(failure)
        text = failure.describe(with_target=with_target)
        return text if attempt is None else f"{text} ({gave_up_after(attempt)})"
