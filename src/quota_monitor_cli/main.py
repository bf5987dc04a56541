"""``quota-monitor``: the monitor from a terminal.

Exit codes: 0 when everything was read, 1 when some usage plans could not be read or, with
``--publish``, some metrics could not be published (the rest is
still printed; the failures go to stderr), 2 for bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from quota_monitor_cli import cost, demo, scan, usage

if TYPE_CHECKING:
    from collections.abc import Sequence

COMMANDS = (scan, usage, demo, cost)

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quota-monitor",
        description="Remaining quota of every API key in every Amazon API Gateway usage plan.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
