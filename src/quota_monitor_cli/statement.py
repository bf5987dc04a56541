"""``quota-monitor statement``: each key's usage in each quota period that ended in a month, a week or
a day, read back from the archive (docs/archive.md).

A row is one key and one of its plan's quota periods (DAY, WEEK or MONTH, as its records say, with
the start they give; the end is the next period's start) whose last day is in the range and which
is over: the last reading of the period (``used``, and when it was taken), how many readings there
were, whether any of them found the quota spent, and whether an UpdateUsage raised the key's
remaining above what its limit allows (``extended``: ``used`` counts requests, which no extension
takes back, so it can pass the limit). ``used`` is the last reading before the reset, up to one run
interval plus GetUsage's lag before the period's end; ``--exact`` asks GetUsage for the closed
period itself, one call per plan and period (a page per 500 keys), and shows both.

A key created during a period has readings from its first run on (``firstReadAt``), and counts only
what it used. A plan without a quota is read over the calendar month: its rows have no limit.

Exit codes: 0 printed; 1 some archive objects, or with ``--exact`` some plans' usage, could not be
read (each named on stderr; the rest is printed); 2 bad arguments, a bucket that does not exist or
cannot be listed, a ``--plan`` or ``--key`` that names nothing in the archive's records of the range,
or credentials or region missing, expired or refused.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import gzip
import json
import re
import sys
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from rich.cells import cell_len

from quota_monitor import (
    ACCOUNT_ID,
    API_KEY_ID,
    API_KEY_NAME,
    ARCHIVE_PREFIX,
    KEY_RECORD,
    LIMIT,
    PERIOD,
    PERIOD_START,
    PERIOD_TYPES,
    RECORD,
    REGION,
    REMAINING,
    RUN_AT,
    USAGE_PLAN_ID,
    USAGE_PLAN_NAME,
    USED,
    UTILIZATION,
    MalformedResponse,
    UsageDataError,
    UsagePaginationError,
    apigateway_client,
    client,
    describe,
    describe_error,
    guarded_api,
    is_configuration_error,
    paginate_usage,
    parse_daily_usage,
    partition_prefix,
    period_containing,
)
from quota_monitor_cli.attempts import AttemptReport
from quota_monitor_cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    UsageError,
    add_aws_arguments,
    add_max_attempts_argument,
    aws_errors,
    run_guarded,
    session,
    settings_from,
)
from quota_monitor_cli.render import printable
from quota_monitor_cli.scan import caller_account

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    import boto3
    from mypy_boto3_s3 import S3Client

    from quota_monitor import ApiGatewayCalls

#: What ``used`` is: the footer of the table and ``usedIs`` in ``--json``.
USED_MEANS: Final = (
    "used is the last reading before the reset: the monitor's last run in the period, up to one run "
    "interval plus GetUsage's lag (reported at 30 to 40 minutes, except when a key runs out) before "
    "the period's end; reached means a reading of the period found no quota left"
)
EXACT_MEANS: Final = "exact is GetUsage's own count for the closed period; difference is exact - used"
#: Objects fetched at once (each is gunzipped in its thread; the lines are parsed in order).
FETCH_WORKERS: Final = 8
#: A statement covers at most this many days (a range; a month is at most 31).
MAX_DAYS: Final = 366
_RUN_AT_FORMAT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_BUCKET_NAME: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

#: This command's exit codes, for ``--help`` (the module doc says the same).
STATEMENT_EXIT_CODES = """\
exit codes:
  0    done: every object of the days read was read (and, with --exact, every plan's usage)
  1    some archive objects, or with --exact some plans' usage, could not be read; each is
       named on stderr, and the rest is printed
  2    bad arguments, a bucket that does not exist or cannot be listed, a --plan or --key
       that names nothing in the records read, a --period that has not begun, or
       credentials or region missing, expired or refused; nothing is printed on stdout
  130  Ctrl-C; 141 the reader of stdout went away (as every command)"""

EXAMPLES = """\
examples:
  quota-monitor statement --bucket my-archive --period 2026-11          periods that ended in November
  quota-monitor statement --bucket my-archive --period 2026-11-30       ... on November 30 (DAY quotas)
  quota-monitor statement --bucket my-archive --period 2026-W48 --csv   ... in ISO week 48 (Mon-Sun)
  quota-monitor statement --bucket my-archive --period 2026-11 --plan gold --exact
"""


# -- the range ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """The days a statement covers, both included: its rows are the periods whose last day is in it."""

    first: date
    last: date
    text: str

    @property
    def end(self) -> date:
        """The day after the last: a period ending in the span resets after ``first`` and by ``end``."""
        return self.last + timedelta(days=1)

    def holds_end_of(self, period_end: date) -> bool:
        return self.first < period_end <= self.end

    def earliest_reading(self) -> date:
        """The first day a period ending in the span can have a reading: a week's start before
        ``first``, or the first of the month when a month ends in the span."""
        earliest = self.first - timedelta(days=6)
        month_last = self.first.replace(day=calendar.monthrange(self.first.year, self.first.month)[1])
        return min(earliest, self.first.replace(day=1)) if month_last <= self.last else earliest

    def days_to_read(self, today: date) -> list[date]:
        """The UTC days whose partitions can hold readings of the span's periods, up to today."""
        day, last = self.earliest_reading(), min(self.last, today)
        days = []
        while day <= last:
            days.append(day)
            day += timedelta(days=1)
        return days


_SPAN_FORMS = (
    "a month (2026-11), a day (2026-11-30), an ISO week (2026-W48: Monday to Sunday) or two days "
    "(2026-11-01..2026-11-15)"
)


def _day(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(text)
    return date.fromisoformat(text)


def parse_span(text: str) -> Span:
    """An argparse type for ``--period`` (see :data:`_SPAN_FORMS`)."""
    value = text.strip()
    try:
        if month := re.fullmatch(r"(\d{4})-(\d{2})", value):
            first = date(int(month[1]), int(month[2]), 1)
            last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        elif week := re.fullmatch(r"(\d{4})-W(\d{2})", value):
            first = date.fromisocalendar(int(week[1]), int(week[2]), 1)
            last = first + timedelta(days=6)
        elif ".." in value:
            start, _, stop = value.partition("..")
            first, last = _day(start), _day(stop)
        else:
            first = last = _day(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a period: use {_SPAN_FORMS}") from None
    if last < first:
        raise argparse.ArgumentTypeError(f"{text!r} ends before it starts: use {_SPAN_FORMS}")
    if (last - first).days >= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} covers more than {MAX_DAYS} days: use {_SPAN_FORMS}")
    return Span(first, last, value)


def bucket_name(text: str) -> str:
    """An argparse type: an S3 bucket's name (``s3://`` in front is allowed)."""
    name = text.removeprefix("s3://").rstrip("/")
    if not _BUCKET_NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a bucket name: use 3 to 63 lowercase letters, digits, dots and hyphens"
        )
    return name


def key_prefix(text: str) -> str:
    """An argparse type: where the archive's ``dt=`` folders are, ending in ``/``."""
    prefix = text.strip()
    if not prefix or prefix.startswith("/") or "dt=" in prefix:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: use the key prefix the monitor writes under, such as "
            f"{ARCHIVE_PREFIX!r} (no leading /, without the dt= folder)"
        )
    return prefix if prefix.endswith("/") else prefix + "/"


# -- the rows -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatementRow:
    """One key's quota period: its last reading, and what all the readings of the period said."""

    account_id: str | None
    region: str | None
    usage_plan_id: str
    usage_plan_name: str | None
    api_key_id: str
    api_key_name: str | None
    period: str
    period_start: date
    #: The next period's start: when the quota reset.
    period_end: date
    limit: int | None
    used: int
    remaining: int | None
    utilization: float | None
    #: The last reading's ``runAt``, and the first's.
    read_at: str
    first_read_at: str
    readings: int
    #: A reading found no quota left (None without a quota).
    reached_limit: bool | None
    #: A reading had ``used + remaining`` above the limit: an UpdateUsage raised remaining.
    extended: bool | None
    #: GetUsage's count for the closed period (``--exact``); None when not asked or not known.
    exact_used: int | None = None
    exact_remaining: int | None = None

    @property
    def difference(self) -> int | None:
        return None if self.exact_used is None else self.exact_used - self.used

    def as_json(self, *, exact: bool = False) -> dict[str, Any]:
        row: dict[str, Any] = {
            "accountId": self.account_id,
            "region": self.region,
            "usagePlanId": self.usage_plan_id,
            "usagePlanName": self.usage_plan_name,
            "apiKeyId": self.api_key_id,
            "apiKeyName": self.api_key_name,
            "period": self.period,
            "periodStart": self.period_start.isoformat(),
            "periodEnd": self.period_end.isoformat(),
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "utilization": self.utilization,
            "readAt": self.read_at,
            "firstReadAt": self.first_read_at,
            "readings": self.readings,
            "reachedLimit": self.reached_limit,
            "extended": self.extended,
        }
        if exact:
            row |= {
                "exactUsed": self.exact_used,
                "exactRemaining": self.exact_remaining,
                "difference": self.difference,
            }
        return row


#: The CSV header: :meth:`StatementRow.as_json`'s fields.
FIELDS: Final = tuple(
    StatementRow(
        None, None, "", None, "", None, "DAY", date.min, date.min, None, 0, None, None, "", "", 0, None, None
    )
    .as_json(exact=True)
    .keys()
)


class RecordError(ValueError):
    """A line of the archive that is not a record the statement can read."""


def period_end(period: str, start: date) -> date:
    """The next period's start (a week's start day is the records' own)."""
    if period not in PERIOD_TYPES:
        raise RecordError(f"period {period!r} is not one of {', '.join(PERIOD_TYPES)}")
    return period_containing(period, start, week_start=start.weekday()).next_start


def _optional_int(record: Mapping[str, Any], name: str) -> int | None:
    value = record.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise RecordError(f"{name} is {value!r}, not a whole number or null")


@dataclass
class _Period:
    row: StatementRow
    names: set[str] = field(default_factory=set)


class StatementBuilder:
    """The statement's rows from key records, added one at a time, in any order.

    ``plans`` and ``keys``: only these usage plans and API keys, each by id or exact name (any of a
    kind; both kinds must match). ``now``: periods not over by then are left out.
    """

    def __init__(
        self, span: Span, *, now: datetime, plans: Sequence[str] = (), keys: Sequence[str] = ()
    ) -> None:
        self.span = span
        self.today = now.astimezone(UTC).date()
        self.plans, self.keys = frozenset(plans), frozenset(keys)
        self._plan_marks = _marks(USAGE_PLAN_ID, USAGE_PLAN_NAME, plans)
        self._key_marks = _marks(API_KEY_ID, API_KEY_NAME, keys)
        #: (account, region, plan, key, period, start) -> the period so far; None: not in the span.
        self._periods: dict[tuple[Any, ...], _Period | None] = {}
        #: The ``plans`` and ``keys`` values some record matched.
        self._matched: set[str] = set()

    def add_line(self, line: str) -> None:
        """One line of an archive object. Lines that cannot be a chosen key's are not even parsed:
        the records spell every name as JSON does (:mod:`quota_monitor.publish.records`). A line with
        a chosen plan or a chosen key is parsed, so that each filter is told apart when it names nothing."""
        chosen = (*self._plan_marks, *self._key_marks)
        if not line or (chosen and not any(mark in line for mark in chosen)):
            return
        try:
            record = json.loads(line)
        except ValueError as error:
            raise RecordError(f"not JSON ({error})") from None
        if not isinstance(record, dict):
            raise RecordError("not a JSON object")
        self.add(record)

    def add(self, record: Mapping[str, Any]) -> None:
        """One record: key records of the chosen plans and keys count; others are passed over."""
        if record.get(RECORD) != KEY_RECORD:
            return
        try:
            plan_id, key_id = record[USAGE_PLAN_ID], record[API_KEY_ID]
            period, start = record[PERIOD], record[PERIOD_START]
        except KeyError as error:
            raise RecordError(f"a key record without {error}") from None
        plan_hit = self.plans & {plan_id, record.get(USAGE_PLAN_NAME)}
        key_hit = self.keys & {key_id, record.get(API_KEY_NAME)}
        self._matched |= plan_hit | key_hit
        if (self.plans and not plan_hit) or (self.keys and not key_hit):
            return
        group = (record.get(ACCOUNT_ID), record.get(REGION), plan_id, key_id, period, start)
        if group not in self._periods:
            self._periods[group] = self._start(group, record)
        elif (found := self._periods[group]) is not None:
            self._update(found, record)

    def _start(self, group: tuple[Any, ...], record: Mapping[str, Any]) -> _Period | None:
        account, region, plan_id, key_id, period, start_text = group
        try:
            start = date.fromisoformat(start_text)
        except (TypeError, ValueError):
            raise RecordError(f"periodStart is {start_text!r}, not a date") from None
        end = period_end(period, start)
        if not self.span.holds_end_of(end) or end > self.today:
            return None
        run_at, used, remaining, limit = _reading(record)
        row = StatementRow(
            account_id=account,
            region=region,
            usage_plan_id=plan_id,
            usage_plan_name=record.get(USAGE_PLAN_NAME),
            api_key_id=key_id,
            api_key_name=record.get(API_KEY_NAME),
            period=period,
            period_start=start,
            period_end=end,
            limit=limit,
            used=used,
            remaining=remaining,
            utilization=record.get(UTILIZATION),
            read_at=run_at,
            first_read_at=run_at,
            readings=1,
            reached_limit=_reached(remaining, record.get(UTILIZATION)),
            extended=_extended(used, remaining, limit),
        )
        return _Period(row)

    def _update(self, found: _Period, record: Mapping[str, Any]) -> None:
        run_at, used, remaining, limit = _reading(record)
        row = found.row
        reached, extended = _reached(remaining, record.get(UTILIZATION)), _extended(used, remaining, limit)
        merged = replace(
            row,
            readings=row.readings + 1,
            first_read_at=min(row.first_read_at, run_at),
            reached_limit=_any(row.reached_limit, reached),
            extended=_any(row.extended, extended),
        )
        if run_at >= row.read_at:
            merged = replace(
                merged,
                usage_plan_name=record.get(USAGE_PLAN_NAME),
                api_key_name=record.get(API_KEY_NAME),
                limit=limit,
                used=used,
                remaining=remaining,
                utilization=record.get(UTILIZATION),
                read_at=run_at,
            )
        found.row = merged

    def rows(self) -> list[StatementRow]:
        """The periods, by account, region, plan, key and start."""
        rows = [found.row for found in self._periods.values() if found is not None]
        return sorted(
            rows,
            key=lambda r: (
                r.account_id or "",
                r.region or "",
                r.usage_plan_name or "",
                r.usage_plan_id,
                r.api_key_name or "",
                r.api_key_id,
                r.period_start,
            ),
        )

    def unknown(self) -> list[str]:
        """``--plan`` and ``--key`` values that named nothing in the records read."""
        return [f"--plan {value!r}" for value in sorted(self.plans - self._matched)] + [
            f"--key {value!r}" for value in sorted(self.keys - self._matched)
        ]


def _marks(id_field: str, name_field: str, values: Sequence[str]) -> tuple[str, ...]:
    """What a record line holds when it is of one of ``values`` (by id or name), as the records
    write it."""
    return tuple(
        f"{json.dumps(name)}:{json.dumps(value, ensure_ascii=False)}"
        for value in values
        for name in (id_field, name_field)
    )


def _reading(record: Mapping[str, Any]) -> tuple[str, int, int | None, int | None]:
    run_at = record.get(RUN_AT)
    if not isinstance(run_at, str) or not _RUN_AT_FORMAT.fullmatch(run_at):
        raise RecordError(f"runAt is {run_at!r}, not a UTC time such as 2026-11-30T23:45:00Z")
    used = _optional_int(record, USED)
    if used is None:
        raise RecordError("used is null")
    return run_at, used, _optional_int(record, REMAINING), _optional_int(record, LIMIT)


def _reached(remaining: int | None, utilization: object) -> bool | None:
    if remaining is None:
        return None
    return remaining == 0 or (isinstance(utilization, int | float) and utilization >= 100)


def _extended(used: int, remaining: int | None, limit: int | None) -> bool | None:
    if remaining is None or limit is None:
        return None
    return used + remaining > limit


def _any(first: bool | None, second: bool | None) -> bool | None:
    if first is None:
        return second
    return first or bool(second)


# -- reading the archive --------------------------------------------------------------------------
@dataclass
class ArchiveRead:
    """What reading the archive found: objects and their bytes (gzip), the days without any object,
    and what could not be read."""

    objects: int = 0
    bytes: int = 0
    days: int = 0
    empty_days: list[date] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def list_objects(s3: S3Client, bucket: str, prefix: str, day: date) -> list[str]:
    """The keys of one day's objects (``ListObjectsV2``, every page)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=partition_prefix(day, prefix)
    ):
        keys += [item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")]
    return keys


def _fetch(s3: S3Client, bucket: str, key: str) -> tuple[str, int]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return gzip.decompress(body).decode("utf-8"), len(body)


def _refused(error: ClientError, bucket: str) -> UsageError | None:
    """A bucket that is not there, or not ours to read: the same for every day (exit 2)."""
    code = error.response.get("Error", {}).get("Code")
    if code == "NoSuchBucket":
        return UsageError(f"--bucket {bucket}: no such bucket")
    if code in ("AccessDenied", "AllAccessDisabled", "AccessDeniedException"):
        return UsageError(
            f"--bucket {bucket}: {describe(error)}: reading a statement needs s3:ListBucket on the bucket "
            "and s3:GetObject on its records"
        )
    return None


def read_archive(
    s3: S3Client, bucket: str, prefix: str, days: Sequence[date], on_line: Callable[[str], None]
) -> ArchiveRead:
    """Every line of every object of ``days``, to ``on_line`` in order; an object that cannot be read
    (or holds a line ``on_line`` refuses with :class:`RecordError`) is a failure, named."""
    read = ArchiveRead(days=len(days))
    keys: list[str] = []
    for day in days:
        try:
            found = list_objects(s3, bucket, prefix, day)
        except ClientError as error:
            refused = _refused(error, bucket)
            if refused is not None or is_configuration_error(error):
                raise refused or error from None
            read.failures.append(f"s3://{bucket}/{partition_prefix(day, prefix)}: {describe(error)}")
            continue
        except BotoCoreError as error:
            if is_configuration_error(error):
                raise
            read.failures.append(f"s3://{bucket}/{partition_prefix(day, prefix)}: {describe(error)}")
            continue
        if not found:
            read.empty_days.append(day)
        keys += found
    for key, outcome in _fetched(s3, bucket, keys):
        if isinstance(outcome, BaseException):
            read.failures.append(f"s3://{bucket}/{key}: {_describe_read_error(outcome)}")
            continue
        text, size = outcome
        read.objects += 1
        read.bytes += size
        for number, line in enumerate(text.split("\n"), start=1):
            try:
                on_line(line)
            except RecordError as error:
                read.failures.append(
                    f"s3://{bucket}/{key}, line {number}: {error}; the rest of the object skipped"
                )
                break
    return read


def _describe_read_error(error: BaseException) -> str:
    if isinstance(error, ClientError | BotoCoreError):
        return describe(error)
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text after gunzip ({error.reason})"
    return f"not a gzip file ({error})"


def _fetched(
    s3: S3Client, bucket: str, keys: Sequence[str]
) -> Iterator[tuple[str, tuple[str, int] | BaseException]]:
    """Each object's text, in order, a few fetched ahead at once (at most ``2 * FETCH_WORKERS``
    held in memory)."""
    if not keys:
        return
    with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
        pending: deque[tuple[str, Any]] = deque()
        ahead = iter(keys)
        for key in ahead:
            pending.append((key, pool.submit(_fetch, s3, bucket, key)))
            if len(pending) >= 2 * FETCH_WORKERS:
                break
        while pending:
            key, future = pending.popleft()
            try:
                outcome: tuple[str, int] | BaseException = future.result()
            except (ClientError, BotoCoreError, OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
                refused = _refused(error, bucket) if isinstance(error, ClientError) else None
                if refused is not None:
                    raise refused from None
                if is_configuration_error(error):
                    raise
                outcome = error
            nxt = next(ahead, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_fetch, s3, bucket, nxt)))
            yield key, outcome


# -- --exact ----------------------------------------------------------------------------------------
READ_ERRORS = (ClientError, BotoCoreError, MalformedResponse, UsagePaginationError)


@dataclass
class ExactReport:
    calls: int = 0
    periods: int = 0
    failures: list[str] = field(default_factory=list)
    #: Rows of other accounts or regions than the credentials': GetUsage cannot be asked for them.
    elsewhere: int = 0
    missing: int = 0


def exact_usage(
    api: ApiGatewayCalls, rows: Sequence[StatementRow], *, own: Callable[[StatementRow], bool]
) -> tuple[list[StatementRow], ExactReport]:
    """Each row with GetUsage's count for its closed period: one GetUsage (every page, 500 keys a
    page) per plan and period, with ``keyId`` when the statement has one key of it."""
    report = ExactReport()
    groups: dict[tuple[str, date, date], list[int]] = {}
    for index, row in enumerate(rows):
        if own(row):
            groups.setdefault((row.usage_plan_id, row.period_start, row.period_end), []).append(index)
        else:
            report.elsewhere += 1
    result = list(rows)
    for (plan_id, start, end), indexes in groups.items():
        key_ids = {rows[i].api_key_id for i in indexes}
        pages = paginate_usage(
            api,
            usagePlanId=plan_id,
            startDate=start.isoformat(),
            endDate=(end - timedelta(days=1)).isoformat(),
            keyId=next(iter(key_ids)) if len(key_ids) == 1 else None,
        )
        report.periods += 1
        try:
            items, unmergeable = pages.items_and_unmergeable()
        except READ_ERRORS as error:
            if is_configuration_error(error):
                raise
            cause, message = describe_error(error)
            if len(key_ids) == 1 and cause == "NotFoundException":
                report.missing += 1  # the key is no longer in the plan
                continue
            report.failures.append(
                f"usage plan {plan_id}, {start} to {end - timedelta(days=1)}: {cause}: {message}"
            )
            continue
        finally:
            report.calls += pages.service_pages
        for i in indexes:
            row = rows[i]
            if row.api_key_id in unmergeable:
                report.failures.append(
                    f"usage plan {plan_id}, key {row.api_key_id}: {unmergeable[row.api_key_id]}"
                )
                continue
            raw = items.get(row.api_key_id)
            if raw is None:
                report.missing += 1
                continue
            try:
                daily = parse_daily_usage(
                    raw,
                    expected_days=(end - start).days,
                    has_quota=row.limit is not None,
                    usage_plan_id=plan_id,
                    api_key_id=row.api_key_id,
                )
            except UsageDataError as error:
                report.failures.append(str(error))
                continue
            result[i] = replace(
                row,
                exact_used=sum(day.used for day in daily),
                exact_remaining=daily[-1].remaining if daily else None,
            )
    return result, report


# -- output -----------------------------------------------------------------------------------------
def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _time(run_at: str) -> str:
    return run_at.replace("T", " ")[:16]


def _notes(row: StatementRow) -> str:
    notes = []
    if row.extended:
        notes.append("extended")
    if row.first_read_at[:10] > row.period_start.isoformat():
        notes.append(f"first read {_time(row.first_read_at)}")
    return ", ".join(notes)


def _reached_text(row: StatementRow) -> str:
    return "-" if row.reached_limit is None else "yes" if row.reached_limit else "no"


def plain_lines(rows: Sequence[StatementRow], *, several: bool, exact: bool) -> list[str]:
    """A header and a line a row, columns two spaces apart."""
    columns: list[tuple[str, Callable[[StatementRow], str], bool]] = [
        ("Plan", lambda r: r.usage_plan_name or r.usage_plan_id, False),
        ("Key name", lambda r: r.api_key_name if r.api_key_name is not None else "(unknown)", False),
        ("Key id", lambda r: r.api_key_id, False),
        ("Period", lambda r: r.period if r.limit is not None else "no quota", False),
        ("Start", lambda r: r.period_start.isoformat(), False),
        ("End (reset)", lambda r: r.period_end.isoformat(), False),
        ("Limit", lambda r: _count(r.limit), True),
        ("Used", lambda r: _count(r.used), True),
        ("Read at (UTC)", lambda r: _time(r.read_at), False),
        ("Reached", _reached_text, False),
    ]
    if several:
        columns[:0] = [
            ("Account", lambda r: r.account_id or "-", False),
            ("Region", lambda r: r.region or "-", False),
        ]
    if exact:
        columns += [
            ("Exact", lambda r: _count(r.exact_used), True),
            ("Difference", lambda r: "-" if r.difference is None else f"{r.difference:+,}", True),
        ]
    columns.append(("Notes", _notes, False))
    cells = [[printable(cell(row)) for _, cell, _ in columns] for row in rows]
    widths = [
        max([cell_len(header)] + [cell_len(line[i]) for line in cells])
        for i, (header, _, _) in enumerate(columns)
    ]

    def line(texts: Sequence[str]) -> str:
        parts = []
        for text, width, (_, _, right) in zip(texts, widths, columns, strict=True):
            gap = " " * (width - cell_len(text))
            parts.append(gap + text if right else text + gap)
        return "  ".join(parts).rstrip()

    return [line([header for header, _, _ in columns]), *(line(texts) for texts in cells)]


def write_statement(rows: Sequence[StatementRow], fmt: str, span: Span, *, exact: bool) -> None:
    """The rows on stdout: plain columns with the meaning of ``used`` under them, CSV (the meaning
    goes to stderr), or one JSON object with it in ``usedIs``."""
    if fmt == "json":
        document = {
            "from": span.first.isoformat(),
            "to": span.last.isoformat(),
            "usedIs": USED_MEANS,
            **({"exactIs": EXACT_MEANS} if exact else {}),
            "periods": [row.as_json(exact=exact) for row in rows],
        }
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif fmt == "csv":
        writer = csv.DictWriter(
            sys.stdout,
            fieldnames=[
                name for name in FIELDS if exact or name not in ("exactUsed", "exactRemaining", "difference")
            ],
            lineterminator="\n",
        )
        writer.writeheader()
        writer.writerows(row.as_json(exact=exact) for row in rows)
    else:
        several = len({(row.account_id, row.region) for row in rows}) > 1
        lines = plain_lines(rows, several=several, exact=exact) if rows else []
        lines += [f"Note: {USED_MEANS}." + (f" {EXACT_MEANS}." if exact else "")]
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


# -- the command ----------------------------------------------------------------------------------
def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "statement",
        help="each key's usage in each quota period that ended in a month, week or day, from the archive",
        description="Each API key's usage in each quota period (DAY, WEEK or MONTH) whose last day is in "
        "--period and which is over, read from the monitor's archive in S3: the last reading before "
        "the reset, when it was taken, and whether the key reached its limit.",
        epilog=EXAMPLES + "\n" + STATEMENT_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bucket", required=True, type=bucket_name, help="the archive's bucket")
    parser.add_argument("--period", required=True, type=parse_span, metavar="PERIOD", help=f"{_SPAN_FORMS}")
    parser.add_argument(
        "--prefix",
        type=key_prefix,
        default=ARCHIVE_PREFIX,
        help=f"where the archive's dt= folders are (default {ARCHIVE_PREFIX})",
    )
    parser.add_argument(
        "--plan", action="append", default=[], metavar="ID|NAME", help="only this usage plan (repeatable)"
    )
    parser.add_argument(
        "--key", action="append", default=[], metavar="ID|NAME", help="only this API key (repeatable)"
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="also ask GetUsage for each closed period's count (one call per plan and period, a page per "
        "500 keys), for the credentials' account and region",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_const", const="json", dest="format", help="one JSON object")
    output.add_argument("--csv", action="store_const", const="csv", dest="format", help="CSV, a row a period")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary: only errors and warnings")
    add_max_attempts_argument(parser)
    add_aws_arguments(parser)
    parser.set_defaults(run=run_guarded(run), format="plain")


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _day_ranges(days: Sequence[date]) -> str:
    """``2026-11-03..2026-11-05, 2026-11-09``."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(r[0].isoformat() if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def run(args: argparse.Namespace, *, now: datetime | None = None) -> int:
    span: Span = args.period
    now = now or datetime.now(UTC)
    if span.first > now.date():
        raise UsageError(f"--period {span.text} has not begun: today is {now.date()} (UTC)")
    days = span.days_to_read(now.date())
    settings = settings_from(args)
    builder = StatementBuilder(span, now=now, plans=args.plan, keys=args.key)
    with aws_errors():
        aws = session(args)
        read = read_archive(client("s3", aws), args.bucket, args.prefix, days, builder.add_line)
        unknown = builder.unknown() if not read.failures else []
        if unknown:
            raise UsageError(
                f"{'; '.join(unknown)}: names nothing in the archive's key records of {days[0]} to {days[-1]}"
            )
        rows = builder.rows()
        exact = None
        if args.exact and rows:
            rows, exact = _exact(args, aws, settings, rows)
    write_statement(rows, args.format, span, exact=args.exact)
    if args.format == "csv":
        _say(f"note: {USED_MEANS}")
    if not args.quiet:
        keys = len({(r.usage_plan_id, r.api_key_id) for r in rows})
        objects = f"{read.objects:,} object{'' if read.objects == 1 else 's'}"
        _say(
            f"{len(rows):,} closed quota periods of {keys:,} keys ending {span.first} to {span.last}; "
            f"read {objects} ({read.bytes / 1e6:,.1f} MB) of {read.days} day{'' if read.days == 1 else 's'} "
            f"({days[0]} to {days[-1]}) from s3://{args.bucket}/{args.prefix}"
        )
    if read.empty_days:
        _say(
            f"warning: no archive objects for {len(read.empty_days)} of {read.days} days: "
            + _day_ranges(read.empty_days)
        )
    failures = [*read.failures, *(exact.failures if exact else [])]
    if exact is not None:
        _exact_notes(exact)
    for failure in failures:
        _say(f"error: {failure}")
    return EXIT_PARTIAL if failures else EXIT_OK


def _exact(
    args: argparse.Namespace, aws: boto3.Session, settings: Any, rows: list[StatementRow]
) -> tuple[list[StatementRow], ExactReport]:
    attempts = AttemptReport()
    account, region = caller_account(aws), aws.region_name
    api = guarded_api(apigateway_client(aws), settings.scan, on_failed_attempt=attempts)

    def own(row: StatementRow) -> bool:
        return row.region == region and (account is None or row.account_id in (None, account))

    return exact_usage(api, rows, own=own)


def _exact_notes(exact: ExactReport) -> None:
    _say(f"--exact: {exact.calls:,} GetUsage calls for {exact.periods:,} plan periods")
    if exact.elsewhere:
        _say(
            f"warning: --exact: {exact.elsewhere:,} periods are of other accounts or regions than the "
            "credentials': no exact count for them"
        )
    if exact.missing:
        _say(
            f"warning: --exact: GetUsage had nothing for {exact.missing:,} of the periods (the key left "
            "the plan, or AWS no longer has the period): no exact count for them"
        )
