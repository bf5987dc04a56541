"""Alerts end to end: the Lambda handler against the sandbox, moto's DynamoDB, SNS and an SQS inbox.

Once per crossing, none lost: overlapping runs send one message, a failed publish leaves the
state unadvanced and the next run sends, a new period recovers, tags override, digests name every key.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import threading
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import LambdaContextStandIn, invoke_handler
from apigw_sandbox.seed import seed_key_usage
from apigw_sandbox.server import Request
from quota_monitor.alert.state import AlertStateStore, Channels
from quota_monitor.clients import client
from quota_monitor.compute.tags import TAG_MUTE, TAG_THRESHOLDS
from quota_monitor.config import Settings
from quota_monitor.models import EventEntry
from quota_monitor.monitor import AlertClients
from tests.conftest import health_metric
from tests.runs import run_at as full_run_at

if TYPE_CHECKING:
    from collections.abc import Callable

    from apigw_sandbox.local import AlertResources, LocalCloud
    from quota_monitor.deliver.messages import AlertMessage
    from quota_monitor.monitor import RunReport


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


def run(monkeypatch: pytest.MonkeyPatch, infra: AlertResources, **env: str) -> dict[str, Any]:
    settings = {"FORECAST_ENABLED": "false", **env}
    for name, value in infra.env(**settings).items():
        monkeypatch.setenv(name, value)
    result: dict[str, Any] = invoke_handler("quota_monitor.handler", {})
    return result


def alerts_in(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [alert for message in messages for alert in message["Message"]["alerts"]]


def test_a_crossing_is_alerted_once_and_remembered(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a plan with one key over 90% and one far under
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    hot = add_key(account, plan, "billing-client", 92.0)
    add_key(account, plan, "quiet-client", 12.0)

    # WHEN the handler runs twice
    first = run(monkeypatch, alert_infra)
    second = run(monkeypatch, alert_infra)

    # THEN the first run alerts the hot key at 90 and remembers it, and the second sends nothing
    assert (first["alertsSent"], second["alertsSent"]) == (1, 0)
    (message,) = alert_infra.received()
    assert message["Subject"] == "[quota] billing-client at 92% of MONTH quota (plan gold)"
    (alert,) = message["Message"]["alerts"]
    assert (alert["event"], alert["apiKeyId"], alert["level"], alert["limit"]) == (
        "threshold",
        hot,
        90,
        10_000,
    )
    assert alert["remaining"] == 800
    item = alert_infra.items()[f"{plan}#{hot}"]
    assert item["alertLevel"] == {"N": "90"}
    assert item["periodStart"] == {"S": account.today().replace(day=1).isoformat()}
    assert "claimToken" not in item


def test_two_handler_runs_in_parallel_send_one_message(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 100.0)
    run(monkeypatch, alert_infra)  # a cold start that alerts the first key
    assert len(alert_infra.received()) == 1
    add_key(account, plan, "checkout-web", 95.0)
    handler_module = importlib.import_module("quota_monitor.handler")  # warm, as the run above left it

    start = threading.Barrier(2)
    results: list[dict[str, Any]] = []

    def invoke() -> None:
        start.wait()
        results.append(handler_module.handler({}, LambdaContextStandIn()))

    threads = [threading.Thread(target=invoke) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(result["alertsSent"] for result in results) == [0, 1]
    (message,) = alert_infra.received()
    assert [alert["apiKeyName"] for alert in message["Message"]["alerts"]] == ["checkout-web"]


class ReadsThenWaits:
    """A boto3 DynamoDB client that holds each run after it has read the state until both have:
    the interleaving where only the conditional claim can keep the alert single."""

    def __init__(self, real: Any, barrier: threading.Barrier) -> None:
        self._real, self._barrier = real, barrier

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def get_paginator(self, operation: str) -> Any:
        paginator, barrier = self._real.get_paginator(operation), self._barrier

        class Held:
            def paginate(self, **kwargs: Any) -> Any:
                yield from paginator.paginate(**kwargs)
                barrier.wait(timeout=30)

        return Held()


@pytest.mark.parametrize("attempt", range(3))
def test_runs_that_both_read_the_state_before_either_claims_send_one_message(
    attempt: int, account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN three keys over a level, and two runs that will both read the state before either claims
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    for n in range(3):
        add_key(account, plan, f"client-{n}", 85.0 + 5 * n)
    for name, value in alert_infra.env(FORECAST_ENABLED="false", DIGEST_MIN_ALERTS="10").items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(dict(os.environ))
    barrier = threading.Barrier(2)
    reports: list[Any] = []

    def one_run() -> None:
        reports.append(run_at(settings, datetime.now(UTC), ReadsThenWaits(client("dynamodb"), barrier)))

    # WHEN both run at once
    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN each key is alerted once, by whichever run claimed it; the other skipped it
    received = alerts_in(alert_infra.received())
    assert sorted(alert["apiKeyName"] for alert in received) == ["client-0", "client-1", "client-2"]
    assert sum(report.alerts.alerts_sent for report in reports) == 3
    assert sum(report.alerts.skipped for report in reports) == 3
    assert all("claimToken" not in item for item in alert_infra.items().values())


class ReadsThenWaitsFor:
    """A boto3 DynamoDB client that, once it has read the state, says so and waits until ``go`` is set."""

    def __init__(self, real: Any, read: threading.Event, go: threading.Event) -> None:
        self._real, self._read, self._go = real, read, go

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def get_paginator(self, operation: str) -> Any:
        paginator, read, go = self._real.get_paginator(operation), self._read, self._go

        class Held:
            def paginate(self, **kwargs: Any) -> Any:
                yield from paginator.paginate(**kwargs)
                read.set()
                go.wait(timeout=30)

        return Held()


def test_a_run_that_read_the_state_before_another_run_alerted_does_not_alert_again(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The late run finds no live claim (the other run already confirmed and let go): only the
    revision it read, now stale, stops it."""
    # GIVEN a key over a level, and a slow run that has read the state and waits
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 95.0)
    for name, value in alert_infra.env(FORECAST_ENABLED="false").items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(dict(os.environ))
    read, go = threading.Event(), threading.Event()
    late: list[Any] = []

    def run_with(dynamodb: Any) -> Any:
        return run_at(settings, datetime.now(UTC), dynamodb)

    slow = threading.Thread(
        target=lambda: late.append(run_with(ReadsThenWaitsFor(client("dynamodb"), read, go)))
    )
    slow.start()
    assert read.wait(timeout=30)
    # WHEN a quick run alerts, confirms and lets go, and only then the slow run goes on
    quick = run_with(client("dynamodb"))
    go.set()
    slow.join()

    # THEN the slow run's stale revision stops it: one alert in all
    assert (quick.alerts.alerts_sent, late[0].alerts.alerts_sent, late[0].alerts.skipped) == (1, 0, 1)
    assert len(alerts_in(alert_infra.received())) == 1


def test_a_failed_publish_leaves_the_state_unadvanced_and_the_next_run_sends(
    account: SandboxAccount, cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a key at 100% and an alert topic that does not exist yet: SNS answers NotFound, as it
    # would for a deleted topic
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    key = add_key(account, plan, "billing-client", 100.0)
    sns = cloud.client("sns")
    missing = alert_infra.topic_arn.replace("quota-alerts", "quota-alerts-new")
    monkeypatch.setenv("ALERT_TOPIC_ARN", missing)

    # WHEN a run cannot publish
    failed = run(monkeypatch, alert_infra, ALERT_TOPIC_ARN=missing)

    # THEN the failure is counted, and the state is neither advanced nor left claimed
    assert (failed["alertsSent"], failed["alertDeliveryFailures"]) == (0, 1)
    item = alert_infra.items()[f"{plan}#{key}"]
    assert "alertLevel" not in item
    assert "claimToken" not in item

    # WHEN the topic exists and the next run goes
    topic = sns.create_topic(Name="quota-alerts-new")["TopicArn"]
    queue_arn = cloud.client("sqs").get_queue_attributes(
        QueueUrl=alert_infra.queue_url, AttributeNames=["QueueArn"]
    )
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    retried = run(monkeypatch, alert_infra, ALERT_TOPIC_ARN=topic)

    # THEN it sends the alert that was not lost, and records it
    assert (retried["alertsSent"], retried["alertDeliveryFailures"]) == (1, 0)
    (alert,) = alerts_in(alert_infra.received())
    assert (alert["apiKeyId"], alert["level"]) == (key, 100)
    assert alert_infra.items()[f"{plan}#{key}"]["alertLevel"] == {"N": "100"}


def test_failed_delivery_is_counted_in_the_health_metrics(
    account: SandboxAccount, cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 100.0)
    run(monkeypatch, alert_infra, ALERT_TOPIC_ARN=alert_infra.topic_arn.replace("quota-alerts", "gone"))
    metrics = cloud.client("cloudwatch").list_metrics(
        Namespace="ApiGatewayQuota", MetricName="AlertDeliveryFailures"
    )
    assert len(metrics["Metrics"]) == 1
    assert sum(health_metric(cloud, "AlertDeliveryFailures")) == 1


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def account_at(cloud: LocalCloud, now: datetime, **options: Any) -> tuple[Clock, SandboxAccount]:
    """A fresh sandbox account whose time is a :class:`Clock` set to ``now``, served from now on."""
    clock = Clock(now)
    account = SandboxAccount(clock=clock, **options)
    cloud.sandbox.use_account(account)
    return clock, account


def run_at(settings: Settings, now: datetime, dynamodb: Any = None, **options: Any) -> Any:
    """One full run of the monitor (scan, alerts, metrics) at ``now``, with real clients for the
    local cloud; ``options`` go to :func:`tests.runs.run_at` (``on_alert``, ``alerts_over``)."""
    clients = AlertClients(sns=client("sns"), dynamodb=dynamodb or client("dynamodb"), region="us-east-1")
    return full_run_at(settings, now, alert_clients=clients, **options)


def test_a_new_period_recovers_alerted_keys_once(
    cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, account = account_at(cloud, datetime(2026, 11, 30, 22, 0, tzinfo=UTC))
    plan = account.create_usage_plan("daily", limit=1_000, period="DAY")
    key = add_key(account, plan, "billing-client", 95.0)
    # The handler reads the time from the system clock; the periods come from the sandbox's data,
    # so the scan is driven at the sandbox's clock through run_targets.
    for name, value in alert_infra.env(FORECAST_ENABLED="false").items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(dict(os.environ))

    def scan_at(now: datetime) -> Any:
        clock.now = now
        return run_at(settings, now)

    scan_at(datetime(2026, 11, 30, 22, 0, tzinfo=UTC))
    scan_at(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    scan_at(datetime(2026, 12, 1, 1, 15, tzinfo=UTC))

    alerts = alerts_in(alert_infra.received())
    assert [(a["event"], a["level"], a["periodStart"]) for a in alerts] == [
        ("threshold", 90, "2026-11-30"),
        ("recovered", 90, "2026-12-01"),
    ]
    assert alerts[1]["reason"] == "the quota period reset"
    item = alert_infra.items()[f"{plan}#{key}"]
    assert (item["alertLevel"], item["periodStart"]) == ({"N": "0"}, {"S": "2026-12-01"})


def test_an_extension_back_under_the_lowest_level_recovers(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    key = add_key(account, plan, "billing-client", 100.0)
    run(monkeypatch, alert_infra)
    account.update_remaining(plan, key, 9_000)
    run(monkeypatch, alert_infra)
    run(monkeypatch, alert_infra, RECOVERY_NOTIFICATIONS="false")

    alerts = alerts_in(alert_infra.received())
    assert [(a["event"], a["level"]) for a in alerts] == [("threshold", 100), ("recovered", 100)]
    assert alerts[1]["reason"] == "back under 80%"


def test_recovery_notifications_off_resets_quietly(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    key = add_key(account, plan, "billing-client", 100.0)
    run(monkeypatch, alert_infra)
    account.update_remaining(plan, key, 9_000)
    quiet = run(monkeypatch, alert_infra, RECOVERY_NOTIFICATIONS="false")
    assert quiet["alertsSent"] == 0
    assert [a["event"] for a in alerts_in(alert_infra.received())] == ["threshold"]
    assert alert_infra.items()[f"{plan}#{key}"]["alertLevel"] == {"N": "0"}


def test_tags_override_levels_and_mute_and_bad_tags_warn(
    account: SandboxAccount,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH", tags={TAG_THRESHOLDS: "60,70"})
    muted_plan = account.create_usage_plan("batch", limit=10_000, period="MONTH", tags={TAG_MUTE: "true"})
    by_key_tag = add_key(account, plan, "key-tag", 55.0, tags={TAG_THRESHOLDS: "50,75,95"})
    by_plan_tag = add_key(account, plan, "plan-tag", 65.0)
    bad_tag = add_key(account, plan, "bad-tag", 72.0, tags={TAG_THRESHOLDS: "75,50"})
    add_key(account, muted_plan, "muted", 100.0)
    unmuted = add_key(account, muted_plan, "unmuted", 100.0, tags={TAG_MUTE: "false"})

    run(monkeypatch, alert_infra)

    alerts = {a["apiKeyId"]: a for a in alerts_in(alert_infra.received())}
    assert {k: (a["level"], a["levelsFrom"]) for k, a in alerts.items()} == {
        by_key_tag: (50, "key tag"),
        by_plan_tag: (60, "plan tag"),
        bad_tag: (70, "plan tag"),
        unmuted: (100, "default"),
    }
    warnings = [r for r in caplog.records if r.getMessage() == "bad tag"]
    assert [(w.levelname, w.resourceId, w.tag, w.value) for w in warnings] == [  # type: ignore[attr-defined]
        ("WARNING", bad_tag, TAG_THRESHOLDS, "75,50")
    ]


def test_many_crossings_in_one_run_go_out_as_one_digest_naming_every_key(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    keys = {add_key(account, plan, f"client-{n:02d}", 80.0 + n) for n in range(12)}
    summary = run(monkeypatch, alert_infra, DIGEST_MIN_ALERTS="5")
    (message,) = alert_infra.received()
    assert message["Subject"] == "[quota] 12 API keys: 12 crossed a level"
    assert message["Message"]["digest"] is True
    assert {alert["apiKeyId"] for alert in message["Message"]["alerts"]} == keys
    assert (summary["alertsSent"], summary["alertMessages"]) == (12, 1)


def test_below_the_digest_size_each_alert_is_its_own_message(
    account: SandboxAccount, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    for n in range(3):
        add_key(account, plan, f"client-{n}", 85.0)
    run(monkeypatch, alert_infra, DIGEST_MIN_ALERTS="4")
    messages = alert_infra.received()
    assert len(messages) == 3
    assert all(message["Message"]["digest"] is False for message in messages)


def test_plans_the_scan_could_not_read_are_not_recovered(
    account: SandboxAccount, cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 100.0)
    # A plan that reads fine, so that the run is not a total failure (which raises).
    healthy = account.create_usage_plan("silver", limit=10_000, period="MONTH")
    add_key(account, healthy, "quiet-client", 10.0)
    run(monkeypatch, alert_infra)

    def negative_remaining(request: Request) -> Any:
        if request.operation != "GetUsage" or plan not in request.path:
            return None

        def rewrite(payload: bytes) -> bytes:
            body = json.loads(payload)
            for daily in body["values"].values():
                daily[-1][1] = -1
            return json.dumps(body).encode()

        return rewrite

    cloud.sandbox.fault_hooks.append(negative_remaining)
    summary = run(monkeypatch, alert_infra)
    assert summary["scanErrors"] == 1
    assert [a["event"] for a in alerts_in(alert_infra.received())] == ["threshold"]


def test_no_api_key_value_reaches_any_message_or_log(
    account: SandboxAccount,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    for n in range(6):
        add_key(account, plan, f"client-{n}", 70.0 + 6 * n)
    run(
        monkeypatch, alert_infra, FORECAST_ENABLED="true", DIGEST_MIN_ALERTS="3", CROSS_CHECK_PLAN_KEYS="true"
    )
    run(monkeypatch, alert_infra, DIGEST_MIN_ALERTS="100")
    logged = json.dumps([record.__dict__ for record in caplog.records], default=str)
    everything = json.dumps(alert_infra.received()) + json.dumps(alert_infra.items()) + logged
    assert "client-5" in everything
    for key in account.keys.values():
        assert key.value not in everything


def test_alert_settings_fail_the_cold_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_TABLE_NAME", "quota-alert-state")
    monkeypatch.delenv("ALERT_TOPIC_ARN", raising=False)
    with pytest.raises(
        ValueError, match="ALERT_TOPIC_ARN='' is not allowed: set it too when ALERT_TABLE_NAME is set"
    ):
        invoke_handler("quota_monitor.handler", {})


def test_the_forecast_warns_once_before_the_quota_runs_out(
    cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, account = account_at(cloud, datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    plan = account.create_usage_plan("gold", limit=100_000, period="MONTH")
    key = account.create_api_key("billing-client")
    account.attach_key(plan, key)
    # 3,800 a day for 20 days: 76,000 of 100,000 by the 20th, gone around the 26th.
    account.set_daily_usage(plan, key, {date(2026, 11, d): 3_800 for d in range(1, 21)})
    for name, value in alert_infra.env(FORECAST_ENABLED="true").items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(dict(os.environ))
    for _ in range(2):
        run_at(settings, clock.now)
    (alert,) = alerts_in(alert_infra.received())
    assert alert["event"] == "forecast"
    assert alert["forecast"]["exhaustsAt"].startswith("2026-11-26")


def test_without_the_key_listing_tagged_keys_are_not_alerted_recovered_or_alerted_twice(
    account: SandboxAccount, cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetApiKeys carries the keys' tags. A run without it cannot know that a key is muted or has its
    own levels: it must leave those keys alone rather than alert a muted key, or reset an alerted one
    under the plan's levels and alert it again once the tags are back."""
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    tagged = add_key(account, plan, "tagged", 76.0, tags={TAG_THRESHOLDS: "50,75,95"})
    add_key(account, plan, "muted", 99.0, tags={TAG_MUTE: "true"})

    first = run(monkeypatch, alert_infra, APIGATEWAY_MAX_ATTEMPTS="1")
    fault = cloud.sandbox.faults.add("internal-error", operation="GetApiKeys")
    blind = run(monkeypatch, alert_infra, APIGATEWAY_MAX_ATTEMPTS="1")
    cloud.sandbox.faults.remove(fault)
    after = run(monkeypatch, alert_infra, APIGATEWAY_MAX_ATTEMPTS="1")

    assert (first["alertsSent"], blind["alertsSent"], after["alertsSent"]) == (1, 0, 0)
    assert (blind["scanErrors"], blind["alertsNotEvaluated"]) == (1, 2)
    assert [(a["apiKeyId"], a["event"], a["level"]) for a in alerts_in(alert_infra.received())] == [
        (tagged, "threshold", 75)
    ]


def test_a_state_table_that_cannot_be_read_reaches_a_metric_not_only_a_log(
    account: SandboxAccount, cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No alert can go out without its state; that must set off an alarm, not pass as a quiet run."""
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    add_key(account, plan, "billing-client", 99.0)
    summary = run(monkeypatch, alert_infra, ALERT_TABLE_NAME="restored-under-another-name")

    assert (summary["alertsSent"], summary["alertStateErrors"]) == (0, 1)
    assert sum(health_metric(cloud, "AlertStateErrors")) == 1
    assert alert_infra.received() == []


def test_a_wrong_week_start_never_repeats_an_alert_and_says_so(
    cloud: LocalCloud, alert_infra: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day a WEEK quota resets is not documented (docs/aws-behaviour.md#getusage-and-its-paginator). Here
    the account's weeks start on Monday while the monitor assumes Sunday: Saturday's alert is not repeated on
    Sunday (the key's data shows the counter ran on, and the scan says the assumption looks wrong),
    and the key recovers on Monday, when AWS's counter resets."""
    # GIVEN an account whose weeks start on Monday, a key at 94% on Saturday, and the default Sunday
    monday = 0
    clock, account = account_at(
        cloud, datetime(2026, 11, 21, 18, 0, tzinfo=UTC), week_start=monday
    )  # a Saturday
    plan = account.create_usage_plan("weekly", limit=7_000, period="WEEK", created=date(2026, 1, 5))
    key = account.create_api_key("billing-client")
    account.attach_key(plan, key)
    # Monday 16th to Saturday 21st: 1,100 a day, 6,600 of 7,000 (94%) by Saturday.
    account.set_daily_usage(plan, key, {date(2026, 11, d): 1_100 for d in range(16, 22)})
    for name, value in alert_infra.env(FORECAST_ENABLED="false").items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(dict(os.environ))
    assert settings.scan.week_start == 6  # Sunday, the default

    def scan_at(now: datetime) -> Any:
        clock.now = now
        return run_at(settings, now)

    # WHEN the monitor runs on Saturday, Sunday (still AWS's week) and Monday (AWS's new week)
    scan_at(datetime(2026, 11, 21, 18, 0, tzinfo=UTC))
    account.set_daily_usage(plan, key, {date(2026, 11, 22): 100})  # Sunday, still AWS's week
    sunday = scan_at(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    monday = scan_at(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    # THEN one alert on Saturday, no repeat on Sunday, the recovery on Monday, and a warning
    events = [(a["event"], a["level"], a.get("reason")) for a in alerts_in(alert_infra.received())]
    assert events == [("threshold", 90, None), ("recovered", 90, "back under 80%")]
    (mismatch,) = sunday.result.period_mismatches
    assert (mismatch.usage_plan_id, mismatch.period, mismatch.assumed_start, mismatch.keys) == (
        plan,
        "WEEK",
        date(2026, 11, 22),
        1,
    )
    assert "set WEEK_START_DAY" in mismatch.describe()
    # All week the data says the same of the assumed start (Sunday the 22nd).
    assert monday.result.period_mismatches == sunday.result.period_mismatches


def test_claims_a_hundred_to_a_transaction_skip_only_the_keys_another_run_holds(
    account: SandboxAccount, alert_infra: AlertResources, now: datetime
) -> None:
    """At 10,000 keys a run writes 20,000 state items (docs/benchmarks.md): a hundred to a
    TransactWriteItems, each item under its own condition. A transaction is all or nothing, so the
    keys another run holds are refused and every other key of the same transaction is claimed,
    alerted once and confirmed all the same."""
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    keys = [add_key(account, plan, f"client-{n:03d}", 95.0) for n in range(150)]
    held = keys[40:47]
    dynamodb = client("dynamodb")
    for key_id in held:  # another run's live claim, taken before this one reads the table
        dynamodb.put_item(
            TableName=alert_infra.table_name,
            Item={
                "pk": {"S": f"{plan}#{key_id}"},
                "rev": {"N": "0"},
                "claimToken": {"S": "another-run"},
                "claimUntil": {"N": str(int(now.timestamp()) + 600)},
            },
        )
    sent: list[dict[str, Any]] = []
    dynamodb.meta.events.register(
        "before-parameter-build.dynamodb",
        lambda params, model, **_: sent.append({"operation": model.name, **params}),
    )
    settings = Settings.from_env(alert_infra.env(FORECAST_ENABLED="false"))
    report = run_at(settings, now, dynamodb=dynamodb)

    assert report.alerts is not None
    assert (report.alerts.alerts_sent, report.alerts.skipped, report.alerts.state_errors) == (143, 7, ())
    alerted = [alert["apiKeyId"] for alert in alerts_in(alert_infra.received())]
    assert sorted(alerted) == sorted(set(keys) - set(held))
    items = alert_infra.items()
    assert all(items[f"{plan}#{key_id}"]["claimToken"] == {"S": "another-run"} for key_id in held)
    assert all("claimToken" not in items[f"{plan}#{k}"] for k in set(keys) - set(held))
    assert {item["alertLevel"]["N"] for pk, item in items.items() if pk.split("#")[1] not in held} == {"90"}
    writes = [request for request in sent if request["operation"] != "Scan"]
    assert {request["operation"] for request in writes} == {"TransactWriteItems"}
    assert max(len(request["TransactItems"]) for request in writes) == 100
    assert all(len(request["ClientRequestToken"]) == 36 for request in writes)


def test_keys_owing_large_events_go_to_transactions_under_the_request_size_limit(
    alert_infra: AlertResources,
) -> None:
    """A TransactWriteItems request may carry at most 4 MB. Keys whose item keeps undelivered events
    (up to 300 KB each: an event bus refusing events for days) are written fewer than a hundred to a
    transaction, so that a large backlog never turns into a request DynamoDB refuses whole."""
    # GIVEN 40 claimed keys, each with about 200 KB of events still owed
    dynamodb = client("dynamodb")
    store = AlertStateStore(dynamodb, alert_infra.table_name)
    pks = [f"plan#key-{n:02d}" for n in range(40)]
    for pk in pks:
        dynamodb.put_item(
            TableName=alert_infra.table_name,
            Item={"pk": {"S": pk}, "rev": {"N": "1"}, "claimToken": {"S": "this-run"}},
        )
    owed = tuple(
        EventEntry(
            id=f"threshold:plan:key:2026-11-01:{n}", detail_type="Quota threshold", detail="x" * 20_000
        )
        for n in range(10)
    )
    sent: list[dict[str, Any]] = []
    dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems",
        lambda params, **_: sent.append(params),
    )

    # WHEN the run releases them all, keeping what they owe
    writes = store.apply(
        [store.release_write(pk, token="this-run", channels=Channels(owed)) for pk in pks], workers=2
    )

    # THEN every write is done, in several transactions, each well under 4 MB
    assert writes.outcomes == (True,) * len(pks)
    assert len(sent) > 1
    assert all(len(json.dumps(request["TransactItems"])) < 4_000_000 for request in sent)
    assert sum(len(request["TransactItems"]) for request in sent) == len(pks)
    items = alert_infra.items()
    assert all(len(items[pk]["pendingEvents"]["L"]) == len(owed) for pk in pks)


@pytest.mark.parametrize("sent_before_the_deadline", [0, 1])
def test_a_run_out_of_time_sends_nothing_more_releases_its_claims_and_the_next_run_sends_the_rest(
    account: SandboxAccount,
    cloud: LocalCloud,
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    sent_before_the_deadline: int,
) -> None:
    # GIVEN three keys over a level, each its own message (under the digest size)
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    keys = {add_key(account, plan, f"client-{n}", 85.0) for n in range(3)}
    for name, value in alert_infra.env(FORECAST_ENABLED="false", DIGEST_MIN_ALERTS="4").items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(dict(os.environ))
    now = datetime.now(UTC)
    published: list[AlertMessage] = []

    def run_with(out_of_time: Callable[[], bool]) -> RunReport:
        report: RunReport = run_at(settings, now, on_alert=published.append, alerts_over=out_of_time)
        return report

    # WHEN the run's time for alerts runs out after N messages (0: before it claims anything)
    first = run_with(lambda: len(published) >= sent_before_the_deadline)

    # THEN it sent only those, said how many it left, and holds no claim
    left = 3 - sent_before_the_deadline
    assert first.alerts is not None
    assert (first.alerts.alerts_sent, first.alerts.deferred) == (sent_before_the_deadline, left)
    assert first.summary()["alertsDeferred"] == left
    assert sum(health_metric(cloud, "AlertDeliveryFailures")) == left  # its alarm sees them
    assert first.alerts.state_errors == ()
    sent_first = {alert["apiKeyId"] for alert in alerts_in(alert_infra.received())}
    assert len(sent_first) == sent_before_the_deadline
    items = alert_infra.items()
    assert not any("claimToken" in item for item in items.values())
    assert {pk.split("#")[1] for pk, item in items.items() if "alertLevel" in item} == sent_first

    # WHEN the next run has time
    second = run_with(lambda: False)

    # THEN it sends exactly the rest: every key once in all
    assert second.alerts is not None
    assert (second.alerts.alerts_sent, second.alerts.deferred) == (left, 0)
    sent_second = {alert["apiKeyId"] for alert in alerts_in(alert_infra.received())}
    assert sent_first | sent_second == keys
    assert not sent_first & sent_second
