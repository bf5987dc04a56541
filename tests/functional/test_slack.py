"""The Slack webhook forwarder against a local receiver: Block Kit within Slack's limits, retries on
429 and 5xx, a final failure raised, and the webhook URL read from Secrets Manager and never logged."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from apigw_sandbox.local import invoke_handler
from apigw_sandbox.slack import SlackReceiver, block_kit_problem
from quota_monitor.alert.rules import Notification
from quota_monitor.compute.forecast import Forecast
from quota_monitor.deliver.messages import compose, single_message, structured
from quota_monitor.deliver.slack.blocks import alerts_message, message_for
from quota_monitor.deliver.slack.webhook import check_webhook_url, post
from quota_monitor.errors import SlackDeliveryError
from quota_monitor.models import KeyUsage

if TYPE_CHECKING:
    from collections.abc import Iterator

    from apigw_sandbox.local import LocalCloud

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def note(n: int = 0, kind: str = "threshold") -> Notification:
    usage = KeyUsage(
        usage_plan_id="p9x8y7",
        usage_plan_name="gold",
        api_key_id=f"k{n:09d}",
        api_key_name=f"client-{n:05d}",
        period="MONTH",
        period_start=date(2026, 11, 1),
        resets_at=datetime(2026, 12, 1, tzinfo=UTC),
        used=950_000,
        remaining=50_000,
        limit=1_000_000,
        utilization=95.0,
    )
    forecast = Forecast(NOW + timedelta(days=1), 2_000.0, timedelta(days=4)) if kind == "forecast" else None
    return Notification(kind, usage, level=90, levels=(80, 90, 100), levels_from="default", forecast=forecast)  # type: ignore[arg-type]


def sns_event(*bodies: str, subject: str = "[quota] test") -> dict[str, Any]:
    return {
        "Records": [
            {"EventSource": "aws:sns", "Sns": {"MessageId": f"m{n}", "Subject": subject, "Message": body}}
            for n, body in enumerate(bodies)
        ]
    }


@pytest.fixture
def receiver() -> Iterator[SlackReceiver]:
    with SlackReceiver() as slack:
        yield slack


def no_sleep(seconds: float) -> None:
    return


def test_a_single_alert_becomes_a_block_kit_message(receiver: SlackReceiver) -> None:
    body = single_message(note(kind="forecast"), region="us-east-1", now=NOW).bodies["lambda"]
    message = message_for("[quota] x", body)
    assert post(receiver.url, message, sleep=no_sleep) == 1
    (received,) = receiver.received
    assert received["blocks"][0]["type"] == "header"
    text = json.dumps(received)
    for fact in ("client-00000", "k000000000", "95.0%", "50,000", "1,000,000", "2,000 requests an hour"):
        assert fact in text
    assert received["blocks"][-2]["elements"][0]["url"].endswith("/usage-plans/p9x8y7?region=us-east-1")


def test_a_long_digest_is_shortened_for_slack_saying_how_many_it_left_out(receiver: SlackReceiver) -> None:
    carried = 2_000
    payload = structured([note(n) for n in range(carried)], region="us-east-1", now=NOW, digest=True)
    message = alerts_message(payload)
    assert block_kit_problem(message) is None
    assert len(message["blocks"]) <= 50
    shown = sum(
        block["text"]["text"].count("\n") + 1 for block in message["blocks"][1:] if block["type"] == "section"
    )
    note_block = message["blocks"][-2]["elements"][0]["text"]
    assert note_block == f"…and {carried - shown} more keys not shown here; the email lists every key."
    assert 0 < shown < carried
    post(receiver.url, message, sleep=no_sleep)
    assert len(receiver.received) == 1


def test_a_short_digest_lists_every_key(receiver: SlackReceiver) -> None:
    (digest,) = compose([note(n) for n in range(7)], digest_min=5, region="us-east-1", now=NOW)
    message = alerts_message(json.loads(digest.bodies["lambda"]))
    text = json.dumps(message)
    assert all(f"k{n:09d}" in text for n in range(7))
    assert "not shown" not in text


def test_cloudwatch_alarms_on_the_same_topic_are_posted_too() -> None:
    alarm = {
        "AlarmName": "quota-monitor-heartbeat",
        "AlarmDescription": "No KeysScanned for two intervals",
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "NewStateReason": "Threshold Crossed: no datapoints were received",
        "Region": "US East (N. Virginia)",
    }
    message = message_for("ALARM: quota-monitor-heartbeat", json.dumps(alarm))
    assert message["blocks"][0]["text"]["text"] == ":rotating_light: ALARM: quota-monitor-heartbeat"
    assert "no datapoints were received" in message["blocks"][1]["text"]["text"]
    plain = message_for("hello", "not json <at all>")
    assert plain["blocks"][0]["text"]["text"] == "*hello*\nnot json &lt;at all&gt;"


def test_429_and_500_are_retried_honouring_retry_after(receiver: SlackReceiver) -> None:
    receiver.answer(429, "rate_limited", {"Retry-After": "7"})
    receiver.answer(500, "internal_error")
    receiver.answer(503, "service_unavailable")
    waits: list[float] = []
    attempts = post(receiver.url, {"text": "hi"}, sleep=waits.append, rand=lambda: 1.0)
    assert attempts == 4
    assert receiver.received == [{"text": "hi"}]
    assert waits[0] == 7.0  # Retry-After beats the 1 s backoff
    assert waits[1:] == [2.0, 4.0]


def test_a_webhook_that_keeps_failing_raises_so_that_lambda_retries(receiver: SlackReceiver) -> None:
    receiver.answer(500, "internal_error", times=5)
    with pytest.raises(SlackDeliveryError, match="failed 5 times; last: HTTP 500 internal_error"):
        post(receiver.url, {"text": "hi"}, sleep=no_sleep)
    assert receiver.attempts == 5
    assert receiver.received == []


def test_a_refusal_is_not_retried(receiver: SlackReceiver) -> None:
    receiver.answer(404, "no_service")
    with pytest.raises(SlackDeliveryError, match="Slack refused the message: HTTP 404 no_service") as caught:
        post(receiver.url, {"text": "hi"}, sleep=no_sleep)
    assert receiver.attempts == 1
    assert receiver.url not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.slack.com/services/x", "does not hold an https URL"),
        ("ftp://x", "does not hold an https URL"),
        ("hooks.slack.com/services/x", "does not hold an https URL"),
        ("", "does not hold an https URL"),
        # A pasted line break or space inside: urllib's own error would quote the token.
        ("https://hooks.slack.com/services/T000/B000/SECRETTOKEN abc", "a space or a control character"),
        ("https://hooks.slack.com/services/T000/B000/SECRET\nTOKEN", "a space or a control character"),
        ("https://hooks.slack.com:SECRETTOKEN/services/T000", "an invalid port"),
    ],
)
def test_a_webhook_url_that_cannot_be_used_is_refused_without_repeating_it(url: str, problem: str) -> None:
    with pytest.raises(SlackDeliveryError, match=problem) as caught:
        check_webhook_url(url)
    assert "SECRET" not in str(caught.value)
    assert (not url) or url not in str(caught.value)


def test_no_attempt_starts_that_the_invocation_cannot_finish(receiver: SlackReceiver) -> None:
    receiver.answer(500, "internal_error", times=5)
    # 30 s left at first, each attempt spends 10: a third one (10 s timeout + 2 to spare) does not fit.
    with pytest.raises(
        SlackDeliveryError, match=r"too little time left .* after 2 attempt\(s\); last: HTTP 500"
    ):
        post(receiver.url, {"text": "hi"}, sleep=no_sleep, seconds_left=lambda: 30.0 - 10 * receiver.attempts)
    assert receiver.attempts == 2


def slack_secret(cloud: LocalCloud, url: str) -> str:
    arn: str = cloud.client("secretsmanager").create_secret(
        Name="quota-monitor/slack-webhook", SecretString=url
    )["ARN"]
    return arn


def test_the_forwarder_reads_the_url_from_secrets_manager_and_never_logs_it(
    cloud: LocalCloud,
    receiver: SlackReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", slack_secret(cloud, receiver.url))
    receiver.answer(429, "rate_limited", {"Retry-After": "0"})
    digest = compose([note(n) for n in range(6)], digest_min=5, region="us-east-1", now=NOW)[0]
    single = single_message(note(9), region="us-east-1", now=NOW)

    result = invoke_handler(
        "quota_monitor.deliver.slack.handler", sns_event(digest.bodies["lambda"], single.bodies["lambda"])
    )

    assert result == {"posted": 2}
    assert [message["text"] for message in receiver.received] == [
        "6 API keys need attention",
        "client-00009 crossed 90% of its MONTH quota (plan gold)",
    ]
    logged = json.dumps([record.__dict__ for record in caplog.records], default=str)
    assert "posted to Slack" in logged
    assert receiver.url not in logged
    assert "T000/B000" not in logged


def test_the_forwarder_raises_when_slack_finally_fails(
    cloud: LocalCloud, receiver: SlackReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", slack_secret(cloud, receiver.url))
    monkeypatch.setenv("SLACK_RETRY_BASE_SECONDS", "0.01")
    receiver.answer(500, "internal_error", times=5)
    with pytest.raises(SlackDeliveryError, match="failed 5 times"):
        invoke_handler("quota_monitor.deliver.slack.handler", sns_event("plain text alert"))


def test_the_forwarder_refuses_a_secret_that_is_not_a_webhook_url(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", slack_secret(cloud, "not-a-url"))
    with pytest.raises(SlackDeliveryError, match="does not hold an https URL"):
        invoke_handler("quota_monitor.deliver.slack.handler", sns_event("x"))
