"""Every API Gateway call the monitor makes goes through :class:`ApiGatewayCalls`: rate limited,
retried, counted.

Why not botocore's own retries: all API Gateway control-plane calls of an account share
10 requests a second, burst 40 (docs/aws-behaviour.md#account-limits), and API Gateway
answers an overload with ``429 TooManyRequestsException`` and a ``Retry-After`` header in
*seconds*. botocore's standard retry mode reads only ``x-amz-retry-after`` (milliseconds),
and spends a client-wide retry quota (500, minus 5 a throttled retry) that a long 429 storm
exhausts. So the API Gateway client is built with botocore retries off, and this module:

- waits for a token from the client-side :class:`~quota_monitor.read.limiter.RateLimiter` before
  every attempt, and tells it about every 429;
- retries throttling (429), server errors (5xx) and connection failures with capped,
  jittered exponential backoff, honouring ``Retry-After``;
- counts every attempt (each one spends the shared budget) and every 429;
- tells an optional observer about every attempt that failed with an error it retries
  (:class:`FailedAttempt`), so that a person at a terminal hears at once that API Gateway
  cannot be reached, and how many attempts were made over how long when the call gives up;
- never backs off past the run's deadline: the wait is cut into short slices and the deadline is
  checked between them, so that a ``Retry-After`` of 20 s a moment before the deadline does not
  eat the time kept for publishing;
- turns a response botocore could not read into :class:`~quota_monitor.errors.MalformedResponse`,
  retried like a transient fault, at most ``max_unreadable_attempts`` times: a field of the wrong
  type (``"limit": "lots"``) makes botocore's parser raise a bare ``ValueError`` or ``TypeError``.
  The answers botocore reads wrongly without raising are caught before parsing
  (:mod:`quota_monitor.read.raw_counts`).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from quota_monitor.backoff import at_least_retry_after, full_jitter, retry_after_seconds
from quota_monitor.errors import DeadlineReached, MalformedResponse

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_apigateway import APIGatewayClient

    from quota_monitor.read.limiter import CallLimiter

    #: boto3's API Gateway client; the monitor uses only its read-only calls.
    ApiGatewayClient: TypeAlias = APIGatewayClient

TRANSIENT_NETWORK_ERRORS = (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 20.0
    #: Attempts for an answer that could not be read: a cut-off body can be transient, but a
    #: service that keeps sending garbage will not mend in seconds, and every try spends the
    #: account's shared budget.
    max_unreadable_attempts: int = 3

    def backoff(self, attempt: int, retry_after: float | None, rand: Callable[[], float]) -> float:
        """Full-jitter exponential backoff; never sooner than the service's Retry-After."""
        jittered = full_jitter(attempt, base=self.base_delay, cap=self.max_delay, rand=rand)
        return at_least_retry_after(jittered, retry_after, cap=self.max_delay)


@dataclass
class CallStats:
    """What the scan spent: attempts (API calls) per operation, 429s, retries."""

    calls: Counter[str] = field(default_factory=Counter)
    throttles: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def count_call(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1

    def count_retry(self, throttled: bool) -> None:
        with self._lock:
            self.retries += 1
            if throttled:
                self.throttles += 1

    def count_final_throttle(self) -> None:
        with self._lock:
            self.throttles += 1


@dataclass(frozen=True)
class FailedAttempt:
    """One attempt of a call that failed with an error the retry policy retries.

    Throttling, 5xx, a network error or an answer that could not be read. ``retry_in`` is the
    back-off before the next attempt, or None when this was the last one and the call raises.
    """

    #: boto3's method name, such as ``get_usage_plans``.
    operation: str
    params: Mapping[str, Any]
    #: This attempt's number, from 1.
    attempt: int
    #: The most attempts the policy allows for this error.
    max_attempts: int
    error: BaseException
    #: Seconds since the call's first attempt began (rate-limit waits and back-offs included).
    elapsed: float
    retry_in: float | None

    @property
    def gave_up(self) -> bool:
        return self.retry_in is None


#: What botocore's parsers raise on a body of the wrong shape (not ClientError or BotoCoreError).
PARSER_ERRORS = (ResponseParserError, ValueError, TypeError, AttributeError, KeyError, OverflowError)


#: The longest single sleep while backing off when there is a deadline to watch.
DEADLINE_CHECK_SECONDS = 0.25


def _retry_after(error: ClientError) -> float | None:
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return retry_after_seconds(headers.get("retry-after"))


def is_throttle(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code == "TooManyRequestsException" or status == 429


def _is_server_error(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and status >= 500


class ApiGatewayCalls:
    """A drop-in for the read-only part of the boto3 API Gateway client: rate limited, retried, counted.

    It has the same method names and keyword arguments as boto3's client, so the usage
    paginator and the listing helpers take either.
    """

    def __init__(
        self,
        client: ApiGatewayClient,
        *,
        limiter: CallLimiter | None = None,
        policy: RetryPolicy | None = None,
        deadline: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        on_failed_attempt: Callable[[FailedAttempt], None] | None = None,
    ) -> None:
        self._client = client
        self._limiter = limiter
        self._policy = policy or RetryPolicy()
        self._deadline = deadline
        self._sleep = sleep
        self._rand = rand
        self._clock = clock
        self._on_failed_attempt = on_failed_attempt
        self.stats = CallStats()

    @property
    def limiter(self) -> CallLimiter | None:
        return self._limiter

    def _wait_turn(self) -> None:
        if self._limiter is not None:
            self._limiter.acquire()

    def call(self, operation: str, **params: Any) -> Mapping[str, Any]:
        method: Callable[..., Mapping[str, Any]] = getattr(self._client, operation)
        attempt = 0
        started = self._clock()

        def failed(error: BaseException, limit: int, retry_in: float | None) -> None:
            if self._on_failed_attempt is not None:
                elapsed = self._clock() - started
                self._on_failed_attempt(
                    FailedAttempt(operation, params, attempt, limit, error, elapsed, retry_in)
                )

        while True:
            attempt += 1
            if self._deadline is not None and self._deadline():
                raise DeadlineReached(
                    f"{self._api_name(operation)} not started: the run's deadline has passed"
                )
            self._wait_turn()
            self.stats.count_call(operation)
            try:
                return method(**params)
            except ClientError as error:
                throttled = is_throttle(error)
                if throttled and self._limiter is not None:
                    self._limiter.throttled()
                if not (throttled or _is_server_error(error)):
                    raise
                if attempt >= self._policy.max_attempts:
                    if throttled:
                        self.stats.count_final_throttle()
                    failed(error, self._policy.max_attempts, None)
                    raise
                delay = self._policy.backoff(attempt, _retry_after(error), self._rand)
                self.stats.count_retry(throttled)
                failed(error, self._policy.max_attempts, delay)
                last = str(error.response.get("Error", {}).get("Code") or "ClientError")
            except TRANSIENT_NETWORK_ERRORS as error:
                if attempt >= self._policy.max_attempts:
                    failed(error, self._policy.max_attempts, None)
                    raise
                delay = self._policy.backoff(attempt, None, self._rand)
                self.stats.count_retry(False)
                failed(error, self._policy.max_attempts, delay)
                last = type(error).__name__
            except PARSER_ERRORS as error:
                limit = min(self._policy.max_attempts, self._policy.max_unreadable_attempts)
                if attempt >= limit:
                    failed(error, limit, None)
                    if isinstance(error, MalformedResponse):
                        raise
                    raise MalformedResponse(
                        f"{self._api_name(operation)}: the response could not be read "
                        f"({type(error).__name__}: {error})"
                    ) from error
                delay = self._policy.backoff(attempt, None, self._rand)
                self.stats.count_retry(False)
                failed(error, limit, delay)
                last = type(error).__name__
            self._back_off(delay, operation, last)

    def _back_off(self, delay: float, operation: str, last_error: str) -> None:
        """Sleep ``delay`` seconds, unless the deadline passes first (then DeadlineReached)."""
        while True:
            if self._deadline is not None and self._deadline():
                raise DeadlineReached(
                    f"{self._api_name(operation)} not retried after {last_error}: "
                    "the run's deadline has passed"
                )
            if delay <= 0:
                return
            step = delay if self._deadline is None else min(delay, DEADLINE_CHECK_SECONDS)
            self._sleep(step)
            delay -= step

    def _api_name(self, operation: str) -> str:
        mapping: Mapping[str, str] = getattr(getattr(self._client, "meta", None), "method_to_api_mapping", {})
        return mapping.get(operation, operation)

    def get_usage_plans(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("get_usage_plans", **kwargs)

    def get_usage(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("get_usage", **kwargs)

    def get_api_keys(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("get_api_keys", **kwargs)

    def get_usage_plan_keys(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("get_usage_plan_keys", **kwargs)
