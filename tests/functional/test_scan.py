"""The scan against the sandbox: every plan, every key, every page, and the numbers right."""

from __future__ import annotations

import json
import math
import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import LocalCloud
from apigw_sandbox.seed import seed_demo_account, seed_key_usage
from apigw_sandbox.server import Request, Throttled
from quota_monitor.compute.periods import period_containing
from quota_monitor.config import ScanSettings
from quota_monitor.models import KeyUsage, ScanResult
from quota_monitor.publish.metrics import iter_metric_data, publish
from quota_monitor.read.calls import ApiGatewayCalls
from quota_monitor.read.scan import scan_account


def add_plan(
    account: SandboxAccount,
    name: str,
    keys: int,
    *,
    limit: int | None = 10_000,
    period: str | None = "MONTH",
    rng: random.Random | None = None,
) -> tuple[str, list[str]]:
    rng = rng or random.Random(name)
    plan_id = account.create_usage_plan(name, limit=limit, period=period)
    key_ids = []
    for n in range(keys):
        key_id = account.create_api_key(f"{name}-key-{n}")
        account.attach_key(plan_id, key_id)
        seed_key_usage(account, plan_id, key_id, utilization=rng.uniform(0, 99), rng=rng, history_days=35)
        key_ids.append(key_id)
    return plan_id, key_ids


def expected_usage(account: SandboxAccount, plan_id: str, key_id: str, today: date) -> tuple[int, int | None]:
    """(used, remaining) for the current period, straight from the sandbox's model."""
    plan = account.plans[plan_id]
    kind = str(plan.quota["period"]) if plan.quota else "MONTH"
    start = period_containing(kind, today).start  # type: ignore[arg-type]
    series = account.daily_usage(plan_id, key_id, start, today)
    return sum(used for used, _ in series), (series[-1][1] if plan.quota else None)


def by_key(result: ScanResult) -> dict[tuple[str, str], KeyUsage]:
    keyed = {(key.usage_plan_id, key.api_key_id): key for key in result.keys}
    assert len(keyed) == len(result.keys), "a key was reported twice"
    return keyed


def test_every_key_of_every_plan_over_three_pages_and_more_than_25_plans(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    big_plan, big_keys = add_plan(account, "big", 1_234)
    small = [
        add_plan(account, f"small-{n:02d}", 2, period=("DAY", "WEEK", "MONTH")[n % 3]) for n in range(29)
    ]

    result = scan_account(api, now=now)

    assert result.failures == ()
    assert len(result.plans) == 30
    keyed = by_key(result)
    attached = [(big_plan, key) for key in big_keys] + [(plan, key) for plan, keys in small for key in keys]
    assert sorted(keyed) == sorted(attached)
    for plan_id, key_id in attached:
        used, remaining = expected_usage(account, plan_id, key_id, now.date())
        assert (keyed[plan_id, key_id].used, keyed[plan_id, key_id].remaining) == (used, remaining)
    # The minimum number of calls: 1 plan page, 3 key-name pages, 3 GetUsage pages + 1 per small plan.
    assert cloud.sandbox.calls == {
        "GetUsagePlans": 1,
        "GetApiKeys": math.ceil(1_292 / 500),
        "GetUsage": 3 + 29,
    }
    assert result.stats.api_calls == sum(cloud.sandbox.calls.values())
    assert result.stats.usage_pages == 32
    assert result.stats.keys_scanned == 1_292
    assert all(r.query.get("limit") == "500" for r in cloud.sandbox.requests)


def test_botocore_paginator_drops_pages_which_is_why_the_scan_walks_them(
    account: SandboxAccount, apigateway: Any, now: datetime
) -> None:
    """The trap in docs/aws-behaviour.md#getusage-and-its-paginator, reproduced against the sandbox."""
    plan_id, keys = add_plan(account, "big", 1_234)
    day = now.date().isoformat()
    paginator = apigateway.get_paginator("get_usage")
    merged = paginator.paginate(
        usagePlanId=plan_id, startDate=day, endDate=day, PaginationConfig={"PageSize": 500}
    ).build_full_result()
    assert len(merged["items"]) == 500 < len(keys)
    with pytest.raises(TypeError, match="unhashable"):
        paginator.paginate(
            usagePlanId=plan_id, startDate=day, endDate=day, PaginationConfig={"MaxItems": 10}
        ).build_full_result()


def test_a_429_storm_recovers_with_no_key_missing(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    plan_id, keys = add_plan(account, "storm", 700)
    add_plan(account, "calm", 3)
    seen = {"requests": 0}

    def throttle_two_of_three(request: Request) -> None:
        # For the first 45 requests, two of every three are refused: every call of the scan
        # meets 429s, and succeeds on a retry.
        seen["requests"] += 1
        if seen["requests"] <= 45 and seen["requests"] % 3:
            raise Throttled("Too Many Requests", retry_after=0)

    cloud.sandbox.fault_hooks.append(throttle_two_of_three)
    result = scan_account(api, now=now, settings=ScanSettings(max_workers=2))

    assert result.failures == ()
    assert {key.api_key_id for key in result.keys if key.usage_plan_id == plan_id} == set(keys)
    assert result.stats.keys_scanned == 703
    assert result.stats.throttles == cloud.sandbox.calls.total() - 6  # 6 calls succeeded: the minimum
    assert result.stats.throttles >= 12
    assert result.stats.api_calls == sum(cloud.sandbox.calls.values())


def test_one_plan_failing_leaves_the_others_whole(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    doomed, _ = add_plan(account, "doomed", 3)
    _kept, kept_keys = add_plan(account, "kept", 3)

    def deleted_mid_run(request: Request) -> None:
        if request.operation == "GetUsage" and f"/usageplans/{doomed}/" in request.path:
            account.delete_usage_plan(doomed)

    cloud.sandbox.fault_hooks.append(deleted_mid_run)
    result = scan_account(api, now=now)

    assert [(f.resource, f.resource_id, f.name, f.cause) for f in result.failures] == [
        ("usage-plan", doomed, "doomed", "NotFoundException")
    ]
    assert {key.api_key_id for key in result.keys} == set(kept_keys)
    assert result.stats.plans_scanned == 1


def test_a_usage_response_that_does_not_parse_is_an_error_never_a_zero(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    broken, broken_keys = add_plan(account, "broken", 2)
    add_plan(account, "fine", 2)

    def null_remaining(request: Request) -> Any:
        if request.operation != "GetUsage" or broken not in request.path:
            return None

        def rewrite(payload: bytes) -> bytes:
            body = json.loads(payload)
            for daily in body["values"].values():
                daily[-1][1] = None
            return json.dumps(body).encode()

        return rewrite

    cloud.sandbox.fault_hooks.append(null_remaining)
    result = scan_account(api, now=now)

    # Each of the plan's keys fails on its own, naming itself and its plan; none is read as zero.
    assert sorted((f.resource, f.resource_id, f.usage_plan_id, f.cause) for f in result.failures) == sorted(
        ("api-key", key_id, broken, "UsageDataError") for key_id in broken_keys
    )
    assert all("remaining None is not a whole number" in f.message for f in result.failures)
    assert all(key.usage_plan_id != broken for key in result.keys)


def test_plan_without_quota_reports_used_only(
    account: SandboxAccount, api: ApiGatewayCalls, now: datetime
) -> None:
    plan_id, _keys = add_plan(account, "internal", 3, limit=None, period=None)
    result = scan_account(api, now=now)
    for key in result.keys:
        used, _ = expected_usage(account, plan_id, key.api_key_id, now.date())
        assert key.used == used > 0
        assert (key.remaining, key.limit, key.utilization) == (None, None, None)
        assert key.period == "MONTH"
        assert key.period_start == now.date().replace(day=1)
    assert len(result.keys) == 3


def test_key_extended_above_its_limit(account: SandboxAccount, api: ApiGatewayCalls, now: datetime) -> None:
    plan_id, (key_id,) = add_plan(account, "gold", 1, limit=1_000)
    account.update_remaining(plan_id, key_id, 1_500)
    account.record_usage(plan_id, key_id, 100)
    (key,) = scan_account(api, now=now).keys
    assert key.remaining == 1_400
    assert key.limit == 1_000
    assert key.utilization == 0.0


def test_offset_and_week_start_follow_aws_accounting(cloud: LocalCloud, api: ApiGatewayCalls) -> None:
    wednesday = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    account = SandboxAccount(clock=lambda: wednesday)
    cloud.sandbox.use_account(account)
    plan_id = account.create_usage_plan(
        "weekly", limit=700, period="WEEK", offset=100, created=date(2026, 11, 23)
    )
    key_id = account.create_api_key("k")
    account.attach_key(plan_id, key_id)
    account.set_daily_usage(
        plan_id,
        key_id,
        {date(2026, 11, 21): 50, date(2026, 11, 22): 10, date(2026, 11, 24): 20, wednesday.date(): 5},
    )
    (key,) = scan_account(api, now=wednesday).keys
    # The week began on Sunday the 22nd: Saturday's 50 belong to the week before.
    assert key.period_start == date(2026, 11, 22)
    assert key.used == 35
    # The plan was created in this week, its first period: the offset of 100 comes off the limit.
    assert key.remaining == 700 - 100 - 35
    assert key.resets_at == datetime(2026, 11, 29, tzinfo=UTC)


def test_cross_check_reports_attached_keys_aws_left_out(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    plan_id, _keys = add_plan(account, "gold", 2)
    idle = account.create_api_key("idle-partner")
    account.attach_key(plan_id, idle)
    account.omit_idle_keys = True

    plain = scan_account(api, now=now)
    assert idle not in {key.api_key_id for key in plain.keys}
    assert "GetUsagePlanKeys" not in cloud.sandbox.calls

    checked = scan_account(api, now=now, settings=ScanSettings(cross_check_plan_keys=True))
    unused = [key for key in checked.keys if not key.in_usage_data]
    assert [(key.api_key_id, key.api_key_name, key.used, key.utilization) for key in unused] == [
        (idle, "idle-partner", 0, 0.0)
    ]
    assert cloud.sandbox.calls["GetUsagePlanKeys"] == 1


def test_key_values_are_never_requested_nor_kept(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    seed_demo_account(account)
    result = scan_account(api, now=now, settings=ScanSettings(cross_check_plan_keys=True))
    assert result.keys
    for request in cloud.sandbox.requests:
        assert request.query.get("includeValues", "false") == "false"
        assert request.query.get("includeValue", "false") == "false"
    dumped = repr(result) + json.dumps([key.as_json() for key in result.keys])
    for key in account.keys.values():
        assert key.value not in dumped


def test_metrics_read_back_from_cloudwatch_match_the_scan(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    # GIVEN the demo account, scanned
    seed_demo_account(account)
    result = scan_account(api, now=now)
    # WHEN its metrics are published
    cloudwatch = cloud.client("cloudwatch")
    report = publish(cloudwatch, "QuotaTest", list(iter_metric_data(result)))
    # THEN one request carries every series of the contract
    quota_keys = [key for key in result.keys if key.limit is not None]
    free_keys = [key for key in result.keys if key.limit is None]
    assert report.datapoints == 3 * len(quota_keys) + len(free_keys) + 3 + 4 + 6
    assert report.requests == 1

    listed: list[dict[str, Any]] = []
    for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace="QuotaTest"):
        listed.extend(page["Metrics"])
    shapes = {(m["MetricName"], tuple(sorted(d["Name"] for d in m["Dimensions"]))) for m in listed}
    assert shapes == {
        ("RemainingQuota", ("ApiKeyId", "UsagePlanId")),
        ("QuotaUtilization", ("ApiKeyId", "UsagePlanId")),
        ("UsedQuota", ("ApiKeyId", "UsagePlanId")),
        ("MaxQuotaUtilization", ("UsagePlanId",)),
        ("UsedQuota", ("UsagePlanId",)),
        ("PlansScanned", ()),
        ("KeysScanned", ()),
        ("ScanErrors", ()),
        ("ApiCalls", ()),
        ("ApiThrottles", ()),
        ("ScanDuration", ()),
    }
    assert len(listed) == report.datapoints

    # AND CloudWatch holds exactly the scan's numbers
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for key in result.keys:
        dims: tuple[tuple[str, str], ...] = (("UsagePlanId", key.usage_plan_id), ("ApiKeyId", key.api_key_id))
        expected["UsedQuota", dims] = key.used
        if key.limit is not None:
            expected["RemainingQuota", dims] = float(key.remaining or 0)
            expected["QuotaUtilization", dims] = float(key.utilization or 0)
    for plan in result.plans:
        plan_keys = [key for key in result.keys if key.usage_plan_id == plan.id]
        if plan.quota is not None:
            expected["MaxQuotaUtilization", (("UsagePlanId", plan.id),)] = max(
                k.utilization or 0 for k in plan_keys
            )
    expected["KeysScanned", ()] = len(result.keys)
    expected["PlansScanned", ()] = len(result.plans)
    expected["ScanErrors", ()] = 0

    queries = []
    for n, ((name, metric_dims), _) in enumerate(expected.items()):
        metric = {
            "Namespace": "QuotaTest",
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in metric_dims],
        }
        queries.append({"Id": f"q{n}", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Maximum"}})
    start = result.scanned_at.replace(second=0, microsecond=0)
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=2)
    got = {}
    for offset in range(0, len(queries), 500):
        response = cloudwatch.get_metric_data(
            MetricDataQueries=queries[offset : offset + 500], StartTime=start, EndTime=end
        )
        got.update({item["Id"]: item["Values"] for item in response["MetricDataResults"]})
    for n, value in enumerate(expected.values()):
        assert got[f"q{n}"] == [pytest.approx(value)]


def test_a_listing_that_is_not_json_is_an_error_not_an_empty_account(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    """botocore returns {'message': <body>} for a body it cannot decode: that is not zero plans."""
    add_plan(account, "gold", 2)

    def garbled(request: Request) -> Any:
        return (
            (lambda payload: payload[: len(payload) // 2]) if request.operation == "GetUsagePlans" else None
        )

    cloud.sandbox.fault_hooks.append(garbled)
    result = scan_account(api, now=now)

    assert [(f.resource, f.cause) for f in result.failures] == [("usage-plans", "MalformedResponse")]
    assert "GetUsagePlans: the response body is not JSON" in result.failures[0].message
    assert cloud.sandbox.calls["GetUsagePlans"] == 3  # retried twice, in case it was cut off, then reported
    assert result.keys == ()


def test_a_field_botocore_cannot_parse_fails_that_key_only(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    """botocore refuses a whole GetUsage answer for one count it cannot read as a Long ("lots");
    the monitor never lets it parse the counts, so only that key fails (module doc of
    quota_monitor.read.raw_counts)."""
    broken, broken_keys = add_plan(account, "broken", 3)
    _fine, fine_keys = add_plan(account, "fine", 2)
    bad = sorted(broken_keys)[0]

    def text_in_a_number(request: Request) -> Any:
        if request.operation != "GetUsage" or broken not in request.path:
            return None

        def rewrite(payload: bytes) -> bytes:
            body = json.loads(payload)
            body["values"][bad][0][0] = "lots"
            return json.dumps(body).encode()

        return rewrite

    cloud.sandbox.fault_hooks.append(text_in_a_number)
    result = scan_account(api, now=now)

    assert [(f.resource, f.resource_id, f.cause) for f in result.failures] == [
        ("api-key", bad, "UsageDataError")
    ]
    assert "used 'lots' is not a whole number" in result.failures[0].message
    assert {key.api_key_id for key in result.keys} == set(fine_keys) | set(broken_keys) - {bad}
    assert cloud.sandbox.calls["GetUsage"] == 2  # the data, not a transient fault: not retried


def test_the_key_listing_runs_beside_the_plans_and_names_every_key(
    account: SandboxAccount, api: ApiGatewayCalls, cloud: LocalCloud, now: datetime
) -> None:
    """GetApiKeys is one page after another; run before the plans it kept the rate limit's burst
    unspent for seconds (docs/benchmarks.md, "The whole budget"). It runs beside them, and the keys
    get their names afterwards."""
    plans = [add_plan(account, f"plan-{n}", 3) for n in range(3)]
    seen: list[tuple[str, str, float]] = []

    def slow_key_listing(request: Request) -> None:
        seen.append((request.operation, "start", time.monotonic()))
        if request.operation == "GetApiKeys":
            time.sleep(0.5)
            seen.append((request.operation, "end", time.monotonic()))

    cloud.sandbox.fault_hooks.append(slow_key_listing)
    result = scan_account(api, now=now, settings=ScanSettings(max_workers=4))

    listing_ended = max(at for operation, what, at in seen if operation == "GetApiKeys" and what == "end")
    usage_started = [at for operation, _, at in seen if operation == "GetUsage"]
    assert len(usage_started) == 3
    assert all(at < listing_ended for at in usage_started)
    assert result.failures == ()
    names = {key.api_key_id: key.api_key_name for key in result.keys}
    assert names == {key_id: account.keys[key_id].name for _, key_ids in plans for key_id in key_ids}
