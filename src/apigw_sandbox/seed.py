"""Realistic accounts for the demo, the tests and the benchmarks, relative to the sandbox's today."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from apigw_sandbox.account import SandboxAccount


@dataclass(frozen=True)
class SeededKey:
    plan_id: str
    key_id: str
    name: str


@dataclass
class SeededAccount:
    plans: dict[str, str] = field(default_factory=dict)  # plan name -> id
    keys: list[SeededKey] = field(default_factory=list)

    def key(self, name: str) -> SeededKey:
        return next(key for key in self.keys if key.name == name)


def _spread(total: int, days: Sequence[date], rng: random.Random) -> dict[date, int]:
    """Split ``total`` requests over ``days`` with uneven, realistic weights."""
    if not days:
        return {}
    weights = [rng.uniform(0.5, 1.5) for _ in days]
    scale = total / sum(weights)
    used = {day: int(weight * scale) for day, weight in zip(days, weights, strict=True)}
    used[days[-1]] += total - sum(used.values())
    return used


def seed_key_usage(
    account: SandboxAccount,
    plan_id: str,
    key_id: str,
    *,
    utilization: float,
    rng: random.Random,
    history_days: int = 40,
) -> None:
    """Give a key a usage history that leaves it at ``utilization`` percent of its quota today.

    For a plan without a quota, ``utilization`` is read as requests per day.
    """
    plan = account.plan(plan_id)
    today = account.today()
    history = [today - timedelta(days=n) for n in range(history_days, -1, -1)]
    if plan.quota is None:
        account.set_daily_usage(
            plan_id, key_id, {day: int(rng.uniform(0.6, 1.4) * utilization) for day in history}
        )
        return
    period = str(plan.quota["period"])
    limit = int(str(plan.quota["limit"]))
    start = account.period_start(period, today)
    current = [day for day in history if day >= start]
    earlier = [day for day in history if day < start]
    used: dict[date, int] = {}
    # Earlier periods: moderate use, each period well inside its quota.
    by_period: dict[date, list[date]] = {}
    for day in earlier:
        by_period.setdefault(account.period_start(period, day), []).append(day)
    for days in by_period.values():
        used.update(_spread(int(limit * rng.uniform(0.2, 0.7)), days, rng))
    used.update(_spread(round(limit * utilization / 100), current, rng))
    account.set_daily_usage(plan_id, key_id, used)


DEMO_PLANS: tuple[tuple[str, int | None, str | None, int], ...] = (
    # name, limit, period, keys
    ("free", 1_000, "DAY", 24),
    ("pro", 50_000, "WEEK", 10),
    ("gold", 1_000_000, "MONTH", 12),
    ("internal", None, None, 4),
)

DEMO_KEY_NAMES = (
    "acme-mobile",
    "billing-client",
    "checkout-web",
    "data-export",
    "edge-cache",
    "fleet-tracker",
    "geo-lookup",
    "helpdesk-bot",
    "invoice-sync",
    "journey-planner",
    "kiosk-app",
    "ledger-batch",
    "maps-widget",
    "notify-service",
    "orders-api",
    "partner-portal",
    "quotes-engine",
    "reports-nightly",
    "search-proxy",
    "tax-calc",
    "uploader",
    "vendor-feed",
    "warehouse-scan",
    "xr-viewer",
)

#: The demo key tagged ``quota-monitor:metrics=always``: a quiet key that keeps its per-key metrics.
DEMO_ALWAYS_METRICS_KEY = "partner-portal"

#: Keys the demo puts near or over quota: (plan, index in plan) -> utilization today.
DEMO_HOT_KEYS = {
    ("free", 0): 100.0,
    ("free", 1): 96.5,
    ("free", 2): 88.0,
    ("pro", 0): 92.4,
    ("gold", 0): 81.2,
    ("gold", 1): 99.1,
}


#: The demo's gold plan is routed: its alerts go to a topic of their own (quota-monitor:route).
DEMO_ROUTE_TAG = "quota-monitor:route"
DEMO_ROUTE = "partners"


def seed_demo_account(account: SandboxAccount, *, seed: int = 7) -> SeededAccount:
    """About 50 keys over plans with DAY, WEEK and MONTH quotas and one without, some near or
    over quota, one extended above its limit with UpdateUsage, threshold tags on a plan and a key,
    the gold plan routed to the ``partners`` route, and one quiet key tagged to keep its per-key
    metrics.
    """
    rng = random.Random(seed)
    seeded = SeededAccount()
    names = iter(f"{name}-{n}" if n else name for n in range(10) for name in DEMO_KEY_NAMES)
    for plan_name, limit, period, key_count in DEMO_PLANS:
        tags = {"team": "platform"}
        if plan_name == "pro":
            tags["quota-monitor:thresholds"] = "75/90/100"
        if plan_name == "gold":
            tags = {"team": "partners", DEMO_ROUTE_TAG: DEMO_ROUTE}
        plan_id = account.create_usage_plan(plan_name, limit=limit, period=period, tags=tags)
        seeded.plans[plan_name] = plan_id
        for index in range(key_count):
            name = next(names)
            key_tags = {"quota-monitor:thresholds": "50 75 95"} if name == "billing-client" else {}
            if name == DEMO_ALWAYS_METRICS_KEY:
                key_tags = {"quota-monitor:metrics": "always"}
            key_id = account.create_api_key(name, tags=key_tags)
            account.attach_key(plan_id, key_id)
            if limit is None:
                target: float | None = None
                seed_key_usage(account, plan_id, key_id, utilization=rng.uniform(50, 5_000), rng=rng)
            else:
                target = DEMO_HOT_KEYS.get((plan_name, index), round(rng.uniform(2, 70), 1))
                seed_key_usage(account, plan_id, key_id, utilization=target, rng=rng)
            seeded.keys.append(SeededKey(plan_id, key_id, name))
    # An administrator extended one gold key's quota for this month: remaining above the limit.
    gold_keys = [key for key in seeded.keys if key.plan_id == seeded.plans["gold"]]
    extended = gold_keys[2]
    gold_limit = 1_000_000
    account.update_remaining(extended.plan_id, extended.key_id, gold_limit + 200_000)
    return seeded


#: The demo's second region: a plan of its own there, one key over its first level.
DEMO_SECOND_REGION = "eu-west-1"
DEMO_SECOND_REGION_KEYS = (("eu-mobile-app", 91.0), ("eu-partner-sync", 35.0), ("eu-reports", 12.5))


def seed_second_region(account: SandboxAccount, *, seed: int = 11) -> SeededAccount:
    """The same company's API in a second region: one plan, three keys, one of them hot."""
    rng = random.Random(seed)
    seeded = SeededAccount()
    plan_id = account.create_usage_plan("eu-standard", limit=50_000, period="MONTH", tags={"team": "eu"})
    seeded.plans["eu-standard"] = plan_id
    for name, utilization in DEMO_SECOND_REGION_KEYS:
        key_id = account.create_api_key(name)
        account.attach_key(plan_id, key_id)
        seed_key_usage(account, plan_id, key_id, utilization=utilization, rng=rng)
        seeded.keys.append(SeededKey(plan_id, key_id, name))
    return seeded


def seed_scale_account(
    account: SandboxAccount,
    *,
    plans: int = 300,
    keys: int = 10_000,
    period: str = "MONTH",
    limit: int = 100_000,
    big_plans: int = 2,
    big_plan_keys: int = 1_234,
    history_days: int = 30,
    seed: int = 11,
    utilization: tuple[float, float] = (1.0, 99.0),
) -> SeededAccount:
    """An account at AWS's default maxima: ``plans`` usage plans, ``keys`` API keys.

    ``big_plans`` plans hold ``big_plan_keys`` keys each (several GetUsage pages at 500); the
    rest of the keys are spread over the other plans. Every key has ``history_days`` + 1 days
    of data, so a scan on the last day of a month reads 31 days per key. Each key ends today at a
    utilization drawn uniformly from ``utilization`` (percent).
    """
    rng = random.Random(seed)
    seeded = SeededAccount()
    plan_ids = [
        account.create_usage_plan(f"plan-{n:03d}", limit=limit, period=period, plan_id=f"p{n:05d}")
        for n in range(plans)
    ]
    seeded.plans = {f"plan-{n:03d}": plan_id for n, plan_id in enumerate(plan_ids)}
    sizes = [big_plan_keys if n < big_plans else 0 for n in range(plans)]
    rest = keys - sum(sizes)
    small = plans - big_plans
    for n in range(big_plans, plans):
        sizes[n] = rest // small + (1 if n - big_plans < rest % small else 0)
    key_number = 0
    for plan_id, size in zip(plan_ids, sizes, strict=True):
        for _ in range(size):
            key_id = account.create_api_key(f"key-{key_number:05d}", key_id=f"k{key_number:09d}")
            account.attach_key(plan_id, key_id)
            target = round(rng.uniform(*utilization), 1)
            seed_key_usage(account, plan_id, key_id, utilization=target, rng=rng, history_days=history_days)
            seeded.keys.append(SeededKey(plan_id, key_id, f"key-{key_number:05d}"))
            key_number += 1
    return seeded
