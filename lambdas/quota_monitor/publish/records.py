"""Per-key records: one compact JSON line per key per run, and one per plan, for the function's log.

Every key of every run gets a record, whatever ``KEY_METRICS`` selects, so that the dashboard's
Logs Insights widgets (``infra/dashboard.py``) show every key without a metric per key (what each
costs: docs/cost.md, "Records and logs"). The Lambda handler prints each line to stdout, which
Lambda sends to the function's log group as one log event a line
(docs/aws-behaviour.md#cloudwatch-logs-and-logs-insights).

A key record's top level is exactly the scan JSON contract
(:meth:`quota_monitor.models.KeyUsage.as_json`), with the same values, plus ``record`` (``"key"``,
what a query filters on), ``runAt`` (when the run read the usage, UTC to the second, the same for
every record of a run), ``levels`` (the key's alert levels) and ``level`` (the highest of them
reached, 0 for none, in whole numbers as alerts compare them; both absent for plans without a
quota), ``metrics`` (whether the key has per-key metrics this run) and, only when the key is
forecast to run out before its quota resets, ``exhaustsAt`` (UTC, to the second).

A plan record (``"plan"``, one per plan with keys in the scan) rolls its keys up: ``usagePlanId``,
``usagePlanName``, ``period``, ``limit``, ``keys``, ``used`` (all keys together), ``maxUtilization``
with ``hottestKeyId`` and ``hottestKeyName`` (highest utilization, or most requests for a plan
without a quota), ``keysAtLevel`` (keys at or above their lowest level), ``keysForecast``,
``accountId`` and ``region``. When the monitor reads more than one account or region, each run also
writes a target record per target (``"target"``): its plans, keys, errors, API calls and whether
its metrics were published, so that the dashboard shows each target's health without a health
metric per target.

Nothing here sees an API key's value: a record is made of a :class:`~quota_monitor.models.KeyUsage`,
which has none. Names are written as they are (UTF-8, not escaped); no field holds free text of the
monitor's own making, so a record is never split across lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from quota_monitor.compute.forecast import forecast
from quota_monitor.compute.levels import level_reached

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
    from datetime import datetime

    from quota_monitor.config import ForecastSettings
    from quota_monitor.models import KeyUsage, ScanResult

#: The scan JSON contract (:meth:`quota_monitor.models.KeyUsage.as_json`), field by field.
USAGE_PLAN_ID = "usagePlanId"
USAGE_PLAN_NAME = "usagePlanName"
API_KEY_ID = "apiKeyId"
API_KEY_NAME = "apiKeyName"
PERIOD = "period"
PERIOD_START = "periodStart"
USED = "used"
REMAINING = "remaining"
LIMIT = "limit"
UTILIZATION = "utilization"
ACCOUNT_ID = "accountId"
REGION = "region"
CONTRACT_FIELDS = (
    USAGE_PLAN_ID,
    USAGE_PLAN_NAME,
    API_KEY_ID,
    API_KEY_NAME,
    PERIOD,
    PERIOD_START,
    USED,
    REMAINING,
    LIMIT,
    UTILIZATION,
    ACCOUNT_ID,
    REGION,
)
#: The field every record carries, and its values.
RECORD = "record"
KEY_RECORD = "key"
PLAN_RECORD = "plan"
TARGET_RECORD = "target"
#: The fields a key record adds to the scan JSON contract.
RUN_AT = "runAt"
LEVELS = "levels"
LEVEL = "level"
METRICS = "metrics"
EXHAUSTS_AT = "exhaustsAt"
#: The fields a plan record adds to its plan's id, name, period, limit and used.
KEYS = "keys"
MAX_UTILIZATION = "maxUtilization"
HOTTEST_KEY_ID = "hottestKeyId"
HOTTEST_KEY_NAME = "hottestKeyName"
KEYS_AT_LEVEL = "keysAtLevel"
KEYS_FORECAST = "keysForecast"
#: Every field a key record can have, and every field of a plan record, in the order written.
KEY_RECORD_FIELDS = (RECORD, RUN_AT, *CONTRACT_FIELDS, LEVELS, LEVEL, METRICS, EXHAUSTS_AT)
PLAN_RECORD_FIELDS = (
    RECORD,
    RUN_AT,
    USAGE_PLAN_ID,
    USAGE_PLAN_NAME,
    PERIOD,
    LIMIT,
    KEYS,
    USED,
    MAX_UTILIZATION,
    HOTTEST_KEY_ID,
    HOTTEST_KEY_NAME,
    KEYS_AT_LEVEL,
    KEYS_FORECAST,
    ACCOUNT_ID,
    REGION,
)
#: A target record's fields, when the monitor reads more than one account or region: its health.
PLANS = "plans"
PLANS_SCANNED = "plansScanned"
SCAN_ERRORS = "scanErrors"
API_CALLS = "apiCalls"
THROTTLES = "throttles"
DURATION_SECONDS = "durationSeconds"
METRICS_PUBLISHED = "metricsPublished"
TARGET_RECORD_FIELDS = (
    RECORD,
    RUN_AT,
    ACCOUNT_ID,
    REGION,
    PLANS,
    PLANS_SCANNED,
    KEYS,
    SCAN_ERRORS,
    API_CALLS,
    THROTTLES,
    DURATION_SECONDS,
    METRICS_PUBLISHED,
)
#: Lines handed to one write: fewer system calls than a print a line, and a bounded buffer.
LINES_PER_WRITE = 500


def timestamp(at: datetime) -> str:
    """``2026-10-31T12:00:00Z``: UTC to the second, the shortest form Logs Insights sorts as text."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def key_record(
    key: KeyUsage,
    *,
    run_at: str,
    levels: tuple[int, ...],
    metrics: bool,
    exhausts_at: datetime | None = None,
) -> dict[str, Any]:
    """One key's record (module doc): the scan JSON contract plus what a reader filters on."""
    record: dict[str, Any] = {RECORD: KEY_RECORD, RUN_AT: run_at, **key.as_json()}
    if key.limit is not None and key.remaining is not None:
        record[LEVELS] = list(levels)
        record[LEVEL] = level_reached(key, levels)
    record[METRICS] = metrics
    if exhausts_at is not None:
        record[EXHAUSTS_AT] = timestamp(exhausts_at)
    return record


@dataclass
class _PlanRollUp:
    name: str
    period: str
    limit: int | None
    keys: int = 0
    used: int = 0
    hottest: KeyUsage | None = None
    at_level: int = 0
    forecast: int = 0

    def add(self, key: KeyUsage, *, at_level: bool, forecast: bool) -> None:
        self.keys += 1
        self.used += key.used
        self.at_level += at_level
        self.forecast += forecast
        if self.hottest is None or _hotter(key, self.hottest):
            self.hottest = key


def _hotter(key: KeyUsage, than: KeyUsage) -> bool:
    mine = (key.utilization or 0.0, key.used)
    theirs = (than.utilization or 0.0, than.used)
    return mine > theirs or (mine == theirs and key.api_key_id < than.api_key_id)


def plan_record(plan_id: str, roll_up: _PlanRollUp, *, run_at: str) -> dict[str, Any]:
    hottest = roll_up.hottest
    return {
        RECORD: PLAN_RECORD,
        RUN_AT: run_at,
        USAGE_PLAN_ID: plan_id,
        USAGE_PLAN_NAME: roll_up.name,
        PERIOD: roll_up.period,
        LIMIT: roll_up.limit,
        KEYS: roll_up.keys,
        USED: roll_up.used,
        MAX_UTILIZATION: None if hottest is None else hottest.utilization,
        HOTTEST_KEY_ID: None if hottest is None else hottest.api_key_id,
        HOTTEST_KEY_NAME: None if hottest is None else hottest.api_key_name,
        KEYS_AT_LEVEL: roll_up.at_level,
        KEYS_FORECAST: roll_up.forecast,
        ACCOUNT_ID: None if hottest is None or hottest.target is None else hottest.target.account_id,
        REGION: None if hottest is None or hottest.target is None else hottest.target.region,
    }


def target_record(result: ScanResult, *, metrics_published: bool) -> str:
    """One target's health in a run (written when the monitor reads more than one target): what the
    dashboard's targets table shows, without a health metric per target."""
    stats, target = result.stats, result.target
    return _dumps(
        {
            RECORD: TARGET_RECORD,
            RUN_AT: timestamp(result.scanned_at),
            ACCOUNT_ID: None if target is None else target.account_id,
            REGION: None if target is None else target.region,
            PLANS: len(result.plans),
            PLANS_SCANNED: stats.plans_scanned,
            KEYS: stats.keys_scanned,
            SCAN_ERRORS: len(result.failures),
            API_CALLS: stats.api_calls,
            THROTTLES: stats.throttles,
            DURATION_SECONDS: round(stats.duration_seconds, 3),
            METRICS_PUBLISHED: metrics_published,
        }
    )


def record_lines(
    result: ScanResult,
    *,
    levels: Mapping[tuple[str, str], tuple[int, ...]],
    with_metrics: Collection[tuple[str, str]],
    forecast_settings: ForecastSettings,
    default_levels: tuple[int, ...],
) -> Iterator[str]:
    """A run's records, made as they are consumed: every key of the scan in scan order, then one
    record per plan with keys.

    ``levels`` holds each key's alert levels by (plan id, key id) (``default_levels`` for a key not
    in it); ``with_metrics`` the keys that get per-key metrics this run.
    """
    run_at = timestamp(result.scanned_at)
    plans: dict[str, _PlanRollUp] = {}
    for key in result.keys:
        pair = (key.usage_plan_id, key.api_key_id)
        key_levels = levels.get(pair, default_levels)
        projected = forecast(key, result.scanned_at, forecast_settings)
        exhausts_at = None if projected is None else projected.exhausts_at
        yield _dumps(
            key_record(
                key, run_at=run_at, levels=key_levels, metrics=pair in with_metrics, exhausts_at=exhausts_at
            )
        )
        roll_up = plans.get(key.usage_plan_id)
        if roll_up is None:
            roll_up = plans[key.usage_plan_id] = _PlanRollUp(key.usage_plan_name, key.period, key.limit)
        roll_up.add(key, at_level=bool(level_reached(key, key_levels[:1])), forecast=projected is not None)
    for plan_id, roll_up in plans.items():
        yield _dumps(plan_record(plan_id, roll_up, run_at=run_at))


@dataclass(frozen=True)
class RecordsWritten:
    """What :func:`write_records` wrote: lines, and their UTF-8 bytes with the newlines."""

    records: int = 0
    bytes: int = 0

    def summary(self) -> dict[str, int]:
        return {"records": self.records, "recordBytes": self.bytes}


def write_records(lines: Iterable[str], write: Callable[[str], object]) -> RecordsWritten:
    """Write each line, newline-terminated, a few hundred at a time; count them and their bytes."""
    records = size = 0
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        records += 1
        size += len(line.encode("utf-8")) + 1
        if len(chunk) >= LINES_PER_WRITE:
            write("\n".join(chunk) + "\n")
            chunk = []
    if chunk:
        write("\n".join(chunk) + "\n")
    return RecordsWritten(records, size)
