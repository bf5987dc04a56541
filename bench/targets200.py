"""``python -m bench.targets200``: 200 targets (50 accounts x 4 regions) in one run, and where one
function stops being enough (issue 26).

A host process (:func:`serve`) seeds every target as a sandbox account of its own (2 to 10 usage
plans, 20 to 200 API keys drawn log-uniformly), each behind its own account-wide token bucket (10 a
second, burst 40) and 50 to 150 ms of latency, and serves moto for STS and CloudWatch, counting each
AssumeRole and PutMetricData. A runner process (:func:`run_monitor`), importing only what the Lambda
function imports, takes its targets as the handler does (``quota_monitor.handler.target_accesses``:
``REGIONS`` and ``SPOKE_ROLE_ARNS``, one AssumeRole a spoke account) and runs the handler's steps in
real time at the default settings: every target scanned at once (``scan_targets``), each target's
metrics published to its own account and region (``publish_targets``, timed apart: moto is not
CloudWatch), the records written; it samples its threads and open file descriptors, its peak RSS and
its CPU time (user and system). From those numbers :func:`limits` extrapolates, resource by resource,
to the largest fleet of the same mix one function reads: at 256 MB (the stack's default) and 1,769 MB
(one vCPU), with the default 300 s timeout and with Lambda's 900 s maximum.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.host import ROOT, HostProcess, child_env, reply, serve_lines, unknown, write_section
from bench.scenario import AccountShape, Scenario, floor_seconds, minimum_calls
from quota_monitor import MAX_TARGETS_AT_ONCE, PUBLISH_AT_ONCE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from quota_monitor import TargetAccess, TargetClients

START, END = "<!-- bench:targets200:start -->", "<!-- bench:targets200:end -->"
#: The monitor's own account and region (the sandbox's and moto's defaults); spokes from SPOKE_BASE.
HOME, HOME_REGION, SPOKE_BASE = "123456789012", "us-east-1", 200_000_000_000
ROLE_NAME: Final = "ApiGatewayQuotaMonitorSpoke"
REGIONS: Final = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2")
#: Lambda: CPU in proportion to memory (1,769 MB is one vCPU; one Python process uses one, whatever
#: more Lambda gives), the stack's memory and timeout, Lambda's largest memory and longest timeout, and
#: its hard limits on threads and on file descriptors (1,024 each, per execution environment).
LAMBDA_MB, LAMBDA_MB_PER_VCPU, MAX_LAMBDA_MB = 256, 1769, 10_240
TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS = 300.0, 900.0
MAX_THREADS = MAX_FILE_DESCRIPTORS = 1024
#: ``quota_monitor.invocation.reserve_for``: no API Gateway call starts in the last 60 s (40% at most).
RESERVE_SECONDS, RESERVE_SHARE = 60.0, 0.4
#: What the loopback cannot show, assumed: one AssumeRole (STS answers in tens of milliseconds; the
#: monitor's ``AssumedRoles`` makes them one at a time), and one target's PutMetricData from the home
#: region (``publish_targets`` publishes target after target; each target's first request opens a
#: TLS connection to that region's endpoint: tens of ms in-region, 200 ms and more to the far side).
ASSUMED_ASSUME_ROLE_SECONDS, ASSUMED_PUBLISH_SECONDS = 0.1, 0.25
SAMPLE_SECONDS: Final = 0.02  #: how often the runner samples its threads and open file descriptors
#: (memory, timeout) of the functions compared: the stack's, one vCPU, the longest timeout, and the
#: largest function Lambda runs.
CASES: Final = (
    (LAMBDA_MB, TIMEOUT_SECONDS),
    (LAMBDA_MB_PER_VCPU, TIMEOUT_SECONDS),
    (LAMBDA_MB, MAX_TIMEOUT_SECONDS),
    (LAMBDA_MB_PER_VCPU, MAX_TIMEOUT_SECONDS),
    (MAX_LAMBDA_MB, MAX_TIMEOUT_SECONDS),
)


@dataclass(frozen=True)
class FleetShape:
    """The fleet: ``accounts`` accounts (the monitor's own first) in every one of ``regions``; each
    target's usage plans and API keys drawn from ``plans`` and ``keys`` (keys log-uniformly)."""

    accounts: int = 50
    regions: tuple[str, ...] = REGIONS
    plans: tuple[int, int] = (2, 10)
    keys: tuple[int, int] = (20, 200)
    seed: int = 26
    latency: tuple[float, float] = Scenario.latency
    account_rps: float = Scenario.account_rps
    account_burst: int = Scenario.account_burst
    scan_date: date = Scenario.scan_date

    def account_ids(self) -> list[str]:
        return [HOME, *(f"{SPOKE_BASE + n:012d}" for n in range(1, self.accounts))]

    def layout(self) -> list[tuple[str, str, int, int]]:
        """(account, region, usage plans, API keys) of every target, the same for the same shape."""
        rng = random.Random(self.seed)  # noqa: S311 - a benchmark's layout, not a secret
        low, high = math.log(self.keys[0]), math.log(self.keys[1])
        found = []
        for account, region in itertools.product(self.account_ids(), self.regions):
            keys = round(math.exp(rng.uniform(low, high)))
            found.append((account, region, min(keys, rng.randint(*self.plans)), keys))
        return found

    @classmethod
    def from_json(cls, text: str) -> FleetShape:
        fields = json.loads(text)
        pairs = {name: tuple(fields[name]) for name in ("regions", "plans", "keys", "latency")}
        return cls(**{**fields, **pairs, "scan_date": date.fromisoformat(fields["scan_date"])})


def account_lookup(sts_url: str) -> Callable[[str], str]:
    """The account an access key belongs to, as moto's STS knows it (an assumed role's keys are the
    role's account's), asked once a key: what the sandbox asks to serve a spoke its own plans
    (:meth:`apigw_sandbox.local.LocalCloud.account_of`). These lookups are the host's, not the monitor's."""
    import boto3  # noqa: PLC0415

    known: dict[str, str] = {}
    lock = threading.Lock()

    def account_of(access_key_id: str) -> str:
        with lock:
            if access_key_id not in known:
                sts = boto3.client(
                    "sts",
                    endpoint_url=sts_url,
                    region_name=HOME_REGION,
                    aws_access_key_id=access_key_id,
                    aws_secret_access_key="unused",  # noqa: S106 - moto reads the key id only
                )
                known[access_key_id] = str(sts.get_caller_identity()["Account"])
            return known[access_key_id]

    return account_of


def serve(shape: FleetShape) -> int:
    """Seed every target, serve, print the URLs and the targets' shapes, then answer ``stats``,
    ``reset`` and ``quit`` lines on stdin."""
    from urllib.parse import parse_qs  # noqa: PLC0415

    from apigw_sandbox.account import SandboxAccount  # noqa: PLC0415
    from apigw_sandbox.seed import seed_scale_account  # noqa: PLC0415
    from apigw_sandbox.server import AccountThrottle, SandboxServer  # noqa: PLC0415
    from bench.sandbox_host import MotoServer  # noqa: PLC0415

    scan_at, started = Scenario(scan_date=shape.scan_date).scan_at, time.monotonic()
    sandbox, described = SandboxServer(latency=shape.latency), list[dict[str, Any]]()
    for n, (account_id, region, plans, keys) in enumerate(shape.layout()):
        account, days = SandboxAccount(clock=lambda: scan_at, seed=n), shape.scan_date.day - 1
        seed_scale_account(
            account, plans=plans, keys=keys, big_plans=0, big_plan_keys=0, history_days=days, seed=n
        )
        throttle = AccountThrottle(shape.account_rps, shape.account_burst)
        sandbox.add_account(account, region=region, account_id=account_id, throttle=throttle)
        per_plan = [len(plan.key_ids) for plan in account.plans.values()]
        about = {"account": account_id, "region": region, "plans": len(account.plans)}
        described.append(about | {"api_keys": len(account.keys), "keys_per_plan": per_plan})
    moto, sts, lock = MotoServer(), Counter[str](), threading.Lock()
    moto_app = moto.recorder.app

    def count_sts(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """moto, counting STS requests by action (query protocol)."""
        if "/sts/aws4_request" in str(environ.get("HTTP_AUTHORIZATION", "")):
            # The recorder in front of this one has read the body into a BytesIO: read, then rewind.
            body = environ["wsgi.input"].read()
            environ["wsgi.input"].seek(0)
            with lock:
                sts[(parse_qs(body.decode("utf-8", "replace")).get("Action") or ["?"])[0]] += 1
        response: Iterable[bytes] = moto_app(environ, start_response)
        return response

    def answer(command: dict[str, Any]) -> dict[str, Any]:
        if command.get("op") == "reset":
            sandbox.reset_counters()
            moto.reset()
            with lock:
                sts.clear()
            return {"ok": True}
        if command.get("op") != "stats":
            return unknown(command)
        requests = list(moto.recorder.requests)
        found: dict[str, Any] = {"calls": [[*where, n] for where, n in sandbox.calls_by_target.items()]}
        found |= {"throttled": sandbox.throttled, "sts": dict(sts), "put_metric_data": len(requests)}
        return found | {"datapoints": sum(int(request["datapoints"] or 0) for request in requests)}

    moto.recorder.app = count_sts
    sandbox.start()
    moto.start()
    sandbox.account_of = account_lookup(moto.url)
    ready = {"ready": True, "apigateway": sandbox.url, "moto": moto.url}
    reply(ready | {"seconds_to_seed": time.monotonic() - started, "targets": described})
    try:
        serve_lines(answer)
    finally:
        sandbox.stop()
        moto.stop()
    return 0


def _counts() -> tuple[int, int]:
    """The process's threads as the kernel counts them (Lambda's limit counts those; else Python's),
    and its open file descriptors."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            threads = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    except (OSError, StopIteration):
        threads = threading.active_count()
    try:
        return threads, len(os.listdir("/proc/self/fd"))
    except OSError:
        return threads, 0


def _now() -> tuple[float, float, float]:
    """Wall-clock seconds, and the process's CPU seconds (user and system) and peak RSS (MiB)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


@contextlib.contextmanager
def sampled() -> Iterator[dict[str, int]]:
    """The process's threads and open file descriptors (:func:`_counts`) at the start and at most:
    sampled every :data:`SAMPLE_SECONDS` and once more at the end, the sampler's own thread left out."""
    threads, fds = _counts()
    found = {"threads_at_start": threads, "threads_peak": threads, "fds_at_start": fds, "fds_peak": fds}
    stop = threading.Event()

    def sample() -> None:
        threads, fds = _counts()
        found["threads_peak"] = max(found["threads_peak"], threads - 1)
        found["fds_peak"] = max(found["fds_peak"], fds)

    def run() -> None:
        while not stop.wait(SAMPLE_SECONDS):
            sample()

    thread = threading.Thread(target=run, name="sampler", daemon=True)
    thread.start()
    try:
        yield found
        sample()
    finally:
        stop.set()
        thread.join()


def run_monitor(out: Path, scan_at_iso: str) -> int:
    """The handler's steps over ``REGIONS`` and ``SPOKE_ROLE_ARNS`` (the environment's), in real time;
    one JSON object to ``out``."""
    from quota_monitor import (  # noqa: PLC0415
        Clocks,
        Invocation,
        handler,
        publish_targets,
        records,
        scan_targets,
        target_record,
        write_records,
    )

    settings, scan_at, lock = handler.SETTINGS, datetime.fromisoformat(scan_at_iso), threading.Lock()
    connect_cpu: list[float] = []
    connected: list[float] = []

    def timed(access: TargetAccess) -> TargetAccess:
        """The target's connect (AssumeRole for a spoke's first region, a session, the clients), counted:
        the CPU of its thread, and when it ended after the scan began (this instance only)."""
        connect = access.connect

        def timed_connect() -> TargetClients:
            cpu = time.thread_time()
            try:
                return connect()
            finally:
                with lock:
                    connect_cpu.append(time.thread_time() - cpu)
                    connected.append(time.perf_counter() - marks[0][0])

        vars(access)["connect"] = timed_connect
        return access

    rss_imported = _now()[2]
    with sampled() as counts:
        marks = [_now()]  # the start, then the end of the scan, of the publish, of the records
        accesses = [timed(access) for access in handler.target_accesses(HOME)]
        scans = scan_targets(settings, accesses, Invocation.unbounded(clocks=Clocks(wall=scan_at.timestamp)))
        marks.append(_now())
        fleet = publish_targets(settings, scans, now=scan_at, health_cloudwatch=handler.health_cloudwatch)
        marks.append(_now())
        with out.with_suffix(".records").open("w", encoding="utf-8") as sink:
            lines = (line for run in fleet.runs for line in records(run, settings))
            ends = (
                target_record(run.result, metrics_published=run.publish_error is None) for run in fleet.runs
            )
            written = write_records(itertools.chain(lines, ends), sink.write)
        marks.append(_now())
    steps = list(zip(("scan", "publish", "records"), itertools.pairwise(marks), strict=True))
    outcome = {
        "ok": True,
        "targets": [
            {
                "account": run.result.target.account_id if run.result.target else None,
                "region": run.result.target.region if run.result.target else None,
                "plans": len(run.result.plans),
                "plans_scanned": run.result.stats.plans_scanned,
                "keys": len(run.result.keys),
                "scan_seconds": run.result.stats.duration_seconds,
                "published": run.publish_error is None,
                "put_metric_data": run.published.requests if run.published else 0,
            }
            for run in fleet.runs
        ],
        "failures": [failure.describe(with_target=True) for failure in fleet.failures],
        **{f"{step}_seconds": end[0] - start[0] for step, (start, end) in steps},
        **{f"{step}_cpu": end[1] - start[1] for step, (start, end) in steps},
        "connect_cpu": sum(connect_cpu),
        "connected_by_seconds": max(connected, default=0.0),
        "records": written.records,
        "record_bytes": written.bytes,
        "rss_imported_mb": rss_imported,
        "rss_scanned_mb": marks[1][2],
        "rss_peak_mb": _now()[2],
        **counts,
        "max_workers": settings.scan.per_target(len(accesses)).max_workers,
    }
    out.write_text(json.dumps(outcome))
    return 0


@dataclass
class Measured:
    """One run over the whole fleet: the host's targets, the runner's outcome, what the host counted;
    when it ended (UTC), and the machine's load average then. The rest is computed from those."""

    shape: FleetShape
    host: dict[str, Any]
    outcome: dict[str, Any]
    stats: dict[str, Any]
    real_seconds: float
    ended: str = ""
    load: float = 0.0
    targets: int = field(init=False)
    accounts: int = field(init=False)
    keys: int = field(init=False)  #: read
    keys_seeded: int = field(init=False)
    #: Each target's API Gateway calls by operation: made, and the fewest that read it (minimum_calls).
    calls: dict[tuple[str, str], dict[str, int]] = field(init=False)
    minimum: dict[tuple[str, str], dict[str, int]] = field(init=False)
    total_calls: int = field(init=False)
    total_minimum: int = field(init=False)
    targets_at_minimum: int = field(init=False)
    #: Targets whose every plan was read and every attached key reported.
    targets_read: int = field(init=False)
    assume_role_calls: int = field(init=False)

    def __post_init__(self) -> None:
        seeded, read = self.host["targets"], self.outcome["targets"]
        shapes = {
            (t["account"], t["region"]): AccountShape(t["plans"], t["api_keys"], tuple(t["keys_per_plan"]))
            for t in seeded
        }
        self.calls = {}
        for account, region, operation, count in self.stats["calls"]:
            self.calls.setdefault((account, region), {})[operation] = int(count)
        self.minimum = {where: minimum_calls(shape) for where, shape in shapes.items()}
        self.targets, self.accounts = len(seeded), len({target["account"] for target in seeded})
        self.keys = sum(int(target["keys"]) for target in read)
        self.keys_seeded = sum(sum(target["keys_per_plan"]) for target in seeded)
        self.total_calls = sum(sum(ops.values()) for ops in self.calls.values())
        self.total_minimum = sum(sum(ops.values()) for ops in self.minimum.values())
        self.targets_at_minimum = sum(self.calls.get(where) == least for where, least in self.minimum.items())
        expected = {where: shape.attached_keys for where, shape in shapes.items()}
        self.targets_read = sum(
            t["plans_scanned"] == t["plans"] and expected.get((t["account"], t["region"])) == t["keys"]
            for t in read
        )
        self.assume_role_calls = int(self.stats["sts"].get("AssumeRole", 0))

    def to_json(self) -> str:
        saved = {f.name: getattr(self, f.name) for f in fields(self) if f.init} | {
            "shape": asdict(self.shape)
        }
        return json.dumps(saved, indent=1, default=str)  # the shape's date as ISO 8601

    @classmethod
    def from_json(cls, text: str) -> Measured:
        saved = json.loads(text)
        return cls(**{**saved, "shape": FleetShape.from_json(json.dumps(saved["shape"]))})

    @property
    def ok(self) -> bool:
        out = self.outcome
        read = self.targets_read == self.targets == len(out["targets"])
        calls = self.total_calls >= self.total_minimum and self.assume_role_calls == self.accounts - 1
        published = all(target["published"] for target in out["targets"])
        return bool(out["ok"]) and not out["failures"] and read and calls and published


def measure(shape: FleetShape) -> Measured:
    """Seed the fleet in a host, run the monitor over all of it once in a runner, count."""
    began = time.perf_counter()
    spokes = [f"arn:aws:iam::{account}:role/{ROLE_NAME}" for account in shape.account_ids()[1:]]
    passed = {name: os.environ[name] for name in ("APIGATEWAY_MAX_CONCURRENCY",) if name in os.environ}
    fleet = json.dumps(asdict(shape), default=str)  # the date as ISO 8601
    with HostProcess("bench.targets200", "--serve", fleet, env=child_env({})) as host_process:
        host, moto = host_process.ready, str(host_process.ready["moto"])
        host_process.ask(op="reset")
        env = {"AWS_ENDPOINT_URL_API_GATEWAY": str(host["apigateway"]), "REGIONS": ",".join(shape.regions)}
        env |= {"AWS_ENDPOINT_URL_CLOUDWATCH": moto, "AWS_ENDPOINT_URL_STS": moto}
        env |= ({"SPOKE_ROLE_ARNS": ",".join(spokes)} if spokes else {}) | passed
        with tempfile.TemporaryDirectory(prefix="bench-targets-") as folder:
            out, scan_at = Path(folder, "out.json"), Scenario(scan_date=shape.scan_date).scan_at.isoformat()
            runner = [sys.executable, "-m", "bench.targets200", "--run", str(out), scan_at]
            subprocess.run(  # noqa: S603 - our own module, no shell
                runner, cwd=ROOT, env=child_env(env), check=True, timeout=3600
            )
            outcome = json.loads(out.read_text())
        stats = host_process.ask(op="stats")
    ended = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return Measured(shape, host, outcome, stats, time.perf_counter() - began, ended, os.getloadavg()[0])


@dataclass(frozen=True)
class PerTarget:
    """The measured run's costs, as a fixed part and a part per target of the same mix."""

    keys: float  #: API keys a target, on average
    regions: int  #: targets an account (one AssumeRole each account)
    scan_cpu: float  #: CPU seconds a target in the scan (its connect, its calls, its keys)
    connect_cpu: float  #: of which its connect (AssumeRole for a spoke's first region, session, clients)
    after_cpu: float  #: CPU seconds a target in the publish and the records
    rss_base: float  #: MiB before the run (the imports)
    rss: float  #: MiB a target at the peak
    threads_base: int
    #: threads a target: its thread in ``scan_targets`` and its scan's workers (all at once in Lambda,
    #: where the slower CPU keeps every target in flight; fewer at the peak here).
    threads: int
    fds_base: int
    #: file descriptors a target in flight: a connection a worker, and one more (STS, CloudWatch); a
    #: target's clients are closed when done with (its scan, its publish), so only those in flight count.
    fds: int
    floor: float  #: the slowest target's API floor, s (its calls at 5 a second, burst 5)

    @classmethod
    def of(cls, measured: Measured) -> PerTarget:
        out, targets = measured.outcome, measured.targets
        floors = [floor_seconds(sum(calls.values()), 5.0, 5) for calls in measured.minimum.values()]
        return cls(
            keys=measured.keys / targets,
            regions=len(measured.shape.regions),
            scan_cpu=out["scan_cpu"] / targets,
            connect_cpu=out["connect_cpu"] / targets,
            after_cpu=(out["publish_cpu"] + out["records_cpu"]) / targets,
            rss_base=out["rss_imported_mb"],
            rss=(out["rss_peak_mb"] - out["rss_imported_mb"]) / targets,
            threads_base=int(out["threads_at_start"]),
            threads=1 + int(out["max_workers"]),
            fds_base=int(out["fds_at_start"]),
            fds=1 + int(out["max_workers"]),
            floor=max(floors, default=0.0),
        )


def _share(memory_mb: int) -> float:
    """The share of a vCPU a function of ``memory_mb`` has (one at most)."""
    return min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)


def _assume_roles(cost: PerTarget, targets: int) -> float:
    """The AssumeRole calls of ``targets``, one after another, and then the last target's API floor."""
    return math.ceil(targets / cost.regions) * ASSUMED_ASSUME_ROLE_SECONDS + cost.floor


def scan_seconds(cost: PerTarget, targets: int, memory_mb: int) -> float:
    """A scan of ``targets`` in Lambda: its CPU at the memory's share of a vCPU, or :func:`_assume_roles`."""
    return max(targets * cost.scan_cpu / _share(memory_mb), _assume_roles(cost, targets))


def run_seconds(cost: PerTarget, targets: int, memory_mb: int) -> float:
    """The whole run: the scan, then the targets' PutMetricData (:data:`PUBLISH_AT_ONCE` at a time, their
    waits overlapping, their CPU not), and the records."""
    waits = math.ceil(targets / PUBLISH_AT_ONCE) * ASSUMED_PUBLISH_SECONDS
    after = targets * cost.after_cpu / _share(memory_mb) + waits
    return scan_seconds(cost, targets, memory_mb) + after


def limits(cost: PerTarget, memory_mb: int, timeout: float) -> dict[str, int]:
    """The most targets of this mix each resource allows one function (memory, timeout)."""
    share, room = _share(memory_mb), timeout - min(RESERVE_SECONDS, timeout * RESERVE_SHARE)
    fits: dict[str, Callable[[int], bool]] = {
        "CPU (the scan before calls stop)": lambda n: n * cost.scan_cpu / share <= room,
        f"time (the scan, then the publish, {PUBLISH_AT_ONCE} targets at a time)": lambda n: (
            scan_seconds(cost, n, memory_mb) <= room and run_seconds(cost, n, memory_mb) <= timeout
        ),
        "STS (AssumeRole one at a time)": lambda n: _assume_roles(cost, n) <= room,
        "memory": lambda n: cost.rss_base + n * cost.rss <= memory_mb,
        # The run reads at most MAX_TARGETS_AT_ONCE targets at a time: their threads and connections,
        # no more (a target's clients are closed when its scan and its publish are done).
        f"threads ({MAX_THREADS:,})": lambda n: (
            cost.threads_base + min(n, MAX_TARGETS_AT_ONCE) * cost.threads <= MAX_THREADS
        ),
        f"file descriptors ({MAX_FILE_DESCRIPTORS:,})": lambda n: (
            cost.fds_base + min(n, MAX_TARGETS_AT_ONCE) * cost.fds <= MAX_FILE_DESCRIPTORS
        ),
    }
    return {name: _most(fit) for name, fit in fits.items()}


#: The most targets :func:`_most` tries: a resource that allows as many is never the limit.
NO_LIMIT: Final = 1_000_000


def _most(fits: Callable[[int], bool]) -> int:
    """The largest n (0 to a million) for which ``fits(n)``, for a ``fits`` true up to some n."""
    return bisect.bisect_left(range(1, NO_LIMIT + 1), True, key=lambda n: not fits(n))


def report(measured: Measured) -> tuple[str, bool]:
    """The docs section, and whether every target was read as it should be (:attr:`Measured.ok`)."""
    m, out, shape, targets, keys = measured, measured.outcome, measured.shape, measured.targets, measured.keys
    cost, mark, share = PerTarget.of(measured), {True: "✅", False: "❌"}, LAMBDA_MB / LAMBDA_MB_PER_VCPU
    per_target_calls = [sum(ops.values()) for ops in m.calls.values()]
    scan_times = [float(target["scan_seconds"]) for target in out["targets"]]
    after_cpu = out["publish_cpu"] + out["records_cpu"]
    rest_a_key = (out["scan_cpu"] - out["connect_cpu"] + after_cpu) / keys if keys else 0.0
    found = [limits(cost, mb, timeout) for mb, timeout in CASES]
    fleets, default = [min(each.values()) for each in found], found[0]
    limiter = min(default, key=lambda name: default[name])

    # Each resource's limit in each case, the case's smallest (its largest fleet) in bold.
    def cell(n: int, bold: bool) -> str:
        text = "not reached" if n >= NO_LIMIT else f"{n:,}"
        return f"**{text}**" if bold else text

    rows = {name: [cell(e[name], e[name] == min(e.values())) for e in found] for name in default}
    rows["**largest fleet: targets (keys)**"] = [f"**{n:,}** ({round(n * cost.keys):,})" for n in fleets]
    lines = [
        f"Generated by `python -m bench.targets200` on {m.ended}; {os.cpu_count()} cores, load {m.load:.2f} "
        f"at the end; {m.real_seconds:.0f} s in all (seeding {m.host['seconds_to_seed']:.1f} s).",
        "",
        f"{m.accounts} accounts x {len(shape.regions)} regions ({', '.join(shape.regions)}), the "
        f"monitor's own account and {m.accounts - 1} spokes; each target {shape.plans[0]} to "
        f"{shape.plans[1]} usage plans and {shape.keys[0]} to {shape.keys[1]} API keys (log-uniform), 31 "
        f"days a key, latency {shape.latency[0] * 1000:.0f}-{shape.latency[1] * 1000:.0f} ms, its own "
        f"account bucket ({shape.account_rps:g}/s, burst {shape.account_burst}); the monitor at its "
        f"defaults ({out['max_workers']} workers a target: `APIGATEWAY_MAX_CONCURRENCY=4` shared out; 5 "
        "calls a second a target, burst 5; `KEY_METRICS=auto`).",
        "",
        "| | measured | |",
        "|---|---:|---|",
        f"| targets read (every plan, every key) | {m.targets_read} of {targets} "
        f"{mark[m.targets_read == targets]} | {m.accounts} accounts |",
        f"| API keys read | {keys:,} | of {m.keys_seeded:,} seeded; {cost.keys:.0f} a target on average |",
        f"| API Gateway calls, in all | {m.total_calls:,} {mark[m.total_calls >= m.total_minimum]} | the "
        f"minimum {m.total_minimum:,}; targets at their minimum: {m.targets_at_minimum} of {targets} |",
        f"| API Gateway calls a target: mean (fewest to most) | {m.total_calls / targets:.1f} "
        f"({min(per_target_calls, default=0)} to {max(per_target_calls, default=0)}) | |",
        f"| 429s sent by the sandbox | {m.stats['throttled']} | |",
        f"| STS AssumeRole calls | {m.assume_role_calls} {mark[m.assume_role_calls == m.accounts - 1]} | "
        "one a spoke account |",
        f"| failures | {len(out['failures'])} {mark[not out['failures']]} | |",
        f"| wall time of the scan, s | {out['scan_seconds']:.1f} | every target at once; each target's "
        f"own scan {min(scan_times, default=0):.1f} to {max(scan_times, default=0):.1f} s (its API floor at "
        f"most {cost.floor:.1f}); the last target connected after {out['connected_by_seconds']:.1f} s |",
        f"| wall time of the publish, s (moto) | {out['publish_seconds']:.1f} | "
        f"{m.stats['put_metric_data']} PutMetricData, {m.stats['datapoints']:,} data points, "
        f"{PUBLISH_AT_ONCE} targets at a time |",
        f"| wall time of the records, s | {out['records_seconds']:.1f} | {out['records']:,} records, "
        f"{out['record_bytes']:,} bytes |",
        f"| CPU seconds: the scan (of which the connects) | {out['scan_cpu']:.1f} ({out['connect_cpu']:.1f}) "
        f"| ≈ {out['scan_cpu'] / share:.0f} s at 256 MB's {share:.1%} of a vCPU |",
        f"| CPU seconds: publish + records | {after_cpu:.2f} | ≈ {after_cpu / share:.0f} s at 256 MB |",
        f"| CPU, ms: a target's connect; the rest, a key | {cost.connect_cpu * 1000:.0f}; "
        f"{rest_a_key * 1000:.2f} | connect: AssumeRole (a spoke's first region), a boto3 session, the "
        "clients |",
        f"| peak RSS, MiB | {out['rss_peak_mb']:.0f} | imports {out['rss_imported_mb']:.0f}; "
        f"{cost.rss:.1f} a target |",
        f"| threads, most at once | {out['threads_peak']} | {out['threads_at_start']} before the run; at "
        f"most {cost.threads} a target (1 + {out['max_workers']} workers) |",
        f"| open file descriptors, most at once | {out['fds_peak']} | {out['fds_at_start']} before the "
        f"run; at most {cost.fds} a target in flight (a connection a worker, one to STS or CloudWatch), "
        f"closed when it is done; at most {MAX_TARGETS_AT_ONCE} in flight |",
        "",
        f"Where one function stops being enough: the most targets of this mix (about {cost.keys:.0f} keys "
        "each) that each resource allows, extrapolated linearly from the run above (CPU at the memory's "
        f"share of a vCPU, one at most; AssumeRole assumed {ASSUMED_ASSUME_ROLE_SECONDS:g} s, a target's "
        f"PutMetricData {ASSUMED_PUBLISH_SECONDS:g} s; Lambda's {MAX_THREADS:,} threads and "
        f"{MAX_FILE_DESCRIPTORS:,} file descriptors); the smallest in bold:",
        "",
        "| | " + " | ".join(f"{mb:,} MB, {timeout:.0f} s" for mb, timeout in CASES) + " |",
        "|---|" + "---:|" * len(CASES),
        *(f"| {name} | {' | '.join(cells)} |" for name, cells in rows.items()),
        "",
        f"- At the stack's 256 MB and 300 s one function reads about {default[limiter]:,} targets of this "
        f"mix ({round(default[limiter] * cost.keys):,} keys): the limit is {limiter}. This run's "
        f"{targets} targets need {out['rss_peak_mb']:.0f} MiB and about "
        f"{run_seconds(cost, targets, LAMBDA_MB):.0f} s of a 256 MB function (the scan "
        f"{scan_seconds(cost, targets, LAMBDA_MB):.0f} s).",
        f"- The targets' connects took {out['connect_cpu'] / out['scan_cpu']:.0%} of the scan's CPU "
        f"({cost.connect_cpu * 1000:.0f} ms a target); the peak RSS grew by {cost.rss:.1f} MiB a target.",
    ]
    return "\n".join(lines), measured.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.targets200", description=__doc__)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--accounts", type=int, default=FleetShape.accounts, help="accounts (the first is home)"
    )
    parser.add_argument("--regions", default=",".join(REGIONS), help="regions of every account")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the measurement here")
    parser.add_argument("--from-json", type=Path, help="report a measurement written by --json; no run")
    args = parser.parse_args(argv)
    if args.serve:
        return serve(FleetShape.from_json(args.serve))
    if args.run:
        return run_monitor(Path(args.run[0]), args.run[1])
    if args.from_json:
        measured = Measured.from_json(args.from_json.read_text(encoding="utf-8"))
    else:
        measured = measure(FleetShape(accounts=args.accounts, regions=tuple(args.regions.split(","))))
    text, ok = report(measured)
    print(text)
    if args.json:
        args.json.write_text(measured.to_json(), encoding="utf-8")
    if not args.no_docs:
        write_section(START, END, text, heading="200 targets in one run")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
