"""``python -m apigw_sandbox``: the sandbox on its own, for a person or another process to drive.

    python -m apigw_sandbox --port 4510 --account demo
    AWS_ENDPOINT_URL_API_GATEWAY=http://127.0.0.1:4510 quota-monitor scan
    curl -X POST http://127.0.0.1:4510/_sandbox/faults -d '{"kind": "throttle", "probability": 0.3}'

It prints the URL it serves on (one line on stdout), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.seed import seed_demo_account, seed_scale_account
from apigw_sandbox.server import SandboxServer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

ACCOUNTS = ("demo", "scale", "empty")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m apigw_sandbox",
        description="Serve the API Gateway usage-plan sandbox on loopback, with fault injection at "
        "/_sandbox/faults (see docs/reliability.md).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4510, help="port to listen on; 0 picks a free one")
    parser.add_argument(
        "--account",
        choices=ACCOUNTS,
        default="demo",
        help="demo: about 50 keys over 4 plans; scale: 10,000 keys over 300 plans; empty: nothing",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the fault draws (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    account = SandboxAccount()
    if args.account == "demo":
        seed_demo_account(account)
    elif args.account == "scale":
        seed_scale_account(account)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with SandboxServer(account, host=args.host, port=args.port, seed=args.seed) as server:
        sys.stdout.write(f"API Gateway sandbox on {server.url} ({args.account} account); Ctrl-C stops it\n")
        sys.stdout.flush()
        stop.wait()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
