"""The quota endpoint's benchmark (``python -m bench.endpoint``) at a tiny size: correctness only, never time.

The same code as the full run: the sandbox host and moto in processes of their own, one full scan with
``KEY_SNAPSHOTS=on``, then the endpoint's handler called for every key on every stage of its plans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.endpoint import END, START, Shape, measure, report
from bench.host import write_section

if TYPE_CHECKING:
    from pathlib import Path

# 20 keys in 3 plans of 7, 7 and 6 keys; plans 0 and 2 on two stages, plan 1 on one; keys 0, 4, 8, 12
# and 16 also in the next plan. Calls: 7 x 2 + 7 x 1 + 6 x 2 = 33, and 1 + 1 + 2 + 2 + 2 = 8 more.
TINY = Shape(
    keys=20,
    plans=3,
    big_plans=0,
    big_plan_keys=0,
    second_plan_every=4,
    two_stage_every=2,
    security_sample=5,
    import_runs=0,
    costs=False,
)


def test_every_key_on_every_stage_is_answered_as_getusage_gave_it_in_one_request(tmp_path: Path) -> None:
    outcome = measure(TINY)

    assert (outcome.keys, outcome.keys_in_two_plans, outcome.plans, outcome.stages) == (20, 5, 3, 5)
    assert outcome.scan_failures == []
    assert outcome.scan_vs_sandbox == 0
    calls = outcome.calls
    assert calls.calls == 41
    assert calls.mismatches.total() == 0, calls.examples
    assert calls.requests == {1: 41}
    assert calls.operations == {"BatchGetItem": 41}
    assert outcome.with_fast.calls == 5
    assert outcome.with_fast.mismatches.total() == 0, outcome.with_fast.examples
    assert outcome.with_fast.requests == {1: 5}
    security = outcome.security
    assert (security.sampled, security.spoofed_ok, security.keyless, security.keyless_ok) == (5, 5, 5, 5)
    assert security.leaks_in_answers == security.leaks_in_logs == calls.leaks == 0
    assert security.log_lines > 0  # the capture saw the logs (botocore's, at DEBUG, and the 500s')
    assert (outcome.snapshot_items, outcome.snapshot_errors) == (64, [])
    assert outcome.write_units == 64  # every bucket item under a kilobyte

    text, ok = report(outcome)
    assert ok
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n", encoding="utf-8")
    write_section(START, END, text, heading="The quota endpoint", path=docs)
    written = docs.read_text(encoding="utf-8")
    assert "## The quota endpoint" in written
    assert f"{START}\n`python -m bench.endpoint`" in written
    assert "| 0 | 0 | ✅ |" in written
