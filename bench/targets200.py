"""``python -m bench.targets200``: 200 targets (50 accounts x 4 regions) in one run, and where one
function stops being enough (issue 26).

How: a host process (:func:`serve`) seeds every target as an account of its own in the sandbox (2 to
10 usage plans, 20 to 200 API keys drawn log-uniformly: many small accounts, a few larger ones), each
behind its own account-wide token bucket (10 a second, burst 40) and 50 to 150 ms of latency, and
serves moto for STS and CloudWatch, counting each AssumeRole and PutMetricData it answers. A runner
process (:func:`run_monitor`), importing only what the Lambda function imports, takes its targets as
the handler does (``quota_monitor.handler.target_accesses``: ``REGIONS`` and ``SPOKE_ROLE_ARNS``, one
AssumeRole a spoke account) and runs the handler's steps in real time: every target scanned at once
(``scan_targets``, the default settings), each target's metrics published to its own account and
region (``publish_targets``, timed apart: moto is not CloudWatch), the records written. It samples
its own threads and open file descriptors as it goes; memory is its peak resident set size, CPU its
user and system time.

From those numbers :func:`limits` extrapolates, resource by resource, to the largest fleet of the
same mix one function reads: at 256 MB (the stack's default) and 1,769 MB (one vCPU), with the
default 300 s timeout and with Lambda's 900 s maximum.
"""

from __future__ import annotations

import argparse
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
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.host import ROOT, HostProcess, child_env, reply, serve_lines, unknown, write_section
from bench.scenario import AccountShape, Scenario, floor_seconds, minimum_calls
from quota_monitor import MAX_TARGETS_AT_ONCE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from quota_monitor import TargetAccess, TargetClients

START, END = "<!-- bench:targets200:start -->", "<!-- bench:targets200:end -->"
HEADING = "200 targets in one run"
#: The monitor's own account (the sandbox's and moto's default); spokes are numbered from SPOKE_BASE.
HOME: Final = "123456789012"
HOME_REGION: Final = "us-east-1"
SPOKE_BASE: Final = 200_000_000_000
ROLE_NAME: Final = "ApiGatewayQuotaMonitorSpoke"
REGIONS: Final = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2")

#: Lambda: CPU in proportion to memory (1,769 MB is one vCPU; one Python process uses one, whatever
#: more Lambda gives), the stack's memory and timeout, Lambda's longest timeout, and its hard limits on
#: threads and on file descriptors (1,024 each, per execution environment).
LAMBDA_MB: Final = 256
LAMBDA_MB_PER_VCPU: Final = 1769
TIMEOUT_SECONDS: Final = 300.0
MAX_TIMEOUT_SECONDS: Final = 900.0
MAX_LAMBDA_MB: Final = 10_240
MAX_THREADS: Final = 1024
MAX_FILE_DESCRIPTORS: Final = 1024
#: ``quota_monitor.invocation.reserve_for``: the handler starts no API Gateway call in the last 60 s
#: (at most 40% of the invocation).
RESERVE_SECONDS: Final = 60.0
RESERVE_SHARE: Final = 0.4
#: What the loopback cannot show, assumed: one AssumeRole (STS answers in tens of milliseconds; the
#: monitor's ``AssumedRoles`` makes them one at a time), and one target's PutMetricData from the home
#: region (``publish_targets`` publishes target after target; each target's first request opens a
#: TLS connection to that region's endpoint: tens of ms in-region, 200 ms and more to the far side).
ASSUMED_ASSUME_ROLE_SECONDS: Final = 0.1
ASSUMED_PUBLISH_SECONDS: Final = 0.25
#: How often the runner samples its threads and open file descriptors.
SAMPLE_SECONDS: Final = 0.02


@dataclass(frozen=True)
class FleetShape:
    """The fleet: ``accounts`` accounts (the monitor's own first) in every one of ``regions``."""

    accounts: int = 50
    regions: tuple[str, ...] = REGIONS
    #: Usage plans and API keys of each target, drawn from these ranges (keys log-uniformly).
    plans: tuple[int, int] = (2, 10)
    keys: tuple[int, int] = (20, 200)
    seed: int = 26
    latency: tuple[float, float] = Scenario.latency
    account_rps: float = Scenario.account_rps
    account_burst: int = Scenario.account_burst
    scan_date: date = Scenario.scan_date

    @property
    def scenario(self) -> Scenario:
        """The dates and the account behaviour (what :class:`Scenario` says of every benchmark)."""
        return Scenario(
            latency=self.latency,
            account_rps=self.account_rps,
            account_burst=self.account_burst,
            scan_date=self.scan_date,
        )

    def account_ids(self) -> list[str]:
        return [HOME, *(f"{SPOKE_BASE + n:012d}" for n in range(1, self.accounts))]

    def role_arns(self) -> list[str]:
        return [f"arn:aws:iam::{account}:role/{ROLE_NAME}" for account in self.account_ids()[1:]]

    def layout(self) -> list[tuple[str, str, int, int]]:
        """(account, region, usage plans, API keys) of every target, the same for the same shape."""
        rng = random.Random(self.seed)  # noqa: S311 - a benchmark's layout, not a secret
        low, high = math.log(self.keys[0]), math.log(self.keys[1])
        found = []
        for account in self.account_ids():
            for region in self.regions:
                keys = round(math.exp(rng.uniform(low, high)))
                found.append((account, region, min(keys, rng.randint(*self.plans)), keys))
        return found

    def to_json(self) -> str:
        fields = asdict(self)
        fields["scan_date"] = self.scan_date.isoformat()
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text: str) -> FleetShape:
        fields = json.loads(text)
        return cls(
            accounts=int(fields["accounts"]),
            regions=tuple(fields["regions"]),
            plans=(int(fields["plans"][0]), int(fields["plans"][1])),
            keys=(int(fields["keys"][0]), int(fields["keys"][1])),
            seed=int(fields["seed"]),
            latency=(float(fields["latency"][0]), float(fields["latency"][1])),
            account_rps=float(fields["account_rps"]),
            account_burst=int(fields["account_burst"]),
            scan_date=date.fromisoformat(fields["scan_date"]),
        )


# -- the host ---------------------------------------------------------------------------------------
class StsCalls:
    """WSGI middleware in front of moto: counts STS requests by action (query protocol)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.actions: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "/sts/aws4_request" in str(environ.get("HTTP_AUTHORIZATION", "")):
            from urllib.parse import parse_qs  # noqa: PLC0415

            # The recorder in front of this one has read the body into a BytesIO: read, then rewind.
            stream = environ["wsgi.input"]
            body = stream.read()
            stream.seek(0)
            action = (parse_qs(body.decode("utf-8", "replace")).get("Action") or ["?"])[0]
            with self._lock:
                self.actions[action] = self.actions.get(action, 0) + 1
        response: Iterable[bytes] = self.app(environ, start_response)
        return response

    def clear(self) -> None:
        with self._lock:
            self.actions.clear()


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
    from apigw_sandbox.account import SandboxAccount  # noqa: PLC0415
    from apigw_sandbox.seed import seed_scale_account  # noqa: PLC0415
    from apigw_sandbox.server import AccountThrottle, SandboxServer  # noqa: PLC0415
    from bench.sandbox_host import MotoServer  # noqa: PLC0415

    scan_at = shape.scenario.scan_at
    started = time.monotonic()
    sandbox = SandboxServer(latency=shape.latency)
    described = []
    for n, (account_id, region, plans, keys) in enumerate(shape.layout()):
        account = SandboxAccount(clock=lambda: scan_at, seed=n)
        seed_scale_account(
            account,
            plans=plans,
            keys=keys,
            big_plans=0,
            big_plan_keys=0,
            history_days=shape.scan_date.day - 1,
            seed=n,
        )
        sandbox.add_account(
            account,
            region=region,
            account_id=account_id,
            throttle=AccountThrottle(shape.account_rps, shape.account_burst),
        )
        described.append(
            {
                "account": account_id,
                "region": region,
                "plans": len(account.plans),
                "api_keys": len(account.keys),
                "keys_per_plan": [len(plan.key_ids) for plan in account.plans.values()],
            }
        )
    moto = MotoServer()
    sts = StsCalls(moto.recorder.app)
    moto.recorder.app = sts
    sandbox.start()
    moto.start()
    sandbox.account_of = account_lookup(moto.url)
    reply(
        {
            "ready": True,
            "apigateway": sandbox.url,
            "moto": moto.url,
            "seconds_to_seed": time.monotonic() - started,
            "targets": described,
        }
    )

    def answer(command: dict[str, Any]) -> dict[str, Any]:
        if command.get("op") == "reset":
            sandbox.reset_counters()
            moto.reset()
            sts.clear()
            return {"ok": True}
        if command.get("op") == "stats":
            requests = list(moto.recorder.requests)
            return {
                "calls": [[*where, count] for where, count in sandbox.calls_by_target.items()],
                "throttled": sandbox.throttled,
                "sts": dict(sts.actions),
                "put_metric_data": len(requests),
                "datapoints": sum(int(request["datapoints"] or 0) for request in requests),
            }
        return unknown(command)

    try:
        serve_lines(answer)
    finally:
        sandbox.stop()
        moto.stop()
    return 0


# -- the runner ---------------------------------------------------------------------------------------
class Sampler:
    """The process's threads and open file descriptors, sampled every :data:`SAMPLE_SECONDS` (itself
    left out), their highest value kept."""

    def __init__(self) -> None:
        self.threads = self.threads_at_start = _threads()
        self.fds = self.fds_at_start = _file_descriptors()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def sample(self) -> None:
        self.threads = max(self.threads, _threads() - 1)
        self.fds = max(self.fds, _file_descriptors())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _threads() -> int:
    """The process's threads as the kernel counts them (Lambda's limit counts those), else Python's."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


def _file_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Connects:
    """Each target's connect (AssumeRole for a spoke's first region, a session, the clients): the CPU
    of its thread, and when it ended after the scan began."""

    started: float
    cpu: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, access: TargetAccess) -> TargetAccess:
        connect = access.connect

        def timed_connect() -> TargetClients:
            cpu = time.thread_time()
            try:
                return connect()
            finally:
                with self._lock:
                    self.cpu.append(time.thread_time() - cpu)
                    self.ended.append(time.perf_counter() - self.started)

        vars(access)["connect"] = timed_connect  # this instance only: the benchmark's measurement
        return access


def run_monitor(out: Path, scan_at_iso: str) -> int:
    """The handler's steps over ``REGIONS`` and ``SPOKE_ROLE_ARNS`` (the environment's), in real time;
    one JSON object to ``out``."""
    from datetime import datetime  # noqa: PLC0415

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

    settings = handler.SETTINGS
    scan_at = datetime.fromisoformat(scan_at_iso)
    rss_imported = _peak_rss_mb()
    with Sampler() as sampler:
        cpu_started = _cpu_seconds()
        started = time.perf_counter()
        connects = Connects(started)
        accesses = [connects.timed(access) for access in handler.target_accesses(HOME)]
        scans = scan_targets(settings, accesses, Invocation.unbounded(clocks=Clocks(wall=scan_at.timestamp)))
        scanned, cpu_scanned, rss_scanned = time.perf_counter(), _cpu_seconds(), _peak_rss_mb()
        fleet = publish_targets(settings, scans, now=scan_at, health_cloudwatch=handler.health_cloudwatch)
        published, cpu_published = time.perf_counter(), _cpu_seconds()
        with out.with_suffix(".records").open("w", encoding="utf-8") as sink:
            lines = (line for run in fleet.runs for line in records(run, settings))
            targets = (
                target_record(run.result, metrics_published=run.publish_error is None) for run in fleet.runs
            )
            written = write_records(itertools.chain(lines, targets), sink.write)
        finished, cpu_finished = time.perf_counter(), _cpu_seconds()
        sampler.sample()
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
        "scan_seconds": scanned - started,
        "publish_seconds": published - scanned,
        "records_seconds": finished - published,
        "scan_cpu": cpu_scanned - cpu_started,
        "publish_cpu": cpu_published - cpu_scanned,
        "records_cpu": cpu_finished - cpu_published,
        "connect_cpu": sum(connects.cpu),
        "connected_by_seconds": max(connects.ended, default=0.0),
        "records": written.records,
        "record_bytes": written.bytes,
        "rss_imported_mb": rss_imported,
        "rss_scanned_mb": rss_scanned,
        "rss_peak_mb": _peak_rss_mb(),
        "threads_at_start": sampler.threads_at_start,
        "threads_peak": sampler.threads,
        "fds_at_start": sampler.fds_at_start,
        "fds_peak": sampler.fds,
        "max_workers": settings.scan.per_target(len(accesses)).max_workers,
    }
    out.write_text(json.dumps(outcome))
    return 0


# -- the driver ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measured:
    """One run over the whole fleet, with what the host counted."""

    shape: FleetShape
    host: dict[str, Any]
    outcome: dict[str, Any]
    stats: dict[str, Any]
    real_seconds: float
    #: When it ended (UTC), and the machine's load average then.
    ended: str = ""
    load: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "shape": json.loads(self.shape.to_json()),
                **{name: getattr(self, name) for name in ("host", "outcome", "stats", "real_seconds")},
                **{"ended": self.ended, "load": self.load},
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Measured:
        saved = json.loads(text)
        return cls(
            FleetShape.from_json(json.dumps(saved["shape"])),
            saved["host"],
            saved["outcome"],
            saved["stats"],
            float(saved["real_seconds"]),
            str(saved["ended"]),
            float(saved["load"]),
        )

    @property
    def targets(self) -> int:
        return len(self.host["targets"])

    @property
    def accounts(self) -> int:
        return len({target["account"] for target in self.host["targets"]})

    @property
    def keys(self) -> int:
        return sum(int(target["keys"]) for target in self.outcome["targets"])

    @property
    def keys_seeded(self) -> int:
        return sum(sum(target["keys_per_plan"]) for target in self.host["targets"])

    def shapes(self) -> dict[tuple[str, str], AccountShape]:
        return {
            (target["account"], target["region"]): AccountShape(
                plans=int(target["plans"]),
                api_keys=int(target["api_keys"]),
                keys_per_plan=tuple(target["keys_per_plan"]),
            )
            for target in self.host["targets"]
        }

    def calls(self) -> dict[tuple[str, str], dict[str, int]]:
        found: dict[tuple[str, str], dict[str, int]] = {}
        for account, region, operation, count in self.stats["calls"]:
            found.setdefault((account, region), {})[operation] = int(count)
        return found

    def minimum(self) -> dict[tuple[str, str], dict[str, int]]:
        return {where: minimum_calls(shape) for where, shape in self.shapes().items()}

    @property
    def total_calls(self) -> int:
        return sum(sum(ops.values()) for ops in self.calls().values())

    @property
    def total_minimum(self) -> int:
        return sum(sum(ops.values()) for ops in self.minimum().values())

    @property
    def targets_at_minimum(self) -> int:
        calls = self.calls()
        return sum(1 for where, least in self.minimum().items() if calls.get(where) == least)

    @property
    def targets_read(self) -> int:
        """Targets whose every plan was read and every attached key reported."""
        expected = {where: shape.attached_keys for where, shape in self.shapes().items()}
        return sum(
            1
            for target in self.outcome["targets"]
            if target["plans_scanned"] == target["plans"]
            and expected.get((target["account"], target["region"])) == target["keys"]
        )

    @property
    def assume_role_calls(self) -> int:
        return int(self.stats["sts"].get("AssumeRole", 0))

    @property
    def cpu_seconds(self) -> float:
        return float(self.outcome["scan_cpu"] + self.outcome["publish_cpu"] + self.outcome["records_cpu"])

    @property
    def ok(self) -> bool:
        return (
            bool(self.outcome["ok"])
            and not self.outcome["failures"]
            and self.targets_read == self.targets == len(self.outcome["targets"])
            and self.total_calls >= self.total_minimum
            and self.assume_role_calls == self.accounts - 1
            and all(target["published"] for target in self.outcome["targets"])
        )


def _runner_env(host: dict[str, Any], shape: FleetShape) -> dict[str, str]:
    passed = {name: os.environ[name] for name in ("APIGATEWAY_MAX_CONCURRENCY",) if name in os.environ}
    moto = str(host["moto"])
    return child_env(
        {
            "AWS_ENDPOINT_URL_API_GATEWAY": str(host["apigateway"]),
            "AWS_ENDPOINT_URL_CLOUDWATCH": moto,
            "AWS_ENDPOINT_URL_STS": moto,
            "REGIONS": ",".join(shape.regions),
            **({"SPOKE_ROLE_ARNS": ",".join(shape.role_arns())} if shape.accounts > 1 else {}),
            **passed,
        }
    )


def measure(shape: FleetShape) -> Measured:
    """Seed the fleet in a host, run the monitor over all of it once in a runner, count."""
    began = time.perf_counter()
    with HostProcess("bench.targets200", "--serve", shape.to_json(), env=child_env({})) as host_process:
        host = host_process.ready
        host_process.ask(op="reset")
        with tempfile.TemporaryDirectory(prefix="bench-targets-") as folder:
            out = Path(folder, "out.json")
            subprocess.run(  # noqa: S603 - our own module, no shell
                [
                    sys.executable,
                    "-m",
                    "bench.targets200",
                    "--run",
                    str(out),
                    shape.scenario.scan_at.isoformat(),
                ],
                cwd=ROOT,
                env=_runner_env(host, shape),
                check=True,
                timeout=3600,
            )
            outcome = json.loads(out.read_text())
        stats = host_process.ask(op="stats")
    return Measured(
        shape,
        host,
        outcome,
        stats,
        time.perf_counter() - began,
        ended=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        load=os.getloadavg()[0],
    )


# -- where one function stops being enough ------------------------------------------------------------
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
    #: threads a target: its thread in ``scan_targets`` and its scan's workers. All of them at once in
    #: Lambda, where the slower CPU keeps every target in flight (measured here: fewer at the peak).
    threads: int
    fds_base: int
    #: open file descriptors a target: a connection for each of its workers and one to CloudWatch, or
    #: more when more were measured at the peak.
    fds: float
    floor: float  #: the slowest target's API floor, s (its calls at 5 a second, burst 5)

    @classmethod
    def of(cls, measured: Measured) -> PerTarget:
        out, targets = measured.outcome, measured.targets
        floors = [floor_seconds(sum(calls.values()), 5.0, 5) for calls in measured.minimum().values()]
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
            fds=max((out["fds_peak"] - out["fds_at_start"]) / targets, 1 + int(out["max_workers"])),
            floor=max(floors, default=0.0),
        )


def reserve(timeout: float) -> float:
    return min(RESERVE_SECONDS, timeout * RESERVE_SHARE)


def scan_seconds(cost: PerTarget, targets: int, memory_mb: int) -> float:
    """A scan of ``targets`` in Lambda: its CPU at the memory's share of a vCPU, or, when longer, the
    AssumeRole calls one after another and then the last target's API floor."""
    share = min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)
    accounts = math.ceil(targets / cost.regions)
    return max(targets * cost.scan_cpu / share, accounts * ASSUMED_ASSUME_ROLE_SECONDS + cost.floor)


def run_seconds(cost: PerTarget, targets: int, memory_mb: int) -> float:
    """The whole run: the scan, then each target's PutMetricData one after another, and the records."""
    share = min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)
    after = targets * (cost.after_cpu / share + ASSUMED_PUBLISH_SECONDS)
    return scan_seconds(cost, targets, memory_mb) + after


def limits(cost: PerTarget, memory_mb: int, timeout: float) -> dict[str, int]:
    """The most targets of this mix each resource allows one function (memory, timeout)."""
    share = min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)
    room = timeout - reserve(timeout)
    fits: dict[str, Callable[[int], bool]] = {
        "CPU (the scan before calls stop)": lambda n: n * cost.scan_cpu / share <= room,
        "time (the scan, then the publish target by target)": lambda n: (
            scan_seconds(cost, n, memory_mb) <= room and run_seconds(cost, n, memory_mb) <= timeout
        ),
        "STS (AssumeRole one at a time)": lambda n: (
            math.ceil(n / cost.regions) * ASSUMED_ASSUME_ROLE_SECONDS + cost.floor <= room
        ),
        "memory": lambda n: cost.rss_base + n * cost.rss <= memory_mb,
        # The run reads at most MAX_TARGETS_AT_ONCE targets at a time: their threads, no more.
        f"threads ({MAX_THREADS:,})": lambda n: (
            cost.threads_base + min(n, MAX_TARGETS_AT_ONCE) * cost.threads <= MAX_THREADS
        ),
        f"file descriptors ({MAX_FILE_DESCRIPTORS:,})": lambda n: (
            cost.fds_base + n * cost.fds <= MAX_FILE_DESCRIPTORS
        ),
    }
    return {name: _most(fit) for name, fit in fits.items()}


def _most(fits: Callable[[int], bool], ceiling: int = 1_000_000) -> int:
    """The largest n (0 to ``ceiling``) for which ``fits(n)``, for a ``fits`` true up to some n."""
    low, high = 0, ceiling
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


#: (memory, timeout) of the functions compared: the stack's, one vCPU, the longest timeout, and the
#: largest function Lambda runs.
CASES: Final = (
    (LAMBDA_MB, TIMEOUT_SECONDS),
    (LAMBDA_MB_PER_VCPU, TIMEOUT_SECONDS),
    (LAMBDA_MB, MAX_TIMEOUT_SECONDS),
    (LAMBDA_MB_PER_VCPU, MAX_TIMEOUT_SECONDS),
    (MAX_LAMBDA_MB, MAX_TIMEOUT_SECONDS),
)


# -- the report -----------------------------------------------------------------------------------------
def _mark(good: bool) -> str:
    return "✅" if good else "❌"


def _measured_rows(measured: Measured, cost: PerTarget) -> list[str]:
    out, targets, keys = measured.outcome, measured.targets, measured.keys
    per_target_calls = [sum(ops.values()) for ops in measured.calls().values()]
    scan_times = [float(target["scan_seconds"]) for target in out["targets"]]
    share = LAMBDA_MB / LAMBDA_MB_PER_VCPU
    after_cpu = out["publish_cpu"] + out["records_cpu"]
    rest_a_key = (out["scan_cpu"] - out["connect_cpu"] + after_cpu) / keys if keys else 0.0
    return [
        "| | measured | |",
        "|---|---:|---|",
        f"| targets read (every plan, every key) | {measured.targets_read} of {targets} "
        f"{_mark(measured.targets_read == targets)} | {measured.accounts} accounts |",
        f"| API keys read | {keys:,} | of {measured.keys_seeded:,} seeded; {cost.keys:.0f} a target on "
        "average |",
        f"| API Gateway calls, in all | {measured.total_calls:,} "
        f"{_mark(measured.total_calls >= measured.total_minimum)} | the minimum {measured.total_minimum:,}; "
        f"targets at their minimum: {measured.targets_at_minimum} of {targets} |",
        f"| API Gateway calls a target: mean (fewest to most) | {measured.total_calls / targets:.1f} "
        f"({min(per_target_calls, default=0)} to {max(per_target_calls, default=0)}) | |",
        f"| 429s sent by the sandbox | {measured.stats['throttled']} | |",
        f"| STS AssumeRole calls | {measured.assume_role_calls} "
        f"{_mark(measured.assume_role_calls == measured.accounts - 1)} | one a spoke account |",
        f"| failures | {len(out['failures'])} {_mark(not out['failures'])} | |",
        f"| wall time of the scan, s | {out['scan_seconds']:.1f} | every target at once; each target's "
        f"own scan {min(scan_times, default=0):.1f} to {max(scan_times, default=0):.1f} s (its API floor at "
        f"most {cost.floor:.1f}); the last target connected after {out['connected_by_seconds']:.1f} s |",
        f"| wall time of the publish, s (moto) | {out['publish_seconds']:.1f} | "
        f"{measured.stats['put_metric_data']} PutMetricData, {measured.stats['datapoints']:,} data points, "
        "one target after another |",
        f"| wall time of the records, s | {out['records_seconds']:.1f} | {out['records']:,} records, "
        f"{out['record_bytes']:,} bytes |",
        f"| CPU seconds: the scan (of which the connects) | {out['scan_cpu']:.1f} ({out['connect_cpu']:.1f}) "
        f"| ≈ {out['scan_cpu'] / share:.0f} s at 256 MB's {share:.1%} of a vCPU |",
        f"| CPU seconds: publish + records | {after_cpu:.2f} | ≈ {after_cpu / share:.0f} s at 256 MB |",
        f"| CPU, ms: a target's connect; the rest, a key | {cost.connect_cpu * 1000:.0f}; "
        f"{rest_a_key * 1000:.2f} "
        "| connect: AssumeRole (a spoke's first region), a boto3 session, the clients |",
        f"| peak RSS, MiB | {out['rss_peak_mb']:.0f} | imports {out['rss_imported_mb']:.0f}; "
        f"{cost.rss:.1f} a target |",
        f"| threads, most at once | {out['threads_peak']} | {out['threads_at_start']} before the run; at "
        f"most {cost.threads} a target (1 + {out['max_workers']} workers) |",
        f"| open file descriptors, most at once | {out['fds_peak']} | {out['fds_at_start']} before the "
        f"run; at most {cost.fds:g} a target (a connection a worker, one to CloudWatch) |",
    ]


def report(measured: Measured) -> tuple[str, bool]:
    out, shape, targets = measured.outcome, measured.shape, measured.targets
    cost = PerTarget.of(measured)
    lines = [
        f"Generated by `python -m bench.targets200` on {measured.ended}; "
        f"{os.cpu_count()} cores, load {measured.load:.2f} at the end; {measured.real_seconds:.0f} s "
        f"in all (seeding {measured.host['seconds_to_seed']:.1f} s).",
        "",
        f"{measured.accounts} accounts x {len(shape.regions)} regions ({', '.join(shape.regions)}), the "
        f"monitor's own account and {measured.accounts - 1} spokes; each target {shape.plans[0]} to "
        f"{shape.plans[1]} usage plans and {shape.keys[0]} to {shape.keys[1]} API keys (log-uniform), 31 "
        f"days a key, latency {shape.latency[0] * 1000:.0f}-{shape.latency[1] * 1000:.0f} ms, its own "
        f"account bucket ({shape.account_rps:g}/s, burst {shape.account_burst}); the monitor at its "
        f"defaults ({out['max_workers']} workers a target: `APIGATEWAY_MAX_CONCURRENCY=4` shared out; 5 "
        "calls a second a target, burst 5; `KEY_METRICS=auto`).",
        "",
        *_measured_rows(measured, cost),
        "",
        f"Where one function stops being enough: the most targets of this mix (about {cost.keys:.0f} keys "
        "each) that each resource allows, extrapolated linearly from the run above (CPU at the memory's "
        "share of a vCPU, one at most; AssumeRole assumed "
        f"{ASSUMED_ASSUME_ROLE_SECONDS:g} s, a target's PutMetricData {ASSUMED_PUBLISH_SECONDS:g} s; "
        f"Lambda's {MAX_THREADS:,} threads and {MAX_FILE_DESCRIPTORS:,} file descriptors); the smallest "
        "in bold:",
        "",
        "| | " + " | ".join(f"{mb:,} MB, {timeout:.0f} s" for mb, timeout in CASES) + " |",
        "|---|" + "---:|" * len(CASES),
    ]
    found = [limits(cost, mb, timeout) for mb, timeout in CASES]
    for name in found[0]:
        cells = (
            f"**{each[name]:,}**" if each[name] == min(each.values()) else f"{each[name]:,}" for each in found
        )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    fleets = [min(each.values()) for each in found]
    lines.append(
        "| **largest fleet: targets (keys)** | "
        + " | ".join(f"**{n:,}** ({round(n * cost.keys):,})" for n in fleets)
        + " |"
    )
    default = found[0]
    limiter = min(default, key=lambda name: default[name])
    lines += [
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
        write_section(START, END, text, heading=HEADING)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
