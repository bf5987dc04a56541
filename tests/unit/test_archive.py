"""The archive's pure parts: object names, the gzip body, the statement's range and rows from records
made by hand (out of order, doubled, extended, filtered, malformed)."""

from __future__ import annotations

import argparse
import gzip
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from quota_monitor.errors import CallNotStarted
from quota_monitor.models import Target
from quota_monitor.publish.archive import (
    ArchiveWritten,
    gzip_lines,
    object_key,
    partition_prefix,
    target_id,
    worth_retrying,
)
from quota_monitor_cli.statement import (
    RecordError,
    Span,
    StatementBuilder,
    bucket_name,
    key_prefix,
    parse_span,
)

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_an_objects_name_holds_the_runs_utc_date_and_time_and_its_target() -> None:
    at = datetime(2026, 12, 7, 22, 15, 9, 999_999, tzinfo=UTC)
    here, there = Target("111111111111", "us-east-1"), Target("111111111111", "eu-west-1")
    assert object_key(at, here) == f"records/dt=2026-12-07/20261207T221509Z-{target_id(here)}.jsonl.gz"
    assert target_id(here) != target_id(there) != target_id(None)
    assert len(target_id(here)) == 8
    assert object_key(at, here, prefix="archive/records/").startswith("archive/records/dt=2026-12-07/")
    assert partition_prefix(date(2026, 1, 2)) == "records/dt=2026-01-02/"


def test_the_body_is_the_lines_each_ending_in_a_newline_and_the_same_lines_give_the_same_bytes() -> None:
    lines = [json.dumps({"n": n, "name": "é\u2028"}, ensure_ascii=False) for n in range(1_234)]
    body, records, raw = gzip_lines(lines)
    assert gzip.decompress(body) == ("\n".join(lines) + "\n").encode()
    assert (records, raw) == (1_234, len(("\n".join(lines) + "\n").encode()))
    assert gzip_lines(iter(lines))[0] == body
    empty, records, raw = gzip_lines([])
    assert (gzip.decompress(empty), records, raw) == (b"", 0, 0)


def test_what_is_worth_another_try() -> None:
    def client_error(code: str, status: int) -> ClientError:
        response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, "PutObject")

    assert worth_retrying(client_error("SlowDown", 503))
    assert worth_retrying(client_error("InternalError", 500))
    assert worth_retrying(client_error("RequestTimeout", 400))
    assert worth_retrying(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert not worth_retrying(client_error("NoSuchBucket", 404))
    assert not worth_retrying(client_error("AccessDenied", 403))
    assert not worth_retrying(client_error("ExpiredToken", 400))
    assert not worth_retrying(NoCredentialsError())
    assert not worth_retrying(CallNotStarted(operation="PutObject", longest=10.0, left=1.0))


def test_writes_add_up_over_targets() -> None:
    one = ArchiveWritten(objects=1, records=10, bytes=100, raw_bytes=1_000)
    failed = ArchiveWritten(failures=("s3://b/k: SlowDown: slow (gave up after 3 attempts)",))
    assert ArchiveWritten.total([one, failed, one]) == ArchiveWritten(2, 20, 200, 2_000, failed.failures)


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026-11", date(2026, 11, 1), date(2026, 11, 30)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2026-11-30", date(2026, 11, 30), date(2026, 11, 30)),
        ("2026-W48", date(2026, 11, 23), date(2026, 11, 29)),
        ("2026-W01", date(2025, 12, 29), date(2026, 1, 4)),
        (" 2026-11-01..2026-11-15 ", date(2026, 11, 1), date(2026, 11, 15)),
    ],
)
def test_the_periods_a_statement_takes(text: str, first: date, last: date) -> None:
    span = parse_span(text)
    assert (span.first, span.last) == (first, last)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("November", "'November' is not a period: use a month (2026-11), a day (2026-11-30), an ISO week"),
        ("2026-W54", "'2026-W54' is not a period"),
        ("2026-11-1", "'2026-11-1' is not a period"),
        ("2026-11-02..2026-11-01", "ends before it starts"),
        ("2026-01-01..2027-01-02", "covers more than 366 days"),
    ],
)
def test_a_period_that_is_not_one_says_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        parse_span(text)
    assert message in str(raised.value)


def test_the_days_read_are_those_that_can_hold_a_reading_of_a_period_ending_in_the_span() -> None:
    # A month: the week that ended on its first Saturday began up to six days before it.
    assert parse_span("2026-11").earliest_reading() == date(2026, 10, 26)
    # A month's last day: the month itself ends in it.
    assert parse_span("2026-11-30").earliest_reading() == date(2026, 11, 1)
    # Any other day, or a week: only weeks and days end in it.
    assert parse_span("2026-11-12").earliest_reading() == date(2026, 11, 6)
    assert parse_span("2026-W48").earliest_reading() == date(2026, 11, 17)
    days = parse_span("2026-11").days_to_read(today=date(2026, 11, 3))
    assert (days[0], days[-1], len(days)) == (date(2026, 10, 26), date(2026, 11, 3), 9)


def test_bucket_and_prefix_arguments() -> None:
    assert bucket_name("s3://my-archive/") == "my-archive"
    assert key_prefix("archive/records") == "archive/records/"
    with pytest.raises(argparse.ArgumentTypeError, match="is not a bucket name: use 3 to 63 lowercase"):
        bucket_name("My_Bucket")
    with pytest.raises(argparse.ArgumentTypeError, match="no leading /, without the dt= folder"):
        key_prefix("records/dt=2026-11-01/")


def key_record(run_at: str, used: int, remaining: int | None = None, **fields: Any) -> dict[str, Any]:
    """A key record as the runtime writes one; ``remaining`` is the limit less ``used`` unless given."""
    limit: int | None = fields.pop("limit", 1_000)
    if remaining is None and limit is not None:
        remaining = limit - used
    utilization = None if limit is None or remaining is None else 100.0 * (limit - remaining) / limit
    return {
        "record": "key",
        "runAt": run_at,
        "usagePlanId": "p1",
        "usagePlanName": "gold",
        "apiKeyId": "k1",
        "apiKeyName": "partner",
        "period": "MONTH",
        "periodStart": "2026-11-01",
        "used": used,
        "remaining": remaining,
        "limit": limit,
        "utilization": utilization,
        "accountId": "111111111111",
        "region": "us-east-1",
        **fields,
    }


def rows_of(records: list[dict[str, Any]], span: Span | None = None, **options: Any) -> list[Any]:
    builder = StatementBuilder(span or parse_span("2026-11"), now=NOW, **options)
    for record in records:
        builder.add_line(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
    return builder.rows()


def test_the_last_reading_wins_whatever_the_order_and_a_doubled_reading_changes_nothing_else() -> None:
    readings = [
        key_record("2026-11-30T18:00:00Z", 900),
        key_record("2026-11-02T00:00:00Z", 10),
        key_record("2026-11-30T23:45:00Z", 950),
        key_record("2026-11-30T23:45:00Z", 950),
        {"record": "plan", "runAt": "2026-11-30T23:45:00Z", "usagePlanId": "p1", "used": 5},
    ]
    (row,) = rows_of(readings)
    assert (row.used, row.remaining, row.read_at, row.first_read_at) == (
        950,
        50,
        "2026-11-30T23:45:00Z",
        "2026-11-02T00:00:00Z",
    )
    assert (row.readings, row.reached_limit, row.extended) == (4, False, False)
    assert (row.period_start, row.period_end) == (date(2026, 11, 1), date(2026, 12, 1))


def test_running_out_and_an_extension_are_remembered_over_the_later_readings() -> None:
    readings = [
        key_record("2026-11-10T00:00:00Z", 1_000, 0),
        key_record("2026-11-11T00:00:00Z", 1_000, 500),  # extended: 1,500 above the limit
        key_record("2026-11-20T00:00:00Z", 1_200, 300),
    ]
    (row,) = rows_of(readings)
    assert (row.used, row.limit, row.reached_limit, row.extended) == (1_200, 1_000, True, True)


def test_only_periods_that_ended_in_the_span_and_are_over() -> None:
    readings = [
        key_record("2026-10-31T18:00:00Z", 5, periodStart="2026-10-01"),  # ended before November
        key_record("2026-11-30T18:00:00Z", 5, period="DAY", periodStart="2026-11-30", limit=40),
        key_record(
            "2026-11-29T18:00:00Z", 5, period="WEEK", periodStart="2026-11-29", limit=40
        ),  # ends Dec 6
        key_record("2026-11-28T18:00:00Z", 5, period="WEEK", periodStart="2026-11-22", limit=40),
        key_record("2026-12-07T10:00:00Z", 5, period="DAY", periodStart="2026-12-07", limit=40),  # not over
    ]
    assert [(r.period, r.period_start) for r in rows_of(readings)] == [
        ("WEEK", date(2026, 11, 22)),
        ("DAY", date(2026, 11, 30)),
    ]
    december = rows_of(readings, parse_span("2026-12"))
    assert [(r.period, r.period_start) for r in december] == [("WEEK", date(2026, 11, 29))]


def test_filters_match_ids_or_exact_names_and_say_which_named_nothing() -> None:
    odd = 'a "quoted", é\u2028 name'
    readings = [
        key_record("2026-11-30T18:00:00Z", 5),
        key_record("2026-11-30T18:00:00Z", 7, apiKeyId="k2", apiKeyName=odd),
        key_record("2026-11-30T18:00:00Z", 9, usagePlanId="p2", usagePlanName="silver", apiKeyId="k3"),
    ]
    assert [r.api_key_id for r in rows_of(readings, keys=[odd])] == ["k2"]
    assert [r.api_key_id for r in rows_of(readings, plans=["silver"])] == ["k3"]
    assert [r.api_key_id for r in rows_of(readings, plans=["p1"], keys=["k1", "k3"])] == ["k1"]
    builder = StatementBuilder(parse_span("2026-11"), now=NOW, plans=["gold", "glod"], keys=["nobody"])
    for record in readings:
        builder.add(record)
    # gold is in the records: only what names nothing is told, whatever the other filter matched
    assert builder.unknown() == ["--plan 'glod'", "--key 'nobody'"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"record":"key","usagePlanId":"p1"}', "a key record without 'apiKeyId'"),
        (json.dumps(key_record("2026-11-30 18:00", 5)), "runAt is '2026-11-30 18:00', not a UTC time"),
        (json.dumps(key_record("2026-11-30T18:00:00Z", 5, period="YEAR")), "period 'YEAR' is not one of DAY"),
        (json.dumps(key_record("2026-11-30T18:00:00Z", 5, periodStart="soon")), "periodStart is 'soon'"),
        (
            json.dumps({**key_record("2026-11-30T18:00:00Z", 5), "used": "5"}),
            "used is '5', not a whole number",
        ),
    ],
)
def test_a_line_that_is_not_a_readable_record_says_why(line: str, message: str) -> None:
    builder = StatementBuilder(parse_span("2026-11"), now=NOW)
    with pytest.raises(RecordError) as raised:
        builder.add_line(line)
    assert message in str(raised.value)
