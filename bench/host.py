"""What every benchmark shares: its servers in processes of their own, the line protocol with them,
and the one writer of docs/benchmarks.md.

A server process (the sandbox host :mod:`bench.sandbox_host`, :func:`bench.fleet.serve`,
:func:`bench.freshness.serve`, or moto alone: ``python -m bench.host moto``, :func:`serve_moto`)
prints one JSON line when it is ready (``{"ready": true, ...}``, with its URLs), then answers each
JSON command line on its stdin with one JSON line on stdout (:func:`serve_lines`), until
``{"op": "quit"}`` or the end of its stdin. The driver holds it as a :class:`HostProcess`, started
with :func:`child_env`: loopback only, none of the user's AWS settings.

Each benchmark writes its results into docs/benchmarks.md between its own two marker comments
(:func:`write_section`), leaving the rest of the page as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A clean environment for a child: no AWS profile or credentials of the user, loopback only."""
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("", "lambdas", "src")),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            # Nothing may reach AWS: every endpoint not set below goes to a closed loopback port.
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "POWERTOOLS_SERVICE_NAME": "apigw-quota-monitor",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    env.update(extra)
    return env


# -- the server's side ----------------------------------------------------------------------------
def reply(body: dict[str, Any]) -> None:
    """One JSON line to the driver."""
    sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()


def serve_lines(answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Answer each command line on stdin with ``answer``'s JSON line, until ``quit`` or the end of stdin."""
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("op") == "quit":
            return
        reply(answer(command))


def unknown(command: dict[str, Any]) -> dict[str, Any]:
    """The answer to a command a server does not know."""
    return {"error": f"unknown op {command.get('op')!r}"}


# -- the driver's side ----------------------------------------------------------------------------
class HostProcess:
    """A server process (``python -m module *args``), driven over its stdin and stdout (module doc)."""

    def __init__(
        self,
        module: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.name = module
        self._process = subprocess.Popen(  # noqa: S603 - our own module, no shell
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=dict(env) if env is not None else child_env({}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            self.ready = self._read()
        except RuntimeError:
            self.close()
            raise
        if not self.ready.get("ready"):
            self.close()
            raise RuntimeError(f"{module} did not start: {self.ready}")

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited with code {self._process.wait()}")
        body: dict[str, Any] = json.loads(line)
        return body

    def ask(self, **command: Any) -> dict[str, Any]:
        """Send one command, return the answer; an answer with an ``error`` raises it."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"{self.name}: {answer['error']}")
        return answer

    def close(self, timeout: float = 30.0) -> None:
        """``quit``, the end of its stdin, and its exit; killed when it takes more than ``timeout``
        (its servers' threads: everything it had to say is said)."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError, ValueError):
                if self._process.poll() is None:
                    stdin.write(json.dumps({"op": "quit"}) + "\n")
                    stdin.flush()
            with contextlib.suppress(OSError):
                stdin.close()
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- moto -----------------------------------------------------------------------------------------
def lighter_transactions() -> None:
    """Make moto's TransactWriteItems cost what the transaction touches, not the table's size.

    moto 5.2 backs up a transaction's tables by deep-copying each whole table, once for each item of
    the transaction, to roll back a cancelled one: at 10,000 items a transaction of 100 took several
    seconds, which would make the benchmark measure moto rather than the monitor (DynamoDB's cost
    does not grow with the table). Here, in the benchmark's moto only, the backup is a copy of the
    items the transaction touches, restored when it fails; the outcome of every transaction is the
    same. Applied once a process.
    """
    import copy  # noqa: PLC0415

    from moto.dynamodb import models  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    original = models.DynamoDBBackend.transact_write_items
    if getattr(original, "lighter", False):
        return

    class TablesAsIs:
        """``copy`` for moto's module: a table "copied" is the table (nothing to restore there)."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    vars(models)["copy"] = TablesAsIs  # the module's name for the copy module

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or {
                name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name
            }
            backups.append((table.name, key, copy.deepcopy(self.get_item(table.name, key))))
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, item in reversed(backups):
                if item is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, item.to_json()["Attributes"])
            raise

    vars(transact_write_items)["lighter"] = True
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def serve_moto() -> int:
    """moto on loopback (one request at a time, as AWS applies a conditional write: see
    :func:`apigw_sandbox.local.atomic_moto_server`), with :func:`lighter_transactions`, in a process
    of its own; ready with its URL, until ``quit``."""
    import logging  # noqa: PLC0415

    from apigw_sandbox.local import atomic_moto_server  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sys.setswitchinterval(0.001)
    lighter_transactions()
    server = atomic_moto_server(set())
    server.start()
    host, port = server.get_host_and_port()
    reply({"ready": True, "url": f"http://{host}:{port}"})
    try:
        serve_lines(unknown)
    finally:
        server.stop()
    return 0


def start_moto(env: Mapping[str, str] | None = None) -> HostProcess:
    """:func:`serve_moto` in a process of its own; its URL is ``ready["url"]``."""
    return HostProcess("bench.host", "moto", env=env)


# -- docs/benchmarks.md ---------------------------------------------------------------------------
def write_section(start: str, end: str, text: str, *, heading: str | None = None, path: Path = DOCS) -> None:
    """Put ``text`` between the markers ``start`` and ``end`` of ``path``, in place of what was between
    them; without the markers, append them with ``text`` (under ``## heading``) at the end."""
    body = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{start}\n{text}\n{end}"
    head, found, rest = body.partition(start)
    if found and end in rest:
        body = head + block + rest.split(end, 1)[1]
    else:
        title = f"## {heading}\n\n" if heading else ""
        body = (body.rstrip() + "\n\n" if body.strip() else "") + title + block + "\n"
    path.write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["moto"]:
        sys.stderr.write("usage: python -m bench.host moto\n")
        return 2
    return serve_moto()


if __name__ == "__main__":
    sys.exit(main())
