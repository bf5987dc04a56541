"""PutMetricData: every batch is tried even when one fails, and the failure is counted and named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from quota_monitor.publish.metrics import publish

if TYPE_CHECKING:
    from apigw_sandbox.local import LocalCloud


class SecondRequestFails:
    """CloudWatch answering the second PutMetricData with a fault (after botocore's retries)."""

    def __init__(self, real: Any) -> None:
        self.real, self.requests = real, 0

    def put_metric_data(self, **kwargs: Any) -> Any:
        self.requests += 1
        if self.requests == 2:
            raise ClientError(
                {"Error": {"Code": "InternalServiceFault", "Message": "try again"}}, "PutMetricData"
            )
        return self.real.put_metric_data(**kwargs)


def datum(n: int) -> Any:
    return {
        "MetricName": "UsedQuota",
        "Dimensions": [{"Name": "UsagePlanId", "Value": "p1"}, {"Name": "ApiKeyId", "Value": f"k{n:05d}"}],
        "Value": float(n),
        "Unit": "Count",
        "Timestamp": datetime.now(UTC),
    }


def test_the_batches_after_a_failed_one_are_still_sent(cloud: LocalCloud) -> None:
    cloudwatch = SecondRequestFails(cloud.client("cloudwatch"))
    report = publish(cloudwatch, "QuotaTest", (datum(n) for n in range(2_500)))  # type: ignore[arg-type]

    assert cloudwatch.requests == 3
    assert (report.requests, report.datapoints) == (2, 1_500)
    assert (report.failed_requests, report.failed_datapoints) == (1, 1_000)
    assert not report.complete
    assert report.describe_failure() == (
        "1 of 3 PutMetricData requests (1,000 of 2,500 data points) failed: InternalServiceFault: try again"
    )
    listed = cloud.client("cloudwatch").get_paginator("list_metrics").paginate(Namespace="QuotaTest")
    keys = {m["Dimensions"][1]["Value"] for page in listed for m in page["Metrics"]}
    assert keys == {f"k{n:05d}" for n in [*range(1_000), *range(2_000, 2_500)]}
