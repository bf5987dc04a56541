"""The scan: every usage plan, every key, every page, into one :class:`ScanResult`.

1. GetUsagePlans (500 a page, to the end).
2. Concurrently, up to ``max_workers`` at once: GetApiKeys (500 a page) for key names and tags,
   never values; and per plan, GetUsage from the day before the current quota period (to see
   AWS's counter reset: :func:`~quota_monitor.compute.key_usage.reset_at_period_start`) to today,
   500 keys a page, every page merged by :mod:`quota_monitor.read.usage_pages`, optionally
   GetUsagePlanKeys to find attached keys AWS left out of the usage data. The key listing, one
   page after another, runs beside the plans' calls so that the rate limit's burst is not left
   unspent (docs/benchmarks.md, "The whole budget"); the names are put on the keys once both are
   done.

One plan failing never stops the others: it becomes a :class:`ScanFailure` naming the plan and
the cause, and the rest of the result stands. Likewise one key whose daily entries cannot be read
exactly (:func:`~quota_monitor.compute.key_usage.parse_daily_usage`) fails that key alone, named
with its plan (an ``api-key`` failure); the plan's other keys are reported, and the failed key
has no numbers anywhere (docs/reliability.md). A plan without a quota is read over the calendar
month to date (``used`` only).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from quota_monitor.compute.key_usage import key_usage, parse_daily_usage, unused_key_usage
from quota_monitor.compute.periods import days_between, period_containing
from quota_monitor.config import ScanSettings
from quota_monitor.errors import (
    DeadlineReached,
    MalformedResponse,
    UsageDataError,
    UsagePaginationError,
    describe_error,
    error_code,
    is_configuration_error,
)
from quota_monitor.models import (
    ApiKey,
    KeyUsage,
    PeriodMismatch,
    PeriodType,
    ReadSpan,
    ScanFailure,
    ScanResult,
    ScanStats,
    Target,
    UsagePlan,
)
from quota_monitor.read.listing import list_api_keys, list_plan_key_ids, list_usage_plans
from quota_monitor.read.usage_pages import paginate_usage

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import date
    from typing import Any

    from quota_monitor.models import QuotaPeriod
    from quota_monitor.read.calls import ApiGatewayCalls

#: What makes one read fail: that plan (or listing) is reported as failed, and the scan goes on.
READ_ERRORS = (ClientError, BotoCoreError, MalformedResponse, UsagePaginationError, DeadlineReached)
#: The window over which plans without a quota report ``used``.
NO_QUOTA_PERIOD: PeriodType = "MONTH"


@dataclass(frozen=True)
class PlanScan:
    """The outcome for one usage plan: its keys, or why it could not be read."""

    plan: UsagePlan
    keys: list[KeyUsage] = field(default_factory=list)
    usage_pages: int = 0
    failure: ScanFailure | None = None
    #: Keys of a plan that was read whose own entries could not be (``api-key`` failures).
    key_failures: tuple[ScanFailure, ...] = ()


def _usage_range(plan: UsagePlan, now: datetime, settings: ScanSettings) -> tuple[QuotaPeriod, date, date]:
    """The plan's current period, and the range GetUsage is asked for: one day more than the period,
    since the day before its assumed start shows whether AWS's counter really reset there
    (usage.reset_at_period_start), so that a wrong assumption cannot reset alerts."""
    period = period_containing(
        plan.quota.period if plan.quota else NO_QUOTA_PERIOD, now.date(), week_start=settings.week_start
    )
    return period, period.start - timedelta(days=1), now.date()


def _read_keys(
    plan: UsagePlan,
    period: QuotaPeriod,
    expected_days: int,
    items: Mapping[str, Any],
    api_keys: Mapping[str, ApiKey],
    *,
    read: ReadSpan,
) -> tuple[list[KeyUsage], list[ScanFailure]]:
    """The keys of one plan's usage data, each read on its own: a key whose entries cannot be read
    exactly is a failure of that key alone (docs/reliability.md). ``read``: when the data was read."""
    keys: list[KeyUsage] = []
    failures: list[ScanFailure] = []
    for key_id, raw in items.items():
        api_key = api_keys.get(key_id)
        try:
            day_before, *daily = parse_daily_usage(
                raw,
                expected_days=expected_days,
                has_quota=plan.quota is not None,
                usage_plan_id=plan.id,
                api_key_id=key_id,
            )
            keys.append(key_usage(plan, period, key_id, daily, api_key, day_before=day_before, read=read))
        except UsageDataError as error:
            failures.append(_key_failure(plan, key_id, api_key, error))
    return keys, failures


def _wall_time(wall: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(wall(), UTC)


def scan_plan(
    api: ApiGatewayCalls,
    plan: UsagePlan,
    *,
    now: datetime,
    settings: ScanSettings,
    api_keys: dict[str, ApiKey] | None = None,
    wall: Callable[[], float] = time.time,
) -> PlanScan:
    """One plan's usage. Key names come from ``api_keys`` when given; :func:`scan_account` reads
    the key listing meanwhile and names the keys afterwards (:func:`with_names`). ``wall``: the clock
    every run reads alike, for each key's :class:`~quota_monitor.models.ReadSpan`."""
    api_keys = api_keys or {}
    period, start, end = _usage_range(plan, now, settings)
    started = _wall_time(wall)
    pages = paginate_usage(
        api,
        usagePlanId=plan.id,
        startDate=start.isoformat(),
        endDate=end.isoformat(),
        PaginationConfig={"PageSize": settings.page_size},
    )
    try:
        items, unmergeable = pages.items_and_unmergeable()
        # A key whose entry could not be read is in the usage data: it is failed, not unused.
        reported = set(items) | set(unmergeable)
        unused = (
            [key_id for key_id in list_plan_key_ids(api, plan.id) if key_id not in reported]
            if settings.cross_check_plan_keys
            else []
        )
        read = ReadSpan(started, _wall_time(wall))
        keys, key_failures = _read_keys(plan, period, days_between(start, end), items, api_keys, read=read)
        key_failures[:0] = [
            _key_failure(plan, key_id, api_keys.get(key_id), error) for key_id, error in unmergeable.items()
        ]
        keys.extend(unused_key_usage(plan, period, k, api_keys.get(k), read=read) for k in unused)
    except READ_ERRORS as error:
        if is_configuration_error(error):
            raise
        cause, message = describe_error(error)
        failure = ScanFailure("usage-plan", plan.id, plan.name, cause, message, plan.id)
        return PlanScan(plan, usage_pages=pages.service_pages, failure=failure)
    return PlanScan(plan, keys=keys, usage_pages=pages.service_pages, key_failures=tuple(key_failures))


@dataclass(frozen=True)
class WatchedRead:
    """What the fast path reads of one usage plan: these keys only (:func:`scan_watched`)."""

    plan: UsagePlan
    keys: tuple[ApiKey, ...]
    #: GetUsage pages the whole plan took in the last full scan.
    pages: int


def scan_watched_plan(
    api: ApiGatewayCalls,
    watched: WatchedRead,
    *,
    now: datetime,
    settings: ScanSettings,
    wall: Callable[[], float] = time.time,
) -> PlanScan:
    """The watched keys of one plan, in the fewest calls: the whole plan's pages, or one GetUsage
    with ``keyId`` per watched key when they are fewer than the plan's pages.

    A watched key the data no longer has (it left the plan, or the plan is gone) is simply not
    reported: no data is not a recovery, and the next full scan sees what changed. A key's call
    failing fails that key (an ``api-key`` failure); the whole plan's read failing fails the plan.
    """
    plan = watched.plan
    api_keys = {key.id: key for key in watched.keys}
    period, start, end = _usage_range(plan, now, settings)
    expected_days = days_between(start, end)
    by_key = len(watched.keys) < watched.pages
    calls = [key.id for key in watched.keys] if by_key else [None]
    items: dict[str, Any] = {}
    failures: list[ScanFailure] = []
    service_pages = 0
    started = _wall_time(wall)
    for key_id in calls:
        pages = paginate_usage(
            api,
            usagePlanId=plan.id,
            startDate=start.isoformat(),
            endDate=end.isoformat(),
            keyId=key_id,
            PaginationConfig={"PageSize": settings.page_size},
        )
        try:
            found, unmergeable = pages.items_and_unmergeable()
        except READ_ERRORS as error:
            if is_configuration_error(error):
                raise
            service_pages += pages.service_pages
            if (
                key_id is not None
                and isinstance(error, ClientError)
                and error_code(error) == "NotFoundException"
            ):
                continue  # the key left the plan since the full scan
            cause, message = describe_error(error)
            if key_id is None:
                failure = ScanFailure("usage-plan", plan.id, plan.name, cause, message, plan.id)
                return PlanScan(plan, usage_pages=service_pages, failure=failure)
            failures.append(ScanFailure("api-key", key_id, api_keys[key_id].name, cause, message, plan.id))
            continue
        service_pages += pages.service_pages
        failures += [
            _key_failure(plan, k, api_keys.get(k), error) for k, error in unmergeable.items() if k in api_keys
        ]
        items.update((k, raw) for k, raw in found.items() if k in api_keys)
    read = ReadSpan(started, _wall_time(wall))
    keys, key_failures = _read_keys(plan, period, expected_days, items, api_keys, read=read)
    return PlanScan(plan, keys=keys, usage_pages=service_pages, key_failures=(*failures, *key_failures))


def scan_watched(
    api: ApiGatewayCalls,
    watched: Sequence[WatchedRead],
    *,
    now: datetime,
    settings: ScanSettings,
    target: Target | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> ScanResult:
    """The fast path's read of one target: the watched keys of each plan, in the order given (the
    most urgent first), ``max_workers`` plans at once. No listing: the plans, names and tags come
    from the full scan's watch list."""
    if now.tzinfo is None:
        raise ValueError(f"now={now.isoformat()} has no time zone; quota periods are UTC")
    now = now.astimezone(UTC)
    started = clock()
    calls_before, throttles_before = api.stats.total_calls, api.stats.throttles
    scans: list[PlanScan] = []
    if watched:
        with ThreadPoolExecutor(max_workers=max(1, min(settings.max_workers, len(watched)))) as pool:
            scans = list(
                pool.map(
                    lambda one: scan_watched_plan(api, one, now=now, settings=settings, wall=wall), watched
                )
            )
    keys = [key for scan in scans for key in scan.keys]
    failures = [
        f for scan in scans for f in ((scan.failure,) if scan.failure is not None else scan.key_failures)
    ]
    stats = ScanStats(
        # A plan read key by key whose every call failed was not read, though no plan call failed.
        plans_scanned=sum(
            1 for scan in scans if scan.failure is None and (scan.keys or not scan.key_failures)
        ),
        keys_scanned=len(keys),
        usage_pages=sum(scan.usage_pages for scan in scans),
        api_calls=api.stats.total_calls - calls_before,
        throttles=api.stats.throttles - throttles_before,
        duration_seconds=clock() - started,
    )
    return ScanResult(
        scanned_at=now,
        plans=tuple(one.plan for one in watched),
        keys=tuple(keys),
        failures=tuple(failures if target is None else (replace(f, target=target) for f in failures)),
        stats=stats,
        api_keys={key.id: key for one in watched for key in one.keys},
        target=target,
    )


def _key_failure(plan: UsagePlan, key_id: str, api_key: ApiKey | None, error: Exception) -> ScanFailure:
    """One key of the plan that could not be read: a failure of that key alone."""
    cause, message = describe_error(error)
    return ScanFailure("api-key", key_id, api_key.name if api_key else None, cause, message, plan.id)


def scan_account(
    api: ApiGatewayCalls,
    *,
    now: datetime,
    settings: ScanSettings | None = None,
    on_plan: Callable[[PlanScan, int, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    target: Target | None = None,
    wall: Callable[[], float] = time.time,
) -> ScanResult:
    """Scan every usage plan of the account. ``on_plan(scan, done, total)`` reports progress.

    ``target`` says which account and region ``api`` reads: every plan, key and failure of the result
    carries it. ``wall`` dates each plan's reading (:func:`scan_plan`).
    """
    if now.tzinfo is None:
        raise ValueError(f"now={now.isoformat()} has no time zone; quota periods are UTC")
    now = now.astimezone(UTC)
    settings = settings or ScanSettings()
    started = clock()
    calls_before, throttles_before = api.stats.total_calls, api.stats.throttles
    failures: list[ScanFailure] = []

    try:
        plans, malformed = list_usage_plans(api)
        if target is not None:
            plans = [replace(plan, target=target) for plan in plans]
    except READ_ERRORS as error:
        if is_configuration_error(error):
            raise
        cause, message = describe_error(error)
        failures.append(ScanFailure("usage-plans", None, None, cause, message))
        plans, malformed = [], []
    for raw, reason in malformed:
        plan_id = raw.get("id")
        failures.append(
            ScanFailure(
                "usage-plan",
                plan_id if isinstance(plan_id, str) else None,
                None,
                "MalformedResource",
                reason,
                plan_id if isinstance(plan_id, str) else None,
            )
        )

    api_keys: dict[str, ApiKey] = {}
    scans: list[PlanScan] = []
    if plans:
        with ThreadPoolExecutor(max_workers=max(1, min(settings.max_workers, len(plans) + 1))) as pool:
            # Submitted first, so that it starts at once: it is one page after another.
            listing = pool.submit(list_api_keys, api)
            futures = [
                pool.submit(scan_plan, api, plan, now=now, settings=settings, wall=wall) for plan in plans
            ]
            for done, future in enumerate(futures, start=1):
                scan = future.result()
                scans.append(scan)
                if on_plan is not None:
                    on_plan(scan, done, len(plans))
            try:
                api_keys = listing.result()
            except READ_ERRORS as error:
                if is_configuration_error(error):
                    raise
                # Names and tags are lost for this run; the usage numbers are not.
                cause, message = describe_error(error)
                failures.append(ScanFailure("api-keys", None, None, cause, message))
        scans = [with_names(scan, api_keys) for scan in scans]

    keys = [key for scan in scans for key in scan.keys]
    for scan in scans:
        failures.extend((scan.failure,) if scan.failure is not None else scan.key_failures)
    stats = ScanStats(
        plans_scanned=sum(1 for scan in scans if scan.failure is None),
        keys_scanned=len(keys),
        usage_pages=sum(scan.usage_pages for scan in scans),
        api_calls=api.stats.total_calls - calls_before,
        throttles=api.stats.throttles - throttles_before,
        duration_seconds=clock() - started,
    )
    return ScanResult(
        scanned_at=now,
        plans=tuple(plans),
        keys=tuple(keys),
        failures=tuple(failures if target is None else (replace(f, target=target) for f in failures)),
        stats=stats,
        api_keys=api_keys,
        period_mismatches=period_mismatches(scans),
        target=target,
    )


def with_names(scan: PlanScan, api_keys: dict[str, ApiKey]) -> PlanScan:
    """The plan's keys (and failed keys) with the names the key listing gave them."""
    if not api_keys:
        return scan

    def name(key_id: str | None) -> str | None:
        api_key = api_keys.get(key_id or "")
        return api_key.name if api_key else None

    return replace(
        scan,
        keys=[replace(key, api_key_name=name(key.api_key_id)) for key in scan.keys],
        key_failures=tuple(replace(failure, name=name(failure.resource_id)) for failure in scan.key_failures),
    )


def period_mismatches(scans: list[PlanScan]) -> tuple[PeriodMismatch, ...]:
    """Plans with keys whose own data says their counter ran on across the assumed period start."""
    found = []
    for scan in scans:
        ran_on = [key for key in scan.keys if key.period_reset is False]
        if ran_on:
            first = ran_on[0]
            found.append(
                PeriodMismatch(scan.plan.id, scan.plan.name, first.period, first.period_start, len(ran_on))
            )
    return tuple(found)
