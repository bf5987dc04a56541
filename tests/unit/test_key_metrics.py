"""KEY_METRICS: which keys get per-key metrics; the plan roll-ups and health metrics always whole."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota_monitor.config import Settings
from quota_monitor.errors import ConfigError
from quota_monitor.models import KeyUsage
from quota_monitor.publish.selection import (
    ALL_KEYS,
    AUTO_KEYS,
    NO_KEYS,
    KeyMetricsSelection,
    parse_key_metrics,
    select_keys,
)


def key(n: int, utilization: float | None, plan: str = "p1") -> KeyUsage:
    return KeyUsage(
        usage_plan_id=plan,
        usage_plan_name=plan,
        api_key_id=f"k{n}",
        api_key_name=None,
        period="MONTH",
        period_start=date(2026, 11, 1),
        resets_at=datetime(2026, 12, 1, tzinfo=UTC),
        used=int(utilization or 0),
        remaining=None if utilization is None else int(100 - utilization),
        limit=None if utilization is None else 100,
        utilization=utilization,
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("all", ALL_KEYS),
        ("", AUTO_KEYS),
        ("auto", AUTO_KEYS),
        (" AUTO ", KeyMetricsSelection(top=25, auto=True)),
        ("auto,top:100", KeyMetricsSelection(top=100, auto=True)),
        ("top:3, auto", KeyMetricsSelection(top=3, auto=True)),
        (" ALL ", ALL_KEYS),
        ("none", NO_KEYS),
        ("top:500", KeyMetricsSelection(top=500)),
        ("above:80", KeyMetricsSelection(above=80.0)),
        ("above:12.5", KeyMetricsSelection(above=12.5)),
        ("above:50,top:200", KeyMetricsSelection(top=200, above=50.0)),
        ("Top:200, Above:50", KeyMetricsSelection(top=200, above=50.0)),
    ],
)
def test_values_that_parse(raw: str, expected: KeyMetricsSelection) -> None:
    assert parse_key_metrics(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "some",
        "top",
        "top:",
        "top:0",
        "top:-3",
        "top:1.5",
        "top:10001",
        "above:0",
        "above:-1",
        "above:101",
        "above:nan",
        "above:inf",
        "above:x",
        "top:5,top:6",
        "above:5,above:6",
        "top:5,none",
        "auto,all",
        "auto,auto",
        "auto:5",
        "auto,above:80",
    ],
)
def test_bad_values_are_refused_with_what_is_allowed(raw: str) -> None:
    with pytest.raises(ValueError, match="use auto, auto,top:N, all, none, top:N"):
        parse_key_metrics(raw)


def test_the_environment_variable_is_checked_at_cold_start() -> None:
    assert Settings.from_env({}).key_metrics == AUTO_KEYS
    assert Settings.from_env({"KEY_METRICS": "all"}).key_metrics == ALL_KEYS
    assert Settings.from_env({"KEY_METRICS": "above:90"}).key_metrics == KeyMetricsSelection(above=90.0)
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"KEY_METRICS": "top:lots"})
    message = str(error.value)
    assert "KEY_METRICS='top:lots'" in message
    assert "top:lots is not a whole number from 1 to 10000" in message
    assert "use auto, auto,top:N, all, none, top:N" in message


def test_describe_round_trips() -> None:
    for raw in ("all", "none", "top:7", "above:80", "above:80,top:7", "auto", "auto,top:9"):
        assert parse_key_metrics(parse_key_metrics(raw).describe()) == parse_key_metrics(raw)


def test_top_keeps_the_highest_and_scan_order() -> None:
    keys = [key(0, 10.0), key(4, 95.0), key(2, 50.0), key(3, None), key(1, 95.0), key(5, 80.0)]
    assert [k.api_key_id for k in select_keys(keys, KeyMetricsSelection(top=3))] == ["k4", "k1", "k5"]
    # A tie at the cut goes by plan id, then key id, whatever order the scan met them in (the
    # scan reads plans in parallel), so that the same key keeps its series from run to run.
    assert [k.api_key_id for k in select_keys(keys, KeyMetricsSelection(top=1))] == ["k1"]
    assert [k.api_key_id for k in select_keys(list(reversed(keys)), KeyMetricsSelection(top=1))] == ["k1"]


def test_above_and_both() -> None:
    keys = [key(0, 10.0), key(1, 95.0), key(2, 50.0), key(3, None), key(4, 80.0), key(5, 79.9)]
    assert [k.api_key_id for k in select_keys(keys, KeyMetricsSelection(above=80.0))] == ["k1", "k4"]
    both = KeyMetricsSelection(top=1, above=50.0)
    assert [k.api_key_id for k in select_keys(keys, both)] == ["k1"]
    assert select_keys(keys, NO_KEYS) == []
    assert select_keys(keys, ALL_KEYS) == keys


utilizations = st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=100)), max_size=60)


@given(values=utilizations, top=st.integers(min_value=1, max_value=70))
def test_top_selects_no_key_below_one_left_out(values: list[float | None], top: int) -> None:
    keys = [key(n, value) for n, value in enumerate(values)]
    chosen = select_keys(keys, KeyMetricsSelection(top=top))
    eligible = [k for k in keys if k.utilization is not None]
    assert len(chosen) == min(top, len(eligible))
    left_out = [k for k in eligible if k not in chosen]
    if chosen and left_out:
        assert min(k.utilization or 0 for k in chosen) >= max(k.utilization or 0 for k in left_out)
    assert chosen == [k for k in keys if k in chosen]  # scan order kept


@given(values=utilizations, above=st.floats(min_value=0.01, max_value=100))
def test_above_selects_exactly_the_keys_at_or_over_the_floor(
    values: list[float | None], above: float
) -> None:
    keys = [key(n, value) for n, value in enumerate(values)]
    chosen = select_keys(keys, KeyMetricsSelection(above=above))
    assert chosen == [k for k in keys if k.utilization is not None and k.utilization >= above]
