"""The alert step at 10,000 keys: a month's first run, and the first run against a fresh table.

Two cases, each a whole monitor run (scan, alerts, metrics, as the Lambda function orders them)
against the scale account, with the alert state table and topic in the host's moto:

- **recovery storm**: the scan on the first day of a month (2026-11-01), every key low in its new
  period, and the state table holding an item for each of the 10,000 keys, alerted at 80, 90 or
  100 in October: every key recovers at once. That is 10,000 notifications, in digests, and 20,000
  conditional writes (a claim and a confirmation each);
- **fresh table**: the scan on the default date (the last day of the month, utilization spread
  over 1..99%) against an empty table, default levels: every key at or over 80% alerts.

The scan runs on scaled time (``TIME_SCALE``, reported scaled back): it is the default run's scan,
measured in real time beside it. The alert step and the metrics run in real time against moto.
Each case runs in a host of its own, seeded for its date.

What is judged (docs/benchmarks.md, "The alert step at 10,000 keys"): in Lambda, CPU is shared out
by memory (1,769 MB is one vCPU), so at the stack's 256 MB a step takes at least its CPU seconds
here ÷ 0.145; and it waits for its requests, taken here as one after another at
:data:`ASSUMED_REQUEST_SECONDS` each (generous for an in-region DynamoDB transaction or SNS
publish). Each step counts as the larger of the two. The run must end before the handler stops
starting calls (the default timeout of 300 s less ``quota_monitor.handler.reserve_for``: 240 s),
so that the reserve is never touched: scan (as measured) + alert step + metrics must stay under it.
moto is not DynamoDB (its transactions and publishes are far slower): its wall time here is
reported, not judged.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.host import ROOT, child_env
from bench.run import SandboxHost, progress

if TYPE_CHECKING:
    from bench.scenario import Scenario

TIME_SCALE: Final = 10.0
LAMBDA_MEMORY_MB: Final = 256
LAMBDA_MB_PER_VCPU: Final = 1769
#: What one DynamoDB, SNS or CloudWatch request is taken to cost in waiting, in Lambda.
ASSUMED_REQUEST_SECONDS: Final = 0.1
#: The quota of every plan of the scale account (apigw_sandbox.seed.seed_scale_account).
LIMIT: Final = 100_000
#: The stack's default timeout, and what the handler keeps of it (quota_monitor.handler.reserve_for).
TIMEOUT_SECONDS: Final = 300.0
RESERVE_SECONDS: Final = 60.0


@dataclass(frozen=True)
class AlertCase:
    label: str
    scan_date: date
    #: The key's utilization on the scan date, drawn from this range (percent).
    utilization: tuple[float, float]
    #: Days of data before the scan date.
    history_days: int
    #: The first day of the period in which every key was alerted before (None: an empty table).
    alerted_in: date | None
    env: tuple[tuple[str, str], ...] = ()


def default_cases() -> list[AlertCase]:
    return [
        AlertCase(
            "recovery storm (1 Nov, 10,000 keys alerted in October)",
            scan_date=date(2026, 11, 1),
            utilization=(0.1, 5.0),
            history_days=31,
            alerted_in=date(2026, 10, 1),
        ),
        AlertCase(
            "first run, fresh table (31 Oct, default levels)",
            scan_date=date(2026, 10, 31),
            utilization=(1.0, 99.0),
            history_days=30,
            alerted_in=None,
        ),
    ]


@dataclass
class AlertMeasurement:
    case: AlertCase
    ok: bool
    error: str | None
    keys_scanned: int = 0
    alerts: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    #: Seconds spent waiting for moto's answers, by operation (moto's cost, not DynamoDB's).
    request_seconds: dict[str, float] = field(default_factory=dict)
    metric_requests: int = 0
    state_errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    rss_peak_mb: float | None = None
    #: The state table afterwards: items, by period and level, and claims left.
    state_after: dict[str, Any] = field(default_factory=dict)
    items_before: int = 0
    #: What the sandbox's own numbers say must be sent: every alerted key recovering, or every key
    #: at or over the lowest level.
    expected: int = 0

    @property
    def share(self) -> float:
        return min(1.0, LAMBDA_MEMORY_MB / LAMBDA_MB_PER_VCPU)

    def requests_of(self, phase: str) -> int:
        if phase == "publish":
            return self.metric_requests
        return sum(count for name, count in self.requests.items() if not name.endswith(" items"))

    def in_lambda(self, phase: str) -> float:
        """The phase at 256 MB: its CPU here at 256 MB's share, or its requests one after another at
        :data:`ASSUMED_REQUEST_SECONDS`, the larger."""
        return max(self.cpu.get(phase, 0.0) / self.share, self.requests_of(phase) * ASSUMED_REQUEST_SECONDS)

    @property
    def projected_seconds(self) -> float:
        """The run at 256 MB: the scan as measured, then the alert step and the metrics."""
        return self.seconds.get("scan", 0.0) + self.in_lambda("alerts") + self.in_lambda("publish")

    @property
    def deadline(self) -> float:
        return TIMEOUT_SECONDS - RESERVE_SECONDS

    @property
    def correct(self) -> bool:
        """Every notification the numbers call for sent once and confirmed: none skipped, failed or
        left claimed, and the table holds an item for each key alerted, now or before."""
        alerts = self.alerts
        items = self.items_before if self.case.alerted_in is not None else self.expected
        return (
            self.ok
            and alerts.get("alertStateErrors", 0) == 0
            and alerts.get("alertDeliveryFailures", 0) == 0
            and alerts.get("alertsSkipped", 0) == 0
            and alerts.get("alertsSent") == self.expected
            and self.state_after.get("claims", 0) == 0
            and self.state_after.get("items") == items
        )

    @property
    def passed(self) -> bool:
        return self.correct and self.projected_seconds <= self.deadline


def measure_case(scenario: Scenario, case: AlertCase, *, stderr: Any = None) -> AlertMeasurement:
    """One case: a host seeded for its date, the runner's ``alerts`` run, the state table after."""
    shape = replace(scenario, scan_date=case.scan_date)
    extra = (
        f"--history-days={case.history_days}",
        "--utilization",
        f"{case.utilization[0]:g}",
        f"{case.utilization[1]:g}",
    )
    with SandboxHost(shape, stderr=stderr, extra=extra) as host:
        host.ask(
            op="configure",
            time_scale=TIME_SCALE,
            latency=list(scenario.latency),
            account_rps=scenario.account_rps,
            account_burst=scenario.account_burst,
            background_rps=0.0,
        )
        resources = host.ask(
            op="alert_resources", alerted_in=case.alerted_in.isoformat() if case.alerted_in else None
        )
        moto = str(host.ready["cloudwatch"])
        env = child_env(
            {
                "AWS_ENDPOINT_URL_API_GATEWAY": str(host.ready["apigateway"]),
                "AWS_ENDPOINT_URL_CLOUDWATCH": moto,
                "AWS_ENDPOINT_URL_DYNAMODB": moto,
                "AWS_ENDPOINT_URL_SNS": moto,
                "ALERT_TOPIC_ARN": str(resources["topic"]),
                "ALERT_TABLE_NAME": str(resources["table"]),
                **dict(case.env),
            }
        )
        with tempfile.TemporaryDirectory(prefix="bench-alerts-") as folder:
            config, out = Path(folder, "config.json"), Path(folder, "out.json")
            config.write_text(
                json.dumps({"impl": "alerts", "time_scale": TIME_SCALE, "scan_at": shape.scan_at.isoformat()})
            )
            subprocess.run(  # noqa: S603 - our own module, no shell
                [sys.executable, "-m", "bench.runner", str(config), str(out)],
                cwd=ROOT,
                env=env,
                check=True,
                timeout=3600,
            )
            outcome: dict[str, Any] = json.loads(out.read_text())
        state_after = host.ask(op="alert_state", table=resources["table"])
        truth = host.ask(op="truth")["keys"]
    if case.alerted_in is not None:
        expected = int(resources.get("items", 0))  # every alerted key recovers
    else:
        levels = [int(level) for level in dict(case.env).get("THRESHOLDS", "80,90,100").split(",")]
        expected = sum(1 for _, _, _, remaining in truth if (LIMIT - remaining) * 100 >= levels[0] * LIMIT)
    cpu = {name: float(value) for name, value in outcome.get("cpu_seconds", {}).items()}
    return AlertMeasurement(
        case=case,
        ok=bool(outcome.get("ok")) and not outcome.get("failures"),
        error=outcome.get("error") or ("; ".join(outcome.get("failures", [])[:3]) or None),
        keys_scanned=int(outcome.get("keys_scanned", 0)),
        alerts={name: int(value) for name, value in outcome.get("alerts", {}).items()},
        requests={name: int(value) for name, value in outcome.get("requests", {}).items()},
        request_seconds={name: float(value) for name, value in outcome.get("request_seconds", {}).items()},
        metric_requests=int(outcome.get("metric_requests") or 0),
        state_errors=list(outcome.get("state_errors", [])),
        seconds={
            "scan": float(outcome.get("scan_seconds") or 0.0),
            "alerts": float(outcome.get("alert_seconds") or 0.0),
            "publish": float(outcome.get("publish_seconds") or 0.0),
        },
        cpu=cpu,
        rss_peak_mb=outcome.get("rss_peak_mb"),
        state_after=state_after,
        items_before=int(resources.get("items", 0)),
        expected=expected,
    )


def measure_alerts(
    scenario: Scenario, cases: list[AlertCase] | None = None, *, stderr: Any = None
) -> list[AlertMeasurement]:
    measurements = []
    for case in cases or default_cases():
        progress(f"running the alert step: {case.label} ...")
        measurements.append(measure_case(scenario, case, stderr=stderr))
    return measurements


# -- the report ------------------------------------------------------------------------------------
COLUMNS: Final = (
    "case",
    "keys",
    "notifications sent / SNS publishes",
    "DynamoDB requests",
    "state items written",
    "alert step here, s (wall on moto / CPU)",
    "alert step at 256 MB, s",
    "run at 256 MB, s (scan + alerts + metrics)",
    "target",
)


def _requests(m: AlertMeasurement) -> str:
    shown = {
        name: count
        for name, count in m.requests.items()
        if name not in ("Publish", "TransactWriteItems items")
    }
    return ", ".join(f"{name} {count:,}" for name, count in sorted(shown.items())) or "—"


def rows(measurements: list[AlertMeasurement]) -> list[list[str]]:
    out = []
    for m in measurements:
        if not m.ok:
            out.append([m.case.label, "—", "—", "—", "—", "—", "—", f"failed: {m.error}", "❌"])
            continue
        written = m.requests.get("TransactWriteItems items", 0) + m.requests.get("UpdateItem", 0)
        mark = "✅" if m.passed else "❌"
        out.append(
            [
                m.case.label,
                f"{m.keys_scanned:,}",
                f"{m.alerts.get('alertsSent', 0):,} / {m.requests.get('Publish', 0):,}",
                _requests(m),
                f"{written:,}",
                f"{m.seconds['alerts']:.1f} / {m.cpu.get('alerts', 0.0):.2f}",
                f"{m.in_lambda('alerts'):.1f}",
                f"{m.seconds['scan']:.0f} + {m.in_lambda('alerts'):.0f} + {m.in_lambda('publish'):.0f} "
                f"= {m.projected_seconds:.0f}",
                f"≤ {m.deadline:.0f}{' and every alert once' if m.correct else ', alerts WRONG'} {mark}",
            ]
        )
    return out


def title() -> str:
    return (
        "The alert step at 10,000 keys (state table and topic in moto; the scan on time x10, scaled back; "
        f"256 MB = {LAMBDA_MEMORY_MB / LAMBDA_MB_PER_VCPU:.3f} vCPU)"
    )


def markdown(measurements: list[AlertMeasurement]) -> list[str]:
    lines = [
        "",
        title() + ":",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|" + "---:|" * (len(COLUMNS) - 2) + "---|",
    ]
    lines.extend("| " + " | ".join(cells) + " |" for cells in rows(measurements))
    for m in measurements:
        if m.ok:
            waits = ", ".join(
                f"{name} {seconds:.1f} s" for name, seconds in sorted(m.request_seconds.items())
            )
            states = ", ".join(f"{k}: {v:,}" for k, v in sorted(m.state_after.get("by_state", {}).items()))
            cpu = " / ".join(f"{m.cpu.get(phase, 0.0):.2f}" for phase in ("scan", "alerts", "publish"))
            lines.append(
                f"- {m.case.label}: state table afterwards "
                f"{m.state_after.get('items', 0):,} items ({states}), "
                f"{m.state_after.get('claims', 0)} claims left; CPU seconds scan / alerts / metrics {cpu}; "
                f"peak RSS {m.rss_peak_mb or 0:.0f} MiB; waiting on moto: {waits}"
            )
    return lines


def passed(measurements: list[AlertMeasurement]) -> bool:
    return all(m.passed for m in measurements)


def as_json(measurements: list[AlertMeasurement]) -> list[dict[str, Any]]:
    return [
        {
            **{name: value for name, value in m.__dict__.items() if name != "case"},
            "case": {
                **m.case.__dict__,
                "scan_date": m.case.scan_date.isoformat(),
                "alerted_in": m.case.alerted_in.isoformat() if m.case.alerted_in else None,
            },
            "projected_seconds": m.projected_seconds,
        }
        for m in measurements
    ]
