"""``python -m bench.archive``: what the usage archive costs a full run at 10,000 keys, and whether
it holds exactly what the run logged.

The monitor's own handler (``quota_monitor.handler``, imported afresh each run as at a cold start)
runs against the sandbox (the scale account: 300 plans, 10,000 keys, 50 to 150 ms a call, the
account's token bucket) and moto, both in the sandbox host's process,
with default settings, alternately without and with ``ARCHIVE_BUCKET``, after one warm-up run that
sends the first alerts. For each archived run it reads the run's objects back from S3 and checks
them against the records the run wrote to its log: the same lines, byte for byte, in the same order,
and every key's record exactly once. The wall time is the handler's, from call to return.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bench.host import child_env, write_section

if TYPE_CHECKING:
    from collections.abc import Iterator

START, END = "<!-- bench:archive:start -->", "<!-- bench:archive:end -->"
BUCKET = "bench-quota-archive"
#: The target: the archive's run at most 5% slower than the same run without it.
SLOWER_AT_MOST = 0.05


@dataclass(frozen=True)
class Shape:
    keys: int = 10_000
    plans: int = 300
    big_plans: int = 2
    big_plan_keys: int = 1_234
    #: Measured runs of each kind (without, with the archive), alternating.
    runs: int = 3
    latency: tuple[float, float] = (0.05, 0.15)


@dataclass
class ArchivedRun:
    seconds: float
    objects: int
    object_bytes: int
    #: Records the run logged, and whether the archive holds exactly those lines, in order.
    logged: int
    lines: int
    identical: bool
    #: Key records in the archive, and keys whose record is there other than once.
    key_records: int
    keys_not_once: int


@dataclass
class Outcome:
    shape: Shape
    plain_seconds: list[float] = field(default_factory=list)
    archived: list[ArchivedRun] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def slower(self) -> float:
        plain = statistics.median(self.plain_seconds)
        return statistics.median(run.seconds for run in self.archived) / plain - 1


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _invoke(env: dict[str, str]) -> tuple[float, list[str], dict[str, Any]]:
    """One run of the handler with ``env``: its wall time, the records it logged, its summary."""
    from apigw_sandbox.local import invoke_handler  # noqa: PLC0415 - after the environment is set

    out = io.StringIO()
    with _environment(env), contextlib.redirect_stdout(out):
        started = time.perf_counter()
        summary = invoke_handler("quota_monitor.handler", {})
        seconds = time.perf_counter() - started
    logged = [line for line in out.getvalue().splitlines() if line.startswith('{"record":')]
    return seconds, logged, summary


def _read_back(s3: Any, known: set[str]) -> tuple[list[str], int, int]:
    """The lines of the objects written since ``known`` (added to it), their count and bytes."""
    from quota_monitor import ARCHIVE_PREFIX  # noqa: PLC0415

    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=ARCHIVE_PREFIX)
    new = sorted(
        item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"] not in known
    )
    known.update(new)
    lines: list[str] = []
    size = 0
    for key in new:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        size += len(body)
        lines += gzip.decompress(body).decode("utf-8").splitlines()
    return lines, len(new), size


def _keys_not_once(lines: list[str], expected: int) -> tuple[int, int]:
    from quota_monitor import API_KEY_ID, KEY_RECORD, RECORD, USAGE_PLAN_ID  # noqa: PLC0415

    seen: dict[tuple[str, str], int] = {}
    for line in lines:
        record = json.loads(line)
        if record.get(RECORD) == KEY_RECORD:
            pair = (record[USAGE_PLAN_ID], record[API_KEY_ID])
            seen[pair] = seen.get(pair, 0) + 1
    not_once = sum(1 for count in seen.values() if count != 1) + max(expected - len(seen), 0)
    return sum(seen.values()), not_once


def measure(shape: Shape, progress: bool = False) -> Outcome:
    """The sandbox host (:mod:`bench.sandbox_host`: the account seeded to today, moto beside it) in a
    process of its own; the handler in this one."""
    from bench.run import SandboxHost  # noqa: PLC0415
    from bench.scenario import Scenario  # noqa: PLC0415

    scenario = Scenario(
        plans=shape.plans,
        keys=shape.keys,
        big_plans=shape.big_plans,
        big_plan_keys=shape.big_plan_keys,
        scan_date=datetime.now(UTC).date(),
        latency=shape.latency,
    )
    outcome = Outcome(shape)
    with SandboxHost(scenario) as host:
        host.ask(
            op="configure",
            time_scale=1.0,
            latency=list(scenario.latency),
            account_rps=scenario.account_rps,
            account_burst=scenario.account_burst,
        )
        made = host.ask(op="alert_resources", alerted_in=None)
        moto = str(host.ready["cloudwatch"])
        base = child_env(
            {
                "AWS_ENDPOINT_URL": moto,
                "AWS_ENDPOINT_URL_API_GATEWAY": str(host.ready["apigateway"]),
                "ALERT_TOPIC_ARN": made["topic"],
                "ALERT_TABLE_NAME": made["table"],
            }
        )
        with _environment(base):
            from quota_monitor import client  # noqa: PLC0415

            s3 = client("s3")
            s3.create_bucket(Bucket=BUCKET)
        plain, archived = {**base, "ARCHIVE_BUCKET": ""}, {**base, "ARCHIVE_BUCKET": BUCKET}
        known: set[str] = set()
        _invoke(plain)  # the first run's alerts, once
        for run in range(shape.runs):
            seconds, _, summary = _invoke(plain)
            outcome.plain_seconds.append(seconds)
            seconds, logged, summary = _invoke(archived)
            lines, objects, size = _read_back(s3, known)
            key_records, not_once = _keys_not_once(lines, shape.keys)
            outcome.archived.append(
                ArchivedRun(
                    seconds=seconds,
                    objects=objects,
                    object_bytes=size,
                    logged=len(logged),
                    lines=len(lines),
                    identical=lines == logged,
                    key_records=key_records,
                    keys_not_once=not_once,
                )
            )
            outcome.summaries.append(summary)
            if progress:
                sys.stderr.write(
                    f"run {run + 1}: without {outcome.plain_seconds[-1]:.1f} s, with {seconds:.1f} s\n"
                )
    return outcome


def report(outcome: Outcome) -> tuple[str, bool]:
    shape, runs = outcome.shape, outcome.archived
    exact = all(run.identical and run.keys_not_once == 0 and run.key_records == shape.keys for run in runs)
    fast_enough = outcome.slower <= SLOWER_AT_MOST
    mark = {True: "✅", False: "❌"}
    sizes = sorted({run.object_bytes for run in runs})
    rows = [
        ("runs measured, each kind (alternating, after a warm-up run)", str(len(runs)), ""),
        (
            "handler wall time without the archive, s (each run)",
            ", ".join(f"{s:.1f}" for s in outcome.plain_seconds),
            "",
        ),
        ("handler wall time with the archive, s (each run)", ", ".join(f"{r.seconds:.1f}" for r in runs), ""),
        ("median with ÷ median without, minus 1", f"{outcome.slower:+.1%} {mark[fast_enough]}", "≤ +5%"),
        ("objects a run (one target)", ", ".join(sorted({str(r.objects) for r in runs})), "1"),
        (
            "records logged / archived (each run)",
            ", ".join(f"{r.logged:,} / {r.lines:,}" for r in runs),
            "equal",
        ),
        (
            "archive line for line the log's records",
            f"{sum(r.identical for r in runs)} of {len(runs)} runs {mark[all(r.identical for r in runs)]}",
            "every run",
        ),
        (
            "keys whose record is in a run's archive other than once",
            f"{sum(r.keys_not_once for r in runs)} {mark[exact]}",
            "0",
        ),
        ("object size, bytes (gzip)", ", ".join(f"{size:,}" for size in sizes), ""),
    ]
    table = "\n".join(
        ["| | measured | target |", "|---|---:|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]
    )
    machine = f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the end"
    text = (
        f"`python -m bench.archive` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({machine}): the handler "
        f"with default settings over {shape.keys:,} keys in {shape.plans} plans, "
        f"{shape.latency[0] * 1000:.0f} to {shape.latency[1] * 1000:.0f} ms a call; the sandbox and "
        "moto in a process of their own.\n\n" + table
    )
    return text, exact and fast_enough


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__)
    parser.add_argument("--keys", type=int, default=Shape.keys)
    parser.add_argument("--plans", type=int, default=Shape.plans)
    parser.add_argument("--runs", type=int, default=Shape.runs)
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--json", type=argparse.FileType("w"), help="also write the raw outcome here")
    args = parser.parse_args(argv)
    outcome = measure(Shape(keys=args.keys, plans=args.plans, runs=args.runs), progress=True)
    text, ok = report(outcome)
    print(text)
    if args.json is not None:
        json.dump(asdict(outcome), args.json)
    if not args.no_docs:
        write_section(START, END, text, heading="The usage archive")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
