"""The sandbox's HTTP face: API Gateway's usage-plan API in the real rest-json wire format.

boto3 talks to it unchanged (``endpoint_url``, or ``AWS_ENDPOINT_URL_API_GATEWAY``). Served:
GetUsagePlans, GetUsagePlan, GetUsagePlanKeys, GetApiKeys, GetApiKey, GetUsage and UpdateUsage.
Every list pages with ``position`` and ``limit`` (default 25, maximum 500). Errors come as AWS
sends them: the error name in ``x-amzn-ErrorType`` and a JSON ``message``; throttling is a 429
``TooManyRequestsException`` with ``Retry-After`` (seconds).

Optional, for tests and benchmarks: a per-call latency, a token-bucket throttle shared by all
operations (AWS allows 10 requests a second, burst 40, for an account's control-plane calls
together), and fault injection (:mod:`apigw_sandbox.faults`). Every request is counted per
operation and logged with its query parameters, and every key's usage data that actually went out
is recorded (:attr:`SandboxServer.served`), so that a test can check that what was served was reported.

The sandbox's own controls share its port, under ``/_sandbox`` (a path API Gateway never uses):

- ``GET /_sandbox/faults``: the seed, the active faults with how often each fired, and the
  injections by kind;
- ``POST /_sandbox/faults``: add one fault (a JSON object such as ``{"kind": "throttle",
  "operation": "GetUsage", "probability": 0.2, "retryAfter": 1}``), or several with a new seed
  (``{"seed": 7, "faults": [...]}``); answers 201 with the ids;
- ``DELETE /_sandbox/faults``: remove every fault and forget what was injected and served;
  ``DELETE /_sandbox/faults/{id}``: remove one.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from apigw_sandbox.account import (
    ApiStage,
    BadRequest,
    NotFound,
    SandboxAccount,
    SandboxError,
    SandboxKey,
    SandboxPlan,
    Throttled,
    UnrecognizedClient,
)
from apigw_sandbox.faults import Fault, FaultInjector, Intervention, InvalidFault

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "AccountThrottle",
    "Reply",
    "Request",
    "SandboxApi",
    "SandboxServer",
    "ServedUsage",
    "Tenant",
    "Throttled",
    "signed_for",
]

DEFAULT_LIMIT = 25
MAX_LIMIT = 500
CONTROL_PREFIX = "/_sandbox"
#: The account of credentials nobody mapped to another (moto's default account, too).
DEFAULT_ACCOUNT_ID = "123456789012"
#: ``Credential=<access key id>/<date>/<region>/<service>/aws4_request`` in a SigV4 Authorization header.
_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[a-z0-9-]+)/")


def signed_for(authorization: str | None) -> tuple[str | None, str | None]:
    """(access key id, region) from a SigV4 ``Authorization`` header, as AWS endpoints read it."""
    match = _CREDENTIAL.search(authorization or "")
    return (match.group("key"), match.group("region")) if match else (None, None)


@dataclass
class Tenant:
    """One account in one region: its usage plans and keys, and its own control-plane budget."""

    account: SandboxAccount
    api: SandboxApi
    throttle: AccountThrottle | None = None


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
    #: The ids in the path: ``plan``, ``key``.
    params: dict[str, str] = field(default_factory=dict)
    #: Whose account and which region the request was for (its SigV4 credentials and scope).
    account_id: str = ""
    region: str = ""


@dataclass(frozen=True)
class ServedUsage:
    """One key's daily usage as it went out in a GetUsage answer that reached the connection."""

    usage_plan_id: str
    api_key_id: str
    start_date: str
    end_date: str
    daily: Any
    #: The daily list went out exactly as the account holds it (no fault changed it).
    intact: bool


@dataclass(frozen=True)
class Reply:
    """What the server sends for one request. ``status`` below 0: no answer, the connection is reset."""

    status: int
    headers: dict[str, str]
    body: bytes
    #: Seconds to wait before answering (or resetting).
    hold: float = 0.0
    served: tuple[ServedUsage, ...] = ()


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


def _shift_position(position: str, by: int) -> str:
    """The same position, ``by`` items further (a fault's doing); an unreadable one is left as it is."""
    try:
        body = json.loads(base64.b64decode(position, validate=True))
        return _make_position(max(0, int(body["o"]) + by), str(body["s"]))
    except (binascii.Error, ValueError, KeyError, TypeError):
        return position


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
        "apiStages": [api_stage_json(api_stage) for api_stage in plan.api_stages],
        "throttle": {"burstLimit": 200, "rateLimit": 100.0},
        "tags": dict(plan.tags),
    }
    if plan.quota is not None:
        body["quota"] = dict(plan.quota)
    return body


def api_stage_json(api_stage: ApiStage) -> dict[str, Any]:
    """One of a plan's ``apiStages``, as API Gateway's REST API returns it (``throttle`` only when set)."""
    body: dict[str, Any] = {"apiId": api_stage.api_id, "stage": api_stage.stage}
    if api_stage.throttle:
        body["throttle"] = {method: dict(limits) for method, limits in api_stage.throttle.items()}
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
        #: Accounts served for one account id and region (:meth:`add_account`); any other request is
        #: served from :attr:`account`.
        self.tenants: dict[tuple[str, str], Tenant] = {}
        #: Regions that answer as an opt-in region the account has not enabled.
        self.disabled_regions: set[str] = set()
        #: Access key id -> account id, for credentials of another account (assumed roles);
        #: unset, every request is the default account's.
        self.account_of: Callable[[str], str] | None = None
        #: API calls by (account id, region, operation).
        self.calls_by_target: Counter[tuple[str, str, str]] = Counter()
        self.latency = latency
        self.fault_hooks: list[FaultHook] = []
        #: Faults injected by kind, operation and probability (:mod:`apigw_sandbox.faults`).
        self.faults = FaultInjector(seed=seed)
        self.calls: Counter[str] = Counter()
        self.throttled = 0
        self.requests: list[Request] = []
        #: Every key's usage data that went out intact or not, in order (see :class:`ServedUsage`).
        self.served: list[ServedUsage] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
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
        self._stopping.set()  # wakes answers held by a read-timeout fault
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def use_account(self, account: SandboxAccount) -> None:
        """Serve another account from now on (tests share one server); counters, faults and the
        accounts of other ids and regions reset."""
        with self._lock:
            self.account = account
            self.api = SandboxApi(account)
            self.fault_hooks.clear()
            self.throttle = None
            self.tenants.clear()
            self.disabled_regions.clear()
        self.faults.reset()
        self.reset_counters()

    def add_account(
        self,
        account: SandboxAccount,
        *,
        region: str,
        account_id: str = DEFAULT_ACCOUNT_ID,
        throttle: AccountThrottle | None = None,
    ) -> None:
        """Serve ``account`` to requests signed for ``region`` with credentials of ``account_id``, with
        its own budget (``throttle``), as API Gateway keeps each account and region apart."""
        with self._lock:
            self.tenants[account_id, region] = Tenant(account, SandboxApi(account), throttle)

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.calls_by_target.clear()
            self.throttled = 0
            self.requests.clear()
            self.served.clear()

    def served_keys(self, *, intact: bool = True) -> set[tuple[str, str]]:
        """(usage plan id, API key id) of every key whose usage data went out (intact, by default)."""
        with self._lock:
            return {(s.usage_plan_id, s.api_key_id) for s in self.served if s.intact or not intact}

    def _record_served(self, served: tuple[ServedUsage, ...]) -> None:
        if served:
            with self._lock:
                self.served.extend(served)

    def _unrecord_served(self, served: tuple[ServedUsage, ...]) -> None:
        with self._lock:
            for serving in served:
                if serving in self.served:
                    self.served.remove(serving)

    def _record(self, request: Request) -> None:
        with self._lock:
            self.calls[request.operation] += 1
            self.calls_by_target[request.account_id, request.region, request.operation] += 1
            self.requests.append(request)

    def _signer(self, authorization: str | None) -> tuple[str, str]:
        key, region = signed_for(authorization)
        account_id = DEFAULT_ACCOUNT_ID
        if key is not None and self.account_of is not None:
            account_id = self.account_of(key)
        return account_id, region or ""

    def _tenant(self, request: Request) -> Tenant:
        with self._lock:
            found = self.tenants.get((request.account_id, request.region))
            return found if found is not None else Tenant(self.account, self.api, self.throttle)

    def _latency(self) -> None:
        low, high = self.latency
        if high > 0:
            with self._lock:
                delay = self._rng.uniform(low, high)
            time.sleep(delay)

    def dispatch(self, method: str, raw_path: str, body: bytes, authorization: str | None = None) -> Reply:
        """Serve one HTTP request; ``authorization`` (its SigV4 header) says whose account and region."""
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        query = {name: values[-1] for name, values in parse_qs(split.query, keep_blank_values=True).items()}
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._control(method, path, body)
        for route in ROUTES:
            match = route.pattern.match(path)
            if match and route.method == method:
                params = {name: unquote(value) for name, value in match.groupdict().items()}
                account_id, region = self._signer(authorization)
                request = Request(route.operation, method, path, query, params, account_id, region)
                break
        else:
            return _error(NotFound(f"No operation for {method} {path}"))
        self._record(request)
        self._latency()
        if request.region in self.disabled_regions:
            # What an endpoint of an opt-in region the account has not enabled answers.
            return _error(UnrecognizedClient("The security token included in the request is invalid."))
        try:
            return self._serve_api(request, query, body)
        except SandboxError as error:
            return _error(error)

    def _serve_api(self, request: Request, query: dict[str, str], body: bytes) -> Reply:
        tenant = self._tenant(request)
        self._admit(tenant.throttle)
        transforms = []
        for hook in self.fault_hooks:
            outcome = hook(request)
            if isinstance(outcome, tuple):
                return Reply(*outcome)
            if callable(outcome):
                transforms.append(outcome)
        interventions = self.faults.intercept(request, tenant.account)
        for intervention in interventions:
            if intervention.error is not None:
                raise intervention.error
            if intervention.drop:
                return Reply(-1, {}, b"", hold=intervention.hold)
        hold = sum(intervention.hold for intervention in interventions)
        shift = sum(intervention.position_shift for intervention in interventions)
        if shift and "position" in query:
            query = {**query, "position": _shift_position(query["position"], shift)}
        response = tenant.api.handle(request.operation, request.params, query, body)
        payload = _apply(interventions, json.dumps(response).encode())
        for transform in transforms:
            payload = transform(payload)
        served: tuple[ServedUsage, ...] = ()
        if request.operation == "GetUsage":
            served = _served_usage(request.params["plan"], response, payload)
        return Reply(200, {"Content-Type": "application/json"}, payload, hold=hold, served=served)

    def _admit(self, throttle: AccountThrottle | None) -> None:
        if throttle is None:
            return
        try:
            throttle.admit()
        except Throttled:
            with self._lock:
                self.throttled += 1
            raise

    # -- the sandbox's own controls -------------------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> Reply:
        parts = path[len(CONTROL_PREFIX) :].strip("/").split("/")
        if parts[0] != "faults" or len(parts) > 2:
            return _error(NotFound(f"No sandbox control at {path}: use {CONTROL_PREFIX}/faults"))
        try:
            if len(parts) == 2:
                if method != "DELETE":
                    raise BadRequest(f"{method} {path} is not allowed: use DELETE to remove one fault")
                try:
                    self.faults.remove(int(parts[1]))
                except (ValueError, KeyError):
                    raise NotFound(f"No fault {parts[1]!r}: GET {CONTROL_PREFIX}/faults lists them") from None
                return _json(200, self.faults.describe())
            if method == "GET":
                return _json(200, {**self.faults.describe(), "served": self._served_summary()})
            if method == "DELETE":
                self.faults.reset()
                with self._lock:
                    self.served.clear()
                return _json(200, self.faults.describe())
            if method == "POST":
                return _json(201, {"ids": self._add_faults(body)})
            raise BadRequest(f"{method} {path} is not allowed: use GET, POST or DELETE")
        except SandboxError as error:
            return _error(error)

    def _add_faults(self, body: bytes) -> list[int]:
        try:
            document = json.loads(body or b"null")
        except ValueError:
            raise BadRequest(
                'The body is not JSON: send a fault object, or {"seed": n, "faults": [...]}'
            ) from None
        try:
            if isinstance(document, dict) and ("faults" in document or "seed" in document):
                unknown = sorted(set(document) - {"seed", "faults"})
                if unknown:
                    raise BadRequest(f"Unknown field {unknown[0]!r}: send a fault object, or seed and faults")
                seed, listed = document.get("seed"), document.get("faults", [])
                if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                    raise BadRequest(f"seed={seed!r} is not allowed: use a whole number")
                if not isinstance(listed, list):
                    raise BadRequest(f"faults={listed!r} is not allowed: use a list of fault objects")
                faults = [Fault.from_json(item) for item in listed]
                if seed is not None:
                    self.faults.seed = seed
            else:
                faults = [Fault.from_json(document)]
        except InvalidFault as error:
            raise BadRequest(str(error)) from None
        return [self.faults.add_fault(fault) for fault in faults]

    def _served_summary(self) -> dict[str, int]:
        with self._lock:
            return {
                "intact": len({(s.usage_plan_id, s.api_key_id) for s in self.served if s.intact}),
                "spoiled": sum(1 for s in self.served if not s.intact),
            }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle on, the body waits for the
            # client's delayed ACK of the headers: about 40 ms added to every call.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = server.dispatch(self.command, self.path, body, self.headers.get("Authorization"))
                if reply.hold > 0:
                    server._stopping.wait(reply.hold)
                if reply.status < 0:  # a fault asked for the connection to be reset
                    self._reset()
                    return
                headers = {"x-amzn-RequestId": f"sandbox-{time.monotonic_ns()}", **reply.headers}
                # Recorded before the body goes out, so that a client reading the record right after
                # its call finds it there; taken back if the body could not be sent.
                server._record_served(reply.served)
                try:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                except OSError:  # the client went away: nothing was served
                    server._unrecord_served(reply.served)
                    self.close_connection = True

            def _reset(self) -> None:
                # Linger 0: close() sends a TCP RST instead of a FIN, as a crashed peer or a proxy would.
                self.close_connection = True
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()

            do_GET = _serve  # noqa: N815 - http.server's naming
            do_PATCH = _serve  # noqa: N815
            do_POST = _serve  # noqa: N815
            do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                return

        return Handler


def _error(error: SandboxError) -> Reply:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": f"{error.code}:", **error.headers()}
    return Reply(error.status, headers, json.dumps({"message": error.message}).encode())


def _apply(interventions: list[Intervention], payload: bytes) -> bytes:
    """The faults' edits of an answer: JSON rewrites first, then byte corruption."""
    rewrites = [i.rewrite for i in interventions if i.rewrite is not None]
    if rewrites:
        edited = json.loads(payload)
        for rewrite in rewrites:
            rewrite(edited)
        payload = json.dumps(edited).encode()
    for intervention in interventions:
        if intervention.corrupt is not None:
            payload = intervention.corrupt(payload)
    return payload


def _json(status: int, body: object) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


def _served_usage(plan_id: str, response: dict[str, Any], payload: bytes) -> tuple[ServedUsage, ...]:
    """Each key's daily usage that the answer carries, and whether it is what the account holds."""
    truth = response.get("values") or {}
    try:
        sent = json.loads(payload)
    except ValueError:
        return ()
    values = sent.get("values") if isinstance(sent, dict) else None
    if not isinstance(values, dict):
        return ()
    start, end = str(response.get("startDate")), str(response.get("endDate"))
    return tuple(
        ServedUsage(plan_id, key_id, start, end, daily, key_id in truth and daily == truth[key_id])
        for key_id, daily in values.items()
    )
