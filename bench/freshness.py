"""``python -m bench.freshness`` (part of ``make bench``): how soon a crossing is alerted, with the fast path.

Issue 20's and 24's targets, at 10,000 keys in 300 plans, the account's bucket at 10 calls a second
(burst 40) and another caller taking 5 a second of it all along: a crossing of a key on the full scan's
watch list reaches SNS within 2 minutes (worst of at least 50); the monitor's API Gateway calls, both
paths together, at most 300 in any 60 seconds, and no 429 for it nor for the other caller; every
crossing alerted exactly once, counted from what was delivered per key, level and period
(:mod:`bench.delivered`): no double (whatever the id, an episode ``:1`` included), no "recovered"
message (usage only grows here), none missing; with full scans every 5 minutes and fast runs every
minute, several starting at the same instant, and a fast run and a full scan each delivered twice.

moto runs in a process of its own (:func:`bench.host.serve_moto`, its transactions made to cost what
DynamoDB's do); a host process (:func:`serve`) seeds the account (:func:`seed`) and runs the sandbox on
a clock :data:`SCALE` times real time, writing down when each growing key crossed each level, in which
period; the bucket times every call of the monitor. The driver (:func:`measure`) runs the monitor's own
steps on that clock (:func:`schedule`), each run in a thread of its own as two Lambda functions would,
times each SNS publish and, at the end, counts what reached the topic's SQS inbox and the bus's queue
(unless ``--no-events``). The threads share one interpreter and CPU time counts :data:`SCALE` times in
simulated seconds: the latencies err long.
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
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.seed import seed_key_usage
from apigw_sandbox.server import AccountThrottle, SandboxServer
from bench.delivered import AlertId, Slot, Tally, id_of_event, ids_in_message, tally
from bench.host import HostProcess, child_env, reply, serve_lines, start_moto, unknown, write_section
from quota_monitor import (
    EVENT_SOURCE,
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

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

START, END = "<!-- bench:freshness:start -->", "<!-- bench:freshness:end -->"
REGION, TABLE = "us-east-1", "quota-alert-state"
TARGET = Target("123456789012", REGION, home=True)
SCALE = 4.0  #: simulated seconds a real second
#: A Monday, early: the busy keys' daily quotas are a quarter through their day.
SIM_START = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
SIM_SECONDS = 32 * 60
#: The full scan's interval (issue 24: its shortest useful one at 10,000 keys) and the fast path's.
FULL_EVERY, FAST_EVERY = 5 * 60, 60
#: Crossings timed: after the first full scan has written a watch list, and early enough that the run
#: after them is done before the end. Every crossing up to its end is missing when no alert was delivered.
WINDOW = (120.0, SIM_SECONDS - 180.0)
#: When a path runs twice at once (a delivery repeated), beside the other path's run of that instant.
FAST_TWICE_AT, FULL_TWICE_AT = 600, 900
EVENT_BUS = "quota-events"  #: the monitor's ``EVENT_BUS_NAME``, unless ``--no-events``
LEVELS = (80, 90, 100)
BUSY_PLANS, GROWING_PER_BUSY_PLAN, STOPPED_PER_BUSY_PLAN = 60, 5, 2
#: Keys of busy plans quiet at 45% until their client starts a batch job (one every 150 simulated
#: seconds from second 200) that would use 60% of the day's quota in 10 minutes: not on the watch list
#: when they cross, so the next full scan alerts them (docs/alerts.md).
SURGES = 6
KEYS, PLANS, BIG_PLANS, BIG_PLAN_KEYS = 10_000, 300, 2, 1_234
DAY_LIMIT, MONTH_LIMIT = 100_000, 1_000_000
BACKGROUND_RPS, ACCOUNT_RPS, ACCOUNT_BURST = 5.0, 10.0, 40
LATENCY = (0.05, 0.15)
GROWTH_TICK = 1.0  #: simulated seconds between two rounds of the growing keys' requests
PROGRESS = "path at seconds apiCalls plansRead keysRead candidates alertsSent scanErrors"  #: a run's line
MAX_LATENCY_SECONDS, MIN_CROSSINGS, MAX_CALLS_A_MINUTE = 120.0, 50, 300  #: the targets


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
    """A key whose requests keep coming, ``rate`` a simulated second from second ``start``."""

    plan_id: str
    key_id: str
    limit: int
    rate: float
    consumed: int
    applied: int = 0
    crossed: set[int] = field(default_factory=set)
    start: float = 0.0  #: 0 for a key busy all along; a surge's first second
    period: str = "DAY"  #: its plan's quota period


def seed(account: Any, rng: random.Random) -> list[Grower]:
    """The account: busy plans with growing, stopped, surging and quiet keys, the two big plans with a
    growing key each, the quiet plans with a monthly quota; returns the growing keys."""
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

    def grow(plan_id: str, utilization: float, per_second: float, start: float = 0.0) -> None:
        key_id = key(plan_id, utilization)
        used = DAY_LIMIT - account.daily_usage(plan_id, key_id, account.today(), account.today())[0][1]
        crossed = {level for level in LEVELS if used * 100 >= level * DAY_LIMIT}
        growers.append(Grower(plan_id, key_id, DAY_LIMIT, per_second, used, crossed=crossed, start=start))

    for n in range(BUSY_PLANS):
        plan_id = account.create_usage_plan(
            f"busy-{n:02d}", limit=DAY_LIMIT, period="DAY", plan_id=f"b{n:05d}"
        )
        for _ in range(GROWING_PER_BUSY_PLAN):
            utilization = round(rng.uniform(70.0, 99.0), 1)
            pace = utilization / 100 * DAY_LIMIT / since_midnight  # its day so far
            grow(plan_id, utilization, pace * rng.uniform(0.9, 1.3))
        for _ in range(STOPPED_PER_BUSY_PLAN):
            key(plan_id, round(rng.uniform(80.0, 99.0), 1))
        if n < SURGES:
            grow(plan_id, 45.0, 0.6 * DAY_LIMIT / 600, start=200.0 + 150.0 * n)
        for _ in range(20 - (1 if n < SURGES else 0)):
            key(plan_id, round(rng.uniform(1.0, 50.0), 1))
    for n in range(BIG_PLANS):
        plan_id = account.create_usage_plan(f"big-{n}", limit=DAY_LIMIT, period="DAY", plan_id=f"g{n:05d}")
        for _ in range(BIG_PLAN_KEYS - 1):
            key(plan_id, round(rng.uniform(1.0, 50.0), 1))
        grow(plan_id, 78.0, 78.0 / 100 * DAY_LIMIT / since_midnight * 1.2)
    per_plan = quiet_keys // quiet_plans
    for n in range(quiet_plans - BIG_PLANS):
        name, plan = f"quiet-{n:03d}", f"q{n:05d}"
        plan_id = account.create_usage_plan(name, limit=MONTH_LIMIT, period="MONTH", plan_id=plan)
        extra = 1 if n < quiet_keys - per_plan * (quiet_plans - BIG_PLANS) else 0
        for _ in range(per_plan + extra):
            key(plan_id, round(rng.uniform(1.0, 60.0), 1))
    return growers


class RecordingThrottle(AccountThrottle):
    """The account's bucket on simulated time, timing every call of the monitor, and taking the other
    caller's tokens from the same bucket."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__(ACCOUNT_RPS, ACCOUNT_BURST, clock=clock.epoch)
        self.clock, self.lock, self.calls = clock, threading.Lock(), list[float]()
        self.counts = dict.fromkeys(("refused", "background", "background_refused", "background_late"), 0)

    def admit(self) -> None:
        at = self.clock.elapsed()
        try:
            super().admit()
        except Exception:
            with self.lock:
                self.counts["refused"] += 1
            raise
        with self.lock:
            self.calls.append(at)

    def other_caller(self, stop: threading.Event) -> None:
        """5 calls a second of somebody else's, evenly, until ``stop``. A call this process was too busy
        to make on time (more than a second late) is counted as late and dropped, as a paced client
        would, not made in a burst after."""
        due = self.clock.elapsed()
        while not stop.is_set():
            due += 1.0 / BACKGROUND_RPS
            self.clock.sleep_until(due)
            if self.clock.elapsed() - due > 1.0:
                self.counts["background_late"] += 1
                continue
            try:
                super().admit()
            except Exception:  # noqa: BLE001 - the sandbox's Throttled
                self.counts["background_refused"] += 1
            self.counts["background"] += 1


def serve() -> int:
    """Seed, start the clock, serve API Gateway, print the URL and the clock's start, then answer
    ``stats`` and ``quit`` lines on stdin (:mod:`bench.host`'s protocol)."""
    sys.setswitchinterval(0.001)
    seeded_at = time.monotonic()
    account = SandboxAccount(clock=lambda: SIM_START, seed=1)  # the seed is written at the start instant
    growers = seed(account, random.Random(20))  # noqa: S311 - a repeatable account, not a secret
    seconds_to_seed = time.monotonic() - seeded_at
    clock = SimClock(time.time())
    account.set_clock(clock.now)  # then the account's clock runs with the simulation
    throttle = RecordingThrottle(clock)
    sandbox = SandboxServer(account, throttle=throttle, latency=(LATENCY[0] / SCALE, LATENCY[1] / SCALE))
    sandbox.start()
    crossings: list[dict[str, Any]] = []
    stop = threading.Event()

    def serve_growth() -> None:
        while not stop.is_set():
            elapsed = clock.elapsed()
            for g in growers:
                due = int(g.rate * max(0.0, elapsed - g.start)) - g.applied
                if due <= 0:
                    continue
                g.applied += due
                g.consumed += account.record_usage(g.plan_id, g.key_id, due)
                for level in LEVELS:
                    if level not in g.crossed and g.consumed * 100 >= level * g.limit:
                        g.crossed.add(level)
                        period = account.period_start(g.period, account.today()).isoformat()
                        crossed = {"plan": g.plan_id, "key": g.key_id, "level": level, "at": elapsed}
                        crossings.append(crossed | {"period": period})
            clock.sleep(GROWTH_TICK)

    for target in (serve_growth, lambda: throttle.other_caller(stop)):
        threading.Thread(target=target, daemon=True).start()
    ready = {"ready": True, "real0": clock.real0, "apigateway": sandbox.url, "growing_keys": len(growers)}
    reply(ready | {"seconds_to_seed": seconds_to_seed})

    def answer(command: dict[str, Any]) -> dict[str, Any]:
        if command.get("op") != "stats":
            return unknown(command)
        with throttle.lock:
            return {"calls": list(throttle.calls), **throttle.counts, "crossings": list(crossings)}

    try:
        serve_lines(answer)
    finally:
        stop.set()
        sandbox.stop()
    return 0


# -- the driver -----------------------------------------------------------------------------------
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
    starts = {"full": (range(0, seconds, full_every), full_twice_at)}
    starts["fast"] = (range(fast_every, seconds, fast_every), fast_twice_at)
    runs = [
        (at, path) for path, (ats, twice) in starts.items() for at in ats for _ in range(1 + (at == twice))
    ]
    return sorted(runs, key=lambda run: run[0])


def _clients(settings: Settings, counts: dict[str, int]) -> tuple[AlertClients, TargetAccess, Any]:
    """A path's clients, as its Lambda function makes them; its DynamoDB requests counted by operation."""

    def count(model: Any, **_: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    dynamodb = client("dynamodb")
    dynamodb.meta.events.register("before-call.*.*", count)
    events = client("events") if settings.alerts is not None and settings.alerts.event_bus else None
    clients = AlertClients(sns=client("sns"), dynamodb=dynamodb, region=REGION, events=events)
    workers = settings.scan.max_workers
    access = TargetAccess(
        TARGET, base=boto3.Session(), make=lambda s, r: target_clients(s, r, max_workers=workers)
    )
    return clients, access, cloudwatch_client()


def _play(clock: SimClock, run: Callable[[str], None]) -> list[str]:
    """Each run of :func:`schedule` in a thread of its own at its simulated second (those of one second
    started together, as two Lambda functions would); the errors the runs raised."""
    threads, errors = [], []

    def guarded(path: str) -> None:
        try:
            run(path)
        except Exception as error:  # noqa: BLE001 - reported, and fails the benchmark
            traceback.print_exc()
            errors.append(f"{path}_run: {type(error).__name__}: {error}")

    for at, path in schedule():
        clock.sleep_until(at)
        threads.append(threading.Thread(target=guarded, args=(path,)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    return errors


def measure(host: HostProcess, ready: dict[str, Any], clock: SimClock) -> dict[str, Any]:
    """Play :func:`schedule` against the host (``ready``: its URLs and the inboxes' queues); the outcome."""
    os.environ.update(
        {"FAST_SCHEDULE_MINUTES": str(FAST_EVERY // 60), "SCHEDULE_MINUTES": str(FULL_EVERY // 60)}
    )
    settings = Settings.from_env(dict(os.environ))
    assert settings.alerts is not None
    table = settings.alerts.table_name
    clocks = Clocks(monotonic=clock.monotonic, sleep=clock.sleep, wall=clock.epoch)
    rate, lock = BudgetRate.within(settings.scan.max_rps, settings.scan.burst), threading.Lock()
    published: list[tuple[str, float, str]] = []  # (alert id, simulated second its publish returned, path)
    lists: list[tuple[float, set[tuple[str, str]]]] = []  # (simulated second written, its (plan, key)s)
    runs: list[dict[str, Any]] = []
    requests: dict[str, dict[str, int]] = {"full": {}, "fast": {}}
    made = {path: _clients(settings, requests[path]) for path in ("full", "fast")}

    def run(path: str) -> None:
        started, (clients, access, cloudwatch) = clock.elapsed(), made[path]
        store = WatchStore(clients.dynamodb, table)

        def heard(message: Any) -> None:
            at = clock.elapsed()
            with lock:
                published.extend((note.event_id, at, path) for note in message.notes)

        shared: dict[str, Any] = {
            "alert_clients": clients,
            "on_alert": heard,
            "health_cloudwatch": lambda: cloudwatch,
            "budget": lambda t: SharedBudget(clients.dynamodb, table, t, rate=rate, clock=clock.epoch),
        }
        if path == "full":  # the stack's timeout: calls stop 60 s before it, alerts 20 s before it
            invocation = Invocation.lasting(timedelta(seconds=300), clocks=clocks)
            summary = run_targets(settings, [access], invocation, watch=store, **shared).summary()
            (stored,) = store.get([TARGET], now=clock.now())
            watch = stored.watch
            keys = {(plan.id, key.id) for plan in watch.plans for key in plan.keys} if watch else set()
            with lock:
                lists.append((clock.elapsed(), keys))
        else:  # the fast function's timeout at a 1-minute interval: 55 s, calls stop at 33 s, alerts at 48 s
            invocation = Invocation.lasting(timedelta(seconds=55), clocks=clocks)
            states = AlertStateStore(clients.dynamodb, table)
            summary = run_fast(settings, [access], invocation, store=store, states=states, **shared).summary()
        entry = {"path": path, "at": started, "seconds": clock.elapsed() - started, **summary}
        with lock:
            runs.append(entry)
        _progress(entry)

    errors = _play(clock, run)
    # One fast run alone: its CPU (what a 128 MB function's share of a vCPU must cover).
    before = resource.getrusage(resource.RUSAGE_SELF)
    run("fast")
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    sqs, queue = client("sqs"), ready.get("events_queue_url")
    delivered = _drain(sqs, ready["queue_url"], ids_in_message)
    events = _drain(sqs, queue, lambda body: [id_of_event(body)]) if queue else None
    return {
        "stats": host.ask(op="stats"),
        "published": published,
        "lists": [(at, sorted(keys)) for at, keys in lists],
        "runs": runs[:-1],
        "delivered": delivered,
        "events": events,
        "requests": requests,
        "alone": {"cpu_seconds": cpu, **runs[-1]},
        "errors": errors,
    }


def _drain(sqs: Any, queue_url: str, ids: Callable[[str], list[str]]) -> dict[str, int]:
    """How many times each alert id (``ids`` reads a message's body) reached an SQS queue, emptied."""
    delivered: Counter[str] = Counter()
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            delivered.update(ids(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return dict(delivered)


def _progress(run: dict[str, Any]) -> None:
    """One line on stderr a run, for whoever watches the benchmark."""
    names = PROGRESS.split()
    words = [f"{n}={run[n]:.0f}" if isinstance(run[n], float) else f"{n}={run[n]}" for n in names if n in run]
    sys.stderr.write(" ".join(words) + (" leaseHeld" if run.get("leaseHeld") else "") + "\n")


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
    return max(WINDOW[0], min((at for at, _ in outcome["lists"]), default=WINDOW[0])), WINDOW[1]


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
        at, pair, level = float(crossing["at"]), (crossing["plan"], crossing["key"]), int(crossing["level"])
        if start <= at <= end:
            in_force = [keys for written, keys in lists if written <= at]
            sent = min(
                ((t, path) for n, t, path in by_key.get(pair, []) if n >= level and t >= at), default=None
            )
            on_list = bool(in_force) and pair in in_force[-1]
            latency, path = (None, None) if sent is None else (sent[0] - at, sent[1])
            found.append(Crossing(*pair, level, at, on_list, latency, path))
    return found


def calls_a_minute(calls: list[float]) -> tuple[int, int, float]:
    """(most calls in a calendar minute, most in any 60 seconds, the average a second over the run)."""
    calls = sorted(calls)
    sliding, start = 0, 0
    for end, at in enumerate(calls):
        while at - calls[start] >= 60.0:
            start += 1
        sliding = max(sliding, end - start + 1)
    span = (calls[-1] - calls[0]) if len(calls) > 1 else 1.0
    return max(Counter(int(at // 60) for at in calls).values(), default=0), sliding, len(calls) / span


def _figures(values: Sequence[float], *picks: Callable[[Sequence[float]], float]) -> str:
    return " / ".join(f"{pick(values):.0f}" if values else "-" for pick in picks)


def _p95(values: Sequence[float]) -> float:
    return values[min(len(values) - 1, int(0.95 * len(values)))]


def report(outcome: dict[str, Any], seconds_to_seed: float) -> tuple[str, bool]:
    """The section for docs/benchmarks.md, and whether every target was met: no error, and every row
    judged ✅ (what each reader got is counted against every crossing up to the end of the window)."""
    found, (since, end), stats, runs = crossings(outcome), window(outcome), outcome["stats"], outcome["runs"]
    crossed = [c for c in stats["crossings"] if float(c["at"]) <= end]
    slots = [Slot(c["plan"], c["key"], int(c["level"]), c["period"]) for c in crossed]
    sns = tally(Counter(outcome["delivered"]).elements(), slots)
    events = None if outcome.get("events") is None else tally(Counter(outcome["events"]).elements(), slots)
    tallies, channels = ([sns], "SNS inbox") if events is None else ([sns, events], "SNS inbox / events")
    latencies = sorted(c.latency for c in found if c.on_list and c.latency is not None)
    surged = [c for c in found if not c.on_list]
    off = sorted(c.latency for c in surged if c.latency is not None)
    unpublished = [c for c in found if c.latency is None]
    doubled = [n for n in outcome["delivered"].values() if n > 1]
    undelivered = {event_id for event_id, _, _ in outcome["published"]} - set(outcome["delivered"])
    minute, sliding, average = calls_a_minute(stats["calls"])
    fast = [run for run in runs if run.get("path") == "fast" and not run.get("leaseHeld")]
    held = [run for run in runs if run.get("path") == "fast" and run.get("leaseHeld")]
    full = [run for run in runs if run.get("path") == "full"]
    requests, alone, last = outcome["requests"]["fast"], outcome["alone"], full[-1] if full else {}
    share, checks = 128 / 1769, [not outcome["errors"], all(n == 1 for n in outcome["delivered"].values())]
    worst, refused, other = max(latencies, default=math.inf), stats["refused"], stats["background_refused"]

    def judged(value: object, good: bool) -> str:
        checks.append(good)
        return f"{value} {'✅' if good else '❌'}"

    def both(of: Callable[[Tally], Sequence[object]]) -> str:
        return judged(" / ".join(f"{len(of(t)):,}" for t in tallies), not any(of(t) for t in tallies))

    def spread(name: str) -> str:
        return _figures([float(run[name]) for run in fast], statistics.median, max)

    ops = ", ".join(f"{name} {n}" for name, n in sorted(requests.items(), key=lambda item: -item[1]))
    cpu = alone["cpu_seconds"]
    rows = [
        f"| crossings of keys on the watch list (simulated seconds {since:.0f} to {end:.0f}) | "
        f"{judged(len(latencies), len(latencies) >= MIN_CROSSINGS)} | ≥ {MIN_CROSSINGS} |",
        "| crossing to SNS publish, median / 95th percentile / worst, s | "
        f"{judged(_figures(latencies, statistics.median, _p95, max), worst <= MAX_LATENCY_SECONDS)} | "
        f"worst ≤ {MAX_LATENCY_SECONDS:.0f} |",
        "| alerted by the fast path / by the full scan | "
        + " / ".join(str(sum(c.path == path for c in found)) for path in ("fast", "full"))
        + " |  |",
        f"| crossings timed and not published | {judged(len(unpublished), not unpublished)} | 0 |",
        f"| alerts delivered, {channels} (key, level and period alerted) | "
        + " / ".join(f"{t.deliveries:,} ({len(t.alerts):,})" for t in tallies)
        + " |  |",
        f"| missing: crossings never alerted, of {sns.crossings} up to second {end:.0f}, {channels} | "
        f"{both(lambda t: t.missing)} | 0 |",
        "| doubled alerts: a key, level and period alerted more than once (any id, :1 too) | "
        f"{judged(len(sns.doubled), not sns.doubled)} | 0 |",
        "| doubled events: the same, on the bus | "
        f"{'- (no bus)' if events is None else judged(len(events.doubled), not events.doubled)} | 0 |",
        f"| false recoveries: recovered messages while usage only grew, {channels} | "
        f"{both(lambda t: t.recoveries)} | 0 |",
        "| keys forecast more than once in a period, any id (shown, not judged) | "
        f"{len(sns.repeated_forecasts)} |  |",
        f"| alerts delivered twice (SQS inbox, by alert id) | {judged(len(doubled), not doubled)} | 0 |",
        f"| alerts published and not delivered | {judged(len(undelivered), not undelivered)} | 0 |",
        "| monitor's API calls, most in any 60 s / in a calendar minute | "
        f"{judged(f'{sliding} / {minute}', sliding <= MAX_CALLS_A_MINUTE)} | "
        f"≤ {MAX_CALLS_A_MINUTE} (5 a second) |",
        f"| monitor's API calls a second on average over the run | {average:.2f} |  |",
        f"| 429s: the monitor / the other caller ({stats['background']:,} calls) | "
        f"{judged(f'{refused} / {other}', refused == other == 0)} | 0 / 0 |",
        f"| fast runs / that found the lease held | {judged(f'{len(fast)} / {len(held)}', len(held) >= 1)} "
        "| the repeated one |",
        f"| fast run, median / longest, s | {spread('seconds')} | < 55 (its timeout) |",
        f"| fast run: plans read, median / most | {spread('plansRead')} |  |",
        f"| fast run: API calls, median / most | {spread('apiCalls')} |  |",
        "| fast run: DynamoDB requests a run (all operations) | "
        f"{sum(requests.values()) / max(1, len(fast) + len(held)):.1f} ({ops}) |  |",
        f"| full runs: seconds each | {', '.join(format(r['seconds'], '.0f') for r in full)} |  |",
        f"| full run: watched plans / keys (last), bytes | {last.get('watchedPlans', 0)} / "
        f"{last.get('watchedKeys', 0)}, {last.get('watchListBytes', 0):,} |  |",
        f"| one fast run alone: CPU s (at 128 MB, {share:.3f} of a vCPU) | {cpu:.2f} "
        f"(≈ {cpu / share:.1f} s) |  |",
    ]
    # The first doubles, recoveries and missing crossings, each alert with the path that sent it and when.
    sent: dict[str, list[str]] = {}
    for event_id, at, path in outcome["published"]:
        sent.setdefault(event_id, []).append(f"{path} {at:.0f} s")

    def alert(event_id: str) -> str:
        return f"`{event_id}` ({', '.join(sent.get(event_id, ['not published']))})"

    firsts: list[str] = []
    if sns.doubled:
        first = ["; ".join(alert(i) for i in dict.fromkeys(ids)) for ids in list(sns.doubled.values())[:3]]
        firsts.append(f"- Doubled alerts ({len(sns.doubled)}), the first: " + " | ".join(first) + ".")
    if sns.recoveries:
        first = [alert(i) for i in sns.recoveries[:3]]
        firsts.append(f"- False recoveries ({len(sns.recoveries)}), the first: " + "; ".join(first) + ".")
    if sns.missing:
        first = [f"{m.plan} {m.key} {m.level}% ({m.period})" for m in sns.missing[:3]]
        firsts.append(f"- Missing ({len(sns.missing)}), the first: " + "; ".join(first) + ".")
    if events is not None and (events.doubled or events.recoveries or events.missing):
        double = next(iter(events.doubled.values()), None)
        firsts.append(
            f"- Events: {len(events.doubled)} doubled, {len(events.recoveries)} recoveries, "
            f"{len(events.missing)} missing"
            + (f" (the first double: {', '.join(f'`{i}`' for i in double)})" if double else "")
            + "."
        )
    starts = [{at for at, run in schedule() if run == path} for path in ("full", "fast")]
    together = len(starts[0] & starts[1])
    lines = [
        "Generated by `make bench` (`python -m bench.freshness`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f} at the end. Simulated time, {SCALE:g} times real time; seeding took "
        f"{seconds_to_seed:.0f} s.",
        "",
        f"{PLANS} usage plans, {KEYS:,} API keys; {BUSY_PLANS} busy plans with a daily quota, "
        f"{int(outcome.get('growing_keys', 0))} keys growing steadily; the account's bucket at "
        f"{ACCOUNT_RPS:g}/s, burst {ACCOUNT_BURST}, with another caller spending {BACKGROUND_RPS:g} a "
        f"second all along; {SIM_SECONDS // 60} simulated minutes: a full run every {FULL_EVERY // 60} "
        f"minutes and a fast run every minute, {({1: 'once', 2: 'twice'}).get(together, f'{together} times')}"
        " a full run and a fast run starting at the same instant; the fast path twice at minute "
        f"{FAST_TWICE_AT // 60} and the full scan twice at minute {FULL_TWICE_AT // 60} (with that minute's "
        "run of the other path beside them); "
        + (
            "no EventBridge bus (--no-events)."
            if events is None
            else "every alert also on an EventBridge bus whose rule sends it to a queue."
        ),
        "",
        "| | measured | target |",
        "|---|---:|---|",
        *rows,
        "",
        f"- Crossings of keys that were not on the watch list when they crossed: {len(surged)}"
        + (
            f", alerted {_figures(off, statistics.median)} s (median) and {_figures(off, max)} s (worst) "
            "later, by the next run that had them: a key whose pace outran what its day so far showed."
            if surged
            else "."
        ),
        *firsts,
        *([f"- Errors: {'; '.join(outcome['errors'][:5])}"] if outcome["errors"] else []),
    ]
    return "\n".join(lines), all(checks)


def alert_resources(*, events: bool) -> tuple[dict[str, str], dict[str, str]]:
    """The alert state table, the topic and an SQS inbox subscribed to it, in moto, and with ``events``
    a bus whose rule sends the monitor's events to a queue, as a user's rule would: the monitor's
    settings, and the queues (``queue_url``, ``events_queue_url``)."""
    dynamodb, sns, sqs = boto3.client("dynamodb"), boto3.client("sns"), boto3.client("sqs")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def queue(name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return url, attributes["QueueArn"]

    topic = sns.create_topic(Name="quota-alerts")["TopicArn"]
    inbox, arn = queue("quota-alerts-inbox")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    settings, queues = {"ALERT_TOPIC_ARN": topic, "ALERT_TABLE_NAME": TABLE}, {"queue_url": inbox}
    if events:
        bus, rule = boto3.client("events"), f"{EVENT_BUS}-to-queue"
        bus.create_event_bus(Name=EVENT_BUS)
        queues["events_queue_url"], arn = queue(f"{EVENT_BUS}-events")
        bus.put_rule(Name=rule, EventBusName=EVENT_BUS, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
        bus.put_targets(Rule=rule, EventBusName=EVENT_BUS, Targets=[{"Id": "queue", "Arn": arn}])
        settings["EVENT_BUS_NAME"] = EVENT_BUS
    return settings, queues


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
        settings, queues = alert_resources(events=not args.no_events)
        os.environ.update(settings)
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
