"""The fast path end to end: the full scan's handler leaves watch lists, the fast handler reads them
every minute and alerts, both against the sandbox and moto's DynamoDB, SNS and an SQS inbox.

One alert state for both: a crossing is alerted once whichever path sees it first, and two runs of
either path at once never double it. The API budget both share is one item of the state table.
"""

from __future__ import annotations

import contextlib
import importlib
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from apigw_sandbox.local import LambdaContextStandIn, invoke_handler
from apigw_sandbox.seed import seed_key_usage
from quota_monitor.alert.watch import decode_watch_list
from quota_monitor.alert.watch_store import WatchStore
from quota_monitor.clients import client
from quota_monitor.compute.tags import TAG_MUTE
from quota_monitor.errors import RunFailed
from quota_monitor_cli.cost import EVENT_OVERHEAD_BYTES, FAST_LOG_BYTES_PER_RUN, LOG_BYTES_PER_ALERT

if TYPE_CHECKING:
    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import AlertResources, LocalCloud

FAST = {"FAST_SCHEDULE_MINUTES": "1", "SCHEDULE_MINUTES": "15", "FORECAST_ENABLED": "false"}


def add_key(
    account: SandboxAccount,
    plan_id: str,
    name: str,
    utilization: float,
    *,
    tags: dict[str, str] | None = None,
) -> str:
    key_id = account.create_api_key(name, tags=tags)
    account.attach_key(plan_id, key_id)
    seed_key_usage(account, plan_id, key_id, utilization=utilization, rng=random.Random(name), history_days=5)
    return key_id


def use(account: SandboxAccount, plan_id: str, key_id: str, percent: float) -> None:
    """Serve ``percent`` of the plan's limit more today."""
    limit = int(str(account.plan(plan_id).quota["limit"]))  # type: ignore[index]
    account.record_usage(plan_id, key_id, int(limit * percent / 100))


def full(monkeypatch: pytest.MonkeyPatch, infra: AlertResources, **env: str) -> dict[str, Any]:
    for name, value in infra.env(**{**FAST, **env}).items():
        monkeypatch.setenv(name, value)
    result: dict[str, Any] = invoke_handler("quota_monitor.handler", {})
    return result


def fast(monkeypatch: pytest.MonkeyPatch, infra: AlertResources, **env: str) -> dict[str, Any]:
    for name, value in infra.env(**{**FAST, **env}).items():
        monkeypatch.setenv(name, value)
    result: dict[str, Any] = cold_fast_start({}, LambdaContextStandIn(remaining_millis=60_000))
    return result


def cold_fast_start(event: dict[str, Any], context: LambdaContextStandIn | None = None) -> Any:
    """The fast handler as a cold start runs it: the settings it shares with the full scan's handler
    read afresh from this environment, as in a new Lambda process."""
    importlib.reload(importlib.import_module("quota_monitor.handler"))
    return invoke_handler("quota_monitor.fast_handler", event, context)


def alerts_in(infra: AlertResources) -> list[tuple[str, str, int]]:
    return [
        (alert["event"], alert["apiKeyName"], alert["level"])
        for message in infra.received()
        for alert in message["Message"]["alerts"]
    ]


def samples(cloud: LocalCloud) -> int:
    """Every datapoint CloudWatch (moto) holds in the monitor's namespace, of every metric."""
    cloudwatch = cloud.client("cloudwatch")
    now = datetime.now(UTC)
    total = 0
    for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace="ApiGatewayQuota"):
        for metric in page["Metrics"]:
            stats = cloudwatch.get_metric_statistics(
                Namespace="ApiGatewayQuota",
                MetricName=metric["MetricName"],
                Dimensions=metric.get("Dimensions", []),
                StartTime=now - timedelta(minutes=10),
                EndTime=now + timedelta(minutes=2),
                Period=60,
                Statistics=["SampleCount"],
            )
            total += int(sum(point["SampleCount"] for point in stats["Datapoints"]))
    return total


def test_a_key_crossing_between_full_scans_is_alerted_by_the_next_fast_run_once(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a hot key (85%) and a quiet one, and a full scan that alerted the hot key at 80
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    hot = add_key(account, plan, "billing-client", 85.0)
    add_key(account, plan, "quiet-client", 10.0)
    first = full(monkeypatch, alert_infra)
    assert first["alertsSent"] == 1
    assert (first["watchedPlans"], first["watchedKeys"]) == (1, 1)
    assert alerts_in(alert_infra) == [("threshold", "billing-client", 80)]

    # WHEN the hot key crosses 90% and the fast path runs, twice
    use(account, plan, hot, 6.0)
    once = fast(monkeypatch, alert_infra)
    again = fast(monkeypatch, alert_infra)

    # THEN the first fast run alerts it at 90, reading one plan and the state of one key; the second
    # finds the key where it is (the state says 90) and sends nothing
    assert (once["alertsSent"], once["keysRead"], once["candidates"], once["apiCalls"]) == (1, 1, 1, 1)
    assert alerts_in(alert_infra) == [("threshold", "billing-client", 90)]
    assert again["alertsSent"] == 0
    assert alerts_in(alert_infra) == []
    # AND the next full scan has nothing to say either: one state for both paths
    assert full(monkeypatch, alert_infra)["alertsSent"] == 0
    assert alerts_in(alert_infra) == []


def test_a_quiet_fast_run_reads_no_alert_state_and_publishes_nothing(
    account: SandboxAccount, cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 85.0)
    full(monkeypatch, alert_infra)
    alert_infra.received()
    before = samples(cloud)
    assert before > 0  # the full scan's

    summary = fast(monkeypatch, alert_infra)

    assert (summary["keysRead"], summary["candidates"], summary["metricRequests"]) == (1, 0, 0)
    assert "alertsEvaluated" not in summary  # the alert step did not run: no state read
    assert samples(cloud) == before  # not one datapoint more, of any metric
    assert alert_infra.received() == []


def test_the_watch_list_holds_what_can_still_cross_and_none_of_the_rest(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN keys at 85% (watched), 100% (nothing left to cross), 10% (far under), muted at 95%
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "at-85", 85.0)
    add_key(account, plan, "at-100", 100.0)
    add_key(account, plan, "at-10", 10.0)
    add_key(account, plan, "muted", 95.0, tags={TAG_MUTE: "true"})
    nolimit = account.create_usage_plan("free")
    add_key(account, nolimit, "unlimited", 500.0)

    summary = full(monkeypatch, alert_infra)

    items = alert_infra.items()
    (pk,) = [pk for pk in items if pk.startswith("~watch#")]
    assert pk == "~watch#123456789012#us-east-1"
    watch = decode_watch_list(bytes(items[pk]["data"]["B"]))
    assert [(p.id, [k.name for k in p.keys], [k.level for k in p.keys]) for p in watch.plans] == [
        (plan, ["at-85"], [80])
    ]
    assert summary["watchListBytes"] == len(items[pk]["data"]["B"])
    # valid until the scan after next is due, and the five minutes its run may take
    assert watch.valid_until - watch.written_at == timedelta(minutes=2 * 15 + 5)


def test_a_plan_the_next_full_scan_cannot_read_stays_on_the_watch_list(
    account: SandboxAccount, cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two watched plans, and a full scan that then cannot read one of them
    gold = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    silver = account.create_usage_plan("silver", limit=10_000, period="MONTH")
    add_key(account, gold, "gold-client", 85.0)
    add_key(account, silver, "silver-client", 85.0)
    full(monkeypatch, alert_infra)
    fault = cloud.sandbox.faults.add("malformed-json", operation="GetUsage", plan_id=gold)

    # WHEN the next full scan writes the list
    summary = full(monkeypatch, alert_infra)
    assert (summary["scanErrors"], summary["watchCarried"]) == (1, 1)

    # THEN the plan it could not read keeps its place, as the last scan that read it saw it, and
    # the fast path goes on reading it
    items = alert_infra.items()
    watch = decode_watch_list(bytes(items["~watch#123456789012#us-east-1"]["data"]["B"]))
    assert sorted(plan.name for plan in watch.plans) == ["gold", "silver"]
    cloud.sandbox.faults.remove(fault)
    assert fast(monkeypatch, alert_infra)["plansRead"] == 2


def test_an_alert_the_full_scan_could_not_deliver_is_delivered_by_the_next_fast_run(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a key at 100% (nothing left to cross: not watched as a rule), whose alert the full scan
    # could not deliver (its topic refused the message)
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 100.0)
    gone = alert_infra.env()["ALERT_TOPIC_ARN"] + "-deleted"
    summary = full(monkeypatch, alert_infra, ALERT_TOPIC_ARN=gone)
    assert (summary["alertsSent"], summary["alertDeliveryFailures"], summary["watchedKeys"]) == (0, 1, 1)

    # WHEN the fast path runs, with the topic back, THEN it delivers the alert, once, and its next
    # run has nothing to send
    monkeypatch.setenv("ALERT_TOPIC_ARN", alert_infra.env()["ALERT_TOPIC_ARN"])
    context = LambdaContextStandIn(remaining_millis=60_000)
    assert cold_fast_start({}, context)["alertsSent"] == 1
    assert alerts_in(alert_infra) == [("threshold", "billing-client", 100)]
    assert cold_fast_start({}, context)["alertsSent"] == 0


def test_a_fast_run_that_finds_the_lease_held_does_nothing(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a watched key that has crossed 90, and a fast run in progress (its lease live)
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    hot = add_key(account, plan, "billing-client", 85.0)
    full(monkeypatch, alert_infra)
    alert_infra.received()
    use(account, plan, hot, 6.0)
    store = WatchStore(client("dynamodb"), alert_infra.table_name)
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    now = datetime.now(UTC)
    token = store.take_lease(until=now + timedelta(seconds=50), now=now)
    assert token is not None

    # WHEN another fast run starts (the same minute delivered twice)
    second = fast(monkeypatch, alert_infra)

    # THEN it ends at once; once the lease is back, the next run alerts
    assert second == {"path": "fast", "leaseHeld": True}
    assert alerts_in(alert_infra) == []
    assert store.release_lease(token)
    assert fast(monkeypatch, alert_infra)["alertsSent"] == 1


def test_both_paths_at_once_alert_each_crossing_once(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN watched keys that all cross 90 after the full scan wrote its list
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    keys = [add_key(account, plan, f"client-{n}", 85.0) for n in range(4)]
    full(monkeypatch, alert_infra)
    alert_infra.received()
    for key in keys:
        use(account, plan, key, 6.0)
    for name, value in alert_infra.env(**FAST, DIGEST_MIN_ALERTS="10").items():
        monkeypatch.setenv(name, value)
    full_module = importlib.reload(importlib.import_module("quota_monitor.handler"))
    fast_module = importlib.reload(importlib.import_module("quota_monitor.fast_handler"))

    # WHEN a full scan and a fast run go at the same moment
    start = threading.Barrier(2)

    def invoke(module: Any, millis: int) -> dict[str, Any]:
        start.wait()
        result: dict[str, Any] = module.handler({}, LambdaContextStandIn(remaining_millis=millis))
        return result

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(invoke, full_module, 300_000), pool.submit(invoke, fast_module, 60_000)]
        results = [run.result() for run in runs]  # a run that raised fails the test here
    assert [result.get("path", "full") for result in results] == ["full", "fast"]
    assert not results[1].get("leaseHeld")

    # THEN each key is alerted at 90 once, by whichever path claimed it first
    assert sorted(alerts_in(alert_infra)) == [("threshold", f"client-{n}", 90) for n in range(4)]
    assert sum(result.get("alertsSent", 0) for result in results) == 4
    assert all("claimToken" not in item for pk, item in alert_infra.items().items() if not pk.startswith("~"))


def test_both_paths_take_their_calls_from_one_budget_item(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 85.0)
    full(monkeypatch, alert_infra)
    after_full = float(alert_infra.items()["~budget#123456789012#us-east-1"]["tat"]["N"])
    fast(monkeypatch, alert_infra)
    after_fast = float(alert_infra.items()["~budget#123456789012#us-east-1"]["tat"]["N"])
    # Each path reserved its slots on the same timeline: the fast run's come after the full scan's.
    assert after_fast > after_full


def test_without_a_watch_list_the_fast_run_says_so_and_calls_nothing(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 95.0)

    summary = fast(monkeypatch, alert_infra)

    assert (summary["listsUnused"], summary["apiCalls"], summary["plansRead"]) == (1, 0, 0)
    assert alerts_in(alert_infra) == []


def test_a_watched_plan_deleted_since_the_full_scan_fails_the_fast_run_which_names_it(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a watched plan that is gone by the time the fast path reads it
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 85.0)
    full(monkeypatch, alert_infra)
    account.delete_usage_plan(plan)

    # WHEN the fast path runs THEN it fails, naming the plan (the next full scan no longer lists it)
    with pytest.raises(
        RunFailed, match=rf"none of the 1 watched plans could be read: .*usage-plan {plan} \(gold\)"
    ):
        fast(monkeypatch, alert_infra)


def test_a_plan_read_key_by_key_whose_every_call_failed_is_not_counted_as_read(
    account: SandboxAccount, cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a plan of three keys, one watched, at one key a page: the fast path reads it key by key
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 85.0)
    add_key(account, plan, "quiet-client", 10.0)
    add_key(account, plan, "other-client", 20.0)
    assert full(monkeypatch, alert_infra, USAGE_PAGE_SIZE="1")["watchedKeys"] == 1
    cloud.sandbox.faults.add("internal-error", operation="GetUsage", plan_id=plan)

    # WHEN the fast path runs, with no retries, and its one call fails THEN the run fails, naming
    # the key: not a quiet run that read one plan
    with pytest.raises(RunFailed, match=r"none of the 1 watched plans could be read: .*billing-client"):
        fast(monkeypatch, alert_infra, USAGE_PAGE_SIZE="1", APIGATEWAY_MAX_ATTEMPTS="1")


def test_the_fast_path_without_alerts_is_refused_at_cold_start(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAST_SCHEDULE_MINUTES", "1")
    with pytest.raises(Exception, match="FAST_SCHEDULE_MINUTES='1' is not allowed: set ALERT_TOPIC_ARN"):
        cold_fast_start({})


def test_a_fast_runs_log_lines_fit_in_what_the_cost_model_counts_for_them(
    account: SandboxAccount,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a watched plan whose key crosses between two fast runs
    plan = account.create_usage_plan("gold-customer-plan", limit=10_000, period="MONTH")
    hot = add_key(account, plan, "billing-client-production", 85.0)
    full(monkeypatch, alert_infra)
    quiet = capsys.readouterr()
    assert quiet.out
    fast(monkeypatch, alert_infra)
    quiet_lines = capsys.readouterr().out.splitlines()
    use(account, plan, hot, 6.0)
    alerted = fast(monkeypatch, alert_infra)
    alert_lines = capsys.readouterr().out.splitlines()
    assert alerted["alertsSent"] == 1

    # THEN with Lambda's START, END and REPORT lines (about 400 bytes) and 26 bytes an event, a quiet
    # run is within the model's bytes a run, and a run that alerted within one alert's more
    def billed(lines: list[str]) -> int:
        return sum(len(line.encode()) + 1 + EVENT_OVERHEAD_BYTES for line in lines if line) + 400 + 3 * 26

    assert billed(quiet_lines) <= FAST_LOG_BYTES_PER_RUN, quiet_lines
    assert billed(alert_lines) <= FAST_LOG_BYTES_PER_RUN + LOG_BYTES_PER_ALERT, alert_lines


class Unanswering:
    """A TCP endpoint on loopback that accepts connections and never answers (a hung SNS)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.server.accept()[0])

    def __enter__(self) -> Unanswering:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.close()
        for connection in self.accepted:
            connection.close()


#: A short fast run: calls stop at 12 s, alerts at about 17 s, the timeout at 20 s.
SHORT_RUN_MILLIS = 20_000


def short_fast_run(monkeypatch: pytest.MonkeyPatch, infra: AlertResources, **env: str) -> tuple[Any, float]:
    """A fast run with 20 s left; what it returned (or raised) and how long it took."""
    for name, value in infra.env(**{**FAST, **env}).items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    try:
        outcome: Any = cold_fast_start({}, LambdaContextStandIn(remaining_millis=SHORT_RUN_MILLIS))
    except RunFailed as error:
        outcome = error
    return outcome, time.monotonic() - started


def test_a_fast_run_whose_sns_stops_answering_ends_before_its_timeout_with_no_publish_in_flight(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 30 keys a full scan alerted at 80%, which all cross 90% before the next fast run
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    keys = [add_key(account, plan, f"client-{n:02}", 85.0) for n in range(30)]
    full(monkeypatch, alert_infra)
    alert_infra.received()
    for key in keys:
        use(account, plan, key, 6.0)

    # WHEN the fast run's SNS endpoint accepts connections and never answers (one message a key)
    with Unanswering() as sns:
        summary, took = short_fast_run(
            monkeypatch, alert_infra, AWS_ENDPOINT_URL_SNS=sns.url, DIGEST_MIN_ALERTS="100"
        )

    # THEN it ends before its timeout: each publish it started timed out within the time left, and
    # once a publish could no longer end in time it started none and left the rest to the next run
    assert took < SHORT_RUN_MILLIS / 1000
    assert not isinstance(summary, RunFailed), str(summary)
    assert summary["alertsSent"] == 0
    assert summary["alertDeliveryFailures"] >= 1
    assert summary["alertsDeferred"] >= 1
    assert summary["alertDeliveryFailures"] + summary["alertsDeferred"] == 30
    # AND nothing was left claimed: every key is evaluated again, and alerted, by the next run
    assert not any("claimToken" in item for item in alert_infra.items().values())
    monkeypatch.delenv("AWS_ENDPOINT_URL_SNS")
    again = fast(monkeypatch, alert_infra, DIGEST_MIN_ALERTS="100")
    assert again["alertsSent"] == 30
    assert sorted(level for _, _, level in alerts_in(alert_infra)) == [90] * 30


def test_a_fast_run_whose_api_gateway_stops_answering_ends_before_its_timeout(
    account: SandboxAccount, cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a watched plan
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 85.0)
    full(monkeypatch, alert_infra)

    # WHEN API Gateway holds every GetUsage for a minute without answering
    cloud.sandbox.faults.add("read-timeout", operation="GetUsage", delay=60.0)
    outcome, took = short_fast_run(monkeypatch, alert_infra)

    # THEN the run ends before its timeout, the plan not read (left to the next run of either path)
    assert took < SHORT_RUN_MILLIS / 1000
    assert not isinstance(outcome, RunFailed), str(outcome)
    assert (outcome["plansRead"], outcome.get("alertsSent", 0)) == (0, 0)
    assert outcome["plansSkipped"] + outcome["scanErrors"] == 1, outcome
