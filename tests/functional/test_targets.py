"""Every region and every account from one monitor: the handler and the CLI over several targets.

The sandbox serves a separate account per account id and region (told apart by each request's
SigV4 credentials and scope, as AWS endpoints are); moto's STS hands out the spoke roles'
credentials, and moto keeps each account's CloudWatch apart.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import invoke_handler
from apigw_sandbox.seed import seed_key_usage
from apigw_sandbox.server import AccountThrottle
from quota_monitor.clients import cloudwatch_client, target_clients
from quota_monitor.config import Settings
from quota_monitor.errors import RunFailed
from quota_monitor.models import Target
from quota_monitor.monitor import run_targets
from quota_monitor.read.targets import TargetAccess, TargetClients
from tests.runs import invocation_at

if TYPE_CHECKING:
    from apigw_sandbox.local import AlertResources, LocalCloud

HOME = "123456789012"
SPOKE = "222222222222"
SPOKE_ROLE = f"arn:aws:iam::{SPOKE}:role/ApiGatewayQuotaMonitorSpoke"
REFUSED_ROLE = "arn:aws:iam::333333333333:role/ApiGatewayQuotaMonitorSpoke"


def a_plan(
    account: SandboxAccount, name: str, utilizations: tuple[float, ...], *, same_ids: bool = True
) -> str:
    """A plan with keys at these utilizations; with ``same_ids``, the plan and key ids are the same in
    every account made so, so that two targets hold equal ids."""
    plan_id = account.create_usage_plan(
        name, limit=10_000, period="MONTH", plan_id="sameplan01" if same_ids else None
    )
    for n, utilization in enumerate(utilizations):
        key_id = account.create_api_key(f"{name}-{n}", key_id=f"samekey{n:03d}" if same_ids else None)
        account.attach_key(plan_id, key_id)
        seed_key_usage(
            account, plan_id, key_id, utilization=utilization, rng=random.Random(n), history_days=5
        )
    return plan_id


@pytest.fixture
def fleet(cloud: LocalCloud) -> dict[tuple[str, str], SandboxAccount]:
    """Four targets: the home account in us-east-1 (the sandbox's default) and eu-west-1, and the
    spoke account in both. Every one has a plan and keys of the same ids."""
    accounts = {(HOME, "us-east-1"): cloud.account}
    a_plan(cloud.account, "home-east", (95.0, 20.0))
    for account_id, region, name, utilizations in (
        (HOME, "eu-west-1", "home-west", (85.0,)),
        (SPOKE, "us-east-1", "spoke-east", (99.0, 10.0, 30.0)),
        (SPOKE, "eu-west-1", "spoke-west", (50.0,)),
    ):
        account = SandboxAccount()
        a_plan(account, name, utilizations)
        cloud.sandbox.add_account(account, region=region, account_id=account_id)
        accounts[account_id, region] = account
    return accounts


def run(
    monkeypatch: pytest.MonkeyPatch, infra: AlertResources, capsys: pytest.CaptureFixture[str], **env: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    for name, value in infra.env(FORECAST_ENABLED="false", DIGEST_MIN_ALERTS="100", **env).items():
        monkeypatch.setenv(name, value)
    summary: dict[str, Any] = invoke_handler("quota_monitor.handler", {})
    records = []
    for line in capsys.readouterr().out.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and "record" in parsed:
            records.append(parsed)
    return summary, records


def metrics_in(
    cloud: LocalCloud, *, region: str, credentials: dict[str, str] | None = None
) -> set[tuple[str, tuple[str, ...]]]:
    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=cloud.moto_url,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"] if credentials else "sandbox",
        aws_secret_access_key=credentials["SecretAccessKey"] if credentials else "sandbox",
        aws_session_token=credentials["SessionToken"] if credentials else None,
    )
    listed = cloudwatch.list_metrics(Namespace="ApiGatewayQuota")["Metrics"]
    return {(m["MetricName"], tuple(d["Value"] for d in m["Dimensions"])) for m in listed}


def test_one_run_reads_every_region_and_account_and_keeps_each_targets_metrics_at_home(
    cloud: LocalCloud,
    fleet: dict[tuple[str, str], SandboxAccount],
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN four targets whose plans and keys have the same ids
    # WHEN one run reads them all
    summary, records = run(
        monkeypatch, alert_infra, capsys, REGIONS="us-east-1,eu-west-1", SPOKE_ROLE_ARNS=SPOKE_ROLE
    )

    # THEN every key of every target has its record, saying where it is
    keys = [r for r in records if r["record"] == "key"]
    where = sorted((r["accountId"], r["region"], r["usagePlanName"]) for r in keys)
    assert where == sorted(
        [(HOME, "us-east-1", "home-east")] * 2
        + [(HOME, "eu-west-1", "home-west")]
        + [(SPOKE, "us-east-1", "spoke-east")] * 3
        + [(SPOKE, "eu-west-1", "spoke-west")]
    )
    targets = {(r["accountId"], r["region"]): r for r in records if r["record"] == "target"}
    assert set(targets) == set(fleet)
    assert all(r["scanErrors"] == 0 and r["metricsPublished"] for r in targets.values())
    assert (summary["targets"], summary["targetsFailed"], summary["keys"], summary["scanErrors"]) == (
        4,
        0,
        7,
        0,
    )

    # AND each target's per-key metrics are in its own account and region (hot keys: 80% or more)
    spoke = cloud.client("sts").assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="test")["Credentials"]
    per_key = {
        (account, region): {
            dims for name, dims in metrics_in(cloud, region=region, credentials=creds) if len(dims) == 2
        }
        for account, region, creds in (
            (HOME, "us-east-1", None),
            (HOME, "eu-west-1", None),
            (SPOKE, "us-east-1", spoke),
            (SPOKE, "eu-west-1", spoke),
        )
    }
    assert per_key == {
        (HOME, "us-east-1"): {("sameplan01", "samekey000")},
        (HOME, "eu-west-1"): {("sameplan01", "samekey000")},
        (SPOKE, "us-east-1"): {("sameplan01", "samekey000")},
        (SPOKE, "eu-west-1"): set(),
    }
    # AND the health metrics count every target, in the monitor's own account and region only
    home_health = {name for name, dims in metrics_in(cloud, region="us-east-1") if not dims}
    assert "KeysScanned" in home_health
    assert not {name for name, dims in metrics_in(cloud, region="eu-west-1") if not dims}
    assert not {name for name, dims in metrics_in(cloud, region="us-east-1", credentials=spoke) if not dims}

    # AND the alerts are central, one per hot key, each saying where; equal ids never share a state item
    delivered = [alert for message in alert_infra.received() for alert in message["Message"]["alerts"]]
    assert sorted((a["accountId"], a["region"], a["level"]) for a in delivered) == [
        (HOME, "eu-west-1", 80),
        (HOME, "us-east-1", 90),
        (SPOKE, "us-east-1", 90),
    ]
    assert sorted(alert_infra.items()) == [
        f"{HOME}#eu-west-1#sameplan01#samekey000",
        f"{SPOKE}#us-east-1#sameplan01#samekey000",
        "sameplan01#samekey000",  # the home target keeps its ids as before
    ]
    assert len({alert["id"] for alert in delivered}) == 3

    # AND a second run says nothing again
    again, _ = run(
        monkeypatch, alert_infra, capsys, REGIONS="us-east-1,eu-west-1", SPOKE_ROLE_ARNS=SPOKE_ROLE
    )
    assert again["alertsSent"] == 0


def test_a_target_that_cannot_be_read_fails_alone(
    cloud: LocalCloud,
    fleet: dict[tuple[str, str], SandboxAccount],
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a role that cannot be assumed, a region that is not enabled, and a throttled target
    cloud.refuse_assume_role(REFUSED_ROLE)
    cloud.sandbox.disabled_regions.add("ap-east-1")
    cloud.sandbox.add_account(
        fleet[SPOKE, "eu-west-1"],
        region="eu-west-1",
        account_id=SPOKE,
        throttle=AccountThrottle(rate=1.0, burst=0),
    )
    for name, value in alert_infra.env(APIGATEWAY_MAX_ATTEMPTS="2").items():
        monkeypatch.setenv(name, value)
    # WHEN a run reads every target
    summary, records = run(
        monkeypatch,
        alert_infra,
        capsys,
        REGIONS="us-east-1,eu-west-1,ap-east-1",
        SPOKE_ROLE_ARNS=f"{SPOKE_ROLE},{REFUSED_ROLE}",
        APIGATEWAY_MAX_ATTEMPTS="2",
    )

    # THEN the others are read in full
    keys = {(r["accountId"], r["region"]) for r in records if r["record"] == "key"}
    assert keys == {(HOME, "us-east-1"), (HOME, "eu-west-1"), (SPOKE, "us-east-1")}
    # AND each failure names its account, region and cause, counted in ScanErrors
    targets = {(r["accountId"], r["region"]): r for r in records if r["record"] == "target"}
    assert len(targets) == 9
    failed = {where for where, record in targets.items() if record["scanErrors"]}
    assert failed == {
        (HOME, "ap-east-1"),
        (SPOKE, "ap-east-1"),
        (SPOKE, "eu-west-1"),
        ("333333333333", "us-east-1"),
        ("333333333333", "eu-west-1"),
        ("333333333333", "ap-east-1"),
    }
    assert summary["scanErrors"] >= 6
    assert summary["targetsFailed"] >= 5
    causes = {
        (record.accountId, record.region, record.cause)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage() == "scan failure" and getattr(record, "resource", None) == "target"
    }
    assert {
        ("333333333333", "us-east-1", "AccessDenied"),
        (HOME, "ap-east-1", "UnrecognizedClientException"),
    } <= causes


def test_the_cli_scans_every_target_with_account_and_region_columns(
    cloud: LocalCloud, fleet: dict[tuple[str, str], SandboxAccount]
) -> None:
    env = {**cloud.env(), "PATH": "/usr/bin:/bin"}
    command = [
        sys.executable,
        "-m",
        "quota_monitor_cli",
        "scan",
        "--regions",
        "us-east-1,eu-west-1",
        "--role-arn",
        SPOKE_ROLE,
    ]
    table = subprocess.run(
        [*command, "-o", "plain"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header[:2] == ["Account", "Region"]
    assert "of 4 targets" in table.stderr
    rows = json.loads(
        subprocess.run(
            [*command, "--json"], capture_output=True, text=True, env=env, timeout=120, check=True
        ).stdout
    )
    assert sorted({(row["accountId"], row["region"]) for row in rows}) == sorted(fleet)
    # A bad region or role ARN is a usage error naming the flag.
    bad = subprocess.run(
        [*command[:5], "us-east-1,eu-wst-1"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert bad.returncode == 2
    assert "--regions: REGIONS='us-east-1,eu-wst-1' is not allowed: eu-wst-1 is not" in bad.stderr
    bad_role = subprocess.run(
        [*command[:5], "us-east-1", "--role-arn", "arn:aws:iam::1:role/x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert bad_role.returncode == 2
    assert "--role-arn: SPOKE_ROLE_ARNS=" in bad_role.stderr


def test_the_spoke_accounts_listed_in_ssm_are_read_every_run(
    cloud: LocalCloud,
    fleet: dict[tuple[str, str], SandboxAccount],
    alert_infra: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the spoke account listed in an SSM parameter, as the stack writes it, and no role ARNs
    ssm = cloud.client("ssm")
    path = "/QuotaMonitor/spoke-accounts"
    ssm.put_parameter(Name=f"{path}/001", Value=SPOKE, Type="String")
    env = {"REGIONS": "us-east-1,eu-west-1", "SPOKE_ACCOUNTS_PARAMETER": path}

    # WHEN a run reads its targets
    summary, records = run(monkeypatch, alert_infra, capsys, **env)

    # THEN it reads the spoke's regions through the spoke role of that name, in the home partition
    targets = {(r["accountId"], r["region"]) for r in records if r["record"] == "target"}
    assert targets == set(fleet)
    assert (summary["targets"], summary["targetsFailed"]) == (4, 0)

    # AND an account added to the list is read by the next run; an entry that is not an account id
    # fails the run, naming the parameter, rather than leaving an account out unseen
    ssm.put_parameter(Name=f"{path}/002", Value="333333333333", Type="String")
    more, _ = run(monkeypatch, alert_infra, capsys, **env)
    assert (more["targets"], more["targetsFailed"]) == (6, 0)  # the third account has no plans yet
    ssm.put_parameter(Name=f"{path}/003", Value="44444", Type="String")
    with pytest.raises(RunFailed, match=f"{path}/003: '44444' is not a 12-digit account id"):
        run(monkeypatch, alert_infra, capsys, **env)


def test_each_targets_connections_are_closed_once_it_is_read_and_published(
    cloud: LocalCloud, fleet: dict[tuple[str, str], SandboxAccount]
) -> None:
    # GIVEN the monitor's own account in two regions, each target's clients kept to look at afterwards
    made: list[TargetClients] = []

    def make(session: boto3.Session, region: str) -> TargetClients:
        made.append(target_clients(session, region))
        return made[-1]

    def open_pools(client: Any) -> int:
        """Connection pools the client still holds (each keeps its sockets, a file descriptor each)."""
        return len(client._endpoint.http_session._manager.pools)

    accesses = [
        TargetAccess(Target(HOME, region, home=region == "us-east-1"), base=boto3.Session(), make=make)
        for region in ("us-east-1", "eu-west-1")
    ]

    # WHEN one run reads both and publishes their metrics
    report = run_targets(
        Settings.from_env(dict(os.environ)),
        accesses,
        invocation_at(datetime.now(UTC)),
        health_cloudwatch=cloudwatch_client,
    )

    # THEN every key was read and published, and no target's client keeps a connection to the run's end
    assert sorted(len(run.result.keys) for run in report.runs) == [1, 2]
    assert all(run.published is not None and run.published.complete for run in report.runs)
    assert len(made) == 2
    assert [(open_pools(c.apigateway), open_pools(c.cloudwatch)) for c in made] == [(0, 0), (0, 0)]
