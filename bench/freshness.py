"""``python -m bench.freshness`` (part of ``make bench``): how soon a crossing is alerted, with the fast path.

Issue 20's targets, at 10,000 keys in 300 plans, the account's bucket at 10 calls a second (burst 40)
and another caller taking the other half (5 a second) all along:

- from a key's usage crossing a level in the sandbox to its SNS message: at most 2 minutes, worst of
  at least 50 crossings, for the keys on the full scan's watch list;
- the monitor's API Gateway calls, both paths together: at most 5 a second averaged over every minute
  (300 in any 60 seconds), and no 429 for the monitor nor for the other caller;
- every crossing alerted exactly once across both paths (issue 24), with full scans every 5 minutes
  and fast runs every minute, several of them starting at the same instant, and a fast run and a
  full scan each delivered twice: counted from what was delivered, per key, level and period
  (:mod:`bench.delivered`), no double (whatever the id, a new episode ``:1`` of the same level
  included), no "recovered" message at all (usage only grows here), no crossing missing.

How. moto (DynamoDB, SNS, SQS, EventBridge, CloudWatch) runs in a process of its own
(:func:`bench.host.serve_moto`), and a host process (:func:`serve`) runs the sandbox on a clock
:data:`SCALE` times faster than real time, from :data:`SIM_START`. It seeds the account
(:func:`seed`): 60 busy plans with a daily quota, each with growing keys (steady since midnight, as a
tenant's traffic through the day: between 0.9 and 1.3 times the pace their day so far shows) and
keys that stopped at 80 to 99%; 240 quiet plans with a monthly quota; the usual two plans of 1,234
keys, with a growing key each; and :data:`SURGES` keys whose client starts a batch job. A thread
serves the growing keys' requests as the simulated time passes and writes down when each crossed
each level (and in which quota period), as GetUsage shows it from then on; another spends 5 tokens a
second of the account's bucket (the other caller); every call of the monitor is timed by the bucket.

The driver (:func:`measure`) runs the monitor's own steps on the same clock (:func:`schedule`): a
full run (:func:`quota_monitor.run_targets`, with the shared budget and the watch lists, as the
handler runs it) every :data:`FULL_EVERY` simulated seconds, a fast run
(:func:`quota_monitor.run_fast`) every minute, each in a thread of its own so that they overlap as two
Lambda functions would: every full run after the first starts at the same instant as a fast run, and
once each path runs twice at the same moment. Alerts also go to an EventBridge bus (``EVENT_BUS_NAME``)
whose rule sends them to a queue, unless ``--no-events``. Each SNS publish is timed when it returns;
at the end every message that reached the SQS inbox subscribed to the topic, and every event that
reached the bus's queue, is counted by alert id, and by key, level and period against the crossings
(:func:`bench.delivered.tally`).

What the driver's threads share (one process, one interpreter) makes CPU work slower than in two
Lambdas, and the scaled clock makes CPU time count :data:`SCALE` times in simulated seconds: the
latencies err long. moto's transactions are made to cost what DynamoDB's do
(:func:`bench.host.lighter_transactions`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.delivered import AlertId, Slot, Tally, id_of_event, ids_in_message, tally
from bench.host import HostProcess, child_env, reply, serve_lines, start_moto, unknown, write_section

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

START, END = "<!-- bench:freshness:start -->", "<!-- bench:freshness:end -->"
ACCOUNT = "123456789012"
REGION = "us-east-1"

#: Simulated seconds a real second.
SCALE = 4.0
#: A Monday, early: the busy keys' daily quotas are a quarter through their day.
SIM_START = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
SIM_SECONDS = 32 * 60
#: The full scan's interval (issue 24: 5 minutes, its shortest useful one at 10,000 keys) and the
#: fast path's: every full run after the first starts at the same instant as a fast run.
FULL_EVERY = 5 * 60
FAST_EVERY = 60
#: Crossings timed: after the first full scan has written a watch list, and early enough that the
#: run after them has been and gone before the end. Every crossing up to its end counts as missing
#: when no alert for it was delivered.
WINDOW = (120.0, SIM_SECONDS - 180.0)
#: When a path runs twice at once (a delivery repeated by the scheduler or by Lambda), beside the
#: other path's run of that instant.
FAST_TWICE_AT = 600
FULL_TWICE_AT = 900
#: The bus the monitor puts its events on (``EVENT_BUS_NAME``), unless ``--no-events``.
EVENT_BUS = "quota-events"
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
    #: Its plan's quota period.
    period: str = "DAY"


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


def serve() -> int:
    """Seed, start the clock, serve API Gateway, print the URL and the clock's start, then answer
    ``stats`` and ``quit`` lines on stdin (:mod:`bench.host`'s protocol)."""
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
                            {
                                "plan": grower.plan_id,
                                "key": grower.key_id,
                                "level": level,
                                "at": elapsed,
                                "period": account.period_start(grower.period, account.today()).isoformat(),
                            }
                        )
            clock.sleep(GROWTH_TICK)

    threads = [
        threading.Thread(target=serve_growth, daemon=True),
        threading.Thread(target=throttle.other_caller, args=(stop,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    reply(
        {
            "ready": True,
            "real0": clock.real0,
            "apigateway": sandbox.url,
            "seconds_to_seed": seconds_to_seed,
            "growing_keys": len(growers),
        }
    )

    def answer(command: dict[str, Any]) -> dict[str, Any]:
        if command.get("op") != "stats":
            return unknown(command)
        with throttle.lock:
            return {
                "calls": list(throttle.calls),
                "refused": throttle.refused,
                "background": throttle.background,
                "background_refused": throttle.background_refused,
                "background_late": throttle.late,
                "crossings": list(crossings),
            }

    try:
        serve_lines(answer)
    finally:
        stop.set()
        sandbox.stop()
    return 0


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


def measure(host: HostProcess, ready: dict[str, Any], clock: SimClock) -> dict[str, Any]:
    """Play the schedule against the host (``ready``: its URLs and the inboxes' queues); the outcome."""
    os.environ.update(
        {"FAST_SCHEDULE_MINUTES": str(FAST_EVERY // 60), "SCHEDULE_MINUTES": str(FULL_EVERY // 60)}
    )
    import boto3  # noqa: PLC0415

    from quota_monitor import (  # noqa: PLC0415
        AlertClients,
        AlertStateStore,
        BudgetRate,
        Clocks,
        Invocation,
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
        events = client("events") if settings.alerts is not None and settings.alerts.event_bus else None
        clients = AlertClients(sns=client("sns"), dynamodb=dynamodb, region=REGION, events=events)
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
        started = clock.elapsed()
        store = WatchStore(full_clients.dynamodb, table)
        # The stack's timeout: calls stop 60 s before it, alerts 20 s before it (as in Lambda).
        report = run_targets(
            settings,
            [full_access],
            Invocation.lasting(timedelta(seconds=300), clocks=clocks),
            health_cloudwatch=lambda: full_cloudwatch,
            alert_clients=full_clients,
            on_alert=on_alert("full"),
            budget=lambda t: SharedBudget(full_clients.dynamodb, table, t, rate=rate, clock=clock.epoch),
            watch=store,
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
        started = clock.elapsed()
        # The fast function's timeout at a 1-minute interval: 55 s, calls stop at 33 s, alerts at 48 s.
        report = run_fast(
            settings,
            [fast_access],
            Invocation.lasting(timedelta(seconds=55), clocks=clocks),
            store=WatchStore(fast_clients.dynamodb, table),
            states=AlertStateStore(fast_clients.dynamodb, table),
            alert_clients=fast_clients,
            budget=lambda t: SharedBudget(fast_clients.dynamodb, table, t, rate=rate, clock=clock.epoch),
            health_cloudwatch=lambda: fast_cloudwatch,
            on_alert=on_alert("fast"),
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

    sqs = client("sqs")
    delivered = _drain(sqs, ready["queue_url"], ids_in_message)
    events = (
        _drain(sqs, ready["events_queue_url"], lambda body: [id_of_event(body)])
        if ready.get("events_queue_url")
        else None
    )
    stats = host.ask(op="stats")
    return {
        "stats": stats,
        "published": timeline.published,
        "lists": [(at, sorted(keys)) for at, keys in timeline.lists],
        "runs": timeline.runs,
        "delivered": delivered,
        "events": events,
        "requests": requests,
        "alone": alone,
        "errors": errors,
    }


def schedule(
    seconds: int = SIM_SECONDS,
    *,
    full_every: int = FULL_EVERY,
    fast_every: int = FAST_EVERY,
    full_twice_at: int = FULL_TWICE_AT,
    fast_twice_at: int = FAST_TWICE_AT,
) -> list[tuple[int, str]]:
    """(simulated second, "full" or "fast") of every run, in order: a full run every ``full_every``
    from 0, a fast run every ``fast_every`` from then on (the first fast run needs the first list),
    each path twice at its ``*_twice_at``. Runs of the same second start at the same instant."""
    runs = [(at, "full") for at in range(0, seconds, full_every) for _ in range(1 + (at == full_twice_at))]
    runs += [
        (at, "fast")
        for at in range(fast_every, seconds, fast_every)
        for _ in range(1 + (at == fast_twice_at))
    ]
    return sorted(runs, key=lambda run: run[0])


def _play(clock: SimClock, full_run: Callable[[], None], fast_run: Callable[[], None]) -> list[str]:
    """The :func:`schedule`, each run in a thread of its own at its simulated second (those of the
    same second started together, once that second has come); the errors the runs raised."""
    paths = {"full": full_run, "fast": fast_run}
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

    for at, path in schedule():
        clock.sleep_until(at)
        thread = threading.Thread(target=guarded(paths[path]))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return errors


def _drain(sqs: Any, queue_url: str, ids: Callable[[str], list[str]]) -> dict[str, int]:
    """How many times each alert id reached an SQS queue (the topic's inbox, or the bus's): ``ids``
    reads a message's body (:mod:`bench.delivered`); the queue is left empty."""
    delivered: Counter[str] = Counter()
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return dict(delivered)
        for message in batch:
            delivered.update(ids(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


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
        alert = AlertId.parse(event_id)
        if alert.kind == "threshold":
            by_key.setdefault((alert.plan, alert.key), []).append((alert.level, at, path))
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


@dataclass(frozen=True)
class Deliveries:
    """What the readers got (:mod:`bench.delivered`): the SNS inbox's, and the bus's (None: no bus)."""

    sns: Tally
    events: Tally | None

    @property
    def ok(self) -> bool:
        return self.sns.ok and (self.events is None or self.events.ok)


def deliveries(outcome: dict[str, Any]) -> Deliveries:
    """Every (key, level, period) delivered, against every crossing up to the end of :func:`window`."""
    end = window(outcome)[1]
    slots = [
        Slot(c["plan"], c["key"], int(c["level"]), c["period"])
        for c in outcome["stats"]["crossings"]
        if float(c["at"]) <= end
    ]
    events = outcome.get("events")
    return Deliveries(
        tally(Counter(outcome["delivered"]).elements(), slots),
        None if events is None else tally(Counter(events).elements(), slots),
    )


def report(outcome: dict[str, Any], seconds_to_seed: float) -> tuple[str, bool]:
    """The section for docs/benchmarks.md, and whether every target was met."""
    found, span = crossings(outcome), window(outcome)
    delivered = deliveries(outcome)
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
        and delivered.ok
    )
    return _text(outcome, seconds_to_seed, found, span, delivered, runs=(fast, held, full)), ok


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
    delivered: Deliveries,
    *,
    runs: tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]],
) -> str:
    """The section of docs/benchmarks.md: the setting, the table, the notes."""
    fast, held, full = runs
    watched = [c for c in found if c.on_list]
    latencies = sorted(c.latency for c in watched if c.latency is not None)
    surged = [c for c in found if not c.on_list]
    off = sorted(c.latency for c in surged if c.latency is not None)
    unpublished = [c for c in found if c.latency is None]
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
        ("crossings timed and not published", f"{len(unpublished)} {_mark(not unpublished)}", "0"),
        *_delivery_rows(delivered, span[1]),
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
        f"{SIM_SECONDS // 60} simulated minutes: a full run every {FULL_EVERY // 60} minutes and a fast "
        f"run every minute, {_times(_together())} a full run and a fast run starting at the same instant; "
        f"the fast path twice at minute {FAST_TWICE_AT // 60} and the full scan twice at minute "
        f"{FULL_TWICE_AT // 60} (with that minute's run of the other path beside them); "
        + (
            "every alert also on an EventBridge bus whose rule sends it to a queue."
            if delivered.events is not None
            else "no EventBridge bus (--no-events)."
        ),
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
    lines += _delivery_notes(outcome, delivered)
    if outcome["errors"]:
        lines.append(f"- Errors: {'; '.join(outcome['errors'][:5])}")
    return "\n".join(lines)


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _together() -> int:
    """How many instants of :func:`schedule` start both paths."""
    paths: dict[int, set[str]] = {}
    for at, path in schedule():
        paths.setdefault(at, set()).add(path)
    return sum(1 for started in paths.values() if len(started) == 2)


def _delivery_rows(delivered: Deliveries, end: float) -> list[tuple[str, str, str]]:
    """The table's rows of what was delivered (:mod:`bench.delivered`), SNS inbox / events."""
    sns, events = delivered.sns, delivered.events

    def both(count: Callable[[Tally], int]) -> str:
        shown = f"{count(sns):,}" + ("" if events is None else f" / {count(events):,}")
        return f"{shown} {_mark(count(sns) == 0 and (events is None or count(events) == 0))}"

    channels = "SNS inbox" + ("" if events is None else " / events")
    return [
        (
            f"alerts delivered, {channels} (key, level and period alerted)",
            f"{sns.deliveries:,} ({len(sns.alerts):,})"
            + ("" if events is None else f" / {events.deliveries:,} ({len(events.alerts):,})"),
            "",
        ),
        (
            f"missing: crossings never alerted, of {sns.crossings} up to second {end:.0f}, {channels}",
            both(lambda t: len(t.missing)),
            "0",
        ),
        (
            "doubled alerts: a key, level and period alerted more than once (any id, :1 too)",
            f"{len(sns.doubled)} {_mark(not sns.doubled)}",
            "0",
        ),
        (
            "doubled events: the same, on the bus",
            "- (no bus)" if events is None else f"{len(events.doubled)} {_mark(not events.doubled)}",
            "0",
        ),
        (
            f"false recoveries: recovered messages while usage only grew, {channels}",
            both(lambda t: len(t.recoveries)),
            "0",
        ),
        (
            "keys forecast more than once in a period, any id (shown, not judged)",
            f"{len(sns.repeated_forecasts)}",
            "",
        ),
    ]


def _delivery_notes(outcome: dict[str, Any], delivered: Deliveries, shown: int = 3) -> list[str]:
    """The first doubles, recoveries and missing crossings, each alert with the path that published
    it and when (simulated seconds)."""
    sent: dict[str, list[str]] = {}
    for event_id, at, path in outcome["published"]:
        sent.setdefault(event_id, []).append(f"{path} {at:.0f} s")

    def alert(event_id: str) -> str:
        return f"`{event_id}` ({', '.join(sent.get(event_id, ['not published']))})"

    sns, lines = delivered.sns, []
    if sns.doubled:
        firsts = [
            "; ".join(alert(i) for i in dict.fromkeys(ids)) for ids in list(sns.doubled.values())[:shown]
        ]
        lines.append(f"- Doubled alerts ({len(sns.doubled)}), the first: " + " | ".join(firsts) + ".")
    if sns.recoveries:
        firsts = [alert(i) for i in sns.recoveries[:shown]]
        lines.append(f"- False recoveries ({len(sns.recoveries)}), the first: " + "; ".join(firsts) + ".")
    if sns.missing:
        firsts = [f"{m.plan} {m.key} {m.level}% ({m.period})" for m in sns.missing[:shown]]
        lines.append(f"- Missing ({len(sns.missing)}), the first: " + "; ".join(firsts) + ".")
    events = delivered.events
    if events is not None and (events.doubled or events.recoveries or events.missing):
        lines.append(
            f"- Events: {len(events.doubled)} doubled, {len(events.recoveries)} recoveries, "
            f"{len(events.missing)} missing"
            + (
                f" (the first double: {', '.join(f'`{i}`' for i in next(iter(events.doubled.values())))})"
                if events.doubled
                else ""
            )
            + "."
        )
    return lines


def stats_growing(outcome: dict[str, Any]) -> int:
    return int(outcome.get("growing_keys", 0))


def _ops(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda item: -item[1]))


def alert_resources(*, events: bool) -> dict[str, str]:
    """The alert state table, the topic and an SQS inbox subscribed to it, in moto, and with ``events``
    a bus whose rule sends the monitor's events to a queue, as a user's rule would: the monitor's
    settings, and the queues (``queue_url``, ``events_queue_url``)."""
    import boto3  # noqa: PLC0415

    from quota_monitor import EVENT_SOURCE  # noqa: PLC0415

    dynamodb, sns, sqs = boto3.client("dynamodb"), boto3.client("sns"), boto3.client("sqs")
    dynamodb.create_table(
        TableName="quota-alert-state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def queue(name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    topic = sns.create_topic(Name="quota-alerts")["TopicArn"]
    inbox, arn = queue("quota-alerts-inbox")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    resources = {"ALERT_TOPIC_ARN": topic, "ALERT_TABLE_NAME": "quota-alert-state", "queue_url": inbox}
    if events:
        bus = boto3.client("events")
        bus.create_event_bus(Name=EVENT_BUS)
        url, arn = queue(f"{EVENT_BUS}-events")
        rule = f"{EVENT_BUS}-to-queue"
        bus.put_rule(Name=rule, EventBusName=EVENT_BUS, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
        bus.put_targets(Rule=rule, EventBusName=EVENT_BUS, Targets=[{"Id": "queue", "Arn": arn}])
        resources |= {"EVENT_BUS_NAME": EVENT_BUS, "events_queue_url": url}
    return resources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=__doc__)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--no-events", action="store_true", help="no EventBridge bus (SNS only)")
    parser.add_argument("--json", type=Path, help="also write the raw outcome to this file")

    args = parser.parse_args(argv)
    if args.serve:
        return serve()
    env = child_env({})
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
        os.environ.pop(name, None)
    os.environ.update(env)
    with start_moto(env) as moto:
        os.environ["AWS_ENDPOINT_URL"] = moto.ready["url"]
        resources = alert_resources(events=not args.no_events)
        queues: dict[str, Any] = {
            name: resources.pop(name) for name in ("queue_url", "events_queue_url") if name in resources
        }
        os.environ.update(resources)
        with HostProcess("bench.freshness", "--serve", env=env) as host:
            ready = host.ready
            os.environ["AWS_ENDPOINT_URL_API_GATEWAY"] = ready["apigateway"]
            outcome = measure(host, {**ready, **queues}, SimClock(float(ready["real0"])))
            outcome["growing_keys"] = ready["growing_keys"]
            if args.json is not None:
                args.json.write_text(json.dumps(outcome), encoding="utf-8")
    text, ok = report(outcome, float(ready["seconds_to_seed"]))
    print(text)
    if not args.no_docs:
        write_section(START, END, text, heading="Freshness: the fast path")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
