"""``quota-monitor scan``: the monitor's scan from a laptop, with the default AWS credential chain.

For a person at a terminal (a table, most used first, and a progress bar on stderr) and for a
script (plain, JSON or CSV on stdout, filters, and ``--fail-above`` as a check with its own exit
code). What goes where: the keys on stdout; the progress bar (on a terminal only), the summary,
warnings and errors on stderr.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from quota_monitor import apigateway_client, cloudwatch_client, guarded_api, publish_metrics, run_scan
from quota_monitor_cli.attempts import AttemptReport
from quota_monitor_cli.common import (
    EXIT_CHECK,
    EXIT_CODES,
    EXIT_OK,
    EXIT_PARTIAL,
    UsageError,
    add_aws_arguments,
    add_scan_arguments,
    aws_errors,
    run_guarded,
    session,
    settings_from,
    stderr_is_terminal,
)
from quota_monitor_cli.filters import KeyFilter, add_filter_arguments, percent
from quota_monitor_cli.output import add_output_arguments, chosen_format, write_keys
from quota_monitor_cli.render import console, sort_keys, summary_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from quota_monitor import FailedAttempt, PlanScan, ScanResult, Settings

EXAMPLES = """\
examples:
  quota-monitor scan --top 20                       the 20 most used keys
  quota-monitor scan --plan gold --above 80         keys of plan gold (id or name) at 80% or more
  quota-monitor scan --period DAY --csv > day.csv   keys with a daily quota, as CSV
  quota-monitor scan --fail-above 90 --json -q      a check: exit 3 and those keys as JSON
"""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "scan",
        help="scan every usage plan and show each key's remaining quota",
        description="Scan every usage plan of the account and show each API key's quota use, "
        "most used first.",
        epilog=EXAMPLES + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_output_arguments(parser)
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no summary: only errors and warnings"
    )
    add_filter_arguments(parser)
    check = parser.add_argument_group("check")
    check.add_argument(
        "--fail-above",
        type=percent,
        metavar="P",
        help="exit 3 when a key (after the filters) is at or above P%%, printing only those keys; "
        "otherwise exit 0",
    )
    publishing = parser.add_argument_group("publish")
    publishing.add_argument(
        "--publish",
        action="store_true",
        help="also publish every key's metrics to CloudWatch (filters aside)",
    )
    publishing.add_argument("--namespace", help="CloudWatch namespace for --publish (METRIC_NAMESPACE)")
    add_scan_arguments(parser)
    add_aws_arguments(parser)
    parser.set_defaults(run=run_guarded(run))


def scan_with_progress(
    settings: Settings,
    apigateway: Any,
    *,
    show_progress: bool,
    err: Console | None = None,
    on_failed_attempt: Callable[[FailedAttempt], None] | None = None,
) -> ScanResult:
    api = guarded_api(apigateway, settings.scan, on_failed_attempt=on_failed_attempt)
    now = datetime.now(UTC)
    if not show_progress:
        return run_scan(api, settings.scan, now=now)
    columns = (TextColumn("scanning usage plans"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err or console(stderr=True), transient=True) as progress:
        task = progress.add_task("scan", total=None)

        def advance(scan: PlanScan, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return run_scan(api, settings.scan, now=now, on_plan=advance)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    fmt = chosen_format(args)
    key_filter = KeyFilter.from_args(args, at_least=args.fail_above)
    err = console(stderr=True)

    def say(line: str, style: str | None = None) -> None:
        err.print(line, style=style, markup=False, highlight=False, soft_wrap=True)

    attempts = AttemptReport(notify=say)
    with aws_errors():
        aws = session(args)
        apigateway = apigateway_client(aws, max_workers=settings.scan.max_workers)
        result = scan_with_progress(
            settings,
            apigateway,
            show_progress=stderr_is_terminal() and not args.quiet,
            err=err,
            on_failed_attempt=attempts,
        )
        # Without the list of usage plans there is nothing to show: only the error (and why).
        listed = not any(failure.resource == "usage-plans" for failure in result.failures)
        unknown = key_filter.unknown(result) if listed else []
        if unknown:
            raise UsageError("; ".join(unknown))
        # KEY_METRICS applies here as in the Lambda function; the filters do not.
        report = publish_metrics(cloudwatch_client(aws), settings, result) if args.publish else None
    keys = key_filter.apply(sort_keys(result.keys)) if listed else []
    if listed:
        write_keys(keys, fmt, console())
        if not args.quiet:
            say(summary_line(result, matched=len(keys) if key_filter.active else None), style="dim")
    publish_failed = False
    if report is not None:
        if not args.quiet:
            say(
                f"published {report.datapoints:,} data points in {report.requests:,} PutMetricData "
                f"requests to namespace {settings.namespace}"
            )
        if not report.complete:
            publish_failed = True
            say(f"error: metrics: {report.describe_failure()}")
    for mismatch in result.period_mismatches:
        say(f"warning: {mismatch.describe()}")
    for failure in result.failures:
        say(f"error: {attempts.describe(failure)}")
    partial = bool(result.failures) or publish_failed
    if args.fail_above is None or not listed:
        return EXIT_PARTIAL if partial else EXIT_OK
    if not args.quiet:
        say(check_line(len(keys), args.fail_above, partial=partial))
    return EXIT_CHECK if keys else EXIT_PARTIAL if partial else EXIT_OK


def check_line(found: int, threshold: float, *, partial: bool) -> str:
    if found:
        return f"check: {found:,} key{'s' if found != 1 else ''} at or above {threshold:g}% (exit 3)"
    if partial:
        return f"check: no key read is at or above {threshold:g}%, but not everything could be read (exit 1)"
    return f"check: no key at or above {threshold:g}%"
