"""The API budget both paths share, against moto's DynamoDB, on simulated time: at most the rate in
any minute together, slots taken in turn when two runs reserve at once, a missing budget refused to
the fast path and not to the full scan, unused slots given back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from quota_monitor.alert.state import UNPROCESSED_PAUSES, batch_get
from quota_monitor.clients import client
from quota_monitor.config import Settings
from quota_monitor.errors import BudgetUnavailable, DeadlineReached
from quota_monitor.models import Target
from quota_monitor.read.budget import BudgetLimiter, BudgetRate, SharedBudget
from quota_monitor.read.limiter import RateLimiter
from tests.clock import FakeTime

if TYPE_CHECKING:
    from collections.abc import Callable

    from apigw_sandbox.local import AlertResources

TARGET = Target("123456789012", "us-east-1")
START = 1_800_000_000.0


@pytest.mark.parametrize(("max_rps", "burst"), [(5.0, 5), (10.0, 40), (0.1, 5), (1.0, 1)])
def test_any_minute_holds_at_most_the_rate_a_second_burst_included(max_rps: float, burst: int) -> None:
    rate = BudgetRate.within(max_rps, burst)
    assert rate.burst + rate.rate * 60 + 1 <= max_rps * 60 + 1e-9
    assert 1 <= rate.burst <= burst
    assert rate.rate >= max_rps / 2 - 1 / 60


def limiter(
    infra: AlertResources,
    time: FakeTime,
    *,
    required: bool,
    dynamodb: Any = None,
    expected: int | None = None,
    deadline: Callable[[], bool] | None = None,
) -> BudgetLimiter:
    budget = SharedBudget(
        dynamodb or client("dynamodb"),
        infra.table_name,
        TARGET,
        rate=BudgetRate.within(5.0, 5),
        clock=time.clock,
    )
    local = RateLimiter(5.0, 5, clock=time.clock, sleep=time.sleep)
    return BudgetLimiter(
        local,
        budget,
        required=required,
        expected=expected,
        clock=time.clock,
        sleep=time.sleep,
        deadline=deadline,
    )


def most_in_a_minute(calls: list[float]) -> int:
    most, first = 0, 0
    for last, at in enumerate(calls):
        while at - calls[first] >= 60.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_two_runs_on_one_budget_stay_under_the_rate_together(alert_infra: AlertResources) -> None:
    # GIVEN two runs (the full scan, the fast path) on one clock, each with its own limiter
    time = FakeTime()
    time.now = START
    full, fast = limiter(alert_infra, time, required=False), limiter(alert_infra, time, required=True)
    calls: list[float] = []
    # WHEN they take turns calling as fast as their limiters let them, 900 calls in all: a chunk of
    # ten each in turn: on one simulated clock, each run's wait would otherwise make the other fall
    # behind its slots, which it then lets pass; separate runs on real clocks call in their own
    # slots while the other waits for the slots it holds next
    for n in range(900):
        (full if (n // 10) % 3 else fast).acquire()
        calls.append(time.now)
    # THEN no 60 seconds hold more than 300 calls (5 a second), and they went at that pace
    assert most_in_a_minute(calls) <= 300
    assert calls[-1] - calls[0] == pytest.approx(895 / BudgetRate.within(5.0, 5).rate, rel=0.02)
    assert full.error is None


def test_the_fast_path_goes_first_and_the_full_scan_waits_for_its_block(alert_infra: AlertResources) -> None:
    # GIVEN a full scan calling steadily, and a fast run that expects 60 calls
    time = FakeTime()
    time.now = START
    full = limiter(alert_infra, time, required=False)
    for _ in range(30):
        full.acquire()
    fast = limiter(alert_infra, time, required=True, expected=60)
    # WHEN the fast run takes its first slot
    fast.acquire()
    block_at = time.now
    # THEN it waited at most for the chunk the full scan already held (2 s of slots)
    rate = BudgetRate.within(5.0, 5).rate
    assert block_at - START <= 30 / rate + 2.0 + 1e-6
    # and its 60 slots are booked as one block: the full scan, calling at once, waits until the
    # block has passed, and no longer than that
    full.acquire()
    assert block_at + 59 / rate - 1e-6 <= time.now <= block_at + 60 / rate + 2.5
    assert full.error is None


def test_slots_a_slowed_run_left_behind_are_let_pass_not_used_late(alert_infra: AlertResources) -> None:
    # GIVEN a fast run that booked a block of 60 slots, made its first call and was then held up
    # 12 s (backing off after a 429) while its block passed
    time = FakeTime()
    time.now = START
    full = limiter(alert_infra, time, required=False)
    fast = limiter(alert_infra, time, required=True, expected=60)
    calls = [time.now]
    fast.acquire()
    time.now += 12.0
    # WHEN both call, turn about, 600 calls in all
    for n in range(600):
        (full if n % 2 else fast).acquire()
        calls.append(time.now)
    # THEN the fast run takes fresh slots rather than the 59 left behind: no minute holds more than
    # 300 calls (using them would have put about 350 in one)
    assert most_in_a_minute(calls) <= 300


def test_a_run_waiting_for_the_budget_stops_at_its_deadline(alert_infra: AlertResources) -> None:
    # GIVEN a fast run's block of 20 s booked ahead, and a full scan whose deadline is 5 s away
    time = FakeTime()
    time.now = START
    limiter(alert_infra, time, required=True, expected=100).acquire()
    ends = time.now + 5.0
    full = limiter(alert_infra, time, required=False, deadline=lambda: time.now >= ends)
    # WHEN the full scan asks for a slot THEN it gives up at its deadline, not after the block
    with pytest.raises(DeadlineReached, match="deadline passed waiting for the API budget"):
        full.acquire()
    assert ends <= time.now <= ends + 0.25 + 1e-9


def test_a_rate_too_small_to_share_is_refused() -> None:
    with pytest.raises(ValueError, match=r"APIGATEWAY_MAX_RPS=0\.03 leaves 1\.8 calls a minute"):
        BudgetRate.within(0.03, 5)


class OtherRunFirst:
    """A DynamoDB client whose first read of the budget lets another run reserve before it writes:
    the interleaving only the conditional write keeps apart."""

    def __init__(self, real: Any, other: SharedBudget) -> None:
        self._real, self._other, self.reads = real, other, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def get_item(self, **kwargs: Any) -> Any:
        self.reads += 1
        found = self._real.get_item(**kwargs)
        if self.reads == 1:
            self._other.reserve(10)
        return found


def test_two_reservations_at_once_get_slots_one_after_the_other(alert_infra: AlertResources) -> None:
    time = FakeTime()
    time.now = START
    rate = BudgetRate.within(5.0, 5)
    other = SharedBudget(client("dynamodb"), alert_infra.table_name, TARGET, rate=rate, clock=time.clock)
    racing = OtherRunFirst(client("dynamodb"), other)
    late = SharedBudget(racing, alert_infra.table_name, TARGET, rate=rate, clock=time.clock)  # type: ignore[arg-type]

    first_slot = late.reserve(10)

    # The other run's ten slots came first; this run read again and took the ten after them.
    assert racing.reads == 2
    lead = (rate.burst - 1) / rate.rate
    assert first_slot == pytest.approx(START - lead + 10 / rate.rate, abs=0.002)
    tat = float(alert_infra.items()["~budget#123456789012#us-east-1"]["tat"]["N"])
    assert tat == pytest.approx(START - lead + 20 / rate.rate, abs=0.002)


def test_without_the_budget_the_fast_path_calls_nothing_and_the_full_scan_goes_on(
    alert_infra: AlertResources,
) -> None:
    time = FakeTime()
    time.now = START
    client("dynamodb").delete_table(TableName=alert_infra.table_name)
    fast = limiter(alert_infra, time, required=True)
    with pytest.raises(
        BudgetUnavailable, match=r"API budget ~budget#123456789012#us-east-1: ResourceNotFound"
    ):
        fast.acquire()
    full = limiter(alert_infra, time, required=False)
    for _ in range(7):
        full.acquire()  # its own limiter alone: 5 at once, then 5 a second
    assert full.error is not None
    assert "ResourceNotFound" in full.error
    assert time.now == pytest.approx(START + 2 / 5)


def test_a_finished_run_gives_its_unused_slots_back_unless_someone_reserved_after(
    alert_infra: AlertResources,
) -> None:
    time = FakeTime()
    time.now = START
    run = limiter(alert_infra, time, required=True)
    for _ in range(3):
        run.acquire()  # a chunk of 10 reserved, 3 used
    tat_after_use = float(alert_infra.items()["~budget#123456789012#us-east-1"]["tat"]["N"])
    run.finish()
    tat = float(alert_infra.items()["~budget#123456789012#us-east-1"]["tat"]["N"])
    assert tat == pytest.approx(tat_after_use - 7 / BudgetRate.within(5.0, 5).rate, abs=0.002)

    # A run that reserved after another one cannot give its slots back without taking the other's.
    first, second = limiter(alert_infra, time, required=True), limiter(alert_infra, time, required=True)
    first.acquire()
    second.acquire()
    before = float(alert_infra.items()["~budget#123456789012#us-east-1"]["tat"]["N"])
    first.finish()
    assert float(alert_infra.items()["~budget#123456789012#us-east-1"]["tat"]["N"]) == before


class LeavesKeysUnprocessed:
    """A DynamoDB client that answers ``times`` BatchGetItem requests with their last key left in
    ``UnprocessedKeys``, as DynamoDB does when it is throttling."""

    def __init__(self, real: Any, times: int) -> None:
        self._real, self.times, self.requests = real, times, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def batch_get_item(self, **kwargs: Any) -> Any:
        self.requests += 1
        if self.times <= 0:
            return self._real.batch_get_item(**kwargs)
        self.times -= 1
        ((table, request),) = kwargs["RequestItems"].items()
        *served, left = request["Keys"]
        found = self._real.batch_get_item(RequestItems={table: {**request, "Keys": served}}) if served else {}
        return {
            "Responses": found.get("Responses", {table: []}),
            "UnprocessedKeys": {table: {**request, "Keys": [left]}},
        }


def test_keys_left_unprocessed_are_asked_again_and_a_read_that_never_ends_fails(
    alert_infra: AlertResources,
) -> None:
    # GIVEN three items, and a DynamoDB that leaves the last key of a request unprocessed, twice
    real = client("dynamodb")
    for pk in ("a", "b", "c"):
        real.put_item(TableName=alert_infra.table_name, Item={"pk": {"S": pk}})
    twice: Any = LeavesKeysUnprocessed(real, times=2)
    # WHEN the three are read THEN every one comes back, after the keys left were asked again
    found = batch_get(twice, alert_infra.table_name, ["a", "b", "c"])
    assert sorted(item["pk"]["S"] for item in found) == ["a", "b", "c"]
    assert twice.requests == 3
    # and a DynamoDB that never processes them all fails the read, saying so, after a few requests
    always: Any = LeavesKeysUnprocessed(real, times=1_000)
    with pytest.raises(ClientError, match="UnprocessedKeys"):
        batch_get(always, alert_infra.table_name, ["a", "b"])
    assert always.requests == len(UNPROCESSED_PAUSES) + 1


def test_with_the_fast_path_on_a_rate_too_small_to_share_is_refused_naming_the_setting() -> None:
    env = {
        "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:quota-alerts",
        "ALERT_TABLE_NAME": "quota-alert-state",
        "FAST_SCHEDULE_MINUTES": "1",
        "APIGATEWAY_MAX_RPS": "0.05",
    }
    with pytest.raises(ValueError, match=r"APIGATEWAY_MAX_RPS='0\.05' is not allowed: use at least 0\.1"):
        Settings.from_env(env)
    # the same rate with the fast path off has no budget to share, and stays allowed
    assert Settings.from_env({**env, "FAST_SCHEDULE_MINUTES": "0"}).scan.max_rps == 0.05
