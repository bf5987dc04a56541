"""The archive against real parts: the writer against moto's S3, a month of simulated runs of the real
scan against the sandbox (time moved by its clock), the statement read back from that archive by the
CLI and compared with the sandbox's own accounting, and the saved Athena queries parsed as Trino SQL
and run, transpiled, by DuckDB over the same objects."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import duckdb
import pytest
import sqlglot
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config

from apigw_sandbox.account import SandboxAccount
from infra.archive_queries import AT_LIMIT, COLUMNS, NAMED_QUERIES, PLAN_TREND, STATEMENT, TOP_KEYS, query_sql
from quota_monitor.clients import apigateway_client
from quota_monitor.config import Settings
from quota_monitor.models import Target
from quota_monitor.monitor import RunReport, records
from quota_monitor.publish.archive import CONTENT_TYPE, ArchiveWritten, archive_target, object_key, target_id
from quota_monitor.publish.records import target_record, write_records
from quota_monitor.read.calls import ApiGatewayCalls, RetryPolicy
from quota_monitor.read.scan import scan_account
from quota_monitor_cli.main import main
from quota_monitor_cli.statement import Span, StatementBuilder, StatementRow, parse_span, read_archive
from tests.conftest import CLOSED_PORT, health_metric

if TYPE_CHECKING:
    from collections.abc import Iterator

    from apigw_sandbox.local import LocalCloud

ACCOUNT = "123456789012"  # moto's, and the sandbox's, default account
REGION = "us-east-1"
TARGET = Target(ACCOUNT, REGION)
BUCKET = "quota-archive"
NOVEMBER = parse_span("2026-11")
#: One run every 6 hours from a week before November to the first runs of December.
FIRST_RUN = datetime(2026, 10, 25, tzinfo=UTC)
LAST_RUN = datetime(2026, 12, 1, 6, tzinfo=UTC)
STEP = timedelta(hours=6)
EXTENDED_AT = datetime(2026, 11, 16, tzinfo=UTC)
CREATED_AT = datetime(2026, 11, 10, 12, tzinfo=UTC)
SETTINGS = Settings.from_env({})


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's client-side rate limit, opened up: the sandbox is not the account's budget."""
    monkeypatch.setenv("APIGATEWAY_MAX_RPS", "10")
    monkeypatch.setenv("APIGATEWAY_BURST", "40")


def gunzip_lines(body: bytes) -> list[str]:
    """An object's lines, split on newlines only (a name may hold U+2028, which splitlines splits on)."""
    text = gzip.decompress(body).decode("utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def stored(s3: Any, bucket: str = BUCKET) -> dict[str, bytes]:
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


# -- the writer -------------------------------------------------------------------------------------
def a_scan(cloud: LocalCloud, account: SandboxAccount, now: datetime) -> tuple[Any, list[str]]:
    """A real scan of the sandbox at ``now`` and its records, as the handler logs them."""
    plan = account.create_usage_plan("gold", limit=1_000, period="MONTH")
    for name in ("alpha", "bêta\u2028line", 'quote " and , comma'):
        key = account.create_api_key(name)
        account.attach_key(plan, key)
        account.record_usage(plan, key, 100, day=now.date())
    api = ApiGatewayCalls(apigateway_client(), policy=RetryPolicy(base_delay=0.01, max_delay=0.05))
    result = scan_account(api, now=now, target=TARGET)
    return result, list(records(RunReport(result=result, published=None), SETTINGS))


def test_a_run_is_one_object_byte_identical_to_its_logged_records(
    cloud: LocalCloud, account: SandboxAccount
) -> None:
    # GIVEN a real scan's records, and what the handler would write of them to its log
    now = datetime(2026, 12, 7, 22, 15, 9, tzinfo=UTC)
    result, lines = a_scan(cloud, account, now)
    lines.append(target_record(result, metrics_published=True))
    logged = io.StringIO()
    write_records(lines, logged.write)
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=BUCKET)

    # WHEN the run is archived
    written = archive_target(s3, BUCKET, run_at=result.scanned_at, target=TARGET, lines=lines)

    # THEN one object, named by the run's date, time and target, holds exactly the logged bytes
    objects = stored(s3)
    key = f"records/dt=2026-12-07/20261207T221509Z-{target_id(TARGET)}.jsonl.gz"
    assert list(objects) == [key] == [object_key(now, TARGET)]
    assert gzip.decompress(objects[key]) == logged.getvalue().encode("utf-8")
    assert gunzip_lines(objects[key]) == lines
    assert len(lines) == 5  # three keys, the plan, the target
    assert written == ArchiveWritten(
        objects=1, records=5, bytes=len(objects[key]), raw_bytes=len(logged.getvalue().encode())
    )
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == CONTENT_TYPE == "application/gzip"
    assert "ContentEncoding" not in head  # a .gz file, not a transfer encoding (see CONTENT_TYPE)
    assert written.summary() == {
        "archiveObjects": 1,
        "archiveRecords": 5,
        "archiveBytes": len(objects[key]),
        "archiveFailures": 0,
    }


def test_each_target_gets_its_own_object_and_a_write_sent_twice_replaces_itself(cloud: LocalCloud) -> None:
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    at = datetime(2026, 11, 30, 23, 45, tzinfo=UTC)
    other = Target("210987654321", "eu-west-1", role_arn="arn:aws:iam::210987654321:role/r", home=False)

    written = ArchiveWritten.total(
        archive_target(s3, BUCKET, run_at=at, target=target, lines=[f'{{"record":"target","n":{n}}}'])
        for n, target in enumerate([TARGET, other, TARGET])
    )

    objects = stored(s3)
    assert sorted(objects) == sorted({object_key(at, TARGET), object_key(at, other)})
    assert all(key.startswith("records/dt=2026-11-30/20261130T234500Z-") for key in objects)
    assert (written.objects, written.records, written.failures) == (3, 3, ())
    # The second write of the same run and target replaced the first: no doubled reading.
    assert gunzip_lines(objects[object_key(at, TARGET)]) == ['{"record":"target","n":2}']
    assert gzip.decompress(objects[object_key(at, other)]) == b'{"record":"target","n":1}\n'


def test_no_lines_no_object_and_a_bad_attempts_count_is_refused(cloud: LocalCloud) -> None:
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    assert archive_target(s3, BUCKET, run_at=now, target=TARGET, lines=[]) == ArchiveWritten()
    assert stored(s3) == {}
    with pytest.raises(ValueError, match=r"attempts=0 is not allowed: use a whole number from 1 to 10"):
        archive_target(s3, BUCKET, run_at=now, target=TARGET, lines=["{}"], attempts=0)


def test_a_bucket_that_does_not_exist_is_a_failure_counted_at_once_not_raised(cloud: LocalCloud) -> None:
    s3 = cloud.client("s3")
    sleeps: list[float] = []
    written = archive_target(
        s3,
        "no-such-bucket",
        run_at=datetime(2026, 11, 30, tzinfo=UTC),
        target=TARGET,
        lines=["{}", "{}"],
        sleep=sleeps.append,
    )
    assert (written.objects, written.records, sleeps) == (0, 0, [])
    (failure,) = written.failures
    assert failure.startswith("s3://no-such-bucket/records/dt=2026-11-30/20261130T000000Z-")
    assert "(2 records): NoSuchBucket: " in failure
    assert failure.endswith("(gave up after 1 attempt)")
    assert written.summary()["archiveFailures"] == 1


def test_an_endpoint_that_refuses_connections_is_tried_three_times_then_counted() -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=CLOSED_PORT,
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2),
    )
    calls: list[str] = []
    s3.meta.events.register("before-send.s3.PutObject", lambda **_: calls.append("PutObject"))
    sleeps: list[float] = []

    written = archive_target(
        s3,
        BUCKET,
        run_at=datetime(2026, 11, 30, tzinfo=UTC),
        target=TARGET,
        lines=["{}"],
        sleep=sleeps.append,
    )

    assert (len(calls), sleeps) == (3, [0.25, 0.5])
    (failure,) = written.failures
    assert "EndpointConnectionError" in failure
    assert failure.endswith("(gave up after 3 attempts)")


def test_a_slow_down_is_retried_with_backoff_and_the_object_is_stored(cloud: LocalCloud) -> None:
    s3 = cloud.client("s3", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    s3.create_bucket(Bucket=BUCKET)
    sent: list[str] = []

    def slow_down_twice(request: Any, **_: Any) -> AWSResponse | None:
        sent.append(request.url)
        if len(sent) > 2:
            return None
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return AWSResponse(request.url, 503, HTTPHeaders(), _Raw(body))

    s3.meta.events.register("before-send.s3.PutObject", slow_down_twice)
    sleeps: list[float] = []
    at = datetime(2026, 11, 30, tzinfo=UTC)

    written = archive_target(s3, BUCKET, run_at=at, target=TARGET, lines=["{}"], sleep=sleeps.append)

    assert (len(sent), sleeps, written.objects, written.failures) == (3, [0.25, 0.5], 1, ())
    assert list(stored(s3)) == [object_key(at, TARGET)]


@dataclass
class _Raw:
    """The raw stream an AWSResponse reads its body from."""

    body: bytes

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


# -- a month of runs --------------------------------------------------------------------------------
@dataclass
class Simulated:
    """A month of runs: the sandbox account that served them, and the archive they wrote."""

    account: SandboxAccount
    plans: dict[str, str]
    keys: dict[str, tuple[str, str]]
    objects: dict[str, bytes]
    runs: int
    archived: ArchiveWritten
    lines: list[str] = field(default_factory=list)

    def upload(self, s3: Any) -> None:
        s3.create_bucket(Bucket=BUCKET)
        for key, body in self.objects.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def save(self, root: Path) -> Path:
        for key, body in self.objects.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        return root / "records"


#: Requests a key sends before each run: (plan, base per run). Names are the keys' own.
TRAFFIC = {
    "d-light": ("daily", 5),  # 20 a day of 40
    "d-heavy": ("daily", 15),  # runs out at the third run of each day
    "w-light": ("weekly", 8),  # 32 a day, 224 a week of 300
    "w-heavy": ("weekly", 12),  # runs out on the seventh day of each week
    "m-light": ("monthly", 10),  # about 1,200 a month of 2,000
    "m-heavy": ("monthly", 20),  # about 84 a day: runs out near the end of the month
    "m-extended": ("monthly", 40),  # runs out on the 13th, extended on the 16th, runs out again
    "m-new": ("monthly", 30),  # created on the 10th at noon; runs out too
    "free": ("unlimited", 7),
}


def simulate(cloud: LocalCloud) -> Simulated:
    """Every 6 hours from FIRST_RUN to LAST_RUN: each key's traffic, then a real scan of the sandbox
    at that time, its records made as the handler makes them, written by the archive writer to moto."""
    clock = [FIRST_RUN]
    account = SandboxAccount(clock=lambda: clock[0])
    cloud.sandbox.use_account(account)
    plans = {
        "daily": account.create_usage_plan("daily", limit=40, period="DAY", created=date(2026, 1, 1)),
        "weekly": account.create_usage_plan("weekly", limit=300, period="WEEK", created=date(2026, 1, 1)),
        "monthly": account.create_usage_plan(
            "monthly", limit=2_000, period="MONTH", created=date(2026, 1, 1)
        ),
        "unlimited": account.create_usage_plan("unlimited", created=date(2026, 1, 1)),
    }
    keys: dict[str, tuple[str, str]] = {}

    def add_key(name: str) -> None:
        plan = plans[TRAFFIC[name][0]]
        key = account.create_api_key(name)
        account.attach_key(plan, key)
        keys[name] = (plan, key)

    for name in TRAFFIC:
        if name != "m-new":
            add_key(name)
    apigateway = cloud.client("apigateway")
    api = ApiGatewayCalls(apigateway, policy=RetryPolicy(base_delay=0.01, max_delay=0.05))
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    archived, runs, lines = ArchiveWritten(), 0, []
    at = FIRST_RUN
    while at <= LAST_RUN:
        clock[0] = at
        if at == CREATED_AT:
            add_key("m-new")
        if at == EXTENDED_AT:
            account.update_remaining(*keys["m-extended"], 500)
        for name, (plan, key) in keys.items():
            account.record_usage(plan, key, TRAFFIC[name][1] + runs % 3, day=at.date())
        result = scan_account(api, now=at, target=TARGET)
        assert not result.failures
        run_lines = list(records(RunReport(result=result, published=None), SETTINGS))
        archived += archive_target(s3, BUCKET, run_at=at, target=TARGET, lines=run_lines)
        lines += run_lines
        runs += 1
        at += STEP
    return Simulated(account, plans, keys, stored(s3), runs, archived, lines)


@pytest.fixture(scope="module")
def simulated(local_cloud: LocalCloud) -> Simulated:
    """One month of runs for the whole module (each test's ``cloud`` starts afresh: tests that need
    the bucket or the account put them back)."""
    local_cloud.reset_moto()
    return simulate(local_cloud)


def sandbox_truth(sim: Simulated, plan: str, key: str, start: date, end: date) -> tuple[int, int, bool]:
    """The sandbox's own accounting of one key's period: used, remaining at its end, and whether any
    day ended with nothing left."""
    days = sim.account.daily_usage(plan, key, start, end - timedelta(days=1))
    return sum(used for used, _ in days), days[-1][1], any(remaining == 0 for _, remaining in days)


def expected_periods(sim: Simulated) -> set[tuple[str, str, date]]:
    """(plan name, key name, start) of every quota period whose last day is in November."""
    periods = set()
    for name, (plan_name, _) in TRAFFIC.items():
        if plan_name == "daily":
            starts = [date(2026, 11, day) for day in range(1, 31)]
        elif plan_name == "weekly":  # Sunday to Saturday: November 1 was a Sunday
            starts = [date(2026, 11, day) for day in (1, 8, 15, 22)]
        else:
            starts = [date(2026, 11, 1)]
        periods |= {(plan_name, name, start) for start in starts}
    return periods


def test_a_month_of_runs_is_one_object_a_run(simulated: Simulated) -> None:
    assert simulated.runs == (LAST_RUN - FIRST_RUN) // STEP + 1 == 150
    assert simulated.archived.objects == len(simulated.objects) == simulated.runs
    assert simulated.archived.failures == ()
    assert simulated.archived.records == len(simulated.lines)
    days = Counter(key.split("/")[1] for key in simulated.objects)
    # Four runs a day from October 25 to November 30, and the first two of December 1.
    assert Counter(days.values()) == {4: 37, 2: 1}
    assert days["dt=2026-12-01"] == 2


def test_the_statement_of_november_equals_the_sandboxs_own_accounting(
    simulated: Simulated, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the month's archive in the bucket
    simulated.upload(cloud.client("s3"))

    # WHEN the statement of November is asked for
    code, out, err = statement(capsys, "--period", "2026-11", "--json")

    # THEN every period that ended in November is there, once, with the sandbox's numbers
    assert code == 0, err
    document = json.loads(out)
    assert (document["from"], document["to"]) == ("2026-11-01", "2026-11-30")
    assert document["usedIs"].startswith("used is the last reading before the reset")
    rows = document["periods"]
    assert {(r["usagePlanName"], r["apiKeyName"], date.fromisoformat(r["periodStart"])) for r in rows} == (
        expected_periods(simulated)
    )
    assert len(rows) == 60 + 8 + 4 + 1
    for row in rows:
        plan, key = simulated.keys[row["apiKeyName"]]
        start, end = date.fromisoformat(row["periodStart"]), date.fromisoformat(row["periodEnd"])
        used, remaining, ran_out = sandbox_truth(simulated, plan, key, start, end)
        where = f"{row['apiKeyName']} {row['period']} {start}"
        assert row["used"] == used, where
        assert (row["accountId"], row["region"], row["usagePlanId"], row["apiKeyId"]) == (
            ACCOUNT,
            REGION,
            plan,
            key,
        )
        # The last reading of each period was the last run before its reset, at 18:00 on its last day.
        assert row["readAt"] == f"{end - timedelta(days=1)}T18:00:00Z", where
        if row["limit"] is None:
            assert row["usagePlanName"] == "unlimited"
            assert (row["remaining"], row["reachedLimit"], row["extended"]) == (None, None, None)
            continue
        assert (row["remaining"], row["reachedLimit"]) == (remaining, ran_out), where
        assert row["extended"] == (row["apiKeyName"] == "m-extended"), where
    by_name = {(r["apiKeyName"], r["periodStart"]): r for r in rows}
    # A key extended mid-period: used counts every request served, past the limit; it ran out too.
    extended = by_name["m-extended", "2026-11-01"]
    assert extended["used"] > extended["limit"] == 2_000
    assert extended["reachedLimit"] is True
    # A key created mid-period: read from its first run on, used what it used since.
    new = by_name["m-new", "2026-11-01"]
    assert new["firstReadAt"] == "2026-11-10T12:00:00Z"
    assert new["readings"] == 20 * 4 + 2
    assert by_name["m-light", "2026-11-01"]["readings"] == 30 * 4
    assert by_name["d-heavy", "2026-11-07"]["reachedLimit"] is True
    assert by_name["d-light", "2026-11-07"]["reachedLimit"] is False
    assert by_name["w-heavy", "2026-11-08"]["reachedLimit"] is True
    assert "read 150 objects" not in err  # only the days that can hold November's periods
    assert "read 144 objects" in err  # October 26 to November 30: 36 days of 4 runs


def statement(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["statement", "--bucket", BUCKET, *args])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_day_a_week_and_the_filters_choose_the_periods_that_ended_in_them(
    simulated: Simulated, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    simulated.upload(cloud.client("s3"))

    code, out, _ = statement(capsys, "--period", "2026-11-30", "--json")
    assert code == 0
    ended = {(r["apiKeyName"], r["period"]) for r in json.loads(out)["periods"]}
    # The day's DAY periods, and the month that ended with it; no week ended on a Monday.
    assert ended == {(name, "DAY") for name in ("d-light", "d-heavy")} | {
        (name, "MONTH") for name in ("m-light", "m-heavy", "m-extended", "m-new", "free")
    }

    code, out, _ = statement(capsys, "--period", "2026-W48", "--csv", "--plan", "weekly", "--key", "w-heavy")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("accountId,region,usagePlanId,usagePlanName,apiKeyId,apiKeyName,period,")
    # ISO week 48 is Monday November 23 to Sunday 29: the quota week of the 22nd ended in it.
    assert [line.split(",")[7] for line in lines[1:]] == ["2026-11-22"]

    code, out, err = statement(capsys, "--period", "2026-11-01..2026-11-02", "--key", "d-light")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "Plan", "Key", "name", "Key", "id", "Period", "Start", "End", "(reset)", "Limit", "Used",
        "Read", "at", "(UTC)", "Reached", "Notes",
    ]  # fmt: skip
    assert len(out.splitlines()) == 1 + 2 + 1
    assert out.splitlines()[-1].startswith("Note: used is the last reading before the reset")

    code, out, err = statement(capsys, "--period", "2026-11", "--key", "m-extended", "--key", "m-new", "-q")
    assert (code, err) == (0, "")
    notes = {line.split()[1]: line.split("  ")[-1] for line in out.splitlines()[1:-1]}
    assert notes == {"m-extended": "extended", "m-new": "first read 2026-11-10 12:00"}

    code, _, err = statement(capsys, "--period", "2026-11", "--plan", "glod")
    assert code == 2
    assert "--plan 'glod': names nothing in the archive's key records of 2026-10-26 to 2026-11-30" in err
    # A plan that exists with a key that does not: only the key is named
    code, _, err = statement(capsys, "--period", "2026-11", "--plan", "monthly", "--key", "m-typo")
    assert code == 2
    assert "--key 'm-typo': names nothing" in err
    assert "--plan" not in err


def test_the_statement_warns_of_days_without_objects_and_fails_on_an_unreadable_one(
    simulated: Simulated, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = cloud.client("s3")
    simulated.upload(s3)
    for key in list(simulated.objects):
        if key.startswith(("records/dt=2026-11-03/", "records/dt=2026-11-04/")):
            s3.delete_object(Bucket=BUCKET, Key=key)
    broken = "records/dt=2026-11-05/20261105T030000Z-00000000.jsonl.gz"
    s3.put_object(Bucket=BUCKET, Key=broken, Body=b"not gzip")

    code, out, err = statement(capsys, "--period", "2026-11-04", "--csv")

    assert code == 0
    assert len(out.splitlines()) == 1  # the header: the DAY periods of the 4th had no reading
    assert "warning: no archive objects for 2 of " in err
    assert ": 2026-11-03..2026-11-04" in err
    assert "error: s3://quota-archive/" + broken + ": not a gzip file" not in err  # not a day read

    code, out, err = statement(capsys, "--period", "2026-11-05", "--csv")
    assert code == 1
    assert f"error: s3://quota-archive/{broken}: not a gzip file" in err
    assert len(out.splitlines()) == 1 + 2


def test_a_missing_bucket_and_bad_arguments_are_usage_errors(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = statement(capsys, "--period", "2026-11")
    assert (code, out) == (2, "")
    assert "--bucket quota-archive: no such bucket" in err
    for period, message in [
        ("2026-13", "'2026-13' is not a period: use a month (2026-11), a day (2026-11-30), an ISO week"),
        ("2026-11-31", "'2026-11-31' is not a period"),
        ("2026-12-01..2026-11-01", "'2026-12-01..2026-11-01' ends before it starts"),
        ("2025-01-01..2026-06-01", "covers more than 366 days"),
    ]:
        code, _, err = statement(capsys, "--period", period)
        assert code == 2
        assert message in err
    code, _, err = statement(capsys, "--period", "2099-01")
    assert code == 2
    assert "--period 2099-01 has not begun: today is " in err
    with pytest.raises(SystemExit):
        main(["statement", "--bucket", "Not_A_Bucket", "--period", "2026-11"])
    assert "is not a bucket name: use 3 to 63 lowercase letters, digits, dots and hyphens" in (
        capsys.readouterr().err
    )


def test_exact_asks_getusage_once_per_plan_and_period_and_shows_the_difference(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN two runs on the last day of November, and traffic after the last of them
    clock = [datetime(2026, 11, 30, 12, tzinfo=UTC)]
    account = SandboxAccount(clock=lambda: clock[0])
    cloud.sandbox.use_account(account)
    monthly = account.create_usage_plan("monthly", limit=5_000, period="MONTH", created=date(2026, 1, 1))
    daily = account.create_usage_plan("daily", limit=100, period="DAY", created=date(2026, 1, 1))
    keys = {name: account.create_api_key(name) for name in ("a", "b", "c")}
    for key in ("a", "b"):
        account.attach_key(monthly, keys[key])
        account.record_usage(monthly, keys[key], 1_000, day=date(2026, 11, 12))
    account.attach_key(daily, keys["c"])
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    api = ApiGatewayCalls(apigateway_client(), policy=RetryPolicy(base_delay=0.01, max_delay=0.05))
    for hour in (12, 18):
        clock[0] = datetime(2026, 11, 30, hour, tzinfo=UTC)
        for plan, key in ((monthly, "a"), (monthly, "b"), (daily, "c")):
            account.record_usage(plan, keys[key], 10, day=clock[0].date())
        result = scan_account(api, now=clock[0], target=TARGET)
        lines = records(RunReport(result=result, published=None), SETTINGS)
        assert archive_target(s3, BUCKET, run_at=clock[0], target=TARGET, lines=lines).objects == 1
    account.record_usage(monthly, keys["a"], 7, day=date(2026, 11, 30))  # after the last reading
    account.record_usage(daily, keys["c"], 3, day=date(2026, 11, 30))
    cloud.sandbox.reset_counters()

    # WHEN the statement of the day is asked for, exactly
    code, out, err = statement(capsys, "--period", "2026-11-30", "--exact", "--json")

    # THEN one GetUsage for the month's two keys, one for the day's key, and the difference each
    assert code == 0, err
    assert cloud.sandbox.calls["GetUsage"] == 2
    assert "--exact: 2 GetUsage calls for 2 plan periods" in err
    document = json.loads(out)
    assert document["exactIs"].startswith("exact is GetUsage's own count for the closed period")
    got = {
        r["apiKeyName"]: (r["used"], r["exactUsed"], r["difference"], r["exactRemaining"])
        for r in document["periods"]
    }
    assert got == {
        "a": (1_020, 1_027, 7, 5_000 - 1_027),
        "b": (1_020, 1_020, 0, 5_000 - 1_020),
        "c": (20, 23, 3, 100 - 23),
    }

    # AND with one key of a plan, the call names the key
    code, out, err = statement(capsys, "--period", "2026-11-30", "--exact", "--key", "b", "--csv")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.endswith(",exactUsed,exactRemaining,difference")
    assert row.endswith(",1020,3980,0")
    assert cloud.sandbox.calls["GetUsage"] == 3

    # AND a key that has left its plan since has no exact count, and a warning says why
    account.delete_api_key(keys["c"])
    code, out, err = statement(capsys, "--period", "2026-11-30", "--exact", "--key", "c", "--json")
    assert code == 0, err
    ((row,),) = [json.loads(out)["periods"]]
    assert (row["used"], row["exactUsed"], row["difference"]) == (20, None, None)
    assert "warning: --exact: GetUsage had nothing for 1 of the periods (the key left the plan" in err


# -- Athena's queries, in DuckDB --------------------------------------------------------------------
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "array<int>": "INTEGER[]",
}


def duckdb_archive(root: Path) -> duckdb.DuckDBPyConnection:
    """The Glue table, in DuckDB: the same columns and types over the same gzip JSON Lines, with
    ``dt`` from the ``dt=`` folder of each object, as partition projection gives it."""
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA archive")
    columns = ", ".join(f"'{name}': '{DUCKDB_TYPES[type_]}'" for name, type_ in COLUMNS)
    connection.execute(
        f"""CREATE VIEW archive.records AS
        SELECT * FROM read_json('{root}/dt=*/*.jsonl.gz', format = 'newline_delimited',
            compression = 'gzip', columns = {{{columns}}}, hive_partitioning = true,
            hive_types = {{'dt': 'VARCHAR'}})"""
    )
    return connection


def run_query(connection: duckdb.DuckDBPyConnection, sql: str, parameters: list[str]) -> list[dict[str, Any]]:
    duck = sqlglot.transpile(sql, read="trino", write="duckdb")[0]
    cursor = connection.execute(duck, parameters)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_every_saved_query_parses_as_athena_sql_and_its_parameters_are_counted() -> None:
    for query in NAMED_QUERIES:
        sql = query_sql(query, database="archive")
        parsed = sqlglot.parse_one(sql, read="trino")
        assert parsed is not None
        assert sql.count("?") == len(query.parameters), query.name
        assert "{" not in sql, query.name


def test_the_statement_query_gives_the_statement_the_cli_gives(simulated: Simulated, tmp_path: Path) -> None:
    connection = duckdb_archive(simulated.save(tmp_path))
    rows = run_query(
        connection,
        query_sql(STATEMENT, database="archive"),
        ["2026-11-01", "2026-12-01", "2026-11-01", "2026-12-01"],
    )
    cli = cli_rows(simulated, NOVEMBER)
    assert len(cli) == 73
    assert [as_sql_row(row) for row in cli] == [normalized(row) for row in rows]


def cli_rows(sim: Simulated, span: Span) -> list[StatementRow]:
    """The statement as the CLI makes it, from the archive's objects."""
    builder = StatementBuilder(span, now=datetime.now(UTC))
    for key in sorted(sim.objects):
        for line in gunzip_lines(sim.objects[key]):
            builder.add_line(line)
    return builder.rows()


def as_sql_row(row: StatementRow) -> dict[str, Any]:
    return {
        "account_id": row.account_id,
        "region": row.region,
        "usage_plan_id": row.usage_plan_id,
        "usage_plan_name": row.usage_plan_name,
        "api_key_id": row.api_key_id,
        "api_key_name": row.api_key_name,
        "period": row.period,
        "period_start": row.period_start,
        "period_end": row.period_end,
        "quota_limit": row.limit,
        "used": row.used,
        "remaining": row.remaining,
        "utilization": row.utilization,
        "read_at": row.read_at,
        "first_read_at": row.first_read_at,
        "readings": row.readings,
        "reached_limit": row.reached_limit,
        "extended": row.extended,
    }


def normalized(row: dict[str, Any]) -> dict[str, Any]:
    """DuckDB's answer in the CLI's terms: dates as dates."""
    return {name: value.date() if isinstance(value, datetime) else value for name, value in row.items()}


def test_top_keys_plan_trend_and_keys_at_their_limit_agree_with_the_records(
    simulated: Simulated, tmp_path: Path
) -> None:
    connection = duckdb_archive(simulated.save(tmp_path))
    month = ["2026-11-01", "2026-12-01"]
    statement_rows = cli_rows(simulated, NOVEMBER)

    # The top keys: the statement's periods summed per key, most used first.
    top = run_query(connection, query_sql(TOP_KEYS, database="archive"), month + month)
    per_key: Counter[tuple[str, str]] = Counter()
    for row in statement_rows:
        per_key[row.usage_plan_id, row.api_key_id] += row.used
    assert [(r["usage_plan_id"], r["api_key_id"], r["used"]) for r in top] == sorted(
        ((plan, key, used) for (plan, key), used in per_key.items()), key=lambda row: (-row[2], row[:2])
    )
    by_name = {r["api_key_name"]: r for r in top}
    assert (by_name["d-heavy"]["periods"], by_name["d-heavy"]["periods_at_limit"]) == (30, 30)
    assert (by_name["m-extended"]["periods"], by_name["m-extended"]["periods_at_limit"]) == (1, 1)

    # A plan's trend: the last plan record of each day.
    plan_records = [json.loads(line) for line in simulated.lines if line.startswith('{"record":"plan"')]
    trend = run_query(
        connection, query_sql(PLAN_TREND, database="archive"), [simulated.plans["monthly"], *month]
    )
    expected = {}
    for record in plan_records:
        if record["usagePlanId"] == simulated.plans["monthly"] and record["runAt"].startswith("2026-11"):
            expected[record["runAt"][:10]] = (record["runAt"], record["used"], record["keys"])
    assert [(r["day"], r["read_at"], r["used"], r["keys"]) for r in trend] == [
        (day, *values) for day, values in sorted(expected.items())
    ]
    # m-new from November 10 at noon on.
    assert (trend[8]["keys"], trend[9]["keys"]) == (3, 4)

    # Keys at their limit: the first reading of each period that found nothing left.
    at_limit = run_query(connection, query_sql(AT_LIMIT, database="archive"), month)
    firsts: dict[tuple[str, str], str] = {}
    for line in simulated.lines:
        record = json.loads(line)
        if record["record"] == "key" and record["runAt"].startswith("2026-11") and record["remaining"] == 0:
            pair = (record["apiKeyName"], record["periodStart"])
            firsts[pair] = min(firsts.get(pair, record["runAt"]), record["runAt"])
    assert {(r["api_key_name"], r["period_start"]): r["first_read_at_limit"] for r in at_limit} == firsts
    assert firsts["m-extended", "2026-11-01"].startswith("2026-11-13T")  # 2,000 at about 164 a day
    assert {name for name, _ in firsts} == {"d-heavy", "w-heavy", "m-heavy", "m-extended", "m-new"}


def test_reading_the_archive_counts_objects_and_bytes(simulated: Simulated, cloud: LocalCloud) -> None:
    s3 = cloud.client("s3")
    simulated.upload(s3)
    builder = StatementBuilder(NOVEMBER, now=datetime.now(UTC))
    read = read_archive(s3, BUCKET, "records/", NOVEMBER.days_to_read(date(2026, 12, 7)), builder.add_line)
    read_days = {f"records/dt={day}/" for day in NOVEMBER.days_to_read(date(2026, 12, 7))}
    expected = [
        body for key, body in simulated.objects.items() if key[: len("records/dt=2026-11-01/")] in read_days
    ]
    assert (read.objects, read.bytes, read.failures, read.empty_days) == (
        len(expected),
        sum(len(body) for body in expected),
        [],
        [],
    )
    assert builder.rows() == cli_rows(simulated, NOVEMBER)


def test_exact_names_a_plan_getusage_failed_for_and_leaves_other_accounts_and_bad_lines_out(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a run of this account, a run of another account's target, and an object with a bad line
    at = datetime(2026, 11, 30, 18, tzinfo=UTC)
    account = SandboxAccount(clock=lambda: at)
    cloud.sandbox.use_account(account)
    daily = account.create_usage_plan("daily", limit=100, period="DAY", created=date(2026, 1, 1))
    monthly = account.create_usage_plan("monthly", limit=100, period="MONTH", created=date(2026, 1, 1))
    for plan, name in ((daily, "d"), (monthly, "m")):
        key = account.create_api_key(name)
        account.attach_key(plan, key)
        account.record_usage(plan, key, 100, day=at.date())  # both run out
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    api = ApiGatewayCalls(apigateway_client(), policy=RetryPolicy(base_delay=0.01, max_delay=0.05))
    lines = list(
        records(RunReport(result=scan_account(api, now=at, target=TARGET), published=None), SETTINGS)
    )
    archive_target(s3, BUCKET, run_at=at, target=TARGET, lines=lines)
    elsewhere = Target("999999999999", "eu-west-1", home=False)
    moved = [
        json.dumps({**json.loads(line), "accountId": "999999999999", "region": "eu-west-1"}) for line in lines
    ]
    archive_target(s3, BUCKET, run_at=at, target=elsewhere, lines=moved)
    bad = "records/dt=2026-11-30/20261130T190000Z-ffffffff.jsonl.gz"
    s3.put_object(Bucket=BUCKET, Key=bad, Body=gzip.compress(f"{lines[0]}\nnot json\n{lines[1]}\n".encode()))
    # AND GetUsage failing for the daily plan, and answering the monthly plan's key with a day short
    cloud.sandbox.faults.add("internal-error", operation="GetUsage", plan_id=daily)
    cloud.sandbox.faults.add("bad-entry", operation="GetUsage", plan_id=monthly, shape="fewer-days")

    # WHEN the statement of the day is asked for, exactly, with one attempt a call
    code, out, err = statement(capsys, "--period", "2026-11-30", "--exact", "--max-attempts", "1")

    # THEN both accounts' periods are shown, with where they are, and what could not be read is named
    assert code == 1
    header, *rows, note = out.splitlines()
    assert header.split()[:2] == ["Account", "Region"]
    assert (
        sorted(row.split()[:2] for row in rows)
        == [["123456789012", "us-east-1"]] * 2 + [["999999999999", "eu-west-1"]] * 2
    )
    assert all(" yes " in row for row in rows)
    assert note.startswith("Note: used is the last reading before the reset")
    assert f"error: s3://{BUCKET}/{bad}, line 2: not JSON" in err
    assert "the rest of the object skipped" in err
    assert f"error: usage plan {daily}, 2026-11-30 to 2026-11-30: InternalFailure" in err
    assert f"error: usage plan {monthly}, key " in err
    assert "29 daily entries for a range of 30 days" in err  # a day short: no exact count, not a wrong one
    assert "warning: --exact: 2 periods are of other accounts or regions than the credentials'" in err


def test_the_handler_archives_what_it_logs_and_counts_a_bucket_it_cannot_write(
    cloud: LocalCloud,
    account: SandboxAccount,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN ARCHIVE_BUCKET set, as the stack sets it with -c archive=true
    from apigw_sandbox.local import invoke_handler  # noqa: PLC0415
    from apigw_sandbox.seed import seed_demo_account  # noqa: PLC0415

    seed_demo_account(account)
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)

    # WHEN the full scan's handler runs
    summary = invoke_handler("quota_monitor.handler", {})

    # THEN its records are in one object, line for line what it logged
    logged = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"record":')]
    ((_, body),) = stored(s3).items()
    assert gunzip_lines(body) == logged
    assert (summary["archiveObjects"], summary["archiveRecords"], summary["archiveFailures"]) == (
        1,
        len(logged),
        0,
    )
    # AND a bucket it cannot write is counted, logged and published as ArchiveFailures; the run stands
    monkeypatch.setenv("ARCHIVE_BUCKET", "no-such-archive-bucket")
    failed = invoke_handler("quota_monitor.handler", {})
    assert (failed["archiveObjects"], failed["archiveFailures"], failed["scanErrors"]) == (0, 1, 0)
    assert "archive not written" in [record.getMessage() for record in caplog.records]
    assert health_metric(cloud, "ArchiveFailures") == [1.0]


def test_glue_takes_the_stacks_database_and_table_as_synthesized(cloud: LocalCloud, tmp_path: Path) -> None:
    """The template's DatabaseInput and TableInput, given to Glue's own API (moto; botocore checks
    every field against Glue's model first): taken, and read back as written."""
    from tests.infra.test_archive import build  # noqa: PLC0415 - a synth, for this test only
    from tests.infra_support import render  # noqa: PLC0415

    built = build(tmp_path)
    _, database = built.one("AWS::Glue::Database")
    _, table = built.one("AWS::Glue::Table")
    properties = render(table["Properties"])
    table_input = properties["TableInput"]
    # The deploy-time values, as CloudFormation fills them in
    table_input["Parameters"]["storage.location.template"] = f"s3://{BUCKET}/records/dt=${{dt}}/"
    table_input["StorageDescriptor"]["Location"] = f"s3://{BUCKET}/records/"
    glue = cloud.client("glue")

    glue.create_database(DatabaseInput=database["Properties"]["DatabaseInput"])
    glue.create_table(DatabaseName=properties["DatabaseName"], TableInput=table_input)

    got = glue.get_table(DatabaseName=properties["DatabaseName"], Name="records")["Table"]
    assert got["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert got["StorageDescriptor"]["Columns"] == table_input["StorageDescriptor"]["Columns"]
    assert (
        got["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    )
    assert got["Parameters"]["projection.dt.type"] == "date"
