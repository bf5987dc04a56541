"""Events end to end: the monitor against the sandbox and moto's EventBridge, with a rule that sends the
monitor's events to an SQS queue, as a user's rule would.

One event per key and notification (also when email gets a digest), once: none again in the next
run, none doubled by two runs at once, none lost when EventBridge refuses an entry (the next run
sends it, without a second email), none sent twice when SNS fails and EventBridge does not. Every
event delivered is checked against the schema in docs/events.md.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pytest

from apigw_sandbox.local import EventPattern
from quota_monitor.alert.routes import TAG_ROUTE
from quota_monitor.clients import client
from quota_monitor.compute.tags import TAG_THRESHOLDS
from quota_monitor.config import Settings
from quota_monitor.deliver.events import EVENT_SOURCE
from quota_monitor.monitor import AlertClients
from tests.conftest import health_metric
from tests.contracts import JSON_FIELDS
from tests.events_support import PutEventsFaults, validate_event
from tests.functional.test_alerting import ReadsThenWaits, account_at, add_key, alerts_in, run
from tests.runs import run_at

if TYPE_CHECKING:
    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import AlertResources, LocalCloud

BUS = "quota-events"


@pytest.fixture
def evented(cloud: LocalCloud) -> AlertResources:
    """The alert topic and state table, the route ``gold``, and a bus whose rule sends the monitor's
    events to an SQS queue."""
    return cloud.create_alert_resources(
        routes=("gold",), events=EventPattern(BUS, {"source": [EVENT_SOURCE]})
    )


def events_in(infra: AlertResources) -> list[dict[str, Any]]:
    """Every event the rule delivered so far (drained), each checked against the schema."""
    assert infra.events is not None
    received = infra.events.received()
    for event in received:
        validate_event(event)
    return received


def run_with(
    infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    events: Any,
    *,
    now: datetime | None = None,
    alerts_deadline: Any = None,
    **env: str,
) -> Any:
    """One full run (:func:`tests.runs.run_at`) with the given EventBridge client (one with faults on it)."""
    for name, value in infra.env(**{"FORECAST_ENABLED": "false", **env}).items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(dict(os.environ))
    return run_at(
        settings,
        now,
        alert_clients=AlertClients(
            sns=client("sns"), dynamodb=client("dynamodb"), region="us-east-1", events=events
        ),
        alerts_over=alerts_deadline,
    )


def test_one_event_per_hot_key_in_the_first_run_none_in_the_second_while_email_gets_a_digest(
    account: SandboxAccount, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH", tags={"team": "partners"})
    hot = {add_key(account, plan, f"client-{n}", 85.0 + 5 * n) for n in range(3)}
    add_key(account, plan, "quiet-client", 12.0)

    first = run(monkeypatch, evented, DIGEST_MIN_ALERTS="2")
    second = run(monkeypatch, evented, DIGEST_MIN_ALERTS="2")

    (digest,) = evented.received()
    assert digest["Message"]["digest"] is True
    events = events_in(evented)
    assert sorted(event["detail"]["apiKeyId"] for event in events) == sorted(hot)
    assert {(e["source"], e["detail-type"]) for e in events} == {(EVENT_SOURCE, "Quota Threshold Crossed")}
    assert events_in(evented) == []
    assert (first["eventsSent"], first["eventDeliveryFailures"], first["eventsOwed"]) == (3, 0, 0)
    assert (second["eventsSent"], second["alertsSent"]) == (0, 0)


def test_an_event_carries_the_scan_fields_the_levels_the_route_and_the_tags_but_no_secret(
    account: SandboxAccount, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan(
        "gold", limit=10_000, period="MONTH", tags={TAG_ROUTE: "gold", "cost-center": "CC-42"}
    )
    key = add_key(
        account,
        plan,
        "billing-client",
        92.0,
        tags={
            TAG_THRESHOLDS: "50/75/90",
            "owner-email": "billing@example.com",
            "db-password": "hunter2",
            "slackWebhookUrl": "https://hooks.slack.com/services/T/B/X",
        },
    )
    run(monkeypatch, evented)

    (event,) = events_in(evented)
    detail = event["detail"]
    (alert,) = alerts_in(evented.received("gold"))
    assert {name: detail[name] for name in JSON_FIELDS} == {name: alert.get(name) for name in JSON_FIELDS} | {
        "periodStart": alert["periodStart"]
    }
    assert detail["id"] == alert["id"] == f"threshold:{plan}:{key}:{alert['periodStart']}:90"
    assert (detail["level"], detail["levels"], detail["levelsFrom"], detail["route"]) == (
        90,
        [50, 75, 90],
        "key tag",
        "gold",
    )
    assert detail["tags"] == {
        "usagePlan": {TAG_ROUTE: "gold", "cost-center": "CC-42"},
        "apiKey": {TAG_THRESHOLDS: "50/75/90", "owner-email": "billing@example.com"},
    }
    assert detail["withheldTags"] == {"usagePlan": [], "apiKey": ["db-password", "slackWebhookUrl"]}
    assert event["resources"] == [
        f"arn:aws:apigateway:us-east-1::/usageplans/{plan}",
        f"arn:aws:apigateway:us-east-1::/apikeys/{key}",
    ]
    everything = json.dumps(event)
    assert "hunter2" not in everything
    assert "hooks.slack.com" not in everything
    assert account.keys[key].value not in everything


def test_a_forecast_event_and_a_recovery_event(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, account = account_at(cloud, datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    infra = cloud.create_alert_resources(events=EventPattern("default", {"source": [EVENT_SOURCE]}))
    plan = account.create_usage_plan("gold", limit=100_000, period="MONTH")
    key = account.create_api_key("billing-client")
    account.attach_key(plan, key)
    # 3,800 a day for 20 days: 76,000 of 100,000 by the 20th, gone around the 26th.
    account.set_daily_usage(plan, key, {date(2026, 11, d): 3_800 for d in range(1, 21)})
    run_with(infra, monkeypatch, client("events"), now=clock.now, FORECAST_ENABLED="true")
    account.set_daily_usage(plan, key, {date(2026, 11, 20): 5_000})  # 81%: the 80% level
    run_with(infra, monkeypatch, client("events"), now=clock.now)
    account.update_remaining(plan, key, 60_000)  # extended back under 80%
    run_with(infra, monkeypatch, client("events"), now=clock.now)

    events = events_in(infra)
    assert [(e["detail-type"], e["detail"]["level"]) for e in events] == [
        ("Quota Forecast Exhausted", 0),
        ("Quota Threshold Crossed", 80),
        ("Quota Recovered", 80),
    ]
    forecast, _, recovered = (event["detail"] for event in events)
    assert forecast["forecast"]["exhaustsAt"].startswith("2026-11-26")
    assert forecast["forecast"]["secondsBeforeReset"] > 0
    assert (recovered["reason"], recovered["forecast"]) == ("back under 80%", None)
    assert len(alerts_in(infra.received())) == 3


def test_a_failed_entry_is_kept_and_sent_by_the_next_run_without_a_second_email(
    account: SandboxAccount, cloud: LocalCloud, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    refused = add_key(account, plan, "refused", 95.0)
    taken = add_key(account, plan, "taken", 95.0)
    events = client("events")
    faults = PutEventsFaults(events, lambda detail: detail["apiKeyId"] == refused)

    first = run_with(evented, monkeypatch, events, DIGEST_MIN_ALERTS="10")

    assert faults.failed == {f"threshold:{plan}:{refused}:{account.today().replace(day=1)}:90": 3}
    assert (first.alerts.alerts_sent, first.alerts.events_sent, first.alerts.event_failures) == (2, 1, 1)
    assert first.alerts.events_owed == 1
    assert "InternalFailure" in first.alerts.event_errors[0]
    assert [e["detail"]["apiKeyId"] for e in events_in(evented)] == [taken]
    assert len(evented.received()) == 2  # both emails went out: the state advanced
    item = evented.items()[f"{plan}#{refused}"]
    assert (item["alertLevel"], len(item["pendingEvents"]["L"])) == ({"N": "90"}, 1)
    assert sum(health_metric(cloud, "AlertDeliveryFailures")) == 1

    second = run_with(evented, monkeypatch, client("events"), DIGEST_MIN_ALERTS="10")

    (late,) = events_in(evented)
    assert late["detail"]["apiKeyId"] == refused
    assert (second.alerts.alerts_sent, second.alerts.events_sent, second.alerts.events_owed) == (0, 1, 0)
    assert evented.received() == []  # no second email
    assert "pendingEvents" not in evented.items()[f"{plan}#{refused}"]
    third = run_with(evented, monkeypatch, client("events"), DIGEST_MIN_ALERTS="10")
    assert (third.alerts.events_sent, events_in(evented)) == (0, [])


def test_a_retryable_failure_is_retried_within_the_run_and_others_are_not(
    account: SandboxAccount, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    throttled = add_key(account, plan, "throttled-once", 95.0)
    denied = add_key(account, plan, "denied", 95.0)
    events = client("events")
    once = PutEventsFaults(events, lambda d: d["apiKeyId"] == throttled, code="ThrottlingException", times=1)
    never = PutEventsFaults(events, lambda d: d["apiKeyId"] == denied, code="AccessDeniedException")

    report = run_with(evented, monkeypatch, events).alerts

    assert [e["detail"]["apiKeyId"] for e in events_in(evented)] == [throttled]
    assert (sum(once.failed.values()), sum(never.failed.values())) == (1, 1)  # not retried: it would not help
    assert once.calls == [2, 1]  # one call for both, then the retryable one again
    assert (report.events_sent, report.event_failures, report.events_owed) == (1, 1, 1)


def test_an_event_taken_while_sns_failed_is_not_sent_again_when_the_email_is(
    account: SandboxAccount, cloud: LocalCloud, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    key = add_key(account, plan, "billing-client", 95.0)
    gone = evented.topic_arn.replace("quota-alerts", "deleted-topic")

    failed = run_with(evented, monkeypatch, client("events"), ALERT_TOPIC_ARN=gone)

    assert (failed.alerts.delivery_failures, failed.alerts.events_sent) == (1, 1)
    (event,) = events_in(evented)
    item = evented.items()[f"{plan}#{key}"]
    assert ("alertLevel" not in item, item["eventSent"]) == (True, {"S": event["detail"]["id"]})

    retried = run_with(evented, monkeypatch, client("events"))

    assert (retried.alerts.alerts_sent, retried.alerts.events_sent) == (1, 0)
    (alert,) = alerts_in(evented.received())
    assert alert["id"] == event["detail"]["id"]
    assert events_in(evented) == []
    assert "eventSent" not in evented.items()[f"{plan}#{key}"]


def test_a_run_out_of_time_after_the_events_sends_the_emails_next_time_and_no_event_twice(
    account: SandboxAccount, cloud: LocalCloud, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two keys over a level, and a run whose time runs out once EventBridge has its events
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    keys = {add_key(account, plan, name, 95.0) for name in ("a", "b")}
    events = client("events")
    put: list[str] = []
    events.meta.events.register("after-call.events.PutEvents", lambda **_: put.append("done"))

    # WHEN the run puts the events, then is out of time before the first email
    first = run_with(evented, monkeypatch, events, DIGEST_MIN_ALERTS="10", alerts_deadline=lambda: bool(put))

    # THEN the events went out, the emails did not, nothing is left claimed, and it is counted
    assert (first.alerts.events_sent, first.alerts.alerts_sent, first.alerts.deferred) == (2, 0, 2)
    assert {event["detail"]["apiKeyId"] for event in events_in(evented)} == keys
    assert evented.received() == []
    items = evented.items()
    assert all("claimToken" not in item and "alertLevel" not in item for item in items.values())
    assert all("eventSent" in item for item in items.values())
    assert sum(health_metric(cloud, "AlertDeliveryFailures")) == 2

    # WHEN the next run has time
    second = run_with(evented, monkeypatch, client("events"), DIGEST_MIN_ALERTS="10")

    # THEN it sends the emails only: each key once on each channel
    assert (second.alerts.alerts_sent, second.alerts.events_sent, second.alerts.deferred) == (2, 0, 0)
    assert {alert["apiKeyId"] for alert in alerts_in(evented.received())} == keys
    assert events_in(evented) == []


def test_a_run_out_of_time_from_the_start_still_reports_the_events_owed(
    account: SandboxAccount, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    refused = add_key(account, plan, "refused", 95.0)
    events = client("events")
    PutEventsFaults(events, lambda detail: detail["apiKeyId"] == refused)
    assert run_with(evented, monkeypatch, events).alerts.events_owed == 1

    late = run_with(evented, monkeypatch, client("events"), alerts_deadline=lambda: True)

    assert (late.alerts.events_sent, late.alerts.events_owed, late.alerts.deferred) == (0, 1, 0)
    assert "pendingEvents" in evented.items()[f"{plan}#{refused}"]
    assert run_with(evented, monkeypatch, client("events")).alerts.events_sent == 1


@pytest.mark.parametrize("attempt", range(2))
def test_two_runs_at_once_send_each_event_once(
    attempt: int, account: SandboxAccount, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both runs read the state before either claims: only the conditional claims keep events single."""
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    keys = {add_key(account, plan, f"client-{n}", 85.0 + 5 * n) for n in range(3)}
    for name, value in evented.env(FORECAST_ENABLED="false", DIGEST_MIN_ALERTS="10").items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(dict(os.environ))
    barrier = threading.Barrier(2)
    reports: list[Any] = []

    def one_run() -> None:
        dynamodb: Any = ReadsThenWaits(client("dynamodb"), barrier)
        clients = AlertClients(
            sns=client("sns"),
            dynamodb=dynamodb,
            region="us-east-1",
            events=client("events"),
        )
        reports.append(run_at(settings, alert_clients=clients))

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(e["detail"]["apiKeyId"] for e in events_in(evented)) == sorted(keys)
    assert sum(report.alerts.events_sent for report in reports) == 3
    assert len(alerts_in(evented.received())) == 3


def test_two_handler_runs_in_parallel_send_one_event(
    account: SandboxAccount, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib  # noqa: PLC0415

    from apigw_sandbox.local import LambdaContextStandIn  # noqa: PLC0415

    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    key = add_key(account, plan, "billing-client", 100.0)
    run(monkeypatch, evented, DIGEST_MIN_ALERTS="10")  # a cold start with events on
    assert len(events_in(evented)) == 1
    second = add_key(account, plan, "checkout-web", 95.0)
    handler_module = importlib.import_module("quota_monitor.handler")
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

    assert sorted(result["eventsSent"] for result in results) == [0, 1]
    assert [e["detail"]["apiKeyId"] for e in events_in(evented)] == [second]
    assert key != second


def test_many_events_go_ten_to_a_call(
    account: SandboxAccount, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    for n in range(23):
        add_key(account, plan, f"client-{n:02d}", 81.0 + n % 19)
    events = client("events")
    calls = PutEventsFaults(events, lambda _: False)
    report = run_with(evented, monkeypatch, events).alerts
    assert sorted(calls.calls) == [3, 10, 10]  # a few calls at a time, in any order
    assert report.events_sent == 23
    assert len(events_in(evented)) == 23


def test_a_recrossing_after_an_extension_in_the_same_period_is_a_new_event(
    account: SandboxAccount, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consumers drop duplicates by id: a second crossing of the same level in one period (after an
    administrator extended the key back under its levels) must not look like the first one."""
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    key = add_key(account, plan, "billing-client", 85.0)
    run(monkeypatch, evented)
    account.update_remaining(plan, key, 9_000)  # 10% used: recovered
    run(monkeypatch, evented)
    account.record_usage(plan, key, 8_000)  # 90%: crossed again
    run(monkeypatch, evented)

    ids = [event["detail"]["id"] for event in events_in(evented)]
    period = account.today().replace(day=1).isoformat()
    assert ids == [
        f"threshold:{plan}:{key}:{period}:80",
        f"recovered:{plan}:{key}:{period}:80",
        f"threshold:{plan}:{key}:{period}:90:1",
    ]
    assert [alert["id"] for alert in alerts_in(evented.received())] == ids


def test_event_bus_settings_fail_the_cold_start_naming_the_variable(
    evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apigw_sandbox.local import invoke_handler  # noqa: PLC0415

    for name, value in evented.env(EVENT_BUS_NAME="quota events").items():
        monkeypatch.setenv(name, value)
    with pytest.raises(
        ValueError, match=r"EVENT_BUS_NAME='quota events' is not allowed: use an EventBridge bus"
    ):
        invoke_handler("quota_monitor.handler", {})


def test_a_bus_that_does_not_exist_fails_the_call_and_the_events_wait_for_it(
    account: SandboxAccount, cloud: LocalCloud, evented: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call refused as a whole (here: no such bus) is not tried again in the run, since botocore
    already retried what can be retried; the emails go out and the events are owed until the bus is there."""
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH")
    key = add_key(account, plan, "billing-client", 95.0)
    events = client("events")
    calls = PutEventsFaults(events, lambda _: False)

    missing = run_with(evented, monkeypatch, events, EVENT_BUS_NAME="quota-events-2")

    assert calls.calls == [1]
    assert (missing.alerts.alerts_sent, missing.alerts.event_failures, missing.alerts.events_owed) == (
        1,
        1,
        1,
    )
    assert "ResourceNotFoundException" in missing.alerts.event_errors[0]
    inbox = cloud.create_bus_with_queue(EventPattern("quota-events-2", {"source": [EVENT_SOURCE]}))
    there = run_with(evented, monkeypatch, client("events"), EVENT_BUS_NAME="quota-events-2")
    assert (there.alerts.alerts_sent, there.alerts.events_sent, there.alerts.events_owed) == (0, 1, 0)
    (event,) = inbox.received()
    validate_event(event)
    assert event["detail"]["apiKeyId"] == key
    assert len(alerts_in(evented.received())) == 1
