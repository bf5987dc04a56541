"""``quota-monitor usage``: GetUsage for one plan, every page, instead of ``aws apigateway get-usage``.

The AWS CLI prints only the first page of keys for GetUsage and no NextToken (its paginator
merges lists, and GetUsage's result is a map; docs/aws-behaviour.md#getusage-and-its-paginator). This command
walks every page, honours ``--max-items``, ``--page-size`` and ``--starting-token`` as the AWS CLI documents
them, and prints the NextToken when there is more.

Exit codes: 0 printed; 1 the service refused, could not be reached, or answered something
unreadable (nothing is printed on stdout then); 2 bad arguments, a token that is not for this
request, or missing credentials or region.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from datetime import date, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor import (
    MAX_PAGE_SIZE,
    InvalidStartingToken,
    MalformedResponse,
    UsageDataError,
    UsagePages,
    UsagePaginationError,
    UsageResult,
    apigateway_client,
    describe_error,
    guarded_api,
    is_configuration_error,
    paginate_usage,
    parse_daily_usage,
)
from quota_monitor_cli.attempts import AttemptReport, gave_up_after
from quota_monitor_cli.common import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_PARTIAL,
    UsageError,
    add_aws_arguments,
    add_max_attempts_argument,
    aws_errors,
    run_guarded,
    session,
    settings_from,
    whole_number,
)


def iso_date(text: str) -> date:
    # Python 3.11's date.fromisoformat also takes ISO week dates such as 2026-W01-1.
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "usage",
        help="daily [used, remaining] per key of one usage plan, every page",
        description="GetUsage for one usage plan, every page merged: daily [used, remaining] per API key.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--plan", required=True, metavar="ID", help="usage plan id")
    parser.add_argument("--start", required=True, type=iso_date, metavar="YYYY-MM-DD", help="first day (UTC)")
    parser.add_argument(
        "--end", required=True, type=iso_date, metavar="YYYY-MM-DD", help="last day (UTC), included"
    )
    parser.add_argument("--key", metavar="ID", help="only this API key")
    parser.add_argument(
        "--max-items", type=whole_number(1), metavar="N", help="at most N keys; prints a NextToken"
    )
    parser.add_argument(
        "--page-size",
        type=whole_number(1, MAX_PAGE_SIZE),
        metavar="N",
        help=f"keys a GetUsage call, 1-{MAX_PAGE_SIZE} (default {MAX_PAGE_SIZE})",
    )
    parser.add_argument("--starting-token", metavar="T", help="the NextToken of an earlier call, to resume")
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_const", const="json", dest="format", help="JSON (the default)"
    )
    output.add_argument(
        "--csv", action="store_const", const="csv", dest="format", help="CSV, a row per key and day"
    )
    add_max_attempts_argument(parser)
    add_aws_arguments(parser)
    parser.set_defaults(run=run_guarded(run), format="json")


def check_daily_usage(result: UsageResult, start: date, end: date) -> None:
    """Every key: one ``[used, remaining]`` a day of the range, ``used`` a whole number >= 0.

    ``remaining`` is printed as the API gives it (botocore parses it as a long, or null): what
    AWS puts there for a plan without a quota is unconfirmed
    (docs/aws-behaviour.md#getusage-and-its-paginator).
    """
    plan_id = result.get("usagePlanId", "?")
    days = (end - start).days + 1
    for key_id, daily in result.get("items", {}).items():
        parse_daily_usage(
            daily, expected_days=days, has_quota=False, usage_plan_id=plan_id, api_key_id=key_id
        )


def write_json(result: UsageResult) -> None:
    """The API's shape, a key a line: ``json.dump(indent=2)`` would spend four lines a day."""
    keys = [f"    {json.dumps(key_id)}: {json.dumps(daily)}" for key_id, daily in result["items"].items()]
    fields = [
        f"  {json.dumps(name)}: {json.dumps(value)}"
        for name, value in result.items()
        if name not in ("items", "NextToken")
    ]
    fields.append('  "items": ' + ("{\n" + ",\n".join(keys) + "\n  }" if keys else "{}"))
    if "NextToken" in result:
        fields.append(f'  "NextToken": {json.dumps(result["NextToken"])}')
    sys.stdout.write("{\n" + ",\n".join(fields) + "\n}\n")


def write_csv(result: UsageResult, start: date) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["usagePlanId", "apiKeyId", "date", "used", "remaining"])
    for key_id, daily in result.get("items", {}).items():
        for index, (used, remaining) in enumerate(daily):
            writer.writerow(
                [result.get("usagePlanId", ""), key_id, start + timedelta(days=index), used, remaining]
            )


def pagination_config(args: argparse.Namespace) -> dict[str, Any]:
    """boto3's ``PaginationConfig`` from the flags given."""
    flags = {"MaxItems": args.max_items, "PageSize": args.page_size, "StartingToken": args.starting_token}
    return {name: value for name, value in flags.items() if value is not None}


def fetch(pages: UsagePages, args: argparse.Namespace, attempts: AttemptReport) -> UsageResult | None:
    """Every page, merged and checked; None (the error on stderr) when the plan could not be read."""

    def error_line(text: str) -> None:
        gave_up = attempts.last_gave_up
        print(
            f"quota-monitor: error: {text}" + (f" ({gave_up_after(gave_up)})" if gave_up else ""),
            file=sys.stderr,
        )

    try:
        result = pages.build_full_result()
        check_daily_usage(result, args.start, args.end)
    except (UsagePaginationError, UsageDataError) as error:
        error_line(str(error))
        return None
    except MalformedResponse as error:
        error_line(f"usage plan {args.plan}: {error}")
        return None
    except (ClientError, BotoCoreError) as error:
        if is_configuration_error(error):
            raise  # aws_errors(): exit 2 with what to do
        cause, message = describe_error(error)
        error_line(f"usage plan {args.plan}: {cause}: {message}")
        return None
    return result


def run(args: argparse.Namespace) -> int:
    if args.start > args.end:
        raise UsageError(f"--start {args.start} is after --end {args.end}")
    settings = settings_from(args)
    attempts = AttemptReport()
    with aws_errors():
        api = guarded_api(apigateway_client(session(args)), settings.scan, on_failed_attempt=attempts)
        try:
            pages = paginate_usage(
                api,
                usagePlanId=args.plan,
                startDate=args.start.isoformat(),
                endDate=args.end.isoformat(),
                keyId=args.key,
                PaginationConfig=pagination_config(args),
            )
        except InvalidStartingToken as error:
            raise UsageError(f"--starting-token: {error}") from None
        except ValueError as error:
            raise UsageError(str(error)) from None
        result = fetch(pages, args, attempts)
    if result is None:
        return EXIT_PARTIAL
    for key_id in sorted(pages.duplicate_keys):
        print(
            f"warning: key {key_id} appeared on two GetUsage pages; merged (higher used, lower remaining)",
            file=sys.stderr,
        )
    if args.format == "csv":
        write_csv(result, args.start)
        if "NextToken" in result:
            print(f"NextToken: {result['NextToken']}", file=sys.stderr)
    else:
        write_json(result)
    return EXIT_OK
