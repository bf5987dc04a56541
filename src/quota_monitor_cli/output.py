"""How ``scan`` prints its keys: ``--output table|plain|json|csv``.

The default is ``table`` when stdout is a terminal and ``plain`` otherwise, so that a pipe or a file
gets no box drawing and no colour. ``json`` and ``csv`` carry exactly the JSON contract's fields
(README, "Scan your account"): CSV is written by Python's csv module (RFC 4180 quoting: a name with
a comma, a quote or a newline comes back intact), a row a key, null as an empty field, and lines
ending in LF like ``quota-monitor usage --csv``.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING, Literal, get_args

from quota_monitor_cli.render import COLUMNS, Column, plain_lines, scan_table

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from rich.console import Console

    from quota_monitor import KeyUsage

Format = Literal["table", "plain", "json", "csv"]
FORMATS: tuple[Format, ...] = get_args(Format)

#: The CLI's JSON contract, in order: ``KeyUsage.as_json``'s fields, and the CSV header.
FIELDS = (
    "usagePlanId",
    "usagePlanName",
    "apiKeyId",
    "apiKeyName",
    "period",
    "periodStart",
    "used",
    "remaining",
    "limit",
    "utilization",
    "accountId",
    "region",
)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    chosen = group.add_mutually_exclusive_group()
    chosen.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        type=str.lower,
        help="table (the default on a terminal), plain (the default otherwise: columns without box "
        "drawing or colour), json or csv",
    )
    chosen.add_argument(
        "--json", action="store_const", const="json", dest="output", help="same as --output json"
    )
    chosen.add_argument(
        "--csv", action="store_const", const="csv", dest="output", help="same as --output csv"
    )


def chosen_format(args: argparse.Namespace) -> Format:
    chosen: Format | None = args.output
    if chosen is not None:
        return chosen
    return "table" if sys.stdout.isatty() else "plain"


def write_keys(
    keys: Sequence[KeyUsage], fmt: Format, out: Console, *, columns: Sequence[Column] = COLUMNS
) -> None:
    """The keys on stdout, flushed: a reader that has gone is found here, before anything else is said.

    ``table`` and ``plain`` print nothing when no key is left to show; ``columns`` are theirs (with
    several targets, the account and region first). JSON and CSV always carry the whole contract.
    """
    _write(keys, fmt, out, columns)
    sys.stdout.flush()


def _write(keys: Sequence[KeyUsage], fmt: Format, out: Console, columns: Sequence[Column]) -> None:
    if fmt == "json":
        json.dump([key.as_json() for key in keys], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n", extrasaction="raise")
        writer.writeheader()
        writer.writerows(key.as_json() for key in keys)
    elif not keys:
        return
    elif fmt == "plain":
        sys.stdout.write("\n".join(plain_lines(keys, columns)) + "\n")
    else:
        out.print(scan_table(keys, columns=columns), soft_wrap=True)
