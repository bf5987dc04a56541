"""Each fault, through the real scan and the real handler, with its expected outcome.

The table in docs/reliability.md is this file, in words. Every scan here is also checked against
the sandbox's record of what it served (:func:`tests.fault_support.check_served_is_reported`):
a plan is either reported as failed, or every key whose data went out intact is reported, once,
with exactly the served numbers.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.faults import ENTRY_SHAPES
from apigw_sandbox.local import LambdaContextStandIn, invoke_handler
from apigw_sandbox.seed import seed_key_usage
from quota_monitor.clients import apigateway_client
from quota_monitor.config import ScanSettings, Settings
from quota_monitor.errors import ConfigError, DeadlineReached
from quota_monitor.invocation import (
    MAX_RESERVE_SHARE,
    RESERVE_FOR_PUBLISHING,
    reserve_after_alerts,
    reserve_for,
)
from quota_monitor.read.calls import ApiGatewayCalls, RetryPolicy
from quota_monitor.read.scan import scan_account
from quota_monitor_cli.main import main
from tests.fault_support import (
    FAST_RETRIES,
    SCAN_HOLD,
    SCAN_READ_TIMEOUT,
    add_plan,
    check_served_is_reported,
    fast_api,
    sandbox_client,
)

if TYPE_CHECKING:
    from apigw_sandbox.local import AlertResources, LocalCloud
    from apigw_sandbox.server import Request
    from quota_monitor.models import ScanResult


def scan(
    cloud: LocalCloud,
    policy: RetryPolicy = FAST_RETRIES,
    *,
    read_timeout: float | None = None,
    **options: Any,
) -> ScanResult:
    api = fast_api(cloud, policy, read_timeout=read_timeout)
    result = scan_account(api, now=cloud.account.now(), settings=ScanSettings(**options))
    check_served_is_reported(result, cloud.sandbox.served)
    return result


def failures(result: ScanResult) -> list[tuple[str, str | None, str]]:
    return [(f.resource, f.resource_id, f.cause) for f in result.failures]


def reported_plans(result: ScanResult) -> set[str]:
    return {key.usage_plan_id for key in result.keys}


# -- transient faults: retried, and recovered; persistent ones fail that plan only ---------------

TRANSIENT = {
    "throttle": "TooManyRequestsException",
    "internal-error": "InternalFailure",
    "unavailable": "ServiceUnavailableException",
    "connection-reset": "ConnectionClosedError",
    "read-timeout": "ReadTimeoutError",
    "malformed-json": "MalformedResponse",
}


def read_timeout_for(kind: str) -> float | None:
    """A read timeout only where a read-timeout fault is to be seen (tests.fault_support)."""
    return SCAN_READ_TIMEOUT if kind == "read-timeout" else None


@pytest.mark.parametrize("kind", TRANSIENT)
def test_a_transient_fault_on_every_operation_is_retried_and_nothing_is_missing(
    kind: str, cloud: LocalCloud, account: SandboxAccount
) -> None:
    plans = [add_plan(account, f"plan-{n}", 5)[0] for n in range(3)]
    # The first 18 GetUsage calls (page size 2: nine pages), the first call of each listing.
    cloud.sandbox.faults.add(kind, operation="GetUsage", count=18, retry_after=0, delay=SCAN_HOLD)
    for operation in ("GetUsagePlans", "GetApiKeys"):
        cloud.sandbox.faults.add(kind, operation=operation, count=1, retry_after=0, delay=SCAN_HOLD)

    patient = RetryPolicy(max_attempts=20, base_delay=0.001, max_delay=0.002, max_unreadable_attempts=20)
    result = scan(cloud, patient, read_timeout=read_timeout_for(kind), page_size=2, max_workers=3)

    assert result.failures == ()
    assert cloud.sandbox.faults.injected == {kind: 20}
    assert result.stats.keys_scanned == 15
    assert reported_plans(result) == set(plans)
    assert result.stats.api_calls == cloud.sandbox.calls.total() == 2 + 9 + 20
    assert result.stats.throttles == (20 if kind == "throttle" else 0)


@pytest.mark.parametrize(("kind", "cause"), TRANSIENT.items())
def test_a_fault_that_outlasts_the_retries_fails_that_plan_only(
    kind: str, cause: str, cloud: LocalCloud, account: SandboxAccount
) -> None:
    doomed, _ = add_plan(account, "doomed", 3)
    _, kept_keys = add_plan(account, "kept", 3)
    cloud.sandbox.faults.add(kind, plan_id=doomed, retry_after=0, delay=SCAN_HOLD)

    result = scan(cloud, read_timeout=read_timeout_for(kind))

    assert failures(result) == [("usage-plan", doomed, cause)]
    assert {key.api_key_id for key in result.keys} == set(kept_keys)
    assert result.stats.plans_scanned == 1
    gets = [r for r in cloud.sandbox.requests if r.operation == "GetUsage" and doomed in r.path]
    unreadable = cause == "MalformedResponse"
    assert len(gets) == (FAST_RETRIES.max_unreadable_attempts if unreadable else FAST_RETRIES.max_attempts)


def test_retry_after_is_honoured(cloud: LocalCloud, account: SandboxAccount) -> None:
    add_plan(account, "gold", 2)
    cloud.sandbox.faults.add("throttle", operation="GetUsage", count=2, retry_after=7)
    cloud.sandbox.faults.add("unavailable", operation="GetApiKeys", count=1, retry_after=3)
    waits: list[float] = []
    api = ApiGatewayCalls(
        sandbox_client(cloud), policy=RetryPolicy(base_delay=0.01, max_delay=30), sleep=waits.append
    )
    result = scan_account(api, now=account.now())
    assert result.failures == ()
    assert sorted(waits) == [3.0, 7.0, 7.0]  # never sooner than asked; the jitter is far below


# -- faults in the data --------------------------------------------------------------------------


def damaged_keys(cloud: LocalCloud) -> set[tuple[str, str]]:
    """(plan id, key id) of every key whose usage data a fault changed on its way out."""
    return {(s.usage_plan_id, s.api_key_id) for s in cloud.sandbox.served if not s.intact}


@pytest.mark.parametrize("value", [-1, None, 2**63])
def test_a_bad_number_fails_that_key_never_a_wrong_number(
    value: int | None, cloud: LocalCloud, account: SandboxAccount
) -> None:
    broken, broken_keys = add_plan(account, "broken", 4)
    _, fine_keys = add_plan(account, "fine", 4)
    cloud.sandbox.faults.add("bad-number", operation="GetUsage", plan_id=broken, value=value)

    result = scan(cloud)

    ((plan_id, bad),) = damaged_keys(cloud)
    assert failures(result) == [("api-key", bad, "UsageDataError")]
    assert (plan_id, result.failures[0].usage_plan_id) == (broken, broken)
    assert f"{value!r} is not a whole number from 0 to 2**63 - 1" in result.failures[0].message
    # The plan's other keys are reported, with exactly the served numbers (scan() checks them).
    assert {key.api_key_id for key in result.keys} == set(fine_keys) | set(broken_keys) - {bad}


#: What each shape of a bad entry is reported as (the cause is always UsageDataError).
ENTRY_MESSAGES = {
    "one-number": "is not [used, remaining]",
    "string": "'lots' is not a whole number",
    "not-a-list": "daily usage is str, not a list of [used, remaining]",
    "fewer-days": "31 daily entries for a range of 32 days",
    "fewer-days-at-end": "31 daily entries for a range of 32 days",
    "more-days": "33 daily entries for a range of 32 days",
}


@pytest.mark.parametrize("shape", ENTRY_MESSAGES)
def test_one_unreadable_key_entry_fails_that_key_not_its_plan(
    shape: str, cloud: LocalCloud, account: SandboxAccount
) -> None:
    """One key of a plan read over several pages sent in a shape that cannot be read exactly: that key
    is an ``api-key`` failure naming it, its plan and the cause; every other key of the plan is
    reported exactly. Fewer days than asked cannot be placed (which end is missing is not in the
    data: docs/reliability.md), so they fail the key too."""
    assert set(ENTRY_MESSAGES) == set(ENTRY_SHAPES)
    now = datetime(2026, 10, 31, 12, tzinfo=UTC)  # a MONTH plan reads 30 September to 31 October
    account = SandboxAccount(clock=lambda: now)
    cloud.sandbox.use_account(account)
    big, big_keys = add_plan(account, "big", 30)
    _, kept = add_plan(account, "kept", 3)
    cloud.sandbox.faults.add("bad-entry", plan_id=big, shape=shape, count=1)

    result = scan(cloud, page_size=10)

    ((_, bad),) = damaged_keys(cloud)
    (failure,) = result.failures
    assert (failure.resource, failure.resource_id, failure.usage_plan_id) == ("api-key", bad, big)
    assert failure.name == account.keys[bad].name
    assert failure.cause == "UsageDataError"
    assert ENTRY_MESSAGES[shape] in failure.message
    assert failure.describe().startswith(
        f"api-key {bad} ({failure.name}) in usage plan {big}: UsageDataError: "
    )
    assert {key.api_key_id for key in result.keys} == set(big_keys) - {bad} | set(kept)
    assert result.stats.plans_scanned == 2
    assert result.stats.keys_scanned == 32


@pytest.mark.parametrize("value", [-1, None, 2**31])
def test_a_bad_quota_limit_fails_that_plan(
    value: int | None, cloud: LocalCloud, account: SandboxAccount
) -> None:
    plans = {add_plan(account, name, 2)[0] for name in ("a", "b")}
    cloud.sandbox.faults.add("bad-number", operation="GetUsagePlans", value=value)

    result = scan(cloud)

    ((resource, plan_id, cause),) = failures(result)
    assert (resource, cause) == ("usage-plan", "MalformedResource")
    assert "quota limit" in result.failures[0].message
    assert reported_plans(result) == plans - {plan_id}


@pytest.mark.parametrize("kind", ["empty-values", "missing-field"])
def test_no_usage_data_for_a_plan_reads_as_a_plan_without_keys(
    kind: str, cloud: LocalCloud, account: SandboxAccount
) -> None:
    """AWS's answer for a plan whose keys have no data is unconfirmed
    (docs/aws-behaviour.md#getusage-and-its-paginator), so an empty or absent ``values`` cannot be told
    from a plan without keys: nothing is reported for it, which is a gap in its metrics, never a zero.
    The plan-key cross-check reports its keys as unused."""
    silent, silent_keys = add_plan(account, "silent", 3)
    _, keys = add_plan(account, "busy", 3)
    cloud.sandbox.faults.add(kind, operation="GetUsage", plan_id=silent)

    result = scan(cloud)
    assert result.failures == ()
    assert {key.api_key_id for key in result.keys} == set(keys)

    checked = scan(cloud, cross_check_plan_keys=True)
    unused = {key.api_key_id: key for key in checked.keys if not key.in_usage_data}
    assert set(unused) == set(silent_keys)
    assert all(key.used == 0 for key in unused.values())


@pytest.mark.parametrize("page", [1, 2])
def test_a_page_without_values_in_the_middle_of_a_walk_fails_that_plan(
    page: int, cloud: LocalCloud, account: SandboxAccount
) -> None:
    """A page that says more pages follow (page 1), or that was asked for by position (page 2),
    carries its keys: without ``values`` they would be lost without a word, and the plan's roll-ups
    would be wrong."""
    big, _ = add_plan(account, "big", 30)
    _, kept = add_plan(account, "kept", 3)
    calls = {"big": 0}

    def without_values_on_that_page(request: Request) -> Any:
        if request.operation != "GetUsage" or big not in request.path:
            return None
        calls["big"] += 1
        if calls["big"] != page:
            return None

        def drop(payload: bytes) -> bytes:
            body = json.loads(payload)
            del body["values"]
            return json.dumps(body).encode()

        return drop

    cloud.sandbox.fault_hooks.append(without_values_on_that_page)
    result = scan_account(fast_api(cloud), now=cloud.account.now(), settings=ScanSettings(page_size=10))

    assert failures(result) == [("usage-plan", big, "MalformedUsagePage")]
    assert "a page without values" in result.failures[0].message
    assert {key.api_key_id for key in result.keys} == set(kept)


def test_a_plan_listing_without_items_reads_as_an_account_without_plans(
    cloud: LocalCloud, account: SandboxAccount
) -> None:
    """The same as an empty list (whether AWS ever leaves out an empty ``item`` is not known): the run
    has nothing to scan and says so in PlansScanned and KeysScanned, which the heartbeat alarm watches."""
    add_plan(account, "gold", 2)
    cloud.sandbox.faults.add("missing-field", operation="GetUsagePlans")
    result = scan(cloud)
    assert (result.plans, result.keys, result.failures) == ((), (), ())
    assert cloud.sandbox.calls == {"GetUsagePlans": 1}


def test_a_plan_deleted_between_the_listing_and_its_usage(cloud: LocalCloud, account: SandboxAccount) -> None:
    doomed, _ = add_plan(account, "doomed", 3)
    _, kept_keys = add_plan(account, "kept", 3)
    cloud.sandbox.faults.add("plan-deleted", plan_id=doomed)

    result = scan(cloud)

    assert failures(result) == [("usage-plan", doomed, "NotFoundException")]
    assert "Invalid Usage Plan ID specified" in result.failures[0].message
    assert {key.api_key_id for key in result.keys} == set(kept_keys)
    assert cloud.sandbox.calls["GetUsage"] == 2  # a 404 is not retried


def test_a_key_deleted_mid_run_is_simply_not_reported(cloud: LocalCloud, account: SandboxAccount) -> None:
    _, keys = add_plan(account, "gold", 6)
    # Deleted after the key listing, just before the plan's usage is read.
    cloud.sandbox.faults.add("key-deleted", operation="GetUsage", count=1)

    result = scan(cloud)

    assert result.failures == ()
    (deleted,) = set(keys) - set(account.keys)
    assert {key.api_key_id for key in result.keys} == set(keys) - {deleted}


def test_a_repeating_position_stops_that_plan_with_an_error(
    cloud: LocalCloud, account: SandboxAccount
) -> None:
    looping, _ = add_plan(account, "looping", 5)
    _, kept_keys = add_plan(account, "kept", 2)
    cloud.sandbox.faults.add("repeat-position", operation="GetUsage", plan_id=looping)

    result = scan(cloud, page_size=2)

    assert failures(result) == [("usage-plan", looping, "PaginationLoop")]
    assert "a second time; stopping instead of looping" in result.failures[0].message
    assert {key.api_key_id for key in result.keys} == set(kept_keys)
    assert len([r for r in cloud.sandbox.requests if looping in r.path]) == 2


def test_a_key_on_two_usage_pages_is_reported_once(cloud: LocalCloud, account: SandboxAccount) -> None:
    _, keys = add_plan(account, "gold", 7)
    cloud.sandbox.faults.add("duplicate-key", operation="GetUsage")
    result = scan(cloud, page_size=3)
    assert cloud.sandbox.faults.injected == {"duplicate-key": 2}
    assert sorted(key.api_key_id for key in result.keys) == sorted(keys)


@pytest.fixture(scope="module")
def two_page_account() -> SandboxAccount:
    """More than 500 of everything: two pages of GetUsagePlans, GetApiKeys and GetUsagePlanKeys."""
    account = SandboxAccount(seed=3)
    big = account.create_usage_plan("big", limit=1_000, period="DAY", plan_id="big")
    rng = random.Random(3)
    for n in range(505):
        key_id = account.create_api_key(f"key-{n:03d}", key_id=f"k{n:03d}")
        account.attach_key(big, key_id)
        seed_key_usage(account, big, key_id, utilization=rng.uniform(1, 99), rng=rng, history_days=0)
    for n in range(504):
        account.create_usage_plan(f"empty-{n:03d}", limit=10, period="DAY", plan_id=f"e{n:03d}")
    return account


def test_items_on_two_pages_of_any_list_are_kept_once(
    cloud: LocalCloud, two_page_account: SandboxAccount
) -> None:
    cloud.sandbox.use_account(two_page_account)
    cloud.sandbox.faults.add("duplicate-key")  # every page that follows another starts one item early

    result = scan(cloud, cross_check_plan_keys=True, max_workers=4)

    assert cloud.sandbox.faults.injected == {"duplicate-key": 4}  # plans, keys, plan keys, usage
    assert result.failures == ()
    assert len(result.plans) == len({plan.id for plan in result.plans}) == 505
    assert len(result.keys) == 505
    assert all(key.in_usage_data and key.api_key_name for key in result.keys)


def test_a_repeating_position_in_the_key_listing_loses_names_not_numbers(
    cloud: LocalCloud, two_page_account: SandboxAccount
) -> None:
    cloud.sandbox.use_account(two_page_account)
    cloud.sandbox.faults.add("repeat-position", operation="GetApiKeys")

    result = scan(cloud, max_workers=4)

    assert failures(result) == [("api-keys", None, "PaginationLoop")]
    assert len(result.keys) == 505
    assert all(key.api_key_name is None for key in result.keys)


# -- the handler: when it raises, when it returns ------------------------------------------------


def handler_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in {"APIGATEWAY_MAX_ATTEMPTS": "2", "FORECAST_ENABLED": "false", **env}.items():
        monkeypatch.setenv(name, value)


def metric_sum(cloud: LocalCloud, name: str) -> float:
    stats = cloud.client("cloudwatch").get_metric_statistics(
        Namespace="ApiGatewayQuota",
        MetricName=name,
        StartTime=datetime.now(UTC) - timedelta(minutes=10),
        EndTime=datetime.now(UTC) + timedelta(minutes=2),
        Period=60,
        Statistics=["Sum"],
    )
    return float(sum(point["Sum"] for point in stats["Datapoints"]))


def test_some_plans_failing_returns_having_published_and_logged_each(
    cloud: LocalCloud,
    account: SandboxAccount,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    doomed, _ = add_plan(account, "doomed", 2)
    broken, _ = add_plan(account, "broken", 2)
    add_plan(account, "kept", 2)
    cloud.sandbox.faults.add("plan-deleted", plan_id=doomed)
    cloud.sandbox.faults.add("bad-number", operation="GetUsage", plan_id=broken)
    handler_env(monkeypatch)

    summary = invoke_handler("quota_monitor.handler", {})

    ((_, bad),) = damaged_keys(cloud)
    assert (summary["plansScanned"], summary["keys"], summary["scanErrors"]) == (2, 3, 2)
    assert summary["metricsPublished"] is True
    assert metric_sum(cloud, "ScanErrors") == 2
    assert metric_sum(cloud, "KeysScanned") == 3
    logged = {
        (r.levelname, r.resource, r.resourceId, r.resourceName, r.usagePlanId, r.cause)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "scan failure"
    }
    assert logged == {
        ("ERROR", "usage-plan", doomed, "doomed", doomed, "NotFoundException"),
        ("ERROR", "api-key", bad, account.keys[bad].name, broken, "UsageDataError"),
    }


def test_a_key_that_cannot_be_read_has_no_numbers_anywhere_and_no_alerts(
    cloud: LocalCloud, account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed key gets no metric, its plan no roll-up (a sum or maximum without it would be wrong),
    and no alert evaluation: no false "recovered" for an alerted key, and no repeat once it reads
    again. The plan's other keys are published and alerted as usual."""
    plan_id, keys = add_plan(account, "gold", 3, utilization=(95.0, 95.0))
    other, _ = add_plan(account, "other", 2, utilization=(10.0, 10.0))
    # Every key's metrics and the plan roll-ups (KEY_METRICS=auto would publish neither for these keys).
    handler_env(monkeypatch, METRIC_NAMESPACE="FirstRun", KEY_METRICS="all", **alert_infra.env())
    first = invoke_handler("quota_monitor.handler", {})
    assert first["alertsSent"] == 3

    cloud.sandbox.faults.add("bad-entry", plan_id=plan_id, shape="string", count=1)
    monkeypatch.setenv("METRIC_NAMESPACE", "BrokenRun")
    broken = invoke_handler("quota_monitor.handler", {})
    ((_, bad),) = damaged_keys(cloud)
    monkeypatch.setenv("METRIC_NAMESPACE", "NextRun")
    again = invoke_handler("quota_monitor.handler", {})

    assert (broken["keys"], broken["scanErrors"], broken["alertsSent"]) == (4, 1, 0)
    listed = cloud.client("cloudwatch").list_metrics(Namespace="BrokenRun")["Metrics"]
    per_key = {dim["Value"] for m in listed for dim in m["Dimensions"] if dim["Name"] == "ApiKeyId"}
    assert per_key == set(keys) - {bad} | set(account.plans[other].key_ids)
    plan_rollups = {
        (m["MetricName"], m["Dimensions"][0]["Value"]) for m in listed if len(m["Dimensions"]) == 1
    }
    assert plan_rollups == {("MaxQuotaUtilization", other), ("UsedQuota", other)}
    assert again["alertsSent"] == 0
    assert [(a["event"], a["level"]) for a in alerts_in(alert_infra)] == [("threshold", 90)] * 3
    assert alert_infra.items()[f"{plan_id}#{bad}"]["alertLevel"] == {"N": "90"}


def test_the_cli_names_the_key_that_cannot_be_read_and_exits_1(
    cloud: LocalCloud, account: SandboxAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_id, keys = add_plan(account, "gold", 4)
    cloud.sandbox.faults.add("bad-entry", plan_id=plan_id, shape="one-number", count=1)

    assert main(["scan", "--json"]) == 1

    out, err = capsys.readouterr()
    ((_, bad),) = damaged_keys(cloud)
    assert {row["apiKeyId"] for row in json.loads(out)} == set(keys) - {bad}
    name = account.keys[bad].name
    assert f"error: api-key {bad} ({name}) in usage plan {plan_id}: UsageDataError: " in err


def test_no_plan_readable_raises_after_publishing_the_errors(
    cloud: LocalCloud, account: SandboxAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b", "c"):
        add_plan(account, name, 2)
    cloud.sandbox.faults.add("internal-error", operation="GetUsage")
    handler_env(monkeypatch)

    with pytest.raises(
        RuntimeError, match=r"none of the 3 usage plans could be read: usage-plan \w+ \(\w\): "
    ):
        invoke_handler("quota_monitor.handler", {})
    assert metric_sum(cloud, "ScanErrors") == 3  # published before raising: the alarm sees it too


def test_an_account_without_plans_is_not_a_failure(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler_env(monkeypatch)
    summary = invoke_handler("quota_monitor.handler", {})
    assert (summary["plans"], summary["scanErrors"]) == (0, 0)


def test_a_listing_that_loops_raises(
    cloud: LocalCloud, two_page_account: SandboxAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.sandbox.use_account(two_page_account)
    cloud.sandbox.faults.add("repeat-position", operation="GetUsagePlans")
    handler_env(monkeypatch, APIGATEWAY_MAX_RPS="10", APIGATEWAY_BURST="40")
    with pytest.raises(RuntimeError, match="the usage plans could not be listed: nothing was scanned"):
        invoke_handler("quota_monitor.handler", {})
    assert cloud.sandbox.calls == {"GetUsagePlans": 2}


def alerts_in(infra: AlertResources) -> list[dict[str, Any]]:
    return [alert for message in infra.received() for alert in message["Message"]["alerts"]]


def test_metrics_not_published_raises_and_the_retry_does_not_alert_again(
    cloud: LocalCloud, account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_id, (key_id,) = add_plan(account, "gold", 1, utilization=(95.0, 95.0))
    # CloudWatch answers every PutMetricData with an error (the sandbox has no such operation).
    handler_env(monkeypatch, AWS_ENDPOINT_URL_CLOUDWATCH=cloud.sandbox.url, **alert_infra.env())

    for _ in range(2):  # the run, then Lambda's retry of the same event
        with pytest.raises(RuntimeError, match=r"metrics not published: 1 of 1 PutMetricData .* failed: 404"):
            invoke_handler("quota_monitor.handler", {})
    monkeypatch.delenv("AWS_ENDPOINT_URL_CLOUDWATCH")
    summary = invoke_handler("quota_monitor.handler", {})

    assert summary["alertsSent"] == 0
    assert [(a["apiKeyId"], a["level"]) for a in alerts_in(alert_infra)] == [(key_id, 90)]
    assert alert_infra.items()[f"{plan_id}#{key_id}"]["alertLevel"] == {"N": "90"}


def test_a_key_missing_from_the_usage_data_is_no_recovery(
    cloud: LocalCloud, account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the plan-key cross-check, a key the usage data left out is reported unused: that must not
    reset its alert state (a false "recovered", then the same alert again on the next run)."""
    plan_id, (key_id,) = add_plan(account, "gold", 1, utilization=(95.0, 95.0))
    add_plan(account, "other", 1, utilization=(10.0, 10.0))
    handler_env(monkeypatch, CROSS_CHECK_PLAN_KEYS="true", **alert_infra.env())
    invoke_handler("quota_monitor.handler", {})

    cloud.sandbox.faults.add("empty-values", plan_id=plan_id, count=1)
    blank = invoke_handler("quota_monitor.handler", {})
    after = invoke_handler("quota_monitor.handler", {})

    assert (blank["alertsSent"], after["alertsSent"]) == (0, 0)
    assert [(a["event"], a["level"]) for a in alerts_in(alert_infra)] == [("threshold", 90)]
    assert alert_infra.items()[f"{plan_id}#{key_id}"]["alertLevel"] == {"N": "90"}


# -- near the timeout --------------------------------------------------------------------------


def test_the_reserve_covers_an_in_flight_call_and_shrinks_for_short_timeouts() -> None:
    assert reserve_for(timedelta(minutes=5)) == RESERVE_FOR_PUBLISHING == timedelta(seconds=60)
    assert reserve_for(timedelta(seconds=30)) == timedelta(seconds=30) * MAX_RESERVE_SHARE
    # An API Gateway call can take connect + read timeouts (5 + 30 s); the reserve is more.

    config: Any = apigateway_client().meta.config
    assert RESERVE_FOR_PUBLISHING.total_seconds() > config.connect_timeout + config.read_timeout


def test_alerts_stop_twenty_seconds_before_the_timeout_after_the_scan_has_stopped() -> None:
    # The default 300 s: the scan starts no call in the last 60 s, the alert step no message in the last 20.
    assert reserve_after_alerts(timedelta(minutes=5)) == timedelta(seconds=20)
    for remaining in (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=15)):
        assert timedelta(0) < reserve_after_alerts(remaining) < reserve_for(remaining)


def test_near_the_timeout_the_rest_is_skipped_published_and_logged(
    cloud: LocalCloud,
    account: SandboxAccount,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plans = [add_plan(account, f"plan-{n}", 2)[0] for n in range(4)]
    first, second = sorted(plans)[:2]  # the scan reads plans in id order, one at a time here
    # 8 s left: 40% kept back, so calls stop 4.8 s in, time enough for a loaded machine to read the
    # first plan (3 s was not: at -n 8 on two cores the listings alone took longer).
    remaining = timedelta(seconds=8)
    # The second plan's usage never comes: each attempt waits as long as the run's read timeout
    # allows (bounded by the time left: handler.call_limits) and is tried again, until the time for
    # calls has run out; no call starts after it, and the last plans are not reached.
    cloud.sandbox.faults.add("read-timeout", plan_id=second, delay=60.0)
    handler_env(monkeypatch, APIGATEWAY_MAX_CONCURRENCY="1", APIGATEWAY_MAX_ATTEMPTS="20")
    context = LambdaContextStandIn(remaining_millis=int(remaining.total_seconds() * 1000))

    summary = invoke_handler("quota_monitor.handler", {}, context)

    assert summary["metricsPublished"] is True
    assert (summary["plansScanned"], summary["keys"]) == (1, 2)
    skipped = {
        r.resourceId  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "scan failure" and r.cause == "Skipped"  # type: ignore[attr-defined]
    }
    assert skipped == set(plans) - {first}
    assert summary["durationSeconds"] < remaining.total_seconds()
    assert metric_sum(cloud, "ScanErrors") == summary["scanErrors"] == 3


def test_a_backoff_never_sleeps_past_the_deadline(cloud: LocalCloud, account: SandboxAccount) -> None:
    """A Retry-After of 20 s a moment before the deadline: the wait stops at the deadline (simulated time)."""
    add_plan(account, "gold", 2)
    cloud.sandbox.faults.add("throttle", operation="GetUsage", retry_after=20)
    clock = {"now": 0.0}

    def sleep(seconds: float) -> None:
        clock["now"] += seconds

    api = ApiGatewayCalls(
        sandbox_client(cloud),
        policy=RetryPolicy(max_attempts=8, max_delay=30),
        deadline=lambda: clock["now"] >= 1.0,
        sleep=sleep,
    )
    result = scan_account(api, now=account.now())

    ((_, _, cause),) = failures(result)
    assert cause == "Skipped"
    assert "GetUsage not retried after TooManyRequestsException" in result.failures[0].message
    assert 1.0 <= clock["now"] <= 1.25  # one slice past the deadline at most, not 20 s
    assert cloud.sandbox.calls["GetUsage"] == 1

    with pytest.raises(DeadlineReached, match="GetUsagePlans not started: the run's deadline has passed"):
        api.get_usage_plans()


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("METRIC_NAMESPACE", "AWS/Mine", "not starting with 'AWS/'"),
        ("THRESHOLDS", "90,80", "levels must ascend"),
        ("RECOVERY_NOTIFICATIONS", "sometimes", "use true or false"),
        ("FORECAST_ENABLED", "maybe", "use true or false"),
        ("FORECAST_MIN_ELAPSED_PERCENT", "120", "use a number from 0 to 100"),
        ("FORECAST_MARGIN_PERCENT", "-1", "use a number from 0 to 1000"),
        ("DIGEST_MIN_ALERTS", "1", "use a whole number from 2 to 100000"),
        ("APIGATEWAY_MAX_RPS", "11", "use a number above 0 and at most 10"),
        ("APIGATEWAY_MAX_RPS", "nan", "use a number above 0 and at most 10"),
        ("APIGATEWAY_BURST", "0", "use a whole number from 1 to 40"),
        ("APIGATEWAY_MAX_CONCURRENCY", "lots", "use a whole number from 1 to 16"),
        ("APIGATEWAY_MAX_ATTEMPTS", "0", "use a whole number from 1 to 20"),
        ("USAGE_PAGE_SIZE", "501", "use a whole number from 1 to 500"),
        ("WEEK_START_DAY", "Sun", "use one of MONDAY"),
        ("CROSS_CHECK_PLAN_KEYS", "2", "use true or false"),
        ("ALERT_TOPIC_ARN", "quota-alerts", "use an SNS topic ARN"),
        ("ALERT_TABLE_NAME", "a", "use a DynamoDB table name"),
    ],
)
def test_every_bad_setting_names_the_variable_the_value_and_what_is_allowed(
    variable: str, value: str, allowed: str
) -> None:
    env = {"ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:quota-alerts", "ALERT_TABLE_NAME": "state"}
    env[variable] = value
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r} is not allowed: ")
    assert allowed in message


@pytest.mark.parametrize("sent", [5.7, True, "5", "lots", [5]])
def test_a_count_botocore_would_coerce_or_refuse_fails_that_key(
    sent: object, cloud: LocalCloud, account: SandboxAccount
) -> None:
    """botocore reads a Long with int(): 5.7 would be 5, true 1, "5" 5; and what int() refuses ("lots",
    a list) would make it refuse the whole page. The monitor reads the raw JSON, one key at a time."""
    broken, broken_keys = add_plan(account, "broken", 2)
    odd_quota, _ = add_plan(account, "odd-quota", 2)
    _, fine_keys = add_plan(account, "fine", 2)

    def coercible(request: Request) -> Any:
        def rewrite(payload: bytes) -> bytes:
            body = json.loads(payload)
            if request.operation == "GetUsage" and broken in request.path:
                next(iter(body["values"].values()))[-1][0] = sent
            if request.operation == "GetUsagePlans":
                next(plan for plan in body["item"] if plan["id"] == odd_quota)["quota"]["limit"] = sent
            return json.dumps(body).encode()

        return rewrite

    cloud.sandbox.fault_hooks.append(coercible)
    result = scan(cloud)

    ((_, bad),) = damaged_keys(cloud)
    assert sorted(failures(result)) == sorted(
        [("api-key", bad, "UsageDataError"), ("usage-plan", odd_quota, "MalformedResource")]
    )
    (key_failure,) = [f for f in result.failures if f.resource == "api-key"]
    assert f"used {sent!r} is not a whole number" in key_failure.message
    assert {key.api_key_id for key in result.keys} == set(fine_keys) | set(broken_keys) - {bad}
    assert cloud.sandbox.calls["GetUsage"] == 2  # refused at once, not retried: it is the data
