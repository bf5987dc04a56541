"""One full run of the local cloud's account, through the path production takes (``run_targets``)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import boto3

from quota_monitor.clients import cloudwatch_client, target_clients
from quota_monitor.invocation import Clocks, Invocation
from quota_monitor.models import Target
from quota_monitor.monitor import run_targets
from quota_monitor.read.targets import TargetAccess

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_cloudwatch import CloudWatchClient

    from quota_monitor.config import Settings
    from quota_monitor.deliver.messages import AlertMessage
    from quota_monitor.monitor import AlertClients, RunReport

ACCOUNT = "123456789012"
REGION = "us-east-1"
NEVER = datetime.max.replace(tzinfo=UTC)
#: How far the clock jumps when a test says the run is out of time for alerts.
LATE = timedelta(days=2)


#: The latest time a run's clock read: tests often run twice at the same ``now``, and a run's
#: readings must come after the last run's, as they do in real time.
_latest = [0.0]


def invocation_at(now: datetime, *, alerts_over: Callable[[], bool] | None = None) -> Invocation:
    """A run that starts at ``now`` on a clock running in real time from there (or from the last
    run's latest reading, if later), never out of time for calls; out of time for alerts once
    ``alerts_over()`` says so (the clock jumps past it)."""
    started, base = time.monotonic(), max(now.timestamp(), _latest[0])

    def wall() -> float:
        jump = LATE.total_seconds() if alerts_over is not None and alerts_over() else 0.0
        _latest[0] = max(_latest[0], base + time.monotonic() - started)
        return base + time.monotonic() - started + jump

    stop_alerts = now + LATE / 2 if alerts_over is not None else NEVER
    return Invocation(now, now + timedelta(minutes=15), NEVER, stop_alerts, clocks=Clocks(wall=wall))


def home_access(max_workers: int = 4) -> TargetAccess:
    """The monitor's own account and region in the local cloud."""
    return TargetAccess(
        Target(ACCOUNT, REGION, home=True),
        base=boto3.Session(),
        make=lambda session, region: target_clients(session, region, max_workers=max_workers),
    )


def run_at(
    settings: Settings,
    now: datetime | None = None,
    *,
    alert_clients: AlertClients | None = None,
    cloudwatch: CloudWatchClient | None = None,
    on_alert: Callable[[AlertMessage], None] | None = None,
    alerts_over: Callable[[], bool] | None = None,
) -> RunReport:
    """One full run (scan, alerts, metrics) of the home target at ``now`` (default: now), as the
    handler runs it; the target's report with the run's alerts."""
    run = invocation_at(now or datetime.now(UTC), alerts_over=alerts_over)
    report = run_targets(
        settings,
        [home_access(settings.scan.max_workers)],
        run,
        health_cloudwatch=lambda: cloudwatch or cloudwatch_client(),
        alert_clients=alert_clients,
        on_alert=on_alert,
    )
    (target,) = report.runs
    return replace(target, alerts=report.alerts)
