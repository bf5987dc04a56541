"""The benchmark's scenario and the yardsticks it is measured against.

The yardsticks are computed from the account's shape alone (how many plans, API keys, and keys in
each plan), never from the monitor's code, so that a monitor making a wasted call cannot hide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime

#: API Gateway's largest page for every list call (GetUsagePlans, GetApiKeys, GetUsage).
MAX_PAGE = 500
#: PutMetricData's limits: data points and bytes a request (docs/aws-behaviour.md#cloudwatch-metrics).
MAX_DATAPOINTS_PER_REQUEST = 1_000
MAX_REQUEST_BYTES = 1_000_000


@dataclass(frozen=True)
class Scenario:
    """What the sandbox holds and how it behaves: the issue's scenario by default."""

    plans: int = 300
    keys: int = 10_000
    big_plans: int = 2
    big_plan_keys: int = 1_234
    #: The last day of a 31-day month, so that GetUsage returns 31 days for every key.
    scan_date: date = date(2026, 10, 31)
    #: Seconds of latency per call, drawn uniformly from this range.
    latency: tuple[float, float] = (0.05, 0.15)
    #: The account-wide token bucket of API Gateway's control plane (docs/aws-behaviour.md#account-limits).
    account_rps: float = 10.0
    account_burst: int = 40

    @property
    def scan_at(self) -> datetime:
        return datetime(self.scan_date.year, self.scan_date.month, self.scan_date.day, 12, tzinfo=UTC)

    @property
    def days(self) -> int:
        """Days of usage data per key in a scan on :attr:`scan_date` (MONTH quotas)."""
        return self.scan_date.day


@dataclass(frozen=True)
class AccountShape:
    plans: int
    api_keys: int
    keys_per_plan: tuple[int, ...]

    @property
    def attached_keys(self) -> int:
        return sum(self.keys_per_plan)


def pages(items: int, page_size: int = MAX_PAGE) -> int:
    """Calls to list ``items`` things: an empty list still takes one call to learn it is empty."""
    return max(1, math.ceil(items / page_size))


def minimum_calls(shape: AccountShape) -> dict[str, int]:
    """The fewest API Gateway calls that read every plan, every key name and every key's usage."""
    if shape.plans == 0:
        return {"GetUsagePlans": 1}
    return {
        "GetUsagePlans": pages(shape.plans),
        "GetApiKeys": pages(shape.api_keys),
        "GetUsage": sum(pages(keys) for keys in shape.keys_per_plan),
    }


def floor_seconds(calls: int, rate: float, burst: int) -> float:
    """The least time ``calls`` can take under a client-side limit of ``rate`` a second, ``burst`` at once.

    The first ``burst`` calls go at once, every further one waits 1/``rate``: the issue's floor
    (calls beyond the burst ÷ rate). Latency is not added: it overlaps the waits.
    """
    if rate <= 0:
        raise ValueError(f"rate {rate} must be above 0")
    return max(0, calls - burst) / rate


def minimum_metric_requests(datapoints: int) -> int:
    return math.ceil(datapoints / MAX_DATAPOINTS_PER_REQUEST)
