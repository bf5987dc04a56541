"""A stand-in for a Slack incoming webhook on loopback, for the demo and the tests.

It answers as Slack does: ``200 ok`` for a message it accepts, ``400 invalid_blocks`` for one
that breaks Block Kit's limits (50 blocks, 3,000 characters a section, 150 a header), and
whatever answers a test queues up (``429`` with ``Retry-After``, ``500``, ``404 no_service``).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def block_kit_problem(message: Any) -> str | None:
    """Why Slack would refuse this message, or None."""
    if not isinstance(message, dict) or not (message.get("text") or message.get("blocks")):
        return "no_text"
    blocks = message.get("blocks", [])
    if len(blocks) > 50:
        return "invalid_blocks: more than 50 blocks"
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        if block.get("type") == "header" and len(text) > 150:
            return "invalid_blocks: header longer than 150 characters"
        if block.get("type") == "section" and len(text) > 3000:
            return "invalid_blocks: section longer than 3000 characters"
    return None


class SlackReceiver:
    """An incoming-webhook endpoint; a context manager. ``url`` is the webhook URL to use."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        #: Answers to give before accepting again: (status, body, headers).
        self.script: deque[tuple[int, str, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/services/T000/B000/sandbox"

    def answer(
        self, status: int, body: str = "", headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        for _ in range(times):
            self.script.append((status, body, headers or {}))

    def __enter__(self) -> SlackReceiver:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="slack-receiver", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _serve(self, raw: bytes) -> tuple[int, str, dict[str, str]]:
        with self._lock:
            self.attempts += 1
            if self.script:
                return self.script.popleft()
        try:
            message = json.loads(raw)
        except ValueError:
            return 400, "invalid_payload", {}
        problem = block_kit_problem(message)
        if problem:
            return 400, problem, {}
        with self._lock:
            self.received.append(message)
        return 200, "ok", {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body, headers = receiver._serve(raw)
                payload = body.encode()
                self.send_response(status)
                for name, value in {"Content-Type": "text/plain", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                return

        return Handler
