"""``quota-monitor cost``: the estimate's arithmetic, and bad input refused with exit 2."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from datetime import timedelta

import pytest

from quota_monitor.publish.selection import ALL_KEYS, parse_key_metrics
from quota_monitor_cli import cost
from quota_monitor_cli.cost import (
    PRICES,
    USAGE_DEFAULTS,
    Usage,
    estimate,
    interval_minutes,
    tiered,
    usage_from,
)
from quota_monitor_cli.main import main

ALL = ALL_KEYS


def item(usage: Usage, what: str) -> float:
    (found,) = [line.monthly for line in estimate(usage).items if line.item.startswith(what)]
    return found


def test_metric_tiers() -> None:
    tiers = PRICES.metric_tiers
    assert tiered(0, tiers) == 0
    assert tiered(40, tiers) == pytest.approx(40 * 0.30)
    assert tiered(10_000, tiers) == pytest.approx(3_000)
    assert tiered(30_608, tiers) == pytest.approx(3_000 + 20_608 * 0.10)
    assert tiered(250_000, tiers) == pytest.approx(3_000 + 24_000)
    assert tiered(1_000_001, tiers) == pytest.approx(3_000 + 24_000 + 37_500 + 0.02)


def test_ten_thousand_keys_every_fifteen_minutes_with_every_key_a_metric() -> None:
    usage = Usage(keys=10_000, plans=300, key_metrics=ALL)
    # 3 metrics a key, 2 a plan, 6 health metrics and the 3 of the alerts.
    assert usage.custom_metrics == 30_000 + 600 + 9
    assert usage.runs_per_month == 730 * 4
    assert item(usage, "custom metrics") == pytest.approx(3_000 + 20_609 * 0.10)
    # ceil(30,608 / 1,000) = 31 requests a run.
    assert item(usage, "PutMetricData requests") == pytest.approx(31 * 2_920 / 1_000 * 0.01)
    # The minimum calls: 1 page of plans, 20 of key names, a GetUsage page for each plan.
    assert usage.api_calls_per_run == 1 + 20 + 300
    seconds = (321 - 5) / 5 + (0.7 + 0.0003 * 10_000 + 0.00005 * 30_609) / (256 / 1769)
    assert usage.seconds_per_run == pytest.approx(seconds)
    assert item(usage, "requests") == pytest.approx(2_920 / 1e6 * 0.20)
    gb_seconds = seconds * 0.25 * 2_920
    (duration,) = [line for line in estimate(usage).items if line.item.startswith("duration")]
    assert duration.monthly == pytest.approx(gb_seconds * 0.0000166667)
    total = estimate(usage).total
    assert total == pytest.approx(sum(line.monthly for line in estimate(usage).items))
    assert item(usage, "custom metrics") / total > 0.98  # the dominant part, as the issue says


def test_ten_keys() -> None:
    usage = Usage(keys=10, plans=1, key_metrics=ALL)
    assert usage.custom_metrics == 30 + 2 + 9
    assert item(usage, "custom metrics") == pytest.approx(41 * 0.30)
    assert item(usage, "PutMetricData requests") == pytest.approx(2_920 / 1_000 * 0.01)
    assert item(usage, "dashboards") == pytest.approx(3.00)
    assert item(usage, "alarms") == pytest.approx(0.80)  # six, and the fast path's two
    assert item(usage, "customer managed key of the alert topic") == pytest.approx(1.00)


def test_key_metrics_cut_only_the_per_key_metrics() -> None:
    usage = Usage(keys=10_000, plans=300, key_metrics=ALL)
    top = replace(usage, key_metrics=parse_key_metrics("top:500"))
    assert top.custom_metrics == 1_500 + 600 + 9
    assert item(top, "custom metrics") == pytest.approx(2_109 * 0.30)
    above = replace(usage, key_metrics=parse_key_metrics("above:80"), share_above=0.05)
    assert above.custom_metrics == 3 * 500 + 600 + 9
    capped = replace(above, key_metrics=parse_key_metrics("above:80,top:100"))
    assert capped.custom_metrics == 300 + 600 + 9
    none = replace(usage, key_metrics=parse_key_metrics("none"))
    assert none.custom_metrics == 609
    assert estimate(none).total < estimate(top).total < estimate(usage).total


def test_hourly_or_slower_runs_bill_metrics_only_for_hours_with_data() -> None:
    hourly = Usage(keys=1_000, plans=20, interval_minutes=60, key_metrics=ALL)
    every_two_hours = replace(hourly, interval_minutes=120)
    assert hourly.billed_metric_fraction == 1.0
    assert every_two_hours.billed_metric_fraction == 0.5
    assert item(every_two_hours, "custom metrics") == pytest.approx(item(hourly, "custom metrics") / 2)
    assert every_two_hours.runs_per_month == 365


@pytest.mark.parametrize(
    ("text", "minutes"), [("15m", 15), ("1h", 60), ("90min", 90), ("24h", 1_440), (" 5 minutes ", 5)]
)
def test_intervals(text: str, minutes: int) -> None:
    assert interval_minutes(text) == minutes


def test_the_command_prints_the_estimate_and_the_savings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--keys", "10000", "--plans", "300", "--key-metrics", "top:100"]) == 0
    out = capsys.readouterr().out
    expected = estimate(Usage(keys=10_000, plans=300, key_metrics=parse_key_metrics("top:100"))).total
    assert f"{expected:,.2f}" in out
    assert f"KEY_METRICS=top:100: {expected:,.2f} USD a month" in out
    default = estimate(Usage(keys=10_000, plans=300)).total
    assert f"KEY_METRICS=auto, 100% of keys hot: {default:,.2f} USD a month" in out
    every_key = estimate(Usage(keys=10_000, plans=300, key_metrics=ALL)).total
    assert f"KEY_METRICS=all: {every_key:,.2f} USD a month" in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--keys", "-5"], "argument --keys: -5 is not allowed: use a whole number from 0 to 10000"),
        (["--keys", "ten"], "argument --keys: 'ten' is not a whole number from 0 to 10000"),
        (["--keys", "20000"], "20000 is not allowed"),
        (["--keys", "10", "--interval", "5x"], "'5x' is not an interval: use a whole number of minutes"),
        (["--keys", "10", "--interval", "0m"], "'0m' is not allowed"),
        (["--keys", "10", "--interval", "25h"], "'25h' is not allowed"),
        (["--keys", "10", "--key-metrics", "top:0"], "'top:0' is not allowed"),
        (["--keys", "10", "--region", "mars"], "'mars' is not an AWS region name"),
        (["--keys", "10", "--share-above", "150%"], "'150%' is not allowed"),
        (["--keys", "10", "--max-rps", "11"], "11 is not allowed"),
        (["--keys", "10", "--share-hot", "2"], "'2' is not allowed"),
        (["--keys", "10", "--dashboard-views", "-1"], "-1 is not allowed"),
        (["--keys", "10", "--retention", "0"], "0 is not allowed"),
    ],
)
def test_bad_input_exits_2_naming_the_value(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["cost", *arguments])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_another_region_is_priced_at_the_table_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--keys", "10", "--region", "eu-west-1"]) == 0
    assert "Prices for eu-west-1 are not in the table" in capsys.readouterr().err


def test_runs_per_month_follow_the_interval() -> None:
    assert Usage(keys=1, plans=1, interval_minutes=7).runs_per_month == pytest.approx(730 * 60 / 7)
    assert math.isclose(Usage(keys=1, plans=1, interval_minutes=1).runs_per_month, 43_800)


def test_events_add_a_dollar_a_million_alerts_and_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    usage = Usage(keys=1_000, plans=20, alerts_per_month=50_000)
    assert not [line for line in estimate(usage).items if line.service == "EventBridge"]
    with_events = replace(usage, events=True)
    assert item(with_events, "events, one per alert") == pytest.approx(50_000 / 1e6 * 1.00)
    assert estimate(with_events).total == pytest.approx(estimate(usage).total + 0.05)
    assert main(["cost", "--keys", "1000", "--alerts", "50000", "--events", "--json"]) == 0
    printed = capsys.readouterr().out
    assert '"item": "events, one per alert (eventBus)"' in printed


def test_the_state_scan_is_strongly_consistent_a_read_unit_per_4_kb() -> None:
    usage = Usage(keys=10_000, plans=300, alerts_per_month=0)
    # 10,000 items of 200 B are 489 read units a Scan, every run, at $0.125 a million.
    assert item(usage, "alert state") == pytest.approx(489 * 2_920 / 1e6 * 0.125)


def test_the_model_reserves_the_shared_budget_in_the_runtimes_chunks_and_blocks() -> None:
    # At the default 5 calls a second the shared budget runs at 4.9 slots a second (burst 5): the
    # full scan reserves 2 s of slots a round trip (10), a fast run up to 20 s (98) in one block.
    usage = Usage(keys=10_000, plans=300)
    assert usage.budget_rate == (4.9, 5)
    assert usage.budget_chunks(usage.api_calls_per_target) == math.ceil(321 / 10) == 33
    assert usage.fast_calls_per_target == pytest.approx(5 + 4.9 * 33)
    assert usage.fast_blocks == math.ceil(166.7 / 98) == 2


@pytest.mark.parametrize("minutes", [1, 5, 15, 60])
def test_a_fast_runs_calls_stop_at_the_runtimes_reserve_before_its_timeout(minutes: int) -> None:
    """The one rule of the runtime the model restates (importing the handler reads the environment)."""
    from quota_monitor.invocation import reserve_for  # noqa: PLC0415

    # More watched plans than a run can read: it reads as many as its call window allows.
    usage = Usage(keys=10_000, plans=10_000, fast_minutes=minutes)
    rate, burst = usage.budget_rate
    window = usage.fast_timeout - reserve_for(timedelta(seconds=usage.fast_timeout)).total_seconds()
    assert usage.fast_calls_per_target == pytest.approx(burst + rate * window)


def parse_cost(*arguments: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cost.register(parser.add_subparsers())
    return parser.parse_args(["cost", *arguments])


def test_every_flag_of_the_model_sets_its_field_and_defaults_to_it() -> None:
    flags = [
        *("--keys", "100", "--plans", "7", "--targets", "2", "--interval", "1h", "--fast-interval", "5m"),
        *("--fast-memory", "256", "--key-metrics", "all", "--share-hot", "50%", "--share-above", "0.2"),
        *("--dashboard-views", "9", "--retention", "30", "--memory", "512", "--max-rps", "2"),
        *("--alarms", "8", "--dashboards", "2", "--alerts", "7", "--events"),
    ]
    assert usage_from(parse_cost(*flags)) == Usage(
        keys=200, plans=14, targets=2, interval_minutes=60, fast_minutes=5, fast_memory_mb=256,
        key_metrics=ALL, share_hot=0.5, share_above=0.2, dashboard_views_per_day=9, retention_days=30,
        memory_mb=512, max_rps=2.0, alarms=8, dashboards=2, alerts_per_month=7, events=True,
    )  # fmt: skip
    assert usage_from(parse_cost("--keys", "100")) == Usage(keys=100, plans=2)
    own = {"keys", "plans", "from_scan", "region", "json"}
    assert {option.name for option in cost.OPTIONS} - own <= set(USAGE_DEFAULTS)
