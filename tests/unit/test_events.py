"""Events as built: the detail against the schema, sizes and batches, the tags left out, and what a key
owes after each outcome of its two channels (SNS and EventBridge)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota_monitor.alert.rules import AlertState, Decision, Notification
from quota_monitor.alert.run import Delivery, channels_after
from quota_monitor.alert.state import MAX_PENDING_BYTES, Channels
from quota_monitor.compute.forecast import Forecast
from quota_monitor.deliver.events import (
    EVENT_DETAIL_TYPES,
    EVENT_SOURCE,
    MAX_BYTES,
    TagsOf,
    batches,
    build_entry,
    event_schema,
    is_secret_tag,
    public_tags,
)
from quota_monitor.models import EventEntry, KeyUsage, Target
from tests.contracts import JSON_FIELDS
from tests.events_support import validate_event

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def usage(used: int = 92_000, limit: int = 100_000, name: str | None = "billing-client") -> KeyUsage:
    return KeyUsage(
        usage_plan_id="p9x8y7",
        usage_plan_name="gold",
        api_key_id="k1a2b3c4d5",
        api_key_name=name,
        period="MONTH",
        period_start=date(2026, 11, 1),
        resets_at=datetime(2026, 12, 1, tzinfo=UTC),
        used=used,
        remaining=max(0, limit - used),
        limit=limit,
        utilization=min(100.0, 100 * used / limit),
        target=Target("123456789012", "us-east-1"),
    )


def note(
    kind: str = "threshold", *, level: int = 90, key: KeyUsage | None = None, episode: int = 0
) -> Notification:
    return Notification(
        kind,  # type: ignore[arg-type]
        key or usage(),
        level=level,
        levels=(80, 90, 100),
        levels_from="plan tag",
        forecast=Forecast(NOW + timedelta(days=2), 1234.5678, timedelta(days=3, hours=12))
        if kind != "recovered"
        else None,
        reason="the quota period reset" if kind == "recovered" else None,
        previous_period_start=date(2026, 10, 1) if kind == "recovered" else None,
        route="gold",
        episode=episode,
    )


def as_delivered(entry: EventEntry) -> dict[str, Any]:
    """The event as a rule's target receives it (EventBridge's envelope around the entry)."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": entry.detail_type,
        "source": EVENT_SOURCE,
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": list(entry.resources),
        "detail": json.loads(entry.detail),
    }


def entry_of(notification: Notification, tags: TagsOf | None = None) -> EventEntry:
    return build_entry(notification, tags or TagsOf(), region="us-east-1", partition="aws", now=NOW)


@pytest.mark.parametrize("kind", ["threshold", "forecast", "recovered"])
def test_each_kind_of_event_matches_the_schema_and_its_detail_type(kind: str) -> None:
    entry = entry_of(note(kind, level=0 if kind == "forecast" else 90))
    validate_event(as_delivered(entry))
    detail = json.loads(entry.detail)
    assert entry.detail_type == EVENT_DETAIL_TYPES[kind]  # type: ignore[index]
    assert detail["event"] == kind
    assert set(JSON_FIELDS) <= set(detail)
    assert set(detail) == set(event_schema()["definitions"]["QuotaEventDetail"]["properties"])


def test_the_schema_tells_the_detail_types_apart() -> None:
    """A recovery labelled as a crossing, or a forecast without its figures, is refused."""
    recovered = as_delivered(entry_of(note("recovered")))
    with pytest.raises(Exception, match="is not valid"):
        validate_event(recovered | {"detail-type": "Quota Threshold Crossed"})
    forecast = as_delivered(entry_of(note("forecast", level=0)))
    forecast["detail"]["forecast"] = None
    with pytest.raises(Exception, match="is not valid"):
        validate_event(forecast)


def test_the_detail_is_the_scan_contract_plus_what_happened() -> None:
    detail = json.loads(entry_of(note("recovered", level=100)).detail)
    assert {name: detail[name] for name in JSON_FIELDS} == usage().as_json()
    assert (detail["id"], detail["level"], detail["previousPeriodStart"], detail["route"]) == (
        "recovered:p9x8y7:k1a2b3c4d5:2026-10-01:100",
        100,
        "2026-10-01",
        "gold",
    )


tag_keys = st.text(min_size=1, max_size=128)
tag_values = st.text(max_size=256)


@given(
    used=st.integers(0, 10**9),
    limit=st.integers(1, 10**9),
    name=st.none() | st.text(max_size=1024),
    plan_tags=st.dictionaries(tag_keys, tag_values, max_size=50),
    key_tags=st.dictionaries(tag_keys, tag_values, max_size=50),
    kind=st.sampled_from(["threshold", "forecast", "recovered"]),
)
def test_any_event_matches_the_schema_and_fits_in_an_entry(
    used: int, limit: int, name: str | None, plan_tags: dict[str, str], key_tags: dict[str, str], kind: str
) -> None:
    entry = entry_of(
        note(kind, level=0 if kind == "forecast" else 80, key=usage(used, limit, name)),
        TagsOf(plan_tags, key_tags),
    )
    validate_event(as_delivered(entry))
    assert entry.size + len(EVENT_SOURCE) + 14 <= MAX_BYTES


def test_an_event_too_large_goes_without_its_tags_rather_than_not_at_all() -> None:
    huge = {f"tag-{n}": "x" * 10_000 for n in range(30)}
    entry = entry_of(note(), TagsOf(huge, {"owner": "a@example.com"}))
    detail = json.loads(entry.detail)
    assert entry.size < MAX_BYTES
    assert detail["tags"] == {"usagePlan": {}, "apiKey": {}}
    assert detail["withheldTags"] == {"usagePlan": sorted(huge), "apiKey": ["owner"]}
    validate_event(as_delivered(entry))


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("owner-email", "billing@example.com", False),
        ("team", "partners", False),
        ("quota-monitor:route", "gold", False),
        ("aws:cloudformation:stack-name", "shop", False),
        ("db-password", "hunter2", True),
        ("DB_PASSWORD", "hunter2", True),
        ("slackWebhookUrl", "https://hooks.slack.com/services/T/B/X", True),
        ("api-key", "abc", True),
        ("ApiKeyValue", "abc", True),
        ("x-auth-token", "abc", True),
        ("client_secret", "abc", True),
        ("Credentials", "abc", True),
        ("private_key", "-----BEGIN", True),
        ("callback", "https://user:pass@example.com/hook", True),
        ("homepage", "https://example.com/user@x", False),
    ],
)
def test_tags_that_look_secret_are_left_out(key: str, value: str, secret: bool) -> None:
    assert is_secret_tag(key, value) is secret
    kept, withheld = public_tags({key: value})
    assert (kept, withheld) == (({}, [key]) if secret else ({key: value}, []))


def entry(n: int, size: int = 100) -> EventEntry:
    return EventEntry(id=f"e{n}", detail_type="Quota Threshold Crossed", detail="x" * size)


def test_batches_hold_at_most_ten_entries_and_256_kb() -> None:
    assert [len(batch) for batch in batches(entry(n) for n in range(23))] == [10, 10, 3]
    big = [entry(n, 100_000) for n in range(5)]
    assert [len(batch) for batch in batches(big)] == [2, 2, 1]
    for batch in batches(big):
        assert sum(item.size + len(EVENT_SOURCE) + 14 for item in batch) <= MAX_BYTES


# -- what a key owes after a run ------------------------------------------------------------------
OWED = entry(1)
NEW = EventEntry(
    id="threshold:p9x8y7:k1a2b3c4d5:2026-11-01:90", detail_type="Quota Threshold Crossed", detail="{}"
)


def delivery(
    *, owed: tuple[EventEntry, ...] = (), event_sent: str | None = None, loud: bool = True
) -> Delivery:
    read = AlertState(
        period_start=date(2026, 11, 1), level=80, rev=4, pending_events=owed, event_sent=event_sent
    )
    notification = note() if loud else None
    decision = Decision("p9x8y7#k1a2b3c4d5", usage(), read, read, notification)
    return Delivery(decision.pk, read, decision, NEW if loud and event_sent != NEW.id else None)


# (case, delivery, events taken, SNS went out, what the key owes after, the event taken ahead of SNS)
CHANNELS = [
    ("both went out", delivery(), {NEW.id}, True, (), None),
    ("SNS went out, the event did not: it is owed", delivery(), set(), True, (NEW,), None),
    ("the event went out, SNS did not: remembered", delivery(), {NEW.id}, False, (), NEW.id),
    ("neither went out: nothing changes", delivery(), set(), False, (), None),
    ("an owed event went out with the new one", delivery(owed=(OWED,)), {OWED.id, NEW.id}, True, (), None),
    ("an owed event failed again", delivery(owed=(OWED,)), {NEW.id}, True, (OWED,), None),
    ("an event sent before is not sent again", delivery(event_sent=NEW.id), set(), True, (), None),
    ("... and stays remembered while SNS fails", delivery(event_sent=NEW.id), set(), False, (), NEW.id),
    ("owed only, sent", delivery(owed=(OWED,), loud=False), {OWED.id}, None, (), None),
    ("owed only, failed again", delivery(owed=(OWED,), loud=False), set(), None, (OWED,), None),
]


@pytest.mark.parametrize(
    ("case", "item", "sent", "sns_ok", "owed", "event_sent"), CHANNELS, ids=[c[0] for c in CHANNELS]
)
def test_what_a_key_owes_after_each_outcome_of_its_two_channels(
    case: str,
    item: Delivery,
    sent: set[str],
    sns_ok: bool | None,
    owed: tuple[EventEntry, ...],
    event_sent: str | None,
) -> None:
    after = channels_after(item, sent=frozenset(sent), sns_ok=sns_ok)
    assert (after.pending_events, after.event_sent) == (owed, event_sent)


def test_owed_events_are_bounded_dropping_the_oldest() -> None:
    many = tuple(entry(n, 20_000) for n in range(30))
    kept, dropped = Channels(many).bounded()
    assert kept.pending_events == many[len(dropped) :]
    assert dropped == many[: len(dropped)]
    assert 0 < len(dropped) < len(many)
    assert sum(item.size for item in kept.pending_events) <= MAX_PENDING_BYTES


def test_a_new_crossing_after_a_recovery_in_the_period_has_a_new_id() -> None:
    assert note().event_id == "threshold:p9x8y7:k1a2b3c4d5:2026-11-01:90"
    assert note(episode=2).event_id == "threshold:p9x8y7:k1a2b3c4d5:2026-11-01:90:2"


def test_docs_events_md_shows_the_schema_as_shipped_and_examples_that_match_it() -> None:
    import re  # noqa: PLC0415

    from tests.infra_support import REPO_ROOT  # noqa: PLC0415

    text = (REPO_ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    *examples, schema = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)]
    assert schema == event_schema()
    assert [example["detail-type"] for example in examples] == list(EVENT_DETAIL_TYPES.values())
    properties = set(event_schema()["definitions"]["QuotaEventDetail"]["properties"])
    for example in examples:
        validate_event(example)
        assert set(example["detail"]) == properties
    # Every field of the detail is in the doc's table.
    for name in properties:
        assert f"`{name}`" in text, name
