"""Once per crossing across both paths, whatever the order of their steps.

A full run reads every plan, then (seconds or minutes later) runs its alert step; a fast run reads the
watched keys, then runs the same alert step. The steps of any number of runs can interleave: here they
are interleaved by hand, on one clock that the sandbox, the runs' ``now`` and their readings share,
against the sandbox and moto's DynamoDB, SNS and an SQS inbox. The runs' steps are the production
functions the handlers compose (``scan_targets`` and ``alert_and_watch`` for a full run,
``read_targets`` and ``alert_watched`` for a fast one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apigw_sandbox.account import SandboxAccount
from quota_monitor.alert.rules import AlertState, state_key
from quota_monitor.alert.state import AlertStateStore
from quota_monitor.alert.watch import WatchList
from quota_monitor.alert.watch_store import WatchStore
from quota_monitor.clients import target_clients
from quota_monitor.config import Settings
from quota_monitor.fast import FastTarget, alert_watched, read_targets
from quota_monitor.invocation import Clocks, Invocation
from quota_monitor.models import KeyUsage, ReadSpan, Target
from quota_monitor.monitor import AlertClients, alert_and_watch, scan_targets
from quota_monitor.read.budget import BudgetRate, SharedBudget
from quota_monitor.read.targets import TargetAccess

if TYPE_CHECKING:
    from apigw_sandbox.local import AlertResources, LocalCloud
    from quota_monitor.models import AlertReport, ScanResult

ACCOUNT = "123456789012"
REGION = "us-east-1"
NOON = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)
LIMIT = 50_000
ENV = {"FAST_SCHEDULE_MINUTES": "1", "SCHEDULE_MINUTES": "5", "FORECAST_ENABLED": "false"}


class SharedClock:
    """One clock for the sandbox's day, every run's ``now`` and every reading's time. A sleep (the
    rate limiter's) moves it on, as time passes while a run waits."""

    def __init__(self) -> None:
        self.at = NOON.timestamp()

    def wall(self) -> float:
        return self.at

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def tick(self, seconds: float = 1.0) -> None:
        self.at += seconds


@dataclass
class FullRun:
    """A full run whose scan is done and whose alert step is still to come."""

    run: Invocation
    results: list[ScanResult]


@dataclass
class Monitor:
    """Both paths of one monitor, step by step, against the local cloud."""

    cloud: LocalCloud
    infra: AlertResources
    clock: SharedClock
    settings: Settings = field(init=False)
    access: TargetAccess = field(init=False)

    def __post_init__(self) -> None:
        self.settings = Settings.from_env({**self.cloud.env(), **self.infra.env(**ENV)})
        self.target = Target(ACCOUNT, REGION, home=True)
        self.access = TargetAccess(
            self.target,
            base=boto3.Session(),
            make=lambda session, region: target_clients(session, region, max_workers=2),
        )
        self.clocks = Clocks(monotonic=self.clock.wall, sleep=self.clock.tick, wall=self.clock.wall)
        dynamodb = self.cloud.client("dynamodb")
        self.clients = AlertClients(sns=self.cloud.client("sns"), dynamodb=dynamodb, region=REGION)
        self.watch = WatchStore(dynamodb, self.infra.table_name)
        self.states = AlertStateStore(dynamodb, self.infra.table_name)
        self.rate = BudgetRate.within(self.settings.scan.max_rps, self.settings.scan.burst)

    def full_read(self) -> FullRun:
        run = Invocation.lasting(timedelta(minutes=5), clocks=self.clocks)
        scans = scan_targets(self.settings, [self.access], run)
        self.clock.tick()
        return FullRun(run, [scan.result for scan in scans])

    def full_alert(self, full: FullRun) -> AlertReport:
        alerts, watched = alert_and_watch(
            self.settings, full.results, full.run, alert_clients=self.clients, watch=self.watch
        )
        assert alerts is not None
        assert watched is not None
        assert not watched.errors
        self.clock.tick()
        return alerts

    def full(self) -> AlertReport:
        return self.full_alert(self.full_read())

    def fast_read(self) -> tuple[Invocation, list[FastTarget]]:
        run = Invocation.lasting(timedelta(seconds=55), clocks=self.clocks)
        lists = self.watch.get([self.target], now=run.now)
        parts = read_targets(
            self.settings,
            [self.access],
            lists,
            run,
            budget=lambda target: SharedBudget(
                self.clients.dynamodb, self.infra.table_name, target, rate=self.rate, clock=self.clock.wall
            ),
        )
        self.clock.tick()
        return run, parts

    def fast_alert(self, run: Invocation, parts: list[FastTarget]) -> AlertReport | None:
        assert self.settings.alerts is not None
        report = alert_watched(
            parts, self.settings.alerts, run, states=self.states, alert_clients=self.clients
        )
        self.clock.tick()
        return report.alerts

    def fast(self) -> AlertReport | None:
        return self.fast_alert(*self.fast_read())

    def watched(self) -> dict[str, int]:
        """The key ids on the stored watch list, with the level each is listed at."""
        (stored,) = self.watch.get([self.target], now=self.clock.now())
        assert stored.watch is not None, stored.problem
        return {key.id: key.level for plan in stored.watch.plans for key in plan.keys}


def delivered(infra: AlertResources) -> list[dict[str, Any]]:
    """Every alert the topic's inbox received so far (drained), digests opened."""
    return [alert for message in infra.received() for alert in message["Message"]["alerts"]]


def account_at_noon(cloud: LocalCloud, clock: SharedClock) -> SandboxAccount:
    account = SandboxAccount(clock=clock.now)
    cloud.sandbox.use_account(account)
    return account


def test_a_full_runs_older_reading_neither_recovers_nor_realerts_what_a_fast_run_alerted(
    cloud: LocalCloud, alert_infra: AlertResources
) -> None:
    # GIVEN a key of a daily quota of 50,000 at 39,999 (under 80%), which the full scan watches
    clock = SharedClock()
    account = account_at_noon(cloud, clock)
    plan = account.create_usage_plan("daily", limit=LIMIT, period="DAY")
    key = account.create_api_key("billing-client")
    account.attach_key(plan, key)
    account.record_usage(plan, key, 39_999)
    monitor = Monitor(cloud, alert_infra, clock)
    monitor.full()
    assert monitor.watched() == {key: 0}
    clock.tick(60)

    # WHEN a full run reads the plan at 39,999 ...
    older = monitor.full_read()
    clock.tick(20)
    # ... the key crosses 80% and a fast run reads it, alerts and confirms the crossing ...
    account.record_usage(plan, key, 2)
    crossed = monitor.fast()
    assert crossed is not None
    assert crossed.alerts_sent == 1
    (alert,) = delivered(alert_infra)
    assert (alert["event"], alert["level"], alert["used"]) == ("threshold", 80, 40_001)
    clock.tick(20)
    # ... and only then the full run's alert step runs, on its older reading
    report = monitor.full_alert(older)

    # THEN the older reading says nothing: no recovery, the key left as the newer reading set it
    assert delivered(alert_infra) == []
    assert (report.alerts_sent, report.skipped) == (0, 1)
    item = alert_infra.items()[state_key(plan, key)]
    assert (item["alertLevel"]["N"], item["episode"]["N"]) == ("80", "0")
    # AND the watch list it wrote lists the key at the level the newer reading set
    assert monitor.watched() == {key: 80}
    # AND the next fast run and the next full run do not alert 80% again
    assert monitor.fast() is None
    clock.tick(60)
    assert monitor.full().alerts_sent == 0
    assert monitor.fast() is None
    assert delivered(alert_infra) == []


def test_the_state_refuses_a_change_from_a_reading_older_than_its_own_even_at_the_same_revision(
    cloud: LocalCloud, alert_infra: AlertResources
) -> None:
    # GIVEN a key's state set at level 80 from a reading that ended at 12:00:30
    store = AlertStateStore(cloud.client("dynamodb"), alert_infra.table_name)
    pk = "plan-1#key-1"

    def reading(started: float, ended: float, used: int) -> KeyUsage:
        return KeyUsage(
            "plan-1",
            "daily",
            "key-1",
            "billing-client",
            "DAY",
            NOON.date(),
            NOON + timedelta(hours=12),
            used=used,
            remaining=LIMIT - used,
            limit=LIMIT,
            utilization=100 * used / LIMIT,
            read=ReadSpan(NOON + timedelta(seconds=started), NOON + timedelta(seconds=ended)),
        )

    token = "fast-run"
    newer = reading(29, 30, 40_001)
    alerted = AlertState(period_start=NOON.date(), level=80, rev=1)
    assert store.apply(
        [store.claim_write(pk, newer, AlertState(), token=token, until=NOON + timedelta(minutes=1), now=NOON)]
    ).outcomes == (True,)
    assert store.apply([store.confirm_write(pk, newer, alerted, token=token, now=NOON)]).outcomes == (True,)
    (state,) = store.load_keys([pk]).states.values()
    assert state.read_at == NOON + timedelta(seconds=30)

    # WHEN a run holding the item's current revision claims it, or changes it quietly, from a reading
    # that began before that one ended (12:00:10 to 12:00:11, under 80%)
    older = reading(10, 11, 39_999)
    recovered = AlertState(period_start=NOON.date(), level=0, rev=state.rev, episode=1)
    claim = store.claim_write(pk, older, state, token="full-run", until=NOON + timedelta(minutes=5), now=NOON)
    quiet = store.change_write(pk, older, state, recovered, now=NOON)
    # ... or from one that began exactly as it ended: the two are not ordered
    touching = store.claim_write(
        pk, reading(30, 31, 39_999), state, token="x", until=NOON + timedelta(minutes=5), now=NOON
    )

    # THEN DynamoDB refuses all three, by the write's own condition
    assert store.apply([claim]).outcomes == (False,)
    assert store.apply([quiet]).outcomes == (False,)
    assert store.apply([touching]).outcomes == (False,)
    # AND a reading begun after it may change it
    later = store.claim_write(
        pk, reading(31, 32, 39_999), state, token="y", until=NOON + timedelta(minutes=5), now=NOON
    )
    assert store.apply([later]).outcomes == (True,)


def test_an_older_full_runs_watch_list_never_replaces_a_newer_ones(
    cloud: LocalCloud, alert_infra: AlertResources
) -> None:
    # GIVEN the list of a full run that started at 12:05 stored
    store = WatchStore(cloud.client("dynamodb"), alert_infra.table_name)
    target = Target(ACCOUNT, REGION, home=True)
    newer = WatchList(NOON + timedelta(minutes=5), NOON + timedelta(minutes=20))
    assert store.put(target, newer) is not None

    # WHEN a run that started at 12:00 (delivered twice, or slower) writes its list after it
    older = WatchList(NOON, NOON + timedelta(minutes=15))
    written = store.put(target, older)

    # THEN the older list is not written, and the newer one stays; a run started as late writes
    assert written is None
    (stored,) = store.get([target], now=NOON + timedelta(minutes=6))
    assert stored.watch is not None
    assert stored.watch.written_at == newer.written_at
    assert store.put(target, newer) is not None


# -- Any interleaving ------------------------------------------------------------------------------

KEYS = 3
#: Each key starts under 80% of its daily quota, close enough that the full scan watches all three,
#: and crosses it after a few steps of traffic.
START_USED = (39_900, 39_950, 39_980)
LEVELS = (80, 90, 100)

#: The order of the runs' steps: each run (up to three of each path) appears twice, its read the
#: first time and its alert step the second.
orders = st.tuples(st.integers(1, 3), st.integers(1, 3)).flatmap(
    lambda runs: st.permutations(
        [("full", n) for n in range(runs[0])] * 2 + [("fast", n) for n in range(runs[1])] * 2
    )
)
#: Before each step, the requests one key serves (often none, sometimes a burst past a level).
traffic = st.lists(
    st.tuples(st.integers(0, KEYS - 1), st.sampled_from((0, 0, 10, 25, 40, 2_500))), min_size=12
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(order=orders, growth=traffic)
@example(order=[("full", 0), ("fast", 0), ("fast", 0), ("full", 0)], growth=[(0, 0), (0, 100)])
def test_any_interleaving_of_full_and_fast_runs_alerts_each_crossing_once_and_never_recovers(
    cloud: LocalCloud, order: list[tuple[str, int]], growth: list[tuple[int, int]]
) -> None:
    # GIVEN three keys of a daily quota under 80%, usage that only grows, and a first full run
    cloud.reset_moto()
    infra = cloud.create_alert_resources()
    clock = SharedClock()
    account = account_at_noon(cloud, clock)
    plan = account.create_usage_plan("daily", limit=LIMIT, period="DAY")
    keys = []
    for index, start in enumerate(START_USED):
        key = account.create_api_key(f"client-{index}")
        account.attach_key(plan, key)
        account.record_usage(plan, key, start)
        keys.append(key)
    monitor = Monitor(cloud, infra, clock)
    monitor.full()

    # WHEN the steps of full runs (any number in flight) and fast runs (a fast run that starts while
    # another holds the lease ends at once) interleave in the order drawn, with traffic between them
    used = dict(zip(keys, START_USED, strict=True))
    fulls: dict[int, FullRun] = {}
    fasts: dict[int, tuple[Invocation, list[FastTarget]] | None] = {}
    lease: int | None = None
    for (path, run), (grown, requests) in zip(order, [*growth, *[(0, 0)] * len(order)], strict=False):
        used[keys[grown]] += account.record_usage(plan, keys[grown], requests)
        if path == "full" and run not in fulls:
            fulls[run] = monitor.full_read()
        elif path == "full":
            monitor.full_alert(fulls[run])
        elif run not in fasts:
            fasts[run] = monitor.fast_read() if lease is None else None  # None: it found the lease held
            lease = run if lease is None else lease
        elif (read := fasts[run]) is not None:
            monitor.fast_alert(*read)
            lease = None
    # ... then one more run of each path
    clock.tick(60)
    monitor.full()
    monitor.fast()

    # THEN no key recovered, no (key, level) was alerted twice, under any id, and every key's highest
    # level reached was alerted
    alerts = delivered(infra)
    assert [a["id"] for a in alerts if a["event"] != "threshold"] == []
    sent = Counter((a["apiKeyId"], a["level"]) for a in alerts)
    assert [pair for pair, times in sent.items() if times > 1] == []
    for key, total in used.items():
        reached = max((level for level in LEVELS if total * 100 >= level * LIMIT), default=0)
        alerted = max((level for (k, level) in sent if k == key), default=0)
        assert alerted == reached, (key, total, sorted(sent))
