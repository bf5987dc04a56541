"""``make bench`` (``python -m bench``): the monitor at 10,000 keys, against its targets and the naive way.

One run starts the sandbox host (:mod:`bench.sandbox_host`, seeded with the scenario), then runs
each case in a fresh process (:mod:`bench.runner`):

1. the monitor in real time, with the scenario's latency and AWS's account-wide token bucket:
   the headline numbers (calls against the minimum, wall time against the floor, memory);
2. the monitor and the naive scan side by side with time scaled by ``--time-scale`` (latency
   divided, the token bucket and the monitor's limiter and backoff on a faster clock), because
   the naive scan takes ~11,000 calls: about 20 minutes in real time. Seconds are reported scaled
   back. What the machine spends per call (HTTP, JSON) is not scaled, which makes the scaled
   runs slower than real ones would be; docs/benchmarks.md shows a real-time run of both;
3. the headroom runs: the monitor in real time at several ``APIGATEWAY_MAX_RPS`` while other
   callers (a deploy, the console) spend the same account's budget, counting who gets 429s.

It also times the handler's cold import (``python -X importtime``), prints a table, and writes
the numbers into docs/benchmarks.md between its markers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bench import budget
from bench.host import DOCS, ROOT, HostProcess, child_env
from bench.records import parse_measurement, read_records
from bench.report import render_text, write_docs
from bench.scenario import AccountShape, Scenario, floor_seconds, minimum_calls

if TYPE_CHECKING:
    from bench.alert_storm import AlertMeasurement


@dataclass(frozen=True)
class Case:
    label: str
    impl: str  # "monitor" or "naive"
    time_scale: float
    env: tuple[tuple[str, str], ...] = ()
    #: Other callers of the account's control plane during the run, calls a second (not retried).
    background_rps: float = 0.0


@dataclass
class Measurement:
    case: Case
    ok: bool
    error: str | None
    calls: dict[str, int]
    minimum: dict[str, int]
    throttles_sent: int
    throttles_received: int | None
    page_limits: list[str]
    scan_seconds: float | None
    publish_seconds: float | None
    floor: float | None
    keys_expected: int
    keys_reported: int
    keys_missed: int
    keys_wrong: int
    failures: list[str]
    metric_requests: list[dict[str, Any]]
    metric_datapoints: int | None
    rss_imported_mb: float | None
    rss_peak_mb: float | None
    settings: dict[str, Any] = field(default_factory=dict)
    #: CPU seconds of the runner by phase: import, clients, scan, publish.
    cpu: dict[str, float] = field(default_factory=dict)
    #: The other traffic's calls and how many of them the account's bucket refused.
    background: dict[str, int] | None = None
    #: The machine's 1-minute load average when the run ended (the machine may be shared).
    load_average: float | None = None
    #: The records the run wrote, read back (bench.records.RecordsMeasurement as a dict).
    records: dict[str, int] | None = None
    #: What the runner says it wrote (lines, bytes, keys with metrics, KEY_METRICS).
    records_summary: dict[str, Any] | None = None
    records_seconds: float | None = None
    #: Distinct metric series created, by number of dimensions ("2" per key, "1" per plan, "0" health).
    series: dict[str, int] | None = None

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def minimum_total(self) -> int:
        return sum(self.minimum.values())

    @property
    def failed(self) -> bool:
        return not self.ok or bool(self.failures) or self.keys_missed > 0

    @property
    def wall_ratio(self) -> float | None:
        if self.scan_seconds is None or not self.floor:
            return None
        return self.scan_seconds / self.floor

    @property
    def datapoints_on_wire(self) -> int | None:
        counts = [request.get("datapoints") for request in self.metric_requests]
        return None if any(count is None for count in counts) else sum(int(c or 0) for c in counts)


@dataclass(frozen=True)
class ImportTiming:
    #: With Lambda's environment for the X-Ray SDK, and without it (an upper bound).
    runs_ms: tuple[float, ...]
    outside_lambda_ms: tuple[float, ...]
    breakdown_ms: dict[str, float]
    ready_ms: tuple[float, ...]
    load_average: float

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def ready_median_ms(self) -> float:
        return statistics.median(self.ready_ms)


class SandboxHost(HostProcess):
    """The sandbox host process (:mod:`bench.sandbox_host`), seeded with ``scenario``."""

    def __init__(
        self, scenario: Scenario, *, stderr: IO[str] | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        super().__init__(
            "bench.sandbox_host",
            f"--plans={scenario.plans}",
            f"--keys={scenario.keys}",
            f"--big-plans={scenario.big_plans}",
            f"--big-plan-keys={scenario.big_plan_keys}",
            f"--scan-date={scenario.scan_date.isoformat()}",
            *extra,
            stderr=stderr,
        )


def run_case(
    host: SandboxHost,
    scenario: Scenario,
    case: Case,
    *,
    shape: AccountShape,
    truth: dict[tuple[str, str], tuple[int, int | None]],
) -> Measurement:
    host.ask(
        op="configure",
        time_scale=case.time_scale,
        latency=list(scenario.latency),
        account_rps=scenario.account_rps,
        account_burst=scenario.account_burst,
        background_rps=case.background_rps,
    )
    env = child_env(
        {
            "AWS_ENDPOINT_URL_API_GATEWAY": str(host.ready["apigateway"]),
            "AWS_ENDPOINT_URL_CLOUDWATCH": str(host.ready["cloudwatch"]),
            **dict(case.env),
        }
    )
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        config, out = Path(folder, "config.json"), Path(folder, "out.json")
        config.write_text(
            json.dumps(
                {"impl": case.impl, "time_scale": case.time_scale, "scan_at": scenario.scan_at.isoformat()}
            )
        )
        subprocess.run(  # noqa: S603 - our own module, no shell
            [sys.executable, "-m", "bench.runner", str(config), str(out)],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=3 * 3600,
        )
        outcome: dict[str, Any] = json.loads(out.read_text())
        written = Path(folder, "records.jsonl")
        truth_now = truth if written.exists() else {}
        records = read_records(written, truth_now) if written.exists() else None
    stats = host.ask(op="stats")
    reported = {(row[0], row[1]): (row[2], row[3]) for row in outcome.get("keys", [])}
    settings = outcome.get("settings", {})
    minimum = minimum_calls(shape)
    floor = None
    if case.impl == "monitor" and settings:
        floor = floor_seconds(sum(minimum.values()), float(settings["max_rps"]), int(settings["burst"]))
    return Measurement(
        case=case,
        ok=bool(outcome.get("ok")),
        error=outcome.get("error"),
        calls={name: int(count) for name, count in stats["calls"].items()},
        minimum=minimum,
        throttles_sent=int(stats["throttled"]),
        throttles_received=outcome.get("throttles"),
        page_limits=list(stats["limits"]),
        scan_seconds=outcome.get("scan_seconds"),
        publish_seconds=outcome.get("publish_seconds"),
        floor=floor,
        keys_expected=len(truth),
        keys_reported=len(reported),
        keys_missed=len(set(truth) - set(reported)),
        keys_wrong=sum(1 for pair, numbers in reported.items() if truth.get(pair) != tuple(numbers)),
        failures=list(outcome.get("failures", [])),
        metric_requests=list(stats["metric_requests"]),
        metric_datapoints=outcome.get("metric_datapoints"),
        rss_imported_mb=outcome.get("rss_imported_mb"),
        rss_peak_mb=outcome.get("rss_peak_mb"),
        settings=settings,
        cpu={name: float(seconds) for name, seconds in outcome.get("cpu_seconds", {}).items()},
        background=stats.get("background"),
        load_average=os.getloadavg()[0],
        **parse_measurement(outcome, stats, records),
    )


def import_env(*, in_lambda: bool) -> dict[str, str]:
    """Tracing on, as in Lambda. ``in_lambda`` also sets what Lambda sets for the X-Ray SDK
    (``LAMBDA_TASK_ROOT``): outside Lambda its recorder builds two botocore clients for sampling
    rules at import, which it does not do in Lambda (it touches /tmp/.aws-xray/initialized)."""
    extra = {"POWERTOOLS_TRACE_DISABLED": "false"}
    if in_lambda:
        extra |= {
            "LAMBDA_TASK_ROOT": str(ROOT / "lambdas"),
            "AWS_LAMBDA_FUNCTION_NAME": "quota-monitor-bench",
        }
    return child_env(extra)


def _import_ms(env: dict[str, str]) -> tuple[float, dict[str, float]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import quota_monitor.handler"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_importtime(done.stderr)


def parse_importtime(stderr: str, module: str = "quota_monitor.handler") -> tuple[float, dict[str, float]]:
    """From ``python -X importtime`` output: ``module``'s cumulative ms, and that of its direct imports."""
    total: float | None = None
    children: list[tuple[str, float]] = []
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip(" "))) // 2
        if depth == 0:
            if name.strip() == module:
                total, found = float(cumulative) / 1000, dict(children)
            children = []
        elif depth == 1:
            children.append((name.strip(), float(cumulative) / 1000))
    if total is None:
        raise ValueError(f"{module} is not in the importtime output")
    return total, found


def measure_import(runs: int = 5) -> ImportTiming:
    """``python -X importtime -c 'import quota_monitor.handler'`` in fresh processes."""
    totals: list[float] = []
    breakdown: dict[str, list[float]] = {}
    outside: list[float] = []
    for _ in range(runs):
        total, children = _import_ms(import_env(in_lambda=True))
        totals.append(total)
        for child, ms in children.items():
            breakdown.setdefault(child, []).append(ms)
        outside.append(_import_ms(import_env(in_lambda=False))[0])
    ready: list[float] = []
    probe = (
        "import time; t = time.perf_counter(); import quota_monitor.handler; "
        "from quota_monitor import apigateway_client, cloudwatch_client; "
        "apigateway_client(); cloudwatch_client(); print((time.perf_counter() - t) * 1000)"
    )
    for _ in range(runs):
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=import_env(in_lambda=True),
            capture_output=True,
            text=True,
            check=True,
        )
        ready.append(float(done.stdout.strip().splitlines()[-1]))
    significant = {
        module: statistics.median(values)
        for module, values in breakdown.items()
        if statistics.median(values) >= 5.0
    }
    return ImportTiming(
        runs_ms=tuple(totals),
        outside_lambda_ms=tuple(outside),
        breakdown_ms=significant,
        ready_ms=tuple(ready),
        load_average=os.getloadavg()[0],
    )


@dataclass(frozen=True)
class Headroom:
    """The monitor at several rates while other callers use the same account: who gets 429s."""

    measurements: list[Measurement]


@dataclass
class BenchReport:
    scenario: Scenario
    shape: AccountShape
    measurements: list[Measurement]
    imports: ImportTiming | None
    started: datetime
    seconds_to_seed: float
    command: str
    headroom: Headroom | None = None
    #: The alert step at 10,000 keys (:mod:`bench.alert_storm`).
    alerts: list[AlertMeasurement] | None = None

    def first(self, impl: str, scale: float | None = None) -> Measurement | None:
        for measurement in self.measurements:
            if measurement.case.impl == impl and (scale is None or measurement.case.time_scale == scale):
                return measurement
        return None


def measure(
    scenario: Scenario, cases: list[Case], *, stderr: IO[str] | None = None
) -> tuple[AccountShape, list[Measurement], float]:
    """Seed a sandbox host with ``scenario`` and run every case against it."""
    with SandboxHost(scenario, stderr=stderr) as host:
        raw_shape = host.ask(op="shape")
        shape = AccountShape(
            plans=int(raw_shape["plans"]),
            api_keys=int(raw_shape["api_keys"]),
            keys_per_plan=tuple(int(n) for n in raw_shape["keys_per_plan"]),
        )
        truth = {(row[0], row[1]): (row[2], row[3]) for row in host.ask(op="truth")["keys"]}
        measurements = []
        for case in cases:
            progress(f"running {case.label} ...")
            began = time.monotonic()
            measurements.append(run_case(host, scenario, case, shape=shape, truth=truth))
            progress(f"  done in {time.monotonic() - began:.0f} s")
        return shape, measurements, float(host.ready.get("seconds_to_seed", 0.0))


#: (APIGATEWAY_MAX_RPS, other callers' calls a second): the default with a steady deploy beside it,
#: the monitor taking the whole budget, and the default beside a heavy deploy.
HEADROOM_CASES = ((5.0, 4.0), (10.0, 4.0), (5.0, 7.0))


def headroom_cases(pairs: tuple[tuple[float, float], ...] = HEADROOM_CASES) -> list[Case]:
    return [
        Case(
            f"monitor at {rate:g}/s, others at {other:g}/s",
            "monitor",
            1.0,
            (("APIGATEWAY_MAX_RPS", f"{rate:g}"),),
            other,
        )
        for rate, other in pairs
    ]


def run_benchmark(
    scenario: Scenario,
    cases: list[Case],
    *,
    measure_imports: bool = True,
    headroom: list[Case] | None = None,
    command: str = "make bench",
    stderr: IO[str] | None = None,
) -> BenchReport:
    started = datetime.now(UTC)
    shape, measurements, seconds_to_seed = measure(scenario, cases + (headroom or []), stderr=stderr)
    main_runs, other_runs = measurements[: len(cases)], measurements[len(cases) :]
    imports = measure_import() if measure_imports else None
    return BenchReport(
        scenario,
        shape,
        main_runs,
        imports,
        started,
        seconds_to_seed,
        command,
        Headroom(other_runs) if other_runs else None,
    )


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def default_cases(
    time_scale: float, *, naive: bool, naive_real_time: bool, whole_budget: bool = True
) -> list[Case]:
    # The real-time run is the default one (KEY_METRICS=auto: the records and a bounded set of
    # series); the scaled one publishes every key, so that batching 30,000 data points stays measured.
    cases = [Case("monitor, real time", "monitor", 1.0)]
    if whole_budget:
        cases.append(budget_case())
    if naive and time_scale != 1.0:
        cases.append(
            Case(
                f"monitor, time x{time_scale:g}, KEY_METRICS=all",
                "monitor",
                time_scale,
                (("KEY_METRICS", "all"),),
            )
        )
    if naive:
        cases.append(Case(f"naive, time x{time_scale:g}", "naive", time_scale))
    if naive_real_time and time_scale != 1.0:
        cases.append(Case("naive, real time", "naive", 1.0))
    return cases


def budget_case(run: int | None = None) -> Case:
    """The monitor at the account's whole budget, in real time (:mod:`bench.budget`)."""
    label = budget.LABEL if run is None else f"{budget.LABEL} #{run}"
    return Case(label, "monitor", 1.0, budget.ENV)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    defaults = Scenario()
    parser.add_argument("--plans", type=int, default=defaults.plans)
    parser.add_argument("--keys", type=int, default=defaults.keys)
    parser.add_argument("--big-plans", type=int, default=defaults.big_plans)
    parser.add_argument("--big-plan-keys", type=int, default=defaults.big_plan_keys)
    parser.add_argument(
        "--time-scale", type=float, default=10.0, help="time scale of the side-by-side runs (default 10)"
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive implementation")
    parser.add_argument(
        "--naive-real-time",
        action="store_true",
        help="also run the naive scan in real time (about 20 minutes)",
    )
    parser.add_argument(
        "--no-headroom", action="store_true", help="skip the experiment with other traffic in the account"
    )
    parser.add_argument(
        "--no-budget",
        action="store_true",
        help="skip the monitor at the account's whole budget (10/s, burst 40)",
    )
    parser.add_argument(
        "--only",
        choices=["budget", "alerts"],
        help="run only this part (no default runs, naive scan, headroom or import timing; implies --no-docs)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="with --only budget: how many runs (default 1)")
    parser.add_argument(
        "--no-alerts",
        action="store_true",
        help="skip the alert step at 10,000 keys (recovery storm, fresh table)",
    )
    parser.add_argument("--no-docs", action="store_true", help=f"do not write {DOCS.relative_to(ROOT)}")
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error(f"--time-scale {args.time_scale} must be above 0")
    scenario = replace(
        defaults, plans=args.plans, keys=args.keys, big_plans=args.big_plans, big_plan_keys=args.big_plan_keys
    )
    command = (
        "make bench" if argv is None and len(sys.argv) == 1 else "python -m bench " + " ".join(sys.argv[1:])
    )
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat} must be at least 1")
    progress(f"seeding the sandbox: {scenario.plans} plans, {scenario.keys} keys ...")
    if args.only == "budget":
        runs = [budget_case(n if args.repeat > 1 else None) for n in range(1, args.repeat + 1)]
        report = run_benchmark(scenario, runs, measure_imports=False, command=command)
    elif args.only == "alerts":
        report = run_benchmark(scenario, [], measure_imports=False, command=command)
    else:
        report = run_benchmark(
            scenario,
            default_cases(
                args.time_scale,
                naive=not args.no_naive,
                naive_real_time=args.naive_real_time,
                whole_budget=not args.no_budget,
            ),
            headroom=None if args.no_headroom else headroom_cases(),
            command=command,
        )
    if args.only == "alerts" or (args.only is None and not args.no_alerts):
        from bench.alert_storm import measure_alerts  # noqa: PLC0415 - it builds on this module

        report.alerts = measure_alerts(scenario)
    sys.stdout.write(render_text(report))
    if not args.no_docs and args.only is None:
        write_docs(report)
        progress(f"results written to {DOCS.relative_to(ROOT)}")
    if args.json:
        args.json.write_text(
            json.dumps([m.__dict__ | {"case": m.case.__dict__} for m in report.measurements], indent=1)
        )
    monitor_runs = [m for m in report.measurements if m.case.impl == "monitor"]
    monitor_runs += report.headroom.measurements if report.headroom else []
    alerts_wrong = any(not m.correct for m in report.alerts or [])
    return 1 if any(m.failed for m in monitor_runs) or alerts_wrong else 0
