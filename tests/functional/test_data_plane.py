"""The sandbox's data plane over real HTTP: API keys checked against the usage plans of the stage, each
accepted request counted (GetUsage through the control plane shows it), the quota enforced, and the
Lambda proxy event (payload format 1.0) and answer as API Gateway makes them."""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from apigw_sandbox.account import ApiStage, Conflict, SandboxAccount
from apigw_sandbox.data_plane import DataPlane
from apigw_sandbox.local import LambdaContextStandIn, LocalCloud

NOW = datetime(2026, 3, 14, 15, 9, 26, 535_000, tzinfo=UTC)
TODAY = NOW.date().isoformat()
LIMIT = 3


@dataclass
class Echo:
    """A stand-in Lambda function: answers ``answer`` (the event it got, as JSON, by default) and keeps
    every event and context it was called with."""

    answer: Any = None
    raises: bool = False
    calls: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self.lock:
            self.calls.append((event, context))
        if self.raises:
            raise RuntimeError("the function failed")
        if self.answer is not None:
            return self.answer
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json", "X-Echo": "yes"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps(event),
            "isBase64Encoded": False,
        }

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for event, _ in self.calls]


@dataclass(frozen=True)
class Provider:
    """One account's REST API with a ``prod`` and a ``beta`` stage, a plan for each, and keys."""

    account: SandboxAccount
    api_id: str
    gold: str  # plan on prod, quota LIMIT a day
    beta: str  # plan on beta
    unstaged: str  # plan on no stage
    alice: str  # key in gold
    bob: str  # key in beta
    carol: str  # key in unstaged
    dave: str  # key in gold, disabled


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for header, value in self.headers if header.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture
def provider(cloud: LocalCloud) -> Provider:
    account = SandboxAccount(clock=lambda: NOW)
    cloud.sandbox.use_account(account)
    api_id = account.create_rest_api("provider")
    gold = account.create_usage_plan("gold", limit=LIMIT, period="DAY", api_stages=[(api_id, "prod")])
    beta = account.create_usage_plan("beta", limit=100, period="MONTH", api_stages=[(api_id, "beta")])
    unstaged = account.create_usage_plan("unstaged", limit=100, period="MONTH")
    keys = {name: account.create_api_key(name) for name in ("alice", "bob", "carol")}
    keys["dave"] = account.create_api_key("dave", enabled=False)
    for plan, name in ((gold, "alice"), (beta, "bob"), (unstaged, "carol"), (gold, "dave")):
        account.attach_key(plan, keys[name])
    return Provider(account, api_id, gold, beta, unstaged, **keys)


@pytest.fixture
def echo(data_plane: DataPlane, provider: Provider) -> Echo:
    function = Echo()
    data_plane.add_route(provider.api_id, "prod", "GET", "/quota", function, api_key_required=True)
    return function


def call(
    data_plane: DataPlane,
    api_id: str,
    path: str,
    *,
    method: str = "GET",
    stage: str = "prod",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> Response:
    """One request over HTTP to ``https://{api_id}.execute-api.{region}.amazonaws.com/{stage}{path}``."""
    url = urlsplit(data_plane.stage_url(api_id, stage) + path)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        connection.putrequest(method, url.path + (f"?{url.query}" if url.query else ""))
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        for name, value in pairs:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Response(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def key_value(provider: Provider, key_id: str) -> str:
    return provider.account.key(key_id).value


def used_today(apigateway: Any, plan_id: str, key_id: str) -> list[int]:
    """``[used, remaining]`` for today, as GetUsage returns it through the sandbox's control plane."""
    usage = apigateway.get_usage(usagePlanId=plan_id, keyId=key_id, startDate=TODAY, endDate=TODAY)
    return list(usage["items"][key_id][0])


# -- the API key ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["no key", "unknown value", "disabled key", "key id instead of value"])
def test_a_missing_or_invalid_key_is_forbidden(
    data_plane: DataPlane, provider: Provider, echo: Echo, apigateway: Any, who: str
) -> None:
    headers = {
        "no key": {},
        "unknown value": {"x-api-key": "not-a-key-value-of-this-account-at-all-000"},
        "disabled key": {"x-api-key": key_value(provider, provider.dave)},
        "key id instead of value": {"x-api-key": provider.alice},
    }[who]

    response = call(data_plane, provider.api_id, "/quota", headers=headers)

    assert (response.status, response.body) == (403, b'{"message":"Forbidden"}')
    assert response.header("Content-Type") == ["application/json"]
    assert response.header("x-amzn-ErrorType") == ["ForbiddenException"]
    assert echo.calls == []
    assert used_today(apigateway, provider.gold, provider.alice) == [0, LIMIT]
    assert used_today(apigateway, provider.gold, provider.dave) == [0, LIMIT]


@pytest.mark.parametrize("key", ["bob", "carol"])
def test_a_key_of_no_plan_of_this_stage_is_forbidden(
    data_plane: DataPlane, provider: Provider, echo: Echo, apigateway: Any, key: str
) -> None:
    """Bob's plan covers the beta stage only, Carol's no stage at all."""
    key_id = getattr(provider, key)
    plan_id = provider.beta if key == "bob" else provider.unstaged

    response = call(data_plane, provider.api_id, "/quota", headers={"x-api-key": key_value(provider, key_id)})

    assert (response.status, response.json()) == (403, {"message": "Forbidden"})
    assert echo.calls == []
    assert used_today(apigateway, plan_id, key_id) == [0, 100]


def test_a_valid_key_gets_the_functions_answer_and_is_counted(
    data_plane: DataPlane, provider: Provider, echo: Echo, apigateway: Any
) -> None:
    response = call(
        data_plane, provider.api_id, "/quota", headers={"x-api-key": key_value(provider, provider.alice)}
    )

    assert response.status == 200
    assert response.header("Content-Type") == ["application/json"]
    assert response.header("X-Echo") == ["yes"]
    assert response.header("Set-Cookie") == ["a=1", "b=2"]
    assert response.header("x-amzn-RequestId") == [response.json()["requestContext"]["requestId"]]
    assert response.json() == echo.events[0]
    assert used_today(apigateway, provider.gold, provider.alice) == [1, LIMIT - 1]


def test_over_the_quota_is_refused_and_not_counted(
    data_plane: DataPlane, provider: Provider, echo: Echo, apigateway: Any
) -> None:
    headers = {"x-api-key": key_value(provider, provider.alice)}

    statuses = [call(data_plane, provider.api_id, "/quota", headers=headers).status for _ in range(LIMIT)]
    refused = call(data_plane, provider.api_id, "/quota", headers=headers)

    assert statuses == [200] * LIMIT
    assert (refused.status, refused.body) == (429, b'{"message":"Limit Exceeded"}')
    assert refused.header("x-amzn-ErrorType") == ["LimitExceededException"]
    assert len(echo.calls) == LIMIT
    assert used_today(apigateway, provider.gold, provider.alice) == [LIMIT, 0]


def test_concurrent_requests_never_overrun_the_quota(
    data_plane: DataPlane, provider: Provider, echo: Echo, apigateway: Any
) -> None:
    provider.account.update_remaining(provider.gold, provider.alice, 7)
    headers = {"x-api-key": key_value(provider, provider.alice)}
    statuses: list[int] = []

    def one() -> None:
        status = call(data_plane, provider.api_id, "/quota", headers=headers).status
        with echo.lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 7 + [429] * 13
    assert len(echo.calls) == 7
    assert used_today(apigateway, provider.gold, provider.alice) == [7, 0]


# -- what the function answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        ({"statusCode": 500, "body": '{"error":"backend"}'}, 500, b'{"error":"backend"}'),
        ({"statusCode": 503, "headers": {"Retry-After": "3"}}, 503, b""),
        ("raises", 502, b'{"message": "Internal server error"}'),
        ({"body": "no status"}, 502, b'{"message": "Internal server error"}'),
        ({"statusCode": 200, "body": {"not": "a string"}}, 502, b'{"message": "Internal server error"}'),
        ({"statusCode": 200, "headers": {"X-Count": 3}}, 502, b'{"message": "Internal server error"}'),
        ({"statusCode": 200, "cookies": ["a=1"]}, 502, b'{"message": "Internal server error"}'),
        ([200, "not an object"], 502, b'{"message": "Internal server error"}'),
    ],
    ids=[
        "500",
        "503-no-body",
        "exception",
        "no-statusCode",
        "dict-body",
        "number-header",
        "v2-field",
        "list",
    ],
)
def test_whatever_the_function_answers_the_request_is_counted(
    data_plane: DataPlane,
    provider: Provider,
    echo: Echo,
    apigateway: Any,
    answer: Any,
    status: int,
    body: bytes,
) -> None:
    echo.raises, echo.answer = answer == "raises", None if answer == "raises" else answer

    response = call(
        data_plane, provider.api_id, "/quota", headers={"x-api-key": key_value(provider, provider.alice)}
    )

    assert (response.status, response.body) == (status, body)
    assert used_today(apigateway, provider.gold, provider.alice) == [1, LIMIT - 1]
    assert len(data_plane.failures) == (1 if status == 502 else 0)
    if status == 502:
        assert response.header("x-amzn-ErrorType") == ["InternalServerErrorException"]


def test_headers_and_multi_value_headers_are_merged_and_base64_bodies_decoded(
    data_plane: DataPlane, provider: Provider, echo: Echo
) -> None:
    echo.answer = {
        "statusCode": 201,
        "headers": {"Content-Type": "image/png", "X-One": "1", "X-Both": "same"},
        "multiValueHeaders": {"X-Both": ["same", "other"], "X-Many": ["a", "b"]},
        "body": "iVBORw0KGgo=",
        "isBase64Encoded": True,
    }

    response = call(
        data_plane, provider.api_id, "/quota", headers={"x-api-key": key_value(provider, provider.alice)}
    )

    assert (response.status, response.body) == (201, b"\x89PNG\r\n\x1a\n")
    assert response.header("Content-Type") == ["image/png"]
    assert response.header("X-One") == ["1"]
    assert response.header("X-Both") == ["same", "other"]
    assert response.header("X-Many") == ["a", "b"]


# -- the event --------------------------------------------------------------------------------------------


def test_the_function_gets_a_proxy_event_of_payload_format_1_0(
    data_plane: DataPlane, provider: Provider, echo: Echo
) -> None:
    value = key_value(provider, provider.alice)

    call(
        data_plane,
        provider.api_id,
        "/quota?window=day&tag=a&tag=b",
        headers=[
            ("x-api-key", value),
            ("User-Agent", "quota-client/1.0"),
            ("Accept", "a/b"),
            ("Accept", "c/d"),
        ],
    )

    [(event, context)] = echo.calls
    assert set(event) == {
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "body",
        "isBase64Encoded",
    }
    domain = f"{provider.api_id}.execute-api.us-east-1.amazonaws.com"
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/quota", "/quota", "GET")
    assert event["headers"]["Host"] == domain
    assert event["headers"]["x-api-key"] == value
    assert event["headers"]["User-Agent"] == "quota-client/1.0"
    assert event["headers"]["X-Forwarded-Proto"] == "https"
    assert event["headers"]["Accept"] == "c/d"
    assert event["multiValueHeaders"]["Accept"] == ["a/b", "c/d"]
    assert event["queryStringParameters"] == {"window": "day", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"window": ["day"], "tag": ["a", "b"]}
    assert (event["pathParameters"], event["stageVariables"]) == (None, None)
    assert (event["body"], event["isBase64Encoded"]) == (None, False)

    context_fields = event["requestContext"]
    assert {
        name: context_fields[name]
        for name in (
            "accountId",
            "apiId",
            "stage",
            "resourcePath",
            "path",
            "httpMethod",
            "requestTime",
            "requestTimeEpoch",
            "domainName",
            "domainPrefix",
            "protocol",
        )
    } == {
        "accountId": "123456789012",
        "apiId": provider.api_id,
        "stage": "prod",
        "resourcePath": "/quota",
        "path": "/prod/quota",
        "httpMethod": "GET",
        "requestTime": "14/Mar/2026:15:09:26 +0000",
        "requestTimeEpoch": 1_773_500_966_535,
        "domainName": domain,
        "domainPrefix": provider.api_id,
        "protocol": "HTTP/1.1",
    }
    assert len(context_fields["requestId"]) == 36
    assert context_fields["identity"] == {
        "apiKeyId": provider.alice,
        "apiKey": value,
        "sourceIp": "127.0.0.1",
        "userAgent": "quota-client/1.0",
        "accessKey": None,
        "accountId": None,
        "caller": None,
        "cognitoAuthenticationProvider": None,
        "cognitoAuthenticationType": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "principalOrgId": None,
        "user": None,
        "userArn": None,
    }
    assert isinstance(context, LambdaContextStandIn)
    assert context.invoked_function_arn.split(":")[3:5] == ["us-east-1", "123456789012"]


def test_path_parameters_body_and_stage_variables(
    data_plane: DataPlane, provider: Provider, apigateway: Any
) -> None:
    items, anything = Echo(), Echo()
    data_plane.add_route(provider.api_id, "prod", "POST", "/items/{id}", items, api_key_required=True)
    data_plane.add_route(provider.api_id, "prod", "ANY", "/{proxy+}", anything, api_key_required=True)
    data_plane.set_stage_variables(provider.api_id, "prod", {"table": "quota-prod"})
    headers = {"x-api-key": key_value(provider, provider.alice), "Content-Type": "application/json"}

    call(data_plane, provider.api_id, "/items/k%201", method="POST", headers=headers, body=b'{"a": 1}')
    call(data_plane, provider.api_id, "/items/k1/more", method="PUT", headers=headers, body=b"\xff\x00")

    [item] = items.events
    assert (item["resource"], item["path"], item["pathParameters"]) == (
        "/items/{id}",
        "/items/k 1",
        {"id": "k 1"},
    )
    assert (item["body"], item["isBase64Encoded"]) == ('{"a": 1}', False)
    assert item["stageVariables"] == {"table": "quota-prod"}
    [other] = anything.events
    assert (other["resource"], other["httpMethod"], other["pathParameters"]) == (
        "/{proxy+}",
        "PUT",
        {"proxy": "items/k1/more"},
    )
    assert (other["body"], other["isBase64Encoded"]) == ("/wA=", True)
    assert used_today(apigateway, provider.gold, provider.alice) == [2, LIMIT - 2]


def test_another_keys_id_in_a_header_or_the_query_changes_nothing(
    data_plane: DataPlane, provider: Provider, echo: Echo, apigateway: Any
) -> None:
    """Only the ``x-api-key`` value says whose request it is: nothing else the caller sends names the key."""
    provider.account.add_api_stage(provider.beta, provider.api_id, "prod")  # Bob's key now works on prod too
    headers = {
        "x-api-key": key_value(provider, provider.alice),
        "x-api-key-id": provider.bob,
        "apiKeyId": provider.bob,
    }

    response = call(
        data_plane, provider.api_id, f"/quota?apiKeyId={provider.bob}&keyId={provider.bob}", headers=headers
    )

    assert response.status == 200
    assert echo.events[0]["requestContext"]["identity"]["apiKeyId"] == provider.alice
    assert used_today(apigateway, provider.gold, provider.alice) == [1, LIMIT - 1]
    assert used_today(apigateway, provider.beta, provider.bob) == [0, 100]


def test_a_key_in_plans_of_two_stages_is_counted_in_the_plan_of_the_stage_called(
    data_plane: DataPlane, provider: Provider, apigateway: Any
) -> None:
    function = Echo()
    for stage in ("prod", "beta"):
        data_plane.add_route(provider.api_id, stage, "GET", "/quota", function, api_key_required=True)
    provider.account.attach_key(provider.beta, provider.alice)
    headers = {"x-api-key": key_value(provider, provider.alice)}

    assert call(data_plane, provider.api_id, "/quota", stage="beta", headers=headers).status == 200

    assert used_today(apigateway, provider.beta, provider.alice) == [1, 99]
    assert used_today(apigateway, provider.gold, provider.alice) == [0, LIMIT]
    assert function.events[0]["requestContext"]["stage"] == "beta"


def test_a_method_without_a_key_is_served_to_anyone_and_counts_nothing(
    data_plane: DataPlane, provider: Provider, apigateway: Any
) -> None:
    function = Echo()
    data_plane.add_route(provider.api_id, "prod", "GET", "/health", function, api_key_required=False)

    response = call(
        data_plane, provider.api_id, "/health", headers={"x-api-key": key_value(provider, provider.alice)}
    )

    assert response.status == 200
    identity = function.events[0]["requestContext"]["identity"]
    assert (identity["apiKey"], identity["apiKeyId"]) == (None, None)
    assert used_today(apigateway, provider.gold, provider.alice) == [0, LIMIT]


@pytest.mark.parametrize(
    ("method", "path", "stage"),
    [("GET", "/nothing", "prod"), ("POST", "/quota", "prod"), ("GET", "/quota", "dev"), ("GET", "", "prod")],
)
def test_no_method_there_is_a_missing_authentication_token(
    data_plane: DataPlane, provider: Provider, echo: Echo, method: str, path: str, stage: str
) -> None:
    response = call(
        data_plane,
        provider.api_id,
        path,
        method=method,
        stage=stage,
        headers={"x-api-key": key_value(provider, provider.alice)},
    )

    assert (response.status, response.body) == (403, b'{"message":"Missing Authentication Token"}')
    assert echo.calls == []


# -- the control plane ------------------------------------------------------------------------------------


def test_usage_plans_list_their_api_stages_as_api_gateway_does(provider: Provider, apigateway: Any) -> None:
    throttle = {"/quota/GET": {"burstLimit": 10, "rateLimit": 5.0}}
    provider.account.add_api_stage(provider.beta, "b2c3d4e5f6", "v1", throttle=throttle)

    plans = {plan["id"]: plan for plan in apigateway.get_usage_plans()["items"]}

    assert plans[provider.gold]["apiStages"] == [{"apiId": provider.api_id, "stage": "prod"}]
    assert plans[provider.beta]["apiStages"] == [
        {"apiId": provider.api_id, "stage": "beta"},
        {"apiId": "b2c3d4e5f6", "stage": "v1", "throttle": throttle},
    ]
    assert plans[provider.unstaged]["apiStages"] == []
    assert (
        apigateway.get_usage_plan(usagePlanId=provider.gold)["apiStages"] == plans[provider.gold]["apiStages"]
    )
    assert len(provider.api_id) == 10
    assert provider.api_id.isalnum()
    assert provider.api_id == provider.api_id.lower()


def test_a_key_is_in_one_plan_per_stage(provider: Provider) -> None:
    other = provider.account.create_usage_plan("other", api_stages=[ApiStage(provider.api_id, "prod")])

    provider.account.attach_key(provider.beta, provider.alice)  # beta covers another stage: allowed

    with pytest.raises(Conflict):
        provider.account.attach_key(other, provider.alice)
    with pytest.raises(Conflict):
        provider.account.add_api_stage(provider.beta, provider.api_id, "prod")
    assert provider.account.plan(provider.beta).api_stages == [ApiStage(provider.api_id, "beta")]
