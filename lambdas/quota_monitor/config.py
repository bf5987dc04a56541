"""The monitor's settings, read from environment variables only, and checked at cold start.

A bad value fails at once with a message naming the variable, the value and what is allowed,
rather than surfacing later as a wrong number or a silent default.

Endpoints are not settings of this project: boto3 reads its standard configuration
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_API_GATEWAY``, ``AWS_ENDPOINT_URL_CLOUDWATCH``, ...).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from quota_monitor.alert.routes import route_name_problem
from quota_monitor.alert.thresholds import DEFAULT_LEVELS, LEVELS_ALLOWED, parse_levels
from quota_monitor.compute.periods import DEFAULT_WEEK_START, WEEKDAYS, parse_weekday
from quota_monitor.errors import ConfigError, InvalidLevels
from quota_monitor.publish.metrics import DEFAULT_NAMESPACE
from quota_monitor.publish.selection import AUTO_KEYS, KeyMetricsSelection, parse_key_metrics
from quota_monitor.read.limiter import ACCOUNT_BURST, ACCOUNT_RATE
from quota_monitor.read.targets import ROLE_ARN, region_partitions
from quota_monitor.read.usage_pages import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from collections.abc import Mapping

#: API Gateway's control plane allows 10 requests a second per account and region, shared by
#: the console, the CLI, deploys and this monitor (docs/aws-behaviour.md#account-limits). The monitor takes
#: half by default, so that a deploy running during a scan still has room.
DEFAULT_MAX_RPS = 5.0
ACCOUNT_MAX_RPS = ACCOUNT_RATE
DEFAULT_BURST = 5

_NAMESPACE = re.compile(r"^[A-Za-z0-9.\-_/#:]{1,255}$")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
#: PutEvents' EventBusName: a bus's name or ARN (botocore's NonPartnerEventBusNameOrArn; a partner
#: event source's bus takes no PutEvents).
_EVENT_BUS = re.compile(
    r"^(?:arn:aws[a-z-]*:events:[a-z]+-[a-z]+-[a-z0-9-]+:\d{12}:event-bus/)?[A-Za-z0-9._-]{1,256}$"
)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _bad(name: str, value: str, allowed: str) -> ConfigError:
    return ConfigError(f"{name}={value!r} is not allowed: {allowed}")


def read_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _bad(name, raw, "use true or false")


def read_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise _bad(name, raw, f"use a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise _bad(name, raw, f"use a whole number from {low} to {high}")
    return value


def read_float(
    env: Mapping[str, str],
    name: str,
    default: float,
    low: float,
    high: float,
    *,
    low_inclusive: bool = False,
) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    allowed = (
        f"use a number from {low:g} to {high:g}"
        if low_inclusive
        else f"use a number above {low:g} and at most {high:g}"
    )
    try:
        value = float(raw.strip())
    except ValueError:
        raise _bad(name, raw, allowed) from None
    above_low = value >= low if low_inclusive else value > low
    if not math.isfinite(value) or not above_low or value > high:
        raise _bad(name, raw, allowed)
    return value


def read_namespace(env: Mapping[str, str], name: str = "METRIC_NAMESPACE") -> str:
    raw = env.get(name)
    if raw is None or raw == "":
        return DEFAULT_NAMESPACE
    if raw.startswith("AWS/") or not _NAMESPACE.match(raw):
        raise _bad(
            name,
            raw,
            "use 1 to 255 letters, digits and . - _ / # :, not starting with 'AWS/' (reserved for AWS)",
        )
    return raw


def read_key_metrics(env: Mapping[str, str], name: str = "KEY_METRICS") -> KeyMetricsSelection:
    """Which keys get per-key metrics (:mod:`quota_monitor.publish.selection`); the default is ``auto``:
    keys at or above their lowest alert level, or tagged, at most 25."""
    raw = env.get(name)
    if raw is None:
        return AUTO_KEYS
    try:
        return parse_key_metrics(raw)
    except ValueError as error:
        raise _bad(name, raw, str(error)) from None


TOPIC_ARN_ALLOWED = "use an SNS topic ARN, arn:<partition>:sns:<region>:<account>:<name>"
ROUTES_ALLOWED = (
    'use a JSON object that maps route names to SNS topic ARNs, such as {"gold": '
    '"arn:aws:sns:us-east-1:123456789012:gold-alerts"}'
)


def read_routes(env: Mapping[str, str], name: str = "ALERT_ROUTES") -> dict[str, str]:
    """``ALERT_ROUTES``: route name -> SNS topic ARN (:mod:`quota_monitor.alert.routes`); unset is none."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return {}
    try:
        routes = json.loads(raw)
    except ValueError:
        raise _bad(name, raw, f"it is not JSON; {ROUTES_ALLOWED}") from None
    if not isinstance(routes, dict):
        raise _bad(name, raw, ROUTES_ALLOWED)
    for route, topic in routes.items():
        problem = route_name_problem(route)
        if problem is not None:
            raise _bad(name, raw, f"route {route!r}: {problem}")
        if not isinstance(topic, str) or not _TOPIC_ARN.match(topic):
            raise _bad(name, raw, f"route {route!r}: {topic!r} is not a topic ARN; {TOPIC_ARN_ALLOWED}")
    return dict(routes)


EVENT_BUS_ALLOWED = (
    "use an EventBridge bus's name (such as default) or ARN "
    "(arn:<partition>:events:<region>:<account>:event-bus/<name>); letters, digits, . - _ in the name"
)


def read_event_bus(env: Mapping[str, str], name: str = "EVENT_BUS_NAME") -> str | None:
    """``EVENT_BUS_NAME``: the bus that gets an event per notification (:mod:`quota_monitor.deliver.events`);
    unset means no events."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    if len(raw) > 1600 or not _EVENT_BUS.match(raw.strip()):
        raise _bad(name, raw, EVENT_BUS_ALLOWED)
    return raw.strip()


def read_levels(env: Mapping[str, str], name: str = "THRESHOLDS") -> tuple[int, ...]:
    """The default alert levels; also what ``KEY_METRICS=auto`` and the records read, alerts or not."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return DEFAULT_LEVELS
    try:
        return parse_levels(raw)
    except InvalidLevels as error:
        raise _bad(name, raw, f"{error}; {LEVELS_ALLOWED}") from None


#: ``APIGATEWAY_MAX_RPS`` at least, with the fast path on: six calls a minute, so that the shared
#: budget (:mod:`quota_monitor.read.budget`) has room for a burst of one and a rate above zero.
MIN_SHARED_MAX_RPS: Final = 0.1


@dataclass(frozen=True)
class ScanSettings:
    """How to read API Gateway."""

    page_size: int = MAX_PAGE_SIZE
    week_start: int = DEFAULT_WEEK_START
    cross_check_plan_keys: bool = False
    max_rps: float = DEFAULT_MAX_RPS
    burst: int = DEFAULT_BURST
    max_workers: int = 4
    max_attempts: int = 8

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScanSettings:
        week_raw = env.get("WEEK_START_DAY")
        week_start = DEFAULT_WEEK_START
        if week_raw:
            try:
                week_start = parse_weekday(week_raw)
            except ValueError:
                raise _bad("WEEK_START_DAY", week_raw, f"use one of {', '.join(WEEKDAYS)}") from None
        return cls(
            page_size=read_int(env, "USAGE_PAGE_SIZE", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE),
            week_start=week_start,
            cross_check_plan_keys=read_bool(env, "CROSS_CHECK_PLAN_KEYS", False),
            max_rps=read_float(env, "APIGATEWAY_MAX_RPS", DEFAULT_MAX_RPS, 0.0, ACCOUNT_MAX_RPS),
            burst=read_int(env, "APIGATEWAY_BURST", DEFAULT_BURST, 1, ACCOUNT_BURST),
            max_workers=read_int(env, "APIGATEWAY_MAX_CONCURRENCY", 4, 1, 16),
            max_attempts=read_int(env, "APIGATEWAY_MAX_ATTEMPTS", 8, 1, 20),
        )

    def per_target(self, targets: int) -> ScanSettings:
        """These settings for each of ``targets`` read at once: ``APIGATEWAY_MAX_CONCURRENCY`` shared
        out, at least :data:`MIN_WORKERS_A_TARGET` each: a target's rate limit, not its workers, sets
        its pace (2 reach the floor at 5 calls a second), and each plan in flight holds its GetUsage
        pages in memory (docs/benchmarks.md, "Every region at once")."""
        if targets <= 1:
            return self
        return replace(self, max_workers=max(MIN_WORKERS_A_TARGET, math.ceil(self.max_workers / targets)))


#: Usage plans of one target read at the same time, at least, when a run reads several targets.
MIN_WORKERS_A_TARGET: Final = 2


@dataclass(frozen=True)
class ForecastSettings:
    """When a projected exhaustion is worth an alert (see :mod:`quota_monitor.compute.forecast`)."""

    enabled: bool = True
    min_elapsed_percent: float = 25.0
    min_utilization_percent: float = 50.0
    margin_percent: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ForecastSettings:
        return cls(
            enabled=read_bool(env, "FORECAST_ENABLED", True),
            min_elapsed_percent=read_float(
                env, "FORECAST_MIN_ELAPSED_PERCENT", 25.0, 0.0, 100.0, low_inclusive=True
            ),
            min_utilization_percent=read_float(
                env, "FORECAST_MIN_UTILIZATION_PERCENT", 50.0, 0.0, 100.0, low_inclusive=True
            ),
            margin_percent=read_float(env, "FORECAST_MARGIN_PERCENT", 10.0, 0.0, 1_000.0, low_inclusive=True),
        )


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go and when they fire. Present only when both the topic and the table are set.

    ``topic_arn`` is the default route's topic; ``routes`` maps the other routes' names to theirs.
    ``event_bus`` (a name or an ARN) gets an EventBridge event per notification; None: no events.
    """

    topic_arn: str
    table_name: str
    levels: tuple[int, ...] = DEFAULT_LEVELS
    recovery: bool = True
    digest_min_alerts: int = 5
    forecast: ForecastSettings = ForecastSettings()
    routes: dict[str, str] = field(default_factory=dict)
    event_bus: str | None = None

    @property
    def partition(self) -> str:
        """The AWS partition the monitor runs in, from the topic's ARN (``aws``, ``aws-cn``...)."""
        return self.topic_arn.split(":", 2)[1]

    @property
    def account_id(self) -> str:
        """The monitor's own account, from the topic's ARN: where a key of no stated target is."""
        return self.topic_arn.split(":")[4]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertSettings | None:
        topic = (env.get("ALERT_TOPIC_ARN") or "").strip()
        table = (env.get("ALERT_TABLE_NAME") or "").strip()
        if not topic and not table:
            # Routes and events go out under the alert state's claims: they need the topic and table.
            for needs_alerts in ("ALERT_ROUTES", "EVENT_BUS_NAME"):
                if (env.get(needs_alerts) or "").strip():
                    raise _bad(
                        needs_alerts, env[needs_alerts], "set ALERT_TOPIC_ARN and ALERT_TABLE_NAME too"
                    )
            return None
        if not topic:
            raise _bad(
                "ALERT_TOPIC_ARN", env.get("ALERT_TOPIC_ARN", ""), "set it too when ALERT_TABLE_NAME is set"
            )
        if not table:
            raise _bad(
                "ALERT_TABLE_NAME", env.get("ALERT_TABLE_NAME", ""), "set it too when ALERT_TOPIC_ARN is set"
            )
        if not _TOPIC_ARN.match(topic):
            raise _bad("ALERT_TOPIC_ARN", topic, TOPIC_ARN_ALLOWED)
        if not _TABLE_NAME.match(table):
            raise _bad("ALERT_TABLE_NAME", table, "use a DynamoDB table name: 3 to 255 of A-Z a-z 0-9 _ - .")
        return cls(
            topic_arn=topic,
            table_name=table,
            levels=read_levels(env),
            recovery=read_bool(env, "RECOVERY_NOTIFICATIONS", True),
            digest_min_alerts=read_int(env, "DIGEST_MIN_ALERTS", 5, 2, 100_000),
            forecast=ForecastSettings.from_env(env),
            routes=read_routes(env),
            event_bus=read_event_bus(env),
        )


@dataclass(frozen=True)
class FastSettings:
    """The fast path (docs/alerts.md, "Two paths"): every ``minutes`` a second run reads only the
    plans of the full scan's watch list, so that a crossing is alerted within minutes. 0: off.

    ``scan_minutes`` is the full scan's interval (``SCHEDULE_MINUTES``): how far ahead the full scan
    looks for keys about to reach their first level, and how long its watch list stays valid.
    With the fast path on, both paths take their API Gateway calls from one budget
    (:mod:`quota_monitor.read.budget`).
    """

    minutes: int = 0
    scan_minutes: int = 15

    @property
    def enabled(self) -> bool:
        return self.minutes > 0

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.minutes)

    @property
    def scan_interval(self) -> timedelta:
        return timedelta(minutes=self.scan_minutes)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FastSettings:
        scan = read_int(env, "SCHEDULE_MINUTES", 15, 1, 1440)
        fast = read_int(env, "FAST_SCHEDULE_MINUTES", 0, 0, 60)
        if fast and fast >= scan:
            raise _bad(
                "FAST_SCHEDULE_MINUTES",
                env["FAST_SCHEDULE_MINUTES"],
                f"use 0 (off) or fewer minutes than the full scan's SCHEDULE_MINUTES={scan}",
            )
        return cls(minutes=fast, scan_minutes=scan)


REGIONS_ALLOWED = "use AWS region names of one partition, separated by commas, such as us-east-1,eu-west-1"
ROLE_ARNS_ALLOWED = (
    "use IAM role ARNs, arn:<partition>:iam::<12-digit account>:role/<name>, separated by commas"
)


def _listed(env: Mapping[str, str], name: str, allowed: str) -> tuple[str, ...] | None:
    """A comma list that is either unset (None) or one item or more: an empty list or item is an error."""
    raw = env.get(name)
    if raw is None:
        return None
    items = tuple(item.strip() for item in raw.split(","))
    if not raw.strip():
        raise _bad(name, raw, f"an empty list; {allowed}, or leave it unset")
    if any(not item for item in items):
        raise _bad(name, raw, f"an empty item between commas; {allowed}")
    twice = sorted({item for item in items if items.count(item) > 1})
    if twice:
        raise _bad(name, raw, f"{twice[0]} is listed twice; list each once")
    return items


def read_regions(env: Mapping[str, str], name: str = "REGIONS") -> tuple[str, ...]:
    """``REGIONS``: the regions to scan (:mod:`quota_monitor.read.targets`); unset, the monitor's own."""
    regions = _listed(env, name, REGIONS_ALLOWED)
    if regions is None:
        return ()
    known = region_partitions()
    for region in regions:
        if region not in known:
            near = difflib.get_close_matches(region, sorted(known), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise _bad(
                name, env[name], f"{region} is not an AWS region API Gateway is in{hint}; {REGIONS_ALLOWED}"
            )
    partitions = sorted({known[region] for region in regions})
    if len(partitions) > 1:
        raise _bad(
            name,
            env[name],
            f"regions of several partitions ({', '.join(partitions)}): one set of credentials works in one "
            f"partition; {REGIONS_ALLOWED}",
        )
    return regions


def read_spoke_role_arns(env: Mapping[str, str], name: str = "SPOKE_ROLE_ARNS") -> tuple[str, ...]:
    """``SPOKE_ROLE_ARNS``: roles in other accounts to assume and scan; unset, none."""
    arns = _listed(env, name, ROLE_ARNS_ALLOWED)
    if arns is None:
        return ()
    for arn in arns:
        if not ROLE_ARN.match(arn):
            raise _bad(name, env[name], f"{arn!r} is not an IAM role ARN; {ROLE_ARNS_ALLOWED}")
    return arns


#: An SSM parameter path: ``/`` then names of letters, digits and ``_ . -``, separated by ``/``.
_PARAMETER_PATH = re.compile(r"^(?:/[A-Za-z0-9_.-]+)+$")
DEFAULT_SPOKE_ROLE_NAME: Final = "ApiGatewayQuotaMonitorSpoke"
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


#: An S3 bucket's name (general purpose buckets): 3 to 63 of a-z 0-9 . -, a letter or digit at each end.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def read_bucket(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not _BUCKET.match(raw) or ".." in raw:
        raise _bad(name, raw, "use an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-'")
    return raw


@dataclass(frozen=True)
class TargetSettings:
    """Which accounts and regions a run reads: ``REGIONS`` in the monitor's own account and in each
    spoke account: those of ``SPOKE_ROLE_ARNS``, and those listed under the SSM parameter path
    ``SPOKE_ACCOUNTS_PARAMETER``, read at run time, each through its role ``SPOKE_ROLE_NAME``
    (docs/deploy.md, "Every region and every account")."""

    #: Empty: the monitor's own region only.
    regions: tuple[str, ...] = ()
    spoke_role_arns: tuple[str, ...] = ()
    spoke_accounts_parameter: str | None = None
    spoke_role_name: str = DEFAULT_SPOKE_ROLE_NAME

    @property
    def spokes(self) -> bool:
        return bool(self.spoke_role_arns) or self.spoke_accounts_parameter is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TargetSettings:
        path = env.get("SPOKE_ACCOUNTS_PARAMETER", "").strip() or None
        if path is not None and not _PARAMETER_PATH.match(path):
            raise _bad(
                "SPOKE_ACCOUNTS_PARAMETER",
                path,
                "use an SSM parameter path such as /ApiGatewayQuotaMonitor/spoke-accounts",
            )
        role_name = env.get("SPOKE_ROLE_NAME", "").strip() or DEFAULT_SPOKE_ROLE_NAME
        if not _ROLE_NAME.match(role_name):
            raise _bad(
                "SPOKE_ROLE_NAME", role_name, "use an IAM role name: 1 to 64 letters, digits and +=,.@_-"
            )
        settings = cls(
            regions=read_regions(env),
            spoke_role_arns=read_spoke_role_arns(env),
            spoke_accounts_parameter=path,
            spoke_role_name=role_name,
        )
        partitions = {region_partitions()[region] for region in settings.regions}
        for arn in settings.spoke_role_arns:
            partition = arn.split(":")[1]
            if partitions and partition not in partitions:
                raise _bad(
                    "SPOKE_ROLE_ARNS",
                    env["SPOKE_ROLE_ARNS"],
                    f"{arn} is in partition {partition}, REGIONS in {', '.join(sorted(partitions))}: "
                    "one set of credentials works in one partition",
                )
        return settings

    def regions_for(self, home_region: str) -> tuple[str, ...]:
        return self.regions or (home_region,)


@dataclass(frozen=True)
class Settings:
    """Everything the Lambda handler reads from its environment."""

    namespace: str
    scan: ScanSettings
    alerts: AlertSettings | None = None
    key_metrics: KeyMetricsSelection = field(default=AUTO_KEYS)
    #: ``THRESHOLDS``, read with alerts or without: the default levels of the metric selection and
    #: the records (with alerts configured, the same as ``alerts.levels``).
    levels: tuple[int, ...] = DEFAULT_LEVELS
    #: The forecast rule the records use (with alerts configured, the same as ``alerts.forecast``).
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    #: The accounts and regions to read (``REGIONS``, ``SPOKE_ROLE_ARNS``).
    targets: TargetSettings = field(default_factory=TargetSettings)
    #: The fast path (``FAST_SCHEDULE_MINUTES``, ``SCHEDULE_MINUTES``); off unless set.
    fast: FastSettings = field(default_factory=FastSettings)
    #: ``KEY_SNAPSHOTS``: every key's numbers kept in the state table for the quota endpoint
    #: (:mod:`quota_monitor.publish.snapshots`); off unless set.
    key_snapshots: bool = False
    #: ``ARCHIVE_BUCKET``: every full run's records kept in this S3 bucket
    #: (:mod:`quota_monitor.publish.archive`); none unless set.
    archive_bucket: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        alerts = AlertSettings.from_env(env)
        fast = FastSettings.from_env(env)
        if fast.enabled and alerts is None:
            raise _bad(
                "FAST_SCHEDULE_MINUTES",
                env["FAST_SCHEDULE_MINUTES"],
                "set ALERT_TOPIC_ARN and ALERT_TABLE_NAME too: the fast path alerts, and keeps its "
                "watch lists and the shared API budget in the alert state table",
            )
        scan = ScanSettings.from_env(env)
        if fast.enabled and scan.max_rps < MIN_SHARED_MAX_RPS:
            raise _bad(
                "APIGATEWAY_MAX_RPS",
                env["APIGATEWAY_MAX_RPS"],
                f"use at least {MIN_SHARED_MAX_RPS:g} with the fast path on (FAST_SCHEDULE_MINUTES="
                f"{fast.minutes}): the shared API budget needs a few calls a minute for its burst "
                "and its rate, or set FAST_SCHEDULE_MINUTES=0",
            )
        key_snapshots = read_bool(env, "KEY_SNAPSHOTS", False)
        if key_snapshots and alerts is None:
            raise _bad(
                "KEY_SNAPSHOTS",
                env["KEY_SNAPSHOTS"],
                "set ALERT_TABLE_NAME and ALERT_TOPIC_ARN too: the snapshots are kept in the state table",
            )
        return cls(
            namespace=read_namespace(env),
            scan=scan,
            alerts=alerts,
            key_metrics=read_key_metrics(env),
            levels=read_levels(env),
            forecast=ForecastSettings.from_env(env),
            targets=TargetSettings.from_env(env),
            fast=fast,
            key_snapshots=key_snapshots,
            archive_bucket=read_bucket(env, "ARCHIVE_BUCKET"),
        )
