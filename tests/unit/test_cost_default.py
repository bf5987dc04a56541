"""The cost model of the default (``KEY_METRICS=auto``, the records, the Logs Insights dashboard):
its targets, its measured constants against the real record builder, ``--json`` and ``--from-scan``."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from quota_monitor.alert.thresholds import DEFAULT_LEVELS
from quota_monitor.config import ForecastSettings
from quota_monitor.models import KeyUsage, ScanResult, ScanStats, Target
from quota_monitor.publish.records import record_lines
from quota_monitor.publish.selection import parse_key_metrics
from quota_monitor.publish.snapshots import fast_run_writes
from quota_monitor_cli.cost import (
    CPU_SECONDS_PER_KEY,
    EVENT_OVERHEAD_BYTES,
    KEY_RECORD_BYTES,
    PLAN_RECORD_BYTES,
    RECORD_WIDGETS,
    RUNS_A_WIDGET_READS,
    Usage,
    estimate,
    read_scan,
)
from quota_monitor_cli.main import main
from tests.contracts import JSON_FIELDS


def total(usage: Usage) -> float:
    return estimate(usage).total


@pytest.mark.parametrize(("keys", "plans", "target"), [(1_000, 20, 25.0), (10_000, 300, 40.0)])
def test_the_default_stays_under_its_targets_whatever_share_of_keys_is_hot(
    keys: int, plans: int, target: float
) -> None:
    worst = Usage(keys=keys, plans=plans)
    assert worst.share_hot == 1.0  # the default is the worst case: every key hot all month
    for share in (0.0, 0.01, 0.1, 0.5, 1.0):
        assert total(replace(worst, share_hot=share)) <= total(worst) <= target
    # 25 keys at most, two series each, the 9 health metrics; no per-plan roll-up.
    assert worst.custom_metrics == 2 * 25 + 9
    assert worst.key_metrics.describe() == "auto"


def test_every_key_a_metric_is_what_the_default_replaces() -> None:
    every_key = Usage(keys=10_000, plans=300, key_metrics=parse_key_metrics("all"))
    assert total(every_key) > 5_000 > 40 > total(Usage(keys=10_000, plans=300))


def test_auto_counts_hot_keys_of_plans_with_a_quota_up_to_its_cap() -> None:
    usage = Usage(keys=10, plans=1, share_hot=0.5)
    assert usage.custom_metrics == 2 * 5 + 9
    assert replace(usage, quota_keys=4).custom_metrics == 2 * 2 + 9
    assert replace(usage, keys=1_000, key_metrics=parse_key_metrics("auto,top:100")).custom_metrics == 209
    assert replace(usage, alert_metrics=False).custom_metrics == 2 * 5 + 6


def test_log_bytes_ingestion_storage_and_logs_insights() -> None:
    usage = Usage(keys=10_000, plans=300)
    per_run = 10_000 * (KEY_RECORD_BYTES + EVENT_OVERHEAD_BYTES) + 300 * (
        PLAN_RECORD_BYTES + EVENT_OVERHEAD_BYTES
    )
    assert usage.record_bytes_per_run == per_run
    assert per_run < 4_000_000  # the target for a run's log
    runs = 730 * 4
    items = {line.item.split(" (")[0].split(":")[0]: line for line in estimate(usage).items}
    assert items["ingestion"].amount == pytest.approx((per_run + 3_000) * runs / 1e9)
    # 14 days of runs kept.
    assert items["storage"].amount == pytest.approx((per_run + 3_000) * 96 * 14 / 1e9)
    # A dashboard load: 4 widgets, each reading at most two runs; 200 loads a day.
    assert usage.insights_bytes_per_refresh == RECORD_WIDGETS * RUNS_A_WIDGET_READS * (per_run + 3_000)
    scanned = items["Logs Insights"]
    assert scanned.amount == pytest.approx(usage.insights_bytes_per_refresh * 200 * 730 / 24 / 1e9)
    assert scanned.monthly == pytest.approx(scanned.amount * 0.005)
    assert replace(usage, dashboards=0).insights_bytes_per_refresh == 0


#: Where the benchmark's keys are (the sandbox's default account, the scan's region).
BENCH_TARGET = Target("123456789012", "us-east-1")


def bench_like_keys(keys: int = 10_000, plans: int = 300, seed: int = 11) -> list[KeyUsage]:
    """Keys named and numbered as the benchmark's account (apigw_sandbox.seed.seed_scale_account) on
    the scenario's scan date, without the sandbox: the measured constants describe that account."""
    rng = random.Random(seed)
    sizes = [1_234, 1_234] + [
        (keys - 2_468) // (plans - 2) + (1 if n < (keys - 2_468) % (plans - 2) else 0)
        for n in range(plans - 2)
    ]
    found = []
    number = 0
    for plan, size in enumerate(sizes):
        for _ in range(size):
            used = round(100_000 * round(rng.uniform(1, 99), 1) / 100)
            found.append(
                KeyUsage(
                    f"p{plan:05d}",
                    f"plan-{plan:03d}",
                    f"k{number:09d}",
                    f"key-{number:05d}",
                    "MONTH",
                    date(2026, 10, 1),
                    datetime(2026, 11, 1, tzinfo=UTC),
                    used,
                    100_000 - used,
                    100_000,
                    100.0 * used / 100_000,
                    target=BENCH_TARGET,
                )
            )
            number += 1
    return found


def test_the_measured_record_sizes_are_what_the_record_builder_writes() -> None:
    keys = bench_like_keys()
    result = ScanResult(datetime(2026, 10, 31, 12, tzinfo=UTC), (), tuple(keys), (), ScanStats())
    lines = list(
        record_lines(
            result,
            levels={},
            with_metrics=frozenset(),
            forecast_settings=ForecastSettings(),
            default_levels=DEFAULT_LEVELS,
        )
    )
    key_sizes = [len(line.encode()) + 1 for line in lines if line.startswith('{"record":"key"')]
    plan_sizes = [len(line.encode()) + 1 for line in lines if line.startswith('{"record":"plan"')]
    assert (len(key_sizes), len(plan_sizes)) == (10_000, 300)
    assert sum(key_sizes) / len(key_sizes) == pytest.approx(KEY_RECORD_BYTES, rel=0.02)
    assert sum(plan_sizes) / len(plan_sizes) == pytest.approx(PLAN_RECORD_BYTES, rel=0.02)


def test_json_prints_the_total_as_a_number_and_every_line_item(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--keys", "10000", "--plans", "300", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = estimate(Usage(keys=10_000, plans=300))
    assert isinstance(printed["totalUsd"], float)
    assert printed["totalUsd"] == round(expected.total, 2)
    assert printed["totalUsd"] == pytest.approx(sum(item["usd"] for item in printed["lineItems"]), abs=0.01)
    assert [item["service"] for item in printed["lineItems"]] == [item.service for item in expected.items]
    assert set(printed["lineItems"][0]) == {"service", "item", "amount", "unit", "usd"}
    assert (printed["keys"], printed["plans"], printed["keyMetrics"], printed["metricSeries"]) == (
        10_000,
        300,
        "auto",
        59,
    )
    assert printed["worstCaseUsd"] == printed["totalUsd"]  # the default assumes the worst case
    assert printed["alternatives"]["all"] > 5_000
    assert printed["assumptions"]["dashboardViewsPerDay"] == 200


def scan_rows() -> list[dict[str, object]]:
    keys = [
        KeyUsage(
            "p1",
            "gold",
            "k1",
            "hot-one",
            "MONTH",
            date(2026, 11, 1),
            datetime(2026, 12, 1, tzinfo=UTC),
            900,
            100,
            1_000,
            90.0,
        ),
        KeyUsage(
            "p1",
            "gold",
            "k2",
            "cold",
            "MONTH",
            date(2026, 11, 1),
            datetime(2026, 12, 1, tzinfo=UTC),
            100,
            900,
            1_000,
            10.0,
        ),
        KeyUsage(
            "p1",
            "gold",
            "k3",
            None,
            "MONTH",
            date(2026, 11, 1),
            datetime(2026, 12, 1, tzinfo=UTC),
            799,
            201,
            1_000,
            79.9,
        ),
        KeyUsage(
            "p2",
            "free",
            "k4",
            "free-key",
            "DAY",
            date(2026, 11, 20),
            datetime(2026, 11, 21, tzinfo=UTC),
            5,
            None,
            None,
            None,
        ),
    ]
    return [key.as_json() for key in keys]


def test_from_scan_prices_the_account_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(scan_rows()))
    scanned = read_scan(str(path), DEFAULT_LEVELS)
    # 3 of the 4 keys have a quota; 1 of them is at or above 80% (79.9% is not).
    assert (scanned.keys, scanned.plans, scanned.quota_keys, scanned.hot_keys) == (4, 2, 3, 1)
    assert 250 < scanned.key_record_bytes < 400
    assert main(["cost", "--from-scan", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["keys"], printed["plans"], printed["fromScan"]) == (4, 2, str(path))
    assert printed["assumptions"]["shareHot"] == pytest.approx(1 / 3)
    assert printed["metricSeries"] == 2 * 1 + 9
    assert printed["totalUsd"] < printed["worstCaseUsd"]
    assert main(["cost", "--from-scan", str(path)]) == 0
    assert "KEY_METRICS=auto, 33% of keys hot" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read it"),
        ("not json", "not JSON"),
        ('{"a": 1}', "a JSON dict, not the array scan --json prints"),
        ("[3]", "item 0 is int, not an object"),
        ('[{"usagePlanId": "p"}]', "item 0 lacks usagePlanName"),
        ("used-as-text", "item 1: used='12' is not allowed: a whole number of at least 0"),
        ("negative", "item 1: remaining=-3 is not allowed"),
        ("half-quota", "item 1: remaining, limit and utilization must all be numbers"),
        ("bad-period", "item 1: period='YEAR' is not allowed: one of DAY, WEEK, MONTH"),
        ("bad-date", "item 1: periodStart='soon' is not allowed: a date"),
    ],
)
def test_a_bad_scan_file_is_refused_with_exit_2_saying_why(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "usage.json"
    rows = scan_rows()
    broken: dict[str, dict[str, object]] = {
        "used-as-text": {"used": "12"},
        "negative": {"remaining": -3},
        "half-quota": {"remaining": None},
        "bad-period": {"period": "YEAR"},
        "bad-date": {"periodStart": "soon"},
    }
    if content is not None and content in broken:
        rows[1] = {**rows[1], **broken[content]}
        path.write_text(json.dumps(rows))
    elif content is not None:
        path.write_text(content)
    assert main(["cost", "--from-scan", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert str(path) in err


def test_keys_or_a_scan_file_but_not_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(scan_rows()))
    assert main(["cost", "--keys", "5", "--from-scan", str(path)]) == 2
    assert "use --keys or --from-scan, not both" in capsys.readouterr().err
    assert main(["cost"]) == 2
    assert "say how many keys" in capsys.readouterr().err
    assert list(scan_rows()[0]) == JSON_FIELDS


def test_a_target_record_is_the_size_the_model_counts() -> None:
    from quota_monitor.publish.records import target_record  # noqa: PLC0415
    from quota_monitor_cli.cost import TARGET_RECORD_BYTES  # noqa: PLC0415

    result = ScanResult(
        datetime(2026, 10, 31, 12, tzinfo=UTC),
        (),
        (),
        (),
        ScanStats(
            plans_scanned=300, keys_scanned=10_000, usage_pages=304, api_calls=325, duration_seconds=64.1
        ),
        target=Target("123456789012", "ap-southeast-2"),
    )
    plans = tuple(range(300))  # the record counts plans; their content does not matter here
    line = target_record(replace(result, plans=plans), metrics_published=True)  # type: ignore[arg-type]
    assert len(line.encode()) + 1 == pytest.approx(TARGET_RECORD_BYTES, rel=0.1)


def test_several_targets_cap_the_metrics_in_each_and_read_side_by_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    one = Usage(keys=10_000, plans=300)
    three = Usage(keys=30_000, plans=900, targets=3)
    # auto's cap holds in each target; the health metrics are the hub's, once.
    assert three.custom_metrics == 3 * 50 + 9
    assert one.custom_metrics == 50 + 9
    # Each target's API floor runs beside the others': only the CPU grows.
    assert three.api_calls_per_target == one.api_calls_per_run
    assert three.seconds_per_run - one.seconds_per_run == pytest.approx(
        20_000 * CPU_SECONDS_PER_KEY / (256 / 1769), rel=0.01
    )
    # The records: every key's, and a target record each.
    assert three.record_bytes_per_run == pytest.approx(3 * one.record_bytes_per_run + 3 * (250 + 26))
    assert main(["cost", "--keys", "10000", "--plans", "300", "--targets", "3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["keys"], printed["plans"], printed["metricSeries"]) == (30_000, 900, 159)


def test_the_fast_path_is_priced_by_default_and_not_when_off() -> None:
    on = estimate(Usage(keys=1_000, plans=20))
    off = estimate(Usage(keys=1_000, plans=20, fast_minutes=0))
    fast_items = [item for item in on.items if "fast path" in item.item]
    assert {item.service for item in fast_items} == {
        "Lambda",
        "CloudWatch Logs",
        "CloudWatch",
        "DynamoDB",
        "EventBridge Scheduler",
    }
    assert not [item for item in off.items if "fast path" in item.item]
    # and its two alarms (errors, heartbeat)
    assert on.total - off.total == pytest.approx(sum(i.monthly for i in fast_items) + 0.20)
    # 43,800 runs a month, a minute apart.
    (requests,) = [item for item in fast_items if item.item == "fast path requests"]
    assert requests.amount == 43_800


@pytest.mark.parametrize(("keys", "plans"), [(10, 1), (1_000, 20), (10_000, 300)])
def test_a_fast_run_is_priced_within_its_timeout_and_its_minute_of_calls(keys: int, plans: int) -> None:
    usage = Usage(keys=keys, plans=plans)
    assert usage.fast_seconds_per_run <= usage.fast_timeout == 55
    assert usage.fast_calls_per_target <= 300  # half the account's budget in a minute, at most
    quiet = replace(usage, share_hot=0.0)
    assert quiet.fast_calls_per_target == 0
    assert quiet.fast_seconds_per_run < usage.fast_seconds_per_run


def test_the_watch_list_sizes_the_model_counts_hold_for_real_names() -> None:
    """A list of 500 keys in 50 plans, with names as long as the benchmark's and ids as AWS makes
    them, is no larger than the model's bytes a key and a plan."""
    from quota_monitor.alert.watch import choose_watched, encode_watch_list  # noqa: PLC0415
    from quota_monitor.config import AlertSettings  # noqa: PLC0415
    from quota_monitor.models import ApiKey, Quota, UsagePlan  # noqa: PLC0415
    from quota_monitor_cli.cost import WATCH_BYTES_PER_KEY, WATCH_BYTES_PER_PLAN  # noqa: PLC0415

    rng = random.Random(3)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    now = datetime(2026, 11, 16, 6, tzinfo=UTC)
    plans, keys, api_keys = [], [], {}
    for p in range(50):
        plan_id = "".join(rng.choice(alphabet) for _ in range(6))
        plans.append(UsagePlan(plan_id, f"customer-plan-{p:03d}", Quota(100_000, "DAY")))
        for k in range(10):
            key_id = "".join(rng.choice(alphabet) for _ in range(10))
            api_keys[key_id] = ApiKey(key_id, f"customer-{p:03d}-client-{k:02d}")
            used = rng.randint(80_000, 99_000)
            keys.append(
                KeyUsage(plan_id, plans[-1].name, key_id, api_keys[key_id].name, "DAY", now.date(),
                         datetime(2026, 11, 17, tzinfo=UTC), used, 100_000 - used, 100_000, used / 1_000,
                         used_today=used)
            )  # fmt: skip
    settings = AlertSettings(topic_arn="arn:aws:sns:us-east-1:123456789012:a", table_name="state")
    result = ScanResult(now, tuple(plans), tuple(keys), (), ScanStats(), api_keys=api_keys)
    chosen = choose_watched(result, settings, now=now, scan_interval=timedelta(minutes=15), page_size=500)
    data, _ = encode_watch_list(chosen)
    assert chosen.keys == 500
    assert len(data) <= 500 * WATCH_BYTES_PER_KEY + 50 * WATCH_BYTES_PER_PLAN


def test_the_fast_interval_flag_turns_the_fast_path_off_or_slower(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--keys", "1000", "--fast-interval", "0", "--json"]) == 0
    off = json.loads(capsys.readouterr().out)
    assert not [item for item in off["lineItems"] if "fast path" in item["item"]]
    assert main(["cost", "--keys", "1000", "--fast-interval", "5m", "--json"]) == 0
    five = json.loads(capsys.readouterr().out)
    (requests,) = [item for item in five["lineItems"] if item["item"] == "fast path requests"]
    assert requests["amount"] == 8_760
    assert five["fastIntervalMinutes"] == 5


def test_the_quota_endpoint_costs_at_most_3_usd_a_month_and_1_usd_a_million_requests() -> None:
    # 10,000 keys in 300 plans, 15-minute scans, every key hot all month (the model's worst case)
    base = Usage(keys=10_000, plans=300)
    off = estimate(base).total
    idle = estimate(replace(base, quota_endpoint=True, endpoint_requests=0)).total
    million = estimate(replace(base, quota_endpoint=True, endpoint_requests=1)).total
    assert estimate(replace(base, quota_endpoint=False, endpoint_requests=5)).total == off  # off: unchanged
    assert 0 < idle - off <= 3.00
    assert 0 < million - idle <= 1.00
    # The endpoint's lines are priced only with it on, its alarm (SnapshotFailures) among the stack's
    assert not [item for item in estimate(base).items if "quota" in item.item.lower()]
    alarms = {
        on: next(i for i in estimate(replace(base, quota_endpoint=on)).items if i.item == "alarms")
        for on in (False, True)
    }
    assert (alarms[False].amount, alarms[True].amount) == (8, 9)


def test_the_endpoint_note_names_api_gateways_own_price_left_out_of_the_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["cost", "--keys", "100", "--quota-endpoint", "--endpoint-requests", "2", "--json"]) == 0
    err = capsys.readouterr().err
    assert "API Gateway bills each GET /quota request" in err
    assert "($7.00 for 2 million at $3.50 a million)" in err
    assert main(["cost", "--keys", "100", "--json"]) == 0
    assert "GET /quota" not in capsys.readouterr().err


def test_a_fast_run_writes_its_snapshots_every_ten_minutes_whatever_its_interval() -> None:
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    every_minute = [fast_run_writes(start + timedelta(minutes=n), 1) for n in range(30)]
    assert every_minute.count(True) == 3
    assert all(fast_run_writes(start + timedelta(minutes=10 * n), 10) for n in range(6))
    assert all(fast_run_writes(start + timedelta(minutes=30 * n), 30) for n in range(6))


def test_the_archive_costs_at_most_1_usd_a_month_after_a_year_at_10000_keys() -> None:
    base = Usage(keys=10_000, plans=300)
    year = estimate(replace(base, archive=True)).total - estimate(base).total
    assert 0 < year <= 1.00
    # Storage grows until the records expire (800 days), then stays
    later = estimate(replace(base, archive=True, archive_age_months=36)).total - estimate(base).total
    assert year < later <= 1.00
    assert estimate(replace(base, archive=True, archive_age_months=60)).total == pytest.approx(
        estimate(replace(base, archive=True, archive_age_months=48)).total
    )
