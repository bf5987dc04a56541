"""``quota-monitor scan``: the monitor's scan from a laptop, with the default AWS credential chain."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from quota_monitor import apigateway_client, cloudwatch_client, guarded_api, publish_metrics, run_scan
from quota_monitor_cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    add_aws_arguments,
    add_scan_arguments,
    aws_errors,
    run_guarded,
    session,
    settings_from,
    stderr_is_terminal,
)
from quota_monitor_cli.render import console, failure_lines, scan_table, sort_keys, summary_line

if TYPE_CHECKING:
    import argparse

    from quota_monitor import PlanScan, ScanResult, Settings


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "scan",
        help="scan every usage plan and show each key's remaining quota",
        description="Scan every usage plan of the account and show each API key's quota use, "
        "most used first.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array, one object per key")
    parser.add_argument("--publish", action="store_true", help="also publish the metrics to CloudWatch")
    parser.add_argument("--namespace", help="CloudWatch namespace for --publish (METRIC_NAMESPACE)")
    add_scan_arguments(parser)
    add_aws_arguments(parser)
    parser.set_defaults(run=run_guarded(run))


def scan_with_progress(settings: Settings, apigateway: Any, *, show_progress: bool) -> ScanResult:
    api = guarded_api(apigateway, settings.scan)
    now = datetime.now(UTC)
    if not show_progress:
        return run_scan(api, settings.scan, now=now)
    columns = (TextColumn("scanning usage plans"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("scan", total=None)

        def advance(scan: PlanScan, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return run_scan(api, settings.scan, now=now, on_plan=advance)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with aws_errors():
        aws = session(args)
        apigateway = apigateway_client(aws, max_workers=settings.scan.max_workers)
        result = scan_with_progress(settings, apigateway, show_progress=stderr_is_terminal())
        if args.publish:
            # KEY_METRICS applies here as in the Lambda function.
            report = publish_metrics(cloudwatch_client(aws), settings, result)
    keys = sort_keys(result.keys)
    if args.json:
        json.dump([key.as_json() for key in keys], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        console().print(scan_table(keys))
    console(stderr=True).print(summary_line(result), style="dim", highlight=False)
    publish_failed = False
    if args.publish:
        print(
            f"published {report.datapoints:,} data points in {report.requests:,} PutMetricData requests "
            f"to namespace {settings.namespace}",
            file=sys.stderr,
        )
        if not report.complete:
            publish_failed = True
            print(f"error: metrics: {report.describe_failure()}", file=sys.stderr)
    for mismatch in result.period_mismatches:
        print(f"warning: {mismatch.describe()}", file=sys.stderr)
    for line in failure_lines(result.failures):
        print(line, file=sys.stderr)
    return EXIT_PARTIAL if result.failures or publish_failed else EXIT_OK
