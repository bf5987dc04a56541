"""The quota endpoint: key snapshots written by both paths, read by ``GET /quota`` in one request.

The full scan and the fast path run as their handlers do, against the sandbox and moto; the
endpoint's handler gets proxy events (payload 1.0) as API Gateway sends them.
"""

from __future__ import annotations

import importlib
import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from http_sfv.list import List

from apigw_sandbox.local import LambdaContextStandIn, invoke_handler
from quota_monitor.models import Target
from quota_monitor.publish.snapshots import BUCKETS, SnapshotStore, bucket_key
from tests.conftest import health_metric
from tests.functional.test_fast_path import add_key, cold_fast_start, use

if TYPE_CHECKING:
    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import AlertResources, LocalCloud

ACCOUNT = "123456789012"
API = "a1b2c3d4e5"
ON = {
    "KEY_SNAPSHOTS": "on",
    "FAST_SCHEDULE_MINUTES": "1",
    "SCHEDULE_MINUTES": "15",
    "FORECAST_ENABLED": "false",
}


def proxy_event(
    key_id: str | None, *, api_id: str = API, stage: str = "prod", **extra: Any
) -> dict[str, Any]:
    """What API Gateway sends a Lambda proxy integration (payload 1.0) for ``GET /quota`` with a key."""
    return {
        "resource": "/quota",
        "path": "/quota",
        "httpMethod": "GET",
        "headers": {"x-api-key": "the-secret-value-of-the-key", **extra.get("headers", {})},
        "multiValueHeaders": {},
        "queryStringParameters": extra.get("query"),
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": extra.get("body"),
        "isBase64Encoded": False,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": api_id,
            "stage": stage,
            "resourcePath": "/quota",
            "path": f"/{stage}/quota",
            "httpMethod": "GET",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "domainName": f"{api_id}.execute-api.us-east-1.amazonaws.com",
            "identity": {
                "apiKey": "the-secret-value-of-the-key" if key_id else None,
                "apiKeyId": key_id,
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
            },
        },
    }


def run_full(monkeypatch: pytest.MonkeyPatch, infra: AlertResources, **env: str) -> dict[str, Any]:
    for name, value in infra.env(**{**ON, **env}).items():
        monkeypatch.setenv(name, value)
    summary: dict[str, Any] = invoke_handler("quota_monitor.handler", {})
    return summary


def ask(monkeypatch: pytest.MonkeyPatch, infra: AlertResources, event: dict[str, Any]) -> dict[str, Any]:
    monkeypatch.setenv("ALERT_TABLE_NAME", infra.table_name)
    monkeypatch.setenv("SCHEDULE_MINUTES", "15")
    answer: dict[str, Any] = invoke_handler("quota_monitor.quota_handler", event)
    return answer


def body(answer: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(answer["body"])
    return parsed


@pytest.fixture
def gold(account: SandboxAccount) -> tuple[str, str, str]:
    """A plan on stage prod of API a1b2c3d4e5 with a key at 85% of 10,000 a month, and a quiet key."""
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH", api_stages=[(API, "prod")])
    hot = add_key(account, plan, "billing-client", 85.0)
    quiet = add_key(account, plan, "quiet-client", 10.0)
    return plan, hot, quiet


def test_the_endpoint_answers_a_keys_numbers_as_getusage_has_them_with_ratelimit_fields(
    account: SandboxAccount,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    gold: tuple[str, str, str],
) -> None:
    plan, hot, _ = gold
    summary = run_full(monkeypatch, alert_infra)
    assert summary["snapshotItems"] == BUCKETS

    answer = ask(monkeypatch, alert_infra, proxy_event(hot))

    assert answer["statusCode"] == 200
    headers = answer["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "private, max-age=60"
    got = body(answer)
    quota = got["quota"]
    assert (got["apiKeyId"], got["stale"], quota["usagePlanId"]) == (hot, False, plan)
    assert quota["apiStages"] == [{"apiId": API, "stage": "prod"}]
    assert (quota["limit"], quota["used"], quota["remaining"]) == (10_000, 8_500, 1_500)
    assert quota["utilization"] == 85.0
    assert [p["usagePlanId"] for p in got["plans"]] == [plan]
    # The IETF fields, as structured fields
    policy = List()
    policy.parse(headers["RateLimit-Policy"].encode())
    ((name, params),) = [(item.value, dict(item.params)) for item in policy]
    period = datetime.fromisoformat(quota["resetsAt"].replace("Z", "+00:00")) - datetime.fromisoformat(
        quota["periodStart"]
    ).replace(tzinfo=UTC)
    assert (name, params) == ("quota", {"q": 10_000, "w": int(period.total_seconds())})
    limit = List()
    limit.parse(headers["RateLimit"].encode())
    ((name, params),) = [(item.value, dict(item.params)) for item in limit]
    assert name == "quota"
    assert params["r"] == 1_500
    assert 0 < params["t"] <= int(period.total_seconds())


def test_only_the_validated_key_is_answered_and_its_value_is_never_echoed_or_logged(
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    gold: tuple[str, str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, hot, quiet = gold
    run_full(monkeypatch, alert_infra)
    capsys.readouterr()
    caplog.set_level(logging.DEBUG)
    # Another key's id everywhere the caller controls: path, query, headers, body
    event = proxy_event(
        hot,
        query={"apiKeyId": quiet, "key": quiet},
        headers={"x-api-key-id": quiet},
        body=json.dumps({"apiKeyId": quiet}),
    )
    event["path"] = f"/quota/{quiet}"
    answer = ask(monkeypatch, alert_infra, event)
    assert body(answer)["apiKeyId"] == hot
    assert body(answer)["quota"]["used"] == 8_500
    # No apiKeyId in the request context (a route deployed without apiKeyRequired): no data at all
    missing = ask(monkeypatch, alert_infra, proxy_event(None))
    assert missing["statusCode"] == 500
    assert missing["headers"]["Content-Type"] == "application/problem+json"
    problem = body(missing)
    assert set(problem) == {"type", "title", "status", "detail", "instance"}
    assert "apiKeyRequired" in problem["detail"]
    everything = json.dumps([answer, missing]) + capsys.readouterr().out + caplog.text
    assert "the-secret-value-of-the-key" not in everything


def test_a_key_not_measured_yet_and_a_store_that_cannot_be_read_are_problems_that_say_what_to_do(
    cloud: LocalCloud,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    gold: tuple[str, str, str],
) -> None:
    run_full(monkeypatch, alert_infra)
    unknown = ask(monkeypatch, alert_infra, proxy_event("newkey0001"))
    assert unknown["statusCode"] == 404
    assert body(unknown)["title"] == "This key's quota has not been measured yet"
    assert "every 15 minutes" in body(unknown)["detail"]
    # The table gone: 503 with Retry-After
    cloud.client("dynamodb").delete_table(TableName=alert_infra.table_name)
    gone = ask(monkeypatch, alert_infra, proxy_event(gold[1]))
    assert (gone["statusCode"], gone["headers"]["Retry-After"]) == (503, "5")
    assert body(gone)["status"] == 503


def test_snapshots_that_cannot_be_written_are_logged_and_counted_for_their_alarm(
    cloud: LocalCloud,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    gold: tuple[str, str, str],
) -> None:
    # GIVEN a state table that is not there (restored under another name)
    # WHEN a full run writes its snapshots
    summary = run_full(monkeypatch, alert_infra, ALERT_TABLE_NAME="restored-under-another-name")

    # THEN the run stands, says so in its summary and its log, and publishes SnapshotFailures
    assert (summary["keys"], summary["snapshotErrors"]) == (2, 1)
    assert "key snapshots not written" in [record.getMessage() for record in caplog.records]
    assert health_metric(cloud, "SnapshotFailures") == [1.0]
    # AND a run that writes them publishes none (the alarm's series has no data: not in alarm)
    run_full(monkeypatch, alert_infra)
    assert health_metric(cloud, "SnapshotFailures") == [1.0]


def test_old_numbers_are_marked_stale_and_carry_no_ratelimit_fields(
    cloud: LocalCloud,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    gold: tuple[str, str, str],
) -> None:
    _, hot, _ = gold
    run_full(monkeypatch, alert_infra)
    store = SnapshotStore(cloud.client("dynamodb"), alert_infra.table_name)
    snapshot = store.get(Target(ACCOUNT, "us-east-1"), hot, now=datetime.now(UTC))
    assert snapshot is not None
    # Items past their expiresAt are gone, whenever DynamoDB's TTL gets round to deleting them
    expired = datetime.now(UTC) + timedelta(days=2, minutes=1)
    assert store.get(Target(ACCOUNT, "us-east-1"), hot, now=expired) is None
    from quota_monitor.deliver.quota_api import QuotaRequest, answer  # noqa: PLC0415

    late = datetime.now(UTC) + timedelta(minutes=31)
    old = answer(snapshot, QuotaRequest.of(proxy_event(hot)), now=late, stale_after=timedelta(minutes=30))
    assert (old.status, old.body["stale"]) == (200, True)
    assert "RateLimit" not in old.headers
    assert "RateLimit-Policy" not in old.headers
    # AND numbers of a period that has reset since are stale however recent: they say nothing of
    # what is left now (no "r=0;t=0" to pace on)
    (entry,) = snapshot.plans
    reset = datetime.fromisoformat(str(entry["resetsAt"]).replace("Z", "+00:00"))
    fresh = answer(snapshot, QuotaRequest.of(proxy_event(hot)), now=reset, stale_after=timedelta(days=40))
    assert (fresh.status, fresh.body["stale"]) == (200, True)
    assert "RateLimit" not in fresh.headers
    before = reset - timedelta(seconds=1)
    live = answer(snapshot, QuotaRequest.of(proxy_event(hot)), now=before, stale_after=timedelta(days=40))
    assert (live.body["stale"], live.headers["RateLimit"]) == (False, '"quota";r=1500;t=1')


def test_a_key_whose_read_failed_keeps_its_last_numbers_and_the_others_in_its_plan_get_new_ones(
    cloud: LocalCloud,
    account: SandboxAccount,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    gold: tuple[str, str, str],
) -> None:
    plan, hot, quiet = gold
    run_full(monkeypatch, alert_infra)
    use(account, plan, hot, 5.0)  # 85% -> 90%
    use(account, plan, quiet, 5.0)  # 10% -> 15%
    # WHEN the next full scan gets one key's numbers spoiled (a failure of that key alone)
    cloud.sandbox.faults.add("bad-number", operation="GetUsage", count=1)
    summary = run_full(monkeypatch, alert_infra)
    assert summary["scanErrors"] == 1

    used = {
        key: body(ask(monkeypatch, alert_infra, proxy_event(key)))["quota"]["used"] for key in (hot, quiet)
    }

    # THEN the key read keeps its new numbers, and the one not read its last ones (asOf says how old)
    assert sorted([used[hot] - 8_500, used[quiet] - 1_000]) == [0, 500]


def test_a_key_that_left_a_plan_after_a_fast_run_read_it_there_is_shown_only_in_its_new_plan(
    account: SandboxAccount,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    gold: tuple[str, str, str],
) -> None:
    plan, hot, _ = gold
    run_full(monkeypatch, alert_infra)
    use(account, plan, hot, 6.0)  # 91%: the fast path writes its reading in gold
    monkeypatch.setenv("FAST_SCHEDULE_MINUTES", "10")
    assert cold_fast_start({}, LambdaContextStandIn(remaining_millis=60_000))["snapshotItems"] == 1
    # WHEN gold goes, the key moves to silver, and the next full scan reads the account
    account.delete_usage_plan(plan)
    silver = account.create_usage_plan("silver", limit=50_000, period="MONTH", api_stages=[(API, "beta")])
    account.attach_key(silver, hot)
    run_full(monkeypatch, alert_infra)

    got = body(ask(monkeypatch, alert_infra, proxy_event(hot, stage="beta")))

    # THEN the fast path's older entry for gold is not shown
    assert [p["usagePlanId"] for p in got["plans"]] == [silver]
    assert got["quota"]["usagePlanId"] == silver


def test_a_fast_run_keeps_the_keys_it_read_and_the_endpoint_answers_the_newer_reading(
    account: SandboxAccount,
    cloud: LocalCloud,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    gold: tuple[str, str, str],
) -> None:
    plan, hot, _ = gold
    run_full(monkeypatch, alert_infra)
    use(account, plan, hot, 6.0)  # 91%
    # Every 10 minutes, the fast path writes what it read: every run at this interval
    monkeypatch.setenv("FAST_SCHEDULE_MINUTES", "10")
    summary = cold_fast_start({}, LambdaContextStandIn(remaining_millis=60_000))
    assert summary["snapshotItems"] == 1

    got = body(ask(monkeypatch, alert_infra, proxy_event(hot)))

    assert (got["quota"]["used"], got["quota"]["remaining"]) == (9_100, 900)
    assert got["quota"]["apiStages"] == [{"apiId": API, "stage": "prod"}]  # from the full scan's entry


def test_without_key_snapshots_nothing_is_written(
    cloud: LocalCloud,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    gold: tuple[str, str, str],
) -> None:
    summary = run_full(monkeypatch, alert_infra, KEY_SNAPSHOTS="off")
    assert "snapshotItems" not in summary
    assert bucket_key(Target(ACCOUNT, "us-east-1"), 0) not in alert_infra.items()
    importlib.reload(importlib.import_module("quota_monitor.handler"))


def test_over_http_through_the_sandbox_api_the_quota_route_counts_and_answers_the_callers_key(
    account: SandboxAccount,
    cloud: LocalCloud,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    gold: tuple[str, str, str],
) -> None:
    # GIVEN the monitor's snapshots, and GET /quota on the sandbox's REST API stage, key required
    plan, hot, quiet = gold
    run_full(monkeypatch, alert_infra)
    monkeypatch.setenv("ALERT_TABLE_NAME", alert_infra.table_name)
    endpoint = importlib.reload(importlib.import_module("quota_monitor.quota_handler"))
    cloud.data_plane.reset()
    cloud.data_plane.add_route(API, "prod", "GET", "/quota", endpoint.handler, api_key_required=True)
    url = f"{cloud.data_plane.stage_url(API, 'prod')}/quota?apiKeyId={quiet}"

    def used_today(key: str) -> int:
        return sum(used for used, _ in account.daily_usage(plan, key, account.today(), account.today()))

    before = (used_today(hot), used_today(quiet))

    # WHEN the hot key's holder asks, naming the quiet key in the query for good measure
    request = urllib.request.Request(url, headers={"x-api-key": account.keys[hot].value})
    with urllib.request.urlopen(request, timeout=30) as response:
        status, headers, answer = response.status, response.headers, json.loads(response.read())

    # THEN API Gateway counted the request against the key's quota, and the answer is the key's own
    assert status == 200
    assert answer["apiKeyId"] == hot
    assert answer["quota"]["remaining"] == 1_500  # the last reading: this request is not in it yet
    assert headers["RateLimit"].startswith('"quota";r=1500;t=')
    assert (used_today(hot), used_today(quiet)) == (before[0] + 1, before[1])
    # AND without a key, API Gateway's own 403 comes first: the function is not called
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url), timeout=30)
    assert refused.value.code == 403
