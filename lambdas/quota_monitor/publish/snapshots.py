"""Key snapshots: every key's numbers, kept in the state table so that one read finds a key's.

With ``KEY_SNAPSHOTS`` on, two kinds of items of the state table (``~`` keys, which the alert
state's Scan skips) hold them, compressed JSON in ``data``:

- ``~snap#<account>#<region>#<bucket>``: written whole by every full scan, :data:`BUCKETS` items a
  target: each holds the keys whose id hashes to it (:func:`bucket_of`), one entry per plan of the
  key. Grouped, so that a run writes a few dozen items rather than one per key (DynamoDB bills a
  write per KB of an item, at least one per item); rewritten whole, so that a key that left its
  plan, or was deleted, is gone after the next full scan. A plan the scan could not read keeps its
  entries from the last items (older, so they go stale).
- ``~snapfast#<account>#<region>#<bucket>``: the keys a fast run read, in the same buckets,
  written for the buckets that hold them, at most every :data:`FAST_EVERY` (a fast run a minute
  would otherwise write its keys 15 times between two full scans, for numbers GetUsage itself
  gives half an hour late: docs/endpoint.md). A fast item's entries older than the full scan's
  are simply not used.

The quota endpoint reads both of a key's items in one BatchGetItem and takes, plan by plan, the
newer reading (``asOf``: when GetUsage was read). Never a key's value: keys are known by id.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from quota_monitor.alert.state import batch_get
from quota_monitor.models import RESERVED_PREFIX

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient

    from quota_monitor.models import KeyUsage, ScanResult, Target, UsagePlan

#: One item's keys: ``apiKeyId`` -> an entry per plan of the key.
Buckets = dict[str, list[dict[str, Any]]]
#: Items a target's keys are spread over: a key's is found from its id alone.
BUCKETS: Final = 64
#: An item's compressed data at most (a DynamoDB item holds 400 KB, names and attributes included).
MAX_ITEM_BYTES: Final = 350_000
#: How long after its last write an item may be deleted by DynamoDB's TTL.
ITEM_TTL: Final = timedelta(days=2)
#: A fast run writes snapshots when its start is a multiple of this (every tenth run at one a minute).
FAST_EVERY: Final = timedelta(minutes=10)
#: BatchWriteItem's most items a request.
MAX_BATCH_WRITE: Final = 25
SCHEMA: Final = 1


def bucket_of(api_key_id: str) -> int:
    return zlib.crc32(api_key_id.encode()) % BUCKETS


def _where(target: Target) -> str:
    return f"{target.account_id or 'unknown'}#{target.region}"


def bucket_key(target: Target, bucket: int) -> str:
    return f"{RESERVED_PREFIX}snap#{_where(target)}#{bucket:02d}"


def fast_key(target: Target, bucket: int) -> str:
    return f"{RESERVED_PREFIX}snapfast#{_where(target)}#{bucket:02d}"


def fast_run_writes(now: datetime, fast_minutes: int) -> bool:
    """Whether a fast run started at ``now`` writes the snapshots of what it read (:data:`FAST_EVERY`)."""
    every = max(1, round(FAST_EVERY / timedelta(minutes=max(1, fast_minutes))))
    return (int(now.timestamp()) // 60 // max(1, fast_minutes)) % every == 0


def _time(at: datetime) -> str:
    """UTC to the millisecond, always so: two times compare as their text does."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry(key: KeyUsage, plan: UsagePlan | None, *, read_at: datetime) -> dict[str, Any]:
    """One key's numbers in one plan, as the endpoint answers them (``apiKeyId`` aside)."""
    target = key.target
    return {
        "usagePlanId": key.usage_plan_id,
        "usagePlanName": key.usage_plan_name,
        "apiStages": [{"apiId": s.api_id, "stage": s.stage} for s in plan.api_stages] if plan else None,
        "period": key.period,
        "periodStart": key.period_start.isoformat(),
        "resetsAt": _time(key.resets_at),
        "limit": key.limit,
        "used": key.used,
        "remaining": key.remaining,
        "utilization": key.utilization,
        "asOf": _time(key.read.ended if key.read is not None else read_at),
        "accountId": target.account_id if target else None,
        "region": target.region if target else None,
    }


def _encode(keys: Mapping[str, list[dict[str, Any]]], written_at: datetime) -> bytes:
    body = {"schema": SCHEMA, "writtenAt": _time(written_at), "keys": keys}
    return zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 6)


def decode(data: bytes) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """An item's keys (``apiKeyId`` -> its plans' entries) and when it was written; ValueError when
    it does not read."""
    try:
        body = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError) as error:
        raise ValueError(f"a key snapshot does not decompress or parse: {error}") from None
    if not isinstance(body, dict) or body.get("schema") != SCHEMA or not isinstance(body.get("keys"), dict):
        raise ValueError(f"not a key snapshot of schema {SCHEMA}")
    keys: dict[str, list[dict[str, Any]]] = body["keys"]
    return keys, str(body.get("writtenAt", ""))


@dataclass(frozen=True)
class SnapshotsWritten:
    """What a run wrote: items, their compressed bytes, and what could not be written."""

    items: int = 0
    bytes: int = 0
    keys: int = 0
    errors: tuple[str, ...] = ()

    def __add__(self, other: SnapshotsWritten) -> SnapshotsWritten:
        return SnapshotsWritten(
            self.items + other.items,
            self.bytes + other.bytes,
            self.keys + other.keys,
            self.errors + other.errors,
        )

    def summary(self) -> dict[str, int]:
        return {
            "snapshotItems": self.items,
            "snapshotBytes": self.bytes,
            **({"snapshotErrors": len(self.errors)} if self.errors else {}),
        }


@dataclass(frozen=True)
class KeySnapshot:
    """A key's entries, one per plan, the newer of the full scan's and the fast path's."""

    api_key_id: str
    plans: tuple[dict[str, Any], ...] = field(default_factory=tuple)


class SnapshotStore:
    """The snapshot items of the state table, through a low-level DynamoDB client."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._db = dynamodb
        self.table_name = table_name

    def put_scan(self, result: ScanResult, *, now: datetime) -> SnapshotsWritten:
        """Every bucket of a full scan's target, rewritten whole; raises what DynamoDB raises."""
        target = result.target
        if target is None:
            raise ValueError("a scan without a target has no snapshots")
        plans = {plan.id: plan for plan in result.plans}
        buckets: list[Buckets] = [{} for _ in range(BUCKETS)]
        for key in result.keys:
            keys = buckets[bucket_of(key.api_key_id)]
            keys.setdefault(key.api_key_id, []).append(
                entry(key, plans.get(key.usage_plan_id), read_at=result.scanned_at)
            )
        unread = {f.usage_plan_id for f in result.failures if f.usage_plan_id is not None}
        if unread:
            self._carry(target, unread, buckets)
        items = [(bucket_key(target, number), _encode(keys, now)) for number, keys in enumerate(buckets)]
        self._write(items, now=now)
        return SnapshotsWritten(
            len(items), sum(len(data) for _, data in items), sum(len(keys) for keys in buckets)
        )

    def _carry(self, target: Target, unread: set[str], buckets: list[Buckets]) -> None:
        """Keep the last entries of the plans this scan could not read whole (their ``asOf`` says how
        old), for the keys it has no reading of in that plan: a plan with one key's read failed keeps
        the others' new numbers."""
        wanted = [bucket_key(target, number) for number in range(BUCKETS)]
        for item in batch_get(self._db, self.table_name, wanted, consistent=False):
            number = int(item["pk"]["S"].rsplit("#", 1)[1])
            try:
                last, _ = decode(bytes(item.get("data", {}).get("B", b"")))
            except ValueError:
                continue
            for key_id, entries in last.items():
                read = {e["usagePlanId"] for e in buckets[number].get(key_id, [])}
                kept = [e for e in entries if e.get("usagePlanId") in unread - read]
                if kept:
                    buckets[number].setdefault(key_id, []).extend(kept)

    def put_fast(self, target: Target, keys: Sequence[KeyUsage], *, now: datetime) -> SnapshotsWritten:
        """The keys a fast run read in ``target``, in the fast items of their buckets."""
        buckets: dict[int, Buckets] = {}
        for key in keys:
            found = buckets.setdefault(bucket_of(key.api_key_id), {})
            found.setdefault(key.api_key_id, []).append(entry(key, None, read_at=now))
        items = [(fast_key(target, number), _encode(found, now)) for number, found in sorted(buckets.items())]
        self._write(items, now=now)
        return SnapshotsWritten(
            len(items), sum(len(data) for _, data in items), len({k.api_key_id for k in keys})
        )

    def _write(self, items: Sequence[tuple[str, bytes]], *, now: datetime) -> None:
        expires = str(int((now + ITEM_TTL).timestamp()))
        for pk, data in items:
            if len(data) > MAX_ITEM_BYTES:
                raise ValueError(
                    f"key snapshot {pk} is {len(data):,} bytes compressed, over {MAX_ITEM_BYTES:,}: too many "
                    "keys in one target for KEY_SNAPSHOTS"
                )
        requests: list[Any] = [
            {"PutRequest": {"Item": {"pk": {"S": pk}, "data": {"B": data}, "expiresAt": {"N": expires}}}}
            for pk, data in items
        ]
        for start in range(0, len(requests), MAX_BATCH_WRITE):
            batch = requests[start : start + MAX_BATCH_WRITE]
            for pause in (0.05, 0.1, 0.2, 0.4, None):
                answer: Any = self._db.batch_write_item(RequestItems={self.table_name: batch})
                batch = list(answer.get("UnprocessedItems", {}).get(self.table_name, []))
                if not batch:
                    break
                if pause is None:
                    raise RuntimeError(f"{len(batch)} key snapshot items still unprocessed by DynamoDB")
                time.sleep(pause)

    def get(self, target: Target, api_key_id: str, *, now: datetime) -> KeySnapshot | None:
        """A key's snapshot: both its items in one eventually consistent BatchGetItem, plan by plan
        the newer entry (an entry of the fast path's without the plan's stages takes them from the
        full scan's; one of a plan that a full scan written since no longer finds the key in is
        dropped: the key left it). None when neither holds the key. An item past its ``expiresAt`` is
        read as gone: DynamoDB's TTL deletes it when it gets round to it, days later at times. Raises
        what DynamoDB raises, and ValueError when an item does not read."""
        bucket = bucket_of(api_key_id)
        wanted = {bucket_key(target, bucket), fast_key(target, bucket)}
        found = [
            item
            for item in batch_get(self._db, self.table_name, wanted, consistent=False)
            if float(item.get("expiresAt", {}).get("N", "inf")) > now.timestamp()
        ]
        by_item = {item["pk"]["S"]: decode(bytes(item.get("data", {}).get("B", b""))) for item in found}
        full_keys, full_written = by_item.get(bucket_key(target, bucket), ({}, ""))
        full = full_keys.get(api_key_id, [])
        fast = by_item.get(fast_key(target, bucket), ({}, ""))[0].get(api_key_id, [])
        if not full and not fast:
            return None
        plans: dict[str, dict[str, Any]] = {e["usagePlanId"]: e for e in full}
        for newer in fast:
            older = plans.get(newer["usagePlanId"])
            if older is None and newer["asOf"] <= full_written:
                continue  # a full scan written after it no longer found the key in that plan
            if older is None or newer["asOf"] > older["asOf"]:
                stages = newer.get("apiStages") or (older.get("apiStages") if older else None)
                plans[newer["usagePlanId"]] = {**newer, "apiStages": stages}
        return KeySnapshot(api_key_id, tuple(plans[p] for p in sorted(plans)))
