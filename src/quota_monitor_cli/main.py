"""``quota-monitor``: the monitor from a terminal.

Exit codes (:data:`~quota_monitor_cli.common.EXIT_CODES`, also in ``--help`` and the README):
0 done; 1 something could not be read (or, with ``--publish``, published); 2 bad arguments,
configuration or credentials; 3 ``scan --fail-above`` found keys. When the reader of stdout goes
away (``quota-monitor scan | head``), the command ends as Unix tools do: killed by SIGPIPE, with
no traceback (shells report 141); on Ctrl-C, at once, killed by SIGINT (shells report 130), without
waiting for the reads already started.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, NoReturn

from quota_monitor_cli import cost, demo, scan, statement, usage
from quota_monitor_cli.common import EXIT_CODES

if TYPE_CHECKING:
    from collections.abc import Sequence

COMMANDS = (scan, usage, statement, demo, cost)

#: What a shell reports for a process killed by SIGPIPE (128 + 13), used where there is no SIGPIPE.
EXIT_SIGPIPE = 141
#: ... and for one killed by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
_REPLACED: list[io.TextIOWrapper] = []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quota-monitor",
        description="Remaining quota of every API key in every Amazon API Gateway usage plan.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def end_like_a_pipe_reader_went_away() -> NoReturn:
    """End as a Unix tool does when its reader closes the pipe: killed by SIGPIPE, quietly.

    Python ignores SIGPIPE and raises BrokenPipeError instead, which would end in a traceback and
    exit code 1 (or 120 from the flush at exit). The signal's default action is restored for this
    one moment only: left on for the whole run, it would also kill the process when a connection
    to AWS drops mid-write, which the retries must see as an error.
    """
    try:
        # Nothing more can reach the reader; whatever is still buffered must not be flushed at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(EXIT_SIGPIPE)  # no SIGPIPE (Windows), or it did not end the process


def end_on_interrupt(_signum: int, _frame: object) -> NoReturn:
    """Ctrl-C: stop now, as a Unix tool does, killed by SIGINT (shells report 130).

    Python's default would raise KeyboardInterrupt in the main thread, and then wait, before it
    exits, for every worker the scan has started, each finishing its plan at the rate limit: a
    large account would go on being read for a minute, and end in a traceback. The command reads
    (or, with ``--publish``, writes metrics that the next run writes again), so there is nothing to
    finish first.
    """
    # Not through sys.stderr: the main thread may be in the middle of a write to it. Whatever
    # fails here, ending matters more.
    with contextlib.suppress(Exception):
        os.write(sys.stderr.fileno(), b"\nquota-monitor: interrupted\n")
    if os.name != "nt":  # on Windows, os.kill would end the process with code 2 (bad arguments)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(EXIT_INTERRUPTED)  # Windows, or the signal did not end the process


def buffer_stdout() -> None:
    """Put a buffer back under stdout when Python runs unbuffered (``PYTHONUNBUFFERED``, ``-u``).

    There, each write goes straight to the file, and a write that the pipe takes only in part
    (its reader quit mid-write) returns without an error, the rest dropped: the command would run on
    and exit 0. A buffered writer finishes the write or raises BrokenPipeError. Line buffering
    keeps what the setting asked for: each line is out as soon as it is written.
    """
    stdout = sys.stdout
    if isinstance(stdout, io.TextIOWrapper) and isinstance(stdout.buffer, io.RawIOBase):
        _REPLACED.append(stdout)  # kept alive: collecting it would close the file under the new one
        sys.stdout = io.TextIOWrapper(
            io.BufferedWriter(stdout.buffer),
            encoding=stdout.encoding,
            errors=stdout.errors,
            line_buffering=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    buffer_stdout()
    # Only the main thread may set a signal handler (a test may call main() from another), and a
    # process started with Ctrl-C ignored (a background job of a script) keeps ignoring it.
    interruptible = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    previous = signal.signal(signal.SIGINT, end_on_interrupt) if interruptible else None
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        end_like_a_pipe_reader_went_away()
    finally:
        if interruptible:
            signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
