"""The monitor's check of API Gateway's raw answers, before botocore's parsing can hide a fault.

Three ways botocore reads a bad answer wrongly (reproduced; see
docs/aws-behaviour.md#botocore-and-moto-behaviour-found-here):

- a 2xx body that is not JSON at all does not raise: botocore returns ``{}``, which reads as an
  empty list, or a plan with no keys. :func:`reject_unreadable_body` raises
  :class:`~quota_monitor.errors.MalformedResponse` instead (retried like a transient fault by
  :class:`~quota_monitor.read.calls.ApiGatewayCalls`);
- its rest-json parser coerces counts with ``int()`` and iterates any list: ``5.7`` becomes 5,
  ``true`` 1, ``"12"`` 12, a day sent as ``"56"`` becomes ``[5, 6]``: wrong numbers, with no error;
- and what ``int()`` refuses (``"abc"``, ``1e400``) makes it refuse the whole answer: one bad day
  of one key would lose every key of the page, one plan's bad quota every plan of the account.

So botocore never parses the counts: :func:`take_out_raw_counts` takes GetUsage's ``values`` and
each usage plan's ``quota`` out of the body before it is parsed; the values come back as ``items``,
and the quotas go back into their plans (:func:`restore_raw_counts`), exactly as the service sent
them. The monitor's own checks then judge one key (:mod:`quota_monitor.compute.key_usage`) or one
plan (:mod:`quota_monitor.read.listing`) at a time. :func:`register_raw_checks` puts both hooks on
a client; :func:`quota_monitor.clients.apigateway_client` calls it.
"""

from __future__ import annotations

import json
from typing import Any

from quota_monitor.errors import MalformedResponse

#: The operations whose answer carries ``values``, the map of key id to daily usage.
USAGE_OPERATIONS = ("GetUsage", "UpdateUsage")
#: Where :func:`take_out_raw_counts` leaves the usage plans' quotas for :func:`restore_raw_counts`.
_RAW_QUOTAS = "_rawQuotas"


def register_raw_checks(client: Any) -> None:
    """Register :func:`take_out_raw_counts` and :func:`reject_unreadable_body` on an API Gateway client."""
    for operation in (*USAGE_OPERATIONS, "GetUsagePlans"):
        client.meta.events.register(f"before-parse.api-gateway.{operation}", take_out_raw_counts)
    client.meta.events.register("after-call.apigateway", reject_unreadable_body)


def _is_success(status: object) -> bool:
    return isinstance(status, int) and 200 <= status < 300


def take_out_raw_counts(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], operation_model: Any, **_: Any
) -> None:
    """botocore ``before-parse`` hook for GetUsage, UpdateUsage and GetUsagePlans (module doc).

    GetUsage's ``values`` come back as ``items``, as any JSON (the paginator and
    :func:`quota_monitor.compute.key_usage.parse_daily_usage` judge it); the plans' quotas wait
    for :func:`restore_raw_counts`. A body that is not JSON raises :class:`MalformedResponse`
    (never quoted: see :func:`reject_unreadable_body`).
    """
    body = response_dict.get("body") or b""
    if not _is_success(response_dict.get("status_code")) or not body.strip():
        return
    try:
        document = json.loads(body)
    except ValueError:
        raise MalformedResponse(
            f"{operation_model.name}: the response body is not JSON ({len(body)} bytes)"
        ) from None
    if not isinstance(document, dict):
        return
    if operation_model.name in USAGE_OPERATIONS:
        if "values" not in document:
            return
        values = document.pop("values")
        if values is not None:
            customized_response_dict["items"] = values
    else:
        plans = document.get("item")
        if not isinstance(plans, list):
            return
        customized_response_dict[_RAW_QUOTAS] = [
            plan.pop("quota", None) if isinstance(plan, dict) else None for plan in plans
        ]
    response_dict["body"] = json.dumps(document).encode()


def reject_unreadable_body(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
    """botocore ``after-call`` hook: a 2xx response whose body is not JSON raises :class:`MalformedResponse`
    (botocore would return ``{}`` for it); the usage plans' quotas go back into their plans
    (:func:`restore_raw_counts`). The operations :func:`take_out_raw_counts` reads were checked
    before parsing.

    The message never quotes the body: GetUsagePlanKeys bodies hold API key values.
    """
    if isinstance(parsed, dict) and _RAW_QUOTAS in parsed:
        restore_raw_counts(parsed)
    if model.name in (*USAGE_OPERATIONS, "GetUsagePlans"):
        return
    status = getattr(http_response, "status_code", 0)
    body: bytes = getattr(http_response, "content", b"") or b""
    if not _is_success(status) or not body.strip():
        return
    try:
        json.loads(body)
    except ValueError:
        raise MalformedResponse(f"{model.name}: the response body is not JSON ({len(body)} bytes)") from None


def restore_raw_counts(parsed: dict[str, Any]) -> None:
    """Put each usage plan's quota back into ``parsed`` as the service sent it (module doc)."""
    quotas = parsed.pop(_RAW_QUOTAS)
    plans = parsed.get("items", [])
    if not isinstance(plans, list) or len(plans) != len(quotas):
        # Never a plan read without the quota it was sent with.
        raise MalformedResponse(f"GetUsagePlans: {len(quotas)} plans sent, {len(plans)} parsed")
    for plan, quota in zip(plans, quotas, strict=True):
        if isinstance(plan, dict) and quota is not None:
            plan["quota"] = quota
