"""``quota-monitor scan`` and the Lambda handler's contract, against the sandbox and moto; and the demo."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from apigw_sandbox.account import SandboxError
from apigw_sandbox.local import invoke_handler
from apigw_sandbox.seed import seed_demo_account
from quota_monitor_cli.main import main
from tests.conftest import health_metric
from tests.contracts import JSON_FIELDS

if TYPE_CHECKING:
    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import LocalCloud
    from apigw_sandbox.server import Request


def test_scan_json_is_one_object_per_key_with_exactly_the_documented_fields(
    account: SandboxAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seed_demo_account(account)
    assert main(["scan", "--json"]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert len(rows) == len(seeded.keys) == 50
    assert all(list(row) == JSON_FIELDS for row in rows)
    utilizations = [row["utilization"] for row in rows if row["utilization"] is not None]
    assert utilizations == sorted(utilizations, reverse=True)
    no_quota = [row for row in rows if row["usagePlanName"] == "internal"]
    assert len(no_quota) == 4
    assert all((r["remaining"], r["limit"], r["utilization"]) == (None, None, None) for r in no_quota)
    billing = next(row for row in rows if row["apiKeyName"] == "billing-client")
    assert (billing["period"], billing["limit"], billing["remaining"]) == ("DAY", 1_000, 35)
    assert "50 keys in 4 of 4 usage plans" in err
    assert "scanning usage plans" not in err  # no progress bar when stderr is not a terminal


def test_scan_table_names_every_key(account: SandboxAccount, capsys: pytest.CaptureFixture[str]) -> None:
    seeded = seed_demo_account(account)
    assert main(["scan"]) == 0
    out = capsys.readouterr().out
    for key in seeded.keys:
        assert key.key_id in out
    assert "Resets (UTC)" in out


def test_scan_exits_1_when_a_plan_fails_printing_the_rest_and_naming_the_plan(
    account: SandboxAccount, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seed_demo_account(account)
    broken = seeded.plans["gold"]

    cloud.sandbox.faults.add("plan-deleted", plan_id=broken)
    assert main(["scan", "--json"]) == 1
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert {row["usagePlanName"] for row in rows} == {"free", "pro", "internal"}
    assert f"error: usage-plan {broken} (gold): " in err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["scan", "--page-size", "0"],
            {},
            "argument --page-size: 0 is not allowed: use a whole number from 1 to 500",
        ),
        (["scan", "--max-rps", "11"], {}, "11 is not allowed: use a number above 0 and at most 10"),
        (["scan"], {"WEEK_START_DAY": "funday"}, "WEEK_START_DAY='funday' is not allowed: use one of MONDAY"),
        (["scan"], {"APIGATEWAY_MAX_RPS": "fast"}, "APIGATEWAY_MAX_RPS='fast' is not allowed"),
        (["scan", "--profile", "nope"], {}, "The config profile (nope) could not be found"),
    ],
)
def test_bad_arguments_and_configuration_exit_2_saying_what_is_allowed(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(argv))
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_credentials_exit_2_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert main(["scan", "--json"]) == 2
    assert "Unable to locate credentials: configure credentials" in capsys.readouterr().err


def test_scan_publish_sends_the_metrics(
    account: SandboxAccount, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_demo_account(account)
    assert main(["scan", "--json", "--publish", "--namespace", "QuotaCli"]) == 0
    assert (
        # KEY_METRICS=auto: the 6 keys at or above their first level and the tagged one, two metrics
        # each, and the 6 health metrics.
        "published 20 data points in 1 PutMetricData requests to namespace QuotaCli"
        in capsys.readouterr().err
    )
    metrics = cloud.client("cloudwatch").list_metrics(Namespace="QuotaCli", MetricName="RemainingQuota")[
        "Metrics"
    ]
    assert len(metrics) == 7


def test_the_handler_with_only_credentials_and_region_scans_and_publishes(
    account: SandboxAccount, cloud: LocalCloud
) -> None:
    seed_demo_account(account)
    summary = invoke_handler("quota_monitor.handler", {})
    assert (summary["plans"], summary["keys"], summary["scanErrors"]) == (4, 50, 0)
    assert summary["metricsPublished"] is True
    assert "alertsSent" not in summary  # no topic and table: metrics only
    assert health_metric(cloud, "KeysScanned", "Maximum") == [50.0]


def test_the_handler_raises_when_nothing_could_be_scanned(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apigw_sandbox.server import Throttled  # noqa: PLC0415

    def always_throttled(request: Request) -> None:
        raise Throttled("Too Many Requests", retry_after=0)

    cloud.sandbox.fault_hooks.append(always_throttled)
    monkeypatch.setenv("APIGATEWAY_MAX_ATTEMPTS", "2")
    with pytest.raises(RuntimeError, match="the usage plans could not be listed: nothing was scanned"):
        invoke_handler("quota_monitor.handler", {})


def test_a_bad_setting_fails_the_cold_start_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRIC_NAMESPACE", "AWS/ApiGateway")
    with pytest.raises(
        ValueError, match=r"METRIC_NAMESPACE='AWS/ApiGateway' is not allowed: .* not starting with 'AWS/'"
    ):
        invoke_handler("quota_monitor.handler", {})


def test_the_demo_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())  # rich wraps long lines
    for expected in (
        "2. Its records: 53 key records, 5 plan records and 2 target records (one per region read)",
        '"record":"plan"',
        "3. What the dashboard would show",
        "Most used keys now (top 8)",
        "Keys and plans matching 'gold' in the 'Key or plan' box",
        "Plans and their hottest key",
        "Keys forecast to run out before their quota resets (UTC)",
        "4. quota-monitor scan --regions us-east-1,eu-west-1: every key of both regions, most used first",
        "KEY_METRICS=auto: 8 of 53 keys have per-key metrics",
        "eu-standard / eu-mobile-app (eu-west-1)",
        "partner-portal, tagged quota-monitor:metrics=always",
        "Read back from CloudWatch",
        "Posted to Slack by the webhook forwarder",
        "alerts sent by the second run: 0; new messages in the inboxes: 0; events sent: 0, new events in the "
        "queue: 0",
        "7. Events on the EventBridge bus 'quota-events', sent to an SQS queue by a rule",
    ):
        assert expected in flat
    # The gold plan's two crossings go to its route's topic, each its own message; the forecasts
    # depend on the time of day (DAY quotas), so whether the default topic's four crossings go out
    # as a digest does too.
    assert (
        "6. Alerts delivered to the SNS topics (the default one, and the gold plan's route 'partners')"
        in flat
    )
    assert re.search(r"partners +│ \[quota\] ledger-batch-1 at 99% of MONTH quota \(plan gold\)", out)
    assert re.search(r"partners +│ \[quota\] kiosk-app-1 at 81% of MONTH quota \(plan gold\)", out)
    # One event per key: the gold plan's two among them, on their route.
    assert re.search(r"Quota Threshold Crossed +│ gold / kiosk-app-1 +│ 80% +│ partners", out)
    assert re.search(r"Quota Threshold Crossed +│ gold / ledger-batch-1 +│ 90% +│ partners", out)
    # The second region: its key read in its own region, its metrics read back from there.
    assert re.search(r"123456789012 │ eu-west-1 +│ eu-standard +│ eu-mobile-app", out)
    assert re.search(r"Quota Threshold Crossed +│ eu-standard / eu-mobile-app +│ 90%", out)
    # GET /quota on the sandbox's API stage: the key holder's own numbers, with the RateLimit fields,
    # and never the key's value
    assert re.search(
        r'\$ curl -i -H "x-api-key: \$KEY_OF_KIOSK_APP_1" http://127\.0\.0\.1:\d+/a1b2c3d4e5/prod/quota', out
    )
    assert "HTTP/1.1 200 OK" in out
    assert 'RateLimit-Policy: "quota";q=1000000;w=' in out
    assert re.search(r'RateLimit: "quota";r=188000;t=\d+', out)
    assert '"usagePlanName":"gold"' in flat.replace(" ", "")
    # The archive: the runs' objects, and a statement of yesterday's closed DAY quotas
    assert "11. The usage archive (ARCHIVE_BUCKET=quota-monitor-demo-archive, moto's S3)" in flat
    assert re.search(
        r"s3://quota-monitor-demo-archive/records/dt=\d{4}-\d{2}-\d{2}/\d{8}T\d{6}Z-[0-9a-f]{8}\.jsonl\.gz",
        out,
    )
    assert re.search(
        r"\$ quota-monitor statement --bucket quota-monitor-demo-archive --period \d{4}-\d{2}-\d{2}", out
    )
    assert "Note: used is the last reading before the reset" in flat


class ExpiredTokenError(SandboxError):
    status = 403
    code = "ExpiredTokenException"


def test_credentials_aws_refuses_exit_2_with_what_to_do(
    account: SandboxAccount, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """Expired or unknown credentials fail every call alike: a configuration error, not an empty scan."""
    seed_demo_account(account)

    def expired(request: Request) -> None:
        raise ExpiredTokenError("The security token included in the request is expired")

    cloud.sandbox.fault_hooks.append(expired)
    assert main(["scan", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "ExpiredTokenException" in err
    assert "configure credentials (aws configure, aws sso login, AWS_PROFILE or --profile)" in err


def test_no_region_exit_2_naming_the_variable_boto3_reads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    assert main(["scan"]) == 2
    assert "no AWS region: pass --region, or set AWS_DEFAULT_REGION" in capsys.readouterr().err
