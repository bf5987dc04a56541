"""EventBridge in tests: the events' schema as a validator, and PutEvents' partial failure on the wire.

moto 5.2.5's PutEvents refuses an entry only when it lacks Source, DetailType or Detail, or when its
Detail is not JSON (MalformedDetail); it never answers InternalFailure or ThrottlingException, the
errors AWS names retryable (docs/aws-behaviour.md#eventbridge). :class:`PutEventsFaults` makes
that partial failure real on the wire, around the monitor's own unchanged code: botocore hooks on
one client replace the chosen entries' Detail with text that is not JSON before the request is
sent, so that moto really refuses them (nothing reaches the bus or a rule's target), and rewrite
those entries' ErrorCode in moto's answer to the one AWS would give. The response the monitor reads
is the one AWS sends when single entries fail while the call succeeds.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jsonschema import Draft4Validator, FormatChecker

from quota_monitor.deliver.events import event_schema

if TYPE_CHECKING:
    from collections.abc import Callable

_SENTINEL = "quota-monitor-test: refused on the wire"


def validate_event(event: dict[str, Any]) -> None:
    """Raise if an event (as a rule delivers it) does not match docs/events.md's schema."""
    Draft4Validator(event_schema(), format_checker=FormatChecker()).validate(event)


class PutEventsFaults:
    """Fail chosen PutEvents entries of one client with ``code``, each at most ``times`` times (or always)."""

    def __init__(
        self,
        client: Any,
        fails: Callable[[dict[str, Any]], bool],
        *,
        code: str = "InternalFailure",
        times: int | None = None,
    ) -> None:
        self.fails, self.code, self.times = fails, code, times
        #: Event id (the detail's) -> how many times it was failed.
        self.failed: dict[str, int] = {}
        #: Entries per PutEvents call the client made.
        self.calls: list[int] = []
        self._key = f"refused-{id(self)}"
        client.meta.events.register("before-parameter-build.events.PutEvents", self._refuse)
        client.meta.events.register("after-call.events.PutEvents", self._answer)

    def _refuse(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        refused = []
        self.calls.append(len(params["Entries"]))
        for index, entry in enumerate(params["Entries"]):
            if entry["Detail"] == _SENTINEL:
                continue  # refused by another fault on this client
            detail = json.loads(entry["Detail"])
            event_id = detail.get("id", "")
            if not self.fails(detail) or (
                self.times is not None and self.failed.get(event_id, 0) >= self.times
            ):
                continue
            self.failed[event_id] = self.failed.get(event_id, 0) + 1
            entry["Detail"] = _SENTINEL
            refused.append(index)
        context[self._key] = refused

    def _answer(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        for index in context.get(self._key, []):
            assert parsed["Entries"][index].get("ErrorCode") == "MalformedDetail"  # moto refused it
            parsed["Entries"][index] = {"ErrorCode": self.code, "ErrorMessage": f"{self.code} (injected)"}
