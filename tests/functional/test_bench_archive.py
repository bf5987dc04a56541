"""The archive's benchmark (``python -m bench.archive``) at a tiny size: exactness only, never time."""

from __future__ import annotations

from bench.archive import Shape, measure, report

TINY = Shape(keys=30, plans=3, big_plans=0, big_plan_keys=0, runs=1, latency=(0.0, 0.0))


def test_each_archived_run_is_one_object_holding_exactly_what_it_logged() -> None:
    outcome = measure(TINY)

    (run,) = outcome.archived
    assert len(outcome.plain_seconds) == 1
    assert run.objects == 1
    assert run.identical
    assert run.lines == run.logged > TINY.keys  # key records, plan records and the run's
    assert (run.key_records, run.keys_not_once) == (30, 0)
    (summary,) = outcome.summaries
    assert (summary["archiveObjects"], summary["archiveFailures"]) == (1, 0)
    text, _ = report(outcome)
    assert "| keys whose record is in a run's archive other than once | 0 ✅ | 0 |" in text
