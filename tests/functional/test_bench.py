"""A small run of the benchmark (``make bench``), so that it keeps working: correctness only, never time.

The same processes as ``make bench``: the sandbox host seeded with a small account, the monitor
and the naive scan each in a runner process, on a fast time scale and without latency; the fleet
benchmark's host and runner at a small size; and the freshness benchmark's counting of what was
delivered (:mod:`bench.delivered`), its schedule and its report, on hand-written inputs.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bench import budget, fleet, freshness, targets200
from bench.alert_storm import AlertMeasurement, markdown, measure_alerts
from bench.delivered import AlertId, Slot, id_of_event, ids_in_message, tally
from bench.host import HostProcess, start_moto, write_section
from bench.report import END_MARK, START_MARK, markdown_body, render_text, write_docs
from bench.run import BenchReport, Case, parse_importtime, run_benchmark
from bench.scenario import (
    AccountShape,
    Scenario,
    floor_seconds,
    minimum_calls,
    pages,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

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
    # 3 a key, MaxQuotaUtilization and UsedQuota a plan with keys, and the 6 health metrics
    shape = report.shape
    datapoints = 3 * shape.attached_keys + 2 * sum(1 for keys in shape.keys_per_plan if keys) + 6
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
    assert "whole budget" in markdown_body(report)


def test_the_report_renders_and_replaces_its_block(report: BenchReport, tmp_path: Path) -> None:
    text = render_text(report)
    assert "calls ÷ minimum" in text
    assert "1.00 ✅" in text
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\nprose\n\n{START_MARK}\nold numbers\n{END_MARK}\n\nmore prose\n")
    write_docs(report, docs)
    written = docs.read_text()
    assert "old numbers" not in written
    assert f"{START_MARK}\n{markdown_body(report)}\n{END_MARK}" in written
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


# -- the freshness benchmark's counting (issue 24) ------------------------------------------------
DAY = "2026-11-16"


def sns_message(*alert_ids: str) -> str:
    """An SQS message from the alert topic, as the inbox receives it: the SNS envelope around the
    structured body (a digest when several)."""
    body = {"schema": "x", "digest": len(alert_ids) > 1, "alerts": [{"id": i} for i in alert_ids]}
    return json.dumps({"Type": "Notification", "Message": json.dumps(body)})


def test_alert_ids_are_read_with_their_episode_and_their_target() -> None:
    assert AlertId.parse(f"threshold:p1:k1:{DAY}:80") == AlertId("threshold", "p1", "k1", DAY, 80, 0)
    assert AlertId.parse(f"threshold:p1:k1:{DAY}:80:1").slot == Slot("p1", "k1", 80, DAY)
    assert AlertId.parse(f"threshold:p1:k1:{DAY}:80:1").episode == 1
    other = AlertId.parse(f"recovered:210987654321:eu-west-1:p1:k1:{DAY}:90:2")
    assert (other.kind, other.plan, other.level, other.episode) == (
        "recovered",
        "210987654321:eu-west-1:p1",
        90,
        2,
    )
    for wrong in ("digest:2026-11-16T06:00:00:1", f"threshold:p1:{DAY}:80", "threshold:p1:k1:d:eighty"):
        with pytest.raises(ValueError):  # noqa: PT011 - any of int()'s or ours
            AlertId.parse(wrong)


def test_messages_and_events_give_their_alert_ids() -> None:
    digest = sns_message(f"threshold:p1:k1:{DAY}:90", f"forecast:p1:k2:{DAY}:100")
    assert ids_in_message(digest) == [f"threshold:p1:k1:{DAY}:90", f"forecast:p1:k2:{DAY}:100"]
    raw = json.loads(json.loads(sns_message(f"threshold:p1:k1:{DAY}:80"))["Message"])
    assert ids_in_message(json.dumps(raw)) == [f"threshold:p1:k1:{DAY}:80"]  # raw delivery
    event = {
        "source": "apigw-quota-monitor",
        "detail-type": "Quota Recovered",
        "detail": {"id": "recovered:p1:k1:d:80"},
    }
    assert id_of_event(json.dumps(event)) == "recovered:p1:k1:d:80"


def test_deliveries_are_counted_by_key_level_and_period() -> None:
    messages = [
        # A digest: k1 at 80, k2 straight to 90 (one run saw it cross both), a forecast for k3.
        sns_message(f"threshold:p1:k1:{DAY}:80", f"threshold:p1:k2:{DAY}:90", f"forecast:p1:k3:{DAY}:100"),
        # The known bug: k1 "recovered" on an older reading, then alerted at 80 again, episode 1.
        sns_message(f"recovered:p1:k1:{DAY}:80"),
        sns_message(f"threshold:p1:k1:{DAY}:80:1"),
        # k4's alert delivered twice under the same id; k4 at 90 (yesterday's period) does not cover today.
        sns_message(f"threshold:p1:k4:{DAY}:80"),
        sns_message(f"threshold:p1:k4:{DAY}:80"),
        sns_message("threshold:p1:k4:2026-11-15:90"),
        # The stale full run's forecast again, in a new episode: shown, not judged.
        sns_message(f"forecast:p1:k3:{DAY}:100:1"),
    ]
    delivered = [alert for message in messages for alert in ids_in_message(message)]
    crossings = [
        Slot("p1", "k1", 80, DAY),
        Slot("p1", "k2", 80, DAY),
        Slot("p1", "k2", 90, DAY),
        Slot("p1", "k4", 90, DAY),
        Slot("p1", "k5", 80, DAY),
    ]
    counted = tally(delivered, crossings)
    assert counted.deliveries == 9
    assert counted.crossings == 5
    assert counted.doubled == {
        Slot("p1", "k1", 80, DAY): [f"threshold:p1:k1:{DAY}:80", f"threshold:p1:k1:{DAY}:80:1"],
        Slot("p1", "k4", 80, DAY): [f"threshold:p1:k4:{DAY}:80"] * 2,
    }
    assert counted.recoveries == [f"recovered:p1:k1:{DAY}:80"]
    assert counted.missing == [Slot("p1", "k4", 90, DAY), Slot("p1", "k5", 80, DAY)]
    assert counted.repeated_forecasts == {
        ("p1", "k3", DAY): [f"forecast:p1:k3:{DAY}:100", f"forecast:p1:k3:{DAY}:100:1"]
    }
    assert not counted.ok
    once = tally([f"threshold:p1:k1:{DAY}:80", f"threshold:p1:k1:{DAY}:100"], crossings[:1])
    assert once.ok
    assert once.doubled == {}


def test_full_runs_start_with_a_fast_run_and_each_path_runs_twice_once() -> None:
    runs = freshness.schedule()
    assert freshness.FULL_EVERY == 5 * 60
    assert freshness.FAST_EVERY == 60
    by_second: dict[int, Counter[str]] = {}
    for at, path in runs:
        by_second.setdefault(at, Counter())[path] += 1
    together = [at for at, paths in by_second.items() if paths["full"] and paths["fast"]]
    assert together == list(range(freshness.FULL_EVERY, freshness.SIM_SECONDS, freshness.FULL_EVERY))
    assert len(together) >= 5
    assert [at for at, paths in by_second.items() if paths["full"] == 2] == [freshness.FULL_TWICE_AT]
    assert [at for at, paths in by_second.items() if paths["fast"] == 2] == [freshness.FAST_TWICE_AT]
    assert runs[0] == (0, "full")
    assert runs == sorted(runs, key=lambda run: run[0])
    fast_runs = range(freshness.FAST_EVERY, freshness.SIM_SECONDS, freshness.FAST_EVERY)
    assert sum(1 for _, path in runs if path == "fast") == len(fast_runs) + 1  # one of them twice
    assert freshness.schedule(600, full_every=300, fast_every=60, full_twice_at=-1, fast_twice_at=-1) == [
        (0, "full"),
        *[(at, "fast") for at in range(60, 300, 60)],
        (300, "full"),
        *[(at, "fast") for at in range(300, 600, 60)],
    ]


def freshness_outcome(extra_delivered: Sequence[str] = (), *, events: bool = True) -> dict[str, Any]:
    """A run of the freshness benchmark as its outcome would say it went: 60 watched keys each
    crossing 80% once, each alerted 30 s later by a fast run, and delivered once (plus ``extra``)."""
    keys = [("b00001", f"k{n:09d}") for n in range(60)]
    crossings = [
        {"plan": plan, "key": key, "level": 80, "at": 200.0 + n, "period": DAY}
        for n, (plan, key) in enumerate(keys)
    ]
    published = [
        (f"threshold:{plan}:{key}:{DAY}:80", 230.0 + n, "fast") for n, (plan, key) in enumerate(keys)
    ]
    delivered = Counter([event_id for event_id, _, _ in published] + list(extra_delivered))
    fast = {"path": "fast", "seconds": 12.0, "plansRead": 3, "apiCalls": 3}
    return {
        "stats": {
            "calls": [float(n) for n in range(0, 1200, 4)],
            "refused": 0,
            "background": 100,
            "background_refused": 0,
            "crossings": crossings,
        },
        "published": published,
        "lists": [(150.0, [list(pair) for pair in keys])],
        "runs": [fast, fast | {"leaseHeld": True}, {"path": "full", "seconds": 100.0}],
        "delivered": dict(delivered),
        "events": dict(delivered) if events else None,
        "requests": {"fast": {"GetItem": 2}, "full": {}},
        "alone": {"cpu_seconds": 0.1},
        "errors": [],
        "growing_keys": 60,
    }


def test_the_freshness_report_passes_when_each_crossing_is_delivered_once() -> None:
    text, ok = freshness.report(freshness_outcome(), 1.0)
    assert ok, text
    assert "❌" not in text
    assert (
        "| missing: crossings never alerted, of 60 up to second 1740, SNS inbox / events | 0 / 0 ✅ | 0 |"
        in text
    )
    assert (
        "| doubled alerts: a key, level and period alerted more than once (any id, :1 too) | 0 ✅ | 0 |"
        in text
    )
    assert "| doubled events: the same, on the bus | 0 ✅ | 0 |" in text
    assert (
        "| false recoveries: recovered messages while usage only grew, SNS inbox / events | 0 / 0 ✅ | 0 |"
        in text
    )
    assert "6 times a full run and a fast run starting at the same instant" in text
    assert "| keys forecast more than once in a period, any id (shown, not judged) | 0 |  |" in text
    text, ok = freshness.report(freshness_outcome(events=False), 1.0)
    assert ok, text
    assert "| doubled events: the same, on the bus | - (no bus) | 0 |" in text


def test_the_freshness_report_fails_on_a_false_recovery_and_an_alert_again() -> None:
    bug = [
        f"recovered:b00001:k000000003:{DAY}:80",
        f"threshold:b00001:k000000003:{DAY}:80:1",
        f"forecast:b00001:k000000003:{DAY}:0",
        f"forecast:b00001:k000000003:{DAY}:0:1",
    ]
    outcome = freshness_outcome(bug)
    outcome["published"] += [(bug[0], 420.0, "full"), (bug[1], 480.0, "fast")]
    outcome["stats"]["crossings"].append(
        {"plan": "b00001", "key": "k000000099", "level": 90, "at": 1000.0, "period": DAY}
    )
    text, ok = freshness.report(outcome, 1.0)
    assert not ok
    assert (
        "| missing: crossings never alerted, of 61 up to second 1740, SNS inbox / events | 1 / 1 ❌ | 0 |"
        in text
    )
    assert (
        "| doubled alerts: a key, level and period alerted more than once (any id, :1 too) | 1 ❌ | 0 |"
        in text
    )
    assert "| doubled events: the same, on the bus | 1 ❌ | 0 |" in text
    assert (
        "| false recoveries: recovered messages while usage only grew, SNS inbox / events | 1 / 1 ❌ | 0 |"
        in text
    )
    assert (
        f"- Doubled alerts (1), the first: `threshold:b00001:k000000003:{DAY}:80` (fast 233 s); "
        f"`threshold:b00001:k000000003:{DAY}:80:1` (fast 480 s)."
    ) in text
    assert f"- False recoveries (1), the first: `recovered:b00001:k000000003:{DAY}:80` (full 420 s)." in text
    assert f"- Missing (1), the first: b00001 k000000099 90% ({DAY})." in text
    assert "| keys forecast more than once in a period, any id (shown, not judged) | 1 |  |" in text


# -- what the benchmarks share: their servers' processes, the docs writer -------------------------
def test_sections_are_written_between_their_markers_and_appended_when_new(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n<!-- a:start -->\nold\n<!-- a:end -->\n\nprose\n", encoding="utf-8")
    write_section("<!-- a:start -->", "<!-- a:end -->", "new ✅", path=docs)
    assert (
        docs.read_text(encoding="utf-8")
        == "# Benchmarks\n\n<!-- a:start -->\nnew ✅\n<!-- a:end -->\n\nprose\n"
    )
    write_section("<!-- b:start -->", "<!-- b:end -->", "b", heading="B", path=docs)
    assert docs.read_text(encoding="utf-8").endswith(
        "\n\nprose\n\n## B\n\n<!-- b:start -->\nb\n<!-- b:end -->\n"
    )
    write_section("<!-- b:start -->", "<!-- b:end -->", "b again", heading="B", path=docs)
    assert docs.read_text(encoding="utf-8").count("## B") == 1
    assert "b again\n<!-- b:end -->" in docs.read_text(encoding="utf-8")
    fresh = tmp_path / "new.md"
    write_section("<!-- c:start -->", "<!-- c:end -->", "c", path=fresh)
    assert fresh.read_text(encoding="utf-8") == "<!-- c:start -->\nc\n<!-- c:end -->\n"


def test_moto_in_its_own_process_answers_and_quits() -> None:
    with start_moto() as moto:
        assert moto.ready["url"].startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError, match="unknown op 'stats'"):
            moto.ask(op="stats")
    assert moto._process.poll() == 0


def test_a_host_that_fails_to_start_says_so() -> None:
    with pytest.raises(RuntimeError, match=r"bench\.host exited with code 2"):
        HostProcess("bench.host", "no-such-server")


def test_the_fleet_benchmark_runs_every_region_at_its_minimum_calls() -> None:
    runs, extra = fleet.measure(fleet.REGIONS, SMALL)
    alone, together = runs
    assert alone.regions == fleet.REGIONS[:1]
    assert together.regions == fleet.REGIONS
    assert alone.outcome["ok"]
    assert together.outcome["ok"]
    assert together.outcome["keys"] == 3 * 1_300
    assert together.outcome["failures"] == []
    assert alone.calls_at_minimum
    assert together.calls_at_minimum
    assert extra["shape"].attached_keys == 1_300
    text, _ = fleet.report(runs, SMALL, extra)
    assert "| keys read | 1,300 | 3,900 | |" in text


def test_the_targets_benchmark_reads_every_target_of_every_account_with_one_assume_role_each() -> None:
    # GIVEN 2 accounts (the monitor's own and a spoke) in 2 regions: 4 targets of a few keys each
    shape = targets200.FleetShape(
        accounts=2, regions=("us-east-1", "eu-west-1"), plans=(1, 3), keys=(2, 8), latency=(0.0, 0.0)
    )
    layout = shape.layout()
    assert [(account, region) for account, region, _, _ in layout] == [
        ("123456789012", "us-east-1"),
        ("123456789012", "eu-west-1"),
        ("200000000001", "us-east-1"),
        ("200000000001", "eu-west-1"),
    ]
    assert all(1 <= plans <= 3 and 2 <= keys <= 8 and plans <= keys for _, _, plans, keys in layout)

    # WHEN the benchmark runs the handler's steps over them
    measured = targets200.measure(shape)

    # THEN every target was read, at no fewer calls than the minimum, with one AssumeRole for the spoke
    out = measured.outcome
    assert measured.targets == len(out["targets"]) == 4
    assert measured.accounts == 2
    assert out["failures"] == []
    assert measured.targets_read == 4
    assert measured.keys == measured.keys_seeded == sum(keys for _, _, _, keys in layout)
    assert measured.total_calls >= measured.total_minimum > 0
    assert measured.targets_at_minimum == 4
    assert measured.assume_role_calls == 1
    assert measured.stats["throttled"] == 0
    assert all(target["published"] for target in out["targets"])
    assert 1 <= measured.stats["put_metric_data"] <= 4
    assert out["records"] == measured.keys + sum(t["plans"] for t in out["targets"]) + 4
    assert measured.ok
    # AND the numbers it extrapolates from are consistent
    assert 0 < out["connect_cpu"] <= out["scan_cpu"]
    assert out["rss_peak_mb"] >= out["rss_scanned_mb"] >= out["rss_imported_mb"] > 0
    assert out["threads_peak"] > out["threads_at_start"] >= 1
    assert out["max_workers"] == 2
    cost = targets200.PerTarget.of(measured)
    assert cost.threads == 3
    assert cost.regions == 2
    for memory, timeout in targets200.CASES:
        found = targets200.limits(cost, memory, timeout)
        assert set(found) >= {"memory", "STS (AssumeRole one at a time)"}
        assert all(n >= 0 for n in found.values())
    assert targets200.limits(cost, 1769, 300)["memory"] >= targets200.limits(cost, 256, 300)["memory"]
    assert (
        targets200.limits(cost, 256, 900)["CPU (the scan before calls stop)"]
        > targets200.limits(cost, 256, 300)["CPU (the scan before calls stop)"]
    )
    text, ok = targets200.report(measured)
    assert ok
    assert "| targets read (every plan, every key) | 4 of 4 ✅ | 2 accounts |" in text
    assert "| STS AssumeRole calls | 1 ✅ | one a spoke account |" in text
    assert "largest fleet: targets (keys)" in text
    assert targets200.report(targets200.Measured.from_json(measured.to_json())) == (text, True)
