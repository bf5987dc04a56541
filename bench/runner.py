"""One implementation under test, in a process of its own: ``python -m bench.runner CONFIG OUT``.

The process imports only what a Lambda would (the handler's modules, boto3, Powertools), never
the sandbox or moto, so its peak resident set size (``ru_maxrss``) is the monitor's own. CONFIG
is a JSON file: ``impl`` (``monitor`` or ``naive``), ``time_scale`` and ``scan_at`` (ISO). The
endpoints and settings come from the environment, as in Lambda. OUT receives one JSON object.

``monitor`` runs the Lambda handler's settings through the same steps as
:func:`quota_monitor.monitor.run_once` and the handler (scan, publish, then the records, written
to ``records.jsonl`` beside OUT as the handler prints them), with ``now`` fixed at ``scan_at`` so
that every key has the scenario's days of data, and with the rate limiter and backoff on a
clock running ``time_scale`` times faster than real time.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time (user + system) of this process so far: what a Lambda's share of a vCPU must cover."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_monitor(scale: float, scan_at: datetime, records_path: Path) -> dict[str, Any]:
    from quota_monitor import (  # noqa: PLC0415
        RunReport,
        apigateway_client,
        cloudwatch_client,
        guarded_api,
        handler,
        key_levels,
        metric_keys,
        publish_metrics,
        records,
        run_scan,
        write_records,
    )

    settings = handler.SETTINGS
    rss_imported = peak_rss_mb()
    cpu_imported = cpu_seconds()

    def clock() -> float:
        return time.monotonic() * scale

    def sleep(seconds: float) -> None:
        time.sleep(seconds / scale)

    api = guarded_api(
        apigateway_client(max_workers=settings.scan.max_workers), settings.scan, clock=clock, sleep=sleep
    )
    cloudwatch = cloudwatch_client()
    cpu_ready = cpu_seconds()
    started = time.perf_counter()
    result = run_scan(api, settings.scan, now=scan_at)
    scanned = time.perf_counter()
    cpu_scanned = cpu_seconds()
    levels = key_levels(result, settings.levels)
    chosen = metric_keys(settings, result, levels)
    published = publish_metrics(cloudwatch, settings, result, chosen=chosen)
    finished = time.perf_counter()
    cpu_published = cpu_seconds()
    report = RunReport(result=result, published=published, metric_keys=chosen, key_levels=levels)
    with records_path.open("w", encoding="utf-8") as sink:
        written = write_records(records(report, settings), sink.write)
    recorded = time.perf_counter()
    rss_peak = peak_rss_mb()
    cpu_recorded = cpu_seconds()
    return {
        "scan_seconds": (scanned - started) * scale,
        "publish_seconds": finished - scanned,
        "records_seconds": recorded - finished,
        "records": {
            "lines": written.records,
            "bytes": written.bytes,
            "keys_with_metrics": len(chosen.keys),
            "keys_over_cap": chosen.over_cap,
            "key_metrics": settings.key_metrics.describe(),
        },
        "cpu_seconds": {
            "import": cpu_imported,
            "clients": cpu_ready - cpu_imported,
            "scan": cpu_scanned - cpu_ready,
            "publish": cpu_published - cpu_scanned,
            "records": cpu_recorded - cpu_published,
        },
        "rss_imported_mb": rss_imported,
        "rss_peak_mb": rss_peak,
        "calls": dict(api.stats.calls),
        "throttles": api.stats.throttles,
        "retries": api.stats.retries,
        "failures": [failure.describe() for failure in result.failures],
        "metric_requests": published.requests,
        "metric_datapoints": published.datapoints,
        "settings": {
            "max_rps": settings.scan.max_rps,
            "burst": settings.scan.burst,
            "max_workers": settings.scan.max_workers,
            "page_size": settings.scan.page_size,
        },
        "keys": [[k.usage_plan_id, k.api_key_id, k.used, k.remaining] for k in result.keys],
    }


def run_naive(scale: float, scan_at: datetime) -> dict[str, Any]:
    import boto3  # noqa: PLC0415

    from bench.naive import naive_scan  # noqa: PLC0415

    rss_imported = peak_rss_mb()
    cpu_imported = cpu_seconds()
    client = boto3.client("apigateway")
    cpu_ready = cpu_seconds()
    started = time.perf_counter()
    result = naive_scan(client, scan_at.date())
    scanned = time.perf_counter()
    rss_peak = peak_rss_mb()
    return {
        "scan_seconds": (scanned - started) * scale,
        "cpu_seconds": {
            "import": cpu_imported,
            "clients": cpu_ready - cpu_imported,
            "scan": cpu_seconds() - cpu_ready,
            "publish": 0.0,
        },
        "rss_imported_mb": rss_imported,
        "rss_peak_mb": rss_peak,
        "failures": [f"usage plan {plan}, key {key}: {code}" for plan, key, code in result.skipped],
        "keys": result.keys,
    }


def main(argv: list[str] | None = None) -> int:
    config_path, out_path = argv or sys.argv[1:3]
    config = json.loads(Path(config_path).read_text())
    scale = float(config["time_scale"])
    scan_at = datetime.fromisoformat(config["scan_at"])
    records_path = Path(out_path).with_name("records.jsonl")
    try:
        if config["impl"] == "monitor":
            outcome = {"ok": True, **run_monitor(scale, scan_at, records_path)}
        else:
            outcome = {"ok": True, **run_naive(scale, scan_at)}
    except Exception as error:  # noqa: BLE001 - a run that crashes is a result: "runs failed"
        outcome = {
            "ok": False,
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
            "rss_peak_mb": peak_rss_mb(),
        }
    Path(out_path).write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
