"""What the commands share: AWS session, settings from the environment and flags, errors."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError, ProfileNotFound

from quota_monitor import (
    ACCOUNT_MAX_RPS,
    MAX_PAGE_SIZE,
    WEEKDAYS,
    ConfigError,
    ScanSettings,
    Settings,
    is_configuration_error,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_CHECK = 0, 1, 2, 3

#: Every exit code of every command, for ``--help`` (the README has the same table).
EXIT_CODES = """\
exit codes:
  0    done: everything was read (and, with --publish, published)
  1    something could not be read: the usage plans (nothing else is printed then), a
       usage plan or the key listing (the rest is printed), or with --publish the
       metrics; each failure is named on stderr
  2    bad arguments or configuration, a --plan or --key that names nothing in the
       account, or credentials or region missing, expired or refused; nothing is
       printed on stdout
  3    scan --fail-above P: some key is at or above P% (those keys are printed);
       3 wins over 1, since the keys that were read already answer the check
  130  Ctrl-C: the command ends at once, killed by SIGINT, without reading the rest
       (shells report 128+2; Python's subprocess, -2)
  141  the reader of stdout went away (| head): the command ends quietly, killed by
       SIGPIPE like cat or grep (shells report 128+13; Python's subprocess, -13)"""


class UsageError(Exception):
    """Bad arguments or configuration: exit code 2."""


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("AWS")
    group.add_argument("--profile", help="named profile from your AWS config (default: the default chain)")
    group.add_argument("--region", help="AWS region (default: from your AWS config or AWS_DEFAULT_REGION)")


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "accounts and regions (default: REGIONS and SPOKE_ROLE_ARNS, else the region and account of the "
        "credentials)"
    )
    group.add_argument(
        "--regions",
        metavar="R1,R2",
        help="regions to scan, each with its own API Gateway budget (REGIONS; default: --region)",
    )
    group.add_argument(
        "--role-arn",
        action="append",
        metavar="ARN",
        help="also scan the account of this role, assumed with STS, in every region (repeatable; "
        "SPOKE_ROLE_ARNS)",
    )


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scan settings (default: the monitor's environment variables)")
    group.add_argument(
        "--page-size", type=page_size, help="GetUsage keys a page, 1-500 (USAGE_PAGE_SIZE, default 500)"
    )
    group.add_argument(
        "--week-start",
        choices=[day.lower() for day in WEEKDAYS],
        type=str.lower,
        help="the day WEEK quotas reset (WEEK_START_DAY, default sunday)",
    )
    group.add_argument(
        "--cross-check-plan-keys",
        action="store_true",
        default=None,
        help="also list each plan's keys, reporting keys AWS left out of the usage data as unused "
        "(CROSS_CHECK_PLAN_KEYS; one more call a plan)",
    )
    group.add_argument(
        "--max-rps", type=max_rps, help="API Gateway calls a second at most (APIGATEWAY_MAX_RPS, default 5)"
    )
    add_max_attempts_argument(group)


def add_max_attempts_argument(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--max-attempts",
        type=max_attempts,
        metavar="N",
        help="tries per API Gateway call on throttling, 5xx and network errors, with backoff: "
        "8 can take about a minute when AWS cannot be reached (APIGATEWAY_MAX_ATTEMPTS, default 8)",
    )


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in range, with an error that says what is allowed."""

    def parse(text: str) -> int:
        allowed = (
            f"a whole number from {low} to {high}"
            if high is not None
            else f"a whole number of at least {low}"
        )
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is not allowed: use {allowed}")
        return value

    return parse


page_size = whole_number(1, MAX_PAGE_SIZE)


def max_rps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= ACCOUNT_MAX_RPS:
        raise argparse.ArgumentTypeError(
            f"{text} is not allowed: use a number above 0 and at most {ACCOUNT_MAX_RPS:g} "
            "(API Gateway's account-wide limit)"
        )
    return value


def max_attempts(text: str) -> int:
    """An argparse type checked by the same rule as ``APIGATEWAY_MAX_ATTEMPTS``."""
    try:
        # An empty value means "the default" in the environment, but is no value for a flag.
        return ScanSettings.from_env({"APIGATEWAY_MAX_ATTEMPTS": text.strip() or "-"}).max_attempts
    except ConfigError as error:
        allowed = str(error).partition("is not allowed: ")[2]
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}") from None


def settings_from(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    """The monitor's environment settings, overridden by the flags given."""
    merged = dict(os.environ if env is None else env)
    overrides = {
        "USAGE_PAGE_SIZE": getattr(args, "page_size", None),
        "WEEK_START_DAY": getattr(args, "week_start", None),
        "CROSS_CHECK_PLAN_KEYS": getattr(args, "cross_check_plan_keys", None),
        "APIGATEWAY_MAX_RPS": getattr(args, "max_rps", None),
        "APIGATEWAY_MAX_ATTEMPTS": getattr(args, "max_attempts", None),
        "METRIC_NAMESPACE": getattr(args, "namespace", None),
        "REGIONS": getattr(args, "regions", None),
        "SPOKE_ROLE_ARNS": ",".join(getattr(args, "role_arn", None) or []) or None,
    }
    merged.update({name: str(value) for name, value in overrides.items() if value is not None})
    try:
        return Settings.from_env(merged)
    except ConfigError as error:
        variable = str(error).split("=", 1)[0]
        flag = FLAGS.get(variable) if overrides.get(variable) is not None else None
        raise UsageError(f"{flag}: {error}" if flag else str(error)) from None


#: The flags that set an environment variable, for errors that name what the user typed.
FLAGS = {
    "USAGE_PAGE_SIZE": "--page-size",
    "WEEK_START_DAY": "--week-start",
    "APIGATEWAY_MAX_RPS": "--max-rps",
    "APIGATEWAY_MAX_ATTEMPTS": "--max-attempts",
    "METRIC_NAMESPACE": "--namespace",
    "REGIONS": "--regions",
    "SPOKE_ROLE_ARNS": "--role-arn",
}


def session(args: argparse.Namespace) -> boto3.Session:
    try:
        return boto3.Session(profile_name=args.profile, region_name=args.region)
    except ProfileNotFound as error:
        raise UsageError(str(error)) from None


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn missing, expired or refused credentials, or no region, into a usage error (exit 2)."""
    try:
        yield
    except NoRegionError:
        raise UsageError(
            "no AWS region: pass --region, or set AWS_DEFAULT_REGION or a region in your AWS config"
        ) from None
    except (BotoCoreError, ClientError) as error:
        if not is_configuration_error(error):
            raise
        raise UsageError(
            f"{error}: configure credentials (aws configure, aws sso login, AWS_PROFILE or --profile)"
        ) from None


def run_guarded(function: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return function(args)
        except UsageError as error:
            print(f"quota-monitor: error: {error}", file=sys.stderr)
            return EXIT_USAGE

    return run


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
