"""A small run of the benchmark (``make bench``), so that it keeps working: correctness only, never time.

The same processes as ``make bench``: the sandbox host seeded with a small account, the monitor
and the naive scan each in a runner process, on a fast time scale and without latency.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import budget
from bench.alert_storm import AlertMeasurement, markdown, measure_alerts
from bench.report import END_MARK, START_MARK, render_markdown, render_text, write_docs
from bench.run import BenchReport, Case, parse_importtime, run_benchmark
from bench.scenario import (
    AccountShape,
    Scenario,
    expected_datapoints,
    floor_seconds,
    minimum_calls,
    pages,
)

SMALL = Scenario(plans=30, keys=1_300, big_plans=1, big_plan_keys=1_100, latency=(0.0, 0.0))


@pytest.fixture(scope="module")
def report() -> BenchReport:
    cases = [
        Case("monitor", "monitor", 50.0),
        Case("naive", "naive", 50.0),
        Case(
            "monitor beside other traffic, every key a metric",
            "monitor",
            50.0,
            (("KEY_METRICS", "all"),),
            background_rps=2.0,
        ),
        Case(budget.LABEL, "monitor", 50.0, budget.ENV),
    ]
    return run_benchmark(SMALL, cases, measure_imports=False)


def test_minimum_calls_come_from_the_account_shape() -> None:
    assert [pages(n) for n in (0, 1, 500, 501, 1_234)] == [1, 1, 1, 2, 3]
    shape = AccountShape(plans=300, api_keys=10_000, keys_per_plan=(1_234, 1_234, *[27] * 298))
    assert minimum_calls(shape) == {"GetUsagePlans": 1, "GetApiKeys": 20, "GetUsage": 3 + 3 + 298}
    assert minimum_calls(AccountShape(plans=0, api_keys=0, keys_per_plan=())) == {"GetUsagePlans": 1}
    assert floor_seconds(325, 5.0, 5) == 64.0
    assert floor_seconds(3, 5.0, 5) == 0.0


def test_the_monitor_makes_the_minimum_calls_and_misses_nothing(report: BenchReport) -> None:
    monitor = report.measurements[0]
    assert report.shape.plans == 30
    assert report.shape.attached_keys == 1_300
    assert monitor.ok, monitor.error
    assert monitor.failures == []
    assert monitor.calls == monitor.minimum == {"GetUsagePlans": 1, "GetApiKeys": 3, "GetUsage": 3 + 29}
    assert monitor.page_limits == ["500"]
    assert (monitor.keys_expected, monitor.keys_reported) == (1_300, 1_300)
    assert monitor.keys_missed == monitor.keys_wrong == 0
    assert monitor.throttles_sent == monitor.throttles_received == 0
    assert not monitor.failed


def test_the_default_run_logs_every_key_once_with_exact_numbers_and_few_series(report: BenchReport) -> None:
    monitor = report.measurements[0]
    records = monitor.records
    assert records is not None
    assert (records["key_records"], records["plan_records"]) == (1_300, 30)
    assert records["keys_missing"] == records["keys_extra"] == records["keys_wrong"] == 0
    assert records["records_incomplete"] == 0
    # Utilizations 1..99% uniform: about a fifth at 80% or more, far more than the cap of 25.
    assert 150 < records["keys_at_level"] < 400
    assert monitor.records_summary is not None
    assert (monitor.records_summary["keys_with_metrics"], monitor.records_summary["key_metrics"]) == (
        25,
        "auto",
    )
    # Counted where they arrive: 25 keys x 2, no roll-up, the 6 health metrics (no alerts here).
    assert monitor.series == {"2": 50, "0": 6}
    assert monitor.datapoints_on_wire == monitor.metric_datapoints == 56
    assert records["bytes"] == monitor.records_summary["bytes"]
    text = render_text(report)
    assert "metric series created" in text
    assert "56 metric series created (model 56)" in text


def test_metric_batches_are_as_few_and_within_the_limits(report: BenchReport) -> None:
    monitor = report.measurements[2]
    assert monitor.series == {"2": 3 * 1_300, "1": 2 * 30, "0": 6}
    datapoints = expected_datapoints(report.shape)
    assert monitor.datapoints_on_wire == monitor.metric_datapoints == datapoints == 3 * 1_300 + 2 * 30 + 6
    assert len(monitor.metric_requests) == math.ceil(datapoints / 1_000)
    for request in monitor.metric_requests:
        assert 0 < int(request["datapoints"] or 0) <= 1_000
        assert int(request["decoded"] or 0) < 1_000_000


def test_the_naive_scan_is_correct_and_wasteful(report: BenchReport) -> None:
    naive = report.measurements[1]
    assert naive.ok, naive.error
    assert naive.keys_missed == naive.keys_wrong == 0
    assert naive.failures == []
    assert naive.page_limits == [""]  # the service's default page size: 25
    shape = report.shape
    # Pages of 25 of plans, key names and each plan's keys, and a GetUsage call per key; every 429
    # (the naive scan has no rate limit) was one more call, retried by botocore.
    answered = (
        pages(shape.plans, 25)
        + pages(shape.api_keys, 25)
        + sum(pages(keys, 25) for keys in shape.keys_per_plan)
        + shape.attached_keys
    )
    assert naive.total_calls - naive.throttles_sent == answered
    assert naive.total_calls > 30 * naive.minimum_total
    assert naive.metric_requests == []


def test_other_traffic_shares_the_account_bucket(report: BenchReport) -> None:
    beside = report.measurements[2]
    assert beside.background is not None
    assert beside.background["calls"] > 0
    assert beside.keys_missed == 0
    assert beside.total_calls - beside.throttles_sent == beside.minimum_total


def test_the_whole_budget_run_is_measured_against_the_configured_burst(report: BenchReport) -> None:
    whole = report.measurements[3]
    assert budget.is_budget_run(whole)
    assert (whole.settings["max_rps"], whole.settings["burst"]) == (10.0, 40)
    assert whole.floor == floor_seconds(whole.minimum_total, 10.0, 40)  # the configured burst, not 36
    assert not whole.failed
    assert whole.keys_missed == whole.keys_wrong == 0
    assert whole.total_calls - whole.throttles_sent == whole.minimum_total
    (line,) = budget.budget_lines(report)
    assert line.startswith("whole budget (APIGATEWAY_MAX_RPS=10, APIGATEWAY_BURST=40, time x50): scan ")
    assert "whole budget" in render_markdown(report)


def test_the_report_renders_and_replaces_its_block(report: BenchReport, tmp_path: Path) -> None:
    text = render_text(report)
    assert "calls ÷ minimum" in text
    assert "1.00 ✅" in text
    markdown = render_markdown(report)
    assert markdown.startswith(START_MARK)
    assert markdown.rstrip().endswith(END_MARK)
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\nprose\n\n{START_MARK}\nold numbers\n{END_MARK}\n\nmore prose\n")
    write_docs(report, docs)
    written = docs.read_text()
    assert "old numbers" not in written
    assert written.startswith("# Benchmarks\n\nprose\n\n" + START_MARK)
    assert written.endswith(END_MARK + "\n\nmore prose\n")
    assert written.count(START_MARK) == 1


def test_importtime_output_is_read_per_module() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |     botocore.exceptions",
            "import time:       200 |      12000 |   aws_lambda_powertools",
            "import time:       300 |      30000 |   quota_monitor.monitor",
            "import time:      1000 |     250000 | quota_monitor.handler",
        ]
    )
    total, children = parse_importtime(stderr)
    assert total == 250.0
    assert children == {"aws_lambda_powertools": 12.0, "quota_monitor.monitor": 30.0}
    with pytest.raises(ValueError, match="not in the importtime output"):
        parse_importtime(stderr, "other.module")


@pytest.fixture(scope="module")
def alert_runs() -> list[AlertMeasurement]:
    return measure_alerts(SMALL)


def test_the_recovery_storm_sends_every_recovery_once_in_transactions(
    alert_runs: list[AlertMeasurement],
) -> None:
    storm, _ = alert_runs
    assert storm.ok, storm.error
    assert storm.items_before == storm.expected == 1_300
    assert storm.alerts["alertsSent"] == 1_300
    assert storm.correct
    # A claim and a confirmation for every key, a hundred to a transaction; no write one at a time.
    assert storm.requests["TransactWriteItems items"] == 2 * 1_300
    assert storm.requests["TransactWriteItems"] < 2 * 1_300 / 50
    assert "UpdateItem" not in storm.requests
    assert storm.state_after == {"items": 1_300, "by_state": {"2026-11-01 level 0": 1_300}, "claims": 0}


def test_the_first_run_against_a_fresh_table_alerts_every_key_over_a_level_once(
    alert_runs: list[AlertMeasurement],
) -> None:
    _, fresh = alert_runs
    assert fresh.ok, fresh.error
    assert 0 < fresh.expected < 1_300
    assert fresh.alerts["alertsSent"] == fresh.expected
    assert fresh.correct
    assert fresh.state_after["items"] == fresh.expected
    assert fresh.state_after["claims"] == 0
    table = "\n".join(markdown(alert_runs))
    assert "recovery storm" in table
    assert "first run, fresh table" in table
