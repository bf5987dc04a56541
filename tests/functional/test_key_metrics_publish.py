"""KEY_METRICS against moto: the selected keys get per-key metrics, the roll-ups and health stay whole."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import LocalCloud
from apigw_sandbox.seed import seed_key_usage
from quota_monitor.config import Settings
from tests.runs import run_at


def seed_plans(account: SandboxAccount) -> list[str]:
    rng = random.Random(5)
    plans = []
    for name, utilizations_of_keys in (("gold", (97.0, 12.0, 55.0)), ("free", (88.0, 3.0, 40.0, 91.0))):
        plan_id = account.create_usage_plan(name, limit=10_000, period="MONTH")
        plans.append(plan_id)
        for n, utilization in enumerate(utilizations_of_keys):
            key_id = account.create_api_key(f"{name}-{n}")
            account.attach_key(plan_id, key_id)
            seed_key_usage(account, plan_id, key_id, utilization=utilization, rng=rng, history_days=3)
    internal = account.create_usage_plan("internal")
    key_id = account.create_api_key("internal-0")
    account.attach_key(internal, key_id)
    seed_key_usage(account, internal, key_id, utilization=100, rng=rng, history_days=3)
    return plans


def read_back(cloudwatch: Any, namespace: str, at: datetime) -> dict[tuple[str, tuple[str, ...]], float]:
    listed: list[dict[str, Any]] = []
    for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace):
        listed.extend(page["Metrics"])
    queries = [
        {"Id": f"q{n}", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Maximum"}}
        for n, metric in enumerate(listed)
    ]
    response = cloudwatch.get_metric_data(
        MetricDataQueries=queries,
        StartTime=at.replace(second=0, microsecond=0),
        EndTime=datetime.now(UTC) + timedelta(minutes=2),
    )
    values = {item["Id"]: item["Values"] for item in response["MetricDataResults"]}
    return {
        (metric["MetricName"], tuple(d["Value"] for d in metric["Dimensions"])): values[f"q{n}"][0]
        for n, metric in enumerate(listed)
    }


def test_top_n_publishes_n_keys_and_the_roll_ups_of_every_key(
    account: SandboxAccount, cloud: LocalCloud, now: datetime
) -> None:
    seed_plans(account)
    settings = Settings.from_env({"KEY_METRICS": "top:2", "METRIC_NAMESPACE": "KeyMetricsTest"})
    cloudwatch = cloud.client("cloudwatch")
    report = run_at(settings, now)

    result = report.result
    assert len(result.keys) == 8  # the scan (and so the alerts) still sees every key
    published = read_back(cloudwatch, "KeyMetricsTest", result.scanned_at)
    keyed = {dims[1] for (name, dims) in published if len(dims) == 2}
    hottest = sorted(
        (k for k in result.keys if k.utilization is not None), key=lambda k: -(k.utilization or 0)
    )
    assert keyed == {k.api_key_id for k in hottest[:2]}
    for plan in result.plans:
        plan_keys = [k for k in result.keys if k.usage_plan_id == plan.id]
        assert published["UsedQuota", (plan.id,)] == sum(k.used for k in plan_keys)
        if plan.quota is not None:
            assert published["MaxQuotaUtilization", (plan.id,)] == pytest.approx(
                max(k.utilization or 0 for k in plan_keys)
            )
    assert published["KeysScanned", ()] == 8
    assert report.published is not None
    assert report.published.datapoints == 2 * 3 + (2 + 2 + 1) + 6


def test_none_publishes_only_roll_ups_and_health(
    account: SandboxAccount, cloud: LocalCloud, now: datetime
) -> None:
    seed_plans(account)
    settings = Settings.from_env({"KEY_METRICS": "none", "METRIC_NAMESPACE": "KeyMetricsNone"})
    cloudwatch = cloud.client("cloudwatch")
    report = run_at(settings, now)
    published = read_back(cloudwatch, "KeyMetricsNone", report.result.scanned_at)
    assert all(len(dims) < 2 for _, dims in published)
    assert {name for name, dims in published if len(dims) == 1} == {"MaxQuotaUtilization", "UsedQuota"}
    assert published["KeysScanned", ()] == len(report.result.keys) == 8
