"""The quota endpoint's answers: a key's snapshot as JSON and IETF RateLimit fields, or a problem.

``GET /quota`` on the provider's REST API, through a Lambda proxy integration (payload 1.0): the
caller's key is the one API Gateway validated, ``requestContext.identity.apiKeyId``; nothing the
caller sends (path, query, headers, body) can choose another. ``identity.apiKey`` is the key's
value: it is never read here, logged or echoed.

The fields follow draft-ietf-httpapi-ratelimit-headers (revision 11, a draft), as structured fields
(RFC 8941): ``RateLimit-Policy: "quota";q=<limit>;w=<seconds of the period>`` and
``RateLimit: "quota";r=<remaining>;t=<seconds until the reset>``, for the plan of the request's API
stage. None for a plan without a quota, nor from numbers too old to pace a client on. Errors are
RFC 9457 problem details (``application/problem+json``). docs/endpoint.md has the contract.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from quota_monitor.publish.snapshots import KeySnapshot

#: ``Cache-Control: private, max-age=`` this at most: a snapshot changes with the next reading.
MAX_AGE_SECONDS: Final = 60
#: ``Retry-After`` when the snapshots cannot be read.
RETRY_AFTER_SECONDS: Final = 5
PROBLEM: Final = "urn:apigw-quota-monitor:problem:"
#: ``<api id>.execute-api.<region>.amazonaws.com`` (and ``.com.cn``): the API's region.
_EXECUTE_API = re.compile(r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


@dataclass(frozen=True)
class QuotaRequest:
    """What the endpoint reads of a proxy event: the validated key's id and the API stage."""

    api_key_id: str | None
    api_id: str | None
    stage: str | None
    account_id: str | None
    #: The API's region, from its execute-api domain; None for a custom domain.
    region: str | None
    path: str

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> QuotaRequest:
        context = event.get("requestContext") or {}
        identity = context.get("identity") or {}
        key_id = identity.get("apiKeyId")
        domain = _EXECUTE_API.match(str(context.get("domainName") or ""))
        return cls(
            api_key_id=key_id if isinstance(key_id, str) and key_id else None,
            api_id=context.get("apiId"),
            stage=context.get("stage"),
            account_id=context.get("accountId"),
            region=domain.group("region") if domain else None,
            path=str(context.get("path") or event.get("path") or "/quota"),
        )


@dataclass(frozen=True)
class Response:
    """A proxy integration's answer (payload 1.0)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    def proxy(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": self.headers,
            "body": json.dumps(self.body, separators=(",", ":")),
            "isBase64Encoded": False,
        }


def problem(
    status: int, kind: str, title: str, detail: str, request: QuotaRequest, **headers: str
) -> Response:
    """An RFC 9457 problem: what went wrong and what to do, never a trace."""
    body = {
        "type": f"{PROBLEM}{kind}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    return Response(
        status, body, {"Content-Type": "application/problem+json", "Cache-Control": "no-store", **headers}
    )


def no_key(request: QuotaRequest) -> Response:
    return problem(
        500,
        "no-api-key",
        "The quota route is not protected by an API key",
        "The API's provider deployed this route without apiKeyRequired, so API Gateway did not say "
        "whose quota to show. Ask the provider to require an API key on it.",
        request,
    )


def not_measured(request: QuotaRequest, *, scan_minutes: int) -> Response:
    return problem(
        404,
        "not-measured-yet",
        "This key's quota has not been measured yet",
        f"The quota monitor reads every key every {scan_minutes} minutes; a new key, or one just added "
        "to a usage plan, is shown after the next reading. Try again then.",
        request,
    )


def unavailable(request: QuotaRequest) -> Response:
    return problem(
        503,
        "unavailable",
        "The quota cannot be read right now",
        f"The monitor's store did not answer. Try again in {RETRY_AFTER_SECONDS} seconds.",
        request,
        **{"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def stage_plan(snapshot: KeySnapshot, request: QuotaRequest) -> dict[str, Any] | None:
    """The key's plan that meters this request's API stage (a key is in one plan a stage)."""
    for plan in snapshot.plans:
        for stage in plan.get("apiStages") or ():
            if stage.get("apiId") == request.api_id and stage.get("stage") == request.stage:
                return plan
    return None


def answer(
    snapshot: KeySnapshot, request: QuotaRequest, *, now: datetime, stale_after: timedelta
) -> Response:
    """``200``: the key's plans, the request stage's plan as ``quota``, and the RateLimit fields of
    that plan unless its numbers are older than ``stale_after`` or of a period that has reset since
    (then ``stale`` is true: they no longer say what is left)."""
    quota = stage_plan(snapshot, request)
    newest = max((_at(str(plan["asOf"])) for plan in snapshot.plans), default=now)
    as_of = _at(str(quota["asOf"])) if quota is not None else newest
    reset = quota is not None and now >= _at(str(quota["resetsAt"]))
    stale = now - as_of > stale_after or reset
    headers = {"Content-Type": "application/json", "Cache-Control": f"private, max-age={MAX_AGE_SECONDS}"}
    if quota is not None and not stale:
        headers |= ratelimit_fields(quota, now=now)
    body = {
        "apiKeyId": snapshot.api_key_id,
        "quota": quota,
        "plans": list(snapshot.plans),
        "asOf": as_of.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "stale": stale,
    }
    return Response(200, body, headers)


def ratelimit_fields(plan: Mapping[str, Any], *, now: datetime) -> dict[str, str]:
    """``RateLimit-Policy`` and ``RateLimit`` for a plan with a quota (none without one)."""
    limit, remaining = plan.get("limit"), plan.get("remaining")
    if not isinstance(limit, int) or not isinstance(remaining, int):
        return {}
    resets = _at(str(plan["resetsAt"]))
    start = datetime.fromisoformat(str(plan["periodStart"])).replace(tzinfo=UTC)
    window = int((resets - start).total_seconds())
    until = max(0, int((resets - now).total_seconds()))
    return {
        "RateLimit-Policy": f'"quota";q={limit};w={window}',
        "RateLimit": f'"quota";r={max(0, remaining)};t={until}',
    }
