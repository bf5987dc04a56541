"""What a run costs to keep: the metric series it creates and the records it logs (issue 10's targets).

- series: counted where they arrive, in front of the CloudWatch stand-in
  (:class:`bench.sandbox_host.PutMetricDataRecorder`), by number of dimensions;
- records: the file the runner writes exactly as the handler prints them, read back here and
  checked against the sandbox's own accounting: every key exactly once, every number exact;
- the cost model's prediction for the same account (``quota_monitor_cli.cost``), beside them.

Bytes are the records' UTF-8 lines with their newlines; "billed" adds the 26 bytes CloudWatch Logs
counts per log event (docs/aws-behaviour.md#cloudwatch-logs-and-logs-insights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quota_monitor import CONTRACT_FIELDS, KEY_RECORD, PLAN_RECORD, RECORD
from quota_monitor_cli.cost import EVENT_OVERHEAD_BYTES, KEY_RECORD_BYTES, Usage

if TYPE_CHECKING:
    from pathlib import Path

    from bench.run import BenchReport, Measurement

#: The issue's targets for a default run over 10,000 keys.
SERIES_TARGET = 90
RECORD_MB_TARGET = 4.0
#: The cost model and a measured run must agree this closely (docs/cost.md).
MODEL_TOLERANCE = 0.20


@dataclass(frozen=True)
class RecordsMeasurement:
    key_records: int
    plan_records: int
    #: UTF-8 bytes of the lines, newlines included; and of the key records alone.
    bytes: int
    key_bytes: int
    keys_missing: int
    keys_wrong: int
    #: Keys with more than one record, or records of keys the account does not have.
    keys_extra: int
    #: Records without every scan JSON contract field at the top level.
    records_incomplete: int
    #: Keys the records say are at or above their lowest alert level.
    keys_at_level: int

    @property
    def records(self) -> int:
        return self.key_records + self.plan_records

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def read_records(path: Path, truth: dict[tuple[str, str], tuple[int, int | None]]) -> RecordsMeasurement:
    """The records file of a run, checked against the sandbox's numbers for every attached key."""
    key_records = plan_records = incomplete = at_level = key_bytes = 0
    seen: dict[tuple[str, str], int] = {}
    wrong = 0
    raw = path.read_bytes()
    for line in raw.decode("utf-8").splitlines():
        record: dict[str, Any] = json.loads(line)
        if record.get(RECORD) == PLAN_RECORD:
            plan_records += 1
            continue
        if record.get(RECORD) != KEY_RECORD:
            continue
        key_records += 1
        key_bytes += len(line.encode("utf-8")) + 1
        if any(name not in record for name in CONTRACT_FIELDS):
            incomplete += 1
        pair = (str(record.get("usagePlanId")), str(record.get("apiKeyId")))
        seen[pair] = seen.get(pair, 0) + 1
        if truth.get(pair) != (record.get("used"), record.get("remaining")):
            wrong += 1
        levels = record.get("levels") or []
        if levels and record.get("level", 0) >= levels[0]:
            at_level += 1
    extra = sum(count - 1 for count in seen.values()) + sum(1 for pair in seen if pair not in truth)
    return RecordsMeasurement(
        key_records=key_records,
        plan_records=plan_records,
        bytes=len(raw),
        key_bytes=key_bytes,
        keys_missing=sum(1 for pair in truth if pair not in seen),
        keys_wrong=wrong,
        keys_extra=extra,
        records_incomplete=incomplete,
        keys_at_level=at_level,
    )


def model_for(m: Measurement) -> Usage | None:
    """The cost model's account for a measured run: its keys and plans, the share of keys the run
    found at their level, and no alert metrics (the benchmark runs without alerts)."""
    if m.records is None:
        return None
    keys = m.records["key_records"]
    if not keys:
        return None
    return Usage(
        keys=keys,
        plans=m.records["plan_records"],
        share_hot=m.records["keys_at_level"] / keys,
        alert_metrics=False,
    )


def _ok(passed: bool) -> str:
    return " ✅" if passed else " ❌"


def _within(measured: float, modelled: float) -> bool:
    return measured > 0 and abs(modelled - measured) / measured <= MODEL_TOLERANCE


def record_rows(report: BenchReport) -> list[tuple[str, list[str], str]]:
    """Rows for the results table: one cell a case ("—" for cases without records)."""
    ms = report.measurements
    if not any(m.records for m in ms):
        return []

    def cell(m: Measurement, text: str) -> str:
        return text if m.records is not None else "—"

    def series(m: Measurement, dims: str) -> int:
        return int((m.series or {}).get(dims, 0))

    rows: list[tuple[str, list[str], str]] = []
    rows.append(("KEY_METRICS", [str((m.records_summary or {}).get("key_metrics", "—")) for m in ms], ""))
    rows.append(
        (
            "metric series created: per key / per plan / health",
            [
                f"{series(m, '2'):,} / {series(m, '1'):,} / {series(m, '0'):,}"
                if m.series is not None
                else "—"
                for m in ms
            ],
            "",
        )
    )
    rows.append(
        (
            "metric series created, total (default run)",
            [
                cell(m, f"{sum((m.series or {}).values()):,}")
                + (_ok(sum((m.series or {}).values()) <= SERIES_TARGET) if _is_default(m) else "")
                for m in ms
            ],
            f"≤ {SERIES_TARGET}",
        )
    )
    rows.append(
        (
            "records: per key / per plan",
            [
                cell(
                    m,
                    f"{(m.records or {}).get('key_records', 0):,} / "
                    f"{(m.records or {}).get('plan_records', 0):,}",
                )
                for m in ms
            ],
            "",
        )
    )
    rows.append(
        (
            "records: keys missing / duplicated / with wrong numbers",
            [
                cell(
                    m,
                    f"{r['keys_missing']} / {r['keys_extra']} / {r['keys_wrong']}"
                    + _ok(
                        r["keys_missing"]
                        == r["keys_extra"]
                        == r["keys_wrong"]
                        == r["records_incomplete"]
                        == 0
                    ),
                )
                if (r := m.records)
                else "—"
                for m in ms
            ],
            "0 / 0 / 0",
        )
    )
    rows.append(
        (
            "bytes logged a run: records / with 26 B an event, MB",
            [
                cell(
                    m,
                    f"{r['bytes'] / 1e6:.2f} / {_billed(r) / 1e6:.2f}"
                    + _ok(_billed(r) / 1e6 <= RECORD_MB_TARGET),
                )
                if (r := m.records)
                else "—"
                for m in ms
            ],
            f"≤ {RECORD_MB_TARGET:g}",
        )
    )
    rows.append(
        (
            f"bytes a key record (average, newline included; model {KEY_RECORD_BYTES})",
            [cell(m, f"{_per_key(r):.1f}") if (r := m.records) else "—" for m in ms],
            "",
        )
    )
    rows.append(
        (
            "cost model for this account: series / MB a run (billed)",
            [_model_cell(m) for m in ms],
            f"within {MODEL_TOLERANCE:.0%}",
        )
    )
    rows.append(
        ("records: seconds to write (wall)", [cell(m, f"{m.records_seconds or 0:.2f}") for m in ms], "")
    )
    return rows


def _is_default(m: Measurement) -> bool:
    """A monitor run with the default KEY_METRICS."""
    return m.case.impl == "monitor" and not dict(m.case.env).get("KEY_METRICS")


def _billed(records: dict[str, int]) -> int:
    return records["bytes"] + EVENT_OVERHEAD_BYTES * (records["key_records"] + records["plan_records"])


def _per_key(records: dict[str, int]) -> float:
    """Average bytes of a key record (the plan records apart)."""
    keys = records["key_records"]
    return records["key_bytes"] / keys if keys else 0.0


def _model_cell(m: Measurement) -> str:
    usage = model_for(m)
    if usage is None or m.records is None or m.series is None or not _is_default(m):
        return "—"
    measured_series = sum(m.series.values())
    measured_mb = _billed(m.records) / 1e6
    modelled_mb = usage.record_bytes_per_run / 1e6
    passed = _within(measured_series, usage.custom_metrics) and _within(measured_mb, modelled_mb)
    return f"{usage.custom_metrics:,.0f} / {modelled_mb:.2f}" + _ok(passed)


def record_lines_summary(report: BenchReport) -> list[str]:
    """One line for the text and markdown reports: the default run's figures against the model."""
    lines = []
    for m in report.measurements:
        usage = model_for(m)
        if usage is None or m.records is None or m.series is None or not _is_default(m):
            continue
        lines.append(
            f"{m.case.label}: {sum(m.series.values()):,} metric series created "
            f"(model {usage.custom_metrics:,.0f}), "
            f"{_billed(m.records) / 1e6:.2f} MB logged with the event overhead "
            f"(model {usage.record_bytes_per_run / 1e6:.2f}); {m.records['keys_at_level']:,} of "
            f"{m.records['key_records']:,} keys at or above their first level, "
            f"{(m.records_summary or {}).get('keys_with_metrics', 0)} with per-key metrics "
            "(KEY_METRICS=auto caps them)"
        )
        break
    return lines


def parse_measurement(
    outcome: dict[str, Any], stats: dict[str, Any], records: RecordsMeasurement | None
) -> dict[str, Any]:
    """The extra fields :class:`bench.run.Measurement` keeps for this module."""
    return {
        "records": records.as_dict() if records is not None else None,
        "records_summary": outcome.get("records"),
        "records_seconds": outcome.get("records_seconds"),
        "series": stats.get("series"),
    }
