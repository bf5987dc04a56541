"""The per-key records: the scan JSON contract at the top level, a few short fields, one line each."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from quota_monitor.alert.thresholds import DEFAULT_LEVELS
from quota_monitor.config import ForecastSettings
from quota_monitor.models import ApiKey, KeyUsage, Quota, ScanResult, ScanStats, UsagePlan
from quota_monitor.publish.records import RecordsWritten, key_record, record_lines, write_records
from tests.contracts import JSON_FIELDS

NOW = datetime(2026, 11, 20, 12, 30, 15, 123456, tzinfo=UTC)
#: What a key record adds to the scan JSON contract (README, "Records"); ``exhaustsAt`` only with a
#: forecast, ``levels`` and ``level`` only for plans with a quota.
EXTRA_FIELDS = {"record", "runAt", "levels", "level", "metrics", "exhaustsAt"}
PLAN_FIELDS = [
    "record",
    "runAt",
    "usagePlanId",
    "usagePlanName",
    "period",
    "limit",
    "keys",
    "used",
    "maxUtilization",
    "hottestKeyId",
    "hottestKeyName",
    "keysAtLevel",
    "keysForecast",
    "accountId",
    "region",
]


def usage(
    key_id: str, used: int, *, limit: int | None = 10_000, plan: str = "p1", name: str | None = None
) -> KeyUsage:
    return KeyUsage(
        usage_plan_id=plan,
        usage_plan_name=f"plan {plan}",
        api_key_id=key_id,
        api_key_name=name,
        period="MONTH",
        period_start=date(2026, 11, 1),
        resets_at=datetime(2026, 12, 1, tzinfo=UTC),
        used=used,
        remaining=None if limit is None else limit - used,
        limit=limit,
        utilization=None if limit is None else 100.0 * used / limit,
    )


def result_of(keys: list[KeyUsage]) -> ScanResult:
    plans = tuple(
        UsagePlan(plan_id, f"plan {plan_id}", Quota(10_000, "MONTH"))
        for plan_id in sorted({key.usage_plan_id for key in keys})
    )
    api_keys = {key.api_key_id: ApiKey(key.api_key_id, key.api_key_name) for key in keys}
    return ScanResult(NOW, plans, tuple(keys), (), ScanStats(), api_keys=api_keys)


def lines_of(keys: list[KeyUsage], *, with_metrics: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    result = result_of(keys)
    return list(
        record_lines(
            result,
            levels={("p1", "tagged"): (50, 75)},
            with_metrics=with_metrics,
            forecast_settings=ForecastSettings(),
            default_levels=DEFAULT_LEVELS,
        )
    )


def test_a_key_record_is_the_scan_contract_plus_the_short_fields() -> None:
    key = usage("k1", 9_100, name="billing-client")
    (line, _plan) = lines_of([key], with_metrics=frozenset({("p1", "k1")}))
    record = json.loads(line)
    assert list(record)[2 : 2 + len(JSON_FIELDS)] == JSON_FIELDS
    assert {name: record[name] for name in JSON_FIELDS} == key.as_json()
    assert set(record) - set(JSON_FIELDS) <= EXTRA_FIELDS
    assert record["record"] == "key"
    assert record["runAt"] == "2026-11-20T12:30:15Z"
    assert (record["levels"], record["level"], record["metrics"]) == ([80, 90, 100], 90, True)
    # 91% by the 20th: on course to run out before the reset.
    assert record["exhaustsAt"].startswith("2026-11-2")
    assert datetime.fromisoformat(record["exhaustsAt"]) < key.resets_at
    # Exact numbers: the same integers and float the scan computed.
    assert (record["used"], record["remaining"], record["limit"]) == (9_100, 900, 10_000)
    assert record["utilization"] == key.utilization


def test_the_levels_are_the_keys_own_and_the_level_is_compared_in_whole_numbers() -> None:
    tagged = usage("tagged", 5_000)
    almost = replace(
        usage("almost", 0, limit=3_000_000), used=2_399_999, remaining=600_001, utilization=79.99997
    )
    records = [json.loads(line) for line in lines_of([tagged, almost])[:2]]
    assert [(r["levels"], r["level"]) for r in records] == [([50, 75], 50), ([80, 90, 100], 0)]
    assert [r["metrics"] for r in records] == [False, False]
    # 50% by the 20th lasts the month; 80% does not.
    assert ["exhaustsAt" in r for r in records] == [False, True]


def test_a_key_without_a_quota_has_no_levels_and_nulls_where_the_scan_has_them() -> None:
    (line, _plan) = lines_of([usage("free", 1_234, limit=None)])
    record = json.loads(line)
    assert (record["remaining"], record["limit"], record["utilization"]) == (None, None, None)
    assert "levels" not in record
    assert "level" not in record


def test_every_record_is_one_line_whatever_the_names_hold() -> None:
    key = usage("k1", 10, name='new\nline "quoted" \u00e9t\u00e9 \u2603')
    lines = lines_of([key])
    assert all("\n" not in line for line in lines)
    assert json.loads(lines[0])["apiKeyName"] == key.api_key_name
    sink = io.StringIO()
    written = write_records(lines, sink.write)
    assert sink.getvalue().count("\n") == written.records == 2
    assert written.bytes == len(sink.getvalue().encode("utf-8"))
    assert written.summary() == {"records": 2, "recordBytes": written.bytes}


def test_plan_records_roll_up_every_key_and_name_the_hottest() -> None:
    keys = [
        usage("a", 2_000),
        usage("b", 9_500, name="busy"),
        usage("c", 8_000),
        usage("x", 9_900, plan="p2"),
        usage("free-1", 50, limit=None, plan="p3"),
        usage("free-2", 70, limit=None, plan="p3", name="chatty"),
    ]
    lines = lines_of(keys)
    assert len(lines) == len(keys) + 3
    plans = {record["usagePlanId"]: record for record in map(json.loads, lines[len(keys) :])}
    assert all(list(record) == PLAN_FIELDS for record in plans.values())
    p1 = plans["p1"]
    assert (p1["keys"], p1["used"], p1["maxUtilization"]) == (3, 19_500, 95.0)
    assert (p1["hottestKeyId"], p1["hottestKeyName"], p1["keysAtLevel"]) == ("b", "busy", 2)
    assert p1["keysForecast"] == 2  # 95% and 80% by the 20th both run out before December
    assert (plans["p3"]["hottestKeyId"], plans["p3"]["maxUtilization"], plans["p3"]["used"]) == (
        "free-2",
        None,
        120,
    )


def test_key_record_alone() -> None:
    record = key_record(usage("k", 100), run_at="2026-11-20T12:30:15Z", levels=(90,), metrics=False)
    assert record["level"] == 0
    assert record["levels"] == [90]


@pytest.mark.parametrize("count", [0, 1, 499, 500, 501, 1_234])
def test_writes_come_in_chunks_and_lose_nothing(count: int) -> None:
    writes: list[str] = []
    written = write_records((f"line {n}" for n in range(count)), writes.append)
    assert "".join(writes).splitlines() == [f"line {n}" for n in range(count)]
    assert len(writes) == -(-count // 500)
    assert written == RecordsWritten(count, sum(len(f"line {n}") + 1 for n in range(count)))
