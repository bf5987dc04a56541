"""``python -m bench.endpoint``: the quota endpoint (``GET /quota``, issue 27) at 10,000 keys.

1. A 10,000-key account in 300 usage plans, each on a stage of its own of :data:`API` (every fifth
   also on one of :data:`SECOND_API`), every tenth key in a second plan: one full scan as the Lambda
   handler runs it with ``KEY_SNAPSHOTS=on`` (:func:`quota_monitor.run_targets`).
2. The endpoint's handler, warm and in process, called with API Gateway's proxy event (payload 1.0)
   for every key on every stage of its plans: each answer against what GetUsage gave the scan (the
   RateLimit fields parsed as RFC 8941 structured fields), one DynamoDB request a call, p50 and p99.
3. A sample with another key's id everywhere the caller controls, and without ``apiKeyId``; the key's
   value in no answer and no log line; then the fast path's items for every key, the sample again.
4. The handler's cold import in fresh processes; the snapshots' bytes and billed units against the
   cost model (:class:`quota_monitor_cli.cost.Usage`), and ``quota-monitor cost``.

moto and the API Gateway sandbox (``--serve``: :func:`serve`) run in processes of their own on
loopback; the scan and the calls in this one, with the clients the Lambda functions make.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import logging
import math
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from logging.handlers import BufferingHandler as Records
from pathlib import Path
from subprocess import PIPE, check_output
from typing import TYPE_CHECKING, Any, cast
from unittest import mock

import boto3
from http_sfv.list import List

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import LambdaContextStandIn
from apigw_sandbox.seed import seed_key_usage, seed_scale_account
from apigw_sandbox.server import SandboxServer
from bench.host import ROOT, HostProcess, child_env, reply, serve_lines, start_moto, unknown, write_section
from bench.sandbox_host import truth
from quota_monitor import (
    SNAPSHOT_BUCKETS,
    AlertClients,
    Invocation,
    Settings,
    SnapshotStore,
    Target,
    TargetAccess,
    client,
    cloudwatch_client,
    fast_snapshot_key,
    run_targets,
    snapshot_bucket,
    snapshot_key,
    target_clients,
)
from quota_monitor_cli.cost import HOURS_PER_MONTH, PRICES, Usage

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from quota_monitor import KeyUsage, ScanResult

START, END = "<!-- bench:endpoint:start -->", "<!-- bench:endpoint:end -->"
ACCOUNT, REGION, TABLE = "123456789012", "us-east-1", "quota-alert-state"
#: The provider's REST APIs: every plan meters a stage of the first, every fifth one of the second too.
API, SECOND_API = "a1b2c3d4e5", "f6g7h8i9j0"
#: Every key's value (``identity.apiKey``, ``x-api-key``) starts with this: never to be seen again.
SECRET = "qm-bench-secret-value-"  # noqa: S105 - a marker to look for, not a secret
SCHEDULE_MINUTES = "15"
#: The monitor's settings in the run, besides where moto, the sandbox, the table and the topic are.
SETTINGS = {"KEY_SNAPSHOTS": "on", "SCHEDULE_MINUTES": SCHEDULE_MINUTES, "APIGATEWAY_MAX_RPS": "10"}
#: Targets (issue 27): warm p99 and cold import (ms), the snapshots a month, a million requests ($).
MAX_P99_MS, MAX_IMPORT_MS, MAX_MONTHLY_USD, MAX_USD_PER_MILLION = 20.0, 300.0, 3.0, 1.0
#: One call of the endpoint: (key, plan, API, stage).
Ask = tuple[str, str, str, str]


@dataclass(frozen=True)
class Shape:
    """The account, and how much of the benchmark to run; each whole number an option (``--keys``)."""

    keys: int = 10_000
    plans: int = 300
    big_plans: int = 2
    big_plan_keys: int = 1_234
    second_plan_every: int = 10  #: every this many keys is also in a second plan (half the plans further on)
    two_stage_every: int = 5  #: every this many plans also meters a stage of :data:`SECOND_API`
    security_sample: int = 200  #: keys asked with another key's id, and without ``apiKeyId``
    import_runs: int = 7
    costs: bool = True  #: run ``quota-monitor cost`` for the monthly dollars


SIZES = [f.name for f in fields(Shape) if f.type == "int"]


def serve(shape: Shape) -> int:
    """The host: the account seeded, API Gateway on loopback; ready with its :class:`Layout`."""
    started = time.monotonic()
    account = SandboxAccount(seed=27)
    sizes = {name: getattr(shape, name) for name in ("plans", "keys", "big_plans", "big_plan_keys")}
    seeded = seed_scale_account(account, **sizes, history_days=30)
    plan_ids = list(seeded.plans.values())
    for n, plan_id in enumerate(plan_ids):
        account.add_api_stage(plan_id, API, f"tier{n:03d}")
        if n % shape.two_stage_every == 0:
            account.add_api_stage(plan_id, SECOND_API, f"v2-tier{n:03d}")
    rng = random.Random(27)  # noqa: S311 - a repeatable account, not a secret
    for index, key in enumerate(seeded.keys):
        other = plan_ids[(plan_ids.index(key.plan_id) + len(plan_ids) // 2) % len(plan_ids)]
        if index % shape.second_plan_every == 0 and other != key.plan_id:
            account.attach_key(other, key.key_id)
            used = round(rng.uniform(1, 99), 1)
            seed_key_usage(account, other, key.key_id, utilization=used, rng=rng, history_days=30)
    seconds = time.monotonic() - started
    sandbox = SandboxServer(account)
    sandbox.start()
    plans = account.plans.values()
    layout = {
        "stages": {plan.id: [[s.api_id, s.stage] for s in plan.api_stages] for plan in plans},
        "plans_of": {k: ids for k in account.keys if (ids := [p.id for p in plans if k in p.key_ids])},
        "truth": truth(account, account.today()),
    }
    reply({"ready": True, "apigateway": sandbox.url, "seconds_to_seed": seconds, "layout": layout})
    try:
        serve_lines(unknown)
    finally:
        sandbox.stop()
    return 0


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
    leaks: int = 0  #: answers holding a key's value
    latencies_ms: list[float] = field(default_factory=list)
    buckets: list[int] = field(default_factory=list)  #: the snapshot bucket each call read (its read units)

    @property
    def one_request(self) -> bool:
        ops = self.operations
        return set(self.requests) == {1} and set(ops) == {"BatchGetItem"} and ops.total() == self.calls


@dataclass
class Security:
    sampled: int = 0
    spoofed_ok: int = 0  #: another key's id everywhere the caller controls: answered for the caller, exactly
    keyless: int = 0  #: without ``apiKeyId`` (absent, null, empty): a 500 problem, no data, no request
    keyless_ok: int = 0
    leaks_in_answers: int = 0  #: answers holding a key's value
    leaks_in_logs: int = 0  #: log lines holding one
    log_lines: int = 0  #: log lines seen
    problems: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    shape: Shape
    keys: int = 0
    keys_in_two_plans: int = 0
    plans: int = 0
    stages: int = 0
    seconds_to_seed: float = 0.0
    scan_seconds: float = 0.0
    ask_seconds: float = 0.0  #: step 2: every call, checks included
    scan_failures: list[str] = field(default_factory=list)
    scan_vs_sandbox: int = 0  #: (plan, key) pairs whose scan numbers differ from the sandbox's own accounting
    snapshot_items: int = 0
    snapshot_bytes: int = 0
    snapshot_errors: list[str] = field(default_factory=list)
    item_bytes: list[int] = field(default_factory=list)
    write_units: int = 0
    read_units: float = 0.0
    read_units_with_fast: float = 0.0
    calls: Tally = field(default_factory=Tally)
    with_fast: Tally = field(default_factory=Tally)
    security: Security = field(default_factory=Security)
    load_before: float = 0.0
    load_after: float = 0.0
    import_ms: list[float] = field(default_factory=list)
    first_answer_ms: list[float] = field(default_factory=list)
    monthly_usd: dict[str, float] = field(default_factory=dict)  #: ``quota-monitor cost`` totals
    seconds: float = 0.0

    @property
    def correct(self) -> bool:
        calls, fast, s = self.calls, self.with_fast, self.security
        wrong = calls.mismatches or fast.mismatches or self.scan_failures or self.scan_vs_sandbox
        leaked = calls.leaks or s.leaks_in_answers or s.leaks_in_logs or self.snapshot_errors
        secure = (s.spoofed_ok, s.keyless_ok) == (s.sampled, s.keyless)
        return calls.calls > 0 and calls.one_request and fast.one_request and secure and not (wrong or leaked)


def proxy_event(key_id: str, api_id: str, stage: str, other: str | None = None) -> dict[str, Any]:
    """What API Gateway sends a Lambda proxy integration (payload 1.0) for ``GET /quota`` with a key;
    with ``other``, that key's id in the path, query, headers, body, path parameters, stage variables."""
    secret = f"{SECRET}{key_id}-{uuid.uuid5(uuid.NAMESPACE_URL, key_id).hex}"
    now, host = datetime.now(UTC), f"{api_id}.execute-api.{REGION}.amazonaws.com"
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
    spoof = {"apiKeyId": other} if other else None
    query = dict.fromkeys(["apiKeyId", "key", "api_key_id"], other) if other else None
    if other:
        headers |= dict.fromkeys(["x-api-key-id", "apiKeyId", "x-amzn-apigateway-api-key-id"], other)
    identity = {
        **dict.fromkeys(["cognitoIdentityPoolId", "accountId", "cognitoIdentityId", "caller", "user"]),
        **dict.fromkeys(["principalOrgId", "accessKey", "cognitoAuthenticationType", "userArn"]),
        "cognitoAuthenticationProvider": None,
        "sourceIp": "203.0.113.7",
        "userAgent": headers["User-Agent"],
        "apiKey": secret,
        "apiKeyId": key_id,
    }
    return {
        "resource": "/quota",
        "path": f"/quota/{other}" if other else "/quota",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {name: [value] for name, value in (query or {}).items()} or None,
        "pathParameters": spoof,
        "stageVariables": spoof,
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
            "requestId": str(uuid.uuid4()),
            "identity": identity,
            "domainName": host,
            "deploymentId": "d3pl0y",
            "apiId": api_id,
        },
        "body": json.dumps({**spoof, "requestContext": {"identity": spoof}}) if spoof else None,
        "isBase64Encoded": False,
        **(spoof or {}),
    }


def structured(value: str | None) -> list[tuple[object, dict[str, object]]]:
    """An RFC 8941 List field's members and their parameters; none when absent or not a valid field."""
    parsed = List()
    try:
        parsed.parse((value or "").encode())
    except ValueError:
        return []
    return [(item.value, dict(item.params)) for item in parsed]


@dataclass
class Layout:
    """The account as the sandbox holds it: each plan's stages ([API, stage]), each key's plans, its
    own numbers ([plan, key, used, remaining]); and what GetUsage gave the scan."""

    stages: dict[str, list[list[str]]]
    plans_of: dict[str, list[str]]
    truth: list[list[Any]]
    usages: dict[tuple[str, str], KeyUsage] = field(default_factory=dict)

    @property
    def asks(self) -> list[Ask]:
        """Every key, every stage of each of its plans."""
        keys = sorted(self.plans_of.items())
        return [(k, p, api, stage) for k, plans in keys for p in plans for api, stage in self.stages[p]]

    def problems(self, answer: Mapping[str, Any], ask: Ask) -> list[str]:
        """What differs between the endpoint's answer and what GetUsage gave the scan for the key and plan."""
        key_id, plan_id = ask[:2]
        usage = self.usages.get((plan_id, key_id))
        if answer.get("statusCode") != 200:
            return [f"status {answer.get('statusCode')}"]
        if usage is None:
            return ["not in the scan"]
        body = json.loads(answer["body"])
        quota = body.get("quota") or {}
        problems = [] if body.get("apiKeyId") == key_id else [f"apiKeyId {body.get('apiKeyId')}"]
        if quota.get("usagePlanId") != plan_id:
            return [*problems, f"quota plan {quota.get('usagePlanId')} for {plan_id}"]
        expected = {name: getattr(usage, name) for name in ("used", "remaining", "limit", "period")}
        expected["periodStart"] = usage.period_start.isoformat()
        problems += [f"{k} {quota.get(k)!r} for {v!r}" for k, v in expected.items() if quota.get(k) != v]
        try:
            off = abs(datetime.fromisoformat(str(quota.get("resetsAt"))) - usage.resets_at)
        except (TypeError, ValueError):
            off = timedelta.max
        if off >= timedelta(milliseconds=1):
            problems.append(f"resetsAt {quota.get('resetsAt')} for {usage.resets_at.isoformat()}")
        if sorted(p.get("usagePlanId") for p in body.get("plans", [])) != sorted(self.plans_of[key_id]):
            problems.append("plans")
        if body.get("stale") is not False:
            problems.append("stale")
        start = datetime.combine(usage.period_start, datetime.min.time(), UTC)
        headers, window = answer.get("headers") or {}, int((usage.resets_at - start).total_seconds())
        if structured(headers.get("RateLimit-Policy")) != [("quota", {"q": usage.limit, "w": window})]:
            problems.append(f"RateLimit-Policy {headers.get('RateLimit-Policy')!r}")
        (name, params), *others = structured(headers.get("RateLimit")) or [(None, {})]
        until, remaining = params.get("t"), max(0, usage.remaining or 0)
        in_window = isinstance(until, int) and 0 <= until <= window
        if others or name != "quota" or params.get("r") != remaining or not in_window:
            problems.append(f"RateLimit {headers.get('RateLimit')!r}")
        return problems


class Endpoint:
    """The handler, imported afresh (it reads its settings at import), called warm; each call's DynamoDB
    operations (``before-call``) and HTTP requests, retries included (``before-send``), counted."""

    def __init__(self) -> None:
        self.module = importlib.reload(importlib.import_module("quota_monitor.quota_handler"))
        self.db = self.module.store()._db
        self.context = LambdaContextStandIn(function_name="quota-endpoint", memory_limit_in_mb=128)
        self.operations, self.sent = Counter[str](), list[str]()
        events = self.db.meta.events
        events.register("before-call.dynamodb", lambda model, **_: self.operations.update([model.name]))
        events.register("before-send.dynamodb", lambda event_name, **_: self.sent.append(event_name))

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.operations, self.sent = Counter[str](), list[str]()
        return cast("dict[str, Any]", self.module.handler(event, self.context))


@contextlib.contextmanager
def captured_logs(service: str, level: int) -> Iterator[list[str]]:
    """Log lines, when done: every logger's records at ``level``, what the handler's logger wrote to its
    stream (as Lambda would ship it), and anything printed."""
    lines: list[str] = []
    stream, capture = io.StringIO(), Records(sys.maxsize)
    logger, root = logging.getLogger(service), logging.getLogger()
    handlers = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    streams, levels = [h.setStream(stream) for h in handlers], (logger.level, root.level)
    root.addHandler(capture)
    root.setLevel(level)
    logger.setLevel(min(level, logger.level or logging.INFO))
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            yield lines
    finally:
        root.removeHandler(capture)
        logger.setLevel(levels[0])
        root.setLevel(levels[1])
        for handler, old in zip(handlers, streams, strict=True):
            if old is not None:
                handler.setStream(old)
        lines += [f"{r.name} {r.getMessage()} {json.dumps(vars(r), default=str)}" for r in capture.buffer]
        lines += [line for line in stream.getvalue().splitlines() if line.strip()]


def full_scan(outcome: Outcome, layout: Layout) -> ScanResult:
    """One full run as the handler makes it with ``KEY_SNAPSHOTS=on`` (settings from the environment)."""
    settings = Settings.from_env(dict(os.environ))
    assert settings.alerts is not None
    assert settings.key_snapshots
    dynamodb, run = client("dynamodb"), Invocation.lasting(timedelta(minutes=15))
    make = partial(target_clients, max_workers=settings.scan.max_workers)
    access = TargetAccess(Target(ACCOUNT, REGION, home=True), base=boto3.Session(), make=make)
    alerts = AlertClients(sns=client("sns"), dynamodb=dynamodb, region=REGION)
    store = SnapshotStore(dynamodb, settings.alerts.table_name)
    started = time.monotonic()
    report = run_targets(
        settings, [access], run, health_cloudwatch=cloudwatch_client, alert_clients=alerts, snapshots=store
    )
    outcome.scan_seconds = time.monotonic() - started
    (scanned,) = report.runs
    result, written = scanned.result, report.snapshots
    outcome.scan_failures = [failure.describe() for failure in result.failures]
    layout.usages.update({(key.usage_plan_id, key.api_key_id): key for key in result.keys})
    numbers = {(plan, key, usage.used, usage.remaining) for (plan, key), usage in layout.usages.items()}
    outcome.scan_vs_sandbox = len(numbers ^ {tuple(row) for row in layout.truth})
    if written is not None:
        outcome.snapshot_items, outcome.snapshot_bytes = written.items, written.bytes
        outcome.snapshot_errors = list(written.errors)
    return result


def ask_all(endpoint: Endpoint, layout: Layout, asks: Sequence[Ask], tally: Tally) -> None:
    """Call the warm handler for each of ``asks``, checking every answer and counting its requests."""
    for ask in asks:
        event = proxy_event(ask[0], *ask[2:])
        started = time.perf_counter()
        answer = endpoint(event)
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        tally.calls += 1
        tally.requests[len(endpoint.sent)] += 1
        tally.operations.update(endpoint.operations)
        tally.buckets.append(snapshot_bucket(ask[0]))
        tally.leaks += SECRET in json.dumps(answer)
        for problem in layout.problems(answer, ask):
            tally.mismatches[problem.split(" ")[0]] += 1
            if len(tally.examples) < 5:
                tally.examples.append(f"{ask[0]} on {ask[2]}/{ask[3]}: {problem}")


def check_security(endpoint: Endpoint, layout: Layout, sample: Sequence[Ask]) -> Security:
    """Another key's id everywhere the caller controls: the caller's numbers, one request. Without
    ``apiKeyId`` (absent, null, empty; the value still in ``x-api-key``): a 500 problem, no request."""
    found = Security(sampled=len(sample), keyless=len(sample))
    keys = sorted(layout.plans_of)
    answers: list[dict[str, Any]] = []
    with captured_logs(str(endpoint.module.logger.service), logging.DEBUG) as logs:
        for n, ask in enumerate(sample):
            key_id = ask[0]
            other = keys[(keys.index(key_id) + 1) % len(keys)]
            event = proxy_event(key_id, *ask[2:], other=other)
            answers.append(answer := endpoint(event))
            problems = layout.problems(answer, ask)
            problems += [f"{other} in the answer"] if other in str(answer.get("body")) else []
            problems += [f"{len(endpoint.sent)} DynamoDB requests"] if len(endpoint.sent) != 1 else []
            found.spoofed_ok += not problems
            found.problems += [f"{key_id} naming {other}: {p}" for p in problems[:2]]
            context = event["requestContext"]
            identity = {name: value for name, value in context["identity"].items() if name != "apiKeyId"}
            identity |= {"apiKeyId": None if n % 3 == 1 else ""} if n % 3 else {}
            answers.append(answer := endpoint({**event, "requestContext": {**context, "identity": identity}}))
            headers, body = answer.get("headers") or {}, json.loads(answer.get("body") or "{}")
            ids = [*layout.stages, key_id, other]
            checks = {
                f"status {answer.get('statusCode')}": answer.get("statusCode") == 500,
                f"Content-Type {headers.get('Content-Type')}": headers.get("Content-Type")
                == "application/problem+json",
                "RateLimit fields": not {"RateLimit", "RateLimit-Policy"} & set(headers),
                f"fields {sorted(body)}": set(body) == {"type", "title", "status", "detail", "instance"},
                "a plan or key id in the answer": not any(name in json.dumps(body) for name in ids),
                f"{len(endpoint.sent)} DynamoDB requests": not len(endpoint.sent),
            }
            found.keyless_ok += all(checks.values())
            found.problems += [f"{key_id} without apiKeyId: {p}" for p, ok in checks.items() if not ok][:2]
    found.leaks_in_answers = sum(1 for answer in answers if SECRET in json.dumps(answer))
    found.leaks_in_logs = "\n".join(logs).count(SECRET)
    found.log_lines = len(logs)
    return found


def call_endpoint(outcome: Outcome, layout: Layout, scan: ScanResult) -> None:
    """Steps 2 and 3 of the module doc, and the snapshots' billed sizes and units (4)."""
    target, endpoint, asks = scan.target, Endpoint(), layout.asks
    assert target is not None
    outcome.load_before = os.getloadavg()[0]
    started = time.monotonic()
    with captured_logs(str(endpoint.module.logger.service), logging.WARNING) as logs:
        ask_all(endpoint, layout, asks, outcome.calls)
    outcome.ask_seconds = time.monotonic() - started
    outcome.load_after = os.getloadavg()[0]
    outcome.calls.leaks += "\n".join(logs).count(SECRET)
    size = outcome.shape.security_sample
    sample = asks[:: max(1, len(asks) // max(1, size))][:size]
    outcome.security = check_security(endpoint, layout, sample)
    outcome.item_bytes = item_sizes(endpoint.db, [snapshot_key(target, n) for n in range(SNAPSHOT_BUCKETS)])
    outcome.write_units = sum(math.ceil(size / 1024) for size in outcome.item_bytes)
    outcome.read_units = read_units(outcome.item_bytes, [0] * SNAPSHOT_BUCKETS, outcome.calls.buckets)
    # The fast path's items for every key (the worst case, every key watched; newer than the scan's).
    keys, now = [replace(key, read=None) for key in scan.keys], datetime.now(UTC)
    SnapshotStore(endpoint.db, TABLE).put_fast(target, keys, now=now)
    fast = item_sizes(endpoint.db, [fast_snapshot_key(target, n) for n in range(SNAPSHOT_BUCKETS)])
    ask_all(endpoint, layout, sample, outcome.with_fast)
    outcome.read_units_with_fast = read_units(outcome.item_bytes, fast, outcome.with_fast.buckets)


def item_sizes(dynamodb: Any, pks: Sequence[str]) -> list[int]:
    """The size DynamoDB bills for each of ``pks``'s items (0 for one that does not exist): each
    attribute's name and value, a number a byte per two significant digits and one."""

    def size(name: str, value: Mapping[str, Any]) -> int:
        ((kind, raw),) = value.items()
        if kind == "N":
            return len(name.encode()) + 1 + math.ceil(len(raw.lstrip("-").replace(".", "").strip("0")) / 2)
        data = raw if kind == "B" else raw.encode() if kind == "S" else json.dumps(raw).encode()
        return len(name.encode()) + len(data)

    found: dict[str, int] = {}
    wanted: list[Any] = [{"pk": {"S": pk}} for pk in pks]  # at most 100: one target's buckets
    while wanted:
        answer = dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": wanted}})
        for item in answer["Responses"].get(TABLE, []):
            found[item["pk"]["S"]] = sum(size(name, value) for name, value in item.items())
        wanted = answer.get("UnprocessedKeys", {}).get(TABLE, {}).get("Keys", [])
    return [found.get(pk, 0) for pk in pks]


def read_units(full: Sequence[int], fast: Sequence[int], buckets: Sequence[int]) -> float:
    """A request's read units on average: its bucket's two items, eventually consistent (half a unit
    per 4 KB begun; an item that does not exist, the minimum)."""
    return statistics.fmean(sum(max(1, math.ceil(s[b] / 4096)) / 2 for s in (full, fast)) for b in buckets)


def python(*args: str, env: Mapping[str, str], stdin: str = "") -> str:
    """The output of ``python *args`` in a fresh process."""
    run = [sys.executable, *args]
    return check_output(run, cwd=ROOT, env=env, input=stdin, stderr=PIPE, text=True, timeout=120)  # noqa: S603


def cold_starts(runs: int, ask: Ask, env: Mapping[str, str]) -> tuple[list[float], list[float]]:
    """The handler module's import in fresh processes, and to its first answer (import, client, the
    read, the answer), in ms."""
    probe = (
        "import time; t = time.perf_counter(); import quota_monitor.quota_handler as h; "
        "i = time.perf_counter(); import json, sys; "
        "from apigw_sandbox.local import LambdaContextStandIn as C; e = json.load(sys.stdin); "
        "a = time.perf_counter(); r = h.handler(e, C(function_name='quota-endpoint')); "
        "d = time.perf_counter(); assert r['statusCode'] == 200, r; "
        "print(json.dumps([(i - t) * 1000, (i - t + d - a) * 1000]))"
    )
    event, env = json.dumps(proxy_event(ask[0], *ask[2:])), {**env, "LAMBDA_TASK_ROOT": str(ROOT / "lambdas")}
    outputs = [python("-c", probe, env=env, stdin=event) for _ in range(runs)]
    times = [json.loads(output.splitlines()[-1]) for output in outputs]
    return [float(t[0]) for t in times], [float(t[1]) for t in times]


def monthly_costs(keys: int, plans: int) -> dict[str, float]:
    """``quota-monitor cost --json`` totals: without the endpoint, with it at 0 and 1 million requests."""

    def total(*extra: str) -> float:
        cost = ["-m", "quota_monitor_cli", "cost", f"--keys={keys}", f"--plans={plans}", "--json", *extra]
        return sum(float(item["usd"]) for item in json.loads(python(*cost, env=child_env({})))["lineItems"])

    endpoint = ("--quota-endpoint", "--endpoint-requests")
    none, million = total(*endpoint, "0"), total(*endpoint, "1")
    return {"without": total(), "endpoint, 0 requests": none, "endpoint, 1 million requests": million}


def measure(shape: Shape) -> Outcome:
    """Everything of the module doc, at ``shape``."""
    started, outcome, env = time.monotonic(), Outcome(shape), child_env({})
    host_args = [f"--{name.replace('_', '-')}={getattr(shape, name)}" for name in SIZES]
    with start_moto(env) as moto, HostProcess("bench.endpoint", "--serve", *host_args, env=env) as host:
        outcome.seconds_to_seed = float(host.ready["seconds_to_seed"])
        layout = Layout(**host.ready["layout"])
        outcome.keys, outcome.plans = len(layout.plans_of), len(layout.stages)
        outcome.keys_in_two_plans = sum(len(plans) > 1 for plans in layout.plans_of.values())
        outcome.stages = sum(len(stages) for stages in layout.stages.values())
        env |= SETTINGS | {"AWS_ENDPOINT_URL": moto.ready["url"], "ALERT_TABLE_NAME": TABLE}
        env["AWS_ENDPOINT_URL_API_GATEWAY"] = host.ready["apigateway"]
        with mock.patch.dict(os.environ, env, clear=True):  # the monitor's state table and alert topic
            pk = {"AttributeName": "pk"}
            keys, types = [{**pk, "KeyType": "HASH"}], [{**pk, "AttributeType": "S"}]
            client("dynamodb").create_table(
                TableName=TABLE, KeySchema=keys, AttributeDefinitions=types, BillingMode="PAY_PER_REQUEST"
            )
            env["ALERT_TOPIC_ARN"] = client("sns").create_topic(Name="quota-alerts")["TopicArn"]
            os.environ.update(env)
            call_endpoint(outcome, layout, full_scan(outcome, layout))
            if shape.import_runs:
                outcome.import_ms, outcome.first_answer_ms = cold_starts(
                    shape.import_runs, layout.asks[0], env
                )
    if shape.costs:
        outcome.monthly_usd = monthly_costs(shape.keys, shape.plans)
    outcome.seconds = time.monotonic() - started
    return outcome


def report(outcome: Outcome) -> tuple[str, bool]:
    """The markdown section, and whether every correctness target was met (timings are reported)."""
    o, usd, mark = outcome, outcome.monthly_usd, {True: "✅", False: "❌"}
    calls, fast, security = outcome.calls, outcome.with_fast, outcome.security
    ordered = sorted(calls.latencies_ms) or [math.nan]
    p50, p99 = (ordered[max(0, math.ceil(share * len(ordered)) - 1)] for share in (0.50, 0.99))
    differing = ", ".join(f"{name} {count:,}" for name, count in calls.mismatches.most_common())
    requests = ", ".join(f"{n} on {count:,} calls" for n, count in sorted(calls.requests.items()))
    operations = ", ".join(f"{name} {count:,}" for name, count in sorted(calls.operations.items()))
    fast_requests = ", ".join(f"{n} request(s) on {count:,}" for n, count in sorted(fast.requests.items()))
    leaks, fast_ok = security.leaks_in_answers + calls.leaks, not fast.mismatches and fast.one_request
    usage = Usage(keys=o.shape.keys, plans=o.shape.plans)
    writes, reads = usage.snapshot_write_units, usage.endpoint_read_units
    slow_reads = replace(usage, fast_minutes=0).endpoint_read_units
    rows = [
        f"| calls: every key, every stage of each of its plans | {calls.calls:,} |  |  |",
        "| answers differing from GetUsage's numbers (status, plan of the stage, used, remaining, limit, "
        f"period, periodStart, resetsAt, the RateLimit fields) | {calls.mismatches.total():,}"
        f"{f' ({differing})' if differing else ''} | 0 | {mark[not calls.mismatches]} |",
        f"| DynamoDB requests a call | {requests} ({operations}) | 1 | {mark[calls.one_request]} |",
        f"| with the fast path's items too (every key, newer): {fast.calls:,} calls again | "
        f"{fast.mismatches.total():,} differing, {fast_requests} | 0, 1 | {mark[fast_ok]} |",
        "| another key's id in path, query, headers, body, path parameters, stage variables | "
        f"{security.spoofed_ok:,} of {security.sampled:,} answered the caller's own numbers | all | "
        f"{mark[security.spoofed_ok == security.sampled]} |",
        f"| no `apiKeyId` (absent, null, empty): 500 problem, no data, no read | {security.keyless_ok:,} of "
        f"{security.keyless:,} | all | {mark[security.keyless_ok == security.keyless]} |",
        f"| the key's value in an answer or a log line | {leaks} in answers, {security.leaks_in_logs} in "
        f"{security.log_lines:,} log lines | 0 | {mark[not (leaks or security.leaks_in_logs)]} |",
        f"| warm handler, in process, against moto on loopback: p50 / p99 | {p50:.1f} / {p99:.1f} ms (load "
        f"{o.load_before:.2f} before, {o.load_after:.2f} after) | p99 < {MAX_P99_MS:g} ms | "
        f"{mark[p99 < MAX_P99_MS]} |",
    ]
    if o.import_ms and o.first_answer_ms:
        imported, first = statistics.median(o.import_ms), statistics.median(o.first_answer_ms)
        rows.append(
            f"| cold import of `quota_monitor.quota_handler`, median of {len(o.import_ms)} | {imported:.0f} "
            f"ms (to the first answer: {first:.0f} ms) | < {MAX_IMPORT_MS:g} ms | "
            f"{mark[imported < MAX_IMPORT_MS]} |"
        )
    rows += [
        "| snapshot items a full scan writes (against the cost model: ✅ when it does not underestimate) | "
        f"{o.snapshot_items} items, {o.snapshot_bytes:,} bytes compressed ({min(o.item_bytes, default=0):,} "
        f"to {max(o.item_bytes, default=0):,} bytes an item billed): {o.write_units} write units | model: "
        f"{writes:g} | {mark[o.write_units <= writes]} |",
        "| read units a request (eventually consistent), against the cost model | "
        f"{o.read_units:.2f} after a full scan (no fast item: its minimum); {o.read_units_with_fast:.2f} "
        f"with a fast item holding every key | model: {reads:g} with the fast path, "
        f"{slow_reads:g} without | {mark[o.read_units_with_fast <= reads]} |",
    ]
    if usd:
        added = usd["endpoint, 0 requests"] - usd["without"]
        per_million = usd["endpoint, 1 million requests"] - usd["endpoint, 0 requests"]
        rows += [
            "| `quota-monitor cost`: the endpoint with 0 requests, against without | "
            f"${usd['endpoint, 0 requests']:.2f} vs ${usd['without']:.2f} a month: +${added:.2f} | "
            f"≤ ${MAX_MONTHLY_USD:g} | {mark[added <= MAX_MONTHLY_USD]} |",
            f"| … and a million requests more | +${per_million:.2f} | ≤ ${MAX_USD_PER_MILLION:g} | "
            f"{mark[per_million <= MAX_USD_PER_MILLION]} |",
        ]
    # The full scans' snapshot writes a month at the measured write units, and at the model's.
    price = PRICES.dynamodb_per_million_writes / 1e6 * HOURS_PER_MONTH * 60 / int(SCHEDULE_MINUTES)
    notes = [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, in "
        f"{o.seconds:,.0f} s (seeding {o.seconds_to_seed:,.0f} s, the full scan {o.scan_seconds:,.0f} s at "
        f"`APIGATEWAY_MAX_RPS=10`, the {calls.calls:,} calls and their checks {o.ask_seconds:,.0f} s). The "
        f"scan's numbers against the sandbox's own accounting: {o.scan_vs_sandbox} (plan, key) pairs differ.",
        f"At the measured write units, a full scan every {SCHEDULE_MINUTES} minutes writes its snapshots for "
        f"${o.write_units * price:.2f} a month (the model's units: ${writes * price:.2f}).",
        *(f"- {example}" for example in [*calls.examples, *fast.examples, *security.problems[:5]]),
    ]
    if o.scan_failures or o.snapshot_errors:
        notes.append(f"Scan failures: {o.scan_failures}; snapshot errors: {o.snapshot_errors}")
    prose = (
        f"`python -m bench.endpoint`: one full scan with `KEY_SNAPSHOTS=on` of {o.keys:,} keys in {o.plans} "
        f"usage plans ({o.keys_in_two_plans:,} keys in two; {o.stages} API stages), as the Lambda handler "
        "runs it, against the API Gateway sandbox and moto (DynamoDB, SNS, CloudWatch) in processes of their "
        "own on loopback; then the endpoint's handler, warm and in process, called with API Gateway's proxy "
        "event (payload 1.0) for every key on every stage of each of its plans, each answer checked against "
        "the numbers GetUsage gave the scan (the `RateLimit-Policy` and `RateLimit` fields parsed as RFC "
        "8941 structured fields) and the DynamoDB requests of the handler's own client counted; "
        f"{security.sampled} keys asked with another key's id everywhere the caller controls, and without "
        "`apiKeyId`, every logger captured; the handler's cold import in fresh processes; the snapshots' "
        "bytes and units against the cost model, and `quota-monitor cost`. Timings are reported, not "
        "enforced; the run fails on a wrong answer, a second request or a security check."
    )
    table = ["| what | measured | target | |", "| --- | --- | --- | --- |", *rows]
    return "\n".join([prose, "", *table, "", *notes]).rstrip() + "\n", outcome.correct


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.endpoint", description=__doc__)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    for name in SIZES:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(Shape, name))
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the raw outcome to this file")
    args = parser.parse_args(argv)
    shape = Shape(**{name: getattr(args, name) for name in SIZES})
    if args.serve:
        return serve(shape)
    outcome = measure(shape)
    text, ok = report(outcome)
    print(text)
    if args.json is not None:  # a Counter as its dict (``dataclasses.asdict`` would count its pairs)
        args.json.write_text(json.dumps(outcome, default=vars), encoding="utf-8")
    if not args.no_docs:
        write_section(START, END, text, heading="The quota endpoint")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
