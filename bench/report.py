"""The benchmark's report: a table for the terminal, and the block it writes into docs/benchmarks.md."""

from __future__ import annotations

import io
import os
import platform
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from bench.budget import budget_lines
from bench.host import DOCS, write_section
from bench.records import record_lines_summary, record_rows
from bench.scenario import MAX_DATAPOINTS_PER_REQUEST, MAX_REQUEST_BYTES, minimum_metric_requests

if TYPE_CHECKING:
    from bench.run import BenchReport, Headroom, ImportTiming, Measurement

START_MARK = "<!-- bench:results:start -->"
END_MARK = "<!-- bench:results:end -->"
#: Targets from the issue.
WALL_TARGET = 1.15
MEMORY_TARGET_MB = 128.0
IMPORT_TARGET_MS = 500.0


def _num(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def _ok(passed: bool | None) -> str:
    return "" if passed is None else (" ✅" if passed else " ❌")


def result_rows(report: BenchReport) -> list[tuple[str, list[str], str]]:
    """(what, one cell a case, target) for the results table."""
    rows: list[tuple[str, list[str], str]] = []
    ms = report.measurements

    def row(what: str, cells: list[str], target: str = "") -> None:
        rows.append((what, cells, target))

    def per_op(m: Measurement) -> str:
        return ", ".join(f"{name} {count:,}" for name, count in sorted(m.calls.items()))

    row("API Gateway calls (sandbox count)", [f"{m.total_calls:,}" for m in ms])
    row("… by operation", [per_op(m) for m in ms])
    row("minimum for the account", [f"{m.minimum_total:,}" for m in ms])
    row(
        "calls ÷ minimum",
        [
            f"{m.total_calls / m.minimum_total:.2f}"
            + _ok(m.total_calls == m.minimum_total if m.case.impl == "monitor" else None)
            for m in ms
        ],
        "1.00",
    )
    row(
        "page sizes requested (limit)",
        [", ".join(x or "default (25)" for x in m.page_limits) for m in ms],
        "500",
    )
    row("scan wall time, s (scaled back)", [_num(m.scan_seconds, ",.1f") for m in ms])
    row("floor: calls beyond the burst ÷ rate, s", [_num(m.floor, ",.1f") for m in ms])
    row(
        "wall ÷ floor",
        [
            _num(m.wall_ratio, ".3f") + _ok(None if m.wall_ratio is None else m.wall_ratio <= WALL_TARGET)
            for m in ms
        ],
        f"≤ {WALL_TARGET}",
    )
    row("429s sent by the sandbox", [f"{m.throttles_sent:,}" for m in ms])
    row("429s received (monitor's count)", [_num(m.throttles_received) for m in ms])
    row("keys expected / reported", [f"{m.keys_expected:,} / {m.keys_reported:,}" for m in ms])
    row("keys missed", [f"{m.keys_missed:,}" + _ok(m.keys_missed == 0) for m in ms], "0")
    row("keys with wrong numbers", [f"{m.keys_wrong:,}" + _ok(m.keys_wrong == 0) for m in ms], "0")
    row("runs failed", [("0" if not m.failed else "1") + _ok(not m.failed) for m in ms], "0")
    row("PutMetricData data points (on the wire)", [_num(m.datapoints_on_wire) for m in ms])
    row(
        "PutMetricData calls / ceil(points ÷ 1,000)",
        [
            "—"
            if not m.metric_requests
            else f"{len(m.metric_requests)} / {minimum_metric_requests(m.datapoints_on_wire or 0)}"
            + _ok(len(m.metric_requests) == minimum_metric_requests(m.datapoints_on_wire or 0))
            for m in ms
        ],
        "equal",
    )

    def largest(m: Measurement, field_name: str) -> int:
        return max(int(request.get(field_name) or 0) for request in m.metric_requests)

    row(
        "largest PutMetricData request, bytes (uncompressed / gzip on the wire)",
        [
            f"{largest(m, 'decoded'):,} / {largest(m, 'wire'):,}"
            + _ok(largest(m, "decoded") < MAX_REQUEST_BYTES)
            if m.metric_requests
            else "—"
            for m in ms
        ],
        "< 1,000,000",
    )
    row(
        "largest request, data points",
        [
            f"{largest(m, 'datapoints'):,}" + _ok(largest(m, "datapoints") <= MAX_DATAPOINTS_PER_REQUEST)
            if m.metric_requests
            else "—"
            for m in ms
        ],
        "≤ 1,000",
    )
    row("publish time, s (moto, not scaled)", [_num(m.publish_seconds, ",.1f") for m in ms])
    row(
        "CPU seconds: import / clients / scan / publish / records",
        [
            " / ".join(
                f"{m.cpu.get(phase, 0.0):.2f}"
                for phase in ("import", "clients", "scan", "publish", "records")
            )
            if m.cpu
            else "—"
            for m in ms
        ],
    )
    row(
        f"machine load (1-min average, {os.cpu_count()} cores) at the end",
        [_num(m.load_average, ".2f") for m in ms],
    )
    row("peak RSS after imports, MiB", [_num(m.rss_imported_mb, ",.1f") for m in ms])
    row(
        "peak RSS of the run, MiB",
        [
            _num(m.rss_peak_mb, ",.1f")
            + _ok(None if m.rss_peak_mb is None else m.rss_peak_mb < MEMORY_TARGET_MB)
            for m in ms
        ],
        f"< {MEMORY_TARGET_MB:.0f}",
    )
    rows.extend(record_rows(report))
    return rows


def comparison_lines(report: BenchReport) -> list[str]:
    """Naive against monitor: each naive run beside the monitor run at the same time scale."""
    lines: list[str] = []
    for naive in (m for m in report.measurements if m.case.impl == "naive"):
        monitor = report.first("monitor", naive.case.time_scale)
        if monitor is None or monitor.scan_seconds is None or naive.scan_seconds is None:
            continue
        lines.append(
            f"{naive.case.label} ÷ {monitor.case.label}: "
            f"{naive.total_calls / monitor.total_calls:.1f}x the API calls, "
            f"{naive.scan_seconds / monitor.scan_seconds:.1f}x the wall time "
            f"({naive.scan_seconds:,.0f} s against {monitor.scan_seconds:,.0f} s)"
        )
    return lines


def import_lines(imports: ImportTiming | None) -> list[str]:
    if imports is None:
        return []
    runs = ", ".join(f"{ms:.0f}" for ms in imports.runs_ms)
    passed = imports.median_ms < IMPORT_TARGET_MS
    heaviest = sorted(imports.breakdown_ms.items(), key=lambda item: -item[1])
    outside = ", ".join(f"{ms:.0f}" for ms in imports.outside_lambda_ms)
    return [
        f"cold import of quota_monitor.handler (python -X importtime, {len(imports.runs_ms)} fresh "
        f"processes, Lambda's environment): median {imports.median_ms:.0f} ms (runs: {runs}); "
        f"target < {IMPORT_TARGET_MS:.0f} ms{_ok(passed)}",
        "  of which (cumulative, median): " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in heaviest),
        "the same outside Lambda, where the X-Ray SDK also builds its sampling clients: median "
        f"{statistics.median(imports.outside_lambda_ms):.0f} ms (runs: {outside})",
        "import + both boto3 clients created (what a cold start does before its first call): "
        f"median {imports.ready_median_ms:.0f} ms",
        f"load average while timing imports: {imports.load_average:.2f} on {os.cpu_count()} cores",
    ]


HEADROOM_COLUMNS = (
    "APIGATEWAY_MAX_RPS",
    "other callers, calls/s",
    "monitor's calls",
    "scan wall, s",
    "floor, s",
    "429s to the monitor",
    "other callers' calls",
    "other callers' 429s",
    "keys missed",
)


def headroom_title(report: BenchReport) -> str:
    s = report.scenario
    return (
        f"Headroom: the same account while other callers (a deploy, the console) use the control plane "
        f"steadily, without retrying (bucket {s.account_rps:g}/s, burst {s.account_burst})"
    )


def headroom_rows(headroom: Headroom) -> list[list[str]]:
    rows = []
    for m in headroom.measurements:
        other = m.background or {"calls": 0, "refused": 0}
        share = other["refused"] / other["calls"] if other["calls"] else 0.0
        rows.append(
            [
                _num(m.settings.get("max_rps"), "g"),
                f"{m.case.background_rps:g}",
                f"{m.total_calls:,}",
                _num(m.scan_seconds, ",.1f"),
                _num(m.floor, ",.1f"),
                f"{m.throttles_sent:,}",
                f"{other['calls']:,}",
                f"{other['refused']:,} ({share:.0%})",
                f"{m.keys_missed:,}",
            ]
        )
    return rows


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}"
    )


def alert_lines(report: BenchReport) -> list[str]:
    """The alert step's table (:mod:`bench.alert_storm`), in markdown; nothing when it did not run."""
    if not report.alerts:
        return []
    from bench.alert_storm import markdown  # noqa: PLC0415 - it builds on bench.run, which builds on this

    return markdown(report.alerts)


def render_text(report: BenchReport) -> str:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=scenario_line(report), title_justify="left")
    table.add_column("")
    for measurement in report.measurements:
        table.add_column(measurement.case.label, justify="right")
    table.add_column("target")
    for what, cells, target in result_rows(report):
        table.add_row(what, *cells, target)
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(table)
    for line in (
        budget_lines(report)
        + comparison_lines(report)
        + record_lines_summary(report)
        + import_lines(report.imports)
    ):
        console.print(line, highlight=False)
    for line in alert_lines(report):
        console.print(line, highlight=False)
    if report.headroom is not None:
        other = Table(title=headroom_title(report), title_justify="left")
        for column in HEADROOM_COLUMNS:
            other.add_column(column, justify="right")
        for cells in headroom_rows(report.headroom):
            other.add_row(*cells)
        console.print(other)
    return console.export_text()


def scenario_line(report: BenchReport) -> str:
    s, shape = report.scenario, report.shape
    return (
        f"{shape.plans:,} usage plans, {shape.api_keys:,} API keys ({shape.attached_keys:,} attached), "
        f"{s.days} days of usage a key; "
        f"latency {s.latency[0] * 1000:.0f}-{s.latency[1] * 1000:.0f} ms a call; "
        f"account bucket {s.account_rps:g}/s, burst {s.account_burst}"
    )


def markdown_body(report: BenchReport) -> str:
    """What goes between the markers."""
    lines = [
        f"Generated by `{report.command}` on {report.started:%Y-%m-%d %H:%M} UTC; machine: {machine_line()}.",
        "",
        f"Scenario: {scenario_line(report)}. Seeding the sandbox took {report.seconds_to_seed:.1f} s.",
        "",
        "| | " + " | ".join(m.case.label for m in report.measurements) + " | target |",
        "|---|" + "---:|" * len(report.measurements) + "---|",
    ]
    for what, cells, target in result_rows(report):
        lines.append(f"| {what} | " + " | ".join(cells) + f" | {target} |")
    lines.append("")
    lines.extend(
        f"- {line.strip()}"
        for line in budget_lines(report)
        + comparison_lines(report)
        + record_lines_summary(report)
        + import_lines(report.imports)
    )
    failures = [(m.case.label, m.error or "; ".join(m.failures[:3])) for m in report.measurements if m.failed]
    lines.extend(f"- {label} failed: {reason}" for label, reason in failures)
    if report.headroom is not None:
        lines.extend(
            [
                "",
                headroom_title(report) + ":",
                "",
                "| " + " | ".join(HEADROOM_COLUMNS) + " |",
                "|" + "---:|" * len(HEADROOM_COLUMNS),
            ]
        )
        lines.extend("| " + " | ".join(cells) + " |" for cells in headroom_rows(report.headroom))
    lines.extend(alert_lines(report))
    return "\n".join(lines)


def write_docs(report: BenchReport, path: Path = DOCS) -> None:
    """Replace the results between the markers in ``path`` (or append them)."""
    write_section(START_MARK, END_MARK, markdown_body(report), path=path)
