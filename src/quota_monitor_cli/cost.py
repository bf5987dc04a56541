"""``quota-monitor cost``: what the monitor itself costs a month, from one price table.

The estimate is list price, without free tiers (the account's other workloads use them), for
the monitor's own resources: the Lambda function, its custom metrics (the dominant part: every
key and metric name is one), the PutMetricData requests, its logs, the alarms and dashboard of
the stack, the alert-state table, the alert topic and its key, and the schedule. Every number it
rests on is in :data:`PRICES` or :class:`Usage`, and docs/cost.md explains each.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from quota_monitor import (
    ALERT_HEALTH_METRICS,
    ALL_KEYS,
    DEFAULT_BURST,
    DEFAULT_MAX_RPS,
    HEALTH_METRICS,
    MAX_TOP,
    NO_KEYS,
    PER_KEY_METRICS,
    PER_PLAN_METRICS,
    KeyMetricsSelection,
    parse_key_metrics,
)
from quota_monitor_cli.common import EXIT_OK, max_rps, run_guarded, whole_number
from quota_monitor_cli.render import console

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class Prices:
    """AWS list prices in us-east-1 (US East, N. Virginia), in US dollars.

    Gathered in November 2026; docs/cost.md names the source each number was checked against
    (the AWS pricing pages, an AWS whitepaper, dated third-party summaries of the pages) and marks
    the one assumption (the KMS key). AWS changes prices and they differ by region: check
    aws.amazon.com/<service>/pricing or the AWS Pricing Calculator before quoting. Custom metrics
    are prorated by the hour and billed only for hours with data.
    """

    as_of: str = "2026-11"
    region: str = "us-east-1"
    #: Custom metrics, per metric-month, by tier of the account's metric count: (metrics in tier, $).
    metric_tiers: tuple[tuple[float, float], ...] = (
        (10_000, 0.30),
        (240_000, 0.10),
        (750_000, 0.05),
        (math.inf, 0.02),
    )
    put_metric_data_per_1000: float = 0.01
    alarm_metric_month: float = 0.10
    dashboard_month: float = 3.00
    lambda_gb_second: float = 0.0000166667  # x86_64; arm64 is 20% less
    lambda_per_million_requests: float = 0.20
    logs_ingest_gb: float = 0.50
    logs_storage_gb_month: float = 0.03
    dynamodb_per_million_reads: float = 0.125  # on-demand read request units
    dynamodb_per_million_writes: float = 0.625  # on-demand write request units
    sns_per_million_publishes: float = 0.50
    sns_email_per_100k: float = 2.00
    scheduler_per_million: float = 1.00
    kms_key_month: float = 1.00


PRICES = Prices()

HOURS_PER_MONTH = 730  # AWS's convention for a month
#: Write request units per alert: a claim and a confirmation, each a transactional write (2 units).
STATE_WRITE_UNITS_PER_ALERT = 4
LAMBDA_MB_PER_VCPU = 1769  # Lambda gives one vCPU's worth at 1,769 MB, proportionally below
#: What the benchmark measured (docs/benchmarks.md) and the duration model builds on: CPU
#: seconds a run spends apart from API waits (imports and clients, 0.5 s, rounded up for Lambda's
#: own runtime), and per key (scan 2.1 to 2.6 s and publish 1.4 to 1.5 s for 10,000 keys of 31
#: days, rounded up).
CPU_SECONDS_PER_RUN = 0.7
CPU_SECONDS_PER_KEY = 0.0004
#: Bytes of log a run writes: Lambda's START/END/REPORT lines and the one summary line.
LOG_BYTES_PER_RUN = 2_000
#: The alert-state item the lead's alert code keeps per key in alert, bytes (an assumption).
STATE_ITEM_BYTES = 200
PAGE = 500

_INTERVAL = re.compile(r"^\s*(\d+)\s*(m|min|minutes?|h|hours?)\s*$", re.IGNORECASE)
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
MAX_INTERVAL_MINUTES = 24 * 60


@dataclass(frozen=True)
class Usage:
    """What drives the bill; the defaults are the monitor's defaults and the stack's expected shape."""

    keys: int
    plans: int
    interval_minutes: int = 15
    memory_mb: int = 256
    key_metrics: KeyMetricsSelection = ALL_KEYS
    #: For ``above:P``: the average share of keys at or above P over the month (an assumption).
    share_above: float = 0.10
    #: What the stack creates: 6, or 8 with the Slack webhook forwarder (infra/alarms.py).
    alarms: int = 6
    dashboards: int = 1
    alerts_per_month: int = 100
    email_subscribers: int = 1
    max_rps: float = DEFAULT_MAX_RPS
    burst: int = DEFAULT_BURST

    @property
    def runs_per_month(self) -> float:
        return HOURS_PER_MONTH * 60 / self.interval_minutes

    @property
    def keys_with_metrics(self) -> float:
        """Keys that get per-key metrics, on average over the month."""
        selection = self.key_metrics
        if selection.publishes_all:
            return float(self.keys)
        eligible = self.keys * (self.share_above if selection.above is not None else 1.0)
        return float(min(eligible, selection.top)) if selection.top is not None else eligible

    @property
    def custom_metrics(self) -> float:
        plans_with_keys = min(self.plans, self.keys)
        health = len(HEALTH_METRICS) + len(ALERT_HEALTH_METRICS)  # alerts are on in the stack
        return (
            len(PER_KEY_METRICS) * self.keys_with_metrics + len(PER_PLAN_METRICS) * plans_with_keys + health
        )

    @property
    def billed_metric_fraction(self) -> float:
        """Custom metrics are billed for the hours they receive data: all hours up to a 60-minute interval."""
        return min(1.0, 60 / self.interval_minutes)

    @property
    def datapoints_per_run(self) -> float:
        return self.custom_metrics

    @property
    def api_calls_per_run(self) -> int:
        """The minimum calls (docs/benchmarks.md), keys spread evenly over the plans."""
        if self.plans == 0:
            return 1
        per_plan = math.ceil(self.keys / self.plans)
        return (
            math.ceil(self.plans / PAGE)
            + max(1, math.ceil(self.keys / PAGE))
            + self.plans * max(1, math.ceil(per_plan / PAGE))
        )

    @property
    def seconds_per_run(self) -> float:
        """API floor at the client-side rate, plus the run's CPU work at the memory's share of a vCPU."""
        floor = max(0, self.api_calls_per_run - self.burst) / self.max_rps
        share = min(1.0, self.memory_mb / LAMBDA_MB_PER_VCPU)
        return floor + (CPU_SECONDS_PER_RUN + CPU_SECONDS_PER_KEY * self.keys) / share


@dataclass(frozen=True)
class LineItem:
    service: str
    item: str
    quantity: str
    monthly: float


@dataclass(frozen=True)
class Estimate:
    usage: Usage
    items: list[LineItem] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(item.monthly for item in self.items)


def tiered(quantity: float, tiers: Sequence[tuple[float, float]]) -> float:
    """The cost of ``quantity`` units priced by consecutive tiers of (units in tier, price a unit)."""
    cost, left = 0.0, quantity
    for size, price in tiers:
        taken = min(left, size)
        cost += taken * price
        left -= taken
        if left <= 0:
            break
    return cost


def estimate(usage: Usage, prices: Prices = PRICES) -> Estimate:
    runs = usage.runs_per_month
    metric_months = usage.custom_metrics * usage.billed_metric_fraction
    requests = math.ceil(usage.datapoints_per_run / 1000) * runs
    gb_seconds = usage.seconds_per_run * usage.memory_mb / 1024 * runs
    log_gb = LOG_BYTES_PER_RUN * runs / 1e9
    state_reads = math.ceil(usage.keys * STATE_ITEM_BYTES / 4096) / 2 * runs  # eventually consistent Scan
    # A claim and a confirmation per alert, in transactions: 2 write units each (quota_monitor.alert.state).
    state_writes = usage.alerts_per_month * STATE_WRITE_UNITS_PER_ALERT
    items = [
        LineItem(
            "CloudWatch",
            "custom metrics",
            f"{usage.custom_metrics:,.0f} metrics"
            + (f" x {usage.billed_metric_fraction:.0%} of hours" if usage.billed_metric_fraction < 1 else ""),
            tiered(metric_months, prices.metric_tiers),
        ),
        LineItem(
            "CloudWatch",
            "PutMetricData requests",
            f"{requests:,.0f}",
            requests / 1000 * prices.put_metric_data_per_1000,
        ),
        LineItem(
            "Lambda",
            f"duration ({usage.memory_mb} MB, ~{usage.seconds_per_run:,.0f} s a run)",
            f"{gb_seconds:,.0f} GB-s",
            gb_seconds * prices.lambda_gb_second,
        ),
        LineItem("Lambda", "requests", f"{runs:,.0f}", runs / 1e6 * prices.lambda_per_million_requests),
        LineItem(
            "CloudWatch Logs",
            "ingestion and a month of storage",
            f"{log_gb * 1000:,.1f} MB",
            log_gb * (prices.logs_ingest_gb + prices.logs_storage_gb_month),
        ),
        LineItem("CloudWatch", "alarms", f"{usage.alarms}", usage.alarms * prices.alarm_metric_month),
        LineItem(
            "CloudWatch", "dashboards", f"{usage.dashboards}", usage.dashboards * prices.dashboard_month
        ),
        LineItem(
            "DynamoDB",
            "alert state (on-demand)",
            f"{state_reads:,.0f} reads, {state_writes:,} writes",
            state_reads / 1e6 * prices.dynamodb_per_million_reads
            + state_writes / 1e6 * prices.dynamodb_per_million_writes,
        ),
        LineItem(
            "SNS",
            "alert publishes and emails",
            f"{usage.alerts_per_month:,} alerts",
            usage.alerts_per_month / 1e6 * prices.sns_per_million_publishes
            + usage.alerts_per_month * usage.email_subscribers / 1e5 * prices.sns_email_per_100k,
        ),
        LineItem("KMS", "customer managed key of the alert topic", "1", prices.kms_key_month),
        LineItem(
            "EventBridge Scheduler", "invocations", f"{runs:,.0f}", runs / 1e6 * prices.scheduler_per_million
        ),
    ]
    return Estimate(usage, items)


# -- the command ----------------------------------------------------------------------------------


def interval_minutes(text: str) -> int:
    """``15m``, ``1h``, ``90min``: a whole number of minutes or hours, from 1 minute to 24 hours."""
    match = _INTERVAL.match(text)
    allowed = "use a whole number of minutes or hours, like 15m or 1h, from 1m to 24h"
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interval: {allowed}")
    minutes = int(match.group(1)) * (60 if match.group(2).lower().startswith("h") else 1)
    if not 1 <= minutes <= MAX_INTERVAL_MINUTES:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")
    return minutes


def key_metrics_option(text: str) -> KeyMetricsSelection:
    try:
        return parse_key_metrics(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {error}") from None


def share(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share: use 0 to 1, or 0% to 100%") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use 0 to 1, or 0% to 100%")
    return value


def region(text: str) -> str:
    if not _REGION.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS region name like us-east-1")
    return text


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "cost",
        help="estimate what the monitor costs a month",
        description="Estimate the monitor's own monthly AWS bill (list prices, no free tier) "
        "from its price table; see docs/cost.md.",
    )
    parser.add_argument(
        "--keys",
        required=True,
        type=whole_number(0, MAX_TOP),
        help="API keys in the account and region (API Gateway allows at most 10,000)",
    )
    parser.add_argument(
        "--plans",
        type=whole_number(0, 10_000),
        help="usage plans (default: one for every 50 keys, from 1 to 300)",
    )
    parser.add_argument(
        "--interval", type=interval_minutes, default=15, help="how often the monitor runs (default 15m)"
    )
    parser.add_argument("--region", type=region, default=PRICES.region, help="AWS region (default us-east-1)")
    parser.add_argument(
        "--key-metrics",
        type=key_metrics_option,
        default=ALL_KEYS,
        metavar="SETTING",
        help="KEY_METRICS: all (default), none, top:N, above:P or above:P,top:N",
    )
    parser.add_argument(
        "--share-above",
        type=share,
        default=Usage.share_above,
        metavar="SHARE",
        help="for above:P, the share of keys at or above P on average (default 10%%)",
    )
    parser.add_argument(
        "--memory", type=whole_number(128, 10_240), default=Usage.memory_mb, help="Lambda memory, MB"
    )
    parser.add_argument("--max-rps", type=max_rps, default=DEFAULT_MAX_RPS, help="APIGATEWAY_MAX_RPS")
    parser.add_argument("--alarms", type=whole_number(0), default=Usage.alarms, help="alarms of the stack")
    parser.add_argument("--dashboards", type=whole_number(0), default=Usage.dashboards)
    parser.add_argument(
        "--alerts", type=whole_number(0), default=Usage.alerts_per_month, help="alerts a month (default 100)"
    )
    parser.set_defaults(run=run_guarded(run))


def default_plans(keys: int) -> int:
    return min(300, max(1, math.ceil(keys / 50)))


def usage_from(args: argparse.Namespace) -> Usage:
    return Usage(
        keys=args.keys,
        plans=args.plans if args.plans is not None else default_plans(args.keys),
        interval_minutes=args.interval,
        memory_mb=args.memory,
        key_metrics=args.key_metrics,
        share_above=args.share_above,
        alarms=args.alarms,
        dashboards=args.dashboards,
        alerts_per_month=args.alerts,
        max_rps=args.max_rps,
    )


def alternatives(usage: Usage) -> list[tuple[str, float]]:
    """The same account under other KEY_METRICS settings, to show what each saves."""
    options = [ALL_KEYS, parse_key_metrics("above:80"), parse_key_metrics("top:500"), NO_KEYS]
    if usage.key_metrics not in options:
        options.insert(1, usage.key_metrics)
    return [(option.describe(), estimate(replace(usage, key_metrics=option)).total) for option in options]


def run(args: argparse.Namespace) -> int:
    usage = usage_from(args)
    result = estimate(usage)
    # Text, not markup: "top:100" would otherwise become an emoji.
    title = Text(
        f"Monthly cost of the monitor: {usage.keys:,} keys, {usage.plans:,} usage plans, every "
        f"{usage.interval_minutes} min, KEY_METRICS={usage.key_metrics.describe()}"
    )
    table = Table(title=title, title_justify="left")
    for column, justify in (("service", "left"), ("what", "left"), ("a month", "right"), ("USD", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for item in result.items:
        table.add_row(item.service, item.item, item.quantity, f"{item.monthly:,.2f}")
    table.add_row("", "total", "", f"{result.total:,.2f}", style="bold")
    out = console()
    out.print(table)
    baseline = estimate(replace(usage, key_metrics=ALL_KEYS)).total
    lines = []
    for setting, total in alternatives(usage):
        saving = f" (saves {baseline - total:,.2f})" if total < baseline else ""
        assumption = f", {usage.share_above:.0%} of keys above" if setting.startswith("above") else ""
        lines.append(f"  KEY_METRICS={setting}{assumption}: {total:,.2f} USD a month{saving}")
    out.print("Per-key metrics are most of the bill; plan roll-ups, health metrics and alerts stay whole:")
    for line in lines:
        out.print(Text(line))
    notes = [
        f"List prices in {PRICES.region} as of {PRICES.as_of}, no free tier; see docs/cost.md.",
    ]
    if args.region != PRICES.region:
        notes.append(f"Prices for {args.region} are not in the table: shown at {PRICES.region} prices.")
    for note in notes:
        print(note, file=sys.stderr)
    return EXIT_OK
