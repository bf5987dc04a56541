"""Helpers shared by the fault tests: accounts with known usage, and the clients they read with."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from apigw_sandbox.seed import seed_key_usage
from quota_monitor.read.calls import ApiGatewayCalls, RetryPolicy
from quota_monitor.read.raw_counts import register_raw_checks

if TYPE_CHECKING:
    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import LocalCloud
    from apigw_sandbox.server import ServedUsage
    from quota_monitor.models import KeyUsage, ScanResult

#: Only a client that is to meet a read-timeout fault has a read timeout of its own. The fault holds
#: its answer HOLD seconds before it drops the connection, so a client that waits READ_TIMEOUT
#: (less) times out on it whatever the machine's speed: use it for the held call alone. Every
#: answer that must come is waited for as botocore waits by default (60 s): on a loaded machine (at
#: ``-n 8`` on two cores) a plain answer took longer than 0.4 s, and nothing is learnt by waiting less.
READ_TIMEOUT = 0.4
HOLD = 1.0
#: A scan that meets read-timeout faults among answers that must come reads them all with one
#: client: it waits SCAN_READ_TIMEOUT, the most a plain answer of these small accounts took on a
#: loaded machine with a wide margin (as the chaos test's), and the fault holds twice as long.
SCAN_READ_TIMEOUT = 2.0
SCAN_HOLD = 2 * SCAN_READ_TIMEOUT
#: Fast retries: faults are retried as in production, without the waiting.
FAST_RETRIES = RetryPolicy(max_attempts=4, base_delay=0.005, max_delay=0.02)


def add_plan(
    account: SandboxAccount,
    name: str,
    keys: int,
    *,
    limit: int | None = 10_000,
    period: str | None = "MONTH",
    utilization: tuple[float, float] = (1.0, 99.0),
) -> tuple[str, list[str]]:
    """A plan with ``keys`` keys, each with a usage history that leaves it between the given utilizations."""
    rng = random.Random(name)
    plan_id = account.create_usage_plan(name, limit=limit, period=period)
    key_ids = []
    for n in range(keys):
        key_id = account.create_api_key(f"{name}-key-{n}")
        account.attach_key(plan_id, key_id)
        seed_key_usage(
            account, plan_id, key_id, utilization=rng.uniform(*utilization), rng=rng, history_days=10
        )
        key_ids.append(key_id)
    return plan_id, key_ids


def sandbox_client(cloud: LocalCloud, *, read_timeout: float | None = None) -> Any:
    """The monitor's API Gateway client settings (no botocore retries, the unreadable-body check).
    ``read_timeout``: only for a client that is to see a read-timeout fault (:data:`READ_TIMEOUT`,
    :data:`SCAN_READ_TIMEOUT`); otherwise botocore's own."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=16)
    if read_timeout is not None:
        config = config.merge(Config(read_timeout=read_timeout))
    client = cloud.client("apigateway", config=config)
    register_raw_checks(client)
    return client


def fast_api(
    cloud: LocalCloud, policy: RetryPolicy = FAST_RETRIES, *, read_timeout: float | None = None
) -> ApiGatewayCalls:
    """The monitor's retrying wrapper over :func:`sandbox_client`."""
    return ApiGatewayCalls(sandbox_client(cloud, read_timeout=read_timeout), policy=policy)


def numbers(daily: list[list[int]], has_quota: bool = True) -> tuple[int, int | None]:
    """(used, remaining) as the monitor must report them from one key's daily list as the scan asks
    for it: from the day before the period (read only to see the counter reset) to today."""
    return sum(day[0] for day in daily[1:]), (daily[-1][1] if has_quota else None)


def check_served_is_reported(result: ScanResult, served: list[ServedUsage]) -> dict[str, int]:
    """The invariant of every fault test: each plan is either reported as failed, or every key whose
    data the sandbox served intact is reported, once, with exactly the served numbers; and no key
    is reported whose data was not served intact. A key of a plan that was read may fail on its own
    (an ``api-key`` failure), only for data that went out damaged, and then has no numbers.
    Returns a few counts for the caller."""
    failed = {f.resource_id for f in result.failures if f.resource == "usage-plan"}
    failed_keys = {(f.usage_plan_id, f.resource_id) for f in result.failures if f.resource == "api-key"}
    damaged = {(s.usage_plan_id, s.api_key_id) for s in served if not s.intact}
    for pair in failed_keys:
        assert pair[0] not in failed, f"key {pair} failed in a plan that failed as a whole"
        assert pair in damaged, f"key {pair} failed but its data never went out damaged"
    reported: dict[tuple[str, str], KeyUsage] = {}
    for key in result.keys:
        pair = (key.usage_plan_id, key.api_key_id)
        assert pair not in reported, f"key {pair} reported twice"
        reported[pair] = key
    last_intact: dict[tuple[str, str], ServedUsage] = {}
    for serving in served:
        if serving.intact:
            last_intact[(serving.usage_plan_id, serving.api_key_id)] = serving
    for pair, key in reported.items():
        assert key.usage_plan_id not in failed
        assert pair not in failed_keys, f"key {pair} both failed and reported"
        if not key.in_usage_data:
            continue  # added by the plan-key cross-check, not from usage data
        assert pair in last_intact, f"key {pair} reported but its data was never served intact"
        assert (key.used, key.remaining) == numbers(last_intact[pair].daily, key.limit is not None), pair
    missing = {pair for pair in last_intact if pair[0] not in failed} - reported.keys() - failed_keys
    assert not missing, f"{len(missing)} keys served but not reported, such as {sorted(missing)[:3]}"
    return {
        "reported": len(reported),
        "served": len(last_intact),
        "failed_plans": len(failed),
        "failed_keys": len(failed_keys),
    }


def control(cloud: LocalCloud, method: str, path: str = "/_sandbox/faults", body: object = None) -> Any:
    """Call the sandbox's own HTTP API; returns (status, decoded JSON)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(cloud.sandbox.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
