"""GetUsage answers holding any JSON at all, through the wire, botocore and the monitor's scan of
the plan: the outcome is the right numbers or an error, never a wrong number; and an error in one
key's entries is an error for that key alone.

The oracle below reads the JSON by the rules of the API (docs/aws-behaviour.md#getusage-and-its-paginator):
``values`` maps key ids to one ``[used, remaining]`` pair per day of the range, JSON integers from 0 to the
API's ``Long`` maximum (for a plan without a quota, ``remaining`` is not read); a null or absent
``values`` is no keys, and ``values`` that is not a map fails the plan. A key whose list is anything
else must fail, alone: a float, a boolean or a string where a count belongs are errors even where
botocore would turn them into a number (``5.7`` into 5, ``true`` into 1, ``"56"`` into ``[5, 6]``)
or refuse the whole answer (``"abc"``, ``1e400``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apigw_sandbox.account import SandboxAccount
from quota_monitor.config import ScanSettings
from quota_monitor.models import Quota, UsagePlan
from quota_monitor.read.calls import RetryPolicy
from quota_monitor.read.scan import scan_plan
from tests.fault_support import fast_api

if TYPE_CHECKING:
    from apigw_sandbox.local import LocalCloud
    from apigw_sandbox.server import Request

# A MONTH plan reads 31 October (the day before the period, to see the reset) to 3 November: 4 days.
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
DAYS = 4
MAX_LONG = 2**63 - 1

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.sampled_from([0, 1, MAX_LONG, MAX_LONG + 1, -1])
    | st.floats()
    | st.text(max_size=4)
)
any_json = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
)
counts = st.integers(min_value=0, max_value=MAX_LONG) | st.integers(0, 10**6)
good_daily = st.lists(st.tuples(counts, counts).map(list), min_size=DAYS, max_size=DAYS)


@st.composite
def nearly_good_daily(draw: st.DrawFn) -> Any:
    """A good daily list with one thing wrong: a day, an entry or a number replaced by any JSON."""
    daily: list[Any] = draw(good_daily)
    where = draw(st.sampled_from(["list", "day", "number", "drop", "extra"]))
    if where == "list":
        return draw(any_json)
    day = draw(st.integers(0, DAYS - 1))
    if where == "day":
        daily[day] = draw(any_json)
    elif where == "number":
        daily[day][draw(st.integers(0, 1))] = draw(any_json)
    elif where == "drop":
        del daily[day]
    else:
        daily.append(draw(good_daily)[0])
    return daily


key_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
values = (
    any_json
    | st.dictionaries(key_ids, good_daily, max_size=4)
    | st.dictionaries(key_ids, good_daily | nearly_good_daily(), min_size=1, max_size=4)
)


#: What the oracle says for a key that must fail.
FAILS = "fails"


def oracle(raw: Any, *, has_quota: bool) -> dict[str, tuple[int, int | None] | str] | None:
    """What the monitor must report for ``values``: by key, (used, remaining) or :data:`FAILS`;
    None when the plan itself must fail."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        return None
    return {key_id: key_outcome(daily, has_quota=has_quota) for key_id, daily in raw.items()}


def key_outcome(daily: Any, *, has_quota: bool) -> tuple[int, int | None] | str:
    if not isinstance(daily, list) or len(daily) != DAYS:
        return FAILS
    for entry in daily:
        if not isinstance(entry, list) or len(entry) != 2:
            return FAILS
        used, remaining = entry
        if not (type(used) is int and 0 <= used <= MAX_LONG):
            return FAILS
        # Without a quota, remaining means nothing and is not read.
        if has_quota and not (type(remaining) is int and 0 <= remaining <= MAX_LONG):
            return FAILS
    # ``used`` counts the period's days only, not the day before it.
    return (sum(day[0] for day in daily[1:]), daily[-1][1] if has_quota else None)


@pytest.fixture
def plans(cloud: LocalCloud) -> dict[bool, UsagePlan]:
    account = SandboxAccount(clock=lambda: NOW)
    cloud.sandbox.use_account(account)
    with_quota = account.create_usage_plan("gold", limit=1_000_000, period="MONTH")
    without = account.create_usage_plan("internal")
    return {
        True: UsagePlan(with_quota, "gold", Quota(1_000_000, "MONTH")),
        False: UsagePlan(without, "internal", None),
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=values, has_quota=st.booleans())
@example(raw={"k": [[1, 2], [3, 4], [5, 2**63]]}, has_quota=True)
@example(raw={"k": [[1, 2], [3, 4], [5, 2**63]]}, has_quota=False)
@example(raw={"k": [[1, 2], [3, 4], [5, 1.0]]}, has_quota=True)
@example(raw={"k": [[1, 2], [3, 4], [5, True]]}, has_quota=True)
@example(raw={"k": [[1, 2], [3, 4], "56"]}, has_quota=False)
@example(raw={"k": [[1, 2], [3, 4], {"5": 1, "6": 2}]}, has_quota=False)
@example(raw={"k": {"ab": 1, "cd": 2, "ef": 3}}, has_quota=True)
@example(raw={"k": [[1, 2], [3, 4], [float("inf"), 1]]}, has_quota=True)
@example(raw={"k": [[1, 2], [3, 4], [5, float("nan")]]}, has_quota=False)
@example(raw={"k": [[1, 2], [3, 4], [5.7, 1]]}, has_quota=False)
@example(raw=[], has_quota=True)
@example(raw=None, has_quota=True)
def test_any_json_in_values_is_read_right_or_fails_that_key(
    cloud: LocalCloud, plans: dict[bool, UsagePlan], raw: Any, has_quota: bool
) -> None:
    plan = plans[has_quota]

    def serve_raw(request: Request) -> Any:
        def rewrite(payload: bytes) -> bytes:
            body = json.loads(payload)
            body["values"] = raw
            return json.dumps(body).encode()

        return rewrite

    cloud.sandbox.fault_hooks[:] = [serve_raw]
    api = fast_api(cloud, RetryPolicy(max_attempts=1))

    scanned = scan_plan(api, plan, now=NOW, api_keys={}, settings=ScanSettings())

    expected = oracle(raw, has_quota=has_quota)
    if expected is None:
        assert scanned.failure is not None, f"read {raw!r} as {scanned.keys}"
        assert scanned.keys == []
        assert scanned.failure.cause in ("MalformedResponse", "MalformedUsagePage")
        return
    assert scanned.failure is None, scanned.failure
    assert {key.api_key_id: (key.used, key.remaining) for key in scanned.keys} == {
        key_id: numbers for key_id, numbers in expected.items() if numbers != FAILS
    }
    failed = {f.resource_id for f in scanned.key_failures}
    assert failed == {key_id for key_id, numbers in expected.items() if numbers == FAILS}
    assert all(
        (f.resource, f.usage_plan_id, f.cause) == ("api-key", plan.id, "UsageDataError")
        for f in scanned.key_failures
    )
