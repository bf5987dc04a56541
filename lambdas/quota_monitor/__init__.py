"""API Gateway usage-plan quota monitor: the Lambda runtime package, and its public surface.

A run reads in one direction, a subpackage a step:

1. :mod:`quota_monitor.read`: API Gateway's usage plans, keys and usage, rate limited and retried;
2. :mod:`quota_monitor.compute`: quota periods and where each key stands;
3. :mod:`quota_monitor.publish`: CloudWatch metrics, and the records (a JSON line per key and plan);
4. :mod:`quota_monitor.alert`: the crossing rules and their state;
5. :mod:`quota_monitor.deliver`: messages, SNS, EventBridge, the Slack forwarder.

:mod:`quota_monitor.monitor` (the full scan) and :mod:`quota_monitor.fast` (the fast path) compose
the steps; the handlers only wire them. Other packages (the CLI, the sandbox, the benchmarks, the
CDK app) import the names below from here; the runtime's own modules and the tests import from the
module that defines a name. ``quota_monitor.usage_pages`` stays importable: the README documents it.
"""

from quota_monitor.alert.routes import route_name_problem
from quota_monitor.alert.run import run_alerts
from quota_monitor.alert.state import AlertStateStore
from quota_monitor.alert.thresholds import key_levels
from quota_monitor.alert.watch_store import WatchStore
from quota_monitor.clients import apigateway_client, client, cloudwatch_client, target_clients
from quota_monitor.compute.key_usage import parse_daily_usage
from quota_monitor.compute.levels import level_reached
from quota_monitor.compute.periods import WEEKDAYS, period_containing
from quota_monitor.config import (
    ACCOUNT_MAX_RPS,
    DEFAULT_BURST,
    DEFAULT_MAX_RPS,
    ForecastSettings,
    ScanSettings,
    Settings,
)
from quota_monitor.deliver.console import CONSOLE_HOSTS
from quota_monitor.deliver.events import EVENT_DETAIL_TYPES, EVENT_SOURCE, event_schema
from quota_monitor.deliver.messages import percent
from quota_monitor.errors import (
    ConfigError,
    InvalidStartingToken,
    MalformedResponse,
    UsageDataError,
    UsagePaginationError,
    describe,
    describe_error,
    is_configuration_error,
)
from quota_monitor.fast import run_fast
from quota_monitor.invocation import Clocks, Invocation
from quota_monitor.models import (
    PERIOD_TYPES,
    KeyUsage,
    PeriodType,
    ScanFailure,
    ScanResult,
    ScanStats,
    Target,
)
from quota_monitor.monitor import (
    AlertClients,
    FleetReport,
    RunReport,
    TargetScan,
    combined,
    metric_keys,
    publish_metrics,
    publish_targets,
    records,
    run_targets,
    scan_targets,
)
from quota_monitor.publish.archive import ARCHIVE_PREFIX, archive_target, partition_prefix
from quota_monitor.publish.metrics import (
    ALERT_HEALTH_METRICS,
    AUTO_KEY_METRICS,
    HEALTH_METRICS,
    KEY_DIMENSION,
    PER_KEY_METRICS,
    PER_PLAN_METRICS,
    PLAN_DIMENSION,
    MetricName,
)
from quota_monitor.publish.records import (
    ACCOUNT_ID,
    API_CALLS,
    API_KEY_ID,
    API_KEY_NAME,
    CONTRACT_FIELDS,
    DURATION_SECONDS,
    EXHAUSTS_AT,
    HOTTEST_KEY_ID,
    HOTTEST_KEY_NAME,
    KEY_RECORD,
    KEY_RECORD_FIELDS,
    KEYS,
    KEYS_AT_LEVEL,
    KEYS_FORECAST,
    LEVEL,
    LIMIT,
    MAX_UTILIZATION,
    METRICS,
    METRICS_PUBLISHED,
    PERIOD,
    PERIOD_START,
    PLAN_RECORD,
    PLAN_RECORD_FIELDS,
    PLANS,
    PLANS_SCANNED,
    RECORD,
    REGION,
    REMAINING,
    RUN_AT,
    SCAN_ERRORS,
    TARGET_RECORD,
    TARGET_RECORD_FIELDS,
    THROTTLES,
    USAGE_PLAN_ID,
    USAGE_PLAN_NAME,
    USED,
    UTILIZATION,
    record_lines,
    target_record,
    write_records,
)
from quota_monitor.publish.selection import (
    ALL_KEYS,
    AUTO_KEYS,
    MAX_TOP,
    NO_KEYS,
    TAG_METRICS,
    KeyMetricsSelection,
    parse_key_metrics,
)
from quota_monitor.publish.snapshots import BUCKETS as SNAPSHOT_BUCKETS
from quota_monitor.publish.snapshots import FAST_EVERY as SNAPSHOT_FAST_EVERY
from quota_monitor.publish.snapshots import SnapshotStore
from quota_monitor.publish.snapshots import bucket_key as snapshot_key
from quota_monitor.publish.snapshots import bucket_of as snapshot_bucket
from quota_monitor.publish.snapshots import fast_key as fast_snapshot_key
from quota_monitor.read.budget import CHUNK_SECONDS, MAX_BLOCK_SECONDS, BudgetRate, SharedBudget
from quota_monitor.read.calls import ApiGatewayCalls, FailedAttempt
from quota_monitor.read.guarded import guarded_api
from quota_monitor.read.scan import PlanScan, scan_account
from quota_monitor.read.targets import (
    MAX_TARGETS_AT_ONCE,
    PUBLISH_AT_ONCE,
    AssumedRoles,
    TargetAccess,
    TargetClients,
    targets,
)
from quota_monitor.read.usage_pages import MAX_PAGE_SIZE, UsagePages, UsageResult, paginate_usage

__all__ = [
    "ACCOUNT_ID",
    "ACCOUNT_MAX_RPS",
    "ALERT_HEALTH_METRICS",
    "ALL_KEYS",
    "API_CALLS",
    "API_KEY_ID",
    "API_KEY_NAME",
    "ARCHIVE_PREFIX",
    "AUTO_KEYS",
    "AUTO_KEY_METRICS",
    "CHUNK_SECONDS",
    "CONSOLE_HOSTS",
    "CONTRACT_FIELDS",
    "DEFAULT_BURST",
    "DEFAULT_MAX_RPS",
    "DURATION_SECONDS",
    "EVENT_DETAIL_TYPES",
    "EVENT_SOURCE",
    "EXHAUSTS_AT",
    "HEALTH_METRICS",
    "HOTTEST_KEY_ID",
    "HOTTEST_KEY_NAME",
    "KEYS",
    "KEYS_AT_LEVEL",
    "KEYS_FORECAST",
    "KEY_DIMENSION",
    "KEY_RECORD",
    "KEY_RECORD_FIELDS",
    "LEVEL",
    "LIMIT",
    "MAX_BLOCK_SECONDS",
    "MAX_PAGE_SIZE",
    "MAX_TARGETS_AT_ONCE",
    "MAX_TOP",
    "MAX_UTILIZATION",
    "METRICS",
    "METRICS_PUBLISHED",
    "NO_KEYS",
    "PERIOD",
    "PERIOD_START",
    "PERIOD_TYPES",
    "PER_KEY_METRICS",
    "PER_PLAN_METRICS",
    "PLANS",
    "PLANS_SCANNED",
    "PLAN_DIMENSION",
    "PLAN_RECORD",
    "PLAN_RECORD_FIELDS",
    "PUBLISH_AT_ONCE",
    "RECORD",
    "REGION",
    "REMAINING",
    "RUN_AT",
    "SCAN_ERRORS",
    "SNAPSHOT_BUCKETS",
    "SNAPSHOT_FAST_EVERY",
    "TAG_METRICS",
    "TARGET_RECORD",
    "TARGET_RECORD_FIELDS",
    "THROTTLES",
    "USAGE_PLAN_ID",
    "USAGE_PLAN_NAME",
    "USED",
    "UTILIZATION",
    "WEEKDAYS",
    "AlertClients",
    "AlertStateStore",
    "ApiGatewayCalls",
    "AssumedRoles",
    "BudgetRate",
    "Clocks",
    "ConfigError",
    "FailedAttempt",
    "FleetReport",
    "ForecastSettings",
    "InvalidStartingToken",
    "Invocation",
    "KeyMetricsSelection",
    "KeyUsage",
    "MalformedResponse",
    "MetricName",
    "PeriodType",
    "PlanScan",
    "RunReport",
    "ScanFailure",
    "ScanResult",
    "ScanSettings",
    "ScanStats",
    "Settings",
    "SharedBudget",
    "SnapshotStore",
    "Target",
    "TargetAccess",
    "TargetClients",
    "TargetScan",
    "UsageDataError",
    "UsagePages",
    "UsagePaginationError",
    "UsageResult",
    "WatchStore",
    "apigateway_client",
    "archive_target",
    "client",
    "cloudwatch_client",
    "combined",
    "describe",
    "describe_error",
    "event_schema",
    "fast_snapshot_key",
    "guarded_api",
    "is_configuration_error",
    "key_levels",
    "level_reached",
    "metric_keys",
    "paginate_usage",
    "parse_daily_usage",
    "parse_key_metrics",
    "partition_prefix",
    "percent",
    "period_containing",
    "publish_metrics",
    "publish_targets",
    "record_lines",
    "records",
    "route_name_problem",
    "run_alerts",
    "run_fast",
    "run_targets",
    "scan_account",
    "scan_targets",
    "snapshot_bucket",
    "snapshot_key",
    "target_clients",
    "target_record",
    "targets",
    "write_records",
]
