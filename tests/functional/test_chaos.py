"""Chaos: every fault at once, at a low rate, over the 10,000-key account, in two runs with alerts.

The monitor's steps run as :func:`quota_monitor.monitor.run_once` runs them (scan, alerts, then the
metrics), on the monitor's retrying client but without its client-side rate limit, which at the
account's 10 requests a second would make a 10,000-key scan take minutes: the rate limit has its own
tests and benchmarks. Checked after each run: every usage plan is either reported as failed, for a
fault that was injected into it, or every key whose data the sandbox served intact is reported,
once, with exactly the served numbers, and a key that failed alone had its data damaged. Checked
after both: every key reported at or over a level got exactly one alert naming that level (none
lost, none doubled), read back from an SQS inbox subscribed to the alert topic, and the state table
says so.

Run it alone, with its numbers: ``.venv/bin/pytest tests/functional/test_chaos.py -s`` (docs/reliability.md).
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.faults import KINDS
from apigw_sandbox.seed import seed_scale_account
from quota_monitor.alert.run import run_alerts
from quota_monitor.alert.state import AlertStateStore
from quota_monitor.config import AlertSettings, ForecastSettings, ScanSettings
from quota_monitor.publish.metrics import iter_metric_data, publish
from quota_monitor.read.scan import scan_account
from tests.fault_support import check_served_is_reported, fast_api

if TYPE_CHECKING:
    from apigw_sandbox.local import LocalCloud
    from quota_monitor.models import KeyUsage, ScanResult

#: The last day of a month: every key has 30 days of data in its MONTH period.
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
#: The chance of each fault on each call it applies to; 14 kinds, so about one call in eight
#: meets one (the structural ones apply to fewer calls).
RATE = 0.01
SEEDS = (1, 2)
#: High levels keep the number of alerts (and so of DynamoDB writes to moto) to a few hundred.
LEVELS = (96, 98)
#: 20 keys a GetUsage page, so that every plan has two pages or more and the paging faults apply.
PAGE_SIZE = 20
NAMESPACE = "ApiGatewayQuota"
#: The chaos run's client read timeout: long enough that a loaded machine (this test makes some
#: 1,400 calls on two cores, beside moto) never times out an answer no fault held back, so that every
#: failure is one a fault explains. A read-timeout fault holds its answer twice as long; a slow answer
#: comes in half the time.
READ_TIMEOUT = 2.0
HOLD = 2 * READ_TIMEOUT
SLOW = READ_TIMEOUT / 2
#: Failures a plan may end with under these faults, and nothing else.
EXPECTED_CAUSES = {
    "TooManyRequestsException",
    "InternalFailure",
    "ServiceUnavailableException",
    "ConnectionClosedError",
    "ReadTimeoutError",
    "MalformedResponse",
    "UsageDataError",
    "MalformedResource",
    "NotFoundException",
    "PaginationLoop",
    "MalformedUsagePage",  # a GetUsage page without values that says more pages follow
}


def add_every_fault(cloud: LocalCloud) -> None:
    for kind in KINDS:
        # Without ``item``, GetUsagePlans reads as an account without plans: a run with nothing to
        # check; a repeated position in GetApiKeys loses the key names, and with them every alert
        # of the run (each has its own test in test_reliability.py). Here both go to GetUsage.
        operation = "GetUsage" if kind in ("missing-field", "repeat-position") else "*"
        # A slow answer comes within the client's read timeout; a read timeout does not.
        delay = SLOW if kind == "slow-answer" else HOLD
        cloud.sandbox.faults.add(kind, operation=operation, probability=RATE, retry_after=1, delay=delay)


def level_of(key: KeyUsage) -> int:
    """The highest level reached, from the reported numbers (checked against what was served)."""
    assert key.limit is not None
    assert key.remaining is not None
    consumed = key.limit - key.remaining
    return max((level for level in LEVELS if consumed * 100 >= level * key.limit), default=0)


def test_chaos_every_fault_at_once_over_10000_keys(cloud: LocalCloud, request: pytest.FixtureRequest) -> None:
    # GIVEN the 10,000-key account with every kind of fault at once, and the alert resources
    started = time.perf_counter()
    account = SandboxAccount(clock=lambda: NOW)
    seeded = seed_scale_account(account)
    # The seeded account and the sandbox's records of what it served are millions of objects in
    # this process, beside the sandbox's threads: a full collection walked them all, and on a busy
    # machine its pause outlasted a short client read timeout several times over, failing a plan
    # no fault touched. The test's garbage is freed by reference counting; collect between runs.
    gc.collect()
    gc.freeze()
    gc.disable()
    request.addfinalizer(gc.unfreeze)
    request.addfinalizer(gc.enable)
    cloud.sandbox.use_account(account)
    infra = cloud.create_alert_resources()
    add_every_fault(cloud)
    settings = AlertSettings(
        infra.topic_arn, infra.table_name, levels=LEVELS, forecast=ForecastSettings(enabled=False)
    )
    sns, dynamodb, cloudwatch = cloud.client("sns"), cloud.client("dynamodb"), cloud.client("cloudwatch")
    api = fast_api(cloud, read_timeout=READ_TIMEOUT)

    reported: dict[tuple[str, str], KeyUsage] = {}
    results: list[ScanResult] = []
    stats: list[dict[str, Any]] = []
    for seed in SEEDS:
        gc.collect()
        cloud.sandbox.faults.seed = seed
        cloud.sandbox.reset_counters()
        injected_before = len(cloud.sandbox.faults.log)
        run_started = time.perf_counter()

        # WHEN a run scans, alerts and publishes
        result = scan_account(api, now=NOW, settings=ScanSettings(page_size=PAGE_SIZE, max_workers=4))
        alerts = run_alerts(
            result,
            settings,
            store=AlertStateStore(dynamodb, infra.table_name),
            sns=sns,
            now=NOW,
            claim_until=NOW + timedelta(minutes=15),
            region="us-east-1",
        )
        published = publish(cloudwatch, NAMESPACE, list(iter_metric_data(result, alerts=alerts)))

        # THEN every plan failed for an injected fault, or every key served intact is reported exactly
        counts = check_served_is_reported(result, cloud.sandbox.served)
        injections = cloud.sandbox.faults.log[injected_before:]
        faulted_plans = {i.plan_id for i in injections}
        for failure in result.failures:
            assert failure.cause in EXPECTED_CAUSES, failure
            if failure.resource == "usage-plan" and failure.cause == "MalformedResource":
                assert any(i.kind == "bad-number" and i.operation == "GetUsagePlans" for i in injections)
            elif failure.resource == "usage-plan":
                assert failure.resource_id in faulted_plans, f"{failure.describe()}: no fault was injected"
            elif failure.resource == "api-key":  # one key's entry: that key alone
                assert failure.cause == "UsageDataError", failure
                assert failure.usage_plan_id in faulted_plans, f"{failure.describe()}: no fault was injected"
            else:
                assert failure.resource == "api-keys", failure  # names lost, numbers kept
        assert counts["served"] > 5_000, "too little served to mean anything"
        # No alert is lost or doubled if nothing went wrong delivering or storing them.
        assert (alerts.delivery_failures, alerts.state_errors, alerts.skipped) == (0, (), 0)

        results.append(result)
        for key in result.keys:
            reported.setdefault((key.usage_plan_id, key.api_key_id), key)
        failed_plans = {f.resource_id for f in result.failures if f.resource == "usage-plan"}
        failed_plan_keys = sum(1 for key in seeded.keys if key.plan_id in failed_plans)
        # Keys of plans read without error whose data never came (a page without ``values``, or an
        # empty last page): nothing tells them from keys AWS leaves out of its usage data.
        served = cloud.sandbox.served_keys()
        unserved = sum(
            1
            for plan in result.plans
            if plan.id not in failed_plans and plan.id in account.plans
            for key_id in account.plans[plan.id].key_ids
            if (plan.id, key_id) not in served
        )
        stats.append(
            {
                "seconds": round(time.perf_counter() - run_started, 1),
                "api_calls": result.stats.api_calls,
                "throttles": result.stats.throttles,
                "injected": sum(1 for _ in injections),
                "injected_by_kind": dict(Counter(i.kind for i in injections)),
                "failures_by_cause": dict(Counter(f.cause for f in result.failures)),
                "keys_reported": counts["reported"],
                "keys_in_failed_plans": failed_plan_keys,
                "keys_failed_alone": counts["failed_keys"],
                "keys_not_served_in_plans_read": unserved,
                "alerts_sent": alerts.alerts_sent,
                "alert_messages": alerts.messages_sent,
                "metric_requests": published.requests,
            }
        )

    # THEN, over both runs: every kind of fault happened, in one run or the other
    assert set(Counter(i.kind for i in cloud.sandbox.faults.log)) == set(KINDS)

    # Alerts: every key reported at or over a level has exactly one alert, naming that level.
    expected = {pair: level_of(key) for pair, key in reported.items() if level_of(key) > 0}
    delivered = [alert for message in infra.received() for alert in message["Message"]["alerts"]]
    times = Counter((alert["usagePlanId"], alert["apiKeyId"]) for alert in delivered)
    doubled = {pair: n for pair, n in times.items() if n > 1}
    assert not doubled, f"{len(doubled)} keys alerted more than once"
    lost, unexpected = set(expected) - set(times), set(times) - set(expected)
    assert not lost, f"{len(lost)} alerts lost, such as {sorted(lost)[:5]}"
    assert not unexpected, (
        f"{len(unexpected)} alerts for keys not at a level, such as {sorted(unexpected)[:5]}"
    )
    assert {(a["usagePlanId"], a["apiKeyId"]): a["level"] for a in delivered} == expected
    assert {alert["event"] for alert in delivered} == {"threshold"}
    assert sum(run["alerts_sent"] for run in stats) == len(expected) > 100
    items = infra.items()
    assert {pk: int(item["alertLevel"]["N"]) for pk, item in items.items()} == {
        f"{plan}#{key}": level for (plan, key), level in expected.items()
    }
    assert not any("claimToken" in item for item in items.values())

    # The health metrics say what happened: ScanErrors and KeysScanned, both runs together.
    for name, total in (
        ("ScanErrors", sum(len(result.failures) for result in results)),
        ("KeysScanned", sum(len(result.keys) for result in results)),
    ):
        points = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=name,
            StartTime=NOW - timedelta(minutes=5),
            EndTime=NOW + timedelta(minutes=5),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        assert sum(point["Sum"] for point in points) == total

    print(  # the numbers docs/reliability.md quotes (shown with -s)
        f"\nchaos over {len(seeded.keys):,} keys and {len(seeded.plans)} plans, rate {RATE} per fault kind, "
        f"{time.perf_counter() - started:.1f} s in all; keys reported in either run: {len(reported):,}; "
        f"alerts: {len(expected)}, each delivered once"
    )
    for seed, run in zip(SEEDS, stats, strict=True):
        print(f"run with seed {seed}: {run}")
