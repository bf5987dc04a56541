"""One implementation under test, in a process of its own: ``python -m bench.runner CONFIG OUT``.

The process imports only what a Lambda would (the handler's modules, boto3, Powertools), never
the sandbox or moto, so its peak resident set size (``ru_maxrss``) is the monitor's own. CONFIG
is a JSON file: ``impl`` (``monitor``, ``alerts`` or ``naive``), ``time_scale`` and ``scan_at`` (ISO).
The endpoints and settings come from the environment, as in Lambda. OUT receives one JSON object.

``alerts`` is ``monitor`` with alerts configured: scan, then the alert step (DynamoDB state and SNS,
:func:`quota_monitor.run_alerts`), then publish, as :func:`quota_monitor.monitor.run_once` orders
them; each phase timed and its CPU counted, and every DynamoDB and SNS request counted by operation
(a TransactWriteItems also by its items).

``monitor`` runs the Lambda handler's settings through the same steps as
:func:`quota_monitor.monitor.run_once` and the handler (scan, publish, then the records, written
to ``records.jsonl`` beside OUT as the handler prints them), with ``now`` fixed at ``scan_at`` so
that every key has the scenario's days of data, and with the rate limiter and backoff on a
clock running ``time_scale`` times faster than real time.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quota_monitor import ApiGatewayCalls, Settings, Target

#: The monitor's own account in the benchmark (moto's and the sandbox's default).
ACCOUNT_ID = "123456789012"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time (user + system) of this process so far: what a Lambda's share of a vCPU must cover."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def scaled_api(settings: Settings, scale: float) -> ApiGatewayCalls:
    """The handler's rate-limited API Gateway calls, on a clock that runs ``scale`` times as fast."""
    from quota_monitor import Clocks, Invocation, apigateway_client, guarded_api  # noqa: PLC0415

    def clock() -> float:
        return time.monotonic() * scale

    def sleep(seconds: float) -> None:
        time.sleep(seconds / scale)

    run = Invocation.unbounded(clocks=Clocks(monotonic=clock, sleep=sleep))
    return guarded_api(apigateway_client(max_workers=settings.scan.max_workers), settings.scan, run)


def home_target() -> Target:
    """What the deployed handler scans: its own account (from the function's ARN) and region, so
    that records and messages carry accountId and region and weigh what they weigh in Lambda."""
    from quota_monitor import Target  # noqa: PLC0415

    return Target(ACCOUNT_ID, os.environ["AWS_REGION"])


def run_monitor(scale: float, scan_at: datetime, records_path: Path) -> dict[str, Any]:
    from quota_monitor import (  # noqa: PLC0415
        RunReport,
        cloudwatch_client,
        handler,
        key_levels,
        metric_keys,
        publish_metrics,
        records,
        scan_account,
        write_records,
    )

    settings = handler.SETTINGS
    rss_imported = peak_rss_mb()
    cpu_imported = cpu_seconds()

    api = scaled_api(settings, scale)
    cloudwatch = cloudwatch_client()
    cpu_ready = cpu_seconds()
    started = time.perf_counter()
    result = scan_account(api, now=scan_at, settings=settings.scan, target=home_target())
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


def count_requests(client: Any, counts: dict[str, int], seconds: dict[str, float]) -> None:
    """Count every request ``client`` sends, by operation (TransactWriteItems' items too), and the
    seconds spent waiting for each operation's answers."""
    started = threading.local()

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1
        if model.name == "TransactWriteItems":
            items = len(params.get("TransactItems", []))
            counts["TransactWriteItems items"] = counts.get("TransactWriteItems items", 0) + items
        started.at = time.perf_counter()

    def after(model: Any, **_: Any) -> None:
        seconds[model.name] = seconds.get(model.name, 0.0) + time.perf_counter() - started.at

    client.meta.events.register("before-parameter-build", before)
    client.meta.events.register("after-call", after)  # also for error answers; not for lost connections


def run_alerts_case(scale: float, scan_at: datetime) -> dict[str, Any]:
    from datetime import timedelta  # noqa: PLC0415

    from quota_monitor import (  # noqa: PLC0415
        AlertStateStore,
        client,
        cloudwatch_client,
        handler,
        publish_metrics,
        run_alerts,
        scan_account,
    )

    settings = handler.SETTINGS
    if settings.alerts is None:
        raise RuntimeError("the alerts case needs ALERT_TOPIC_ARN and ALERT_TABLE_NAME")
    cpu_imported = cpu_seconds()

    api = scaled_api(settings, scale)
    cloudwatch, sns, dynamodb = cloudwatch_client(), client("sns"), client("dynamodb")
    requests: dict[str, int] = {}
    waited: dict[str, float] = {}
    count_requests(sns, requests, waited)
    count_requests(dynamodb, requests, waited)
    cpu_ready = cpu_seconds()
    started = time.perf_counter()
    result = scan_account(api, now=scan_at, settings=settings.scan, target=home_target())
    scanned, cpu_scanned = time.perf_counter(), cpu_seconds()
    alerts = run_alerts(
        result,
        settings.alerts,
        store=AlertStateStore(dynamodb, settings.alerts.table_name),
        sns=sns,
        now=scan_at,
        claim_until=scan_at + timedelta(minutes=5),
        region=sns.meta.region_name,
    )
    alerted, cpu_alerted = time.perf_counter(), cpu_seconds()
    published = publish_metrics(cloudwatch, settings, result, alerts=alerts)
    finished, cpu_published = time.perf_counter(), cpu_seconds()
    return {
        "scan_seconds": (scanned - started) * scale,
        "alert_seconds": alerted - scanned,
        "publish_seconds": finished - alerted,
        "cpu_seconds": {
            "import": cpu_imported,
            "clients": cpu_ready - cpu_imported,
            "scan": cpu_scanned - cpu_ready,
            "alerts": cpu_alerted - cpu_scanned,
            "publish": cpu_published - cpu_alerted,
        },
        "rss_peak_mb": peak_rss_mb(),
        "keys_scanned": len(result.keys),
        "failures": [failure.describe() for failure in result.failures],
        "alerts": alerts.summary(),
        "state_errors": list(alerts.state_errors[:5]),
        "requests": requests,
        "request_seconds": waited,
        "metric_requests": published.requests,
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
        elif config["impl"] == "alerts":
            outcome = {"ok": True, **run_alerts_case(scale, scan_at)}
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
