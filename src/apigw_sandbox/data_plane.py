"""API Gateway's data plane on loopback: REST API stages whose methods have a Lambda proxy integration.

``https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/{path}`` is served as
``http://127.0.0.1:{port}/{api_id}/{stage}/{path}`` (:meth:`DataPlane.stage_url` gives the part before
``/{path}``). A method is a route: (API id, stage, HTTP method or ``ANY``, resource path such as
``/quota``, ``/items/{id}`` or ``/{proxy+}``), a Python callable standing for the Lambda function
(``handler(event, context) -> dict``), and whether the method requires an API key. Each request goes
through what API Gateway does, in its order:

1. no method for the path and HTTP method: 403 ``{"message":"Missing Authentication Token"}``;
2. a method that requires an API key: the ``x-api-key`` header must be the value of an enabled key that
   is in a usage plan covering this stage (``apiStages``), else 403 ``{"message":"Forbidden"}``;
3. the request is counted, for today, against that plan's quota for that key, before the function runs
   and whatever it answers; over the quota: 429 ``{"message":"Limit Exceeded"}``, not counted
   (:meth:`SandboxAccount.admit_request`);
4. the function gets the proxy event (payload format 1.0) and a :class:`LambdaContextStandIn`; event
   and answer go through JSON, as they do between API Gateway, Lambda and the runtime;
5. its answer (``statusCode``, ``headers``, ``multiValueHeaders``, ``body``, ``isBase64Encoded``) becomes
   the HTTP response; an exception, or an answer of another shape: 502
   ``{"message": "Internal server error"}`` (the failure is kept in :attr:`DataPlane.failures`).

Followed (AWS, API Gateway Developer Guide): "Lambda proxy integrations in API Gateway", sections
"Input format of a Lambda function for proxy integration" and "Output format of a Lambda function for
proxy integration" (set-up-lambda-proxy-integrations.html): the event's fields, ``headers`` and
``queryStringParameters`` holding the last value of a repeated name and the ``multiValue*`` fields every
value, ``headers`` and ``multiValueHeaders`` in an answer merged, any other answer shape a 502; "API Gateway
mapping template and access logging variable reference" ($context variables): ``requestContext`` keys
are ``$context`` names (``identity.apiKey`` the key's value and ``identity.apiKeyId`` its id, null for a
method without a key; ``path`` ``/{stage}/{path}``; ``requestTime`` in CLF; ``requestTimeEpoch`` in
milliseconds; ``domainName`` and ``domainPrefix``); "Gateway response types for API Gateway"
(MISSING_AUTHENTICATION_TOKEN and INVALID_API_KEY 403, QUOTA_EXCEEDED 429). The gateway responses'
messages and ``x-amzn-ErrorType`` values are the service's as commonly observed, not documented; only the
429's ``LimitExceededException`` was checked against a record (github.com/massif-press/compcon/issues/2237).

Not modelled: throttling (a plan's or a stage's rate and burst limits, ``apiStages[].throttle``, are
returned by the control plane but not enforced), authorizers and IAM authorization, an API key source of
``AUTHORIZER``, binary media types (a request body that is not UTF-8 goes base64-encoded; an answer with
``isBase64Encoded`` is always decoded), request validation, custom domains, the 29-second integration
timeout. Stricter than the service where it is lenient or undocumented: ``statusCode`` must be a number and
header values strings.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import REGION, LambdaContextStandIn
from apigw_sandbox.server import DEFAULT_ACCOUNT_ID

__all__ = ["DataPlane", "Integration", "MalformedAnswer", "Reply", "proxy_response"]

logger = logging.getLogger(__name__)

#: A Lambda proxy integration: the function's handler, called as Lambda calls it.
Integration = Callable[[dict[str, Any], Any], Any]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ANSWER_FIELDS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
#: Headers of the function's answer that API Gateway sets itself.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})


@dataclass(frozen=True)
class Reply:
    """One HTTP response of the data plane."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class RequestIds:
    """The ids API Gateway gives a request (``requestId``, ``extendedRequestId``, the X-Ray trace)."""

    request_id: str
    extended_request_id: str
    trace_id: str


class MalformedAnswer(Exception):  # noqa: N818 - API Gateway's words ("Malformed Lambda proxy response")
    """The function's answer is not a proxy response: API Gateway answers 502."""


@dataclass(frozen=True)
class Route:
    """A method of a REST API's stage and its Lambda proxy integration."""

    api_id: str
    stage: str
    method: str
    resource: str
    handler: Integration
    api_key_required: bool
    resource_id: str

    def match(self, method: str, path: str) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """How specific the match is (smaller: more) and the path parameters; None if no match.

        A literal segment beats ``{name}``, which beats ``{name+}``; a method beats ``ANY``."""
        if self.method not in (method, "ANY"):
            return None
        pattern, parts = _segments(self.resource), _segments(path)
        params: dict[str, str] = {}
        rank: list[int] = []
        for index, segment in enumerate(pattern):
            if segment.startswith("{") and segment.endswith("+}"):
                if index != len(pattern) - 1 or len(parts) <= index:
                    return None
                params[segment[1:-2]] = unquote("/".join(parts[index:]))
                rank.append(2)
                break
            if index >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                params[segment[1:-1]] = unquote(parts[index])
                rank.append(1)
            elif segment == unquote(parts[index]):
                rank.append(0)
            else:
                return None
        else:
            if len(parts) != len(pattern):
                return None
        return (*rank, 1 if self.method == "ANY" else 0), params


def _segments(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


class DataPlane:
    """REST API stages of one account and region, on loopback; a context manager, or ``start()`` and
    ``stop()``. ``account`` is the account whose keys and usage plans meter the requests, or a function
    giving it (so that the data plane follows an account swapped in later)."""

    def __init__(
        self,
        account: SandboxAccount | Callable[[], SandboxAccount] | None = None,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        region: str = REGION,
        port: int = 0,
    ) -> None:
        if account is None or isinstance(account, SandboxAccount):
            fixed = account or SandboxAccount()
            self._account: Callable[[], SandboxAccount] = lambda: fixed
        else:
            self._account = account
        self.account_id = account_id
        self.region = region
        #: Why each 502 was sent: the function's traceback, or what was wrong with its answer.
        self.failures: list[str] = []
        self._routes: dict[tuple[str, str, str, str], Route] = {}
        self._stage_variables: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def account(self) -> SandboxAccount:
        return self._account()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stage_url(self, api_id: str, stage: str) -> str:
        """Where ``https://{api_id}.execute-api.{region}.amazonaws.com/{stage}`` is served."""
        return f"{self.url}/{api_id}/{stage}"

    def domain_name(self, api_id: str) -> str:
        """The API's default endpoint, as the function sees it (``Host``, ``requestContext.domainName``)."""
        return f"{api_id}.execute-api.{self.region}.amazonaws.com"

    def start(self) -> DataPlane:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="apigw-data-plane", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> DataPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------------------------------
    def add_route(
        self,
        api_id: str,
        stage: str,
        method: str,
        resource: str,
        handler: Integration,
        *,
        api_key_required: bool,
    ) -> None:
        """Deploy ``method`` (or ``ANY``) on ``resource`` of ``api_id``'s ``stage``, integrated with
        ``handler`` by Lambda proxy; replaces the method if it is there already."""
        method = method.upper()
        if method not in _METHODS:
            raise ValueError(f"{method!r} is not an HTTP method API Gateway serves, or ANY")
        if not resource.startswith("/"):
            raise ValueError(f"resource path {resource!r} does not start with /")
        resource = "/" + resource.strip("/")
        with self._lock:
            same = [r for r in self._routes.values() if (r.api_id, r.resource) == (api_id, resource)]
            resource_id = same[0].resource_id if same else uuid.uuid4().hex[:6]
            self._routes[api_id, stage, method, resource] = Route(
                api_id, stage, method, resource, handler, api_key_required, resource_id
            )

    def set_stage_variables(self, api_id: str, stage: str, variables: Mapping[str, str]) -> None:
        """The stage's variables (``stageVariables`` in the event)."""
        with self._lock:
            self._stage_variables[api_id, stage] = dict(variables)

    def reset(self) -> None:
        """No routes, stage variables or failures (between tests)."""
        with self._lock:
            self._routes.clear()
            self._stage_variables.clear()
            self.failures.clear()

    # -- serving -------------------------------------------------------------------------------------
    def dispatch(
        self,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        source_ip: str = "127.0.0.1",
        protocol: str = "HTTP/1.1",
    ) -> Reply:
        """Serve one request to ``/{api_id}/{stage}/{path}`` as API Gateway would."""
        split = urlsplit(raw_path)
        parts = split.path.lstrip("/").split("/", 2)
        request_id = str(uuid.uuid4())
        if len(parts) < 2 or not parts[0] or not parts[1]:
            return _no_method(request_id)
        api_id, stage = parts[0], parts[1]
        path = "/" + (parts[2] if len(parts) > 2 else "")
        route, path_parameters = self._route(api_id, stage, method, path)
        if route is None:
            return _no_method(request_id)
        account = self.account
        api_key = _last(headers, "x-api-key")
        key_id: str | None = None
        if route.api_key_required:
            admission = account.admit_request(api_key, api_id, stage)
            if admission.outcome == "forbidden":
                return _gateway_response(403, "Forbidden", "ForbiddenException", request_id)
            if admission.outcome == "limit_exceeded":
                return _gateway_response(429, "Limit Exceeded", "LimitExceededException", request_id)
            key_id = admission.key.id if admission.key else None
        else:
            api_key = None
        now = account.now()
        ids = RequestIds(
            request_id,
            base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
            f"Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}",
        )
        with self._lock:
            stage_variables = dict(self._stage_variables.get((api_id, stage), {})) or None
        event = {
            "resource": route.resource,
            "path": unquote(path),
            "httpMethod": method,
            **_request_headers(headers, self.domain_name(api_id), source_ip, ids.trace_id),
            **_query(split.query),
            "pathParameters": path_parameters or None,
            "stageVariables": stage_variables,
            "requestContext": {
                "resourceId": route.resource_id,
                "resourcePath": route.resource,
                "httpMethod": method,
                "extendedRequestId": ids.extended_request_id,
                "requestTime": (
                    f"{now.day:02d}/{_MONTHS[now.month - 1]}/{now.year}:{now.strftime('%H:%M:%S')} +0000"
                ),
                "path": f"/{stage}{unquote(path)}",
                "accountId": self.account_id,
                "protocol": protocol,
                "stage": stage,
                "domainPrefix": api_id,
                "requestTimeEpoch": int(now.timestamp()) * 1000 + now.microsecond // 1000,
                "requestId": request_id,
                "identity": _identity(api_key, key_id, source_ip, _last(headers, "user-agent")),
                "domainName": self.domain_name(api_id),
                "apiId": api_id,
            },
            **_request_body(body),
        }
        reply = self._invoke(route, event)
        added = [
            ("x-amzn-RequestId", ids.request_id),
            ("x-amz-apigw-id", ids.extended_request_id),
            ("X-Amzn-Trace-Id", ids.trace_id),
        ]
        return Reply(reply.status, reply.headers + added, reply.body)

    def _route(self, api_id: str, stage: str, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        best: tuple[tuple[int, ...], Route, dict[str, str]] | None = None
        with self._lock:
            routes = [r for r in self._routes.values() if (r.api_id, r.stage) == (api_id, stage)]
        for route in routes:
            matched = route.match(method, path)
            if matched is not None and (best is None or matched[0] < best[0]):
                best = (matched[0], route, matched[1])
        return (None, {}) if best is None else (best[1], best[2])

    def _invoke(self, route: Route, event: dict[str, Any]) -> Reply:
        context = LambdaContextStandIn(
            invoked_function_arn=f"arn:aws:lambda:{self.region}:{self.account_id}:function:quota-monitor-local"
        )
        try:
            answer = json.loads(json.dumps(route.handler(json.loads(json.dumps(event)), context)))
            return proxy_response(answer)
        except Exception as error:  # noqa: BLE001 - any failure of the function is API Gateway's 502
            reason = (
                f"malformed Lambda proxy response: {error}"
                if isinstance(error, MalformedAnswer)
                else "".join(traceback.format_exception(error))
            )
            logger.warning("%s %s: 502, %s", event["httpMethod"], event["requestContext"]["path"], reason)
            with self._lock:
                self.failures.append(reason)
            body = b'{"message": "Internal server error"}'
            headers = [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", "InternalServerErrorException"),
            ]
            return Reply(502, headers, body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        plane = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # see SandboxServer: no delayed-ACK wait between headers and body

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = plane.dispatch(
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    source_ip=str(self.client_address[0]),
                    protocol=self.request_version,
                )
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(reply.body)
                    self.wfile.flush()
                except OSError:  # the client went away
                    self.close_connection = True

            do_GET = _serve  # noqa: N815 - http.server's naming
            do_POST = _serve  # noqa: N815
            do_PUT = _serve  # noqa: N815
            do_PATCH = _serve  # noqa: N815
            do_DELETE = _serve  # noqa: N815
            do_HEAD = _serve  # noqa: N815
            do_OPTIONS = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                return

        return Handler


def proxy_response(answer: object) -> Reply:
    """The HTTP response API Gateway makes of a Lambda proxy answer (payload format 1.0); raises
    :class:`MalformedAnswer` for anything else."""
    if not isinstance(answer, dict):
        raise MalformedAnswer(f"the answer is {type(answer).__name__}, not an object")
    unknown = sorted(set(answer) - _ANSWER_FIELDS)
    if unknown:
        raise MalformedAnswer(f"unexpected field(s) {', '.join(unknown)}")
    status = answer.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedAnswer(f"statusCode {status!r} is not an HTTP status")
    headers = _answer_headers(answer.get("headers") or {}, answer.get("multiValueHeaders") or {})
    return Reply(status, headers, _answer_body(answer.get("body"), answer.get("isBase64Encoded")))


def _answer_headers(single: object, multi: object) -> list[tuple[str, str]]:
    """``headers`` and ``multiValueHeaders`` merged, a value in both coming once; ``Content-Type``
    ``application/json`` unless the answer sets one."""
    if not isinstance(single, dict) or not all(isinstance(v, str) for v in single.values()):
        raise MalformedAnswer(f"headers {single!r} is not an object of strings")
    if not isinstance(multi, dict) or not all(
        isinstance(v, list) and all(isinstance(item, str) for item in v) for v in multi.values()
    ):
        raise MalformedAnswer(f"multiValueHeaders {multi!r} is not an object of lists of strings")
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, values in multi.items():
        merged.setdefault(name.lower(), (name, []))[1].extend(values)
    for name, value in single.items():
        listed = merged.setdefault(name.lower(), (name, []))[1]
        if value not in listed:
            listed.append(value)
    headers = [
        (name, value)
        for lower, (name, values) in merged.items()
        if lower not in _HOP_BY_HOP
        for value in values
    ]
    if "content-type" not in merged:
        headers.insert(0, ("Content-Type", "application/json"))
    return headers


def _answer_body(body: object, encoded: object) -> bytes:
    if encoded is not None and not isinstance(encoded, bool):
        raise MalformedAnswer(f"isBase64Encoded {encoded!r} is not a boolean")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedAnswer(f"body is {type(body).__name__}, not a string")
    if not encoded:
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise MalformedAnswer("isBase64Encoded, but the body is not base64") from None


def _no_method(request_id: str) -> Reply:
    return _gateway_response(
        403, "Missing Authentication Token", "MissingAuthenticationTokenException", request_id
    )


def _gateway_response(status: int, message: str, error_type: str, request_id: str) -> Reply:
    """One of API Gateway's own answers (a gateway response), with its default body."""
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", error_type),
    ]
    return Reply(status, headers, json.dumps({"message": message}, separators=(",", ":")).encode())


def _identity(
    api_key: str | None, key_id: str | None, source_ip: str, user_agent: str | None
) -> dict[str, Any]:
    """``requestContext.identity`` of a request without IAM or Cognito authorization."""
    return {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "apiKey": api_key,
        "apiKeyId": key_id,
        "principalOrgId": None,
        "sourceIp": source_ip,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": user_agent,
        "user": None,
    }


def _last(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [value for header, value in headers if header.lower() == name]
    return values[-1] if values else None


def _request_headers(
    headers: list[tuple[str, str]], domain: str, source_ip: str, trace_id: str
) -> dict[str, Any]:
    """``headers`` (each name's last value) and ``multiValueHeaders`` (every value), as the function sees
    them behind a Regional endpoint: ``Host`` the API's domain, ``X-Forwarded-*`` for the caller."""
    grouped: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        grouped.setdefault(name.lower(), (name, []))[1].append(value)
    forwarded = [*grouped.get("x-forwarded-for", ("", []))[1], source_ip]
    for name, values in (
        ("Host", [domain]),
        ("X-Amzn-Trace-Id", [trace_id]),
        ("X-Forwarded-For", [", ".join(forwarded)]),
        ("X-Forwarded-Port", ["443"]),
        ("X-Forwarded-Proto", ["https"]),
    ):
        grouped[name.lower()] = (grouped.get(name.lower(), (name, []))[0], values)
    multi = dict(grouped.values())
    return {
        "headers": {name: values[-1] for name, values in multi.items()},
        "multiValueHeaders": multi,
    }


def _query(query: str) -> dict[str, Any]:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return {"queryStringParameters": None, "multiValueQueryStringParameters": None}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    return {
        "queryStringParameters": {name: values[-1] for name, values in multi.items()},
        "multiValueQueryStringParameters": multi,
    }


def _request_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {"body": None, "isBase64Encoded": False}
    try:
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}
