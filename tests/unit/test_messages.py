"""Alert messages: SNS's subject rules, Chatbot's format, digests that name every key and fit SNS."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota_monitor.alert.rules import Notification
from quota_monitor.compute.forecast import Forecast
from quota_monitor.deliver.console import console_url
from quota_monitor.deliver.messages import (
    MAX_MESSAGE_BYTES,
    SCHEMA,
    compose,
    percent,
    single_message,
    subject,
)
from quota_monitor.deliver.slack.blocks import alerts_message
from quota_monitor.models import KeyUsage

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def key(
    name: str | None = "billing-client", *, key_id: str = "k1a2b3c4d5", plan: str = "gold", used: float = 92.4
) -> KeyUsage:
    return KeyUsage(
        usage_plan_id="p9x8y7",
        usage_plan_name=plan,
        api_key_id=key_id,
        api_key_name=name,
        period="MONTH",
        period_start=date(2026, 11, 1),
        resets_at=datetime(2026, 12, 1, tzinfo=UTC),
        used=int(used * 10_000),
        remaining=1_000_000 - int(used * 10_000),
        limit=1_000_000,
        utilization=used,
    )


def note(usage: KeyUsage, kind: str = "threshold", level: int = 90) -> Notification:
    forecast = (
        Forecast(NOW + timedelta(days=2), 1234.5, timedelta(days=3, hours=12))
        if kind != "recovered"
        else None
    )
    return Notification(
        kind,  # type: ignore[arg-type]
        usage,
        level=level,
        levels=(80, 90, 100),
        levels_from="plan tag",
        forecast=forecast,
        reason="the quota period reset" if kind == "recovered" else None,
    )


def test_the_subject_says_who_how_much_and_which_plan() -> None:
    assert subject(note(key())) == "[quota] billing-client at 92% of MONTH quota (plan gold)"
    assert (
        subject(note(key(), "forecast"))
        == "[quota] billing-client to run out of MONTH quota by Nov 27 (plan gold)"
    )
    assert (
        subject(note(key(), "recovered"))
        == "[quota] billing-client recovered: the quota period reset (plan gold)"
    )
    assert subject(note(key(name=None))) == "[quota] k1a2b3c4d5 at 92% of MONTH quota (plan gold)"


def test_a_percentage_is_never_rounded_up_to_a_level() -> None:
    assert percent(89.99) == "89.9%"
    assert subject(note(key(used=99.97))).startswith("[quota] billing-client at 99% ")


@given(name=st.text(min_size=0, max_size=300), plan=st.text(min_size=1, max_size=300))
def test_subjects_obey_sns_rules_whatever_the_names(name: str, plan: str) -> None:
    text = subject(note(key(name=name or None, plan=plan)))
    assert len(text) < 100
    assert text.isascii()
    assert text.isprintable()
    assert text.startswith("[quota] ")


def test_one_alert_carries_every_fact_in_every_body() -> None:
    message = single_message(note(key()), region="eu-west-1", now=NOW)
    bodies = message.bodies
    assert set(bodies) == {"default", "email", "lambda", "sqs"}
    assert message.size < MAX_MESSAGE_BYTES
    email = bodies["email"]
    for fact in (
        "gold (p9x8y7)",
        "billing-client (k1a2b3c4d5)",
        "90% (levels 80, 90, 100 from the plan tag)",
        "92.4%",
        "924,000 requests this period (limit 1,000,000)",
        "76,000",
        "MONTH from 2026-11-01, resets 2026-12-01 00:00 UTC",
        "1,234 requests an hour",
        "3 days 12 h before it resets",
        "https://eu-west-1.console.aws.amazon.com/apigateway/main/usage-plans/p9x8y7?region=eu-west-1",
    ):
        assert fact in email
    chatbot = json.loads(bodies["default"])
    assert (chatbot["version"], chatbot["source"], chatbot["content"]["textType"]) == (
        "1.0",
        "custom",
        "client-markdown",
    )
    assert chatbot["content"]["title"] == ":warning: billing-client at 92% of MONTH quota (plan gold)"
    assert "*Remaining:* 76,000" in chatbot["content"]["description"]
    assert chatbot["metadata"]["eventType"] == "QuotaLevelCrossed"
    data = json.loads(bodies["lambda"])
    assert data == json.loads(bodies["sqs"])
    assert data["schema"] == SCHEMA
    (alert,) = data["alerts"]
    assert (alert["event"], alert["level"], alert["remaining"], alert["limit"]) == (
        "threshold",
        90,
        76_000,
        1_000_000,
    )
    assert alert["forecast"]["secondsBeforeReset"] == int(timedelta(days=3, hours=12).total_seconds())


@pytest.mark.parametrize(
    ("region", "link"),
    [
        (
            "eu-west-1",
            "https://eu-west-1.console.aws.amazon.com/apigateway/main/usage-plans/p9x8y7?region=eu-west-1",
        ),
        (
            "cn-northwest-1",
            "https://console.amazonaws.cn/apigateway/main/usage-plans/p9x8y7?region=cn-northwest-1",
        ),
        (
            "us-gov-east-1",
            "https://console.amazonaws-us-gov.com/apigateway/main/usage-plans/p9x8y7?region=us-gov-east-1",
        ),
    ],
)
def test_the_console_link_is_in_the_console_of_the_regions_partition(region: str, link: str) -> None:
    assert console_url(region, "p9x8y7") == link
    bodies = single_message(note(key()), region=region, now=NOW).bodies
    assert link in bodies["email"]
    assert link in json.loads(bodies["default"])["content"]["nextSteps"][0]
    assert json.loads(bodies["lambda"])["alerts"][0]["consoleUrl"] == link
    digest = compose([note(key(key_id=f"k{n}")) for n in range(5)], digest_min=5, region=region, now=NOW)
    assert f"gold: {link}" in digest[0].bodies["email"]


@pytest.mark.parametrize("region", ["us-iso-east-1", "us-isob-east-1", "eusc-de-east-1", "zz-nowhere-9"])
def test_where_no_console_is_known_the_messages_go_without_a_link(region: str) -> None:
    """The isolated and sovereign partitions (and regions botocore does not know) have no console
    address known here: no link at all rather than one into the commercial console."""
    assert console_url(region, "p9x8y7") is None
    bodies = single_message(note(key()), region=region, now=NOW).bodies
    assert "console" not in bodies["email"].lower()
    assert "92.4%" in bodies["email"]
    assert not any(
        "Open the usage plan" in step for step in json.loads(bodies["default"])["content"]["nextSteps"]
    )
    assert json.loads(bodies["lambda"])["alerts"][0]["consoleUrl"] is None
    digest = compose([note(key(key_id=f"k{n}")) for n in range(5)], digest_min=5, region=region, now=NOW)
    assert "https://" not in digest[0].bodies["email"]
    for message in (single_message(note(key()), region=region, now=NOW), digest[0]):
        blocks = json.dumps(alerts_message(json.loads(message.bodies["lambda"])))
        assert "None" not in blocks
        assert "Open the usage plan" not in blocks


def test_below_the_digest_size_each_notification_is_a_message() -> None:
    notes = [note(key(f"client-{n}", key_id=f"k{n:09d}")) for n in range(4)]
    messages = compose(notes, digest_min=5, region="us-east-1", now=NOW)
    assert [len(m.notes) for m in messages] == [1, 1, 1, 1]


def test_a_digest_names_every_key_in_its_default_and_email_bodies() -> None:
    notes = [note(key(f"client-{n:02d}", key_id=f"k{n:09d}", used=80 + n)) for n in range(12)]
    notes += [note(key("recovered-one", key_id="kr"), "recovered", level=100)]
    (message,) = compose(notes, digest_min=5, region="us-east-1", now=NOW)
    assert message.subject == "[quota] 13 API keys: 12 crossed a level, 1 recovered"
    chatbot = json.loads(message.bodies["default"])
    for n in [*range(12), None]:
        key_id = "kr" if n is None else f"k{n:09d}"
        assert key_id in chatbot["content"]["description"]
        assert key_id in message.bodies["email"]
    assert len(json.loads(message.bodies["lambda"])["alerts"]) == 13
    # Most urgent first.
    assert chatbot["content"]["description"].splitlines()[0].startswith("- gold / client-11 (k000000011)")


def test_a_digest_too_big_for_one_message_is_split_into_parts_that_each_fit() -> None:
    notes = [
        note(key(f"client-{n:05d}-{'x' * 40}", key_id=f"k{n:09d}", used=80 + n % 20)) for n in range(3_000)
    ]
    messages = compose(notes, digest_min=5, region="us-east-1", now=NOW)
    assert len(messages) > 1
    assert all(message.size <= MAX_MESSAGE_BYTES for message in messages)
    parts = [json.loads(message.bodies["sqs"]) for message in messages]
    assert [(p["part"], p["parts"]) for p in parts] == [
        (n, len(messages)) for n in range(1, len(messages) + 1)
    ]
    named = [alert["apiKeyId"] for p in parts for alert in p["alerts"]]
    assert sorted(named) == sorted(f"k{n:09d}" for n in range(3_000))
    assert messages[0].subject.endswith(f"(part 1 of {len(messages)})")
    assert messages[0].subject.startswith("[quota] 3000 API keys")


@pytest.mark.parametrize("kind", ["threshold", "forecast", "recovered"])
def test_every_kind_renders_for_a_key_without_a_name(kind: str) -> None:
    message = single_message(note(key(name=None), kind), region="us-east-1", now=NOW)
    assert "k1a2b3c4d5" in message.bodies["email"]
    assert json.loads(message.bodies["default"])["content"]["title"]
