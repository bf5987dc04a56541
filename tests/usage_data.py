"""Usage plans with known daily usage over a fixed range, for the paginator and CLI tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random

    from apigw_sandbox.account import SandboxAccount

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
