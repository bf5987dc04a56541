"""The dashboard's Logs Insights tables, computed in the terminal from the records (for ``demo``).

Each function does what the widget's query does (``infra/record_views.py``): keep each key's (or
plan's) latest record, then filter, sort and cut the same way, and shows the same columns.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from quota_monitor import KEY_RECORD, PLAN_RECORD, RECORD, TARGET_RECORD

if TYPE_CHECKING:
    from collections.abc import Iterable

Record = dict[str, Any]


def parse_records(lines: Iterable[str]) -> tuple[list[Record], list[str]]:
    """The records among a run's stdout lines, and the other lines (the function's log)."""
    records: list[Record] = []
    others: list[str] = []
    for line in lines:
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get(RECORD) in (KEY_RECORD, PLAN_RECORD, TARGET_RECORD):
            records.append(parsed)
        elif line.strip():
            others.append(line)
    return records, others


def latest(records: Iterable[Record], kind: str) -> list[Record]:
    """Each key's (or plan's) latest record of ``kind``, as ``stats latest(...) by`` keeps it."""
    found: dict[tuple[str, ...], Record] = {}
    for record in records:
        if record.get(RECORD) == kind:
            where = (str(record.get("accountId")), str(record.get("region")))
            found[(*where, str(record.get("usagePlanId")), str(record.get("apiKeyId", "")))] = record
    return list(found.values())


def _pct(value: object) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.1f}"


def _n(value: object) -> str:
    return "-" if not isinstance(value, int) else f"{value:,}"


def _key_table(title: str, rows: list[Record]) -> Table:
    table = Table(title=Text(title), title_justify="left")
    for column in ("plan", "key", "%", "used", "left", "quota", "per", "alert level", "metric", "key id"):
        table.add_column(column, justify="right" if column in ("%", "used", "left", "quota") else "left")
    for row in rows:
        table.add_row(
            row["usagePlanName"],
            row["apiKeyName"] or "-",
            _pct(row["utilization"]),
            _n(row["used"]),
            _n(row["remaining"]),
            _n(row["limit"]),
            row["period"],
            str(row.get("level", "-")),
            "yes" if row.get("metrics") else "",
            row["apiKeyId"],
        )
    return table


def _by_utilization(rows: Iterable[Record]) -> list[Record]:
    return sorted(rows, key=lambda row: -(row.get("utilization") or -1.0))


def most_used(records: Iterable[Record], *, limit: int = 8) -> Table:
    return _key_table(
        f"Most used keys now (top {limit})", _by_utilization(latest(records, KEY_RECORD))[:limit]
    )


def find(records: Iterable[Record], text: str, *, limit: int = 12) -> Table:
    """The search box: a case-insensitive match on the key's or plan's id or name."""
    pattern = re.compile(text, re.IGNORECASE)
    fields = ("apiKeyId", "apiKeyName", "usagePlanId", "usagePlanName")
    rows = [
        row
        for row in latest(records, KEY_RECORD)
        if any(pattern.search(str(row.get(f) or "")) for f in fields)
    ]
    return _key_table(
        f"Keys and plans matching {text!r} in the 'Key or plan' box", _by_utilization(rows)[:limit]
    )


def plans(records: Iterable[Record]) -> Table:
    table = Table(title="Plans and their hottest key", title_justify="left")
    for column in (
        "plan",
        "hottest %",
        "hottest key",
        "keys at level",
        "keys forecast",
        "keys",
        "used",
        "quota",
    ):
        table.add_column(column, justify="left" if column in ("plan", "hottest key") else "right")
    rows = sorted(latest(records, PLAN_RECORD), key=lambda row: -(row.get("maxUtilization") or -1.0))
    for row in rows:
        table.add_row(
            row["usagePlanName"],
            _pct(row["maxUtilization"]),
            row["hottestKeyName"] or row["hottestKeyId"] or "-",
            str(row["keysAtLevel"]),
            str(row["keysForecast"]),
            str(row["keys"]),
            _n(row["used"]),
            _n(row["limit"]),
        )
    return table


def forecast(records: Iterable[Record]) -> Table:
    table = Table(title="Keys forecast to run out before their quota resets (UTC)", title_justify="left")
    for column in ("runs out at", "plan", "key", "%", "left", "quota", "per"):
        table.add_column(column, justify="right" if column in ("%", "left", "quota") else "left")
    rows = sorted(
        (row for row in latest(records, KEY_RECORD) if row.get("exhaustsAt")),
        key=lambda row: row["exhaustsAt"],
    )
    for row in rows:
        table.add_row(
            row["exhaustsAt"],
            row["usagePlanName"],
            row["apiKeyName"] or row["apiKeyId"],
            _pct(row["utilization"]),
            _n(row["remaining"]),
            _n(row["limit"]),
            row["period"],
        )
    return table
