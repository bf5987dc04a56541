"""Every API Gateway call the monitor makes goes through :class:`ApiGatewayCalls`.

Why not botocore's own retries: all API Gateway control-plane calls of an account share
10 requests a second, burst 40 (../shared/AWS-NOTES.md, "Account limits"), and API Gateway
answers an overload with ``429 TooManyRequestsException`` and a ``Retry-After`` header in
*seconds*. botocore's standard retry mode reads only ``x-amz-retry-after`` (milliseconds),
and spends a client-wide retry quota (500, minus 5 a throttled retry) that a long 429 storm
exhausts. So the API Gateway client is built with botocore retries off, and this module:

- waits for a token from a client-side :class:`RateLimiter` before every attempt, so that
  the monitor stays inside its share of the account budget instead of discovering it by 429s,
  and slows down further when 429s show that others are using the budget;
- retries throttling (429), server errors (5xx) and connection failures with capped,
  jittered exponential backoff, honouring ``Retry-After``;
- counts every attempt (each one spends the shared budget) and every 429;
- never backs off past the run's deadline: the wait is cut into short slices and the deadline is
  checked between them, so that a ``Retry-After`` of 20 s a moment before the deadline does not
  eat the time kept for publishing;
- turns a response botocore could not read into :class:`MalformedResponse`, retried like a
  transient fault. A field of the wrong type (``"limit": "lots"``) makes botocore's parser raise
  a bare ``ValueError`` or ``TypeError``; a body that is not JSON at all does not raise: botocore
  returns ``{}``, which reads as an empty list, or a plan with no keys. The client built by
  :func:`quota_monitor.clients.apigateway_client` checks the raw body for that case
  (:func:`reject_unreadable_body`).
- hands the monitor the counts as the service sent them, not as botocore coerced them. Its
  rest-json parser reads every ``Long`` and ``Integer`` with ``int(value)`` and every list by
  iterating whatever it gets (reproduced with botocore 1.44): ``5.7`` becomes 5, ``true`` 1,
  ``"12"`` 12, and a day's ``[used, remaining]`` sent as the string ``"56"`` or the object
  ``{"5": 0, "6": 0}`` becomes ``[5, 6]``: wrong numbers, with no error. So the same hook puts the
  raw JSON of GetUsage's ``values`` and of each usage plan's ``quota`` back into botocore's result,
  for the monitor's own checks (:mod:`quota_monitor.usage`, :mod:`quota_monitor.apigateway`) to
  refuse what is not a whole number, naming the plan. (A number too big for a float, ``1e400``,
  makes botocore raise ``OverflowError``: read as a response that could not be read.)
"""

from __future__ import annotations

import json
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

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_apigateway import APIGatewayClient

    #: boto3's API Gateway client; the monitor uses only its read-only calls.
    ApiGatewayClient: TypeAlias = APIGatewayClient

TRANSIENT_NETWORK_ERRORS = (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)


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
        jittered = rand() * min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        if retry_after is not None:
            return max(jittered, min(retry_after, self.max_delay))
        return jittered


@dataclass
class CallStats:
    """What the scan spent: attempts (API calls) per operation, 429s, retries, time waiting."""

    calls: Counter[str] = field(default_factory=Counter)
    throttles: int = 0
    retries: int = 0
    rate_limited_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def count_call(self, operation: str, waited: float) -> None:
        with self._lock:
            self.calls[operation] += 1
            self.rate_limited_seconds += waited

    def count_retry(self, throttled: bool) -> None:
        with self._lock:
            self.retries += 1
            if throttled:
                self.throttles += 1

    def count_final_throttle(self) -> None:
        with self._lock:
            self.throttles += 1


class MalformedResponse(ValueError):  # noqa: N818 - reads as what happened
    """A response that botocore could not read as the operation's result."""


#: What botocore's parsers raise on a body of the wrong shape (not ClientError or BotoCoreError).
PARSER_ERRORS = (ResponseParserError, ValueError, TypeError, AttributeError, KeyError, OverflowError)


class DeadlineReached(RuntimeError):  # noqa: N818 - reads as what happened
    """No new API call is started after the run's deadline."""


#: The longest single sleep while backing off when there is a deadline to watch.
DEADLINE_CHECK_SECONDS = 0.25


def _retry_after_seconds(error: ClientError) -> float | None:
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


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
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        deadline: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._limiter = limiter
        self._policy = policy or RetryPolicy()
        self._deadline = deadline
        self._sleep = sleep
        self._rand = rand
        self.stats = CallStats()

    def call(self, operation: str, **params: Any) -> Mapping[str, Any]:
        method: Callable[..., Mapping[str, Any]] = getattr(self._client, operation)
        attempt = 0
        while True:
            attempt += 1
            if self._deadline is not None and self._deadline():
                raise DeadlineReached(
                    f"{self._api_name(operation)} not started: the run's deadline has passed"
                )
            waited = self._limiter.acquire() if self._limiter is not None else 0.0
            self.stats.count_call(operation, waited)
            try:
                return method(**params)
            except ClientError as error:
                throttled = is_throttle(error)
                if throttled and self._limiter is not None:
                    self._limiter.throttled()
                if not (throttled or _is_server_error(error)) or attempt >= self._policy.max_attempts:
                    if throttled:
                        self.stats.count_final_throttle()
                    raise
                delay = self._policy.backoff(attempt, _retry_after_seconds(error), self._rand)
                self.stats.count_retry(throttled)
                last = str(error.response.get("Error", {}).get("Code") or "ClientError")
            except TRANSIENT_NETWORK_ERRORS as error:
                if attempt >= self._policy.max_attempts:
                    raise
                delay = self._policy.backoff(attempt, None, self._rand)
                self.stats.count_retry(False)
                last = type(error).__name__
            except PARSER_ERRORS as error:
                if attempt >= min(self._policy.max_attempts, self._policy.max_unreadable_attempts):
                    if isinstance(error, MalformedResponse):
                        raise
                    raise MalformedResponse(
                        f"{self._api_name(operation)}: the response could not be read "
                        f"({type(error).__name__}: {error})"
                    ) from error
                delay = self._policy.backoff(attempt, None, self._rand)
                self.stats.count_retry(False)
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


def reject_unreadable_body(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
    """botocore ``after-call`` hook: a 2xx response whose body is not JSON raises :class:`MalformedResponse`
    (botocore would return ``{}`` for it), and the counts in ``parsed`` are put back as the body has
    them (:func:`restore_raw_counts`, and the module doc).

    The message never quotes the body: GetUsagePlanKeys bodies hold API key values.
    """
    status = getattr(http_response, "status_code", 0)
    body: bytes = getattr(http_response, "content", b"") or b""
    if not 200 <= status < 300 or not body.strip():
        return
    try:
        document = json.loads(body)
    except ValueError:
        raise MalformedResponse(f"{model.name}: the response body is not JSON ({len(body)} bytes)") from None
    if isinstance(parsed, dict) and isinstance(document, dict):
        restore_raw_counts(model.name, document, parsed)


def restore_raw_counts(operation: str, document: dict[str, Any], parsed: dict[str, Any]) -> None:
    """Put GetUsage's daily counts and the usage plans' quotas back into ``parsed`` as the service
    sent them, undoing botocore's coercion (module doc). Where botocore refused the body it raised
    before this runs, so a valid answer is left exactly as it was."""
    if operation in ("GetUsage", "UpdateUsage"):
        values = document.get("values")
        if isinstance(values, dict) and "items" in parsed:
            parsed["items"] = values
    elif operation == "GetUsagePlans":
        raw_plans, plans = document.get("item"), parsed.get("items")
        if isinstance(raw_plans, list) and isinstance(plans, list) and len(raw_plans) == len(plans):
            for raw, plan in zip(raw_plans, plans, strict=True):
                if isinstance(raw, dict) and isinstance(plan, dict) and isinstance(raw.get("quota"), dict):
                    plan["quota"] = raw["quota"]
