"""The dashboard's Logs Insights views of the records: every key without a metric per key.

Each run writes one record per key and per plan to the function's log group
(``quota_monitor.publish.records``); these queries read them back:

- the most used keys now;
- any key or plan found by id or name, through a dashboard variable (a text box);
- every plan with its hottest key;
- the keys forecast to run out before their quota resets.

Each query selects the latest record of each key (or plan) in the dashboard's time range, which is
the records window (:func:`records_window`): one run's records, two at most, so a refresh scans
megabytes (docs/cost.md, "Logs Insights"). Field names come from the runtime's record module; one
named like a command or keyword (the records' ``limit``) is quoted with backticks, which building
the dashboard checks (:func:`bare_reserved`), so a query that breaks this fails the synth. The tests
hold each query's exact text (tests/infra/test_record_views.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quota_monitor import (
    ACCOUNT_ID,
    API_CALLS,
    API_KEY_ID,
    API_KEY_NAME,
    DURATION_SECONDS,
    EXHAUSTS_AT,
    HOTTEST_KEY_ID,
    HOTTEST_KEY_NAME,
    KEY_RECORD,
    KEY_RECORD_FIELDS,
    KEYS,
    KEYS_AT_LEVEL,
    KEYS_FORECAST,
    LEVEL,
    LIMIT,
    MAX_UTILIZATION,
    METRICS,
    METRICS_PUBLISHED,
    PERIOD,
    PLAN_RECORD,
    PLAN_RECORD_FIELDS,
    PLANS,
    PLANS_SCANNED,
    RECORD,
    REGION,
    REMAINING,
    SCAN_ERRORS,
    TARGET_RECORD,
    TARGET_RECORD_FIELDS,
    THROTTLES,
    USAGE_PLAN_ID,
    USAGE_PLAN_NAME,
    USED,
    UTILIZATION,
)

if TYPE_CHECKING:
    from collections.abc import Collection

#: What the "Key or plan" box replaces in the dashboard's JSON (a pattern variable: CloudWatch
#: substitutes the typed text for every match of this pattern, docs/aws-behaviour.md#cloudwatch-dashboards).
SEARCH_PATTERN = "__quota_key_or_plan__"
SEARCH_VARIABLE_ID = "keyOrPlan"
SEARCH_LABEL = "Key or plan (id or name)"
#: What the box holds when the dashboard opens: any character, i.e. every key.
SEARCH_DEFAULT = "."
#: Minutes the records window adds to the schedule interval: a run's records are written over the
#: seconds to minutes the run takes, and scheduled runs start a little late at times.
WINDOW_MARGIN_MINUTES = 5
#: Rows a table shows at most.
TOP_KEYS = 50
FOUND_KEYS = 200
PLAN_ROWS = 1_000
FORECAST_KEYS = 100
#: The query language's commands and keywords (CloudWatch Logs User Guide, "CloudWatch Logs Insights
#: language query syntax"): a field with one of these names is quoted with backticks.
RESERVED = frozenset(
    {"fields", "filter", "stats", "sort", "limit", "display", "parse", "dedup"}
    | {"and", "or", "not", "like", "in", "as", "by", "asc", "desc"}
)
#: A command's parts: a `quoted name`, a "string", a /regex/, or a bare word.
_PART = re.compile(r'`[^`]*`|"[^"]*"|/[^/]*/|[\w@.$]+')


def records_window(schedule_minutes: int) -> int:
    """Minutes of records the widgets read: the interval and a margin, so that the latest run is
    always in it and at most two runs are."""
    return schedule_minutes + WINDOW_MARGIN_MINUTES


def _q(name: str) -> str:
    """A field in a query: in backticks when it has a command's or keyword's name (the records' ``limit``)."""
    return f"`{name}`" if name in RESERVED else name


@dataclass(frozen=True)
class RecordView:
    """One Logs Insights widget: its title, its query's commands, and its size on the grid."""

    title: str
    commands: tuple[str, ...]
    width: int = 12
    height: int = 8

    @property
    def query(self) -> str:
        """The query as the dashboard runs it (without its ``SOURCE``, which the widget adds)."""
        return "\n| ".join(self.commands)


def bare_reserved(commands: Collection[str], fields: Collection[str]) -> set[str]:
    """The fields named like a command or keyword (:data:`RESERVED`) that a query's commands use
    outside backticks, strings and regexes; each command's first word is the command itself. A
    field named like a keyword would also be found where the keyword is used: no record field is."""
    reserved = RESERVED.intersection(fields)
    return {
        part for command in commands for part in _PART.findall(command.partition(" ")[2]) if part in reserved
    }


def _latest(*pairs: tuple[str, str]) -> str:
    return ", ".join(f"latest({_q(field)}) as {alias}" for field, alias in pairs)


#: Each key's latest record, as the key tables show it: (field, column).
_KEY_COLUMNS = (
    (USAGE_PLAN_NAME, "plan"),
    (API_KEY_NAME, "keyName"),
    (UTILIZATION, "pct"),
    (USED, "usedNow"),
    (REMAINING, "left"),
    (LIMIT, "quota"),
    (PERIOD, "per"),
    (LEVEL, "alertLevel"),
    (METRICS, "metric"),
)
_KEY_DISPLAY = (
    "display plan, keyName, pct, usedNow, left, quota, per, alertLevel, metric, "
    f"{API_KEY_ID}, {USAGE_PLAN_ID}"
)
_IS_KEY = f'{_q(RECORD)} = "{KEY_RECORD}"'
#: With several targets, the fields that say where a plan or key is: grouped on and shown.
_WHERE = (ACCOUNT_ID, REGION)


def _by(*fields: str, several: bool) -> str:
    return "by " + ", ".join((*_WHERE, *fields) if several else fields)


def _shown(display: str, *, several: bool) -> str:
    return f"{display}, {', '.join(_WHERE)}" if several else display


def most_used_keys(*, several: bool = False) -> RecordView:
    return RecordView(
        f"Most used keys now (top {TOP_KEYS}, from the records)",
        (
            f"filter {_IS_KEY}",
            f"stats {_latest(*_KEY_COLUMNS)} {_by(USAGE_PLAN_ID, API_KEY_ID, several=several)}",
            "sort pct desc",
            f"limit {TOP_KEYS}",
            _shown(_KEY_DISPLAY, several=several),
        ),
    )


def find_key_or_plan(*, several: bool = False) -> RecordView:
    matches = " or ".join(
        f"{_q(field)} like /(?i){SEARCH_PATTERN}/"
        for field in (API_KEY_ID, API_KEY_NAME, USAGE_PLAN_ID, USAGE_PLAN_NAME)
    )
    return RecordView(
        f"Keys and plans matching the '{SEARCH_LABEL}' box (every key until you type)",
        (
            f"filter {_IS_KEY} and ({matches})",
            f"stats {_latest(*_KEY_COLUMNS)} {_by(USAGE_PLAN_ID, API_KEY_ID, several=several)}",
            "sort pct desc",
            f"limit {FOUND_KEYS}",
            _shown(_KEY_DISPLAY, several=several),
        ),
    )


def plans_and_hottest_keys(*, several: bool = False) -> RecordView:
    columns = (
        (USAGE_PLAN_NAME, "plan"),
        (MAX_UTILIZATION, "hottestPct"),
        (HOTTEST_KEY_NAME, "hottestKey"),
        (HOTTEST_KEY_ID, "hottestKeyId"),
        (KEYS_AT_LEVEL, "keysAtLevel"),
        (KEYS_FORECAST, "keysForecast"),
        (KEYS, "keyCount"),
        (USED, "usedTotal"),
        (LIMIT, "quota"),
        (PERIOD, "per"),
    )
    return RecordView(
        "Plans and their hottest key (from the records)",
        (
            f'filter {_q(RECORD)} = "{PLAN_RECORD}"',
            f"stats {_latest(*columns)} {_by(USAGE_PLAN_ID, several=several)}",
            "sort hottestPct desc",
            f"limit {PLAN_ROWS}",
            _shown(
                "display plan, hottestPct, hottestKey, keysAtLevel, keysForecast, keyCount, usedTotal, "
                f"quota, per, hottestKeyId, {USAGE_PLAN_ID}",
                several=several,
            ),
        ),
    )


def keys_forecast_to_run_out(*, several: bool = False) -> RecordView:
    return RecordView(
        "Keys forecast to run out before their quota resets (UTC)",
        (
            f"filter {_IS_KEY} and ispresent({_q(EXHAUSTS_AT)})",
            f"stats {_latest((EXHAUSTS_AT, 'runsOutAt'), *_KEY_COLUMNS[:7])} "
            f"{_by(USAGE_PLAN_ID, API_KEY_ID, several=several)}",
            "sort runsOutAt asc",
            f"limit {FORECAST_KEYS}",
            _shown(
                f"display runsOutAt, plan, keyName, pct, left, quota, per, {API_KEY_ID}, {USAGE_PLAN_ID}",
                several=several,
            ),
        ),
    )


def targets_health() -> RecordView:
    """Each account and region the monitor reads, as its latest run saw it (the target records)."""
    columns = (
        (PLANS, "plans"),
        (PLANS_SCANNED, "plansRead"),
        (KEYS, "keys"),
        (SCAN_ERRORS, "errors"),
        (API_CALLS, "calls"),
        (THROTTLES, "throttled"),
        (DURATION_SECONDS, "seconds"),
        (METRICS_PUBLISHED, "metricsPublished"),
    )
    return RecordView(
        "Accounts and regions: each one's latest run (from the records)",
        (
            f'filter {_q(RECORD)} = "{TARGET_RECORD}"',
            f"stats {_latest(*columns)} by {ACCOUNT_ID}, {REGION}",
            "sort errors desc",
            f"display {ACCOUNT_ID}, {REGION}, plans, plansRead, keys, errors, calls, throttled, seconds, "
            "metricsPublished",
        ),
        width=24,
        height=6,
    )


def record_views(*, several: bool = False) -> list[RecordView]:
    """Every Logs Insights view of the dashboard, each checked for bare reserved field names
    (:func:`bare_reserved`). With several targets (accounts or regions), the keys and plans are told
    apart by account and region, and a table shows each target's latest run."""
    views = [
        most_used_keys(several=several),
        find_key_or_plan(several=several),
        plans_and_hottest_keys(several=several),
        keys_forecast_to_run_out(several=several),
        *([targets_health()] if several else []),
    ]
    fields = {*KEY_RECORD_FIELDS, *PLAN_RECORD_FIELDS, *TARGET_RECORD_FIELDS}
    for view in views:
        if bare := bare_reserved(view.commands, fields):
            raise ValueError(f"{view.title}: quote {', '.join(sorted(bare))} with backticks\n{view.query}")
    return views
