"""Terminal rendering: the scan table, failures, and numbers a person reads at a glance."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from quota_monitor import KeyUsage, ScanFailure, ScanResult


def console(*, stderr: bool = False) -> Console:
    """A console that keeps the table readable when piped (rich assumes 80 columns there)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def sort_keys(keys: Iterable[KeyUsage]) -> list[KeyUsage]:
    """Most used first: utilization descending, plans without a quota last, then by used."""
    return sorted(
        keys,
        key=lambda key: (
            key.utilization is None,
            -(key.utilization or 0.0),
            -key.used,
            key.usage_plan_name,
            key.api_key_name or "",
        ),
    )


def _percent(value: float | None) -> Text:
    if value is None:
        return Text("-", style="dim")
    style = "bold red" if value >= 100 else "red" if value >= 90 else "yellow" if value >= 80 else ""
    return Text(f"{value:.1f}%", style=style)


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def scan_table(keys: Sequence[KeyUsage], *, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("Plan")
    table.add_column("Key name")
    table.add_column("Key id", style="dim")
    table.add_column("Used", justify="right")
    table.add_column("Remaining", justify="right")
    table.add_column("Limit", justify="right")
    table.add_column("%", justify="right")
    table.add_column("Period")
    table.add_column("Resets (UTC)")
    for key in keys:
        name = key.api_key_name or "(unknown)"
        if not key.in_usage_data:
            name += " *"
        table.add_row(
            key.usage_plan_name,
            name,
            key.api_key_id,
            _count(key.used),
            _count(key.remaining),
            _count(key.limit),
            _percent(key.utilization),
            key.period if key.limit is not None else "no quota",
            key.resets_at.strftime("%Y-%m-%d %H:%M") if key.limit is not None else "-",
        )
    return table


def failure_lines(failures: Iterable[ScanFailure]) -> list[str]:
    return [f"error: {failure.describe()}" for failure in failures]


def summary_line(result: ScanResult) -> str:
    stats = result.stats
    line = (
        f"{stats.keys_scanned:,} keys in {stats.plans_scanned:,} of {len(result.plans):,} usage plans; "
        f"{stats.usage_pages:,} GetUsage pages, {stats.api_calls:,} API calls, "
        f"{stats.throttles:,} throttled, "
        f"{stats.duration_seconds:.1f}s"
    )
    if any(not key.in_usage_data for key in result.keys):
        line += "; * attached to the plan but absent from AWS's usage data (reported as unused)"
    return line
