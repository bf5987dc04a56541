"""The sandbox's HTTP face: API Gateway's usage-plan API in the real rest-json wire format.

boto3 talks to it unchanged (``endpoint_url``, or ``AWS_ENDPOINT_URL_API_GATEWAY``). Served:
GetUsagePlans, GetUsagePlan, GetUsagePlanKeys, GetApiKeys, GetApiKey, GetUsage and UpdateUsage.
Every list pages with ``position`` and ``limit`` (default 25, maximum 500). Errors come as AWS
sends them: the error name in ``x-amzn-ErrorType`` and a JSON ``message``; throttling is a 429
``TooManyRequestsException`` with ``Retry-After`` (seconds).

Optional, for tests and benchmarks: a per-call latency, a token-bucket throttle shared by all
operations (AWS allows 10 requests a second, burst 40, for an account's control-plane calls
together), and fault injection (:mod:`apigw_sandbox.faults`). Every request is counted per
operation and logged with its query parameters.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from apigw_sandbox.account import BadRequest, NotFound, SandboxAccount, SandboxError, SandboxKey, SandboxPlan

DEFAULT_LIMIT = 25
MAX_LIMIT = 500


class Throttled(SandboxError):  # noqa: N818 - AWS's error name
    status = 429
    code = "TooManyRequestsException"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccountThrottle:
    """API Gateway's account-wide token bucket, as the service enforces it: refuse, don't wait."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._level = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def admit(self) -> None:
        with self._lock:
            now = self._clock()
            self._level = min(float(self.burst), self._level + (now - self._last) * self.rate)
            self._last = now
            if self._level >= 1.0:
                self._level -= 1.0
                return
            shortfall = (1.0 - self._level) / self.rate
        raise Throttled("Too Many Requests", retry_after=max(1, math.ceil(shortfall)))


@dataclass(frozen=True)
class Request:
    operation: str
    method: str
    path: str
    query: dict[str, str]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str


ROUTES: Sequence[Route] = (
    Route("GET", re.compile(r"^/usageplans$"), "GetUsagePlans"),
    Route("GET", re.compile(r"^/usageplans/(?P<plan>[^/]+)$"), "GetUsagePlan"),
    Route("GET", re.compile(r"^/usageplans/(?P<plan>[^/]+)/keys$"), "GetUsagePlanKeys"),
    Route("GET", re.compile(r"^/usageplans/(?P<plan>[^/]+)/usage$"), "GetUsage"),
    Route("PATCH", re.compile(r"^/usageplans/(?P<plan>[^/]+)/keys/(?P<key>[^/]+)/usage$"), "UpdateUsage"),
    Route("GET", re.compile(r"^/apikeys$"), "GetApiKeys"),
    Route("GET", re.compile(r"^/apikeys/(?P<key>[^/]+)$"), "GetApiKey"),
)


def _page(items: Sequence[Any], query: dict[str, str], scope: str) -> tuple[list[Any], str | None]:
    """One page of ``items`` by ``position`` and ``limit``, with AWS's defaults and bounds."""
    raw_limit = query.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise BadRequest(f"Invalid limit: {raw_limit}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"Invalid limit: {raw_limit}. Must be between 1 and {MAX_LIMIT}")
    offset = 0
    if "position" in query:
        offset = _read_position(query["position"], scope)
    chunk = list(items[offset : offset + limit])
    next_offset = offset + len(chunk)
    position = _make_position(next_offset, scope) if next_offset < len(items) else None
    return chunk, position


def _make_position(offset: int, scope: str) -> str:
    return base64.b64encode(json.dumps({"s": scope, "o": offset}).encode()).decode()


def _read_position(position: str, scope: str) -> int:
    try:
        body = json.loads(base64.b64decode(position, validate=True))
        if body["s"] != scope or not isinstance(body["o"], int) or body["o"] < 0:
            raise ValueError
        return int(body["o"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadRequest(f"Invalid position: {position}") from None


def _date(query: dict[str, str], name: str) -> date:
    raw = query.get(name)
    if raw is None:
        raise BadRequest(f"{name} is required")
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"Invalid {name}: {raw}. Use YYYY-MM-DD") from None


def plan_json(plan: SandboxPlan) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": plan.id,
        "name": plan.name,
        "description": plan.description,
        "apiStages": [],
        "throttle": {"burstLimit": 200, "rateLimit": 100.0},
        "tags": dict(plan.tags),
    }
    if plan.quota is not None:
        body["quota"] = dict(plan.quota)
    return body


def key_json(key: SandboxKey, include_value: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": key.id,
        "name": key.name,
        "enabled": key.enabled,
        "createdDate": int(key.created.timestamp()),
        "lastUpdatedDate": int(key.created.timestamp()),
        "stageKeys": [],
        "tags": dict(key.tags),
    }
    if key.customer_id:
        body["customerId"] = key.customer_id
    if include_value:
        body["value"] = key.value
    return body


class SandboxApi:
    """Operation handlers over a :class:`SandboxAccount`; transport-free, so faults can wrap them."""

    def __init__(self, account: SandboxAccount) -> None:
        self.account = account

    def handle(self, operation: str, params: dict[str, str], query: dict[str, str], body: bytes) -> Any:
        method: Callable[[dict[str, str], dict[str, str], bytes], Any] = getattr(self, f"op_{operation}")
        return method(params, query, body)

    def op_GetUsagePlans(self, params: dict[str, str], query: dict[str, str], body: bytes) -> Any:  # noqa: N802
        plans = sorted(self.account.plans.values(), key=lambda plan: plan.id)
        if "keyId" in query:
            plans = [plan for plan in plans if query["keyId"] in plan.key_ids]
        chunk, position = _page(plans, query, "plans")
        response: dict[str, Any] = {"item": [plan_json(plan) for plan in chunk]}
        if position:
            response["position"] = position
        return response

    def op_GetUsagePlan(self, params: dict[str, str], query: dict[str, str], body: bytes) -> Any:  # noqa: N802
        return plan_json(self.account.plan(params["plan"]))

    def op_GetUsagePlanKeys(self, params: dict[str, str], query: dict[str, str], body: bytes) -> Any:  # noqa: N802
        plan = self.account.plan(params["plan"])
        keys = [self.account.keys[key_id] for key_id in sorted(plan.key_ids) if key_id in self.account.keys]
        if "name" in query:
            keys = [key for key in keys if key.name.startswith(query["name"])]
        chunk, position = _page(keys, query, f"plankeys:{plan.id}")
        # AWS returns each key's value here whether asked or not.
        items = [{"id": key.id, "type": "API_KEY", "value": key.value, "name": key.name} for key in chunk]
        response: dict[str, Any] = {"item": items}
        if position:
            response["position"] = position
        return response

    def op_GetApiKeys(self, params: dict[str, str], query: dict[str, str], body: bytes) -> Any:  # noqa: N802
        keys = sorted(self.account.keys.values(), key=lambda key: key.id)
        if "name" in query:
            keys = [key for key in keys if key.name.startswith(query["name"])]
        if "customerId" in query:
            keys = [key for key in keys if key.customer_id == query["customerId"]]
        chunk, position = _page(keys, query, "apikeys")
        include = query.get("includeValues", "false").lower() == "true"
        response: dict[str, Any] = {"item": [key_json(key, include) for key in chunk], "warnings": []}
        if position:
            response["position"] = position
        return response

    def op_GetApiKey(self, params: dict[str, str], query: dict[str, str], body: bytes) -> Any:  # noqa: N802
        include = query.get("includeValue", "false").lower() == "true"
        return key_json(self.account.key(params["key"]), include)

    def op_GetUsage(self, params: dict[str, str], query: dict[str, str], body: bytes) -> Any:  # noqa: N802
        plan = self.account.plan(params["plan"])
        start, end = _date(query, "startDate"), _date(query, "endDate")
        if start > end:
            raise BadRequest(f"The start date {start} is after the end date {end}")
        key_ids = sorted(plan.key_ids)
        if "keyId" in query:
            if query["keyId"] not in plan.key_ids:
                raise NotFound(f"Invalid API Key identifier specified: {query['keyId']}")
            key_ids = [query["keyId"]]
        if self.account.omit_idle_keys:
            key_ids = [key_id for key_id in key_ids if self.account.has_use(plan.id, key_id, start, end)]
        chunk, position = _page(key_ids, query, f"usage:{plan.id}:{start}:{end}:{query.get('keyId', '')}")
        response: dict[str, Any] = {
            "usagePlanId": plan.id,
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "values": {key_id: self.account.daily_usage(plan.id, key_id, start, end) for key_id in chunk},
        }
        if position:
            response["position"] = position
        return response

    def op_UpdateUsage(self, params: dict[str, str], query: dict[str, str], body: bytes) -> Any:  # noqa: N802
        try:
            operations = json.loads(body or b"{}").get("patchOperations") or []
        except (ValueError, AttributeError):
            raise BadRequest("Invalid patch document") from None
        for operation in operations:
            if operation.get("op") != "replace" or operation.get("path") != "/remaining":
                raise BadRequest(f"Invalid patch operation: {operation.get('op')} {operation.get('path')}")
            try:
                remaining = int(operation.get("value"))
            except (TypeError, ValueError):
                raise BadRequest(f"Invalid remaining quota: {operation.get('value')!r}") from None
            self.account.update_remaining(params["plan"], params["key"], remaining)
        today = self.account.today()
        return {
            "usagePlanId": params["plan"],
            "startDate": today.isoformat(),
            "endDate": today.isoformat(),
            "values": {params["key"]: self.account.daily_usage(params["plan"], params["key"], today, today)},
        }


#: A fault hook sees each request before it is served. It may raise a SandboxError, return a
#: replacement (status, headers, body) to send instead, or return None to serve normally; it
#: may also wrap the normal answer by returning a callable that takes and returns the body.
FaultHook = Callable[[Request], Any]


class SandboxServer:
    """The sandbox on loopback. Use as a context manager, or ``start()`` and ``stop()``."""

    def __init__(
        self,
        account: SandboxAccount | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        throttle: AccountThrottle | None = None,
        latency: tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
    ) -> None:
        self.account = account or SandboxAccount()
        self.api = SandboxApi(self.account)
        self.throttle = throttle
        self.latency = latency
        self.fault_hooks: list[FaultHook] = []
        self.calls: Counter[str] = Counter()
        self.throttled = 0
        self.requests: list[Request] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="apigw-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def use_account(self, account: SandboxAccount) -> None:
        """Serve another account from now on (tests share one server); counters and faults reset."""
        with self._lock:
            self.account = account
            self.api = SandboxApi(account)
            self.fault_hooks.clear()
            self.throttle = None
        self.reset_counters()

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.throttled = 0
            self.requests.clear()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.calls[request.operation] += 1
            self.requests.append(request)

    def _latency(self) -> None:
        low, high = self.latency
        if high > 0:
            with self._lock:
                delay = self._rng.uniform(low, high)
            time.sleep(delay)

    def dispatch(self, method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Serve one HTTP request; returns (status, headers, body)."""
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        query = {name: values[-1] for name, values in parse_qs(split.query, keep_blank_values=True).items()}
        for route in ROUTES:
            match = route.pattern.match(path)
            if match and route.method == method:
                params = {name: unquote(value) for name, value in match.groupdict().items()}
                request = Request(route.operation, method, path, query)
                break
        else:
            return _error(NotFound(f"No operation for {method} {path}"))
        self._record(request)
        self._latency()
        try:
            if self.throttle is not None:
                try:
                    self.throttle.admit()
                except Throttled:
                    with self._lock:
                        self.throttled += 1
                    raise
            transforms = []
            for hook in self.fault_hooks:
                outcome = hook(request)
                if isinstance(outcome, tuple):
                    return outcome
                if callable(outcome):
                    transforms.append(outcome)
            response = self.api.handle(request.operation, params, query, body)
            payload = json.dumps(response).encode()
            for transform in transforms:
                payload = transform(payload)
        except SandboxError as error:
            return _error(error)
        return 200, {"Content-Type": "application/json"}, payload

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm on, the body waits for
            # the client's delayed ACK, adding ~40 ms to every call on loopback.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = server.dispatch(self.command, self.path, body)
                if status < 0:  # a fault asked for the connection to be dropped
                    self.close_connection = True
                    return
                self.send_response(status)
                headers = {"x-amzn-RequestId": f"sandbox-{time.monotonic_ns()}", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve  # noqa: N815 - http.server's naming
            do_PATCH = _serve  # noqa: N815
            do_POST = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                return

        return Handler


def _error(error: SandboxError) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": f"{error.code}:"}
    if isinstance(error, Throttled):
        headers["Retry-After"] = str(error.retry_after)
    return error.status, headers, json.dumps({"message": error.message}).encode()
