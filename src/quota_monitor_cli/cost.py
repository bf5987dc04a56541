"""``quota-monitor cost``: what the monitor itself costs a month, from one price table.

The estimate is list price, without free tiers (the account's other workloads use them), for
the monitor's own resources: the Lambda function, its custom metrics (every metric name and
dimension value is one), the PutMetricData requests, its logs (the records, a line per key and
per plan each run), the dashboard's Logs Insights queries, the alarms and dashboard of the stack,
the alert-state table, the alert topic and its key, the schedule, and with ``--events`` the
EventBridge events. Every number it rests on is
in :data:`PRICES`, the measured constants below or :class:`Usage`, and docs/cost.md explains each.

``--from-scan FILE`` reads a ``quota-monitor scan --json`` output and prices the account as it is:
its keys and plans, the real share of keys at or above their first alert level, and the bytes of
its real records (built by the runtime's own record builder from the real names and numbers).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from quota_monitor import (
    ALERT_HEALTH_METRICS,
    ALL_KEYS,
    AUTO_KEY_METRICS,
    AUTO_KEYS,
    CHUNK_SECONDS,
    CONTRACT_FIELDS,
    DEFAULT_BURST,
    DEFAULT_MAX_RPS,
    HEALTH_METRICS,
    KEY_RECORD,
    MAX_BLOCK_SECONDS,
    MAX_PAGE_SIZE,
    MAX_TOP,
    NO_KEYS,
    PER_KEY_METRICS,
    PER_PLAN_METRICS,
    PERIOD_TYPES,
    PLAN_RECORD,
    RECORD,
    SNAPSHOT_BUCKETS,
    SNAPSHOT_FAST_EVERY,
    BudgetRate,
    ForecastSettings,
    KeyMetricsSelection,
    KeyUsage,
    ScanResult,
    ScanStats,
    Target,
    level_reached,
    parse_key_metrics,
    period_containing,
    record_lines,
)
from quota_monitor_cli.common import EXIT_OK, UsageError, max_rps, run_guarded, settings_from, whole_number
from quota_monitor_cli.render import console

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


#: The fast path's alarms: its errors, and its heartbeat (infra/alarms.py).
FAST_PATH_ALARMS = 2
#: The usage archive's alarm: its failures (infra/alarms.py).
ARCHIVE_ALARMS = 1
#: The quota endpoint's alarm: its key snapshots' failures (infra/alarms.py).
ENDPOINT_ALARMS = 1


@dataclass(frozen=True)
class Prices:
    """AWS list prices in us-east-1 (US East, N. Virginia), in US dollars.

    Gathered in November 2026; docs/cost.md names the source each number was checked against
    (the AWS pricing pages, an AWS whitepaper, dated third-party summaries of the pages) and marks
    the assumptions. AWS changes prices and they differ by region: check
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
    logs_insights_gb_scanned: float = 0.005
    dynamodb_per_million_reads: float = 0.125  # on-demand read request units
    dynamodb_per_million_writes: float = 0.625  # on-demand write request units
    sns_per_million_publishes: float = 0.50
    sns_email_per_100k: float = 2.00
    scheduler_per_million: float = 1.00
    kms_key_month: float = 1.00
    eventbridge_per_million_events: float = 1.00  # custom events, each a 64 KB chunk or less
    s3_put_per_1000: float = 0.005
    s3_standard_gb_month: float = 0.023
    s3_glacier_ir_gb_month: float = 0.004
    s3_glacier_ir_transition_per_1000: float = 0.02
    athena_per_tb_scanned: float = 5.00


PRICES = Prices()

HOURS_PER_MONTH = 730  # AWS's convention for a month
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
#: Write request units per alert: a claim and a confirmation, each a transactional write (2 units).
STATE_WRITE_UNITS_PER_ALERT = 4
LAMBDA_MB_PER_VCPU = 1769  # Lambda gives one vCPU's worth at 1,769 MB, proportionally below
#: What the benchmark measured (docs/benchmarks.md) and the duration model builds on: CPU seconds
#: a run spends apart from API waits (imports and clients, 0.5 s, rounded up for Lambda's own
#: runtime); per key (the scan, 2.1 to 2.6 s, and the records, about 0.3 s, for 10,000 keys of 31
#: days, rounded up); and per data point published (1.4 to 1.5 s for 30,606).
CPU_SECONDS_PER_RUN = 0.7
CPU_SECONDS_PER_KEY = 0.0003
CPU_SECONDS_PER_DATAPOINT = 0.00005
#: Bytes of a key record and of a plan record, newline included, as a default run over the
#: benchmark's 10,000 keys wrote them (docs/cost.md, "Measured"). ``--from-scan`` measures yours.
KEY_RECORD_BYTES = 351
PLAN_RECORD_BYTES = 316
#: Bytes of a target record (one per account and region a run, when a run reads more than one).
TARGET_RECORD_BYTES = 250
#: CloudWatch Logs counts 26 bytes a log event on top of its message (PutLogEvents' batch size
#: rule; the model assumes ingestion is billed the same way, which errs high).
EVENT_OVERHEAD_BYTES = 26
#: Bytes of log a run writes apart from the records: Lambda's START/END/REPORT lines and the summary.
LOG_BYTES_PER_RUN = 3_000
#: The dashboard's Logs Insights widgets (infra/record_views.py), each reading the records window:
#: the schedule interval and 5 minutes, so at most two runs' logs; one more with several targets.
RECORD_WIDGETS = 4
RUNS_A_WIDGET_READS = 2
#: Dashboard loads and refreshes a day (an assumption: a dashboard open 8 hours on a 5-minute
#: auto-refresh is 96; people opening it, the rest).
DASHBOARD_VIEWS_PER_DAY = 200
#: The stack's default retention of the function's log group (infra/settings.py).
RETENTION_DAYS = 14
#: The alert-state item the alert code keeps per key in alert, bytes (an assumption).
STATE_ITEM_BYTES = 200

# -- the fast path (FAST_SCHEDULE_MINUTES; the stack's fastScheduleMinutes, 1 by default) -----------
#: What ``make bench`` (bench/freshness.py) measured, rounded up; docs/cost.md, "The fast path".
#: Bytes a fast run logs: Lambda's START, END and REPORT lines and the run summary, with the 26 bytes
#: an event, in a quiet run; a run with alerts or failures logs more, counted per alert below.
FAST_LOG_BYTES_PER_RUN = 1_400
#: CPU seconds of a fast run apart from its API waits, on a whole core: a run, and a key of the usage
#: pages it reads (botocore parses every key of a page, watched or not).
FAST_CPU_SECONDS_PER_RUN = 0.05
FAST_CPU_SECONDS_PER_KEY = 0.0002
#: DynamoDB round trips of a run (lease, watch lists, budget), seconds.
FAST_DYNAMODB_SECONDS = 0.15
#: Compressed bytes of the watch list a key and a plan on it (alert/watch.py).
WATCH_BYTES_PER_KEY = 40
WATCH_BYTES_PER_PLAN = 120
#: Bytes a fast run logs more for an alert it sends or a failure (an error line, a longer summary).
LOG_BYTES_PER_ALERT = 600

# -- the quota endpoint (the stack's quotaEndpoint: KEY_SNAPSHOTS, GET /quota) ---------------------
#: Compressed bytes of a key's snapshot entry (a key in one plan), measured with the runtime's own
#: encoder over 10,000 keys with names of 20 characters (36 bytes; docs/cost.md, "The quota endpoint").
SNAPSHOT_BYTES_PER_KEY = 40
#: An item's name, TTL and attribute names, bytes.
SNAPSHOT_ITEM_OVERHEAD = 60
#: What a ``GET /quota`` request costs the monitor: its function's billed milliseconds at 128 MB
#: (warm, in process: docs/benchmarks.md, "The quota endpoint"), and the log bytes Lambda writes for
#: it (START, END and REPORT lines; the handler logs nothing on success).
ENDPOINT_MILLISECONDS = 20
ENDPOINT_MEMORY_MB = 128
ENDPOINT_LOG_BYTES = 350
SNAPSHOT_FAST_EVERY_MINUTES = SNAPSHOT_FAST_EVERY.total_seconds() / 60
#: API Gateway's price of a REST API request (first 333 million a month, us-east-1): what a /quota
#: request costs on the provider's API, as any route does; not the monitor's, so not in the total.
REST_API_PER_MILLION = 3.50

# -- the usage archive (the stack's archive: ARCHIVE_BUCKET) ----------------------------------------
#: Gzip bytes of a key's record in the archive: the records compress about 20 times with the
#: benchmark's names and 10 times with real ones (docs/archive.md); the model counts 10.
ARCHIVE_BYTES_PER_KEY = 36
#: Days of records a statement of a month reads: the month and the one before (docs/archive.md).
STATEMENT_DAYS = 61

_INTERVAL = re.compile(r"^\s*(\d+)\s*(m|min|minutes?|h|hours?)\s*$", re.IGNORECASE)
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
MAX_INTERVAL_MINUTES = 24 * 60
MAX_FAST_MINUTES = 60


@dataclass(frozen=True)
class Usage:
    """What drives the bill; the defaults are the monitor's defaults and the stack's expected shape."""

    keys: int
    plans: int
    interval_minutes: int = 15
    memory_mb: int = 256
    key_metrics: KeyMetricsSelection = AUTO_KEYS
    #: For ``above:P``: the average share of keys at or above P over the month (an assumption).
    share_above: float = 0.10
    #: For ``auto``: the share of keys at or above their lowest alert level; 1.0, every key hot all
    #: month, is the worst case, and the default.
    share_hot: float = 1.0
    #: Keys of plans with a quota (None: every key), the only ones ``auto`` can select.
    quota_keys: int | None = None
    #: The stack runs with alerts, which publish three more health metrics.
    alert_metrics: bool = True
    #: What the stack creates: 6, or 8 with the Slack webhook forwarder (infra/alarms.py); the fast
    #: path's own two (errors, heartbeat), the archive's one and the endpoint's one come on top
    #: (:attr:`all_alarms`).
    alarms: int = 6
    dashboards: int = 1
    dashboard_views_per_day: int = DASHBOARD_VIEWS_PER_DAY
    retention_days: int = RETENTION_DAYS
    key_record_bytes: float = KEY_RECORD_BYTES
    plan_record_bytes: float = PLAN_RECORD_BYTES
    alerts_per_month: int = 100
    email_subscribers: int = 1
    max_rps: float = DEFAULT_MAX_RPS
    burst: int = DEFAULT_BURST
    #: With ``EVENT_BUS_NAME`` (the stack's ``eventBus``): an EventBridge event per alert.
    events: bool = False
    #: Accounts and regions the monitor reads (``REGIONS`` x accounts); ``keys`` and ``plans`` are
    #: all of theirs together, spread evenly.
    targets: int = 1
    #: The fast path every this many minutes (the stack's ``fastScheduleMinutes``); 0: off.
    fast_minutes: int = 1
    fast_memory_mb: int = 128
    #: The quota endpoint (``quotaEndpoint``): every key's snapshot, and ``GET /quota`` requests.
    quota_endpoint: bool = False
    #: ``GET /quota`` requests a month, in millions.
    endpoint_requests: float = 1.0
    #: The usage archive (``archive``): every full run's records in S3, an object a target.
    archive: bool = False
    archive_cold_days: int = 90
    archive_retention_days: int = 800
    #: Statements of a month read with Athena, a month.
    statements: int = 1
    #: The archive's age (months): storage grows until ``archive_retention_days``.
    archive_age_months: float = 12.0

    @property
    def archive_bytes_per_day(self) -> float:
        return self.runs_per_month / DAYS_PER_MONTH * self.keys * ARCHIVE_BYTES_PER_KEY

    @property
    def archive_gb(self) -> tuple[float, float]:
        """(S3 Standard, Glacier Instant Retrieval) gigabytes held at ``archive_age_months``."""
        age = min(self.archive_age_months * DAYS_PER_MONTH, float(self.archive_retention_days))
        standard_days = min(age, float(self.archive_cold_days))
        return (
            self.archive_bytes_per_day * standard_days / 1e9,
            self.archive_bytes_per_day * max(0.0, age - standard_days) / 1e9,
        )

    @property
    def snapshot_write_units(self) -> float:
        """Write units of a full run's snapshots: every bucket of every target, a unit a KB begun."""
        buckets = SNAPSHOT_BUCKETS * self.targets
        per_bucket = SNAPSHOT_ITEM_OVERHEAD + self.keys / buckets * SNAPSHOT_BYTES_PER_KEY
        return buckets * math.ceil(per_bucket / 1024)

    @property
    def snapshot_bytes(self) -> float:
        return SNAPSHOT_BUCKETS * self.targets * SNAPSHOT_ITEM_OVERHEAD + self.keys * SNAPSHOT_BYTES_PER_KEY

    @property
    def fast_snapshot_runs(self) -> float:
        """Fast runs a month that write snapshots: one every ``SNAPSHOT_FAST_EVERY`` (ten minutes)."""
        every = max(1, round(SNAPSHOT_FAST_EVERY_MINUTES / max(1, self.fast_minutes)))
        return self.fast_runs_per_month / every

    @property
    def fast_snapshot_write_units(self) -> float:
        """Write units of a fast run's snapshots: the fast items of the buckets holding the keys it
        read (at most every bucket), a unit a KB begun."""
        if not self.fast_path or not self.targets:
            return 0.0
        buckets = min(SNAPSHOT_BUCKETS * self.targets, max(1.0, self.watched_keys))
        per_bucket = SNAPSHOT_ITEM_OVERHEAD + self.watched_keys / buckets * SNAPSHOT_BYTES_PER_KEY
        return buckets * math.ceil(per_bucket / 1024)

    @property
    def endpoint_read_units(self) -> float:
        """Read units of a request: the key's bucket and its fast item, eventually consistent (half a
        unit per 4 KB begun, each item on its own)."""
        buckets = SNAPSHOT_BUCKETS * self.targets
        full = SNAPSHOT_ITEM_OVERHEAD + self.keys / buckets * SNAPSHOT_BYTES_PER_KEY
        fast = SNAPSHOT_ITEM_OVERHEAD + self.watched_keys / buckets * SNAPSHOT_BYTES_PER_KEY
        # The fast item is asked for whether or not it exists: an item not found still costs half a unit.
        return (math.ceil(full / 4096) + (math.ceil(fast / 4096) if self.fast_path else 1)) / 2

    @property
    def fast_path(self) -> bool:
        return self.fast_minutes > 0

    @property
    def fast_runs_per_month(self) -> float:
        return HOURS_PER_MONTH * 60 / self.fast_minutes if self.fast_path else 0.0

    @property
    def budget_rate(self) -> tuple[float, int]:
        """The shared budget's rate and burst (quota_monitor.read.budget.BudgetRate.within)."""
        rate = BudgetRate.within(self.max_rps, self.burst)
        return rate.rate, rate.burst

    @property
    def watched_keys(self) -> float:
        """Keys on the watch lists: those at or above their first level (``share_hot``; a key about
        to reach it counts as one of them)."""
        quota_keys = self.keys if self.quota_keys is None else self.quota_keys
        return quota_keys * self.share_hot

    @property
    def watched_plans(self) -> float:
        """Plans with watched keys: as many as there can be (each watched key in a plan of its own)."""
        return min(float(self.plans_with_keys), self.watched_keys)

    def _fast_calls(self) -> tuple[float, float]:
        """(GetUsage calls one target's fast run would make for all its watched plans, the most its
        call window allows): a call a watched plan, or a page or a watched key of a larger plan."""
        if not self.fast_path or self.targets == 0 or not self.watched_keys:
            return 0.0, 0.0
        plans = self.watched_plans / self.targets
        keys_per_plan = self.keys / max(1, self.plans_with_keys)
        rate, burst = self.budget_rate
        timeout = self.fast_timeout
        # The runtime's reserve (quota_monitor.handler.reserve_for; importing the handler would read
        # the environment and set up its logger, so the rule is restated: tests/unit/test_cost.py).
        window = timeout - min(60.0, timeout * 0.4)
        return plans * max(1, math.ceil(keys_per_plan / MAX_PAGE_SIZE)), burst + rate * window

    @property
    def fast_timeout(self) -> float:
        """The fast function's timeout (infra/settings.py: its interval less 5 s)."""
        return min(900.0, self.fast_minutes * 60 - 5)

    @property
    def fast_calls_per_target(self) -> float:
        wanted, allowed = self._fast_calls()
        return min(wanted, allowed)

    @property
    def fast_keys_read(self) -> float:
        """Keys in the usage pages a fast run reads (all of a page is parsed, watched or not)."""
        wanted, allowed = self._fast_calls()
        if not wanted:
            return 0.0
        in_watched_plans = self.keys * min(1.0, self.watched_plans / max(1, self.plans_with_keys))
        return in_watched_plans * min(1.0, allowed / wanted)

    @property
    def fast_seconds_per_run(self) -> float:
        """Its API waits or its CPU at its memory's share of a vCPU, whichever is longer (its threads
        read one page while they wait for the next call's turn), and its DynamoDB round trips; at most
        its timeout."""
        rate, burst = self.budget_rate
        share = min(1.0, self.fast_memory_mb / LAMBDA_MB_PER_VCPU)
        cpu = FAST_CPU_SECONDS_PER_RUN + FAST_CPU_SECONDS_PER_KEY * self.fast_keys_read
        waits = max(0.0, self.fast_calls_per_target - burst) / rate
        return min(self.fast_timeout, max(waits, cpu / share) + FAST_DYNAMODB_SECONDS)

    @property
    def watch_list_bytes(self) -> float:
        """All targets' watch lists together, as stored."""
        return self.watched_keys * WATCH_BYTES_PER_KEY + self.watched_plans * WATCH_BYTES_PER_PLAN

    def budget_chunks(self, calls: float, *, seconds: float = CHUNK_SECONDS) -> float:
        """Reservations of the shared budget for ``calls``, ``seconds`` worth of slots each: the full
        scan's chunks by default (quota_monitor.read.budget)."""
        rate, _ = self.budget_rate
        return math.ceil(calls / max(1, round(rate * seconds))) if calls else 0

    @property
    def fast_blocks(self) -> float:
        """A fast run's reservations: its calls in blocks (the fast path goes first)."""
        return self.budget_chunks(self.fast_calls_per_target, seconds=MAX_BLOCK_SECONDS)

    @property
    def fast_reads_per_run(self) -> float:
        """Read units of a fast run: the watch lists (half a unit per 4 KB, eventually consistent), a
        budget reservation's read each block of calls (strongly consistent: a unit)."""
        per_target = math.ceil(self.watch_list_bytes / self.targets / 4096) / 2 if self.targets else 0
        return self.targets * (max(1, per_target) + self.fast_blocks)

    @property
    def fast_writes_per_run(self) -> float:
        """Write units of a fast run: the lease taken and given back, a budget write a block of calls
        and the unused slots given back."""
        budget = self.fast_blocks
        return 2 + self.targets * (budget + (1 if budget else 0))

    @property
    def full_fast_path_units(self) -> tuple[float, float]:
        """(reads, writes) the full scan adds for the fast path a run: its budget reservations (and a
        read more for each fast run it yields to while it runs), and the watch list of each target (a
        write unit per KB)."""
        calls = self.api_calls_per_target
        chunks = self.budget_chunks(calls)
        yields = (
            math.ceil(self.seconds_per_run / (self.fast_minutes * 60)) if self.fast_calls_per_target else 0
        )
        lists = self.targets * max(1, math.ceil(self.watch_list_bytes / self.targets / 1024))
        return self.targets * (chunks + yields), self.targets * (chunks + 1) + lists

    @property
    def runs_per_month(self) -> float:
        return HOURS_PER_MONTH * 60 / self.interval_minutes

    @property
    def plans_with_keys(self) -> int:
        return min(self.plans, self.keys)

    @property
    def keys_with_metrics(self) -> float:
        """Keys that get per-key metrics, on average over the month."""
        selection = self.key_metrics
        if selection.auto:
            # The cap holds in each target: its metrics are its own account's and region's.
            quota_keys = self.keys if self.quota_keys is None else self.quota_keys
            return min(quota_keys * self.share_hot, float(selection.top or MAX_TOP) * self.targets)
        if selection.publishes_all:
            return float(self.keys)
        eligible = self.keys * (self.share_above if selection.above is not None else 1.0)
        return float(min(eligible, selection.top)) if selection.top is not None else eligible

    @property
    def all_alarms(self) -> int:
        return (
            self.alarms
            + (FAST_PATH_ALARMS if self.fast_path else 0)
            + (ARCHIVE_ALARMS if self.archive else 0)
            + (ENDPOINT_ALARMS if self.quota_endpoint else 0)
        )

    @property
    def health_metrics(self) -> int:
        return len(HEALTH_METRICS) + (len(ALERT_HEALTH_METRICS) if self.alert_metrics else 0)

    @property
    def custom_metrics(self) -> float:
        selection = self.key_metrics
        per_key = len(AUTO_KEY_METRICS if selection.auto else PER_KEY_METRICS)
        per_plan = len(PER_PLAN_METRICS) * self.plans_with_keys if selection.plan_rollups else 0
        return per_key * self.keys_with_metrics + per_plan + self.health_metrics

    @property
    def billed_metric_fraction(self) -> float:
        """Custom metrics are billed for the hours they receive data: all hours up to a 60-minute interval."""
        return min(1.0, 60 / self.interval_minutes)

    @property
    def datapoints_per_run(self) -> float:
        return self.custom_metrics

    @property
    def record_bytes_per_run(self) -> float:
        """The records of a run as CloudWatch Logs counts them: a line per key and per plan, 26 bytes
        more each."""
        targets = self.targets * (TARGET_RECORD_BYTES + EVENT_OVERHEAD_BYTES) if self.targets > 1 else 0
        return (
            self.keys * (self.key_record_bytes + EVENT_OVERHEAD_BYTES)
            + self.plans_with_keys * (self.plan_record_bytes + EVENT_OVERHEAD_BYTES)
            + targets
        )

    @property
    def log_bytes_per_run(self) -> float:
        return self.record_bytes_per_run + LOG_BYTES_PER_RUN

    @property
    def insights_bytes_per_refresh(self) -> float:
        """Bytes one load or refresh of the dashboard scans: each records widget reads at most two runs."""
        widgets = RECORD_WIDGETS + (1 if self.targets > 1 else 0)
        return widgets * RUNS_A_WIDGET_READS * self.log_bytes_per_run if self.dashboards else 0.0

    @property
    def api_calls_per_target(self) -> int:
        """One target's minimum calls (docs/benchmarks.md), keys spread evenly over the plans."""
        keys, plans = math.ceil(self.keys / self.targets), math.ceil(self.plans / self.targets)
        if plans == 0:
            return 1
        per_plan = math.ceil(keys / plans)
        return (
            math.ceil(plans / MAX_PAGE_SIZE)
            + max(1, math.ceil(keys / MAX_PAGE_SIZE))
            + plans * max(1, math.ceil(per_plan / MAX_PAGE_SIZE))
        )

    @property
    def api_calls_per_run(self) -> int:
        return self.api_calls_per_target * self.targets

    @property
    def seconds_per_run(self) -> float:
        """One target's API floor at the client-side rate (the targets are read at the same time),
        plus the run's CPU work at the memory's share of a vCPU."""
        floor = max(0, self.api_calls_per_target - self.burst) / self.max_rps
        share = min(1.0, self.memory_mb / LAMBDA_MB_PER_VCPU)
        cpu = (
            CPU_SECONDS_PER_RUN
            + CPU_SECONDS_PER_KEY * self.keys
            + CPU_SECONDS_PER_DATAPOINT * self.datapoints_per_run
        )
        return floor + cpu / share

    def worst_case(self) -> Usage:
        """The same account with every key at or above every level all month."""
        return replace(self, share_hot=1.0, share_above=1.0)


@dataclass(frozen=True)
class LineItem:
    service: str
    item: str
    amount: float
    unit: str
    monthly: float

    @property
    def quantity(self) -> str:
        if self.unit in ("GB", "GB-month"):
            return f"{self.amount * 1000:,.1f} MB" if self.amount < 1 else f"{self.amount:,.2f} {self.unit}"
        return f"{self.amount:,.0f} {self.unit}".rstrip()

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "item": self.item,
            "amount": round(self.amount, 6),
            "unit": self.unit,
            "usd": round(self.monthly, 6),
        }


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


class Line:
    """A row of the bill: its service; what it is, a format of ``u`` (the :class:`Usage`) and ``hours``;
    the unit of the quantity it shows (``shows``: by default its first term's); and its price, the sum
    of its terms, each (a quantity of :func:`quantities`, how many of it a price is for, the price's
    name in :class:`Prices`; a tiered price is priced by :func:`tiered`)."""

    def __init__(
        self, service: str, item: str, unit: str, *terms: tuple[str, float, str], shows: str = ""
    ) -> None:
        self.service, self.item, self.unit, self.terms = service, item, unit, terms
        self.shows = shows or terms[0][0]

    def priced(self, usage: Usage, found: Mapping[str, float], prices: Prices, hours: str) -> LineItem:
        monthly = 0.0
        for name, per, price_name in self.terms:
            price = getattr(prices, price_name)
            units = found[name] / per
            monthly += tiered(units, price) if isinstance(price, tuple) else units * price
        return LineItem(
            self.service, self.item.format(u=usage, hours=hours), found[self.shows], self.unit, monthly
        )


#: The lines of every stack, in the order printed.
LINES = (
    Line("CloudWatch", "custom metrics{hours}", "metrics", ("metric_months", 1, "metric_tiers"),
         shows="metrics"),
    Line("CloudWatch", "PutMetricData requests", "requests", ("requests", 1e3, "put_metric_data_per_1000")),
    Line("Lambda", "duration ({u.memory_mb} MB, ~{u.seconds_per_run:,.0f} s a run)", "GB-s",
         ("gb_seconds", 1, "lambda_gb_second")),
    Line("Lambda", "requests", "requests", ("runs", 1e6, "lambda_per_million_requests")),
    Line("CloudWatch Logs", "ingestion: the records and the run's log lines", "GB",
         ("ingested_gb", 1, "logs_ingest_gb")),
    Line("CloudWatch Logs", "storage ({u.retention_days} days' retention)", "GB-month",
         ("stored_gb", 1, "logs_storage_gb_month")),
    Line("CloudWatch Logs", "Logs Insights: the dashboard's queries ({u.dashboard_views_per_day} loads a "
         "day)", "GB", ("scanned_gb", 1, "logs_insights_gb_scanned")),
    Line("CloudWatch", "alarms", "", ("alarms", 1, "alarm_metric_month")),
    Line("CloudWatch", "dashboards", "", ("dashboards", 1, "dashboard_month")),
    Line("DynamoDB", "alert state (on-demand reads and writes)", "requests",
         ("state_reads", 1e6, "dynamodb_per_million_reads"),
         ("state_writes", 1e6, "dynamodb_per_million_writes"), shows="state_requests"),
    Line("SNS", "alert publishes and emails", "alerts",
         ("alerts", 1e6, "sns_per_million_publishes"), ("emails", 1e5, "sns_email_per_100k")),
    Line("KMS", "customer managed key of the alert topic", "", ("kms_keys", 1, "kms_key_month")),
    Line("EventBridge Scheduler", "invocations", "", ("runs", 1e6, "scheduler_per_million")),
)  # fmt: skip
#: The fast path's lines: its function, logs and schedule, and the DynamoDB it and the shared budget
#: add to both paths. It publishes metrics only in a run with alerts or failures (the alerts'
#: requests, at most ``alerts_per_month``), and no new series.
FAST_PATH_LINES = (
    Line("Lambda", "fast path duration ({u.fast_memory_mb} MB, ~{u.fast_seconds_per_run:,.1f} s a run, every "
         "{u.fast_minutes} min)", "GB-s", ("fast_gb_seconds", 1, "lambda_gb_second")),
    Line("Lambda", "fast path requests", "requests", ("fast_runs", 1e6, "lambda_per_million_requests")),
    Line("CloudWatch Logs", "fast path's log lines: ingestion and storage", "GB",
         ("fast_logged_gb", 1, "logs_ingest_gb"), ("fast_stored_gb", 1, "logs_storage_gb_month")),
    Line("CloudWatch", "fast path's PutMetricData (runs with alerts or failures only)", "requests",
         ("alerts", 1e3, "put_metric_data_per_1000")),
    Line("DynamoDB", "fast path: watch lists, lease, shared API budget (both paths)", "requests",
         ("fast_reads", 1e6, "dynamodb_per_million_reads"),
         ("fast_writes", 1e6, "dynamodb_per_million_writes"), shows="fast_requests"),
    Line("EventBridge Scheduler", "fast path invocations", "", ("fast_runs", 1e6, "scheduler_per_million")),
)  # fmt: skip
#: With ``--quota-endpoint``: the snapshots both paths write, what the full scan's Scan of the state
#: table reads more for them, and the endpoint's requests.
ENDPOINT_LINES = (
    Line("DynamoDB", "key snapshots: written by both paths, read by the state's Scan", "requests",
         ("snapshot_reads", 1e6, "dynamodb_per_million_reads"),
         ("snapshot_writes", 1e6, "dynamodb_per_million_writes"), shows="snapshot_requests"),
    Line("Lambda", "GET /quota requests ({u.endpoint_requests:g} million a month)", "requests",
         ("endpoint_requests", 1e6, "lambda_per_million_requests")),
    Line("Lambda", "GET /quota duration ({u.endpoint_requests:g} million, 128 MB)", "GB-s",
         ("endpoint_gb_seconds", 1, "lambda_gb_second")),
    Line("DynamoDB", "GET /quota reads (one BatchGetItem a request)", "read units",
         ("endpoint_reads", 1e6, "dynamodb_per_million_reads")),
    Line("CloudWatch Logs", "GET /quota's Lambda log lines", "GB",
         ("endpoint_logged_gb", 1, "logs_ingest_gb"), ("endpoint_stored_gb", 1, "logs_storage_gb_month")),
)  # fmt: skip
#: With ``--archive``: S3's requests and storage at ``--archive-age`` months, and Athena's statements.
ARCHIVE_LINES = (
    Line("S3", "archive: an object a run and target (PUT)", "requests",
         ("archive_puts", 1e3, "s3_put_per_1000")),
    Line("S3", "archive storage after {u.archive_age_months:g} months (Standard, then Glacier IR)", "GB",
         ("archive_standard_gb", 1, "s3_standard_gb_month"), ("archive_cold_gb", 1, "s3_glacier_ir_gb_month"),
         shows="archive_gb"),
    Line("S3", "archive: moves to Glacier Instant Retrieval", "objects",
         ("archive_transitions", 1e3, "s3_glacier_ir_transition_per_1000")),
    Line("Athena", "statements of a month ({u.statements} a month)", "TB",
         ("statement_tb", 1, "athena_per_tb_scanned")),
)  # fmt: skip
#: With ``--events``.
EVENT_LINES = (
    Line("EventBridge", "events, one per alert (eventBus)", "events",
         ("alerts", 1e6, "eventbridge_per_million_events")),
)  # fmt: skip


def quantities(usage: Usage) -> dict[str, float]:
    """What the lines count in a month, by name."""
    runs = usage.runs_per_month
    # One strongly consistent Scan a run (quota_monitor.alert.state): a read unit per 4 KB.
    state_reads = math.ceil(usage.keys * STATE_ITEM_BYTES / 4096) * runs
    # A claim and a confirmation per alert, in transactions: 2 write units each (quota_monitor.alert.state).
    state_writes = usage.alerts_per_month * STATE_WRITE_UNITS_PER_ALERT
    found: dict[str, float] = {
        "metrics": usage.custom_metrics,
        "metric_months": usage.custom_metrics * usage.billed_metric_fraction,
        "requests": math.ceil(usage.datapoints_per_run / 1000) * runs,
        "gb_seconds": usage.seconds_per_run * usage.memory_mb / 1024 * runs,
        "runs": runs,
        "ingested_gb": usage.log_bytes_per_run * runs / 1e9,
        "stored_gb": usage.log_bytes_per_run * (runs / DAYS_PER_MONTH) * usage.retention_days / 1e9,
        "scanned_gb": usage.insights_bytes_per_refresh * usage.dashboard_views_per_day * DAYS_PER_MONTH / 1e9,
        "alarms": usage.all_alarms,
        "dashboards": usage.dashboards,
        "state_reads": state_reads,
        "state_writes": state_writes,
        "state_requests": state_reads + state_writes,
        "alerts": usage.alerts_per_month,
        "emails": usage.alerts_per_month * usage.email_subscribers,
        "kms_keys": 1,
    }
    if usage.quota_endpoint:
        found |= endpoint_quantities(usage)
    if usage.archive:
        standard, cold = usage.archive_gb
        objects = runs * usage.targets
        aged = usage.archive_age_months * DAYS_PER_MONTH > usage.archive_cold_days
        found |= {
            "archive_puts": objects,
            "archive_standard_gb": standard,
            "archive_cold_gb": cold,
            "archive_gb": standard + cold,
            "archive_transitions": objects if aged else 0.0,
            "statement_tb": usage.statements * usage.archive_bytes_per_day * STATEMENT_DAYS / 1e12,
        }
    if not usage.fast_path:
        return found
    fast_runs = usage.fast_runs_per_month
    logged_gb = (FAST_LOG_BYTES_PER_RUN * fast_runs + LOG_BYTES_PER_ALERT * usage.alerts_per_month) / 1e9
    full_reads, full_writes = usage.full_fast_path_units
    # A key alerted by a fast run stays a candidate (its state read, strongly consistent: a unit)
    # every fast run until the next full scan sees it at its new level.
    alerted_reads = usage.alerts_per_month * math.ceil(usage.interval_minutes / usage.fast_minutes)
    reads = usage.fast_reads_per_run * fast_runs + full_reads * runs + alerted_reads
    writes = usage.fast_writes_per_run * fast_runs + full_writes * runs
    return found | {
        "fast_gb_seconds": usage.fast_seconds_per_run * usage.fast_memory_mb / 1024 * fast_runs,
        "fast_runs": fast_runs,
        "fast_logged_gb": logged_gb,
        "fast_stored_gb": logged_gb / DAYS_PER_MONTH * usage.retention_days,
        "fast_reads": reads,
        "fast_writes": writes,
        "fast_requests": reads + writes,
    }


def endpoint_quantities(usage: Usage) -> dict[str, float]:
    """The quota endpoint's quantities (:data:`ENDPOINT_LINES`)."""
    runs = usage.runs_per_month
    reads = math.ceil(usage.snapshot_bytes / 4096) * runs  # the strongly consistent Scan reads them too
    writes = usage.snapshot_write_units * runs + usage.fast_snapshot_write_units * usage.fast_snapshot_runs
    requests = usage.endpoint_requests * 1e6
    logged_gb = requests * (ENDPOINT_LOG_BYTES + 3 * EVENT_OVERHEAD_BYTES) / 1e9
    return {
        "snapshot_reads": reads,
        "snapshot_writes": writes,
        "snapshot_requests": reads + writes,
        "endpoint_requests": requests,
        "endpoint_gb_seconds": requests * ENDPOINT_MILLISECONDS / 1000 * ENDPOINT_MEMORY_MB / 1024,
        "endpoint_reads": requests * usage.endpoint_read_units,
        "endpoint_logged_gb": logged_gb,
        "endpoint_stored_gb": logged_gb / DAYS_PER_MONTH * usage.retention_days,
    }


def estimate(usage: Usage, prices: Prices = PRICES) -> Estimate:
    hours = f" x {usage.billed_metric_fraction:.0%} of hours" if usage.billed_metric_fraction < 1 else ""
    lines = (
        LINES
        + (FAST_PATH_LINES if usage.fast_path else ())
        + (EVENT_LINES if usage.events else ())
        + (ENDPOINT_LINES if usage.quota_endpoint else ())
        + (ARCHIVE_LINES if usage.archive else ())
    )
    found = quantities(usage)
    return Estimate(usage, [line.priced(usage, found, prices, hours) for line in lines])


# -- --from-scan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScannedAccount:
    """What a ``quota-monitor scan --json`` file says about an account, for the model."""

    keys: int
    plans: int
    quota_keys: int
    #: Keys at or above their first alert level (the default levels: the file has no tags).
    hot_keys: int
    key_record_bytes: float
    plan_record_bytes: float
    #: Accounts and regions among the keys.
    targets: int = 1

    def usage(self, base: Usage) -> Usage:
        return replace(
            base,
            targets=self.targets,
            keys=self.keys,
            plans=self.plans,
            quota_keys=self.quota_keys,
            share_hot=self.hot_keys / self.quota_keys if self.quota_keys else 0.0,
            share_above=self.hot_keys / self.keys if self.keys else 0.0,
            key_record_bytes=self.key_record_bytes,
            plan_record_bytes=self.plan_record_bytes,
        )


def _bad_item(path: str, index: int, name: str, value: object, allowed: str) -> UsageError:
    return UsageError(f"{path}: item {index}: {name}={value!r} is not allowed: {allowed}")


def _whole(path: str, index: int, row: dict[str, Any], name: str, *, nullable: bool) -> int | None:
    value = row[name]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        allowed = "a whole number of at least 0" + (", or null" if nullable else "")
        raise _bad_item(path, index, name, value, allowed)
    return value


def key_usage_from_json(path: str, index: int, row: object) -> KeyUsage:
    """One object of ``quota-monitor scan --json`` (README, "Scan your account"), checked."""
    if not isinstance(row, dict):
        raise UsageError(f"{path}: item {index} is {type(row).__name__}, not an object of the scan's fields")
    # accountId and region came with several targets: a file from before has neither.
    missing = [name for name in CONTRACT_FIELDS if name not in row and name not in ("accountId", "region")]
    if missing:
        raise UsageError(
            f"{path}: item {index} lacks {', '.join(missing)}: use quota-monitor scan --json output"
        )
    for name in ("usagePlanId", "usagePlanName", "apiKeyId"):
        if not isinstance(row[name], str) or not row[name]:
            raise _bad_item(path, index, name, row[name], "a non-empty string")
    if row["apiKeyName"] is not None and not isinstance(row["apiKeyName"], str):
        raise _bad_item(path, index, "apiKeyName", row["apiKeyName"], "a string or null")
    period = row["period"]
    if period not in PERIOD_TYPES:
        raise _bad_item(path, index, "period", period, f"one of {', '.join(PERIOD_TYPES)}")
    try:
        start = date.fromisoformat(str(row["periodStart"]))
    except ValueError:
        raise _bad_item(path, index, "periodStart", row["periodStart"], "a date, YYYY-MM-DD") from None
    used = _whole(path, index, row, "used", nullable=False) or 0
    remaining = _whole(path, index, row, "remaining", nullable=True)
    limit = _whole(path, index, row, "limit", nullable=True)
    utilization = row["utilization"]
    if utilization is not None and (
        isinstance(utilization, bool) or not isinstance(utilization, (int, float))
    ):
        raise _bad_item(path, index, "utilization", utilization, "a number, or null")
    if (limit is None) != (remaining is None) or (limit is None) != (utilization is None):
        raise UsageError(
            f"{path}: item {index}: remaining, limit and utilization must all be numbers (a plan with a "
            "quota) or all null (a plan without one)"
        )
    where = {name: row.get(name) for name in ("accountId", "region")}
    for name, value in where.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise _bad_item(path, index, name, value, "a non-empty string, or null")
    return KeyUsage(
        usage_plan_id=row["usagePlanId"],
        usage_plan_name=row["usagePlanName"],
        api_key_id=row["apiKeyId"],
        api_key_name=row["apiKeyName"],
        period=period,
        period_start=start,
        resets_at=period_containing(period, start).resets_at,
        used=used,
        remaining=remaining,
        limit=limit,
        utilization=None if utilization is None else float(utilization),
        target=None if where["region"] is None else Target(where["accountId"], str(where["region"])),
    )


def read_scan(path: str, levels: tuple[int, ...]) -> ScannedAccount:
    """Read a ``quota-monitor scan --json`` file; :class:`UsageError` (exit 2) says what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--from-scan {path}: cannot read it: {error}") from None
    try:
        rows = json.loads(text)
    except ValueError as error:
        raise UsageError(
            f"--from-scan {path}: not JSON ({error}): use quota-monitor scan --json > FILE"
        ) from None
    if not isinstance(rows, list):
        raise UsageError(
            f"--from-scan {path}: a JSON {type(rows).__name__}, not the array scan --json prints"
        )
    keys = [key_usage_from_json(path, index, row) for index, row in enumerate(rows)]
    now = datetime.now(UTC)
    result = ScanResult(now, (), tuple(keys), (), ScanStats(keys_scanned=len(keys)))
    key_bytes = plan_bytes = 0
    plan_records = 0
    for line in record_lines(
        result,
        levels={},
        with_metrics=frozenset(),
        forecast_settings=ForecastSettings(enabled=False),
        default_levels=levels,
    ):
        size = len(line.encode("utf-8")) + 1
        if f'"{RECORD}":"{KEY_RECORD}"' in line:
            key_bytes += size
        elif f'"{RECORD}":"{PLAN_RECORD}"' in line:
            plan_bytes += size
            plan_records += 1
    quota_keys = [key for key in keys if key.limit is not None]
    return ScannedAccount(
        keys=len(keys),
        plans=len({(key.target, key.usage_plan_id) for key in keys}),
        targets=max(1, len({key.target for key in keys})),
        quota_keys=len(quota_keys),
        hot_keys=sum(1 for key in quota_keys if level_reached(key, levels[:1])),
        key_record_bytes=key_bytes / len(keys) if keys else KEY_RECORD_BYTES,
        plan_record_bytes=plan_bytes / plan_records if plan_records else PLAN_RECORD_BYTES,
    )


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


def fast_interval(text: str) -> int:
    """``--fast-interval``: ``0`` (no fast path) or 1 to 60 minutes, like the stack's fastScheduleMinutes."""
    if text.strip() == "0":
        return 0
    minutes = interval_minutes(text)
    if minutes > MAX_FAST_MINUTES:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use 0 (off), or 1m to 60m")
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


def millions(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of millions, such as 0.5 or 20") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: use 0 to 100000 (millions a month)")
    return value


def region(text: str) -> str:
    if not _REGION.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS region name like us-east-1")
    return text


@dataclass(frozen=True)
class Option:
    """A flag of ``quota-monitor cost``: its parser (None: a switch) and help; it sets ``dest`` (by default
    the flag's name), and a :class:`Usage` field so named takes it as given, its default the field's."""

    flag: str
    parse: Callable[[str], Any] | None
    help: str | None
    dest: str = ""
    metavar: str = ""
    default: object = None

    @property
    def name(self) -> str:
        return self.dest or self.flag.removeprefix("--").replace("-", "_")


#: The flags, in the order ``--help`` lists them.
OPTIONS = (
    Option("--keys", whole_number(0, MAX_TOP),
           "API keys in the account and region (API Gateway allows at most 10,000); or --from-scan"),
    Option("--from-scan", str, "price the account a `quota-monitor scan --json` output describes: its keys, "
           "plans, share of hot keys and record sizes", metavar="FILE"),
    Option("--plans", whole_number(0, 10_000), "usage plans (default: one for every 50 keys, from 1 to 300)"),
    Option("--targets", whole_number(1, 1_000), "accounts x regions the monitor reads, each with --keys and "
           "--plans (REGIONS, spoke accounts; default 1)"),
    Option("--interval", interval_minutes, "how often the monitor runs (default 15m)", "interval_minutes"),
    Option("--fast-interval", fast_interval, "how often the fast path runs (the stack's fastScheduleMinutes; "
           "default 1m, 0 for off)", "fast_minutes", "INTERVAL"),
    Option("--fast-memory", whole_number(128, 10_240), "the fast path function's memory, MB (default 128)",
           "fast_memory_mb"),
    Option("--region", region, "AWS region (default us-east-1)", default=PRICES.region),
    Option("--key-metrics", key_metrics_option, "KEY_METRICS: auto (default), auto,top:N, all, none, top:N, "
           "above:P or above:P,top:N", metavar="SETTING"),
    Option("--share-hot", share, "for auto, the share of keys at or above their first alert level (default "
           "100%%, the worst)", metavar="SHARE"),
    Option("--share-above", share, "for above:P, the share of keys at or above P on average (default 10%%)",
           metavar="SHARE"),
    Option("--dashboard-views", whole_number(0, 100_000), "dashboard loads and refreshes a day (default "
           f"{DASHBOARD_VIEWS_PER_DAY})", "dashboard_views_per_day", "N"),
    Option("--retention", whole_number(1, 3653), "days the function's log group keeps the records (default "
           f"{RETENTION_DAYS}, the stack's)", "retention_days", "DAYS"),
    Option("--memory", whole_number(128, 10_240), "Lambda memory, MB", "memory_mb"),
    Option("--max-rps", max_rps, "APIGATEWAY_MAX_RPS"),
    Option("--alarms", whole_number(0), "alarms of the stack"),
    Option("--dashboards", whole_number(0), None),
    Option("--alerts", whole_number(0), "alerts a month (default 100)", "alerts_per_month"),
    Option("--events", None, "with EVENT_BUS_NAME (the stack's eventBus): an EventBridge event per alert"),
    Option("--quota-endpoint", None, "with the quota endpoint (the stack's quotaEndpoint): every key's "
           "snapshot, and GET /quota's requests"),
    Option("--endpoint-requests", millions, "GET /quota requests a month, in millions (default 1)",
           metavar="MILLIONS"),
    Option("--archive", None, "with the usage archive (the stack's archive): records in S3, Athena"),
    Option("--archive-age", whole_number(1, 120), "the archive's age in months, for its storage (default 12)",
           "archive_age_months", "MONTHS"),
    Option("--statements", whole_number(0, 10_000), "statements of a month read with Athena, a month "
           "(default 1)"),
    Option("--json", None, "print the estimate as one JSON object"),
)  # fmt: skip
#: The defaults of :class:`Usage`, its flags' too.
USAGE_DEFAULTS = {field.name: field.default for field in fields(Usage) if field.default is not MISSING}


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "cost",
        help="estimate what the monitor costs a month",
        description="Estimate the monitor's own monthly AWS bill (list prices, no free tier) "
        "from its price table; see docs/cost.md.",
    )
    for option in OPTIONS:
        if option.parse is None:
            parser.add_argument(option.flag, dest=option.name, action="store_true", help=option.help)
        else:
            parser.add_argument(
                option.flag,
                dest=option.name,
                type=option.parse,
                default=USAGE_DEFAULTS.get(option.name, option.default),
                metavar=option.metavar or option.flag.removeprefix("--").replace("-", "_").upper(),
                help=option.help,
            )
    parser.set_defaults(run=run_guarded(run))


def default_plans(keys: int) -> int:
    return min(300, max(1, math.ceil(keys / 50)))


def usage_from(args: argparse.Namespace) -> Usage:
    if args.from_scan is not None and args.keys is not None:
        raise UsageError("use --keys or --from-scan, not both: the file says how many keys there are")
    if args.from_scan is None and args.keys is None:
        raise UsageError("say how many keys: --keys N, or --from-scan FILE (quota-monitor scan --json)")
    targets = args.targets
    given = {option.name: getattr(args, option.name) for option in OPTIONS if option.name in USAGE_DEFAULTS}
    base = Usage(
        keys=(args.keys or 0) * targets,
        plans=(args.plans if args.plans is not None else default_plans(args.keys or 0)) * targets,
        **given,
    )
    if args.from_scan is None:
        return base
    scanned = read_scan(args.from_scan, settings_from(args).levels)
    usage = scanned.usage(base)
    return usage if args.plans is None else replace(usage, plans=args.plans)


def alternatives(usage: Usage) -> list[tuple[str, float]]:
    """The same account under other KEY_METRICS settings, to compare."""
    options = [AUTO_KEYS, ALL_KEYS, parse_key_metrics("above:80"), parse_key_metrics("top:500"), NO_KEYS]
    if usage.key_metrics not in options:
        options.insert(1, usage.key_metrics)
    return [(option.describe(), estimate(replace(usage, key_metrics=option)).total) for option in options]


def as_json(usage: Usage, result: Estimate, source: str | None) -> dict[str, Any]:
    worst = estimate(usage.worst_case())
    return {
        "keys": usage.keys,
        "plans": usage.plans,
        "intervalMinutes": usage.interval_minutes,
        "fastIntervalMinutes": usage.fast_minutes,
        "keyMetrics": usage.key_metrics.describe(),
        "fromScan": source,
        "region": PRICES.region,
        "pricesAsOf": PRICES.as_of,
        "assumptions": {
            "shareHot": usage.share_hot,
            "shareAbove": usage.share_above,
            "dashboardViewsPerDay": usage.dashboard_views_per_day,
            "retentionDays": usage.retention_days,
            "keyRecordBytes": round(usage.key_record_bytes, 1),
            "planRecordBytes": round(usage.plan_record_bytes, 1),
            "memoryMb": usage.memory_mb,
        },
        "metricSeries": round(usage.custom_metrics, 1),
        "logBytesPerRun": round(usage.log_bytes_per_run),
        "logsInsightsBytesPerRefresh": round(usage.insights_bytes_per_refresh),
        "lineItems": [item.as_json() for item in result.items],
        "totalUsd": round(result.total, 2),
        "worstCaseUsd": round(worst.total, 2),
        "alternatives": {setting: round(total, 2) for setting, total in alternatives(usage)},
    }


def run(args: argparse.Namespace) -> int:
    usage = usage_from(args)
    result = estimate(usage)
    notes = [f"List prices in {PRICES.region} as of {PRICES.as_of}, no free tier; see docs/cost.md."]
    if args.region != PRICES.region:
        notes.append(f"Prices for {args.region} are not in the table: shown at {PRICES.region} prices.")
    if usage.quota_endpoint:
        notes.append(
            f"Not counted: API Gateway bills each GET /quota request as any request to your API "
            f"(${REST_API_PER_MILLION * usage.endpoint_requests:.2f} for {usage.endpoint_requests:g} million "
            f"at ${REST_API_PER_MILLION:.2f} a million)."
        )
    if args.json:
        json.dump(as_json(usage, result, args.from_scan), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_estimate(usage, result, args.from_scan)
    for note in notes:
        print(note, file=sys.stderr)
    return EXIT_OK


def print_estimate(usage: Usage, result: Estimate, source: str | None) -> None:
    selection = usage.key_metrics
    if selection.auto:
        hot = f", {usage.share_hot:.0%} of keys hot" + (" (the worst case)" if usage.share_hot >= 1 else "")
    elif selection.above is not None:
        hot = f", {usage.share_above:.0%} of keys above {selection.above:g}%"
    else:
        hot = ""
    # Text, not markup: "top:100" would otherwise become an emoji.
    title = Text(
        f"Monthly cost of the monitor: {usage.keys:,} keys, {usage.plans:,} usage plans, every "
        f"{usage.interval_minutes} min"
        + (f", fast path every {usage.fast_minutes} min" if usage.fast_path else ", no fast path")
        + f", KEY_METRICS={selection.describe()}{hot}"
        + (f" (from {source})" if source else "")
    )
    table = Table(title=title, title_justify="left")
    for column, justify in (("service", "left"), ("what", "left"), ("a month", "right"), ("USD", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for item in result.items:
        table.add_row(item.service, item.item, item.quantity, f"{item.monthly:,.2f}")
    table.add_row("", "total", "", f"{result.total:,.2f}", style="bold")
    out = console()
    out.print(table)
    worst = estimate(usage.worst_case()).total
    if worst > result.total + 0.005:
        out.print(Text(f"Worst case (every key at or above every level all month): {worst:,.2f} USD a month"))
    out.print(
        Text(
            f"Logs: {usage.log_bytes_per_run / 1e6:,.2f} MB a run ({usage.key_record_bytes:.0f} bytes a key "
            f"record); a dashboard load scans {usage.insights_bytes_per_refresh / 1e6:,.1f} MB at most."
        )
    )
    out.print(
        "The same account under other KEY_METRICS settings (alerts and the records cover every key in all):"
    )
    for setting, total in alternatives(usage):
        assumption = (
            f", {usage.share_hot:.0%} of keys hot"
            if setting.startswith("auto")
            else f", {usage.share_above:.0%} of keys above"
            if setting.startswith("above")
            else ""
        )
        out.print(Text(f"  KEY_METRICS={setting}{assumption}: {total:,.2f} USD a month"))
