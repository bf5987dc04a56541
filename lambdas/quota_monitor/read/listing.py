"""Read usage plans, API keys and plan keys from API Gateway: every page, at 500 a page.

GetUsagePlans, GetApiKeys and GetUsagePlanKeys page with ``position`` and ``limit`` (default
25, maximum 500); the list is ``item`` on the wire and ``items`` in boto3. They are walked by
hand here, at the maximum page size, with the same guard against a repeating ``position`` as
the usage paginator. GetApiKeys is never asked for key values (``includeValues`` stays unset),
and GetUsagePlanKeys, which returns each key's value whether asked or not, is read for key ids
only: the value is dropped where the response is parsed.

An item that comes on two pages (the list changed while it was paged: positions are not
snapshots) is kept once, so that no plan is scanned, and no key reported, twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from quota_monitor.errors import MalformedResource, MalformedUsagePage, PaginationLoop
from quota_monitor.models import PERIOD_TYPES, ApiKey, ApiStage, Quota, UsagePlan
from quota_monitor.read.usage_pages import MAX_PAGE_SIZE

#: The largest value of the API's ``Integer``: the type of a quota's limit and offset (botocore's
#: ``apigateway`` service model, ``QuotaSettings``).
MAX_INTEGER = 2**31 - 1


def walk_pages(
    operation: Callable[..., Mapping[str, Any]], what: str, **params: Any
) -> Iterator[list[Mapping[str, Any]]]:
    """Yield the ``items`` of every page of a position-paged list call."""
    position: str | None = None
    requested: set[str | None] = set()
    while True:
        if position in requested:
            raise PaginationLoop(f"{what} returned position {position!r} a second time; stopping")
        requested.add(position)
        call = {**params, "limit": MAX_PAGE_SIZE}
        if position is not None:
            call["position"] = position
        response = operation(**call)
        items = response.get("items")
        next_position = response.get("position")
        if items is None:
            if next_position or position is not None:
                # A page that says more follow (or was asked for by position) carries its items.
                raise MalformedUsagePage(f"{what}: a page without items: its items would be lost")
            items = []
        if not isinstance(items, list):
            raise MalformedUsagePage(f"{what}: items is {type(items).__name__}, not a list")
        yield items
        if not next_position:
            return
        if not isinstance(next_position, str):
            raise MalformedUsagePage(f"{what}: position {next_position!r} is not a string")
        position = next_position


def _tags(raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): str(v) for k, v in raw.items()}


def parse_usage_plan(raw: Mapping[str, Any]) -> UsagePlan:
    plan_id = raw.get("id")
    if not isinstance(plan_id, str) or not plan_id:
        raise MalformedResource(f"usage plan without an id: fields {sorted(raw)}")
    name = raw.get("name") if isinstance(raw.get("name"), str) else plan_id
    quota_raw = raw.get("quota")
    quota: Quota | None = None
    if quota_raw is not None:
        if not isinstance(quota_raw, Mapping):
            raise MalformedResource(f"usage plan {plan_id}: quota {quota_raw!r} is not an object")
        limit, period, offset = quota_raw.get("limit"), quota_raw.get("period"), quota_raw.get("offset", 0)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_INTEGER:
            raise MalformedResource(
                f"usage plan {plan_id}: quota limit {limit!r} is not a whole number from 0 to 2**31 - 1"
            )
        if period not in PERIOD_TYPES:
            raise MalformedResource(
                f"usage plan {plan_id}: quota period {period!r} is not one of {', '.join(PERIOD_TYPES)}"
            )
        if offset is None:
            offset = 0
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_INTEGER:
            raise MalformedResource(
                f"usage plan {plan_id}: quota offset {offset!r} is not a whole number from 0 to 2**31 - 1"
            )
        quota = Quota(limit=limit, period=period, offset=offset)
    return UsagePlan(
        id=plan_id,
        name=str(name),
        quota=quota,
        tags=_tags(raw.get("tags")),
        api_stages=_api_stages(plan_id, raw.get("apiStages")),
    )


def _api_stages(plan_id: str, raw: object) -> tuple[ApiStage, ...]:
    """The plan's ``apiStages`` (each an API's id and a stage name); absent, none."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(stage, Mapping)
        and isinstance(stage.get("apiId"), str)
        and isinstance(stage.get("stage"), str)
        for stage in raw
    ):
        raise MalformedResource(f"usage plan {plan_id}: apiStages {raw!r} is not a list of apiId and stage")
    return tuple(ApiStage(stage["apiId"], stage["stage"]) for stage in raw)


def list_usage_plans(api: Any) -> tuple[list[UsagePlan], list[tuple[Mapping[str, Any], str]]]:
    """Every usage plan of the account; plans that do not parse come back with the reason."""
    plans: dict[str, UsagePlan] = {}
    malformed: list[tuple[Mapping[str, Any], str]] = []
    for items in walk_pages(api.get_usage_plans, "GetUsagePlans"):
        for raw in items:
            try:
                plan = parse_usage_plan(raw)
            except MalformedResource as error:
                malformed.append((raw, str(error)))
                continue
            plans.setdefault(plan.id, plan)
    return list(plans.values()), malformed


def list_api_keys(api: Any) -> dict[str, ApiKey]:
    """Every API key of the account by id, with name, state and tags: never the value."""
    keys: dict[str, ApiKey] = {}
    for items in walk_pages(api.get_api_keys, "GetApiKeys"):
        for raw in items:
            key_id = raw.get("id")
            if not isinstance(key_id, str) or not key_id:
                continue
            name = raw.get("name")
            keys[key_id] = ApiKey(
                id=key_id,
                name=name if isinstance(name, str) else None,
                enabled=raw.get("enabled") is not False,
                tags=_tags(raw.get("tags")),
            )
    return keys


def list_plan_key_ids(api: Any, usage_plan_id: str) -> list[str]:
    """Ids of the API keys attached to a usage plan (GetUsagePlanKeys; values dropped)."""
    ids: dict[str, None] = {}  # ordered, each id once
    for items in walk_pages(
        api.get_usage_plan_keys, f"GetUsagePlanKeys({usage_plan_id})", usagePlanId=usage_plan_id
    ):
        for raw in items:
            key_id = raw.get("id")
            if isinstance(key_id, str) and key_id:
                ids[key_id] = None
    return list(ids)
