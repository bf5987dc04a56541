"""Usage plans with known daily usage over a fixed range, for the paginator and CLI tests."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import LocalCloud
    from apigw_sandbox.server import Request

# A fixed three-day range in the past: the data does not depend on today.
START, END = "2026-03-01", "2026-03-03"
DAYS = 3


def add_plan(account: SandboxAccount, plan_id: str, keys: int, rng: random.Random) -> list[str]:
    """A plan with ``keys`` keys whose ids sort in another order than they were created in, and
    different daily numbers for every key, so that a key paired with another key's data shows."""
    account.create_usage_plan(plan_id, limit=10_000, period="DAY", plan_id=plan_id)
    first = date.fromisoformat(START)
    key_ids = []
    for _ in range(keys):
        key_id = f"{rng.getrandbits(48):012x}"
        account.create_api_key(key_id, key_id=key_id)
        account.attach_key(plan_id, key_id)
        used = {first + timedelta(days=day): rng.randrange(0, 5_000) for day in range(DAYS)}
        account.set_daily_usage(plan_id, key_id, used)
        key_ids.append(key_id)
    return key_ids


def rewrite_usage(cloud: LocalCloud, change: Callable[[dict[str, Any], Request], None]) -> None:
    """Let ``change(body, request)`` edit the wire body of every GetUsage response (``values``
    is the map of key id to daily usage, ``position`` the next page)."""

    def hook(request: Request) -> Any:
        if request.operation != "GetUsage":
            return None

        def rewrite(payload: bytes) -> bytes:
            body = json.loads(payload)
            change(body, request)
            return json.dumps(body).encode()

        return rewrite

    cloud.sandbox.fault_hooks.append(hook)
