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

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from quota_monitor import (
    AssumedRoles,
    Invocation,
    TargetAccess,
    client,
    cloudwatch_client,
    combined,
    is_configuration_error,
    publish_targets,
    scan_targets,
    target_clients,
    targets,
)
from quota_monitor_cli.attempts import AttemptReport
from quota_monitor_cli.common import (
    EXIT_CHECK,
    EXIT_CODES,
    EXIT_OK,
    EXIT_PARTIAL,
    UsageError,
    add_aws_arguments,
    add_scan_arguments,
    add_target_arguments,
    aws_errors,
    run_guarded,
    session,
    settings_from,
    stderr_is_terminal,
)
from quota_monitor_cli.filters import KeyFilter, add_filter_arguments, percent
from quota_monitor_cli.output import add_output_arguments, chosen_format, write_keys
from quota_monitor_cli.render import ACCOUNT_COLUMNS, COLUMNS, console, sort_keys, summary_line

if TYPE_CHECKING:
    from collections.abc import Callable

    import boto3
    from rich.console import Console

    from quota_monitor import FailedAttempt, FleetReport, PlanScan, Settings, Target, TargetScan

EXAMPLES = """\
examples:
  quota-monitor scan --top 20                       the 20 most used keys
  quota-monitor scan --plan gold --above 80         keys of plan gold (id or name) at 80% or more
  quota-monitor scan --period DAY --csv > day.csv   keys with a daily quota, as CSV
  quota-monitor scan --fail-above 90 --json -q      a check: exit 3 and those keys as JSON
  quota-monitor scan --regions us-east-1,eu-west-1 --role-arn arn:aws:iam::111111111111:role/QuotaReader
                                                    two regions of this account and of another
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
    add_target_arguments(parser)
    add_scan_arguments(parser)
    add_aws_arguments(parser)
    parser.set_defaults(run=run_guarded(run))


def scan_all(
    settings: Settings,
    aws: boto3.Session,
    *,
    show_progress: bool,
    err: Console | None = None,
    on_failed_attempt: Callable[[FailedAttempt], None] | None = None,
    run: Invocation | None = None,
) -> list[TargetScan]:
    """Every target (``--regions``, ``--role-arn``, or REGIONS and SPOKE_ROLE_ARNS) scanned at once,
    with one progress bar over all of them; ``run``: its clocks (the demo's time travel)."""
    region = aws.region_name
    if region is None:
        raise NoRegionError  # aws_errors() says what to do
    home_account = caller_account(aws)
    found = targets(
        home_account, region, settings.targets.regions_for(region), settings.targets.spoke_role_arns
    )
    assumed = AssumedRoles(client("sts", aws)) if settings.targets.spoke_role_arns else None
    accesses = [
        TargetAccess(
            target,
            base=aws,
            make=lambda session, where: target_clients(session, where, max_workers=settings.scan.max_workers),
            assumed=assumed,
        )
        for target in found
    ]
    run = run or Invocation.unbounded()
    if not show_progress:
        return scan_targets(settings, accesses, run, on_failed_attempt=on_failed_attempt)
    label = "scanning usage plans" if len(found) == 1 else f"scanning usage plans in {len(found)} targets"
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err or console(stderr=True), transient=True) as progress:
        task = progress.add_task("scan", total=None)
        counts: dict[Target, tuple[int, int]] = {}

        def advance(target: Target, scan: PlanScan, done: int, total: int) -> None:
            counts[target] = (done, total)
            progress.update(
                task, completed=sum(d for d, _ in counts.values()), total=sum(t for _, t in counts.values())
            )

        return scan_targets(settings, accesses, run, on_plan=advance, on_failed_attempt=on_failed_attempt)


def caller_account(aws: boto3.Session) -> str | None:
    """The account of the credentials (STS GetCallerIdentity, which needs no permission), for the
    ``accountId`` of each row; None when STS cannot be reached or refuses: the scan then says so, and
    what API Gateway answers says the rest."""
    sts = aws.client(
        "sts",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=10
        ),
    )
    try:
        return str(sts.get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as error:
        if is_configuration_error(error):
            raise
        return None


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
        scans = scan_all(
            settings,
            aws,
            show_progress=stderr_is_terminal() and not args.quiet,
            err=err,
            on_failed_attempt=attempts,
        )
        several = len(scans) > 1
        result = combined([scan.result for scan in scans], datetime.now(UTC))
        # Without any list of usage plans there is nothing to show: only the errors (and why).
        listed = not all(
            any(failure.resource in ("usage-plans", "target") for failure in scan.result.failures)
            for scan in scans
        )
        unknown = key_filter.unknown(result) if listed else []
        if unknown:
            raise UsageError("; ".join(unknown))
        # KEY_METRICS applies here as in the Lambda function; the filters do not. Each target's
        # metrics go to its own account and region, the health metrics to the credentials' region.
        report = (
            publish_targets(
                settings, scans, now=result.scanned_at, health_cloudwatch=lambda: cloudwatch_client(aws)
            )
            if args.publish
            else None
        )
    if report is not None:
        result = combined(list(report.results), result.scanned_at)
    keys = key_filter.apply(sort_keys(result.keys)) if listed else []
    if listed:
        write_keys(keys, fmt, console(), columns=ACCOUNT_COLUMNS + COLUMNS if several else COLUMNS)
        if not args.quiet:
            say(
                summary_line(result, matched=len(keys) if key_filter.active else None, targets=len(scans)),
                style="dim",
            )
    publish_failed = report is not None and not published_ok(report, settings, say=say, quiet=args.quiet)
    for mismatch in result.period_mismatches:
        say(f"warning: {mismatch.describe()}")
    for failure in result.failures:
        say(f"error: {attempts.describe(failure, with_target=several)}")
    if listed and any(scan.target.account_id is None for scan in scans):
        say("warning: STS did not say whose these credentials are (GetCallerIdentity): accountId is null")
    partial = bool(result.failures) or publish_failed
    if args.fail_above is None or not listed:
        return EXIT_PARTIAL if partial else EXIT_OK
    if not args.quiet:
        say(check_line(len(keys), args.fail_above, partial=partial))
    return EXIT_CHECK if keys else EXIT_PARTIAL if partial else EXIT_OK


def published_ok(report: FleetReport, settings: Settings, *, say: Callable[[str], None], quiet: bool) -> bool:
    """Say what ``--publish`` published; False when metrics of the credentials' own account and
    region failed (another target's failure is a failure of that target, said with the others)."""
    published = [run.published for run in report.runs if run.published is not None]
    if report.health is not None:
        published.append(report.health)
    if not quiet:
        say(
            f"published {sum(p.datapoints for p in published):,} data points in "
            f"{sum(p.requests for p in published):,} PutMetricData requests to namespace {settings.namespace}"
        )
    own = [run.publish_error for run in report.runs if not report.several or _home(run.result.target)]
    failed = [error for error in [*own, report.health_error] if error is not None]
    for error in failed:
        say(f"error: metrics: {error}")
    return not failed


def _home(target: Target | None) -> bool:
    return target is None or target.home


def check_line(found: int, threshold: float, *, partial: bool) -> str:
    if found:
        return f"check: {found:,} key{'s' if found != 1 else ''} at or above {threshold:g}% (exit 3)"
    if partial:
        return f"check: no key read is at or above {threshold:g}%, but not everything could be read (exit 1)"
    return f"check: no key at or above {threshold:g}%"
