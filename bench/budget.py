"""The whole budget: the monitor given the account's entire control-plane budget.

``APIGATEWAY_MAX_RPS=10 APIGATEWAY_BURST=40`` is all of API Gateway's account-wide bucket (10 a
second, burst 40). Run in real time beside the default run, in the same table
(docs/benchmarks.md): its scan must come within :data:`WALL_TARGET` of the floor (calls beyond the
burst ÷ rate, 28.5 s at 10,000 keys) with at most :data:`MAX_THROTTLES` 429.

Real time, not scaled: at 10 calls a second the machine's own work per call (about 8 ms of CPU)
is a tenth of one core, so a busy machine barely moves the result; scaled ten times, it would be
the whole core, and the ratio would measure the machine (the default run's scaled column shows it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bench.run import BenchReport, Measurement

LABEL: Final = "monitor, whole budget (10/s, burst 40)"
ENV: Final = (("APIGATEWAY_MAX_RPS", "10"), ("APIGATEWAY_BURST", "40"))
WALL_TARGET: Final = 1.15
MAX_THROTTLES: Final = 1


def is_budget_run(measurement: Measurement) -> bool:
    return measurement.case.label.startswith(LABEL)


def meets_targets(measurement: Measurement) -> bool:
    ratio = measurement.wall_ratio
    return (
        not measurement.failed
        and (ratio is None or ratio <= WALL_TARGET)  # None: every call fits in the burst
        and measurement.throttles_sent <= MAX_THROTTLES
    )


def budget_lines(report: BenchReport) -> list[str]:
    """One line for each whole-budget run: the ratio, the 429s, and whether both meet the target."""
    lines = []
    for m in report.measurements:
        if not is_budget_run(m) or m.floor is None or m.scan_seconds is None:
            continue
        ratio = "every call within the burst" if m.wall_ratio is None else f"{m.wall_ratio:.3f}"
        mark = "✅" if meets_targets(m) else "❌"
        clock = "real time" if m.case.time_scale == 1.0 else f"time x{m.case.time_scale:g}"
        lines.append(
            f"whole budget (APIGATEWAY_MAX_RPS=10, APIGATEWAY_BURST=40, {clock}): "
            f"scan {m.scan_seconds:.1f} s against a floor of {m.floor:.1f} s = {ratio} "
            f"(target ≤ {WALL_TARGET}), {m.throttles_sent} 429 (target ≤ {MAX_THROTTLES}) {mark}"
        )
    return lines
