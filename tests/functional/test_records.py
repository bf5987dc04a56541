"""The Lambda handler's records and its default metric selection, against the sandbox and moto.

The records are read from the handler's stdout (what Lambda sends to the function's log group, a
log event a line); the metrics from moto's CloudWatch.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from apigw_sandbox.local import invoke_handler
from apigw_sandbox.seed import DEMO_ALWAYS_METRICS_KEY, seed_demo_account, seed_key_usage
from quota_monitor.clients import apigateway_client
from quota_monitor.config import Settings
from quota_monitor.models import Target
from quota_monitor.read.guarded import guarded_api
from quota_monitor.read.scan import scan_account
from quota_monitor_cli.cost import EVENT_OVERHEAD_BYTES, LOG_BYTES_PER_RUN
from tests.contracts import JSON_FIELDS

if TYPE_CHECKING:
    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import AlertResources, LocalCloud


def run_handler(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """The handler's summary, its records, and everything it wrote (stdout and stderr)."""
    summary: dict[str, Any] = invoke_handler("quota_monitor.handler", {})
    captured = capsys.readouterr()
    records = []
    for line in captured.out.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and "record" in parsed:
            records.append(parsed)
    return summary, records, captured.out + captured.err


def series(cloud: LocalCloud, namespace: str = "ApiGatewayQuota") -> set[tuple[str, tuple[str, ...]]]:
    listed: list[dict[str, Any]] = []
    for page in cloud.client("cloudwatch").get_paginator("list_metrics").paginate(Namespace=namespace):
        listed.extend(page["Metrics"])
    return {(m["MetricName"], tuple(d["Value"] for d in m["Dimensions"])) for m in listed}


def samples(cloud: LocalCloud, name: str, plan_id: str, key_id: str) -> float:
    now = datetime.now(UTC)
    stats = cloud.client("cloudwatch").get_metric_statistics(
        Namespace="ApiGatewayQuota",
        MetricName=name,
        Dimensions=[{"Name": "UsagePlanId", "Value": plan_id}, {"Name": "ApiKeyId", "Value": key_id}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=2),
        Period=3600,
        Statistics=["SampleCount"],
    )
    return float(sum(point["SampleCount"] for point in stats["Datapoints"]))


def test_every_key_has_one_record_with_the_scans_exact_numbers_and_no_key_value_anywhere(
    account: SandboxAccount,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_demo_account(account)
    for name, value in alert_infra.env().items():
        monkeypatch.setenv(name, value)
    summary, records, everything = run_handler(capsys)

    expected = scan_account(
        guarded_api(apigateway_client(), Settings.from_env({}).scan),
        settings=Settings.from_env({}).scan,
        now=datetime.now(UTC),
        # The handler's own account (its function ARN) and region.
        target=Target("123456789012", "us-east-1"),
    )
    keys = [r for r in records if r["record"] == "key"]
    plans = [r for r in records if r["record"] == "plan"]
    assert len(keys) == len(expected.keys) == 50
    assert {(r["usagePlanId"], r["apiKeyId"]): {f: r[f] for f in JSON_FIELDS} for r in keys} == {
        (k.usage_plan_id, k.api_key_id): k.as_json() for k in expected.keys
    }
    assert len(plans) == 4
    assert {r["runAt"] for r in records} == {keys[0]["runAt"]}
    assert (summary["records"], summary["recordBytes"]) == (
        54,
        sum(len(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode()) + 1 for r in records),
    )
    # Never a key's value: the sandbox gave each key one, GetUsagePlanKeys would return it.
    values = [key.value for key in account.keys.values()]
    assert len(values) == 50
    assert all(len(value) == 40 for value in values)
    assert not any(value in everything for value in values)


def test_the_default_publishes_hot_and_tagged_keys_only_and_the_records_say_which(
    account: SandboxAccount,
    cloud: LocalCloud,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seeded = seed_demo_account(account)
    for name, value in alert_infra.env().items():
        monkeypatch.setenv(name, value)
    summary, records, _ = run_handler(capsys)

    with_metrics = {
        (r["usagePlanId"], r["apiKeyId"]) for r in records if r["record"] == "key" and r["metrics"]
    }
    tagged = seeded.key(DEMO_ALWAYS_METRICS_KEY)
    hot = {
        (r["usagePlanId"], r["apiKeyId"])
        for r in records
        if r["record"] == "key" and r.get("level", 0) >= r.get("levels", [101])[0]
    }
    # Six keys at or above their first level (the pro plan's tag says 75, billing-client's 50), and
    # the tagged quiet one.
    assert len(hot) == 6
    assert with_metrics == hot | {(tagged.plan_id, tagged.key_id)}
    assert (summary["keysWithMetrics"], summary["keysOverMetricCap"]) == (7, 0)
    published = series(cloud)
    per_key = {(name, dims) for name, dims in published if len(dims) == 2}
    assert per_key == {
        (name, pair) for pair in with_metrics for name in ("RemainingQuota", "QuotaUtilization")
    }
    # No per-plan roll-ups: the plan records are the plan view. The health metrics stay.
    assert [entry for entry in published if len(entry[1]) == 1] == []
    assert {name for name, dims in published if not dims} == {
        "PlansScanned",
        "KeysScanned",
        "ScanErrors",
        "ApiCalls",
        "ApiThrottles",
        "ScanDuration",
        "AlertsSent",
        "AlertDeliveryFailures",
        "AlertStateErrors",
    }
    assert len(published) == 2 * 7 + 9


def test_all_keeps_todays_contract(
    account: SandboxAccount,
    cloud: LocalCloud,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_demo_account(account)
    monkeypatch.setenv("KEY_METRICS", "all")
    summary, records, _ = run_handler(capsys)
    published = series(cloud)
    quota_keys = [r for r in records if r["record"] == "key" and r["limit"] is not None]
    assert all(r["metrics"] for r in records if r["record"] == "key")
    assert len(published) == 3 * len(quota_keys) + (50 - len(quota_keys)) + 3 + 4 + 6
    assert summary["keysWithMetrics"] == 50


def test_a_key_that_leaves_the_selection_stops_getting_data(
    account: SandboxAccount, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    leaving, staying = account.create_api_key("leaving"), account.create_api_key("staying")
    for key_id, utilization in ((leaving, 85.0), (staying, 95.0)):
        account.attach_key(plan, key_id)
        seed_key_usage(
            account, plan, key_id, utilization=utilization, rng=random.Random(key_id), history_days=3
        )

    _, first, _ = run_handler(capsys)
    assert {r["apiKeyId"]: r["metrics"] for r in first if r["record"] == "key"} == {
        leaving: True,
        staying: True,
    }
    # An administrator extends the key's quota: back under 80%.
    account.update_remaining(plan, leaving, 5_000)
    _, second, _ = run_handler(capsys)
    assert {r["apiKeyId"]: r["metrics"] for r in second if r["record"] == "key"} == {
        leaving: False,
        staying: True,
    }
    assert {r["apiKeyId"]: r["level"] for r in second if r["record"] == "key"} == {leaving: 0, staying: 90}
    # Its series got the first run's data point and nothing since; the other one got both.
    for name in ("RemainingQuota", "QuotaUtilization"):
        assert samples(cloud, name, plan, leaving) == 1
        assert samples(cloud, name, plan, staying) == 2


def test_the_records_are_written_even_when_the_metrics_cannot_be_published(
    account: SandboxAccount,
    cloud: LocalCloud,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    key_id = account.create_api_key("busy")
    account.attach_key(plan, key_id)
    seed_key_usage(account, plan, key_id, utilization=95.0, rng=random.Random(1), history_days=3)
    # CloudWatch answers every PutMetricData with an error (the sandbox has no such operation).
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", cloud.sandbox.url)
    with pytest.raises(RuntimeError, match="metrics not published"):
        invoke_handler("quota_monitor.handler", {})
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines() if line.startswith('{"record":')]
    assert [(r["record"], r.get("apiKeyId"), r.get("level")) for r in records] == [
        ("key", key_id, 90),
        ("plan", None, None),
    ]


def test_a_runs_own_log_lines_fit_in_what_the_cost_model_counts_for_them(
    account: SandboxAccount,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a run that writes the most lines of its own a healthy run does: alerts sent and the
    # per-key metrics capped (a warning), besides the summary
    seed_demo_account(account)
    for name, value in alert_infra.env(KEY_METRICS="auto,top:2").items():
        monkeypatch.setenv(name, value)
    summary, _, output = run_handler(capsys)
    assert summary["keysOverMetricCap"] > 0
    assert summary["alertsSent"] > 0

    # THEN what it logs apart from the records, with Lambda's START, END and REPORT lines (about
    # 400 bytes) and CloudWatch Logs' 26 bytes an event, is within the cost model's figure
    own = [line for line in output.splitlines() if line and not line.startswith('{"record":')]
    messages = [json.loads(line)["message"] for line in own]
    assert messages == ["bad tag", "per-key metrics capped", "run summary"]
    billed = (
        sum(len(line.encode()) + 1 + EVENT_OVERHEAD_BYTES for line in own) + 400 + 3 * EVENT_OVERHEAD_BYTES
    )
    assert billed <= LOG_BYTES_PER_RUN, own
