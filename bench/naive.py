"""The scan as people often write it, to measure the monitor against.

Sequential; boto3's paginators at the service's default page size (25); the keys of each plan
from GetUsagePlanKeys; one GetUsage call per key (``keyId``), which sidesteps the GetUsage
paginator's trap (docs/aws-behaviour.md#getusage-and-its-paginator) at the price of a call per key; boto3's
default client, so botocore's default retries (standard mode, 3 attempts, no client-side rate limit). A key
whose GetUsage call still fails after botocore's retries is skipped, as a ``try/except`` around the call
would; a failure to list plans or keys fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from botocore.exceptions import ClientError


@dataclass
class NaiveResult:
    #: [plan id, key id, used, remaining] a key.
    keys: list[list[Any]] = field(default_factory=list)
    #: Keys whose GetUsage failed: (plan id, key id, error code).
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    #: API key names by id, for the report people print.
    names: dict[str, str | None] = field(default_factory=dict)


def period_start(period: str, today: date) -> date:
    if period == "DAY":
        return today
    if period == "WEEK":
        return today - timedelta(days=(today.weekday() + 1) % 7)  # weeks from Sunday
    return today.replace(day=1)


def naive_scan(client: Any, today: date) -> NaiveResult:
    result = NaiveResult()
    for page in client.get_paginator("get_api_keys").paginate():
        for key in page["items"]:
            result.names[key["id"]] = key.get("name")
    for page in client.get_paginator("get_usage_plans").paginate():
        for plan in page["items"]:
            quota = plan.get("quota")
            start = period_start(quota["period"] if quota else "MONTH", today)
            for keys_page in client.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan["id"]):
                for key in keys_page["items"]:
                    try:
                        usage = client.get_usage(
                            usagePlanId=plan["id"],
                            keyId=key["id"],
                            startDate=start.isoformat(),
                            endDate=today.isoformat(),
                        )
                    except ClientError as error:
                        result.skipped.append((plan["id"], key["id"], error.response["Error"]["Code"]))
                        continue
                    daily = usage.get("items", {}).get(key["id"], [])
                    used = sum(day[0] for day in daily)
                    remaining = daily[-1][1] if daily and quota else None
                    result.keys.append([plan["id"], key["id"], used, remaining])
    return result
