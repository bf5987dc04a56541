"""A GetUsage paginator that keeps boto3's documented promise.

boto3 documents ``client.get_paginator('get_usage').paginate(..., PaginationConfig={'MaxItems',
'PageSize', 'StartingToken'})``, but GetUsage's result (``items``, ``values`` on the wire) is a
*map* of API key id to daily ``[used, remaining]`` pairs, not a list, and botocore's paginator
only merges lists: ``build_full_result()`` silently keeps the first page's keys, and
``MaxItems`` raises ``TypeError: unhashable type: 'slice'`` (both reproduced, see
docs/aws-behaviour.md#getusage-and-its-paginator). :func:`paginate_usage` is the same call shape,
done right:

- ``PageSize`` is each call's ``limit``, 500 (the service maximum) unless set; ``MaxItems`` counts
  API keys across pages, and no call is made beyond the page on which it is reached;
- a resume token (:attr:`UsagePages.resume_token`) resumes exactly where the last call stopped, also
  in the middle of a page, counting keys in sorted order; a malformed or foreign token raises
  :class:`InvalidStartingToken`, a page that no longer holds the keys it counted
  :class:`StaleStartingToken`, never a silent restart or skip;
- a key on two service pages is merged day by day (:func:`merge_daily`: the higher ``used``, the
  lower ``remaining``; a monitor must never under-report) and listed in
  :attr:`UsagePages.duplicate_keys`; a ``position`` that comes back raises :class:`PaginationLoop`.

Every setting, token and error: docs/paginator.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

from quota_monitor.errors import (
    InvalidStartingToken,
    MalformedUsagePage,
    PaginationLoop,
    StaleStartingToken,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from mypy_boto3_apigateway import APIGatewayClient

    from quota_monitor.read.calls import ApiGatewayCalls

    #: boto3's API Gateway client, or the monitor's rate-limited, retrying wrapper of it.
    UsageClient: TypeAlias = APIGatewayClient | ApiGatewayCalls

MAX_PAGE_SIZE = 500
TOKEN_VERSION = 1
_CONFIG_KEYS = frozenset({"MaxItems", "PageSize", "StartingToken"})
_TOKEN_FIELDS = frozenset({"v", "plan", "start", "end", "key", "position", "skip", "limit"})
#: What :meth:`UsagePages._encode` writes: unpadded URL-safe base64 of a small JSON object.
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]{1,4096}")


class UsagePage(TypedDict, total=False):
    usagePlanId: str
    startDate: str
    endDate: str
    position: str
    items: dict[str, list[Any]]


class UsageResult(TypedDict, total=False):
    usagePlanId: str
    startDate: str
    endDate: str
    items: dict[str, list[Any]]
    NextToken: str


def _check_int(name: str, value: object, low: int, high: int | None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f"an integer from {low} to {high}" if high is not None else f"an integer of at least {low}"
        raise ValueError(f"PaginationConfig {name}={value!r} is not allowed: use {allowed}")
    return value


def merge_daily(first: object, second: object, *, key_id: str) -> list[list[int | None]]:
    """Merge two observations of one key's daily ``[used, remaining]`` list, day by day.

    The higher ``used`` and the lower ``remaining`` win (see the module doc); a ``remaining`` of
    ``None`` gives way to a number. Lists of different lengths cannot be the same days and raise
    :class:`MalformedUsagePage`.
    """
    if not isinstance(first, list) or not isinstance(second, list) or len(first) != len(second):
        raise MalformedUsagePage(
            f"key {key_id} appears on two pages with daily lists that cannot be the same days "
            f"({_shape(first)} and {_shape(second)})"
        )
    merged: list[list[int | None]] = []
    for day, (a, b) in enumerate(zip(first, second, strict=True)):
        if not (isinstance(a, list) and isinstance(b, list) and len(a) == 2 and len(b) == 2):
            raise MalformedUsagePage(
                f"key {key_id}, day {day}: entries {a!r} and {b!r} are not [used, remaining]"
            )
        used = max(_number(a[0], key_id, day), _number(b[0], key_id, day))
        rem_a, rem_b = a[1], b[1]
        if rem_a is None or rem_b is None:
            remaining = rem_b if rem_a is None else rem_a
        else:
            remaining = min(_number(rem_a, key_id, day), _number(rem_b, key_id, day))
        merged.append([used, remaining])
    return merged


def _number(value: object, key_id: str, day: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedUsagePage(f"key {key_id}, day {day}: {value!r} is not a whole number")
    return value


def _shape(value: object) -> str:
    return f"{len(value)} days" if isinstance(value, list) else type(value).__name__


class UsagePages:
    """Iterates GetUsage pages shaped like boto3's; see :func:`paginate_usage`."""

    def __init__(
        self,
        client: UsageClient,
        *,
        usagePlanId: str,  # noqa: N803 - boto3's parameter names
        startDate: str,  # noqa: N803
        endDate: str,  # noqa: N803
        keyId: str | None = None,  # noqa: N803
        PaginationConfig: Mapping[str, Any] | None = None,  # noqa: N803
    ) -> None:
        config = dict(PaginationConfig or {})
        unknown = set(config) - _CONFIG_KEYS
        if unknown:
            raise ValueError(
                f"PaginationConfig keys {sorted(unknown)} are not supported: use {sorted(_CONFIG_KEYS)}"
            )
        self._client = client
        self._request = {"usagePlanId": usagePlanId, "startDate": startDate, "endDate": endDate}
        if keyId is not None:
            self._request["keyId"] = keyId
        self.page_size = _check_int("PageSize", config.get("PageSize", MAX_PAGE_SIZE), 1, MAX_PAGE_SIZE)
        max_items = config.get("MaxItems")
        self.max_items = None if max_items is None else _check_int("MaxItems", max_items, 1, None)
        token = config.get("StartingToken")
        self._start = self._decode(token) if token is not None else (None, 0, self.page_size)
        #: Set when MaxItems stopped the iteration before the end: pass it as StartingToken to resume.
        self.resume_token: str | None = None
        #: Keys seen on more than one service page (merged, see the module doc).
        self.duplicate_keys: set[str] = set()
        #: GetUsage calls made so far.
        self.service_pages = 0
        self._used = False
        self._envelope: dict[str, str] = {}

    # -- tokens ---------------------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        return {
            "plan": self._request["usagePlanId"],
            "start": self._request["startDate"],
            "end": self._request["endDate"],
            "key": self._request.get("keyId"),
        }

    def _encode(self, position: str | None, skip: int, limit: int) -> str:
        body = {"v": TOKEN_VERSION, **self._identity(), "position": position, "skip": skip, "limit": limit}
        raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode(self, token: object) -> tuple[str | None, int, int]:
        if not isinstance(token, str) or not _TOKEN_TEXT.fullmatch(token):
            shown = token[:40] if isinstance(token, str) else token
            raise InvalidStartingToken(f"StartingToken {shown!r} is not a NextToken issued by paginate_usage")
        try:
            body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
            raise InvalidStartingToken(
                f"StartingToken {token[:40]!r} is not a NextToken issued by paginate_usage"
            ) from None
        version = body.get("v") if isinstance(body, dict) else None
        if type(version) is not int or version != TOKEN_VERSION:
            raise InvalidStartingToken(
                f"StartingToken {token[:40]!r} is not a version-{TOKEN_VERSION} NextToken of paginate_usage"
            )
        if set(body) != _TOKEN_FIELDS:
            raise InvalidStartingToken(
                f"StartingToken {token[:40]!r} has fields {sorted(body)}, not those of a NextToken "
                f"of paginate_usage {sorted(_TOKEN_FIELDS)}"
            )
        issued_for = {name: body[name] for name in ("plan", "start", "end", "key")}
        if issued_for != self._identity():
            raise InvalidStartingToken(
                f"StartingToken was issued for {_describe(issued_for)}, not for {_describe(self._identity())}"
            )
        position, skip, limit = body["position"], body["skip"], body["limit"]
        if not (position is None or (isinstance(position, str) and position)):
            raise InvalidStartingToken(f"StartingToken holds an invalid position {position!r}")
        if type(limit) is not int or not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidStartingToken(
                f"StartingToken holds an invalid page size {limit!r}: allowed are 1 to {MAX_PAGE_SIZE}"
            )
        # A cut page still had a key at index ``skip``, so skip < limit.
        if type(skip) is not int or not 0 <= skip < limit:
            raise InvalidStartingToken(
                f"StartingToken holds an invalid key offset {skip!r} for a page of {limit}: "
                f"allowed are 0 to {limit - 1}"
            )
        return position, skip, limit

    # -- iteration ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[UsagePage]:
        if self._used:
            raise RuntimeError("a UsagePages iterator can be walked once; call paginate_usage again")
        self._used = True
        position, skip, limit = self._start
        requested: set[str | None] = set()
        seen: set[str] = set()
        while True:
            if position in requested:
                raise PaginationLoop(
                    f"GetUsage for usage plan {self._request['usagePlanId']} returned position "
                    f"{position!r} a second time; stopping instead of looping"
                )
            requested.add(position)
            params: dict[str, Any] = {**self._request, "limit": limit}
            if position is not None:
                params["position"] = position
            response = self._client.get_usage(**params)
            self.service_pages += 1
            items, next_position = self._read(response, first_page=position is None)
            key_ids = sorted(items)
            if skip and len(key_ids) <= skip:
                raise StaleStartingToken(
                    f"StartingToken: the GetUsage page it resumes for usage plan "
                    f"{self._request['usagePlanId']} has {len(key_ids)} keys now, but {skip} were already "
                    "returned; the plan's keys changed since the token was issued: start again without it"
                )
            page_items: dict[str, list[Any]] = {}
            stopped_at: int | None = None
            for index in range(skip, len(key_ids)):
                key_id = key_ids[index]
                if key_id not in seen and self._reached_max_items(seen):
                    stopped_at = index
                    break
                page_items[key_id] = items[key_id]
                if key_id in seen:
                    self.duplicate_keys.add(key_id)
                seen.add(key_id)
            yield self._page(response, page_items)
            if stopped_at is not None:
                self.resume_token = self._encode(position, stopped_at, limit)
                return
            if next_position is None:
                return
            if self._reached_max_items(seen):
                # On a page boundary: resume at the next page, without reading it now.
                self.resume_token = self._encode(next_position, 0, self.page_size)
                return
            position, skip, limit = next_position, 0, self.page_size

    def _reached_max_items(self, seen: set[str]) -> bool:
        return self.max_items is not None and len(seen) >= self.max_items

    def _read(
        self, response: Mapping[str, Any], *, first_page: bool
    ) -> tuple[dict[str, list[Any]], str | None]:
        """The page's keys and the next ``position``.

        A page without ``values`` at all (``items`` in boto3) is read as no keys only when it is the
        first and last page: a plan with no keys (whether AWS then sends an empty map or nothing is
        unconfirmed). A page that says more follow, or that was asked for by ``position``, always
        carries its keys: without them its keys would be lost without a word.
        """
        items = response.get("items")
        position = response.get("position")
        if items is None:
            if position or not first_page:
                raise MalformedUsagePage(
                    f"GetUsage for usage plan {self._request['usagePlanId']}: a page without values "
                    f"({'more pages follow' if position else 'not the first page'}): its keys would be lost"
                )
            items = {}
        if not isinstance(items, dict) or not all(isinstance(key, str) for key in items):
            raise MalformedUsagePage(
                f"GetUsage for usage plan {self._request['usagePlanId']}: items is "
                f"{type(items).__name__}, not a map of API key id to daily usage"
            )
        if position is not None and not isinstance(position, str):
            raise MalformedUsagePage(
                f"GetUsage for usage plan {self._request['usagePlanId']}: "
                f"position {position!r} is not a string"
            )
        return items, (position or None)

    def _page(self, response: Mapping[str, Any], items: dict[str, list[Any]]) -> UsagePage:
        page: UsagePage = {}
        for name in ("usagePlanId", "startDate", "endDate", "position"):
            if isinstance(response.get(name), str):
                page[name] = response[name]
        page["items"] = items
        if not self._envelope:
            # As botocore's build_full_result, the envelope comes from the first page.
            self._envelope = {
                name: page[name] for name in ("usagePlanId", "startDate", "endDate") if name in page
            }
        return page

    def merged_items(self) -> dict[str, list[Any]]:
        """Walk every page and merge the maps: API key id to daily ``[used, remaining]``.

        Each key comes once; a key that two pages both list is merged with :func:`merge_daily`.
        When ``MaxItems`` cut the walk short, :attr:`resume_token` is set afterwards. Two
        observations of a key that cannot be merged raise :class:`MalformedUsagePage`.
        """
        return self._merge(strict=True)[0]

    def items_and_unmergeable(self) -> tuple[dict[str, list[Any]], dict[str, MalformedUsagePage]]:
        """:meth:`merged_items`, but a key whose observations cannot be merged is left out and
        returned apart with its error, so that one key's odd data does not cost the plan's other
        keys. What the monitor's own scan uses."""
        return self._merge(strict=False)

    def _merge(self, *, strict: bool) -> tuple[dict[str, list[Any]], dict[str, MalformedUsagePage]]:
        merged: dict[str, list[Any]] = {}
        unmergeable: dict[str, MalformedUsagePage] = {}
        for page in self:
            for key_id, daily in page["items"].items():
                if key_id in unmergeable:
                    continue
                if key_id not in merged:
                    merged[key_id] = daily
                    continue
                try:
                    merged[key_id] = merge_daily(merged[key_id], daily, key_id=key_id)
                except MalformedUsagePage as error:
                    if strict:
                        raise
                    unmergeable[key_id] = error
                    del merged[key_id]
        return merged, unmergeable

    def build_full_result(self) -> UsageResult:
        """boto3's shape: ``usagePlanId``, ``startDate``, ``endDate``, the merged ``items``, and
        ``NextToken`` when ``MaxItems`` cut the result short."""
        items = self.merged_items()
        result: UsageResult = {}
        for name in ("usagePlanId", "startDate", "endDate"):
            if name in self._envelope:
                result[name] = self._envelope[name]
        result["items"] = items
        if self.resume_token is not None:
            result["NextToken"] = self.resume_token
        return result


def _describe(identity: Mapping[str, Any]) -> str:
    text = f"usage plan {identity.get('plan')!r}, {identity.get('start')!r} to {identity.get('end')!r}"
    return text + (f", key {identity['key']!r}" if identity.get("key") else "")


def paginate_usage(
    client: UsageClient,
    *,
    usagePlanId: str,  # noqa: N803 - boto3's parameter names
    startDate: str,  # noqa: N803
    endDate: str,  # noqa: N803
    keyId: str | None = None,  # noqa: N803
    PaginationConfig: Mapping[str, Any] | None = None,  # noqa: N803
) -> UsagePages:
    """Like ``client.get_paginator('get_usage').paginate(...)``, with MaxItems and merging that work.

    ``client`` is a boto3 API Gateway client, or anything with its ``get_usage`` method (such as
    :class:`quota_monitor.read.calls.ApiGatewayCalls`, which adds rate limiting and retries).
    """
    return UsagePages(
        client,
        usagePlanId=usagePlanId,
        startDate=startDate,
        endDate=endDate,
        keyId=keyId,
        PaginationConfig=PaginationConfig,
    )
