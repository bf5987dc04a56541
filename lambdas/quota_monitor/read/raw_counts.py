"""The monitor's check of API Gateway's raw answers, before botocore's parsing can hide a fault.

Two ways botocore reads a bad answer as a good one (reproduced with botocore 1.44; see
docs/aws-behaviour.md#botocore-and-moto-behaviour-found-here):

- a 2xx body that is not JSON at all does not raise: botocore returns ``{}``, which reads as an
  empty list, or a plan with no keys. :func:`reject_unreadable_body` raises
  :class:`~quota_monitor.errors.MalformedResponse` instead (retried like a transient fault by
  :class:`~quota_monitor.read.calls.ApiGatewayCalls`).
- its rest-json parser reads every ``Long`` and ``Integer`` with ``int(value)`` and every list by
  iterating whatever it gets: ``5.7`` becomes 5, ``true`` 1, ``"12"`` 12, and a day's
  ``[used, remaining]`` sent as the string ``"56"`` or the object ``{"5": 0, "6": 0}`` becomes
  ``[5, 6]``: wrong numbers, with no error. So the same hook puts the raw JSON of GetUsage's
  ``values`` and of each usage plan's ``quota`` back into botocore's result, for the monitor's own
  checks (:mod:`quota_monitor.compute.key_usage`, :mod:`quota_monitor.read.listing`) to refuse what
  is not a whole number, naming the plan. (A number too big for a float, ``1e400``, makes botocore
  raise ``OverflowError``: read as a response that could not be read.)

The hook is registered on the client by :func:`quota_monitor.clients.apigateway_client`.
"""

from __future__ import annotations

import json
from typing import Any

from quota_monitor.errors import MalformedResponse


def reject_unreadable_body(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
    """botocore ``after-call`` hook: a 2xx response whose body is not JSON raises :class:`MalformedResponse`
    (botocore would return ``{}`` for it), and the counts in ``parsed`` are put back as the body has
    them (:func:`restore_raw_counts`, and the module doc).

    The message never quotes the body: GetUsagePlanKeys bodies hold API key values.
    """
    status = getattr(http_response, "status_code", 0)
    body: bytes = getattr(http_response, "content", b"") or b""
    if not 200 <= status < 300 or not body.strip():
        return
    try:
        document = json.loads(body)
    except ValueError:
        raise MalformedResponse(f"{model.name}: the response body is not JSON ({len(body)} bytes)") from None
    if isinstance(parsed, dict) and isinstance(document, dict):
        restore_raw_counts(model.name, document, parsed)


def restore_raw_counts(operation: str, document: dict[str, Any], parsed: dict[str, Any]) -> None:
    """Put GetUsage's daily counts and the usage plans' quotas back into ``parsed`` as the service
    sent them, undoing botocore's coercion (module doc). Where botocore refused the body it raised
    before this runs, so a valid answer is left exactly as it was."""
    if operation in ("GetUsage", "UpdateUsage"):
        values = document.get("values")
        if isinstance(values, dict) and "items" in parsed:
            parsed["items"] = values
    elif operation == "GetUsagePlans":
        raw_plans, plans = document.get("item"), parsed.get("items")
        if isinstance(raw_plans, list) and isinstance(plans, list) and len(raw_plans) == len(plans):
            for raw, plan in zip(raw_plans, plans, strict=True):
                if isinstance(raw, dict) and isinstance(plan, dict) and isinstance(raw.get("quota"), dict):
                    plan["quota"] = raw["quota"]
