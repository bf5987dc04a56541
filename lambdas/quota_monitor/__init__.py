"""API Gateway usage-plan quota monitor: the Lambda runtime package, and its public surface.

A run reads in one direction, a subpackage a step:

1. :mod:`quota_monitor.read`: API Gateway's usage plans, keys and usage, rate limited and retried;
2. :mod:`quota_monitor.compute`: quota periods and where each key stands;
3. :mod:`quota_monitor.publish`: CloudWatch metrics, and the records (a JSON line per key and plan);
4. :mod:`quota_monitor.alert`: the crossing rules and their state;
5. :mod:`quota_monitor.deliver`: messages, SNS, the Slack forwarder.

:mod:`quota_monitor.monitor` composes the steps into one run, shared by the Lambda handler
(:mod:`quota_monitor.handler`, wiring only) and the CLI. Plain data passes between the steps
(:mod:`quota_monitor.models`); settings are read once (:mod:`quota_monitor.config`); every error
type is in :mod:`quota_monitor.errors`.

Other packages (the CLI, the sandbox, the benchmark, the CDK app) import from here only; the names
are loaded on first use, so that a Lambda cold start imports only what its handler needs.
``quota_monitor.usage_pages`` stays importable: the README documents it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quota_monitor.alert.routes import (
        DEFAULT_ROUTE as DEFAULT_ROUTE,
    )
    from quota_monitor.alert.routes import (
        ROUTE_NAME_ALLOWED as ROUTE_NAME_ALLOWED,
    )
    from quota_monitor.alert.routes import (
        TAG_ROUTE as TAG_ROUTE,
    )
    from quota_monitor.alert.routes import (
        route_name_problem as route_name_problem,
    )
    from quota_monitor.alert.run import (
        run_alerts as run_alerts,
    )
    from quota_monitor.alert.state import (
        AlertStateStore as AlertStateStore,
    )
    from quota_monitor.alert.thresholds import (
        DEFAULT_LEVELS as DEFAULT_LEVELS,
    )
    from quota_monitor.alert.thresholds import (
        key_levels as key_levels,
    )
    from quota_monitor.alert.watch import (
        WatchList as WatchList,
    )
    from quota_monitor.alert.watch import (
        choose_watched as choose_watched,
    )
    from quota_monitor.alert.watch import (
        decode_watch_list as decode_watch_list,
    )
    from quota_monitor.alert.watch_store import (
        WatchStore as WatchStore,
    )
    from quota_monitor.clients import (
        apigateway_client as apigateway_client,
    )
    from quota_monitor.clients import (
        client as client,
    )
    from quota_monitor.clients import (
        cloudwatch_client as cloudwatch_client,
    )
    from quota_monitor.clients import (
        target_clients as target_clients,
    )
    from quota_monitor.compute.key_usage import (
        parse_daily_usage as parse_daily_usage,
    )
    from quota_monitor.compute.levels import (
        level_reached as level_reached,
    )
    from quota_monitor.compute.periods import (
        WEEKDAYS as WEEKDAYS,
    )
    from quota_monitor.compute.periods import (
        period_containing as period_containing,
    )
    from quota_monitor.compute.tags import (
        TAG_MUTE as TAG_MUTE,
    )
    from quota_monitor.compute.tags import (
        TAG_PREFIX as TAG_PREFIX,
    )
    from quota_monitor.compute.tags import (
        TAG_THRESHOLDS as TAG_THRESHOLDS,
    )
    from quota_monitor.compute.tags import (
        TagValueError as TagValueError,
    )
    from quota_monitor.compute.tags import (
        tag_flag as tag_flag,
    )
    from quota_monitor.compute.tags import (
        tag_list as tag_list,
    )
    from quota_monitor.config import (
        ACCOUNT_MAX_RPS as ACCOUNT_MAX_RPS,
    )
    from quota_monitor.config import (
        DEFAULT_BURST as DEFAULT_BURST,
    )
    from quota_monitor.config import (
        DEFAULT_MAX_RPS as DEFAULT_MAX_RPS,
    )
    from quota_monitor.config import (
        EVENT_BUS_ALLOWED as EVENT_BUS_ALLOWED,
    )
    from quota_monitor.config import (
        AlertSettings as AlertSettings,
    )
    from quota_monitor.config import (
        FastSettings as FastSettings,
    )
    from quota_monitor.config import (
        ForecastSettings as ForecastSettings,
    )
    from quota_monitor.config import (
        ScanSettings as ScanSettings,
    )
    from quota_monitor.config import (
        Settings as Settings,
    )
    from quota_monitor.config import (
        TargetSettings as TargetSettings,
    )
    from quota_monitor.deliver.console import (
        CONSOLE_HOSTS as CONSOLE_HOSTS,
    )
    from quota_monitor.deliver.console import (
        console_url as console_url,
    )
    from quota_monitor.deliver.events import (
        EVENT_DETAIL_TYPES as EVENT_DETAIL_TYPES,
    )
    from quota_monitor.deliver.events import (
        EVENT_SCHEMA as EVENT_SCHEMA,
    )
    from quota_monitor.deliver.events import (
        EVENT_SOURCE as EVENT_SOURCE,
    )
    from quota_monitor.deliver.events import (
        event_schema as event_schema,
    )
    from quota_monitor.deliver.messages import (
        AlertMessage as AlertMessage,
    )
    from quota_monitor.deliver.messages import (
        percent as percent,
    )
    from quota_monitor.errors import (
        ConfigError as ConfigError,
    )
    from quota_monitor.errors import (
        DeadlineReached as DeadlineReached,
    )
    from quota_monitor.errors import (
        InvalidLevels as InvalidLevels,
    )
    from quota_monitor.errors import (
        InvalidStartingToken as InvalidStartingToken,
    )
    from quota_monitor.errors import (
        MalformedResource as MalformedResource,
    )
    from quota_monitor.errors import (
        MalformedResponse as MalformedResponse,
    )
    from quota_monitor.errors import (
        MalformedUsagePage as MalformedUsagePage,
    )
    from quota_monitor.errors import (
        PaginationLoop as PaginationLoop,
    )
    from quota_monitor.errors import (
        RunFailed as RunFailed,
    )
    from quota_monitor.errors import (
        SlackDeliveryError as SlackDeliveryError,
    )
    from quota_monitor.errors import (
        StaleStartingToken as StaleStartingToken,
    )
    from quota_monitor.errors import (
        UsageDataError as UsageDataError,
    )
    from quota_monitor.errors import (
        UsagePaginationError as UsagePaginationError,
    )
    from quota_monitor.errors import (
        describe as describe,
    )
    from quota_monitor.errors import (
        describe_error as describe_error,
    )
    from quota_monitor.errors import (
        is_configuration_error as is_configuration_error,
    )
    from quota_monitor.fast import (
        FastReport as FastReport,
    )
    from quota_monitor.fast import (
        fast_candidates as fast_candidates,
    )
    from quota_monitor.fast import (
        run_fast as run_fast,
    )
    from quota_monitor.models import (
        PERIOD_TYPES as PERIOD_TYPES,
    )
    from quota_monitor.models import (
        AlertReport as AlertReport,
    )
    from quota_monitor.models import (
        ApiKey as ApiKey,
    )
    from quota_monitor.models import (
        DailyUsage as DailyUsage,
    )
    from quota_monitor.models import (
        KeyUsage as KeyUsage,
    )
    from quota_monitor.models import (
        PeriodMismatch as PeriodMismatch,
    )
    from quota_monitor.models import (
        PeriodType as PeriodType,
    )
    from quota_monitor.models import (
        Quota as Quota,
    )
    from quota_monitor.models import (
        QuotaPeriod as QuotaPeriod,
    )
    from quota_monitor.models import (
        ScanFailure as ScanFailure,
    )
    from quota_monitor.models import (
        ScanResult as ScanResult,
    )
    from quota_monitor.models import (
        ScanStats as ScanStats,
    )
    from quota_monitor.models import (
        TagProblem as TagProblem,
    )
    from quota_monitor.models import (
        Target as Target,
    )
    from quota_monitor.models import (
        UsagePlan as UsagePlan,
    )
    from quota_monitor.monitor import (
        AlertClients as AlertClients,
    )
    from quota_monitor.monitor import (
        Clocks as Clocks,
    )
    from quota_monitor.monitor import (
        FleetReport as FleetReport,
    )
    from quota_monitor.monitor import (
        RunReport as RunReport,
    )
    from quota_monitor.monitor import (
        TargetScan as TargetScan,
    )
    from quota_monitor.monitor import (
        combined as combined,
    )
    from quota_monitor.monitor import (
        guarded_api as guarded_api,
    )
    from quota_monitor.monitor import (
        metric_keys as metric_keys,
    )
    from quota_monitor.monitor import (
        publish_metrics as publish_metrics,
    )
    from quota_monitor.monitor import (
        publish_targets as publish_targets,
    )
    from quota_monitor.monitor import (
        records as records,
    )
    from quota_monitor.monitor import (
        run_once as run_once,
    )
    from quota_monitor.monitor import (
        run_scan as run_scan,
    )
    from quota_monitor.monitor import (
        run_targets as run_targets,
    )
    from quota_monitor.monitor import (
        scan_targets as scan_targets,
    )
    from quota_monitor.publish.metrics import (
        ALERT_HEALTH_METRICS as ALERT_HEALTH_METRICS,
    )
    from quota_monitor.publish.metrics import (
        AUTO_KEY_METRICS as AUTO_KEY_METRICS,
    )
    from quota_monitor.publish.metrics import (
        DEFAULT_NAMESPACE as DEFAULT_NAMESPACE,
    )
    from quota_monitor.publish.metrics import (
        HEALTH_METRICS as HEALTH_METRICS,
    )
    from quota_monitor.publish.metrics import (
        KEY_DIMENSION as KEY_DIMENSION,
    )
    from quota_monitor.publish.metrics import (
        PER_KEY_METRICS as PER_KEY_METRICS,
    )
    from quota_monitor.publish.metrics import (
        PER_PLAN_METRICS as PER_PLAN_METRICS,
    )
    from quota_monitor.publish.metrics import (
        PLAN_DIMENSION as PLAN_DIMENSION,
    )
    from quota_monitor.publish.metrics import (
        MetricName as MetricName,
    )
    from quota_monitor.publish.metrics import (
        iter_metric_data as iter_metric_data,
    )
    from quota_monitor.publish.metrics import (
        series_of as series_of,
    )
    from quota_monitor.publish.records import (
        ACCOUNT_ID as ACCOUNT_ID,
    )
    from quota_monitor.publish.records import (
        API_CALLS as API_CALLS,
    )
    from quota_monitor.publish.records import (
        API_KEY_ID as API_KEY_ID,
    )
    from quota_monitor.publish.records import (
        API_KEY_NAME as API_KEY_NAME,
    )
    from quota_monitor.publish.records import (
        CONTRACT_FIELDS as CONTRACT_FIELDS,
    )
    from quota_monitor.publish.records import (
        DURATION_SECONDS as DURATION_SECONDS,
    )
    from quota_monitor.publish.records import (
        EXHAUSTS_AT as EXHAUSTS_AT,
    )
    from quota_monitor.publish.records import (
        HOTTEST_KEY_ID as HOTTEST_KEY_ID,
    )
    from quota_monitor.publish.records import (
        HOTTEST_KEY_NAME as HOTTEST_KEY_NAME,
    )
    from quota_monitor.publish.records import (
        KEY_RECORD as KEY_RECORD,
    )
    from quota_monitor.publish.records import (
        KEY_RECORD_FIELDS as KEY_RECORD_FIELDS,
    )
    from quota_monitor.publish.records import (
        KEYS as KEYS,
    )
    from quota_monitor.publish.records import (
        KEYS_AT_LEVEL as KEYS_AT_LEVEL,
    )
    from quota_monitor.publish.records import (
        KEYS_FORECAST as KEYS_FORECAST,
    )
    from quota_monitor.publish.records import (
        LEVEL as LEVEL,
    )
    from quota_monitor.publish.records import (
        LEVELS as LEVELS,
    )
    from quota_monitor.publish.records import (
        LIMIT as LIMIT,
    )
    from quota_monitor.publish.records import (
        MAX_UTILIZATION as MAX_UTILIZATION,
    )
    from quota_monitor.publish.records import (
        METRICS as METRICS,
    )
    from quota_monitor.publish.records import (
        METRICS_PUBLISHED as METRICS_PUBLISHED,
    )
    from quota_monitor.publish.records import (
        PERIOD as PERIOD,
    )
    from quota_monitor.publish.records import (
        PERIOD_START as PERIOD_START,
    )
    from quota_monitor.publish.records import (
        PLAN_RECORD as PLAN_RECORD,
    )
    from quota_monitor.publish.records import (
        PLAN_RECORD_FIELDS as PLAN_RECORD_FIELDS,
    )
    from quota_monitor.publish.records import (
        PLANS as PLANS,
    )
    from quota_monitor.publish.records import (
        PLANS_SCANNED as PLANS_SCANNED,
    )
    from quota_monitor.publish.records import (
        RECORD as RECORD,
    )
    from quota_monitor.publish.records import (
        REGION as REGION,
    )
    from quota_monitor.publish.records import (
        REMAINING as REMAINING,
    )
    from quota_monitor.publish.records import (
        RUN_AT as RUN_AT,
    )
    from quota_monitor.publish.records import (
        SCAN_ERRORS as SCAN_ERRORS,
    )
    from quota_monitor.publish.records import (
        TARGET_RECORD as TARGET_RECORD,
    )
    from quota_monitor.publish.records import (
        TARGET_RECORD_FIELDS as TARGET_RECORD_FIELDS,
    )
    from quota_monitor.publish.records import (
        THROTTLES as THROTTLES,
    )
    from quota_monitor.publish.records import (
        USAGE_PLAN_ID as USAGE_PLAN_ID,
    )
    from quota_monitor.publish.records import (
        USAGE_PLAN_NAME as USAGE_PLAN_NAME,
    )
    from quota_monitor.publish.records import (
        USED as USED,
    )
    from quota_monitor.publish.records import (
        UTILIZATION as UTILIZATION,
    )
    from quota_monitor.publish.records import (
        RecordsWritten as RecordsWritten,
    )
    from quota_monitor.publish.records import (
        key_record as key_record,
    )
    from quota_monitor.publish.records import (
        record_lines as record_lines,
    )
    from quota_monitor.publish.records import (
        target_record as target_record,
    )
    from quota_monitor.publish.records import (
        write_records as write_records,
    )
    from quota_monitor.publish.selection import (
        ALL_KEYS as ALL_KEYS,
    )
    from quota_monitor.publish.selection import (
        AUTO_KEYS as AUTO_KEYS,
    )
    from quota_monitor.publish.selection import (
        DEFAULT_AUTO_CAP as DEFAULT_AUTO_CAP,
    )
    from quota_monitor.publish.selection import (
        MAX_TOP as MAX_TOP,
    )
    from quota_monitor.publish.selection import (
        METRICS_ALWAYS as METRICS_ALWAYS,
    )
    from quota_monitor.publish.selection import (
        NO_KEYS as NO_KEYS,
    )
    from quota_monitor.publish.selection import (
        TAG_METRICS as TAG_METRICS,
    )
    from quota_monitor.publish.selection import (
        KeyMetricsSelection as KeyMetricsSelection,
    )
    from quota_monitor.publish.selection import (
        MetricKeys as MetricKeys,
    )
    from quota_monitor.publish.selection import (
        choose_keys as choose_keys,
    )
    from quota_monitor.publish.selection import (
        parse_key_metrics as parse_key_metrics,
    )
    from quota_monitor.publish.selection import (
        select_keys as select_keys,
    )
    from quota_monitor.read.budget import (
        BudgetLimiter as BudgetLimiter,
    )
    from quota_monitor.read.budget import (
        BudgetRate as BudgetRate,
    )
    from quota_monitor.read.budget import (
        SharedBudget as SharedBudget,
    )
    from quota_monitor.read.calls import (
        ApiGatewayCalls as ApiGatewayCalls,
    )
    from quota_monitor.read.calls import (
        FailedAttempt as FailedAttempt,
    )
    from quota_monitor.read.calls import (
        RetryPolicy as RetryPolicy,
    )
    from quota_monitor.read.limiter import (
        RateLimiter as RateLimiter,
    )
    from quota_monitor.read.scan import (
        PlanScan as PlanScan,
    )
    from quota_monitor.read.scan import (
        scan_account as scan_account,
    )
    from quota_monitor.read.targets import (
        AssumedRoles as AssumedRoles,
    )
    from quota_monitor.read.targets import (
        TargetAccess as TargetAccess,
    )
    from quota_monitor.read.targets import (
        TargetClients as TargetClients,
    )
    from quota_monitor.read.targets import (
        region_partitions as region_partitions,
    )
    from quota_monitor.read.targets import (
        targets as targets,
    )
    from quota_monitor.read.usage_pages import (
        MAX_PAGE_SIZE as MAX_PAGE_SIZE,
    )
    from quota_monitor.read.usage_pages import (
        UsagePages as UsagePages,
    )
    from quota_monitor.read.usage_pages import (
        UsageResult as UsageResult,
    )
    from quota_monitor.read.usage_pages import (
        paginate_usage as paginate_usage,
    )

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "fast_candidates": "quota_monitor.fast",
    "BudgetLimiter": "quota_monitor.read.budget",
    "FastSettings": "quota_monitor.config",
    "Clocks": "quota_monitor.monitor",
    "BudgetRate": "quota_monitor.read.budget",
    "SharedBudget": "quota_monitor.read.budget",
    "FastReport": "quota_monitor.fast",
    "run_fast": "quota_monitor.fast",
    "choose_watched": "quota_monitor.alert.watch",
    "WatchList": "quota_monitor.alert.watch",
    "decode_watch_list": "quota_monitor.alert.watch",
    "WatchStore": "quota_monitor.alert.watch_store",
    "ACCOUNT_ID": "quota_monitor.publish.records",
    "API_CALLS": "quota_monitor.publish.records",
    "DURATION_SECONDS": "quota_monitor.publish.records",
    "METRICS_PUBLISHED": "quota_monitor.publish.records",
    "PLANS": "quota_monitor.publish.records",
    "PLANS_SCANNED": "quota_monitor.publish.records",
    "REGION": "quota_monitor.publish.records",
    "SCAN_ERRORS": "quota_monitor.publish.records",
    "TARGET_RECORD": "quota_monitor.publish.records",
    "TARGET_RECORD_FIELDS": "quota_monitor.publish.records",
    "THROTTLES": "quota_monitor.publish.records",
    "target_record": "quota_monitor.publish.records",
    "FleetReport": "quota_monitor.monitor",
    "TargetScan": "quota_monitor.monitor",
    "combined": "quota_monitor.monitor",
    "publish_targets": "quota_monitor.monitor",
    "run_targets": "quota_monitor.monitor",
    "scan_targets": "quota_monitor.monitor",
    "AssumedRoles": "quota_monitor.read.targets",
    "TargetAccess": "quota_monitor.read.targets",
    "TargetClients": "quota_monitor.read.targets",
    "region_partitions": "quota_monitor.read.targets",
    "targets": "quota_monitor.read.targets",
    "target_clients": "quota_monitor.clients",
    "TargetSettings": "quota_monitor.config",
    "ACCOUNT_MAX_RPS": "quota_monitor.config",
    "AlertSettings": "quota_monitor.config",
    "DEFAULT_BURST": "quota_monitor.config",
    "DEFAULT_MAX_RPS": "quota_monitor.config",
    "ForecastSettings": "quota_monitor.config",
    "ScanSettings": "quota_monitor.config",
    "Settings": "quota_monitor.config",
    "ConfigError": "quota_monitor.errors",
    "DeadlineReached": "quota_monitor.errors",
    "InvalidLevels": "quota_monitor.errors",
    "InvalidStartingToken": "quota_monitor.errors",
    "MalformedResource": "quota_monitor.errors",
    "MalformedResponse": "quota_monitor.errors",
    "MalformedUsagePage": "quota_monitor.errors",
    "PaginationLoop": "quota_monitor.errors",
    "RunFailed": "quota_monitor.errors",
    "SlackDeliveryError": "quota_monitor.errors",
    "StaleStartingToken": "quota_monitor.errors",
    "UsageDataError": "quota_monitor.errors",
    "UsagePaginationError": "quota_monitor.errors",
    "describe": "quota_monitor.errors",
    "describe_error": "quota_monitor.errors",
    "is_configuration_error": "quota_monitor.errors",
    "AlertReport": "quota_monitor.models",
    "ApiKey": "quota_monitor.models",
    "DailyUsage": "quota_monitor.models",
    "KeyUsage": "quota_monitor.models",
    "PERIOD_TYPES": "quota_monitor.models",
    "PeriodMismatch": "quota_monitor.models",
    "PeriodType": "quota_monitor.models",
    "Quota": "quota_monitor.models",
    "QuotaPeriod": "quota_monitor.models",
    "ScanFailure": "quota_monitor.models",
    "ScanResult": "quota_monitor.models",
    "ScanStats": "quota_monitor.models",
    "TagProblem": "quota_monitor.models",
    "Target": "quota_monitor.models",
    "UsagePlan": "quota_monitor.models",
    "apigateway_client": "quota_monitor.clients",
    "client": "quota_monitor.clients",
    "cloudwatch_client": "quota_monitor.clients",
    "AlertClients": "quota_monitor.monitor",
    "RunReport": "quota_monitor.monitor",
    "guarded_api": "quota_monitor.monitor",
    "publish_metrics": "quota_monitor.monitor",
    "run_once": "quota_monitor.monitor",
    "run_scan": "quota_monitor.monitor",
    "ApiGatewayCalls": "quota_monitor.read.calls",
    "FailedAttempt": "quota_monitor.read.calls",
    "RetryPolicy": "quota_monitor.read.calls",
    "RateLimiter": "quota_monitor.read.limiter",
    "PlanScan": "quota_monitor.read.scan",
    "scan_account": "quota_monitor.read.scan",
    "MAX_PAGE_SIZE": "quota_monitor.read.usage_pages",
    "UsagePages": "quota_monitor.read.usage_pages",
    "UsageResult": "quota_monitor.read.usage_pages",
    "paginate_usage": "quota_monitor.read.usage_pages",
    "WEEKDAYS": "quota_monitor.compute.periods",
    "period_containing": "quota_monitor.compute.periods",
    "parse_daily_usage": "quota_monitor.compute.key_usage",
    "TAG_MUTE": "quota_monitor.compute.tags",
    "TAG_PREFIX": "quota_monitor.compute.tags",
    "TAG_THRESHOLDS": "quota_monitor.compute.tags",
    "TagValueError": "quota_monitor.compute.tags",
    "tag_flag": "quota_monitor.compute.tags",
    "tag_list": "quota_monitor.compute.tags",
    "ALERT_HEALTH_METRICS": "quota_monitor.publish.metrics",
    "DEFAULT_NAMESPACE": "quota_monitor.publish.metrics",
    "HEALTH_METRICS": "quota_monitor.publish.metrics",
    "KEY_DIMENSION": "quota_monitor.publish.metrics",
    "MetricName": "quota_monitor.publish.metrics",
    "PLAN_DIMENSION": "quota_monitor.publish.metrics",
    "PER_KEY_METRICS": "quota_monitor.publish.metrics",
    "PER_PLAN_METRICS": "quota_monitor.publish.metrics",
    "ALL_KEYS": "quota_monitor.publish.selection",
    "KeyMetricsSelection": "quota_monitor.publish.selection",
    "MAX_TOP": "quota_monitor.publish.selection",
    "NO_KEYS": "quota_monitor.publish.selection",
    "parse_key_metrics": "quota_monitor.publish.selection",
    "select_keys": "quota_monitor.publish.selection",
    "DEFAULT_LEVELS": "quota_monitor.alert.thresholds",
    "run_alerts": "quota_monitor.alert.run",
    "AlertStateStore": "quota_monitor.alert.state",
    "AlertMessage": "quota_monitor.deliver.messages",
    "CONSOLE_HOSTS": "quota_monitor.deliver.console",
    "console_url": "quota_monitor.deliver.console",
    "percent": "quota_monitor.deliver.messages",
    "DEFAULT_ROUTE": "quota_monitor.alert.routes",
    "ROUTE_NAME_ALLOWED": "quota_monitor.alert.routes",
    "TAG_ROUTE": "quota_monitor.alert.routes",
    "route_name_problem": "quota_monitor.alert.routes",
    "EVENT_DETAIL_TYPES": "quota_monitor.deliver.events",
    "EVENT_SCHEMA": "quota_monitor.deliver.events",
    "EVENT_SOURCE": "quota_monitor.deliver.events",
    "event_schema": "quota_monitor.deliver.events",
    "EVENT_BUS_ALLOWED": "quota_monitor.config",
    "key_levels": "quota_monitor.alert.thresholds",
    "level_reached": "quota_monitor.compute.levels",
    "metric_keys": "quota_monitor.monitor",
    "records": "quota_monitor.monitor",
    "AUTO_KEY_METRICS": "quota_monitor.publish.metrics",
    "series_of": "quota_monitor.publish.metrics",
    "iter_metric_data": "quota_monitor.publish.metrics",
    "AUTO_KEYS": "quota_monitor.publish.selection",
    "DEFAULT_AUTO_CAP": "quota_monitor.publish.selection",
    "TAG_METRICS": "quota_monitor.publish.selection",
    "METRICS_ALWAYS": "quota_monitor.publish.selection",
    "MetricKeys": "quota_monitor.publish.selection",
    "choose_keys": "quota_monitor.publish.selection",
    "RECORD": "quota_monitor.publish.records",
    "KEY_RECORD": "quota_monitor.publish.records",
    "PLAN_RECORD": "quota_monitor.publish.records",
    "RUN_AT": "quota_monitor.publish.records",
    "LEVELS": "quota_monitor.publish.records",
    "LEVEL": "quota_monitor.publish.records",
    "METRICS": "quota_monitor.publish.records",
    "EXHAUSTS_AT": "quota_monitor.publish.records",
    "KEYS": "quota_monitor.publish.records",
    "MAX_UTILIZATION": "quota_monitor.publish.records",
    "HOTTEST_KEY_ID": "quota_monitor.publish.records",
    "HOTTEST_KEY_NAME": "quota_monitor.publish.records",
    "KEYS_AT_LEVEL": "quota_monitor.publish.records",
    "KEYS_FORECAST": "quota_monitor.publish.records",
    "RecordsWritten": "quota_monitor.publish.records",
    "key_record": "quota_monitor.publish.records",
    "record_lines": "quota_monitor.publish.records",
    "write_records": "quota_monitor.publish.records",
    "CONTRACT_FIELDS": "quota_monitor.publish.records",
    "KEY_RECORD_FIELDS": "quota_monitor.publish.records",
    "PLAN_RECORD_FIELDS": "quota_monitor.publish.records",
    "USAGE_PLAN_ID": "quota_monitor.publish.records",
    "USAGE_PLAN_NAME": "quota_monitor.publish.records",
    "API_KEY_ID": "quota_monitor.publish.records",
    "API_KEY_NAME": "quota_monitor.publish.records",
    "PERIOD": "quota_monitor.publish.records",
    "PERIOD_START": "quota_monitor.publish.records",
    "USED": "quota_monitor.publish.records",
    "REMAINING": "quota_monitor.publish.records",
    "LIMIT": "quota_monitor.publish.records",
    "UTILIZATION": "quota_monitor.publish.records",
}

__all__ = [
    "ACCOUNT_ID",
    "ACCOUNT_MAX_RPS",
    "ALERT_HEALTH_METRICS",
    "ALL_KEYS",
    "API_CALLS",
    "API_KEY_ID",
    "API_KEY_NAME",
    "AUTO_KEYS",
    "AUTO_KEY_METRICS",
    "CONSOLE_HOSTS",
    "CONTRACT_FIELDS",
    "DEFAULT_AUTO_CAP",
    "DEFAULT_BURST",
    "DEFAULT_LEVELS",
    "DEFAULT_MAX_RPS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_ROUTE",
    "DURATION_SECONDS",
    "EVENT_BUS_ALLOWED",
    "EVENT_DETAIL_TYPES",
    "EVENT_SCHEMA",
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
    "LEVELS",
    "LIMIT",
    "MAX_PAGE_SIZE",
    "MAX_TOP",
    "MAX_UTILIZATION",
    "METRICS",
    "METRICS_ALWAYS",
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
    "RECORD",
    "REGION",
    "REMAINING",
    "ROUTE_NAME_ALLOWED",
    "RUN_AT",
    "SCAN_ERRORS",
    "TAG_METRICS",
    "TAG_MUTE",
    "TAG_PREFIX",
    "TAG_ROUTE",
    "TAG_THRESHOLDS",
    "TARGET_RECORD",
    "TARGET_RECORD_FIELDS",
    "THROTTLES",
    "USAGE_PLAN_ID",
    "USAGE_PLAN_NAME",
    "USED",
    "UTILIZATION",
    "WEEKDAYS",
    "AlertClients",
    "AlertMessage",
    "AlertReport",
    "AlertSettings",
    "AlertStateStore",
    "ApiGatewayCalls",
    "ApiKey",
    "AssumedRoles",
    "BudgetLimiter",
    "BudgetRate",
    "Clocks",
    "ConfigError",
    "DailyUsage",
    "DeadlineReached",
    "FailedAttempt",
    "FastReport",
    "FastSettings",
    "FleetReport",
    "ForecastSettings",
    "InvalidLevels",
    "InvalidStartingToken",
    "KeyMetricsSelection",
    "KeyUsage",
    "MalformedResource",
    "MalformedResponse",
    "MalformedUsagePage",
    "MetricKeys",
    "MetricName",
    "PaginationLoop",
    "PeriodMismatch",
    "PeriodType",
    "PlanScan",
    "Quota",
    "QuotaPeriod",
    "RateLimiter",
    "RecordsWritten",
    "RetryPolicy",
    "RunFailed",
    "RunReport",
    "ScanFailure",
    "ScanResult",
    "ScanSettings",
    "ScanStats",
    "Settings",
    "SharedBudget",
    "SlackDeliveryError",
    "StaleStartingToken",
    "TagProblem",
    "TagValueError",
    "Target",
    "TargetAccess",
    "TargetClients",
    "TargetScan",
    "TargetSettings",
    "UsageDataError",
    "UsagePages",
    "UsagePaginationError",
    "UsagePlan",
    "UsageResult",
    "WatchList",
    "WatchStore",
    "apigateway_client",
    "choose_keys",
    "choose_watched",
    "client",
    "cloudwatch_client",
    "combined",
    "console_url",
    "decode_watch_list",
    "describe",
    "describe_error",
    "event_schema",
    "fast_candidates",
    "guarded_api",
    "is_configuration_error",
    "iter_metric_data",
    "key_levels",
    "key_record",
    "level_reached",
    "metric_keys",
    "paginate_usage",
    "parse_daily_usage",
    "parse_key_metrics",
    "percent",
    "period_containing",
    "publish_metrics",
    "publish_targets",
    "record_lines",
    "records",
    "region_partitions",
    "route_name_problem",
    "run_alerts",
    "run_fast",
    "run_once",
    "run_scan",
    "run_targets",
    "scan_account",
    "scan_targets",
    "select_keys",
    "series_of",
    "tag_flag",
    "tag_list",
    "target_clients",
    "target_record",
    "targets",
    "write_records",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'quota_monitor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
