"""``python -m bench.fleet`` (part of ``make bench``): several regions of 10,000 keys at once.

Issue 12's targets: three regions of 10,000 keys each take no more than 1.2 times the wall time of
the largest one alone; the API calls stay at the minimum for each target; peak memory for 30,000
keys; and from these numbers, the largest fleet a run reads within the default Lambda timeout.

How: a host process (:func:`serve`) seeds the benchmark's account (:mod:`bench.scenario`) in each
region, each one behind its own account-wide token bucket (10 a second, burst 40) and 50 to 150 ms
of latency, as API Gateway keeps an account's regions apart, and moto for CloudWatch. A runner
process (:func:`run_monitor`), importing only what the Lambda function imports, runs the handler's
steps over ``REGIONS`` in real time: every target scanned at once, each target's metrics published,
the records written. Calls are counted by the sandbox, per target; memory is the runner's peak
resident set size; CPU its user and system time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.host import ROOT, HostProcess, child_env, reply, serve_lines, unknown, write_section
from bench.scenario import AccountShape, Scenario, floor_seconds, minimum_calls

START, END = "<!-- bench:fleet:start -->", "<!-- bench:fleet:end -->"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
#: The monitor's own account in the benchmark (the sandbox's and moto's default).
ACCOUNT = "123456789012"
#: Targets to meet.
MAX_FLEET_RATIO = 1.2
#: The function's defaults (infra/settings.py): memory, and the timeout less the reserve kept for
#: publishing (quota_monitor.handler.reserve_for).
LAMBDA_MB = 256
LAMBDA_MB_PER_VCPU = 1769
TIMEOUT_SECONDS = 300
RESERVE_SECONDS = 60


# -- the host ---------------------------------------------------------------------------------------
def serve(regions: list[str], scenario: Scenario) -> int:
    """Seed each region, serve, print the URLs, then answer ``stats`` and ``quit`` lines on stdin."""
    from apigw_sandbox.account import SandboxAccount  # noqa: PLC0415
    from apigw_sandbox.seed import seed_scale_account  # noqa: PLC0415
    from apigw_sandbox.server import AccountThrottle, SandboxServer  # noqa: PLC0415
    from bench.sandbox_host import MotoServer  # noqa: PLC0415

    scan_at = scenario.scan_at
    started = time.monotonic()
    accounts = {}
    for n, region in enumerate(regions):
        account = SandboxAccount(clock=lambda: scan_at, seed=n)
        seed_scale_account(
            account,
            plans=scenario.plans,
            keys=scenario.keys,
            big_plans=scenario.big_plans,
            big_plan_keys=scenario.big_plan_keys,
            history_days=scenario.scan_date.day - 1,
        )
        accounts[region] = account
    sandbox = SandboxServer(accounts[regions[0]], latency=scenario.latency)
    for region, account in accounts.items():
        sandbox.add_account(
            account,
            region=region,
            account_id=ACCOUNT,
            throttle=AccountThrottle(scenario.account_rps, scenario.account_burst),
        )
    moto = MotoServer()
    sandbox.start()
    moto.start()
    reply(
        {
            "ready": True,
            "apigateway": sandbox.url,
            "cloudwatch": moto.url,
            "seconds_to_seed": time.monotonic() - started,
            "keys_per_plan": [len(plan.key_ids) for plan in accounts[regions[0]].plans.values()],
            "api_keys": len(accounts[regions[0]].keys),
        }
    )

    def answer(command: dict[str, Any]) -> dict[str, Any]:
        if command.get("op") == "reset":
            sandbox.reset_counters()
            moto.reset()
            return {"ok": True}
        if command.get("op") == "stats":
            calls: dict[str, dict[str, int]] = {}
            for (_account, region, operation), count in sandbox.calls_by_target.items():
                calls.setdefault(region, {})[operation] = count
            return {"calls": calls, "throttled": sandbox.throttled}
        return unknown(command)

    try:
        serve_lines(answer)
    finally:
        sandbox.stop()
        moto.stop()
    return 0


# -- the runner ----------------------------------------------------------------------------------------
def run_monitor(out: Path, scan_at_iso: str) -> int:
    """The handler's steps over REGIONS (the environment's), in real time; one JSON object to ``out``."""
    from datetime import datetime  # noqa: PLC0415

    import boto3  # noqa: PLC0415

    from quota_monitor import (  # noqa: PLC0415
        Clocks,
        Invocation,
        TargetAccess,
        cloudwatch_client,
        handler,
        publish_targets,
        records,
        scan_targets,
        target_clients,
        targets,
        write_records,
    )

    settings = handler.SETTINGS
    scan_at = datetime.fromisoformat(scan_at_iso)
    rss_imported = _peak_rss_mb()
    session = boto3.Session()
    found = targets(ACCOUNT, "us-east-1", settings.targets.regions_for("us-east-1"), ())
    accesses = [
        TargetAccess(
            target,
            base=session,
            make=lambda base, region: target_clients(base, region, max_workers=settings.scan.max_workers),
        )
        for target in found
    ]
    cpu_ready = _cpu_seconds()
    started = time.perf_counter()
    scans = scan_targets(settings, accesses, Invocation.unbounded(clocks=Clocks(wall=scan_at.timestamp)))
    scanned = time.perf_counter()
    fleet = publish_targets(
        settings, scans, now=scan_at, health_cloudwatch=lambda: cloudwatch_client(region="us-east-1")
    )
    published = time.perf_counter()
    with out.with_suffix(".records").open("w", encoding="utf-8") as sink:
        lines = (line for run in fleet.runs for line in records(run, settings))
        written = write_records(lines, sink.write)
    finished = time.perf_counter()
    outcome = {
        "ok": True,
        "targets": len(found),
        "keys": sum(len(run.result.keys) for run in fleet.runs),
        "failures": [failure.describe(with_target=True) for failure in fleet.failures],
        "scan_seconds": scanned - started,
        "target_seconds": {
            run.result.target.region: run.result.stats.duration_seconds
            for run in fleet.runs
            if run.result.target
        },
        "publish_seconds": published - scanned,
        "records_seconds": finished - published,
        "wall_seconds": finished - started,
        "records": written.records,
        "record_bytes": written.bytes,
        "cpu_seconds": _cpu_seconds() - cpu_ready,
        "rss_imported_mb": rss_imported,
        "rss_peak_mb": _peak_rss_mb(),
        "metrics_published": all(run.publish_error is None for run in fleet.runs),
    }
    out.write_text(json.dumps(outcome))
    return 0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the driver -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FleetRun:
    regions: tuple[str, ...]
    outcome: dict[str, Any]
    calls: dict[str, dict[str, int]]
    minimum: dict[str, int]
    throttled: int

    @property
    def calls_at_minimum(self) -> bool:
        return all(self.calls.get(region) == self.minimum for region in self.regions)


def _child_env(host: dict[str, Any], regions: tuple[str, ...]) -> dict[str, str]:
    passed = {name: os.environ[name] for name in ("APIGATEWAY_MAX_CONCURRENCY",) if name in os.environ}
    return child_env(
        {
            "AWS_ENDPOINT_URL_API_GATEWAY": str(host["apigateway"]),
            "AWS_ENDPOINT_URL_CLOUDWATCH": str(host["cloudwatch"]),
            "REGIONS": ",".join(regions),
            **passed,
        }
    )


def measure(regions: tuple[str, ...], scenario: Scenario) -> tuple[list[FleetRun], dict[str, Any]]:
    """One region alone, then every region at once, against one host."""
    sizes = ["--keys", str(scenario.keys), "--plans", str(scenario.plans)]
    host_process = HostProcess(
        "bench.fleet",
        "--serve",
        ",".join(regions),
        *sizes,
        env=_child_env({"apigateway": "", "cloudwatch": ""}, regions),
    )
    host = host_process.ready
    shape = AccountShape(
        plans=len(host["keys_per_plan"]),
        api_keys=int(host["api_keys"]),
        keys_per_plan=tuple(host["keys_per_plan"]),
    )
    runs = []
    try:
        for chosen in (regions[:1], regions):
            host_process.ask(op="reset")
            with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
                out = Path(folder, "out.json")
                subprocess.run(  # noqa: S603 - our own module, no shell
                    [sys.executable, "-m", "bench.fleet", "--run", str(out), scenario.scan_at.isoformat()],
                    cwd=ROOT,
                    env=_child_env(host, chosen),
                    check=True,
                    timeout=3600,
                )
                outcome = json.loads(out.read_text())
            stats = host_process.ask(op="stats")
            runs.append(
                FleetRun(chosen, outcome, stats["calls"], minimum_calls(shape), int(stats["throttled"]))
            )
    finally:
        host_process.close(timeout=60)
    return runs, {"seconds_to_seed": host["seconds_to_seed"], "shape": shape}


def supported_keys(cpu_seconds: float, keys: int) -> int:
    """The most keys a run reads within the default timeout and memory: the CPU a key costs (measured
    here on a whole core), at the function's share of a vCPU, in the time the timeout leaves before
    the reserve. The CPU work overlaps the targets' API waits, which run side by side: a target's API
    floor (64 s at 10,000 keys) is the other bound, and it does not grow with the number of targets."""
    share = LAMBDA_MB / LAMBDA_MB_PER_VCPU
    room = TIMEOUT_SECONDS - RESERVE_SECONDS
    return int(room * share / (cpu_seconds / keys))


def report(runs: list[FleetRun], scenario: Scenario, extra: dict[str, Any]) -> tuple[str, bool]:
    alone, fleet = runs
    ratio = fleet.outcome["wall_seconds"] / alone.outcome["wall_seconds"]
    floor = floor_seconds(sum(alone.minimum.values()), 5.0, 5)
    keys = fleet.outcome["keys"]
    supported = supported_keys(fleet.outcome["cpu_seconds"], keys)
    ok = (
        alone.outcome["ok"]
        and fleet.outcome["ok"]
        and not fleet.outcome["failures"]
        and ratio <= MAX_FLEET_RATIO
        and fleet.calls_at_minimum
        and alone.calls_at_minimum
    )

    def mark(good: bool) -> str:
        return "✅" if good else "❌"

    lines = [
        "Generated by `make bench` (`python -m bench.fleet`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the end.",
        "",
        f"Each region: {scenario.plans} usage plans, {scenario.keys:,} API keys, 31 days a key, latency "
        f"{scenario.latency[0] * 1000:.0f}-{scenario.latency[1] * 1000:.0f} ms, its own account bucket "
        f"({scenario.account_rps:g}/s, burst {scenario.account_burst}); the monitor at its defaults "
        f"(5 calls a second a target, burst 5). Seeding took {extra['seconds_to_seed']:.1f} s.",
        "",
        f"| | {', '.join(alone.regions)} alone | {', '.join(fleet.regions)} at once | target |",
        "|---|---:|---:|---|",
        f"| keys read | {alone.outcome['keys']:,} | {keys:,} | |",
        f"| wall time of the run, s (scan, publish, records) | {alone.outcome['wall_seconds']:.1f} | "
        f"{fleet.outcome['wall_seconds']:.1f} | |",
        f"| ÷ the largest region alone | 1.00 | {ratio:.2f} {mark(ratio <= MAX_FLEET_RATIO)} "
        f"| ≤ {MAX_FLEET_RATIO} |",
        f"| each target's scan, s (floor {floor:.1f}) | "
        + " / ".join(f"{s:.1f}" for s in alone.outcome["target_seconds"].values())
        + " | "
        + " / ".join(f"{s:.1f}" for s in fleet.outcome["target_seconds"].values())
        + " | |",
        f"| API calls of each target = the minimum ({sum(alone.minimum.values())}) | "
        f"{mark(alone.calls_at_minimum)} | {mark(fleet.calls_at_minimum)} | equal |",
        f"| 429s sent by the sandbox | {alone.throttled} | {fleet.throttled} | |",
        f"| failures | {len(alone.outcome['failures'])} | {len(fleet.outcome['failures'])} | 0 |",
        f"| peak RSS, MiB | {alone.outcome['rss_peak_mb']:.1f} | {fleet.outcome['rss_peak_mb']:.1f} "
        f"{mark(fleet.outcome['rss_peak_mb'] < 128)} | < 128 |",
        f"| CPU seconds (scan, publish, records) | {alone.outcome['cpu_seconds']:.2f} | "
        f"{fleet.outcome['cpu_seconds']:.2f} | |",
        f"| records written, bytes | {alone.outcome['record_bytes']:,} | "
        f"{fleet.outcome['record_bytes']:,} | |",
        "",
        f"- The largest fleet a run reads at the default 256 MB and 300 s (240 s before the reserve): "
        f"about {supported:,} keys in all ({fleet.outcome['cpu_seconds'] / keys * 1000:.2f} ms of CPU a "
        f"key measured here, at 256 MB's {LAMBDA_MB / LAMBDA_MB_PER_VCPU:.1%} of a vCPU), with no more "
        "than 10,000 keys in each target (AWS's limit), each target's API floor "
        f"({floor:.0f} s at 5 calls a second) running beside the others.",
    ]
    return "\n".join(lines), bool(ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=int, default=Scenario.keys, help="keys in each region")
    parser.add_argument("--plans", type=int, default=Scenario.plans, help="usage plans in each region")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    scenario = Scenario(
        plans=args.plans,
        keys=args.keys,
        big_plans=min(2, args.plans),
        big_plan_keys=min(1_234, args.keys // 4),
    )
    if args.serve:
        return serve(args.serve.split(","), scenario)
    if args.run:
        return run_monitor(Path(args.run[0]), args.run[1])
    runs, extra = measure(REGIONS, scenario)
    text, ok = report(runs, scenario, extra)
    print(text)
    if not args.no_docs:
        write_section(START, END, text, heading="Every region at once")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
