"""``python -m bench.endpoint``: the quota endpoint (``GET /quota``, issue 27) at 10,000 keys.

What it shows, each number measured in the run:

1. a 10,000-key account in 300 usage plans, every plan on API stages of its own (``tier000`` to
   ``tier299`` of API :data:`API`, every fifth plan also a stage of :data:`SECOND_API`), every tenth
   key also in a second plan: one full scan as the Lambda handler runs it with ``KEY_SNAPSHOTS=on``
   (:func:`quota_monitor.run_targets` with a :class:`~quota_monitor.publish.snapshots.SnapshotStore`),
   keeping the scan's :class:`~quota_monitor.models.ScanResult`;
2. for every key and every stage of every plan of the key, the endpoint's handler called in process
   with the proxy event (payload 1.0) API Gateway sends for that key on that stage: status 200, the
   plan of that stage as ``quota``, its numbers exactly as GetUsage gave them in the scan, the
   ``RateLimit-Policy`` and ``RateLimit`` fields parsed as RFC 8941 structured fields, and one
   DynamoDB request a call (counted by botocore's ``before-call`` and ``before-send`` events on the
   handler's own client);
3. for a sample of keys, another key's id in the path, the query string, the headers, the body, the
   path parameters and the stage variables: still the caller's numbers; without ``apiKeyId``: 500
   and no data; the key's value (``requestContext.identity.apiKey`` and ``x-api-key``) in no answer
   and no log line (the handler's own log stream, and every logger at DEBUG during the sample);
   then the fast path's items written for every key (the worst case: every key watched) and the
   sample asked again;
4. the warm handler's latency (p50, p99 over every call of step 2, against moto on loopback) and its
   cold import in fresh processes (median of :data:`IMPORT_RUNS`);
5. what the snapshots cost: the items written, their bytes and the write units DynamoDB bills
   (a unit per KB begun, each item), the read units of a request (eventually consistent: half a
   unit per 4 KB begun, each item; an item that does not exist at the minimum, half a unit), against
   the cost model (:class:`quota_monitor_cli.cost.Usage`), and the monthly dollars from
   ``quota-monitor cost``.

How: moto (DynamoDB, SNS, CloudWatch) runs in a process of its own (:func:`bench.host.serve_moto`),
the API Gateway sandbox in another (``--serve``: :func:`serve`), both on loopback; the scan and the
endpoint's calls run in this process, each with the clients the Lambda functions make.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.host import ROOT, HostProcess, child_env, reply, serve_lines, start_moto, unknown, write_section

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import ModuleType

    from quota_monitor import KeyUsage, ScanResult, SnapshotsWritten

START, END = "<!-- bench:endpoint:start -->", "<!-- bench:endpoint:end -->"
ACCOUNT = "123456789012"
REGION = "us-east-1"
#: The provider's REST APIs: every plan meters a stage of the first, every fifth one of the second too.
API = "a1b2c3d4e5"
SECOND_API = "f6g7h8i9j0"
TABLE = "quota-alert-state"
#: Every key's value (``identity.apiKey``, ``x-api-key``) starts with this: never to be seen again.
SECRET = "qm-bench-secret-value-"  # noqa: S105 - a marker to look for, not a secret
SCHEDULE_MINUTES = "15"
IMPORT_RUNS = 7

#: Targets (issue 27).
MAX_P99_MS = 20.0
MAX_IMPORT_MS = 300.0
MAX_MONTHLY_USD = 3.0
MAX_USD_PER_MILLION = 1.0


@dataclass(frozen=True)
class Shape:
    """The account, and how much of the benchmark to run (the test runs it tiny)."""

    keys: int = 10_000
    plans: int = 300
    big_plans: int = 2
    big_plan_keys: int = 1_234
    #: Every this many keys is also in a second plan (half the plans further on).
    second_plan_every: int = 10
    #: Every this many plans also meters a stage of :data:`SECOND_API`.
    two_stage_every: int = 5
    #: Keys asked with another key's id everywhere the caller controls, and without ``apiKeyId``.
    security_sample: int = 200
    import_runs: int = IMPORT_RUNS
    #: Run ``quota-monitor cost`` for the monthly dollars.
    costs: bool = True

    def host_args(self) -> list[str]:
        return [
            f"--keys={self.keys}",
            f"--plans={self.plans}",
            f"--big-plans={self.big_plans}",
            f"--big-plan-keys={self.big_plan_keys}",
            f"--second-plan-every={self.second_plan_every}",
            f"--two-stage-every={self.two_stage_every}",
        ]


# -- the host: the sandbox, seeded --------------------------------------------------------------------
def serve(shape: Shape) -> int:
    """Seed the account, serve API Gateway on loopback, print its URL; answer ``layout`` and ``quit``."""
    import random  # noqa: PLC0415

    from apigw_sandbox.account import SandboxAccount  # noqa: PLC0415
    from apigw_sandbox.seed import seed_key_usage, seed_scale_account  # noqa: PLC0415
    from apigw_sandbox.server import SandboxServer  # noqa: PLC0415
    from bench.sandbox_host import truth  # noqa: PLC0415

    started = time.monotonic()
    account = SandboxAccount(seed=27)
    seeded = seed_scale_account(
        account,
        plans=shape.plans,
        keys=shape.keys,
        big_plans=shape.big_plans,
        big_plan_keys=shape.big_plan_keys,
        history_days=30,
    )
    plan_ids = list(seeded.plans.values())
    for n, plan_id in enumerate(plan_ids):
        account.add_api_stage(plan_id, API, f"tier{n:03d}")
        if n % shape.two_stage_every == 0:
            account.add_api_stage(plan_id, SECOND_API, f"v2-tier{n:03d}")
    rng = random.Random(27)  # noqa: S311 - a repeatable account, not a secret
    for index, key in enumerate(seeded.keys):
        other = plan_ids[(plan_ids.index(key.plan_id) + len(plan_ids) // 2) % len(plan_ids)]
        if index % shape.second_plan_every or other == key.plan_id:
            continue
        account.attach_key(other, key.key_id)
        seed_key_usage(
            account, other, key.key_id, utilization=round(rng.uniform(1, 99), 1), rng=rng, history_days=30
        )
    seconds = time.monotonic() - started
    sandbox = SandboxServer(account)
    sandbox.start()
    reply({"ready": True, "apigateway": sandbox.url, "seconds_to_seed": seconds})

    def answer(command: dict[str, Any]) -> dict[str, Any]:
        if command.get("op") != "layout":
            return unknown(command)
        return {
            "stages": {
                plan.id: [[s.api_id, s.stage] for s in plan.api_stages] for plan in account.plans.values()
            },
            "keys": {
                key_id: [plan.id for plan in account.plans.values() if key_id in plan.key_ids]
                for key_id in account.keys
            },
            "truth": truth(account, account.today()),
        }

    try:
        serve_lines(answer)
    finally:
        sandbox.stop()
    return 0


# -- what the driver measures -------------------------------------------------------------------------
@dataclass
class Tally:
    """Calls of the endpoint and what went wrong with them."""

    calls: int = 0
    #: What differed, by what (status, quota plan, used, ...), and the first few in full.
    mismatches: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    #: Calls by the number of DynamoDB requests (HTTP, retries included) they made, and operations.
    requests: Counter[int] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    #: Answers holding a key's value.
    leaks: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    #: The snapshot bucket each call read (its read units).
    buckets: list[int] = field(default_factory=list)

    def miss(self, what: str, detail: str) -> None:
        self.mismatches[what] += 1
        if len(self.examples) < 5:
            self.examples.append(detail)


@dataclass
class Security:
    sampled: int = 0
    #: Another key's id everywhere the caller controls: answered for the caller, exactly.
    spoofed_ok: int = 0
    #: Without ``apiKeyId`` (absent, null, empty): 500, a problem, no data, no DynamoDB request.
    keyless: int = 0
    keyless_ok: int = 0
    #: Answers and log lines holding a key's value, and log lines seen.
    leaks_in_answers: int = 0
    leaks_in_logs: int = 0
    log_lines: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.spoofed_ok == self.sampled
            and self.keyless_ok == self.keyless
            and not self.leaks_in_answers
            and not self.leaks_in_logs
        )


@dataclass
class Outcome:
    shape: Shape
    keys: int = 0
    keys_in_two_plans: int = 0
    plans: int = 0
    stages: int = 0
    seconds_to_seed: float = 0.0
    scan_seconds: float = 0.0
    #: Step 2: every call, checks included.
    ask_seconds: float = 0.0
    scan_failures: list[str] = field(default_factory=list)
    #: (plan, key) pairs whose scan numbers differ from the sandbox's own accounting.
    scan_vs_sandbox: int = 0
    snapshot_items: int = 0
    snapshot_bytes: int = 0
    snapshot_errors: list[str] = field(default_factory=list)
    item_bytes: list[int] = field(default_factory=list)
    write_units: int = 0
    model_write_units: float = 0.0
    read_units: float = 0.0
    read_units_with_fast: float = 0.0
    model_read_units: float = 0.0
    model_read_units_without_fast: float = 0.0
    calls: Tally = field(default_factory=Tally)
    with_fast: Tally = field(default_factory=Tally)
    security: Security = field(default_factory=Security)
    load_before: float = 0.0
    load_after: float = 0.0
    import_ms: list[float] = field(default_factory=list)
    first_answer_ms: list[float] = field(default_factory=list)
    #: ``quota-monitor cost`` totals: without the endpoint, with it and 0 requests, with 1 million.
    monthly_usd: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def one_request_a_call(self) -> bool:
        tallies = (self.calls, self.with_fast)
        return all(set(t.requests) == {1} and set(t.operations) == {"BatchGetItem"} for t in tallies) and all(
            t.operations.total() == t.calls for t in tallies
        )

    @property
    def correct(self) -> bool:
        return (
            self.calls.calls > 0
            and not self.calls.mismatches
            and not self.with_fast.mismatches
            and not self.calls.leaks
            and self.one_request_a_call
            and self.security.ok
            and not self.scan_failures
            and not self.scan_vs_sandbox
            and not self.snapshot_errors
        )


# -- the proxy event ----------------------------------------------------------------------------------
def secret_of(key_id: str) -> str:
    return f"{SECRET}{key_id}-{uuid.uuid5(uuid.NAMESPACE_URL, key_id).hex}"


def proxy_event(key_id: str | None, api_id: str, stage: str, *, secret: str) -> dict[str, Any]:
    """What API Gateway sends a Lambda proxy integration (payload 1.0) for ``GET /quota`` with a key."""
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    host = f"{api_id}.execute-api.{REGION}.amazonaws.com"
    headers = {
        "Accept": "application/json",
        "Host": host,
        "User-Agent": "billing-client/2.3 (+https://example.com)",
        "X-Amzn-Trace-Id": f"Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}",
        "X-Forwarded-For": "203.0.113.7, 198.51.100.20",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        "x-api-key": secret,
    }
    identity: dict[str, Any] = {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "sourceIp": "203.0.113.7",
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": headers["User-Agent"],
        "user": None,
        "apiKey": secret,
        "apiKeyId": key_id,
    }
    return {
        "resource": "/quota",
        "path": "/quota",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "q7x1yz",
            "resourcePath": "/quota",
            "httpMethod": "GET",
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}/quota",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": api_id,
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": identity,
            "domainName": host,
            "deploymentId": "d3pl0y",
            "apiId": api_id,
        },
        "body": None,
        "isBase64Encoded": False,
    }


def spoofed(event: dict[str, Any], other: str) -> dict[str, Any]:
    """``event`` with ``other``'s id everywhere the caller controls: path, query, headers, body..."""
    headers = {
        **event["headers"],
        "x-api-key-id": other,
        "apiKeyId": other,
        "x-amzn-apigateway-api-key-id": other,
    }
    query = {"apiKeyId": other, "key": other, "api_key_id": other}
    return {
        **event,
        "path": f"/quota/{other}",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {name: [value] for name, value in query.items()},
        "pathParameters": {"apiKeyId": other},
        "stageVariables": {"apiKeyId": other},
        "body": json.dumps({"apiKeyId": other, "requestContext": {"identity": {"apiKeyId": other}}}),
        "apiKeyId": other,
    }


def without_key(event: dict[str, Any], how: int) -> dict[str, Any]:
    """``event`` as API Gateway sends it for a route without ``apiKeyRequired``: no ``apiKeyId``
    (absent, null or empty, by ``how``), the value the client sent still in its ``x-api-key``."""
    context = event["requestContext"]
    identity = {name: value for name, value in context["identity"].items() if name != "apiKeyId"}
    if how % 3 == 1:
        identity["apiKeyId"] = None
    elif how % 3 == 2:
        identity["apiKeyId"] = ""
    return {**event, "requestContext": {**context, "identity": identity}}


# -- the checks ---------------------------------------------------------------------------------------
def _at(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def structured(value: str | None) -> list[tuple[object, dict[str, object]]] | None:
    """An RFC 8941 List field's members and their parameters; None when absent or not a valid field."""
    from http_sfv.list import List  # noqa: PLC0415

    if value is None:
        return None
    parsed = List()
    try:
        parsed.parse(value.encode())
    except ValueError:
        return None
    return [(item.value, dict(item.params)) for item in parsed]


def window_seconds(usage: KeyUsage) -> int:
    start = datetime.combine(usage.period_start, datetime.min.time(), UTC)
    return int((usage.resets_at - start).total_seconds())


def field_problems(headers: Mapping[str, str], usage: KeyUsage) -> list[str]:
    """What is wrong with the ``RateLimit-Policy`` and ``RateLimit`` fields of a fresh answer."""
    window = window_seconds(usage)
    policy = structured(headers.get("RateLimit-Policy"))
    problems = []
    if policy != [("quota", {"q": usage.limit, "w": window})]:
        problems.append(f"RateLimit-Policy {headers.get('RateLimit-Policy')!r}")
    limit = structured(headers.get("RateLimit"))
    (name, params), *others = limit or [(None, {})]
    until = params.get("t")
    if (
        others
        or name != "quota"
        or params.get("r") != max(0, usage.remaining or 0)
        or not isinstance(until, int)
        or not 0 <= until <= window
    ):
        problems.append(f"RateLimit {headers.get('RateLimit')!r}")
    return problems


def answer_problems(
    answer: Mapping[str, Any], *, key_id: str, plan_id: str, usage: KeyUsage | None, plans: Sequence[str]
) -> list[str]:
    """What differs between the endpoint's answer and what GetUsage gave the scan for the key and plan."""
    if answer.get("statusCode") != 200:
        return [f"status {answer.get('statusCode')}"]
    if usage is None:
        return ["not in the scan"]
    body = json.loads(answer["body"])
    quota = body.get("quota") or {}
    problems = [] if body.get("apiKeyId") == key_id else [f"apiKeyId {body.get('apiKeyId')}"]
    if quota.get("usagePlanId") != plan_id:
        return [*problems, f"quota plan {quota.get('usagePlanId')} for {plan_id}"]
    expected = {
        "used": usage.used,
        "remaining": usage.remaining,
        "limit": usage.limit,
        "period": usage.period,
        "periodStart": usage.period_start.isoformat(),
    }
    problems += [
        f"{name} {quota.get(name)!r} for {value!r}"
        for name, value in expected.items()
        if quota.get(name) != value
    ]
    resets = _at(quota.get("resetsAt"))
    if resets is None or abs(resets - usage.resets_at) >= timedelta(milliseconds=1):
        problems.append(f"resetsAt {quota.get('resetsAt')} for {usage.resets_at.isoformat()}")
    if sorted(p.get("usagePlanId") for p in body.get("plans", [])) != sorted(plans):
        problems.append("plans")
    if body.get("stale") is not False:
        problems.append("stale")
    return problems + field_problems(answer.get("headers") or {}, usage)


class DynamoDBCounter:
    """Every request the handler's DynamoDB client makes: operations (``before-call``) and HTTP
    requests, retries included (``before-send``)."""

    def __init__(self, dynamodb: Any) -> None:
        self.operations: Counter[str] = Counter()
        self.sent = 0
        dynamodb.meta.events.register("before-call.dynamodb", self._call)
        dynamodb.meta.events.register("before-send.dynamodb", self._send)

    def _call(self, model: Any, **_: Any) -> None:
        self.operations[model.name] += 1

    def _send(self, **_: Any) -> None:
        self.sent += 1

    def reset(self) -> None:
        self.operations.clear()
        self.sent = 0


class LogCapture:
    """What the handler logs, as Lambda would ship it (its Powertools handler's stream), and every
    other logger's records (with ``level``), and anything printed."""

    def __init__(self, service: str, level: int = logging.WARNING) -> None:
        self.service, self.level = service, level
        self.stream = io.StringIO()
        self.records: list[str] = []

    @contextlib.contextmanager
    def capturing(self) -> Iterator[LogCapture]:
        endpoint_logger, root = logging.getLogger(self.service), logging.getLogger()
        streams = [h for h in endpoint_logger.handlers if isinstance(h, logging.StreamHandler)]
        before = [h.setStream(self.stream) for h in streams]
        levels = (endpoint_logger.level, root.level)
        capture = _ListHandler(self.records)
        root.addHandler(capture)
        root.setLevel(self.level)
        endpoint_logger.setLevel(min(self.level, endpoint_logger.level or logging.INFO))
        try:
            with contextlib.redirect_stdout(self.stream), contextlib.redirect_stderr(self.stream):
                yield self
        finally:
            root.removeHandler(capture)
            endpoint_logger.setLevel(levels[0])
            root.setLevel(levels[1])
            for handler, stream in zip(streams, before, strict=True):
                if stream is not None:
                    handler.setStream(stream)

    @property
    def text(self) -> str:
        return self.stream.getvalue() + "\n".join(self.records)

    @property
    def lines(self) -> int:
        return len([line for line in self.stream.getvalue().splitlines() if line.strip()]) + len(self.records)


class _ListHandler(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self._records = records

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(f"{record.name} {record.getMessage()} {json.dumps(vars(record), default=str)}")


# -- the driver ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """The account as the sandbox holds it: each plan's stages, each key's plans, its own numbers."""

    stages: dict[str, list[tuple[str, str]]]
    plans_of: dict[str, list[str]]
    truth: dict[tuple[str, str], tuple[int, int | None]]

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> Layout:
        return cls(
            stages={plan: [(a, s) for a, s in stages] for plan, stages in answer["stages"].items()},
            plans_of={key: list(plans) for key, plans in answer["keys"].items() if plans},
            truth={(row[0], row[1]): (row[2], row[3]) for row in answer["truth"]},
        )

    def asks(self) -> Iterator[tuple[str, str, str, str]]:
        """(key, plan, API, stage): every key, every stage of each of its plans."""
        for key_id, plans in sorted(self.plans_of.items()):
            for plan_id in plans:
                for api_id, stage in self.stages[plan_id]:
                    yield key_id, plan_id, api_id, stage


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values``, as it was afterwards."""
    saved = dict(os.environ)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def create_state(url: str) -> dict[str, str]:
    """The monitor's state table and alert topic in moto: its ``ALERT_*`` settings."""
    import boto3  # noqa: PLC0415

    make: Any = boto3.client
    dynamodb, sns = make("dynamodb", endpoint_url=url), make("sns", endpoint_url=url)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = sns.create_topic(Name="quota-alerts")["TopicArn"]
    return {"ALERT_TABLE_NAME": TABLE, "ALERT_TOPIC_ARN": topic}


def full_scan() -> tuple[ScanResult, SnapshotsWritten | None, float]:
    """One full run as the handler makes it with ``KEY_SNAPSHOTS=on`` (settings from the environment)."""
    import boto3  # noqa: PLC0415

    from quota_monitor import (  # noqa: PLC0415
        AlertClients,
        Invocation,
        Settings,
        SnapshotStore,
        Target,
        TargetAccess,
        client,
        cloudwatch_client,
        run_targets,
        target_clients,
    )

    settings = Settings.from_env(dict(os.environ))
    assert settings.alerts is not None
    assert settings.key_snapshots
    dynamodb = client("dynamodb")
    access = TargetAccess(
        Target(ACCOUNT, REGION, home=True),
        base=boto3.Session(),
        make=lambda session, region: target_clients(session, region, max_workers=settings.scan.max_workers),
    )
    started = time.monotonic()
    report = run_targets(
        settings,
        [access],
        Invocation.lasting(timedelta(minutes=15)),
        health_cloudwatch=cloudwatch_client,
        alert_clients=AlertClients(sns=client("sns"), dynamodb=dynamodb, region=REGION),
        snapshots=SnapshotStore(dynamodb, settings.alerts.table_name),
    )
    (run,) = report.runs
    return run.result, report.snapshots, time.monotonic() - started


def load_endpoint() -> ModuleType:
    """The endpoint's handler module, imported afresh with this environment (it reads it at import)."""
    import importlib  # noqa: PLC0415

    return importlib.reload(importlib.import_module("quota_monitor.quota_handler"))


def ask_all(
    endpoint: ModuleType,
    layout: Layout,
    usages: Mapping[tuple[str, str], KeyUsage],
    asks: Sequence[tuple[str, str, str, str]],
    tally: Tally,
) -> None:
    """Call the warm handler for each of ``asks``, checking every answer and counting its requests."""
    from apigw_sandbox.local import LambdaContextStandIn  # noqa: PLC0415
    from quota_monitor import snapshot_bucket  # noqa: PLC0415

    context = LambdaContextStandIn(
        function_name="quota-endpoint",
        memory_limit_in_mb=128,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:quota-endpoint",
    )
    counter = DynamoDBCounter(endpoint.store()._db)
    for key_id, plan_id, api_id, stage in asks:
        event = proxy_event(key_id, api_id, stage, secret=secret_of(key_id))
        counter.reset()
        started = time.perf_counter()
        answer = endpoint.handler(event, context)
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        tally.calls += 1
        tally.requests[counter.sent] += 1
        tally.operations.update(counter.operations)
        tally.buckets.append(snapshot_bucket(key_id))
        if SECRET in json.dumps(answer):
            tally.leaks += 1
        problems = answer_problems(
            answer,
            key_id=key_id,
            plan_id=plan_id,
            usage=usages.get((plan_id, key_id)),
            plans=layout.plans_of[key_id],
        )
        for problem in problems:
            tally.miss(problem.split(" ")[0], f"{key_id} on {api_id}/{stage}: {problem}")


def check_security(
    endpoint: ModuleType,
    layout: Layout,
    usages: Mapping[tuple[str, str], KeyUsage],
    sample: Sequence[tuple[str, str, str, str]],
) -> Security:
    """Another key's id everywhere the caller controls, and no ``apiKeyId`` at all (module doc, 3)."""
    from apigw_sandbox.local import LambdaContextStandIn  # noqa: PLC0415

    found = Security()
    context = LambdaContextStandIn(function_name="quota-endpoint", memory_limit_in_mb=128)
    counter = DynamoDBCounter(endpoint.store()._db)
    keys = sorted(layout.plans_of)
    plan_ids = set(layout.stages)
    answers: list[dict[str, Any]] = []
    logs = LogCapture(str(endpoint.logger.service), logging.DEBUG)
    with logs.capturing():
        for n, (key_id, plan_id, api_id, stage) in enumerate(sample):
            other = keys[(keys.index(key_id) + 1) % len(keys)]
            event = proxy_event(key_id, api_id, stage, secret=secret_of(key_id))
            counter.reset()
            answer = endpoint.handler(spoofed(event, other), context)
            answers.append(answer)
            found.sampled += 1
            problems = answer_problems(
                answer,
                key_id=key_id,
                plan_id=plan_id,
                usage=usages.get((plan_id, key_id)),
                plans=layout.plans_of[key_id],
            )
            if other in str(answer.get("body")):
                problems.append(f"{other} in the answer")
            if counter.sent != 1:
                problems.append(f"{counter.sent} DynamoDB requests")
            found.spoofed_ok += not problems
            found.problems += [f"{key_id} naming {other}: {p}" for p in problems[:2]]
            counter.reset()
            answer = endpoint.handler(without_key(spoofed(event, other), n), context)
            answers.append(answer)
            found.keyless += 1
            problems = keyless_problems(answer, plan_ids, keys=(key_id, other))
            if counter.sent:
                problems.append(f"{counter.sent} DynamoDB requests")
            found.keyless_ok += not problems
            found.problems += [f"{key_id} without apiKeyId: {p}" for p in problems[:2]]
    found.leaks_in_answers = sum(1 for answer in answers if SECRET in json.dumps(answer))
    found.leaks_in_logs = logs.text.count(SECRET)
    found.log_lines = logs.lines
    return found


def keyless_problems(answer: Mapping[str, Any], plan_ids: set[str], *, keys: Sequence[str]) -> list[str]:
    """A 500 problem and nothing else: no numbers, no plan, no key."""
    problems = [] if answer.get("statusCode") == 500 else [f"status {answer.get('statusCode')}"]
    headers = answer.get("headers") or {}
    if headers.get("Content-Type") != "application/problem+json":
        problems.append(f"Content-Type {headers.get('Content-Type')}")
    if {"RateLimit", "RateLimit-Policy"} & set(headers):
        problems.append("RateLimit fields")
    body = json.loads(answer.get("body") or "{}")
    if set(body) != {"type", "title", "status", "detail", "instance"}:
        problems.append(f"fields {sorted(body)}")
    text = json.dumps(body)
    if any(plan_id in text for plan_id in plan_ids) or any(key in text for key in keys):
        problems.append("a plan or key id in the answer")
    return problems


def with_fast_items(
    endpoint: ModuleType,
    layout: Layout,
    scan: ScanResult,
    sample: Sequence[tuple[str, str, str, str]],
) -> tuple[Tally, list[int]]:
    """The fast path's items written for every key (the worst case, every key watched; read now, so
    newer than the full scan's), then ``sample`` asked again: the items' sizes, and the tally."""
    from quota_monitor import SNAPSHOT_BUCKETS, SnapshotStore, fast_snapshot_key  # noqa: PLC0415

    store = SnapshotStore(endpoint.store()._db, TABLE)
    assert scan.target is not None
    store.put_fast(scan.target, [replace(key, read=None) for key in scan.keys], now=datetime.now(UTC))
    sizes = item_sizes(
        endpoint.store()._db, [fast_snapshot_key(scan.target, n) for n in range(SNAPSHOT_BUCKETS)]
    )
    tally = Tally()
    usages = {(key.usage_plan_id, key.api_key_id): key for key in scan.keys}
    ask_all(endpoint, layout, usages, sample, tally)
    return tally, sizes


def item_bytes(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size as DynamoDB bills it: each attribute's name and value (a number: a byte per two
    significant digits and one)."""
    size = 0
    for name, value in item.items():
        ((kind, raw),) = value.items()
        size += len(name.encode())
        if kind == "S":
            size += len(str(raw).encode())
        elif kind == "B":
            size += len(raw)
        elif kind == "N":
            digits = str(raw).lstrip("-").replace(".", "").strip("0")
            size += 1 + math.ceil(len(digits) / 2)
        else:
            size += len(json.dumps(raw).encode())
    return size


def item_sizes(dynamodb: Any, pks: Sequence[str]) -> list[int]:
    """The billed size of each of ``pks``'s items, in order; 0 for one that does not exist."""
    found: dict[str, int] = {}
    for start in range(0, len(pks), 100):
        wanted: list[Any] = [{"pk": {"S": pk}} for pk in pks[start : start + 100]]
        while wanted:
            answer = dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": wanted}})
            found |= {item["pk"]["S"]: item_bytes(item) for item in answer["Responses"].get(TABLE, [])}
            wanted = answer.get("UnprocessedKeys", {}).get(TABLE, {}).get("Keys", [])
    return [found.get(pk, 0) for pk in pks]


def read_units(size: int) -> float:
    """Eventually consistent: half a unit per 4 KB begun; an item that does not exist, the minimum."""
    return max(1, math.ceil(size / 4096)) / 2


def cold_starts(runs: int, event: dict[str, Any], env: Mapping[str, str]) -> tuple[list[float], list[float]]:
    """The handler module's import in fresh processes (ms), and to its first answer (import, client,
    the read, the answer)."""
    probe = (
        "import time; t = time.perf_counter(); import quota_monitor.quota_handler as h; "
        "i = time.perf_counter(); import json, sys; "
        "from apigw_sandbox.local import LambdaContextStandIn as C; e = json.load(sys.stdin); "
        "a = time.perf_counter(); r = h.handler(e, C(function_name='quota-endpoint')); "
        "d = time.perf_counter(); assert r['statusCode'] == 200, r; "
        "print(json.dumps([(i - t) * 1000, (i - t + d - a) * 1000]))"
    )
    imported, answered = [], []
    for _ in range(runs):
        done = subprocess.run(  # noqa: S603 - our own interpreter, no shell
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=dict(env),
            input=json.dumps(event),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        first, second = json.loads(done.stdout.strip().splitlines()[-1])
        imported.append(float(first))
        answered.append(float(second))
    return imported, answered


def monthly_costs(keys: int, plans: int) -> dict[str, float]:
    """``quota-monitor cost --json`` totals: without the endpoint, with it at 0 and 1 million requests."""
    runs = {
        "without": [],
        "endpoint, 0 requests": ["--quota-endpoint", "--endpoint-requests", "0"],
        "endpoint, 1 million requests": ["--quota-endpoint", "--endpoint-requests", "1"],
    }
    totals: dict[str, float] = {}
    for name, extra in runs.items():
        done = subprocess.run(  # noqa: S603 - our own CLI, no shell
            [
                sys.executable,
                "-m",
                "quota_monitor_cli",
                "cost",
                "--keys",
                str(keys),
                "--plans",
                str(plans),
                "--json",
                *extra,
            ],
            cwd=ROOT,
            env=child_env({}),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        estimate = json.loads(done.stdout)
        totals[name] = sum(float(item["usd"]) for item in estimate["lineItems"])
    return totals


def measure(shape: Shape) -> Outcome:
    """Everything of the module doc, at ``shape``."""
    started = time.monotonic()
    outcome = Outcome(shape)
    env = child_env({})
    with (
        start_moto(env) as moto,
        HostProcess("bench.endpoint", "--serve", *shape.host_args(), env=env) as host,
    ):
        url = str(moto.ready["url"])
        settings = {"AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_API_GATEWAY": str(host.ready["apigateway"])}
        outcome.seconds_to_seed = float(host.ready["seconds_to_seed"])
        layout = Layout.of(host.ask(op="layout"))
        with environment({**env, **settings}):
            settings |= create_state(url)
            settings |= {
                "KEY_SNAPSHOTS": "on",
                "SCHEDULE_MINUTES": SCHEDULE_MINUTES,
                "APIGATEWAY_MAX_RPS": "10",
            }
            os.environ.update(settings)
            scan = _scan(outcome, layout)
            _ask(outcome, layout, scan)
            if shape.import_runs:
                asked = next(layout.asks())
                event = proxy_event(asked[0], asked[2], asked[3], secret=secret_of(asked[0]))
                probe_env = child_env({**settings, "LAMBDA_TASK_ROOT": str(ROOT / "lambdas")})
                outcome.import_ms, outcome.first_answer_ms = cold_starts(shape.import_runs, event, probe_env)
    if shape.costs:
        outcome.monthly_usd = monthly_costs(shape.keys, shape.plans)
    outcome.seconds = time.monotonic() - started
    return outcome


def _scan(outcome: Outcome, layout: Layout) -> ScanResult:
    from quota_monitor_cli.cost import Usage  # noqa: PLC0415

    scan, written, outcome.scan_seconds = full_scan()
    outcome.keys = len(layout.plans_of)
    outcome.keys_in_two_plans = sum(1 for plans in layout.plans_of.values() if len(plans) > 1)
    outcome.plans = len(layout.stages)
    outcome.stages = sum(len(stages) for stages in layout.stages.values())
    outcome.scan_failures = [failure.describe() for failure in scan.failures]
    scanned = {(key.usage_plan_id, key.api_key_id): (key.used, key.remaining) for key in scan.keys}
    outcome.scan_vs_sandbox = len(set(scanned.items()) ^ set(layout.truth.items()))
    if written is not None:
        outcome.snapshot_items, outcome.snapshot_bytes = written.items, written.bytes
        outcome.snapshot_errors = list(written.errors)
    usage = Usage(keys=outcome.shape.keys, plans=outcome.shape.plans)
    outcome.model_write_units = usage.snapshot_write_units
    outcome.model_read_units = usage.endpoint_read_units
    outcome.model_read_units_without_fast = replace(usage, fast_minutes=0).endpoint_read_units
    return scan


def _ask(outcome: Outcome, layout: Layout, scan: ScanResult) -> None:
    from quota_monitor import SNAPSHOT_BUCKETS, snapshot_key  # noqa: PLC0415

    assert scan.target is not None
    endpoint = load_endpoint()
    usages = {(key.usage_plan_id, key.api_key_id): key for key in scan.keys}
    asks = list(layout.asks())
    outcome.load_before = os.getloadavg()[0]
    logs = LogCapture(str(endpoint.logger.service))
    started = time.monotonic()
    with logs.capturing():
        ask_all(endpoint, layout, usages, asks, outcome.calls)
    outcome.ask_seconds = time.monotonic() - started
    outcome.load_after = os.getloadavg()[0]
    outcome.calls.leaks += logs.text.count(SECRET)
    every = max(1, len(asks) // max(1, outcome.shape.security_sample))
    sample = asks[::every][: outcome.shape.security_sample]
    outcome.security = check_security(endpoint, layout, usages, sample)
    outcome.item_bytes = item_sizes(
        endpoint.store()._db, [snapshot_key(scan.target, n) for n in range(SNAPSHOT_BUCKETS)]
    )
    outcome.write_units = sum(math.ceil(size / 1024) for size in outcome.item_bytes)
    outcome.read_units = statistics.fmean(
        read_units(outcome.item_bytes[bucket]) + read_units(0) for bucket in outcome.calls.buckets
    )
    outcome.with_fast, fast_sizes = with_fast_items(endpoint, layout, scan, sample)
    outcome.read_units_with_fast = statistics.fmean(
        read_units(outcome.item_bytes[bucket]) + read_units(fast_sizes[bucket])
        for bucket in outcome.with_fast.buckets
    )


# -- the report ---------------------------------------------------------------------------------------
def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else math.nan


def _mark(good: bool) -> str:
    return "✅" if good else "❌"


def report(outcome: Outcome) -> tuple[str, bool]:
    """The markdown section, and whether every correctness target was met (timings are reported)."""
    calls, security = outcome.calls, outcome.security
    p50, p99 = percentile(calls.latencies_ms, 0.50), percentile(calls.latencies_ms, 0.99)
    imported = statistics.median(outcome.import_ms) if outcome.import_ms else None
    first = statistics.median(outcome.first_answer_ms) if outcome.first_answer_ms else None
    costs = outcome.monthly_usd
    snapshots_usd = costs["endpoint, 0 requests"] - costs["without"] if costs else None
    per_million = costs["endpoint, 1 million requests"] - costs["endpoint, 0 requests"] if costs else None
    requests = ", ".join(f"{n} on {count:,} calls" for n, count in sorted(calls.requests.items()))
    operations = ", ".join(f"{name} {count:,}" for name, count in sorted(calls.operations.items()))
    rows = [
        ("calls: every key, every stage of each of its plans", f"{calls.calls:,}", "", ""),
        (
            "answers differing from GetUsage's numbers (status, plan of the stage, used, remaining, limit, "
            "period, periodStart, resetsAt, the RateLimit fields)",
            f"{calls.mismatches.total():,}" + (f" ({_counts(calls.mismatches)})" if calls.mismatches else ""),
            "0",
            _mark(not calls.mismatches),
        ),
        (
            "DynamoDB requests a call",
            f"{requests} ({operations})",
            "1",
            _mark(set(calls.requests) == {1} and set(calls.operations) == {"BatchGetItem"}),
        ),
        (
            f"with the fast path's items too (every key, newer): {outcome.with_fast.calls:,} calls again",
            f"{outcome.with_fast.mismatches.total():,} differing, "
            + ", ".join(f"{n} request(s) on {c:,}" for n, c in sorted(outcome.with_fast.requests.items())),
            "0, 1",
            _mark(not outcome.with_fast.mismatches and set(outcome.with_fast.requests) == {1}),
        ),
        (
            "another key's id in path, query, headers, body, path parameters, stage variables",
            f"{security.spoofed_ok:,} of {security.sampled:,} answered the caller's own numbers",
            "all",
            _mark(security.spoofed_ok == security.sampled),
        ),
        (
            "no `apiKeyId` (absent, null, empty): 500 problem, no data, no read",
            f"{security.keyless_ok:,} of {security.keyless:,}",
            "all",
            _mark(security.keyless_ok == security.keyless),
        ),
        (
            "the key's value in an answer or a log line",
            f"{security.leaks_in_answers + calls.leaks} in answers, {security.leaks_in_logs} in "
            f"{security.log_lines:,} log lines",
            "0",
            _mark(not (security.leaks_in_answers or calls.leaks or security.leaks_in_logs)),
        ),
        (
            "warm handler, in process, against moto on loopback: p50 / p99",
            f"{p50:.1f} / {p99:.1f} ms (load {outcome.load_before:.2f} before, "
            f"{outcome.load_after:.2f} after)",
            f"p99 < {MAX_P99_MS:g} ms",
            _mark(p99 < MAX_P99_MS),
        ),
    ]
    if imported is not None and first is not None:
        rows += [
            (
                f"cold import of `quota_monitor.quota_handler`, median of {len(outcome.import_ms)}",
                f"{imported:.0f} ms (to the first answer: {first:.0f} ms)",
                f"< {MAX_IMPORT_MS:g} ms",
                _mark(imported < MAX_IMPORT_MS),
            )
        ]
    rows += [
        (
            "snapshot items a full scan writes (against the cost model: ✅ when it does not underestimate)",
            f"{outcome.snapshot_items} items, {outcome.snapshot_bytes:,} bytes compressed "
            f"({min(outcome.item_bytes, default=0):,} to {max(outcome.item_bytes, default=0):,} bytes "
            f"an item billed): {outcome.write_units} write units",
            f"model: {outcome.model_write_units:g}",
            _mark(outcome.write_units <= outcome.model_write_units),
        ),
        (
            "read units a request (eventually consistent), against the cost model",
            f"{outcome.read_units:.2f} after a full scan (no fast item: its minimum); "
            f"{outcome.read_units_with_fast:.2f} with a fast item holding every key",
            f"model: {outcome.model_read_units:g} with the fast path, "
            f"{outcome.model_read_units_without_fast:g} without",
            _mark(outcome.read_units_with_fast <= outcome.model_read_units),
        ),
    ]
    if snapshots_usd is not None and per_million is not None:
        rows += [
            (
                "`quota-monitor cost`: the endpoint with 0 requests, against without",
                f"${costs['endpoint, 0 requests']:.2f} vs ${costs['without']:.2f} a month: "
                f"+${snapshots_usd:.2f}",
                f"≤ ${MAX_MONTHLY_USD:g}",
                _mark(snapshots_usd <= MAX_MONTHLY_USD),
            ),
            (
                "… and a million requests more",
                f"+${per_million:.2f}",
                f"≤ ${MAX_USD_PER_MILLION:g}",
                _mark(per_million <= MAX_USD_PER_MILLION),
            ),
        ]
    table = ["| what | measured | target | |", "| --- | --- | --- | --- |"]
    table += [f"| {what} | {measured} | {target} | {mark} |" for what, measured, target, mark in rows]
    text = "\n".join([_prose(outcome), "", *table, "", *_notes(outcome)])
    return text.rstrip() + "\n", outcome.correct


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counter.most_common())


def _prose(outcome: Outcome) -> str:
    return (
        f"`python -m bench.endpoint`: one full scan with `KEY_SNAPSHOTS=on` of {outcome.keys:,} keys in "
        f"{outcome.plans} usage plans ({outcome.keys_in_two_plans:,} keys in two; {outcome.stages} API "
        "stages), "
        "as the Lambda handler runs it, against the API Gateway sandbox and moto (DynamoDB, SNS, CloudWatch) "
        "in processes of their own on loopback; then the endpoint's handler, warm and in process, called "
        "with API Gateway's proxy event (payload 1.0) for every key on every stage of each of its plans, "
        "each answer checked against the numbers GetUsage gave the scan (the `RateLimit-Policy` and "
        "`RateLimit` fields parsed as RFC 8941 structured fields) and the DynamoDB requests of the "
        f"handler's own client counted; {outcome.security.sampled} keys asked with another key's id "
        "everywhere the caller controls, and without `apiKeyId`, every logger captured; the handler's cold "
        "import in fresh processes; the snapshots' bytes and units against the cost model, and "
        "`quota-monitor cost`. Timings are reported, not enforced; the run fails on a wrong answer, a "
        "second request or a security check."
    )


def _notes(outcome: Outcome) -> list[str]:
    notes = [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, in "
        f"{outcome.seconds:,.0f} s (seeding {outcome.seconds_to_seed:,.0f} s, the full scan "
        f"{outcome.scan_seconds:,.0f} s at `APIGATEWAY_MAX_RPS=10`, the {outcome.calls.calls:,} calls "
        f"and their checks {outcome.ask_seconds:,.0f} s). The scan's numbers against the "
        f"sandbox's own accounting: {outcome.scan_vs_sandbox} (plan, key) pairs differ."
    ]
    notes.append(_snapshot_dollars(outcome))
    examples = [*outcome.calls.examples, *outcome.with_fast.examples, *outcome.security.problems[:5]]
    notes += [f"- {example}" for example in examples]
    if outcome.scan_failures or outcome.snapshot_errors:
        notes.append(f"Scan failures: {outcome.scan_failures}; snapshot errors: {outcome.snapshot_errors}")
    return notes


def _snapshot_dollars(outcome: Outcome) -> str:
    """The full scans' snapshot writes a month at the measured write units, and at the model's."""
    from quota_monitor_cli.cost import HOURS_PER_MONTH, PRICES  # noqa: PLC0415

    runs = HOURS_PER_MONTH * 60 / int(SCHEDULE_MINUTES)
    price = PRICES.dynamodb_per_million_writes / 1e6 * runs
    return (
        f"At the measured write units, a full scan every {SCHEDULE_MINUTES} minutes writes its snapshots "
        f"for ${outcome.write_units * price:.2f} a month (the model's units: "
        f"${outcome.model_write_units * price:.2f})."
    )


def plain(value: object) -> Any:
    """``value`` as JSON can hold it (``dataclasses.asdict`` would count a Counter's pairs)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(name): plain(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.endpoint", description=__doc__)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=int, default=Shape.keys)
    parser.add_argument("--plans", type=int, default=Shape.plans)
    parser.add_argument("--big-plans", type=int, default=Shape.big_plans)
    parser.add_argument("--big-plan-keys", type=int, default=Shape.big_plan_keys)
    parser.add_argument("--second-plan-every", type=int, default=Shape.second_plan_every)
    parser.add_argument("--two-stage-every", type=int, default=Shape.two_stage_every)
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the raw outcome to this file")
    args = parser.parse_args(argv)
    shape = Shape(
        keys=args.keys,
        plans=args.plans,
        big_plans=args.big_plans,
        big_plan_keys=args.big_plan_keys,
        second_plan_every=args.second_plan_every,
        two_stage_every=args.two_stage_every,
    )
    if args.serve:
        return serve(shape)
    outcome = measure(shape)
    text, ok = report(outcome)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(plain(outcome)), encoding="utf-8")
    if not args.no_docs:
        write_section(START, END, text, heading="The quota endpoint")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
