"""Alert state in DynamoDB: one item per usage plan and key, written so that no alert is sent twice or lost.

EventBridge and Lambda's asynchronous invocation deliver at least once, so two runs can overlap
(docs/aws-behaviour.md#scheduling-and-delivery). The protocol, per key with something to say:

1. **Claim** with a conditional write: the item must still be at the revision this run read, not
   claimed by another run whose claim is still live, and last changed from a reading that ended
   before this run's reading of the key began (``readAt``: an older reading never undoes a newer
   one). The loser of a race skips the key; the winner alone delivers.
2. **Deliver**: publish to SNS; with ``EVENT_BUS_NAME``, also put the key's event on EventBridge.
3. **Confirm**: store the new level (and forecast flag, period), bump the revision, drop the
   claim; conditional on still holding the claim. Or, when the SNS publish failed, **release**: drop
   the claim and leave the state as it was, so that the next run evaluates the key afresh and sends.

A run that dies between claim and confirm leaves a claim that expires at the end of that run's
lease (the Lambda's remaining time); the next run then sends again. That is the one case where a
notification can repeat (if the publish had gone through): at least once, never lost.

A run sends its claims, confirmations and releases up to a hundred to a ``TransactWriteItems``
(:meth:`AlertStateStore.apply`), each item under the same condition as its own ``UpdateItem``.

Two channels, each delivered once: the state follows the SNS message (people), and the item
remembers per channel what is still owed, so that a failure of one channel never repeats the other:

- SNS went out, the event did not: confirm, and keep the event in ``pendingEvents``. Later runs
  claim the key for it alone (or with its next notification) and put it until EventBridge takes it.
  No second email.
- The event went out, SNS did not: release, and keep the event's id in ``eventSent``. The next run
  decides again; if it decides the same notification (same id), it publishes to SNS only. No second
  event.
- Both failed: release. Both went out: confirm.

The item: ``pk`` (:func:`~quota_monitor.alert.rules.state_key`), ``usagePlanId``, ``apiKeyId``,
``periodStart``, ``alertLevel``, ``forecastSent``, ``episode`` (recoveries within the period),
``rev``, ``readAt`` (epoch milliseconds), ``updatedAt`` (ISO 8601), ``claimToken``, ``claimUntil``
(epoch seconds), ``pendingEvents`` (a list of events as built: ``id``, ``detailType``, ``detail``,
``resources``), ``eventSent``, and ``expiresAt`` (epoch seconds, the table's TTL attribute):
:data:`TTL_AFTER_RESET` after the quota period resets.
"""

from __future__ import annotations

import json
import math
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from time import sleep
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from quota_monitor.alert.rules import AlertState
from quota_monitor.errors import describe, error_code
from quota_monitor.models import RESERVED_PREFIX, EventEntry

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient

    from quota_monitor.models import KeyUsage

#: The most items DynamoDB takes in one TransactWriteItems, and keys in one BatchGetItem.
MAX_TRANSACTION_ITEMS: Final = 100
MAX_BATCH_KEYS: Final = 100
#: Seconds between BatchGetItem requests for keys DynamoDB left unprocessed (then the read fails).
UNPROCESSED_PAUSES: Final = (0.05, 0.1, 0.2, 0.4, 0.8)
#: A TransactWriteItems request may carry at most 4 MB; a chunk is closed before its items' requests
#: reach this many bytes (an item with undelivered events can be a few hundred KB).
MAX_TRANSACTION_BYTES: Final = 3_000_000
#: Cancellation reasons worth another try, and how many: the item was busy, or the table throttled.
RETRIED_CANCELLATIONS: Final = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
MAX_RETRIES: Final = 3

#: How long after its quota period resets an item may be deleted by DynamoDB's TTL.
TTL_AFTER_RESET = timedelta(days=7)

_NAMES = {
    "#period": "periodStart",
    "#level": "alertLevel",
    "#forecast": "forecastSent",
    "#rev": "rev",
    "#token": "claimToken",
    "#until": "claimUntil",
    "#expires": "expiresAt",
    "#plan": "usagePlanId",
    "#key": "apiKeyId",
    "#updated": "updatedAt",
    "#episode": "episode",
    "#pending": "pendingEvents",
    "#sent": "eventSent",
    "#read": "readAt",
}
#: At most this much of undelivered events is kept per key (a DynamoDB item holds 400 KB); when a
#: bus refuses events for so long that more pile up, the oldest are dropped, and said so.
MAX_PENDING_BYTES = 300_000


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(int(value))}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _millis(at: datetime, *, up: bool = False) -> int:
    """Epoch milliseconds, rounded down, or ``up`` (the end of a reading: never earlier than it was)."""
    millis = at.timestamp() * 1000
    return math.ceil(millis) if up else math.floor(millis)


def expires_at(key: KeyUsage) -> int:
    return _epoch(key.resets_at + TTL_AFTER_RESET)


def parse_item(item: dict[str, Any]) -> AlertState:
    """An item as stored -> :class:`AlertState`; an attribute that does not parse raises ValueError."""
    period = item.get("periodStart", {}).get("S")
    until = item.get("claimUntil", {}).get("N")
    read_at = item.get("readAt", {}).get("N")
    return AlertState(
        period_start=date.fromisoformat(period) if period else None,
        level=int(item.get("alertLevel", {}).get("N", "0")),
        forecast_sent=bool(item.get("forecastSent", {}).get("BOOL", False)),
        rev=int(item.get("rev", {}).get("N", "0")),
        claim_until=datetime.fromtimestamp(int(until), UTC) if until else None,
        episode=int(item.get("episode", {}).get("N", "0")),
        pending_events=tuple(_event(value) for value in item.get("pendingEvents", {}).get("L", [])),
        event_sent=item.get("eventSent", {}).get("S"),
        read_at=datetime.fromtimestamp(int(read_at) / 1000, UTC) if read_at else None,
    )


def _event(value: dict[str, Any]) -> EventEntry:
    fields = value.get("M")
    if not isinstance(fields, dict):
        raise ValueError("a pending event is not a map")
    try:
        return EventEntry(
            id=fields["id"]["S"],
            detail_type=fields["detailType"]["S"],
            detail=fields["detail"]["S"],
            resources=tuple(resource["S"] for resource in fields.get("resources", {}).get("L", [])),
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"a pending event lacks {error}") from None


def _event_value(entry: EventEntry) -> dict[str, Any]:
    return {
        "M": {
            "id": _s(entry.id),
            "detailType": _s(entry.detail_type),
            "detail": _s(entry.detail),
            "resources": {"L": [_s(resource) for resource in entry.resources]},
        }
    }


@dataclass(frozen=True)
class Channels:
    """What the EventBridge channel owes for one key and has delivered ahead of SNS (module doc)."""

    pending_events: tuple[EventEntry, ...] = ()
    event_sent: str | None = None

    @classmethod
    def of(cls, state: AlertState) -> Channels:
        return cls(state.pending_events, state.event_sent)

    def bounded(self) -> tuple[Channels, tuple[EventEntry, ...]]:
        """These channels with at most :data:`MAX_PENDING_BYTES` of pending events (the newest), and
        the ones that had to be dropped."""
        kept: list[EventEntry] = []
        size = 0
        for entry in reversed(self.pending_events):
            size += entry.size + len(entry.id) + 64
            if size > MAX_PENDING_BYTES:
                break
            kept.append(entry)
        dropped = self.pending_events[: len(self.pending_events) - len(kept)]
        return Channels(tuple(reversed(kept)), self.event_sent), dropped

    def update(self) -> tuple[list[str], list[str], dict[str, Any]]:
        """(SET clauses, REMOVE clauses, values) that store these channels."""
        sets: list[str] = []
        removes: list[str] = []
        values: dict[str, Any] = {}
        if self.pending_events:
            sets.append("#pending = :pending")
            values[":pending"] = {"L": [_event_value(entry) for entry in self.pending_events]}
        else:
            removes.append("#pending")
        if self.event_sent is not None:
            sets.append("#sent = :sent")
            values[":sent"] = _s(self.event_sent)
        else:
            removes.append("#sent")
        return sets, removes, values


@dataclass(frozen=True)
class StateWrite:
    """One conditional update of one item, as :meth:`AlertStateStore.apply` and ``update_item`` take it."""

    pk: str
    #: ``UpdateExpression``, ``ConditionExpression``, ``ExpressionAttributeNames`` and ``...Values``.
    request: dict[str, Any]


@dataclass(frozen=True)
class StateWrites:
    """The outcome of one state write per decision: True done, False refused by its condition (another
    run holds or changed the key), None failed (the error is in ``errors``)."""

    outcomes: tuple[bool | None, ...]
    errors: tuple[str, ...]

    def count(self, outcome: bool | None) -> int:
        return sum(1 for done in self.outcomes if done is outcome)


@dataclass(frozen=True)
class StoredStates:
    """What :meth:`AlertStateStore.load` found: the state of each key, and the items that did not parse."""

    states: dict[str, AlertState] = field(default_factory=dict)
    #: ``pk`` -> why the item could not be read.
    unreadable: dict[str, str] = field(default_factory=dict)


class AlertStateStore:
    """The state table, through a low-level DynamoDB client."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._db = dynamodb
        self.table_name = table_name

    def load(self) -> StoredStates:
        """Every item, by ``pk``: a strongly consistent Scan, every page.

        One Scan of small items costs far fewer requests and read units than a GetItem per key.
        Items that do not parse come back in :attr:`StoredStates.unreadable` and are treated as
        absent (their key's claim then fails on ``attribute_not_exists``, so nothing is sent for it
        twice). The table's other items (``~...``: the API budget, the fast path's watch lists and
        lease) are skipped.
        """
        paginator = self._db.get_paginator("scan")
        return _parsed(
            item
            for page in paginator.paginate(TableName=self.table_name, ConsistentRead=True)
            for item in page.get("Items", [])
        )

    def load_keys(self, pks: Collection[str]) -> StoredStates:
        """The items of these keys only: strongly consistent BatchGetItem, a hundred keys a request,
        every unprocessed key asked again. What the fast path reads: a few keys, where a Scan would
        read the whole table (one read unit per item here, per 4 KB of the table there)."""
        return _parsed(batch_get(self._db, self.table_name, pks))

    # -- many items, in transactions ----------------------------------------------------------------
    def apply(self, writes: Sequence[StateWrite], *, workers: int = 1) -> StateWrites:
        """Many conditional writes, up to :data:`MAX_TRANSACTION_ITEMS` (and
        :data:`MAX_TRANSACTION_BYTES`) in one TransactWriteItems.

        Each item's condition is evaluated and applied as in its own UpdateItem (DynamoDB applies a
        transaction's items atomically, each under its condition), so the protocol is the same as
        with one write a request; why a hundred to a request: docs/benchmarks.md, "The alert step at
        10,000 keys". A transaction is all or nothing: when DynamoDB cancels it, the items whose
        condition failed are refused (False), and the others are written again without them. An
        item in another transaction at that moment (``TransactionConflict``) or throttled is tried
        again, then refused (a conflict: another run has it) or reported as an error (throttling).
        Every request carries a ``ClientRequestToken``, so that botocore's retry of a transaction
        whose answer was lost does not find the items already changed and refuse them.

        Returns one outcome per write, in order: True done, False refused, None failed.
        """
        outcomes: list[bool | None] = [None] * len(writes)
        errors: list[str] = []
        chunks = _chunks(writes)

        def run(chunk: list[int]) -> None:
            for index, (done, error) in zip(chunk, self._transact([writes[i] for i in chunk]), strict=True):
                outcomes[index] = done
                if error is not None:
                    errors.append(f"state item {writes[index].pk}: {error}")

        if workers > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
                list(pool.map(run, chunks))
        else:
            for chunk in chunks:
                run(chunk)
        return StateWrites(tuple(outcomes), tuple(errors))

    def _transact(self, writes: Sequence[StateWrite]) -> list[tuple[bool | None, str | None]]:
        """One chunk (at most 100 writes): (outcome, error) for each."""
        results: list[tuple[bool | None, str | None] | None] = [None] * len(writes)
        pending = list(range(len(writes)))
        retries: dict[int, int] = {}
        while pending:
            items: list[Any] = [
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"pk": _s(writes[i].pk)},
                        **writes[i].request,
                    }
                }
                for i in pending
            ]
            try:
                self._db.transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
            except ClientError as error:
                reasons = error.response.get("CancellationReasons")
                if (
                    error_code(error) != "TransactionCanceledException"
                    or not reasons
                    or len(reasons) != len(pending)
                ):
                    message = describe(error)
                    for i in pending:
                        results[i] = (None, message)
                    break
                again = []
                for i, reason in zip(pending, reasons, strict=True):
                    code = str(reason.get("Code") or "None")
                    if code == "ConditionalCheckFailed":
                        results[i] = (False, None)
                    elif code == "None":
                        again.append(i)  # fine, but cancelled with the rest
                    elif code in RETRIED_CANCELLATIONS and retries.get(i, 0) < MAX_RETRIES:
                        retries[i] = retries.get(i, 0) + 1
                        again.append(i)
                    elif code == "TransactionConflict":
                        results[i] = (False, None)  # another run's write: as a refused condition
                    else:
                        results[i] = (None, f"{code}: {reason.get('Message') or 'transaction cancelled'}")
                pending = again
                continue
            for i in pending:
                results[i] = (True, None)
            break
        return [result if result is not None else (None, "not written") for result in results]

    # -- the requests ------------------------------------------------------------------------------
    @staticmethod
    def _read_condition(read: AlertState, key: KeyUsage | None = None) -> tuple[str, dict[str, Any]]:
        """The item is as this run read it: at its revision (or absent); and, for a change decided
        from ``key``'s reading, last changed from a reading that ended before this one began
        (``#read``, named by :func:`_read_names`)."""
        if read.rev is None:
            return "attribute_not_exists(pk)", {}
        if key is None or key.read is None:
            return "#rev = :read_rev", {":read_rev": _n(read.rev)}
        return (
            "#rev = :read_rev AND (attribute_not_exists(#read) OR #read < :read_began)",
            {":read_rev": _n(read.rev), ":read_began": _n(_millis(key.read.started))},
        )

    def claim_write(
        self, pk: str, key: KeyUsage | None, read: AlertState, *, token: str, until: datetime, now: datetime
    ) -> StateWrite:
        """The claim (module doc): the item must be at the revision read, and not held by a live claim.

        ``key`` is None for a key claimed only to deliver the events it owes (its item exists)."""
        condition, values = self._read_condition(read, key)
        if key is None:
            return _write(
                pk,
                UpdateExpression="SET #token = :token, #until = :until",
                ConditionExpression=f"({condition}) AND (attribute_not_exists(#token) OR #until <= :now)",
                ExpressionAttributeNames=_names("#token", "#until", "#rev"),
                ExpressionAttributeValues={
                    **values,
                    ":token": _s(token),
                    ":until": _n(_epoch(until)),
                    ":now": _n(_epoch(now)),
                },
            )
        return _write(
            pk,
            UpdateExpression=(
                "SET #token = :token, #until = :until, #plan = :plan, #key = :key, "
                "#rev = if_not_exists(#rev, :zero), #expires = if_not_exists(#expires, :expires)"
            ),
            ConditionExpression=f"({condition}) AND (attribute_not_exists(#token) OR #until <= :now)",
            ExpressionAttributeNames=_names(
                "#token", "#until", "#plan", "#key", "#rev", "#expires", *_read_names(read, key)
            ),
            ExpressionAttributeValues={
                **values,
                ":token": _s(token),
                ":until": _n(_epoch(until)),
                ":plan": _s(key.usage_plan_id),
                ":key": _s(key.api_key_id),
                ":zero": _n(0),
                ":expires": _n(expires_at(key)),
                ":now": _n(_epoch(now)),
            },
        )

    def confirm_write(
        self,
        pk: str,
        key: KeyUsage,
        new: AlertState,
        *,
        token: str,
        now: datetime,
        channels: Channels | None = None,
    ) -> StateWrite:
        """The confirmation: the new state (and ``channels``, when given) stored and the claim
        dropped, if this run still holds it."""
        sets, removes, values = channels.update() if channels is not None else ([], [], {})
        return _write(
            pk,
            UpdateExpression=(
                "SET #period = :period, #level = :level, #forecast = :forecast, #episode = :episode, "
                f"#rev = #rev + :one, #expires = :expires, #updated = :now{_reading_set(key)}"
                f"{_clauses(sets)} REMOVE #token, #until{_clauses(removes)}"
            ),
            ConditionExpression="#token = :token",
            ExpressionAttributeNames=_names(
                "#period",
                "#level",
                "#forecast",
                "#episode",
                "#rev",
                "#expires",
                "#updated",
                "#token",
                "#until",
                *(("#pending", "#sent") if channels is not None else ()),
                *(("#read",) if key.read is not None else ()),
            ),
            ExpressionAttributeValues=self._state_values(key, new, now)
            | {":token": _s(token), ":one": _n(1)}
            | values,
        )

    def release_write(self, pk: str, *, token: str, channels: Channels | None = None) -> StateWrite:
        """The release: the claim dropped and the state left as it was, if this run still holds it.

        With ``channels``, store them too and bump the revision: a run that read the item before
        this one claimed it must not act on the channels it read."""
        if channels is None:
            return _write(
                pk,
                UpdateExpression="REMOVE #token, #until",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames=_names("#token", "#until"),
                ExpressionAttributeValues={":token": _s(token)},
            )
        sets, removes, values = channels.update()
        return _write(
            pk,
            UpdateExpression=(
                f"SET #rev = #rev + :one{_clauses(sets)} REMOVE #token, #until{_clauses(removes)}"
            ),
            ConditionExpression="#token = :token",
            ExpressionAttributeNames=_names("#token", "#until", "#rev", "#pending", "#sent"),
            ExpressionAttributeValues={":token": _s(token), ":one": _n(1), **values},
        )

    def change_write(
        self, pk: str, key: KeyUsage, read: AlertState, new: AlertState, *, now: datetime
    ) -> StateWrite:
        """A change with nothing to send, under the same condition as a claim."""
        condition, values = self._read_condition(read, key)
        return _write(
            pk,
            UpdateExpression=(
                "SET #period = :period, #level = :level, #forecast = :forecast, #episode = :episode, "
                "#rev = if_not_exists(#rev, :zero) + :one, #expires = :expires, #updated = :now, "
                f"#plan = :plan, #key = :key{_reading_set(key)}"
            ),
            ConditionExpression=f"({condition}) AND (attribute_not_exists(#token) OR #until <= :now_epoch)",
            ExpressionAttributeNames=_names(
                "#period",
                "#level",
                "#forecast",
                "#episode",
                "#rev",
                "#expires",
                "#updated",
                "#plan",
                "#key",
                "#token",
                "#until",
                *(("#read",) if key.read is not None else ()),
            ),
            ExpressionAttributeValues={
                **values,
                **self._state_values(key, new, now),
                ":zero": _n(0),
                ":one": _n(1),
                ":plan": _s(key.usage_plan_id),
                ":key": _s(key.api_key_id),
                ":now_epoch": _n(_epoch(now)),
            },
        )

    @staticmethod
    def _state_values(key: KeyUsage, new: AlertState, now: datetime) -> dict[str, Any]:
        return {
            ":period": _s((new.period_start or key.period_start).isoformat()),
            ":level": _n(new.level),
            ":forecast": {"BOOL": new.forecast_sent},
            ":episode": _n(new.episode),
            ":expires": _n(expires_at(key)),
            ":now": _s(now.isoformat()),
            **({":read_at": _n(_millis(key.read.ended, up=True))} if key.read is not None else {}),
        }


def _read_names(read: AlertState, key: KeyUsage | None) -> tuple[str, ...]:
    """``#read`` when :meth:`AlertStateStore._read_condition` uses it."""
    return ("#read",) if read.rev is not None and key is not None and key.read is not None else ()


def _reading_set(key: KeyUsage) -> str:
    """The SET clause that stores when the key's reading ended (``:read_at``), if it says."""
    return ", #read = :read_at" if key.read is not None else ""


def batch_get(
    dynamodb: DynamoDBClient, table_name: str, pks: Collection[str], *, consistent: bool = True
) -> list[dict[str, Any]]:
    """The items of ``pks`` (those that exist), a hundred keys a BatchGetItem; strongly consistent
    unless told (half the read units).

    DynamoDB may leave keys unprocessed (throttling, a partition's 1 MB): they are asked again after
    a growing pause (:data:`UNPROCESSED_PAUSES`), and when some are still left after the last, the
    read fails with a ``ClientError`` (``UnprocessedKeys``), as a throttled request would.
    """
    items: list[dict[str, Any]] = []
    wanted: list[Any] = [{"pk": _s(pk)} for pk in dict.fromkeys(pks)]
    while wanted:
        batch, wanted = wanted[:MAX_BATCH_KEYS], wanted[MAX_BATCH_KEYS:]
        for pause in (*UNPROCESSED_PAUSES, None):
            response: Any = dynamodb.batch_get_item(
                RequestItems={table_name: {"Keys": batch, "ConsistentRead": consistent}}
            )
            items += response.get("Responses", {}).get(table_name, [])
            batch = list(response.get("UnprocessedKeys", {}).get(table_name, {}).get("Keys", []))
            if not batch:
                break
            if pause is None:
                message = f"{len(batch)} keys still unprocessed after {len(UNPROCESSED_PAUSES) + 1} requests"
                raise ClientError({"Error": {"Code": "UnprocessedKeys", "Message": message}}, "BatchGetItem")
            sleep(pause)
    return items


def _parsed(items: Iterable[dict[str, Any]]) -> StoredStates:
    states: dict[str, AlertState] = {}
    unreadable: dict[str, str] = {}
    for item in items:
        pk = item.get("pk", {}).get("S")
        if not pk or pk.startswith(RESERVED_PREFIX):
            continue
        try:
            states[pk] = parse_item(item)
        except (ValueError, TypeError, OverflowError) as error:
            unreadable[pk] = str(error)
    return StoredStates(states, unreadable)


def _clauses(clauses: list[str]) -> str:
    """More clauses for a SET or REMOVE that already has some: ``, a, b``."""
    return "".join(f", {clause}" for clause in clauses)


def _names(*placeholders: str) -> dict[str, str]:
    """DynamoDB rejects unused ExpressionAttributeNames, so each request names only what it uses."""
    return {placeholder: _NAMES[placeholder] for placeholder in placeholders}


def _write(pk: str, **request: Any) -> StateWrite:
    return StateWrite(pk, request)


def _chunks(writes: Sequence[StateWrite]) -> list[list[int]]:
    """Indexes of ``writes`` in runs of at most :data:`MAX_TRANSACTION_ITEMS` items and (roughly, by
    their JSON) :data:`MAX_TRANSACTION_BYTES`."""
    chunks: list[list[int]] = []
    chunk: list[int] = []
    size = 0
    for index, write in enumerate(writes):
        item = len(write.pk) + len(json.dumps(write.request, separators=(",", ":")))
        if chunk and (len(chunk) == MAX_TRANSACTION_ITEMS or size + item > MAX_TRANSACTION_BYTES):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(index)
        size += item
    if chunk:
        chunks.append(chunk)
    return chunks
