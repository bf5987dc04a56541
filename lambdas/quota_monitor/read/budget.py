"""The API budget the monitor's runs share: one timeline of call slots per account and region, kept
in DynamoDB, so that the full scan and the fast path together stay inside ``APIGATEWAY_MAX_RPS``.

Each run's own limiter (:mod:`quota_monitor.read.limiter`) keeps that run inside the rate; two runs
at once (the full scan, the fast path, either one delivered twice) would each take all of it. So
with the fast path on, every call of either path also takes a slot from one timeline (the policy:
docs/alerts.md, "Two paths", "One API budget"):

- the timeline is the item ``~budget#<account>#<region>`` of the alert state table, holding ``tat``
  (the theoretical arrival time of the next free slot, epoch seconds) of the generic cell rate
  algorithm;
- a run reads it (strongly consistent), takes ``n`` slots from ``max(tat, now - burst)`` on,
  ``1/rate`` apart, and writes the new ``tat`` on condition that nobody wrote it since (optimistic
  locking: on a conflict it reads again); each call then waits for its own slot;
- the fast path reserves what its watch list needs in one block (at most :data:`MAX_BLOCK_SECONDS`
  of slots), however far ahead; the full scan reserves :data:`CHUNK_SECONDS` at a time, only slots
  due within as long, and waits while a block is ahead of it: a fast run waits at most for the
  chunk each full run already holds;
- any 60 seconds hold at most ``60 * APIGATEWAY_MAX_RPS`` slots, the burst included
  (:meth:`BudgetRate.within`).

The budget errs towards spending less: a slot a run has fallen behind by more than the burst's lead
(a retry's backoff held it up) is let pass, not used late, where it would add to the calls of
whoever holds the slots of that moment; a run that ends gives back the slots it did not use only
when nobody has reserved after them (:meth:`SharedBudget.give_back`). A wait for a slot ends at the
run's deadline (:class:`~quota_monitor.errors.DeadlineReached`). A clock off by a few milliseconds
takes its slots that much early or late, which the account's own burst absorbs.

When the item cannot be read or written (throttling, an outage, permissions), the full scan goes on
with its own limiter alone (``"api budget not shared"`` in its log, ``budgetErrors`` in its
summary), and the fast path calls nothing (:class:`BudgetUnavailable`): it may not take more than
its share.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.errors import BudgetUnavailable, DeadlineReached, describe, error_code
from quota_monitor.models import RESERVED_PREFIX
from quota_monitor.read.calls import DEADLINE_CHECK_SECONDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb import DynamoDBClient

    from quota_monitor.models import Target
    from quota_monitor.read.limiter import RateLimiter

#: The full scan's reservations: this many seconds' worth of slots at the rate (10 at 5 a second) in
#: one round trip to DynamoDB, and only slots due within as long from now. Larger chunks cost fewer
#: requests; smaller ones waste less at the end of a run and let the fast path in sooner.
CHUNK_SECONDS: Final = 2.0
#: The fast path's block at most: this many seconds' worth of slots (the rest in further blocks).
MAX_BLOCK_SECONDS: Final = 20.0
#: Conditional writes lost to the other path in a row before the budget is taken as unavailable.
MAX_CONFLICTS: Final = 20
#: How long the item outlives its last write (the table's TTL attribute): a day.
ITEM_TTL_SECONDS: Final = 86_400
#: The window over which APIGATEWAY_MAX_RPS is promised as an average, burst included.
WINDOW_SECONDS: Final = 60.0
#: Slots a window must hold at least: a burst of one, the window's edge, and a rate above zero.
MIN_WINDOW_SLOTS: Final = 3


def budget_key(target: Target) -> str:
    """The budget item of one account and region."""
    return f"{RESERVED_PREFIX}budget#{target.account_id or 'unknown'}#{target.region}"


@dataclass(frozen=True)
class BudgetRate:
    """Slots a second and the burst of the shared timeline."""

    rate: float
    burst: int

    @classmethod
    def within(cls, max_rps: float, burst: int) -> BudgetRate:
        """A rate and burst such that any :data:`WINDOW_SECONDS` hold at most ``max_rps`` times as many
        slots, the burst included: ``burst + rate * 60 + 1 <= max_rps * 60`` (a window that begins and
        ends on a slot holds one more than its length's worth). The burst is cut to half a window's
        worth, so that the rate stays near at least half of ``max_rps``."""
        allowance = max_rps * WINDOW_SECONDS
        if allowance < MIN_WINDOW_SLOTS:
            raise ValueError(
                f"APIGATEWAY_MAX_RPS={max_rps:g} leaves {allowance:g} calls a minute: the shared API "
                f"budget needs at least {MIN_WINDOW_SLOTS}"
            )
        kept = max(1, min(burst, math.floor((allowance - 1) / 2)))
        # One slot less: a window that starts on a slot and ends on one holds both ends.
        return cls(rate=(allowance - kept - 1) / WINDOW_SECONDS, burst=kept)


class SharedBudget:
    """The timeline of one account and region, in the alert state table."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        target: Target,
        *,
        rate: BudgetRate,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = dynamodb
        self.table_name = table_name
        self.pk = budget_key(target)
        self.rate = rate
        self._clock = clock
        #: DynamoDB requests made (reads and writes), for the run summary and the cost model's check.
        self.requests = 0
        #: This run's last reservation: the ``tat`` it wrote, and how many slots it took.
        self._last: tuple[float, int] | None = None
        #: The first free slot as last read (epoch seconds).
        self.free_at = 0.0

    def reserve(self, slots: int, *, within: float | None = None) -> float | None:
        """Take ``slots`` consecutive slots; returns the time of the first (each next is ``1/rate``
        later). With ``within``, only when the first is due within that many seconds: else None, and
        nothing is taken (:attr:`free_at` says when the timeline is free). Raises
        :class:`BudgetUnavailable` when the item cannot be read or written."""
        spacing = 1.0 / self.rate.rate
        lead = (self.rate.burst - 1) * spacing
        for _ in range(MAX_CONFLICTS):
            try:
                self.requests += 1
                item = self._db.get_item(
                    TableName=self.table_name, Key={"pk": {"S": self.pk}}, ConsistentRead=True
                ).get("Item", {})
                read = item.get("tat", {}).get("N")
                now = self._clock()
                start = now - lead if read is None else max(float(read), now - lead)
                self.free_at = start
                if within is not None and start > now + within:
                    return None
                new = start + slots * spacing
                condition = "attribute_not_exists(#tat)" if read is None else "#tat = :read"
                values = {
                    ":tat": {"N": f"{new:.3f}"},
                    ":expires": {"N": str(int(now) + ITEM_TTL_SECONDS)},
                    **({":read": {"N": read}} if read is not None else {}),
                }
                self.requests += 1
                self._db.update_item(
                    TableName=self.table_name,
                    Key={"pk": {"S": self.pk}},
                    UpdateExpression="SET #tat = :tat, #expires = :expires",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#tat": "tat", "#expires": "expiresAt"},
                    ExpressionAttributeValues=values,
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    continue  # the other path took slots meanwhile: read again
                raise BudgetUnavailable(f"API budget {self.pk}: {describe(error)}") from error
            except (BotoCoreError, ValueError) as error:
                raise BudgetUnavailable(f"API budget {self.pk}: {describe(error)}") from error
            self._last = (new, slots)
            return start
        raise BudgetUnavailable(
            f"API budget {self.pk}: {MAX_CONFLICTS} reservations in a row lost to other runs"
        )

    def give_back(self, unused: int) -> bool:
        """Return the last ``unused`` slots of this run's last reservation, if nobody has reserved after
        it (``tat`` is still where this run left it): the other path need not wait for slots that a
        finished run will never use. Best effort: False when it could not (the slots then simply pass)."""
        if self._last is None or unused <= 0:
            return False
        end, slots = self._last
        back = end - min(unused, slots) / self.rate.rate
        try:
            self.requests += 1
            self._db.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": self.pk}},
                UpdateExpression="SET #tat = :back",
                ConditionExpression="#tat = :ours",
                ExpressionAttributeNames={"#tat": "tat"},
                ExpressionAttributeValues={":back": {"N": f"{back:.3f}"}, ":ours": {"N": f"{end:.3f}"}},
            )
        except (ClientError, BotoCoreError):
            return False
        self._last = None
        return True


class BudgetLimiter:
    """A run's limiter with the shared timeline behind it: every call waits for its own limiter
    (which also slows down after a 429), then for a slot of the timeline.

    ``required`` (the fast path): no call without a slot (:class:`BudgetUnavailable` is raised from
    :meth:`acquire`, and the scan fails that plan), and the run goes first: ``expected`` calls are
    reserved in one block, wherever the timeline is free. Otherwise (the full scan) a chunk at a
    time, yielding to a block booked ahead (module doc); when the timeline cannot be used, the run
    falls back to its own limiter and keeps the reason in :attr:`error`.
    """

    def __init__(
        self,
        local: RateLimiter,
        budget: SharedBudget,
        *,
        required: bool,
        expected: int | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        deadline: Callable[[], bool] | None = None,
    ) -> None:
        self._local = local
        self._deadline = deadline
        self.budget = budget
        self._required = required
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()
        self._chunk = max(1, round(budget.rate.rate * CHUNK_SECONDS))
        self._block = max(1, round(budget.rate.rate * MAX_BLOCK_SECONDS))
        self._lead = (budget.rate.burst - 1) / budget.rate.rate
        #: Calls still expected (the fast path's block); None: not known.
        self._expected = expected
        #: Why the shared budget could not be used, once it could not (the full scan's fallback).
        self.error: str | None = None

    def _size(self) -> int:
        if self._required and self._expected:
            return max(1, min(self._expected, self._block))
        return self._chunk

    def _reserve(self, slots: int) -> float:
        if self._required:
            start = self.budget.reserve(slots)
            assert start is not None  # without ``within`` a reservation always lands
            return start
        while True:
            start = self.budget.reserve(slots, within=CHUNK_SECONDS)
            if start is not None:
                return start
            # A fast run's block is ahead: wait until it has (almost) passed.
            self._wait(max(0.05, self.budget.free_at - CHUNK_SECONDS - self._clock()))

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, in slices, unless the run's deadline passes first (DeadlineReached: the
        call is not made, as when the deadline passes before it starts)."""
        while seconds > 0:
            if self._deadline is not None and self._deadline():
                raise DeadlineReached(
                    "API call not started: the run's deadline passed waiting for the API budget"
                )
            step = seconds if self._deadline is None else min(seconds, DEADLINE_CHECK_SECONDS)
            self._sleep(step)
            seconds -= step

    def _slot(self) -> float | None:
        with self._lock:
            if self.error is not None and not self._required:
                return None
            # A slot left behind by more than the burst's lead (the run was slowed by backoff or its
            # own limiter) is let pass, as a slot missed to a 429 is: used now, it would add to the
            # calls of whoever holds the slots of now.
            floor = self._clock() - self._lead
            while self._slots and self._slots[0] < floor:
                self._slots.popleft()
            if not self._slots:
                size = self._size()
                try:
                    start = self._reserve(size)
                except BudgetUnavailable as error:
                    if self._required:
                        raise
                    self.error = str(error)
                    return None
                if self._expected is not None:
                    self._expected = max(0, self._expected - size)
                spacing = 1.0 / self.budget.rate.rate
                self._slots.extend(start + i * spacing for i in range(size))
            return self._slots.popleft()

    def acquire(self) -> float:
        waited = self._local.acquire()
        slot = self._slot()
        if slot is None:
            return waited
        wait = slot - self._clock()
        if wait > 0:
            self._wait(wait)
            waited += wait
        return waited

    def throttled(self) -> None:
        self._local.throttled()

    def finish(self) -> None:
        """The run makes no more calls: give back the slots it reserved and will not use."""
        with self._lock:
            if self._slots and self.error is None:
                self.budget.give_back(len(self._slots))
            self._slots.clear()
