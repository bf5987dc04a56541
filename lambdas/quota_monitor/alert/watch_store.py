"""The fast path's items in the alert state table: each target's watch list, and the fast run's lease.

Both live beside the alert state (their ``pk`` starts with ``~``, which no plan or account id does,
and the state's Scan skips them), so that the fast path needs no table of its own:

- ``~watch#<account>#<region>``: the target's watch list (:mod:`quota_monitor.alert.watch`),
  compressed JSON in ``data``, written whole by every full run (one PutItem, atomic: a fast run
  reads the old list or the new one, never half of each; conditional on ``readAt``, the start of
  the run that wrote it, so that of two full runs at once the later one's list stays), and read by
  every fast run (one BatchGetItem for all targets);
- ``~lease#fast``: held by the fast run in progress until its own timeout (``until``, epoch
  seconds), so that a run delivered twice, or one that outlives its minute, never runs beside
  another: a fast run that finds the lease held ends at once.

Every item has ``expiresAt`` (the table's TTL), a day after its last write: a monitor removed
leaves nothing behind for long.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.alert.state import batch_get
from quota_monitor.alert.watch import WatchList, decode_watch_list, encode_watch_list
from quota_monitor.errors import describe, error_code
from quota_monitor.models import RESERVED_PREFIX

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from mypy_boto3_dynamodb import DynamoDBClient

    from quota_monitor.models import Target

LEASE_KEY: Final = f"{RESERVED_PREFIX}lease#fast"
ITEM_TTL_SECONDS: Final = 86_400


def watch_key(target: Target) -> str:
    return f"{RESERVED_PREFIX}watch#{target.account_id or 'unknown'}#{target.region}"


@dataclass(frozen=True)
class StoredList:
    """What a fast run found for one target: its list, or why there is none to use."""

    target: Target
    watch: WatchList | None
    #: None: read and valid. Else "missing", "stale" or why it did not read.
    problem: str | None = None
    #: Bytes of the stored item's data (the cost model's check).
    size: int = 0


@dataclass
class Lease:
    """The fast run's lease, as :meth:`WatchStore.lease` holds it."""

    held: bool
    #: Why it could not be given back, if it could not.
    error: str | None = None


class WatchStore:
    """The watch lists and the lease, through a low-level DynamoDB client."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._db = dynamodb
        self.table_name = table_name

    def put(self, target: Target, watch: WatchList) -> tuple[WatchList, int] | None:
        """Store ``target``'s list, cut to fit (:func:`~quota_monitor.alert.watch.encode_watch_list`);
        returns the list as stored and its size in bytes, or None when the stored list is from a
        full run that started later (two runs at once): an older reading never replaces a newer."""
        data, kept = encode_watch_list(watch)
        written = int(watch.written_at.timestamp() * 1000)
        try:
            self._db.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": watch_key(target)},
                    "data": {"B": data},
                    "writtenAt": {"S": watch.written_at.isoformat()},
                    "readAt": {"N": str(written)},
                    "expiresAt": {"N": str(int(watch.written_at.timestamp()) + ITEM_TTL_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(#read) OR #read <= :read",
                ExpressionAttributeNames={"#read": "readAt"},
                ExpressionAttributeValues={":read": {"N": str(written)}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        return kept, len(data)

    def get(self, targets: Sequence[Target], *, now: datetime) -> list[StoredList]:
        """Every target's list, in the order given. Eventually consistent (half the read units): a
        list is written once an interval, and one a second old is as good. Raises what DynamoDB
        raises."""
        keys = {watch_key(target): target for target in targets}
        found: dict[str, dict[str, Any]] = {
            item["pk"]["S"]: item
            for item in batch_get(self._db, self.table_name, list(keys), consistent=False)
        }
        lists = []
        for pk, target in keys.items():
            item = found.get(pk)
            if item is None:
                lists.append(StoredList(target, None, "missing: no full scan has written it yet"))
                continue
            data = item.get("data", {}).get("B", b"")
            try:
                watch = decode_watch_list(bytes(data))
            except ValueError as error:
                lists.append(StoredList(target, None, str(error), len(data)))
                continue
            if not watch.valid_at(now):
                lists.append(
                    StoredList(
                        target,
                        None,
                        f"stale: written {watch.written_at.isoformat()}, valid until "
                        f"{watch.valid_until.isoformat()} (the full scan has not written it since)",
                        len(data),
                    )
                )
                continue
            lists.append(StoredList(target, watch.live(now), None, len(data)))
        return lists

    @contextmanager
    def lease(self, *, until: datetime, now: datetime) -> Iterator[Lease]:
        """The fast run's lease until ``until`` (:attr:`Lease.held` False: another run holds it), given
        back on the way out; why it could not be, in :attr:`Lease.error` (it then runs out at
        ``until`` by itself). Raises what DynamoDB raises when taking it."""
        token = self.take_lease(until=until, now=now)
        lease = Lease(held=token is not None)
        try:
            yield lease
        finally:
            if token is not None:
                try:
                    if not self.release_lease(token):
                        lease.error = "the lease had run out and was taken by another run"
                except (ClientError, BotoCoreError) as error:
                    lease.error = describe(error)

    def take_lease(self, *, until: datetime, now: datetime) -> str | None:
        """The lease until ``until``, or None when another fast run holds it. Raises what DynamoDB raises."""
        token = uuid.uuid4().hex
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": LEASE_KEY}},
                UpdateExpression="SET #token = :token, #until = :until, #expires = :expires",
                ConditionExpression="attribute_not_exists(#until) OR #until <= :now",
                ExpressionAttributeNames={"#token": "token", "#until": "until", "#expires": "expiresAt"},
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":until": {"N": str(int(until.timestamp()) + 1)},
                    ":now": {"N": str(int(now.timestamp()))},
                    ":expires": {"N": str(int(now.timestamp()) + ITEM_TTL_SECONDS)},
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        return token

    def release_lease(self, token: str) -> bool:
        """Give the lease back if this run still holds it; False when it does not (its lease ran out
        and another run took it)."""
        try:
            self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": LEASE_KEY}},
                UpdateExpression="REMOVE #until, #token",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token", "#until": "until"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True
