"""Properties that the sandbox's fault tests cannot enumerate: page merging over any paging, period
maths against what GetUsage returns, and the crossing rules over any sequence of runs, including
runs that cannot read a plan and deliveries that fail.

What exists elsewhere and is not repeated here: resumed chunks concatenating to the full result
(test_usage_pages.py), periods tiling time and agreeing with the sandbox's model (test_periods.py),
each level alerting at most once within one period (test_alert_rules.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from apigw_sandbox.account import SandboxAccount
from quota_monitor.alert.rules import AlertState, evaluate
from quota_monitor.alert.thresholds import AlertPolicy
from quota_monitor.compute.forecast import forecast
from quota_monitor.compute.levels import level_reached
from quota_monitor.compute.periods import days_between, period_containing
from quota_monitor.config import AlertSettings, ForecastSettings
from quota_monitor.errors import PaginationLoop
from quota_monitor.models import KeyUsage
from quota_monitor.read.listing import walk_pages
from quota_monitor.read.usage_pages import paginate_usage

# -- page merging ---------------------------------------------------------------------------------


class ScriptedService:
    """Stands in for API Gateway's side of GetUsage (or a list call): the pages given, linked by
    ``position``, answered in whatever order they are asked for. Only the service is scripted: the
    paginator under test is the monitor's own."""

    def __init__(self, pages: list[Any], links: list[int | None]) -> None:
        self.pages, self.links = pages, links
        self.calls: list[dict[str, Any]] = []

    def _answer(self, params: dict[str, Any], field: str) -> dict[str, Any]:
        self.calls.append(params)
        index = int(params.get("position", "p0")[1:])
        answer = {field: self.pages[index]}
        if self.links[index] is not None:
            answer["position"] = f"p{self.links[index]}"
        return answer

    def get_usage(self, **params: Any) -> dict[str, Any]:
        return self._answer(params, "items")

    def get_usage_plans(self, **params: Any) -> dict[str, Any]:
        return self._answer(params, "items")


DAYS = 3
counts = st.integers(min_value=0, max_value=10**6)
daily_lists = st.lists(st.tuples(counts, counts).map(list), min_size=DAYS, max_size=DAYS)


@st.composite
def paged_usage(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, list[list[list[int]]]]]:
    """Pages of a key->daily map where some keys come again on a later page, each time as a fresh
    observation (any numbers): the pages, and every observation of each key."""
    keys = draw(st.lists(st.text("abcdef0123", min_size=1, max_size=6), unique=True, max_size=12))
    cuts = sorted(draw(st.lists(st.integers(0, len(keys)), max_size=4)))
    bounds = [0, *cuts, len(keys)]
    pages: list[dict[str, Any]] = [
        {key: draw(daily_lists) for key in keys[bounds[n] : bounds[n + 1]]} for n in range(len(bounds) - 1)
    ]
    for n in range(1, len(pages)):
        earlier = [key for page in pages[:n] for key in page]
        for key in draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []:
            pages[n] = {key: draw(daily_lists), **pages[n]}  # seen again, at the top of a later page
    observed: dict[str, list[list[list[int]]]] = {}
    for page in pages:
        for key, daily in page.items():
            observed.setdefault(key, []).append(daily)
    return pages, observed


@settings(max_examples=300)
@given(paged=paged_usage())
def test_merged_pages_hold_every_key_once_with_the_highest_used_and_lowest_remaining(
    paged: tuple[list[dict[str, Any]], dict[str, list[list[list[int]]]]],
) -> None:
    pages, observed = paged
    service = ScriptedService(pages, [n + 1 if n + 1 < len(pages) else None for n in range(len(pages))])
    walk = paginate_usage(service, usagePlanId="p", startDate="2026-11-01", endDate="2026-11-03")  # type: ignore[arg-type]

    merged = walk.merged_items()

    assert set(merged) == set(observed)
    for key, observations in observed.items():
        assert merged[key] == [
            [max(o[day][0] for o in observations), min(o[day][1] for o in observations)]
            for day in range(DAYS)
        ]
    assert walk.duplicate_keys == {key for key, observations in observed.items() if len(observations) > 1}
    assert len(service.calls) == walk.service_pages == len(pages)


@settings(max_examples=300)
@given(
    sizes=st.lists(st.integers(0, 4), min_size=1, max_size=8),
    back_to=st.one_of(st.none(), st.integers(1, 7)),
    from_page=st.integers(0, 7),
)
def test_walk_pages_yields_every_item_in_order_or_stops_at_a_repeated_position(
    sizes: list[int], back_to: int | None, from_page: int
) -> None:
    items = list(range(sum(sizes)))
    pages = [items[sum(sizes[:n]) : sum(sizes[: n + 1])] for n in range(len(sizes))]
    links: list[int | None] = [n + 1 if n + 1 < len(pages) else None for n in range(len(pages))]
    looping = back_to is not None and from_page < len(pages) and back_to <= from_page
    if looping:
        links[from_page] = back_to  # the service points back at a page already read (not the first:
        # that one was asked for without a position, so a position for it would be a new one)
    service = ScriptedService(pages, links)

    if looping:
        with pytest.raises(PaginationLoop, match="a second time"):
            list(walk_pages(service.get_usage_plans, "GetUsagePlans"))
        assert len(service.calls) == from_page + 1  # stopped before asking again
    else:
        walked: list[Any] = [
            item for page in walk_pages(service.get_usage_plans, "GetUsagePlans") for item in page
        ]
        assert walked == items
        assert len(service.calls) == len(pages)
    assert all(call["limit"] == 500 for call in service.calls)


# -- period maths against GetUsage ----------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    kind=st.sampled_from(["DAY", "WEEK", "MONTH"]),
    week_start=st.integers(0, 6),
)
def test_the_scan_expects_as_many_days_as_getusage_returns_for_the_current_period(
    day: date, kind: str, week_start: int
) -> None:
    """The scan checks each key's list against ``days_between(period start, today)``: one day off
    would fail every key of every plan. The sandbox's own model of GetUsage agrees, for any day."""
    period = period_containing(kind, day, week_start=week_start)  # type: ignore[arg-type]
    account = SandboxAccount(
        week_start=week_start, clock=lambda: datetime(day.year, day.month, day.day, tzinfo=UTC)
    )
    plan = account.create_usage_plan("p", limit=100, period=kind, created=date(1999, 1, 1))
    key = account.create_api_key("k")
    account.attach_key(plan, key)

    served = account.daily_usage(plan, key, period.start, day)

    assert len(served) == days_between(period.start, day) == (day - period.start).days + 1
    assert 1 <= len(served) <= period.days
    assert served[0][1] == 100  # the period starts afresh on its first day: no use carried over


# -- the crossing rules over any sequence of runs -------------------------------------------------

SETTINGS = AlertSettings(
    "arn:aws:sns:us-east-1:123456789012:t", "t", forecast=ForecastSettings(enabled=False)
)
LIMIT = 1_000
MONTHS = [date(2026, month, 1) for month in range(1, 13)]


def key_at(percent_used: int, month: int) -> KeyUsage:
    start = MONTHS[month]
    following = start.replace(month=start.month + 1) if start.month < 12 else date(start.year + 1, 1, 1)
    remaining = LIMIT - LIMIT * percent_used // 100
    return KeyUsage(
        usage_plan_id="p1",
        usage_plan_name="gold",
        api_key_id="k1",
        api_key_name="billing",
        period="MONTH",
        period_start=start,
        resets_at=datetime(following.year, following.month, following.day, tzinfo=UTC),
        used=LIMIT - remaining,
        remaining=remaining,
        limit=LIMIT,
        utilization=100.0 * (LIMIT - remaining) / LIMIT,
    )


# One run: (month index, percent used, the plan could be read, the message went out).
runs = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 100), st.booleans(), st.booleans()), min_size=1, max_size=25
).map(lambda xs: sorted(xs, key=lambda run: run[0]))  # time moves forward


@settings(max_examples=400)
@given(
    history=runs,
    levels=st.lists(st.integers(1, 100), min_size=1, max_size=4, unique=True).map(
        lambda xs: tuple(sorted(xs))
    ),
)
def test_no_alert_is_lost_or_doubled_over_periods_unreadable_runs_and_failed_deliveries(
    history: list[tuple[int, int, bool, bool]], levels: tuple[int, ...]
) -> None:
    """The state is what :mod:`quota_monitor.alert.state` stores: the new state when the message went
    out (confirm), the old one when it did not (release), nothing at all when the plan was unreadable."""
    # GIVEN any history of months, use, unreadable runs and failed deliveries
    policy = AlertPolicy(levels=levels, levels_from="default")
    state: AlertState | None = None
    delivered: list[tuple[int, str, int]] = []  # (month, kind, level)
    # WHEN the rules run over it, the state kept as the store keeps it
    for month, percent, readable, delivers in history:
        if not readable:
            continue  # no data: no evaluation, no change (a failed plan is not a recovery)
        key = key_at(percent, month)
        decision = evaluate(key, policy, state, now=key.resets_at - timedelta(days=1), settings=SETTINGS)
        reached = level_reached(key, levels)
        if decision is None:
            # Nothing to say: everything reached in this period was already said.
            assert state is not None or reached == 0
            if state is not None and state.period_start == key.period_start:
                assert state.level >= reached
            continue
        note = decision.notification
        if note is not None and not delivers:
            continue  # released: the state stays as it was read, so the next run says it again
        if note is not None:
            period = (note.previous_period_start or note.key.period_start).month - 1
            delivered.append((period, note.kind, note.level))
        state = decision.new
        # After a run that went out, the state holds the level reached: nothing is left unsaid.
        assert state.period_start == key.period_start
        assert state.level == reached or (note is None and state.level == 0)

    # THEN within each period every level is said once, in order, and recoveries follow alerts
    for month in range(3):
        said = [(kind, level) for period, kind, level in delivered if period == month]
        thresholds = [level for kind, level in said if kind == "threshold"]
        # Within a period, each alert names a higher level than the last, unless a recovery came between.
        since_recovery: list[int] = []
        for kind, level in said:
            if kind == "recovered":
                assert since_recovery, "a recovery with nothing alerted before it"
                assert level == since_recovery[-1]
                since_recovery = []
            elif kind == "threshold":
                assert not since_recovery or level > since_recovery[-1]
                since_recovery.append(level)
        assert all(level in levels for level in thresholds)


# -- the forecast rule ----------------------------------------------------------------------------


@settings(max_examples=300)
@given(
    used=st.integers(0, 2_000_000),
    limit=st.integers(1, 2_000_000),
    hours_in=st.floats(min_value=0.0, max_value=24 * 31),
    margin=st.floats(min_value=0.0, max_value=100.0),
    min_elapsed=st.floats(min_value=0.0, max_value=100.0),
)
def test_a_forecast_only_ever_warns_of_running_out_before_the_reset(
    used: int, limit: int, hours_in: float, margin: float, min_elapsed: float
) -> None:
    remaining = max(0, limit - used)
    key = replace(key_at(0, 0), used=used, remaining=remaining, limit=limit, utilization=100.0 * used / limit)
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=hours_in)
    assume(now < key.resets_at)
    settings_ = ForecastSettings(margin_percent=margin, min_elapsed_percent=min_elapsed)

    result = forecast(key, now, settings_)

    if result is None:
        return
    assert now < result.exhausts_at <= key.resets_at + timedelta(milliseconds=1)  # float time
    assert result.ahead_of_reset == key.resets_at - result.exhausts_at
    assert 0 < remaining < limit
    assert used * 100 >= settings_.min_utilization_percent * limit
    elapsed = (now - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds()
    assert 100 * elapsed / (31 * 86_400) >= min_elapsed
    # Even at a rate ``margin`` percent lower, the quota would not last until the reset.
    rate = used / elapsed
    assert remaining * (1 + margin / 100) <= rate * (key.resets_at - now).total_seconds() + 1e-6
