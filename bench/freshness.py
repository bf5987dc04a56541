"""``python -m bench.freshness`` (part of ``make bench``): how soon a crossing is alerted, with the fast path.

Issue 20's targets, at 10,000 keys in 300 plans, the account's bucket at 10 calls a second (burst 40)
and another caller taking the other half (5 a second) all along:

- from a key's usage crossing a level in the sandbox to its SNS message: at most 2 minutes, worst of
  at least 50 crossings, for the keys on the full scan's watch list;
- the monitor's API Gateway calls, both paths together: at most 5 a second averaged over every minute
  (300 in any 60 seconds), and no 429 for the monitor nor for the other caller;
- every crossing alerted exactly once across both paths, with a full scan and a fast run at the same
  moment, and a fast run and a full scan each delivered twice.

How. moto (DynamoDB, SNS, SQS, CloudWatch) runs in a process of its own (:func:`serve_moto`), and a
host process (:func:`serve`) runs the sandbox on a clock :data:`SCALE` times faster than real time,
from :data:`SIM_START`. It seeds the account (:func:`seed`): 60 busy plans with a daily quota, each
with growing keys (steady since midnight, as a tenant's traffic through the day: between 0.9 and 1.3
times the pace their day so far shows) and keys that stopped at 80 to 99%; 240 quiet plans with a
monthly quota; the usual two plans of 1,234 keys, with a growing key each; and :data:`SURGES` keys
whose client starts a batch job. A thread serves the growing keys' requests as the simulated time
passes and writes down when each crossed each level, as GetUsage shows it from then on; another
spends 5 tokens a second of the account's bucket (the other caller); every call of the monitor is
timed by the bucket.

The driver (:func:`measure`) runs the monitor's own steps on the same clock: a full run
(:func:`quota_monitor.run_targets`, with the shared budget and the watch lists, as the handler runs it)
every 15 simulated minutes, a fast run (:func:`quota_monitor.run_fast`) every minute, each in a thread
of its own so that they overlap as two Lambda functions would, and once each path twice at the same
moment. Each SNS publish is timed when it returns; at the end every message that reached the SQS
inbox subscribed to the topic is counted by alert id.

What the driver's threads share (one process, one interpreter) makes CPU work slower than in two
Lambdas, and the scaled clock makes CPU time count :data:`SCALE` times in simulated seconds: the
latencies err long. moto's transactions are made to cost what DynamoDB's do
(:func:`_roll_back_touched_items_only`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:freshness:start -->", "<!-- bench:freshness:end -->"
ACCOUNT = "123456789012"
REGION = "us-east-1"

#: Simulated seconds a real second.
SCALE = 4.0
#: A Monday, early: the busy keys' daily quotas are a quarter through their day.
SIM_START = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
SIM_SECONDS = 32 * 60
FULL_EVERY = 15 * 60
FAST_EVERY = 60
#: Crossings counted: after the first full scan has written a watch list, and early enough that the
#: run after them has been and gone before the end.
WINDOW = (120.0, SIM_SECONDS - 180.0)
#: When a path runs twice at once (a delivery repeated by the scheduler or by Lambda).
FAST_TWICE_AT = 600
FULL_TWICE_AT = 900
LEVELS = (80, 90, 100)

BUSY_PLANS = 60
GROWING_PER_BUSY_PLAN = 5
#: Keys of busy plans that are quiet at 45% until their client starts a batch job (one every 150
#: simulated seconds from second 200) that would use 60% of the day's quota in 10 minutes: not on
#: the watch list when they cross, so the next full scan alerts them (docs/alerts.md).
SURGES = 6
STOPPED_PER_BUSY_PLAN = 2
KEYS = 10_000
PLANS = 300
BIG_PLANS = 2
BIG_PLAN_KEYS = 1_234
DAY_LIMIT = 100_000
MONTH_LIMIT = 1_000_000
BACKGROUND_RPS = 5.0
ACCOUNT_RPS, ACCOUNT_BURST = 10.0, 40
LATENCY = (0.05, 0.15)
#: Simulated seconds between two rounds of the growing keys' requests.
GROWTH_TICK = 1.0

#: Targets.
MAX_LATENCY_SECONDS = 120.0
MIN_CROSSINGS = 50
MAX_CALLS_A_MINUTE = 300


@dataclass(frozen=True)
class SimClock:
    """Simulated time: ``SCALE`` times as fast as real time from ``real0`` (a ``time.time()``)."""

    real0: float
    scale: float = SCALE
    sim0: float = SIM_START.timestamp()

    def epoch(self) -> float:
        return self.sim0 + (time.time() - self.real0) * self.scale

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), UTC)

    def elapsed(self) -> float:
        return self.epoch() - self.sim0

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.scale)

    def monotonic(self) -> float:
        return time.monotonic() * self.scale

    def sleep_until(self, elapsed: float) -> None:
        self.sleep(elapsed - self.elapsed())


# -- the host -------------------------------------------------------------------------------------
@dataclass
class Grower:
    """A key whose requests keep coming: ``rate`` a simulated second, from the start."""

    plan_id: str
    key_id: str
    limit: int
    rate: float
    consumed: int
    applied: int = 0
    crossed: set[int] = field(default_factory=set)
    #: The simulated second its requests start coming (a surge: 0 for a key busy all along).
    start: float = 0.0


def seed(account: Any, rng: random.Random) -> list[Grower]:
    """The account (module doc); returns the growing keys."""
    from apigw_sandbox.seed import seed_key_usage  # noqa: PLC0415

    since_midnight = (SIM_START - SIM_START.replace(hour=0)).total_seconds()
    growers: list[Grower] = []
    quiet_plans = PLANS - BUSY_PLANS
    busy_keys = BUSY_PLANS * (GROWING_PER_BUSY_PLAN + STOPPED_PER_BUSY_PLAN + 20)
    quiet_keys = KEYS - busy_keys - BIG_PLANS * BIG_PLAN_KEYS
    number = 0

    def key(plan_id: str, utilization: float) -> str:
        nonlocal number
        key_id: str = account.create_api_key(f"key-{number:05d}", key_id=f"k{number:09d}")
        number += 1
        account.attach_key(plan_id, key_id)
        seed_key_usage(account, plan_id, key_id, utilization=utilization, rng=rng, history_days=20)
        return key_id

    def grow(plan_id: str, limit: int, utilization: float, per_second: float, start: float = 0.0) -> None:
        key_id = key(plan_id, utilization)
        remaining = account.daily_usage(plan_id, key_id, account.today(), account.today())[0][1]
        growers.append(
            Grower(
                plan_id,
                key_id,
                limit,
                per_second,
                limit - remaining,
                crossed={level for level in LEVELS if (limit - remaining) * 100 >= level * limit},
                start=start,
            )
        )

    for n in range(BUSY_PLANS):
        plan_id = account.create_usage_plan(
            f"busy-{n:02d}", limit=DAY_LIMIT, period="DAY", plan_id=f"b{n:05d}"
        )
        for _ in range(GROWING_PER_BUSY_PLAN):
            utilization = round(rng.uniform(70.0, 99.0), 1)
            pace = utilization / 100 * DAY_LIMIT / since_midnight  # its day so far
            grow(plan_id, DAY_LIMIT, utilization, pace * rng.uniform(0.9, 1.3))
        for _ in range(STOPPED_PER_BUSY_PLAN):
            key(plan_id, round(rng.uniform(80.0, 99.0), 1))
        if n < SURGES:
            grow(plan_id, DAY_LIMIT, 45.0, 0.6 * DAY_LIMIT / 600, start=200.0 + 150.0 * n)
        for _ in range(20 - (1 if n < SURGES else 0)):
            key(plan_id, round(rng.uniform(1.0, 50.0), 1))
    for n in range(BIG_PLANS):
        plan_id = account.create_usage_plan(f"big-{n}", limit=DAY_LIMIT, period="DAY", plan_id=f"g{n:05d}")
        for _ in range(BIG_PLAN_KEYS - 1):
            key(plan_id, round(rng.uniform(1.0, 50.0), 1))
        utilization = 78.0
        grow(plan_id, DAY_LIMIT, utilization, utilization / 100 * DAY_LIMIT / since_midnight * 1.2)
    per_plan = quiet_keys // quiet_plans
    for n in range(quiet_plans - BIG_PLANS):
        plan_id = account.create_usage_plan(
            f"quiet-{n:03d}", limit=MONTH_LIMIT, period="MONTH", plan_id=f"q{n:05d}"
        )
        extra = 1 if n < quiet_keys - per_plan * (quiet_plans - BIG_PLANS) else 0
        for _ in range(per_plan + extra):
            key(plan_id, round(rng.uniform(1.0, 60.0), 1))
    return growers


class RecordingThrottle:
    """The account's bucket (:class:`apigw_sandbox.server.AccountThrottle`) on simulated time, timing
    every call of the monitor, and taking the other caller's tokens from the same bucket."""

    def __init__(self, clock: SimClock) -> None:
        from apigw_sandbox.server import AccountThrottle  # noqa: PLC0415

        self.bucket = AccountThrottle(ACCOUNT_RPS, ACCOUNT_BURST, clock=clock.epoch)
        self.clock = clock
        self.lock = threading.Lock()
        self.calls: list[float] = []
        self.refused = 0
        self.background = 0
        self.background_refused = 0
        self.late = 0

    def admit(self) -> None:
        at = self.clock.elapsed()
        try:
            self.bucket.admit()
        except Exception:
            with self.lock:
                self.refused += 1
            raise
        with self.lock:
            self.calls.append(at)

    def other_caller(self, stop: threading.Event) -> None:
        """5 calls a second of somebody else's, evenly, from the start, until ``stop``. A call this
        process was too busy to make on time (more than a second late) is not made in a burst after:
        counted as late, and dropped, as a paced client would."""
        due = self.clock.elapsed()
        while not stop.is_set():
            due += 1.0 / BACKGROUND_RPS
            self.clock.sleep_until(due)
            if self.clock.elapsed() - due > 1.0:
                self.late += 1
                continue
            try:
                self.bucket.admit()
            except Exception:  # noqa: BLE001 - the sandbox's Throttled
                self.background_refused += 1
            self.background += 1


def _roll_back_touched_items_only() -> None:
    """moto's ``TransactWriteItems`` backs up the whole table, once per item of the transaction, to
    roll back on a failed condition: at a few thousand alert state items, a 100-item transaction
    takes seconds, where DynamoDB's time does not grow with the table. Same semantics, at the cost
    AWS has: back up only the items the transaction touches, and restore those."""
    import copy  # noqa: PLC0415

    from moto.dynamodb import models  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    class TablesAsIs:
        """``copy`` for moto's module: a table "copied" is the table (nothing to restore there)."""

        @staticmethod
        def deepcopy(value: Any) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value)

    original = models.DynamoDBBackend.transact_write_items
    vars(models)["copy"] = TablesAsIs  # the module's name for the copy module

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or {
                name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name
            }
            backups.append((table.name, key, copy.deepcopy(self.get_item(table.name, key))))
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, item in backups:
                if item is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, item.to_json()["Attributes"])
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def serve_moto() -> int:
    """moto on loopback (one request at a time, as AWS applies a conditional write: see
    :func:`apigw_sandbox.local.atomic_moto_server`), in a process of its own; prints its URL."""
    import logging  # noqa: PLC0415

    from apigw_sandbox.local import atomic_moto_server  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sys.setswitchinterval(0.001)
    _roll_back_touched_items_only()
    server = atomic_moto_server(set())
    server.start()
    host, port = server.get_host_and_port()
    _reply({"ready": True, "url": f"http://{host}:{port}"})
    sys.stdin.read()  # until the driver closes it
    server.stop()
    return 0


def serve() -> int:
    """Seed, start the clock, serve API Gateway, print the URL and the clock's start, then answer
    ``stats`` and ``quit`` lines on stdin."""
    from apigw_sandbox.account import SandboxAccount  # noqa: PLC0415
    from apigw_sandbox.server import SandboxServer  # noqa: PLC0415

    sys.setswitchinterval(0.001)
    seeded_at = time.monotonic()
    # The seed is written at the start instant; then the account's clock runs with the simulation.
    current: dict[str, Callable[[], datetime]] = {"now": lambda: SIM_START}

    def now() -> datetime:
        return current["now"]()

    account = SandboxAccount(clock=now, seed=1)
    growers = seed(account, random.Random(20))  # noqa: S311 - a repeatable account, not a secret
    seconds_to_seed = time.monotonic() - seeded_at
    clock = SimClock(time.time())
    current["now"] = clock.now
    throttle = RecordingThrottle(clock)
    sandbox = SandboxServer(account, throttle=throttle, latency=(LATENCY[0] / SCALE, LATENCY[1] / SCALE))  # type: ignore[arg-type]
    sandbox.start()
    crossings: list[dict[str, Any]] = []
    stop = threading.Event()

    def serve_growth() -> None:
        while not stop.is_set():
            elapsed = clock.elapsed()
            for grower in growers:
                due = int(grower.rate * max(0.0, elapsed - grower.start)) - grower.applied
                if due <= 0:
                    continue
                grower.applied += due
                grower.consumed += account.record_usage(grower.plan_id, grower.key_id, due)
                for level in LEVELS:
                    if level not in grower.crossed and grower.consumed * 100 >= level * grower.limit:
                        grower.crossed.add(level)
                        crossings.append(
                            {"plan": grower.plan_id, "key": grower.key_id, "level": level, "at": elapsed}
                        )
            clock.sleep(GROWTH_TICK)

    threads = [
        threading.Thread(target=serve_growth, daemon=True),
        threading.Thread(target=throttle.other_caller, args=(stop,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    _reply(
        {
            "ready": True,
            "real0": clock.real0,
            "apigateway": sandbox.url,
            "seconds_to_seed": seconds_to_seed,
            "growing_keys": len(growers),
        }
    )
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("op") == "quit":
                break
            if command.get("op") == "stats":
                with throttle.lock:
                    _reply(
                        {
                            "calls": list(throttle.calls),
                            "refused": throttle.refused,
                            "background": throttle.background,
                            "background_refused": throttle.background_refused,
                            "background_late": throttle.late,
                            "crossings": list(crossings),
                        }
                    )
    finally:
        stop.set()
        sandbox.stop()
    return 0


def _reply(body: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()


# -- the driver -----------------------------------------------------------------------------------
@dataclass
class Timeline:
    """What the driver saw: runs, SNS publishes, watch lists."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: (alert id, simulated second its SNS publish returned, path)
    published: list[tuple[str, float, str]] = field(default_factory=list)
    #: (simulated second written, {(plan, key)})
    lists: list[tuple[float, set[tuple[str, str]]]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def _counting(client: Any, counts: dict[str, int]) -> Any:
    """Count every request ``client`` makes, by operation (the cost model's check)."""

    def count(model: Any, **_: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    client.meta.events.register("before-call.*.*", count)
    return client


def measure(host: subprocess.Popen[str], ready: dict[str, Any], clock: SimClock) -> dict[str, Any]:
    os.environ.update({"FAST_SCHEDULE_MINUTES": "1", "SCHEDULE_MINUTES": "15"})
    import boto3  # noqa: PLC0415

    from quota_monitor import (  # noqa: PLC0415
        AlertClients,
        AlertStateStore,
        BudgetRate,
        Clocks,
        Settings,
        SharedBudget,
        Target,
        TargetAccess,
        WatchStore,
        client,
        cloudwatch_client,
        run_fast,
        run_targets,
        target_clients,
    )

    settings = Settings.from_env(dict(os.environ))
    assert settings.alerts is not None
    clocks = Clocks(monotonic=clock.monotonic, sleep=clock.sleep, wall=clock.epoch)
    target = Target(ACCOUNT, REGION, home=True)
    table = settings.alerts.table_name
    timeline = Timeline()
    requests: dict[str, dict[str, int]] = {"full": {}, "fast": {}}

    def path_clients(path: str) -> tuple[AlertClients, Any, Any]:
        dynamodb = _counting(client("dynamodb"), requests[path])
        clients = AlertClients(sns=client("sns"), dynamodb=dynamodb, region=REGION)
        access = TargetAccess(
            target,
            base=boto3.Session(),
            make=lambda session, region: target_clients(
                session, region, max_workers=settings.scan.max_workers
            ),
        )
        return clients, access, cloudwatch_client()

    full_clients, full_access, full_cloudwatch = path_clients("full")
    fast_clients, fast_access, fast_cloudwatch = path_clients("fast")
    rate = BudgetRate.within(settings.scan.max_rps, settings.scan.burst)

    def on_alert(path: str) -> Callable[[Any], None]:
        def heard(message: Any) -> None:
            at = clock.elapsed()
            with timeline.lock:
                timeline.published += [(note.event_id, at, path) for note in message.notes]

        return heard

    def full_run() -> None:
        now, started = clock.now(), clock.elapsed()
        store = WatchStore(full_clients.dynamodb, table)
        report = run_targets(
            settings,
            [full_access],
            now=now,
            health_cloudwatch=lambda: full_cloudwatch,
            deadline=lambda: clock.elapsed() >= started + 240,
            alert_clients=full_clients,
            claim_until=now + timedelta(seconds=300),
            on_alert=on_alert("full"),
            alerts_deadline=lambda: clock.elapsed() >= started + 280,
            budget=lambda t: SharedBudget(full_clients.dynamodb, table, t, rate=rate, clock=clock.epoch),
            watch=store,
            clocks=clocks,
        )
        (stored,) = store.get([target], now=clock.now())
        keys = (
            {(plan.id, key.id) for plan in stored.watch.plans for key in plan.keys} if stored.watch else set()
        )
        with timeline.lock:
            timeline.lists.append((clock.elapsed(), keys))
            timeline.runs.append(
                {"path": "full", "at": started, "seconds": clock.elapsed() - started, **report.summary()}
            )
            _progress(timeline.runs[-1])

    def fast_run() -> None:
        now, started = clock.now(), clock.elapsed()
        report = run_fast(
            settings,
            [fast_access],
            store=WatchStore(fast_clients.dynamodb, table),
            states=AlertStateStore(fast_clients.dynamodb, table),
            alert_clients=fast_clients,
            budget=lambda t: SharedBudget(fast_clients.dynamodb, table, t, rate=rate, clock=clock.epoch),
            health_cloudwatch=lambda: fast_cloudwatch,
            now=now,
            ends_at=now + timedelta(seconds=55),
            deadline=lambda: clock.elapsed() >= started + 33,
            alerts_deadline=lambda: clock.elapsed() >= started + 48,
            on_alert=on_alert("fast"),
            clocks=clocks,
        )
        with timeline.lock:
            timeline.runs.append({"at": started, "seconds": clock.elapsed() - started, **report.summary()})
        _progress(timeline.runs[-1])

    errors = _play(clock, full_run, fast_run)

    # One fast run alone: its CPU (what a 128 MB function's share of a vCPU must cover).
    cpu_before = _cpu_seconds()
    fast_run()
    alone = {"cpu_seconds": _cpu_seconds() - cpu_before, **timeline.runs[-1]}
    timeline.runs.pop()

    delivered = _inbox(client("sqs"), ready["queue_url"])
    stats = _ask(host, op="stats")
    return {
        "stats": stats,
        "published": timeline.published,
        "lists": [(at, sorted(keys)) for at, keys in timeline.lists],
        "runs": timeline.runs,
        "delivered": delivered,
        "requests": requests,
        "alone": alone,
        "errors": errors,
    }


def _play(clock: SimClock, full_run: Callable[[], None], fast_run: Callable[[], None]) -> list[str]:
    """The schedule (module doc), each run in a thread of its own at its simulated second; the
    errors the runs raised."""
    schedule: list[tuple[int, Callable[[], None]]] = []
    for at in range(0, SIM_SECONDS, FULL_EVERY):
        schedule += [(at, full_run)] * (2 if at == FULL_TWICE_AT else 1)
    for at in range(FAST_EVERY, SIM_SECONDS, FAST_EVERY):
        schedule += [(at, fast_run)] * (2 if at == FAST_TWICE_AT else 1)
    schedule.sort(key=lambda item: item[0])
    threads = []
    errors: list[str] = []

    def guarded(run: Callable[[], None]) -> Callable[[], None]:
        def go() -> None:
            try:
                run()
            except Exception as error:  # noqa: BLE001 - reported, and fails the benchmark
                import traceback  # noqa: PLC0415

                traceback.print_exc()
                errors.append(f"{run.__name__}: {type(error).__name__}: {error}")

        return go

    for at, run in schedule:
        clock.sleep_until(at)
        thread = threading.Thread(target=guarded(run))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return errors


def _inbox(sqs: Any, queue_url: str) -> dict[str, int]:
    """How many times each alert id reached the SQS inbox subscribed to the topic."""
    delivered: dict[str, int] = {}
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        for message in batch:
            for alert in json.loads(json.loads(message["Body"])["Message"])["alerts"]:
                delivered[alert["id"]] = delivered.get(alert["id"], 0) + 1
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return delivered


def _progress(run: dict[str, Any]) -> None:
    """One line on stderr a run, for whoever watches the benchmark."""
    shown = (
        "path",
        "at",
        "seconds",
        "apiCalls",
        "plansRead",
        "keysRead",
        "candidates",
        "alertsSent",
        "scanErrors",
    )
    sys.stderr.write(
        " ".join(
            f"{name}={run[name]:.0f}" if isinstance(run.get(name), float) else f"{name}={run.get(name)}"
            for name in shown
            if name in run
        )
        + (" leaseHeld" if run.get("leaseHeld") else "")
        + "\n"
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ask(host: subprocess.Popen[str], **command: Any) -> dict[str, Any]:
    assert host.stdin is not None
    assert host.stdout is not None
    host.stdin.write(json.dumps(command) + "\n")
    host.stdin.flush()
    answer: dict[str, Any] = json.loads(host.stdout.readline())
    return answer


# -- the numbers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crossing:
    plan: str
    key: str
    level: int
    at: float
    on_list: bool
    #: Simulated seconds from the crossing to the SNS publish that carried it (or a higher level).
    latency: float | None
    path: str | None


def window(outcome: dict[str, Any]) -> tuple[float, float]:
    """:data:`WINDOW`, starting no sooner than the first watch list (before it, the monitor has just
    been deployed: its first full scan is still running, and there is no fast path yet)."""
    first = min((at for at, _ in outcome["lists"]), default=WINDOW[0])
    return max(WINDOW[0], first), WINDOW[1]


def crossings(outcome: dict[str, Any]) -> list[Crossing]:
    """Each crossing in :func:`window`, with whether the key was on the watch list then, and when its
    alert went out (its level's, or a higher level's when one run saw both)."""
    lists = sorted((at, {tuple(pair) for pair in keys}) for at, keys in outcome["lists"])
    start, end = window(outcome)
    by_key: dict[tuple[str, str], list[tuple[int, float, str]]] = {}
    for event_id, at, path in outcome["published"]:
        kind, plan, key, _period, level, *_ = event_id.split(":")
        if kind == "threshold":
            by_key.setdefault((plan, key), []).append((int(level), at, path))
    found = []
    for crossing in outcome["stats"]["crossings"]:
        at = float(crossing["at"])
        if not start <= at <= end:
            continue
        pair = (crossing["plan"], crossing["key"])
        in_force = [keys for written, keys in lists if written <= at]
        on_list = bool(in_force) and pair in in_force[-1]
        alerts = [
            (sent, path)
            for level, sent, path in by_key.get(pair, [])
            if level >= crossing["level"] and sent >= at
        ]
        first = min(alerts, default=None)
        found.append(
            Crossing(
                crossing["plan"],
                crossing["key"],
                int(crossing["level"]),
                at,
                on_list,
                None if first is None else first[0] - at,
                None if first is None else first[1],
            )
        )
    return found


def calls_a_minute(calls: list[float]) -> tuple[int, int, float]:
    """(most calls in a calendar minute, most in any 60 seconds, the average a second over the run)."""
    calls = sorted(calls)
    by_minute: dict[int, int] = {}
    for at in calls:
        by_minute[int(at // 60)] = by_minute.get(int(at // 60), 0) + 1
    sliding, start = 0, 0
    for end, at in enumerate(calls):
        while at - calls[start] >= 60.0:
            start += 1
        sliding = max(sliding, end - start + 1)
    span = (calls[-1] - calls[0]) if len(calls) > 1 else 1.0
    return max(by_minute.values(), default=0), sliding, len(calls) / span


def report(outcome: dict[str, Any], seconds_to_seed: float) -> tuple[str, bool]:
    """The section for docs/benchmarks.md, and whether every target was met."""
    found, span = crossings(outcome), window(outcome)
    latencies = [c.latency for c in found if c.on_list and c.latency is not None]
    stats = outcome["stats"]
    _, sliding, _ = calls_a_minute(stats["calls"])
    runs = outcome["runs"]
    fast = [run for run in runs if run.get("path") == "fast" and not run.get("leaseHeld")]
    held = [run for run in runs if run.get("path") == "fast" and run.get("leaseHeld")]
    full = [run for run in runs if run.get("path") == "full"]
    published = {event_id for event_id, _, _ in outcome["published"]}
    ok = (
        not outcome["errors"]
        and len(latencies) >= MIN_CROSSINGS
        and max(latencies, default=math.inf) <= MAX_LATENCY_SECONDS
        and all(c.latency is not None for c in found)
        and all(n == 1 for n in outcome["delivered"].values())
        and published <= set(outcome["delivered"])
        and sliding <= MAX_CALLS_A_MINUTE
        and stats["refused"] == 0
        and stats["background_refused"] == 0
        and len(held) >= 1
    )
    return _text(outcome, seconds_to_seed, found, span, runs=(fast, held, full)), ok


def _mark(good: bool) -> str:
    return "✅" if good else "❌"


def _seconds(values: Sequence[float], pick: Callable[[Sequence[float]], float]) -> str:
    return f"{pick(values):.0f}" if values else "-"


def _p95(values: Sequence[float]) -> float:
    return values[min(len(values) - 1, int(0.95 * len(values)))]


def _text(
    outcome: dict[str, Any],
    seconds_to_seed: float,
    found: list[Crossing],
    span: tuple[float, float],
    *,
    runs: tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]],
) -> str:
    """The section of docs/benchmarks.md: the setting, the table, the notes."""
    fast, held, full = runs
    watched = [c for c in found if c.on_list]
    latencies = sorted(c.latency for c in watched if c.latency is not None)
    surged = [c for c in found if not c.on_list]
    off = sorted(c.latency for c in surged if c.latency is not None)
    missing = [c for c in found if c.latency is None]
    doubled = [n for n in outcome["delivered"].values() if n > 1]
    undelivered = {event_id for event_id, _, _ in outcome["published"]} - set(outcome["delivered"])
    stats = outcome["stats"]
    minute, sliding, average = calls_a_minute(stats["calls"])
    by_path = {path: sum(1 for c in found if c.path == path) for path in ("fast", "full")}
    requests = outcome["requests"]["fast"]
    alone = outcome["alone"]
    share = 128 / 1769
    last = full[-1] if full else {}
    worst = latencies[-1] if latencies else math.inf
    clean = stats["refused"] == 0 and stats["background_refused"] == 0

    def spread(name: str) -> str:
        values = [float(run[name]) for run in fast]
        return f"{_seconds(values, statistics.median)} / {_seconds(values, max)}"

    rows = [
        (
            f"crossings of keys on the watch list (simulated seconds {span[0]:.0f} to {span[1]:.0f})",
            f"{len(latencies)} {_mark(len(latencies) >= MIN_CROSSINGS)}",
            f"≥ {MIN_CROSSINGS}",
        ),
        (
            "crossing to SNS publish, median / 95th percentile / worst, s",
            f"{_seconds(latencies, statistics.median)} / {_seconds(latencies, _p95)} / "
            f"{_seconds(latencies, max)} {_mark(worst <= MAX_LATENCY_SECONDS)}",
            f"worst ≤ {MAX_LATENCY_SECONDS:.0f}",
        ),
        ("alerted by the fast path / by the full scan", f"{by_path['fast']} / {by_path['full']}", ""),
        ("crossings not alerted", f"{len(missing)} {_mark(not missing)}", "0"),
        ("alerts delivered twice (SQS inbox, by alert id)", f"{len(doubled)} {_mark(not doubled)}", "0"),
        ("alerts published and not delivered", f"{len(undelivered)} {_mark(not undelivered)}", "0"),
        (
            "monitor's API calls, most in any 60 s / in a calendar minute",
            f"{sliding} / {minute} {_mark(sliding <= MAX_CALLS_A_MINUTE)}",
            f"≤ {MAX_CALLS_A_MINUTE} (5 a second)",
        ),
        ("monitor's API calls a second on average over the run", f"{average:.2f}", ""),
        (
            f"429s: the monitor / the other caller ({stats['background']:,} calls)",
            f"{stats['refused']} / {stats['background_refused']} {_mark(clean)}",
            "0 / 0",
        ),
        (
            "fast runs / that found the lease held",
            f"{len(fast)} / {len(held)} {_mark(len(held) >= 1)}",
            "the repeated one",
        ),
        ("fast run, median / longest, s", spread("seconds"), "< 55 (its timeout)"),
        ("fast run: plans read, median / most", spread("plansRead"), ""),
        ("fast run: API calls, median / most", spread("apiCalls"), ""),
        (
            "fast run: DynamoDB requests a run (all operations)",
            f"{sum(requests.values()) / max(1, len(fast) + len(held)):.1f} ({_ops(requests)})",
            "",
        ),
        ("full runs: seconds each", ", ".join(format(r["seconds"], ".0f") for r in full), ""),
        (
            "full run: watched plans / keys (last), bytes",
            f"{last.get('watchedPlans', 0)} / {last.get('watchedKeys', 0)}, "
            f"{last.get('watchListBytes', 0):,}",
            "",
        ),
        (
            f"one fast run alone: CPU s (at 128 MB, {share:.3f} of a vCPU)",
            f"{alone['cpu_seconds']:.2f} (≈ {alone['cpu_seconds'] / share:.1f} s)",
            "",
        ),
    ]
    lines = [
        "Generated by `make bench` (`python -m bench.freshness`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f} at the end. Simulated time, {SCALE:g} times real time; seeding took "
        f"{seconds_to_seed:.0f} s.",
        "",
        f"{PLANS} usage plans, {KEYS:,} API keys; {BUSY_PLANS} busy plans with a daily quota, "
        f"{stats_growing(outcome)} keys growing steadily; the account's bucket at {ACCOUNT_RPS:g}/s, burst "
        f"{ACCOUNT_BURST}, with another caller spending {BACKGROUND_RPS:g} a second all along; "
        f"{SIM_SECONDS // 60} simulated minutes: a full run every {FULL_EVERY // 60} minutes, a fast run "
        f"every minute, the fast path twice at minute {FAST_TWICE_AT // 60} and the full scan twice at "
        f"minute {FULL_TWICE_AT // 60} (with that minute's fast run beside them).",
        "",
        "| | measured | target |",
        "|---|---:|---|",
        *(f"| {label} | {value} | {target} |" for label, value, target in rows),
        "",
        f"- Crossings of keys that were not on the watch list when they crossed: {len(surged)}"
        + (
            f", alerted {_seconds(off, statistics.median)} s (median) and {_seconds(off, max)} s (worst) "
            "later, by the next run that had them: a key whose pace outran what its day so far showed."
            if surged
            else "."
        ),
    ]
    if outcome["errors"]:
        lines.append(f"- Errors: {'; '.join(outcome['errors'][:5])}")
    return "\n".join(lines)


def stats_growing(outcome: dict[str, Any]) -> int:
    return int(outcome.get("growing_keys", 0))


def _ops(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda item: -item[1]))


def write_docs(text: str) -> None:
    body = DOCS.read_text(encoding="utf-8")
    block = f"{START}\n{text}\n{END}"
    if START in body:
        head, rest = body.split(START, 1)
        body = head + block + rest.split(END, 1)[1]
    else:
        body = body.rstrip() + "\n\n## Freshness: the fast path\n\n" + block + "\n"
    DOCS.write_text(body, encoding="utf-8")


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(  # noqa: S603 - our own module, no shell
        [sys.executable, "-m", "bench.freshness", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready: dict[str, Any] = json.loads(process.stdout.readline())
    return process, ready


def _stop(process: subprocess.Popen[str], last: dict[str, Any] | None = None) -> None:
    if process.stdin is not None:
        if last is not None:
            process.stdin.write(json.dumps(last) + "\n")
        process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()  # its servers' threads; everything it had to say is said


def alert_resources() -> dict[str, str]:
    """The alert state table, the topic and an SQS inbox subscribed to it, in moto; their settings."""
    import boto3  # noqa: PLC0415

    dynamodb, sns, sqs = boto3.client("dynamodb"), boto3.client("sns"), boto3.client("sqs")
    dynamodb.create_table(
        TableName="quota-alert-state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = sns.create_topic(Name="quota-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="quota-alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return {"ALERT_TOPIC_ARN": topic, "ALERT_TABLE_NAME": "quota-alert-state", "queue_url": queue}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=__doc__)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-moto", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the raw outcome to this file")
    args = parser.parse_args(argv)
    if args.serve:
        return serve()
    if args.serve_moto:
        return serve_moto()
    from bench.run import child_env  # noqa: PLC0415

    env = child_env({})
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
        os.environ.pop(name, None)
    os.environ.update(env)
    moto, moto_ready = _start(["--serve-moto"], env)
    try:
        os.environ["AWS_ENDPOINT_URL"] = moto_ready["url"]
        resources = alert_resources()
        host, ready = _start(["--serve"], env)
        try:
            os.environ["AWS_ENDPOINT_URL_API_GATEWAY"] = ready["apigateway"]
            queue_url = resources.pop("queue_url")
            os.environ.update(resources)
            outcome = measure(host, {**ready, "queue_url": queue_url}, SimClock(float(ready["real0"])))
            outcome["growing_keys"] = ready["growing_keys"]
            if args.json is not None:
                args.json.write_text(json.dumps(outcome), encoding="utf-8")
        finally:
            _stop(host, {"op": "quit"})
    finally:
        _stop(moto)
    text, ok = report(outcome, float(ready["seconds_to_seed"]))
    print(text)
    if not args.no_docs:
        write_docs(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
