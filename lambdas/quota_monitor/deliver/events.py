"""Every crossing, forecast and recovery as an EventBridge event: one per key, for programs.

Email and chat get one message (or a digest) per route; EventBridge gets one event per
notification, so that a rule can react to one key: email its owner, open a ticket, call a webhook.

- ``source`` is ``apigw-quota-monitor``; the detail-types are ``Quota Threshold Crossed``,
  ``Quota Forecast Exhausted`` and ``Quota Recovered``.
- The detail (:func:`detail`, schema ``events.schema.json`` beside this module, docs/events.md)
  carries the scan's JSON fields, the levels and where they came from, the forecast, the route, the
  plan's and the key's tags without the ones that look secret (:func:`public_tags`), and an ``id``
  that is the same for the same event, so that consumers can drop a duplicate.
- ``resources`` holds the usage plan's and the key's ARNs.

PutEvents (docs/aws-behaviour.md#eventbridge) takes at most 10 entries a call, each (and, the
reference is not clear, maybe the call's entries together) under 256 KB, and can refuse single
entries while the call succeeds: :func:`put_events` batches within both limits, reads every
entry's result, and tries the entries that failed with a retryable error again, a few times within
the run. What still failed is returned; the caller keeps it for the next run
(:mod:`quota_monitor.alert.run`). Never an API key's value: the monitor never asks for one.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.deliver.console import console_url
from quota_monitor.deliver.messages import key_region
from quota_monitor.errors import describe
from quota_monitor.models import EventEntry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from datetime import datetime

    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from quota_monitor.alert.rules import Notification, NotificationKind

EVENT_SOURCE = "apigw-quota-monitor"
EVENT_DETAIL_TYPES: dict[NotificationKind, str] = {
    "threshold": "Quota Threshold Crossed",
    "forecast": "Quota Forecast Exhausted",
    "recovered": "Quota Recovered",
}
EVENT_SCHEMA = "apigw-quota-monitor/events@1"
SCHEMA_PATH = Path(__file__).with_name("events.schema.json")
MAX_ENTRIES_PER_CALL = 10
#: 256 KB an entry; the request's entries are kept under it together too, with room for the
#: Source and Time of each (docs/aws-behaviour.md#eventbridge).
MAX_BYTES = 256 * 1024
ENTRY_OVERHEAD = len(EVENT_SOURCE) + 14
#: PutEvents' per-entry error codes worth trying again; any other (AccessDeniedException,
#: InvalidArgument, MalformedDetail, NotAuthorizedForSourceException...) will not change in a second.
RETRYABLE = frozenset({"InternalFailure", "ThrottlingException"})
ATTEMPTS = 3
BASE_DELAY_SECONDS = 0.2
#: PutEvents calls in flight at once: the first run of a month can put an event for every alerted
#: key, ten to a call, and one call at a time would spend the run's time waiting.
WORKERS = 4

# -- tags -----------------------------------------------------------------------------------------
#: A tag whose key (lower case, without separators) contains one of these is left out of events.
SECRET_KEY_PARTS = (
    "secret",
    "password",
    "passwd",
    "passphrase",
    "token",
    "credential",
    "apikey",
    "accesskey",
    "privatekey",
    "signingkey",
    "authorization",
    "webhook",
    "connectionstring",
)
#: A URL that carries a user and password (``https://user:pass@host``).
_URL_WITH_CREDENTIALS = re.compile(r"://[^/\s@:]+:[^/\s@]*@")


def is_secret_tag(key: str, value: str) -> bool:
    """Whether a tag looks secret: its key names one (``db-password``, ``slackWebhookUrl``,
    ``API_TOKEN``), or its value is a URL with credentials in it. Tags are not meant for secrets,
    but events reach anyone who can read the bus or a rule's target, so the rule errs on the side
    of leaving a tag out (docs/events.md#tags)."""
    squashed = re.sub(r"[^a-z0-9]", "", key.lower())
    return any(part in squashed for part in SECRET_KEY_PARTS) or bool(_URL_WITH_CREDENTIALS.search(value))


def public_tags(tags: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """(the tags that may go into an event, the keys of those left out), both sorted by key."""
    kept = {key: tags[key] for key in sorted(tags) if not is_secret_tag(key, tags[key])}
    return kept, sorted(key for key in tags if key not in kept)


# -- building -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TagsOf:
    """A key's and its plan's tags, as the scan read them."""

    usage_plan: Mapping[str, str] = field(default_factory=dict)
    api_key: Mapping[str, str] = field(default_factory=dict)


def detail(
    note: Notification, tags: TagsOf, *, region: str, now: datetime, account_id: str | None = None
) -> dict[str, Any]:
    """The event's detail: plain JSON, no key values (schema: :data:`SCHEMA_PATH`).

    ``region`` and ``account_id`` are the monitor's own: where a key of no stated target is (a key
    read by a run of one target given its clients); a key's target, when it has one, says where it is.
    """
    key = note.key
    plan_tags, plan_withheld = public_tags(tags.usage_plan)
    key_tags, key_withheld = public_tags(tags.api_key)
    forecast = None
    if note.forecast is not None:
        forecast = {
            "exhaustsAt": note.forecast.exhausts_at.isoformat(),
            "requestsPerHour": round(note.forecast.requests_per_hour, 3),
            "secondsBeforeReset": max(0, int(note.forecast.ahead_of_reset.total_seconds())),
        }
    return {
        "schema": EVENT_SCHEMA,
        "id": note.event_id,
        "event": note.kind,
        **key.as_json(),
        "accountId": key.target.account_id if key.target is not None else account_id,
        "region": key_region(key, region),
        "resetsAt": key.resets_at.isoformat(),
        "level": note.level,
        "levels": list(note.levels),
        "levelsFrom": note.levels_from,
        "forecast": forecast,
        "reason": note.reason,
        "previousPeriodStart": (
            note.previous_period_start.isoformat() if note.previous_period_start is not None else None
        ),
        "route": note.route,
        "tags": {"usagePlan": plan_tags, "apiKey": key_tags},
        "withheldTags": {"usagePlan": plan_withheld, "apiKey": key_withheld},
        "consoleUrl": console_url(key_region(key, region), key.usage_plan_id),
        "detectedAt": now.isoformat(),
    }


def resource_arns(note: Notification, *, partition: str, region: str) -> tuple[str, str]:
    """The usage plan's and the API key's ARNs (API Gateway resources have no account in theirs)."""
    base = f"arn:{partition}:apigateway:{key_region(note.key, region)}::"
    return f"{base}/usageplans/{note.key.usage_plan_id}", f"{base}/apikeys/{note.key.api_key_id}"


def build_entry(
    note: Notification,
    tags: TagsOf,
    *,
    region: str,
    partition: str,
    now: datetime,
    account_id: str | None = None,
) -> EventEntry:
    """The event for one notification. Tags are bounded by AWS (50 a resource, 128 + 256 characters
    each), so an event is a few KB; were one ever over the limit, it goes without its tags (their
    keys listed as withheld) rather than not at all."""
    body = detail(note, tags, region=region, now=now, account_id=account_id)
    entry = EventEntry(
        id=note.event_id,
        detail_type=EVENT_DETAIL_TYPES[note.kind],
        detail=json.dumps(body, separators=(",", ":")),
        resources=resource_arns(note, partition=partition, region=region),
    )
    if entry.size + ENTRY_OVERHEAD <= MAX_BYTES:
        return entry
    body["tags"] = {"usagePlan": {}, "apiKey": {}}
    body["withheldTags"] = {"usagePlan": sorted(tags.usage_plan), "apiKey": sorted(tags.api_key)}
    return EventEntry(entry.id, entry.detail_type, json.dumps(body, separators=(",", ":")), entry.resources)


def event_schema() -> dict[str, Any]:
    """The JSON Schema (draft 4, as EventBridge's schema registry takes it) of the events."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


# -- sending --------------------------------------------------------------------------------------
def batches(entries: Iterable[EventEntry]) -> Iterator[list[EventEntry]]:
    """At most :data:`MAX_ENTRIES_PER_CALL` entries a call, and under :data:`MAX_BYTES` together."""
    batch: list[EventEntry] = []
    size = 0
    for entry in entries:
        entry_size = entry.size + ENTRY_OVERHEAD
        if batch and (len(batch) >= MAX_ENTRIES_PER_CALL or size + entry_size > MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        yield batch


@dataclass(frozen=True)
class EventsSent:
    """What :func:`put_events` did: the ids of the events that went out, and why the others did not."""

    sent: frozenset[str] = frozenset()
    #: Event id -> the error of its last attempt (``ErrorCode: message``).
    failed: dict[str, str] = field(default_factory=dict)
    calls: int = 0


def _request(entry: EventEntry, bus: str) -> PutEventsRequestEntryTypeDef:
    return {
        "Source": EVENT_SOURCE,
        "DetailType": entry.detail_type,
        "Detail": entry.detail,
        "Resources": list(entry.resources),
        "EventBusName": bus,
    }


@dataclass(frozen=True)
class _CallResult:
    """One PutEvents call: the entries taken, those refused (id -> reason), and those worth retrying."""

    sent: tuple[str, ...]
    failed: dict[str, str]
    retry: tuple[EventEntry, ...]


def _put_batch(events: EventBridgeClient, bus: str, batch: list[EventEntry]) -> _CallResult:
    try:
        response = events.put_events(Entries=[_request(entry, bus) for entry in batch])
    except (ClientError, BotoCoreError) as error:
        reason = describe(error)
        return _CallResult((), {entry.id: reason for entry in batch}, ())
    results = response.get("Entries", [])
    sent: list[str] = []
    failed: dict[str, str] = {}
    retry: list[EventEntry] = []
    for index, entry in enumerate(batch):
        result = results[index] if index < len(results) else {"ErrorCode": "MissingResult"}
        code = result.get("ErrorCode")
        if not code and result.get("EventId"):
            sent.append(entry.id)
            continue
        failed[entry.id] = f"{code or 'NoEventId'}: {result.get('ErrorMessage', '')}".rstrip(": ")
        if code in RETRYABLE:
            retry.append(entry)
    return _CallResult(tuple(sent), failed, tuple(retry))


def put_events(
    events: EventBridgeClient,
    bus: str,
    entries: Sequence[EventEntry],
    *,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    workers: int = WORKERS,
) -> EventsSent:
    """PutEvents for every entry, each tried up to ``attempts`` times, ``workers`` calls at a time.

    ``FailedEntryCount`` and every entry's ``ErrorCode`` are read: the call succeeds while single
    entries fail. An entry that failed with :data:`RETRYABLE` is tried again after a backoff; any
    other error is final for this run, and so is a call that fails as a whole: botocore's standard
    retries (the client's) have already tried throttling and 5xx again.
    """
    sent: set[str] = set()
    failed: dict[str, str] = {}
    calls = 0
    pending = list(entries)
    for attempt in range(attempts):
        if attempt:
            sleep(base_delay * 2 ** (attempt - 1))
        todo = list(batches(pending))
        calls += len(todo)
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
            results = list(pool.map(lambda batch: _put_batch(events, bus, batch), todo))
        pending = []
        for result in results:
            sent.update(result.sent)
            for event_id in result.sent:
                failed.pop(event_id, None)
            failed.update(result.failed)
            pending += result.retry
        if not pending:
            break
    return EventsSent(frozenset(sent), failed, calls)
