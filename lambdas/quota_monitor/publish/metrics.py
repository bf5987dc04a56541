"""CloudWatch metrics from a scan, published with PutMetricData in as few calls as the limits allow.

The metric contract (dashboards, alarms and users depend on it; keep it exact):

- per key, dimensions ``UsagePlanId`` and ``ApiKeyId``: ``RemainingQuota`` (Count),
  ``QuotaUtilization`` (Percent), ``UsedQuota`` (Count); plans without a quota: ``UsedQuota`` only;
  for the keys ``KEY_METRICS`` selects (:mod:`quota_monitor.publish.selection`): with the default,
  ``auto``, only ``RemainingQuota`` and ``QuotaUtilization``, for at most
  :data:`~quota_monitor.publish.selection.DEFAULT_AUTO_CAP` keys;
- per plan, dimension ``UsagePlanId``: ``MaxQuotaUtilization`` (Percent, plans with a quota and
  at least one key) and ``UsedQuota`` (Count, the plan's keys summed); neither for a plan one of
  whose keys could not be read that run, nor with ``auto``, whose plan view is the plan records in
  the log (:mod:`quota_monitor.publish.records`);
- the monitor's own health, no dimensions: ``PlansScanned``, ``KeysScanned``, ``ScanErrors``,
  ``ApiCalls``, ``ApiThrottles`` (Count) and ``ScanDuration`` (Seconds); with alerts, also
  ``AlertsSent``, ``AlertDeliveryFailures`` and ``AlertStateErrors`` (Count). A fast run publishes
  only :data:`FAST_HEALTH_METRICS`, each when it is not zero.

Why PutMetricData and not EMF or Powertools Metrics: it works outside Lambda too (the CLI's
``--publish``), its result is verifiable, and Powertools' ``add_dimension`` in a loop files every
key's value under the last key (reproduced, docs/aws-behaviour.md#cloudwatch-metrics).

PutMetricData takes up to 1,000 data points and 1 MB a request; a batch closes at whichever
comes first, with the size estimated generously (the query protocol, the most verbose wire
format CloudWatch accepts, spells every field name out per data point).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from quota_monitor.errors import describe

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from datetime import datetime

    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef as MetricDatum

    from quota_monitor.models import AlertReport, KeyUsage, ScanResult

DEFAULT_NAMESPACE = "ApiGatewayQuota"
MAX_DATUMS_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 1_000_000
#: Room kept under the 1 MB limit for the request's own fields and signing.
REQUEST_OVERHEAD_BYTES = 16_384

#: The units this monitor publishes in.
Unit = Literal["Count", "Percent", "Seconds"]


class MetricName(StrEnum):
    """Every metric name the monitor publishes: the contract in the module doc, spelled once.

    The stack builds its alarms and widgets from these (``infra/metrics.py``).
    """

    REMAINING_QUOTA = "RemainingQuota"
    QUOTA_UTILIZATION = "QuotaUtilization"
    USED_QUOTA = "UsedQuota"
    MAX_QUOTA_UTILIZATION = "MaxQuotaUtilization"
    PLANS_SCANNED = "PlansScanned"
    KEYS_SCANNED = "KeysScanned"
    SCAN_ERRORS = "ScanErrors"
    API_CALLS = "ApiCalls"
    API_THROTTLES = "ApiThrottles"
    SCAN_DURATION = "ScanDuration"
    ALERTS_SENT = "AlertsSent"
    ALERT_DELIVERY_FAILURES = "AlertDeliveryFailures"
    ALERT_STATE_ERRORS = "AlertStateErrors"
    #: Published only when not zero: a run's records that could not be written to the archive.
    ARCHIVE_FAILURES = "ArchiveFailures"
    #: Published only when not zero: targets whose key snapshots (the quota endpoint's) a run could not
    #: write.
    SNAPSHOT_FAILURES = "SnapshotFailures"


#: Dimensions of the per-key and per-plan metrics.
PLAN_DIMENSION = "UsagePlanId"
KEY_DIMENSION = "ApiKeyId"
PER_KEY_METRICS = (MetricName.REMAINING_QUOTA, MetricName.QUOTA_UTILIZATION, MetricName.USED_QUOTA)
#: What ``KEY_METRICS=auto`` (the default) publishes for each key it selects.
AUTO_KEY_METRICS = (MetricName.REMAINING_QUOTA, MetricName.QUOTA_UTILIZATION)
PER_PLAN_METRICS = (MetricName.MAX_QUOTA_UTILIZATION, MetricName.USED_QUOTA)
HEALTH_METRICS = (
    MetricName.PLANS_SCANNED,
    MetricName.KEYS_SCANNED,
    MetricName.SCAN_ERRORS,
    MetricName.API_CALLS,
    MetricName.API_THROTTLES,
    MetricName.SCAN_DURATION,
)
#: Published only when alerts are configured.
ALERT_HEALTH_METRICS = (
    MetricName.ALERTS_SENT,
    MetricName.ALERT_DELIVERY_FAILURES,
    MetricName.ALERT_STATE_ERRORS,
)


def _datum(name: MetricName, value: float, unit: Unit, at: datetime, **dimensions: str) -> MetricDatum:
    return {
        "MetricName": name.value,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Value": float(value),
        "Unit": unit,
        "Timestamp": at,
    }


def key_metric_data(
    key: KeyUsage, at: datetime, names: Sequence[MetricName] = PER_KEY_METRICS
) -> list[MetricDatum]:
    """The key's data points among ``names`` (``RemainingQuota`` and ``QuotaUtilization`` exist only
    for plans with a quota)."""
    dims = {PLAN_DIMENSION: key.usage_plan_id, KEY_DIMENSION: key.api_key_id}
    data = []
    if key.remaining is not None and key.utilization is not None:
        if MetricName.REMAINING_QUOTA in names:
            data.append(_datum(MetricName.REMAINING_QUOTA, key.remaining, "Count", at, **dims))
        if MetricName.QUOTA_UTILIZATION in names:
            data.append(_datum(MetricName.QUOTA_UTILIZATION, key.utilization, "Percent", at, **dims))
    if MetricName.USED_QUOTA in names:
        data.append(_datum(MetricName.USED_QUOTA, key.used, "Count", at, **dims))
    return data


def plan_metric_data(result: ScanResult, at: datetime) -> list[MetricDatum]:
    """The roll-ups of each plan; none for a plan with a key that could not be read (an ``api-key``
    failure): its sum and maximum would leave that key out, a wrong number rather than a gap."""
    incomplete = {failure.usage_plan_id for failure in result.failures if failure.resource == "api-key"}
    by_plan: dict[str, list[KeyUsage]] = {}
    for key in result.keys:
        if key.usage_plan_id not in incomplete:
            by_plan.setdefault(key.usage_plan_id, []).append(key)
    data: list[MetricDatum] = []
    for plan_id, keys in by_plan.items():
        utilizations = [key.utilization for key in keys if key.utilization is not None]
        if utilizations:
            data.append(
                _datum(
                    MetricName.MAX_QUOTA_UTILIZATION,
                    max(utilizations),
                    "Percent",
                    at,
                    **{PLAN_DIMENSION: plan_id},
                )
            )
        data.append(
            _datum(
                MetricName.USED_QUOTA, sum(key.used for key in keys), "Count", at, **{PLAN_DIMENSION: plan_id}
            )
        )
    return data


def health_metric_data(
    result: ScanResult, at: datetime, alerts: AlertReport | None = None
) -> list[MetricDatum]:
    stats = result.stats
    data = [
        _datum(MetricName.PLANS_SCANNED, stats.plans_scanned, "Count", at),
        _datum(MetricName.KEYS_SCANNED, stats.keys_scanned, "Count", at),
        _datum(MetricName.SCAN_ERRORS, len(result.failures), "Count", at),
        _datum(MetricName.API_CALLS, stats.api_calls, "Count", at),
        _datum(MetricName.API_THROTTLES, stats.throttles, "Count", at),
        _datum(MetricName.SCAN_DURATION, stats.duration_seconds, "Seconds", at),
    ]
    if alerts is not None:
        data.append(_datum(MetricName.ALERTS_SENT, alerts.alerts_sent, "Count", at))
        data.append(_datum(MetricName.ALERT_DELIVERY_FAILURES, alerts.all_delivery_failures, "Count", at))
        # The state table could not be read or written, or an item did not parse: alerting is
        # blind for those keys (for every key when the table cannot be read) until it is fixed.
        data.append(_datum(MetricName.ALERT_STATE_ERRORS, len(alerts.state_errors), "Count", at))
    return data


def failure_data(name: MetricName, failures: int, at: datetime) -> list[MetricDatum]:
    """``ArchiveFailures`` or ``SnapshotFailures``, when a run could not write some of them (none
    otherwise: no series, no cost)."""
    return [_datum(name, failures, "Count", at)] if failures else []


#: What a fast run publishes, each only when it is not zero (:mod:`quota_monitor.fast`): the counts
#: the alarms watch. Not KeysScanned (the full scan's heartbeat), nor the scan's size and duration.
FAST_HEALTH_METRICS = (
    MetricName.SCAN_ERRORS,
    MetricName.API_THROTTLES,
    *ALERT_HEALTH_METRICS,
)


def fast_health_metric_data(
    result: ScanResult, at: datetime, alerts: AlertReport | None = None
) -> list[MetricDatum]:
    """A fast run's health counts that are not zero (an empty list: nothing to publish)."""
    return [
        datum
        for datum in health_metric_data(result, at, alerts)
        if datum["MetricName"] in FAST_HEALTH_METRICS and datum["Value"] != 0
    ]


def iter_metric_data(
    result: ScanResult,
    keys: Iterable[KeyUsage] | None = None,
    *,
    alerts: AlertReport | None = None,
    key_metrics: Sequence[MetricName] = PER_KEY_METRICS,
    plan_rollups: bool = True,
    health: ScanResult | bool = True,
) -> Iterator[MetricDatum]:
    """Every data point for a scan, made as they are consumed: :func:`publish` holds one batch at a
    time instead of all of them (docs/benchmarks.md, "Memory").
    ``keys`` narrows the per-key metrics, ``key_metrics`` names them; the roll-ups, when published,
    stay whole. ``health``: the health metrics of ``result`` (True), of another result (the totals of
    every target a run read), or none (False: a target other than the monitor's own region's)."""
    at = result.scanned_at
    for key in result.keys if keys is None else keys:
        yield from key_metric_data(key, at, key_metrics)
    if plan_rollups:
        yield from plan_metric_data(result, at)
    if health is not False:
        yield from health_metric_data(result if health is True else health, at, alerts)


def datum_size(datum: MetricDatum) -> int:
    """A generous estimate of a data point's size on the wire, in bytes."""
    compact = json.dumps(datum, default=str, separators=(",", ":"))
    # Query encoding repeats a long member path (MetricData.member.1000.Dimensions.member.2.Value=)
    # before every field: about 40 bytes for each of the ~12 fields of a data point.
    return len(compact) + 600


def batches(
    data: Iterable[MetricDatum],
    *,
    max_datums: int = MAX_DATUMS_PER_REQUEST,
    max_bytes: int = MAX_REQUEST_BYTES - REQUEST_OVERHEAD_BYTES,
) -> Iterator[list[MetricDatum]]:
    batch: list[MetricDatum] = []
    size = 0
    for datum in data:
        datum_bytes = datum_size(datum)
        if batch and (len(batch) >= max_datums or size + datum_bytes > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(datum)
        size += datum_bytes
    if batch:
        yield batch


@dataclass(frozen=True)
class PublishReport:
    """What PutMetricData took. ``requests`` and ``datapoints`` count the ones that went through."""

    requests: int
    datapoints: int
    failed_requests: int = 0
    failed_datapoints: int = 0
    #: The cause of the first failed request (AWS's error code and message).
    first_error: str | None = None

    @property
    def complete(self) -> bool:
        return self.failed_requests == 0

    def describe_failure(self) -> str:
        total_requests = self.requests + self.failed_requests
        total_points = self.datapoints + self.failed_datapoints
        return (
            f"{self.failed_requests:,} of {total_requests:,} PutMetricData requests "
            f"({self.failed_datapoints:,} of {total_points:,} data points) failed: {self.first_error}"
        )


def publish(cloudwatch: CloudWatchClient, namespace: str, data: Iterable[MetricDatum]) -> PublishReport:
    """PutMetricData in batches, every batch tried even when one fails.

    botocore's standard retries (the client's) cover throttling and 5xx within a request; a request
    that still fails is counted and the next batch is sent all the same, so one bad moment loses one
    batch, not the rest. Missing credentials or region fail every request alike: they raise.
    """
    requests = datapoints = failed_requests = failed_datapoints = 0
    first_error: str | None = None
    for batch in batches(data):
        try:
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)
        except (NoCredentialsError, PartialCredentialsError, NoRegionError):
            raise
        except (ClientError, BotoCoreError) as error:
            failed_requests += 1
            failed_datapoints += len(batch)
            first_error = first_error or describe(error)
            continue
        requests += 1
        datapoints += len(batch)
    return PublishReport(requests, datapoints, failed_requests, failed_datapoints, first_error)
