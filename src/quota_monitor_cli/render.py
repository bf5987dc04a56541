"""What people read: the scan as a table or plain columns, failures, and the summary line.

One list of :data:`COLUMNS` feeds both layouts: a column added there (an account, a region)
appears in the terminal table and in the plain text alike. Rows are laid out here rather than by
rich's ``Table``, which takes seconds to measure and wrap 10,000 rows; rich only colours the
result, and so still honours ``NO_COLOR`` and terminals without colour.
"""

from __future__ import annotations

import errno
import sys
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from quota_monitor import KeyUsage, ScanResult


class PipeConsole(Console):
    """rich's Console, except that a closed pipe raises BrokenPipeError like any other write.

    rich's own reaction is ``SystemExit(1)``; the CLI ends the same way for every output instead
    (:func:`quota_monitor_cli.main.end_like_a_pipe_reader_went_away`).
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")


def console(*, stderr: bool = False) -> Console:
    """A console that keeps rich's own tables readable when piped (rich assumes 80 columns there)."""
    stream = sys.stderr if stderr else sys.stdout
    return PipeConsole(stderr=stderr, width=None if stream.isatty() else 160)


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


def _percent_style(key: KeyUsage) -> str | None:
    value = key.utilization
    if value is None:
        return "dim"
    return "bold red" if value >= 100 else "red" if value >= 90 else "yellow" if value >= 80 else None


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _key_name(key: KeyUsage) -> str:
    name = key.api_key_name if key.api_key_name is not None else "(unknown)"
    return name if key.in_usage_data else f"{name} *"


@dataclass(frozen=True)
class Column:
    """One column of the scan as people read it: a header, the text of a cell, its alignment."""

    header: str
    cell: Callable[[KeyUsage], str]
    justify: Literal["left", "right"] = "left"
    #: The cell's style on a terminal (rich's style syntax), or None.
    style: Callable[[KeyUsage], str | None] | None = None


COLUMNS: tuple[Column, ...] = (
    Column("Plan", lambda key: key.usage_plan_name),
    Column("Key name", _key_name),
    Column("Key id", lambda key: key.api_key_id, style=lambda key: "dim"),
    Column("Used", lambda key: _count(key.used), "right"),
    Column("Remaining", lambda key: _count(key.remaining), "right"),
    Column("Limit", lambda key: _count(key.limit), "right"),
    Column(
        "%",
        lambda key: "-" if key.utilization is None else f"{key.utilization:.1f}%",
        "right",
        _percent_style,
    ),
    Column("Period", lambda key: key.period if key.limit is not None else "no quota"),
    Column(
        "Resets (UTC)",
        lambda key: key.resets_at.strftime("%Y-%m-%d %H:%M") if key.limit is not None else "-",
    ),
)


#: With several targets, the table's first columns: where each key is.
ACCOUNT_COLUMNS: tuple[Column, ...] = (
    Column("Account", lambda key: (key.target.account_id if key.target is not None else None) or "-"),
    Column("Region", lambda key: key.target.region if key.target is not None else "-"),
)


#: Unicode categories :func:`printable` escapes: control, format, surrogate, private use, unassigned,
#: line separator, paragraph separator.
_BREAKING = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` on one line, with nothing a terminal would act on.

    Names are the account's data: a newline would split a row in two, and an escape sequence in a
    key name would reach the terminal. Control characters and the Unicode line and paragraph
    separators (U+2028, U+2029: a line break to many readers) are shown as Python escapes (``\\n``).
    """
    if text.isprintable():
        return text
    return "".join(repr(char)[1:-1] if unicodedata.category(char) in _BREAKING else char for char in text)


def _pad(text: str, width: int, justify: Literal["left", "right"]) -> str:
    gap = " " * (width - cell_len(text))
    return gap + text if justify == "right" else text + gap


def _cells(keys: Sequence[KeyUsage], columns: Sequence[Column]) -> tuple[list[list[str]], list[int]]:
    rows = [[printable(column.cell(key)) for column in columns] for key in keys]
    widths = [cell_len(column.header) for column in columns]
    for row in rows:
        for index, text in enumerate(row):
            widths[index] = max(widths[index], cell_len(text))
    return rows, widths


def plain_lines(keys: Sequence[KeyUsage], columns: Sequence[Column] = COLUMNS) -> list[str]:
    """A header and a line a key, columns two spaces apart: for a pipe, a file or ``less``."""
    rows, widths = _cells(keys, columns)

    def line(texts: Sequence[str]) -> str:
        padded = (_pad(text, width, c.justify) for text, width, c in zip(texts, widths, columns, strict=True))
        return "  ".join(padded).rstrip()

    return [line([column.header for column in columns]), *(line(row) for row in rows)]


def scan_table(
    keys: Sequence[KeyUsage], *, title: str | None = None, columns: Sequence[Column] = COLUMNS
) -> Text:
    """The scan as a boxed table for a terminal (rich's heavy-head look), coloured by utilization."""
    rows, widths = _cells(keys, columns)
    table = Text(no_wrap=True, overflow="ignore", end="")
    if title is not None:
        table.append(printable(title), style="italic")
        table.append("\n")

    def rule(left: str, fill: str, middle: str, right: str) -> None:
        table.append(left + middle.join(fill * (width + 2) for width in widths) + right + "\n")

    rule("┏", "━", "┳", "┓")
    table.append("┃")
    for column, width in zip(columns, widths, strict=True):
        table.append(" ")
        table.append(_pad(column.header, width, column.justify), style="bold")
        table.append(" ┃")
    table.append("\n")
    rule("┡", "━", "╇", "┩")
    for key, row in zip(keys, rows, strict=True):
        table.append("│")
        for column, width, text in zip(columns, widths, row, strict=True):
            table.append(" ")
            table.append(_pad(text, width, column.justify), style=column.style(key) if column.style else None)
            table.append(" │")
        table.append("\n")
    rule("└", "─", "┴", "┘")
    return table


def summary_line(result: ScanResult, *, matched: int | None = None, targets: int = 1) -> str:
    """What was scanned and what it cost; with filters, how many keys matched of how many scanned;
    with several targets, how many."""
    stats = result.stats
    scanned = f"{stats.keys_scanned:,} keys in {stats.plans_scanned:,} of {len(result.plans):,} usage plans"
    if matched is not None:
        scanned = (
            f"{matched:,} of {stats.keys_scanned:,} keys matched, "
            f"in {stats.plans_scanned:,} of {len(result.plans):,} usage plans"
        )
    if targets > 1:
        scanned += f" of {targets} targets (accounts and regions)"
    line = (
        f"{scanned}; {stats.usage_pages:,} GetUsage pages, {stats.api_calls:,} API calls, "
        f"{stats.throttles:,} throttled, {stats.duration_seconds:.1f}s"
    )
    if any(not key.in_usage_data for key in result.keys):
        line += "; * attached to the plan but absent from AWS's usage data (reported as unused)"
    return line
