"""``quota-monitor demo``: the whole monitor on loopback, with no AWS account and no network.

It starts the API Gateway sandbox and moto, seeds a realistic account, runs the real Lambda
handler against them, then prints its records (a few of them), what the dashboard's Logs Insights
tables would show from them, the scan table, the metrics read back from CloudWatch, and the alerts.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import logging
import os
import sys
import urllib.request
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from rich.table import Table
from rich.text import Text

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import REGION, EventPattern, LocalCloud, invoke_handler
from apigw_sandbox.seed import (
    DEMO_ALWAYS_METRICS_KEY,
    DEMO_ROUTE,
    DEMO_SECOND_REGION,
    SeededAccount,
    seed_demo_account,
    seed_second_region,
)
from apigw_sandbox.slack import SlackReceiver
from quota_monitor import (
    ALERT_HEALTH_METRICS,
    EVENT_SOURCE,
    HEALTH_METRICS,
    KEY_RECORD,
    PLAN_RECORD,
    TAG_METRICS,
    TARGET_RECORD,
    Clocks,
    Invocation,
    MetricName,
    RunReport,
    Settings,
    archive_target,
    cloudwatch_client,
    combined,
    percent,
    records,
)
from quota_monitor_cli import record_tables, statement
from quota_monitor_cli.common import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, run_guarded
from quota_monitor_cli.render import ACCOUNT_COLUMNS, COLUMNS, console, scan_table, sort_keys, summary_line
from quota_monitor_cli.scan import scan_all

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from rich.console import Console

    from apigw_sandbox.local import AlertResources
    from quota_monitor import KeyUsage, ScanResult

#: The local EventBridge bus the demo's events go to; a rule sends them on to an SQS queue.
DEMO_BUS = "quota-events"
#: The REST API whose stage the gold plan meters, where GET /quota is served (step 10).
DEMO_API = "a1b2c3d4e5"
DEMO_STAGE = "prod"
#: The archive's bucket in moto (step 11).
DEMO_ARCHIVE = "quota-monitor-demo-archive"
#: The demo reads GetUsage 20 keys a page (the monitor's default is 500), so that its 24-key
#: plan takes two pages, as large plans do in real accounts.
DEMO_PAGE_SIZE = "20"
#: The demo's two regions: the same account's APIs in each (the sandbox keeps them apart).
DEMO_REGIONS = f"{REGION},{DEMO_SECOND_REGION}"
#: Ids of its own in the second region (the sandbox draws ids from a seeded generator).
DEMO_SECOND_REGION_SEED = 2
#: The records window the stack's dashboard opens at: its 15-minute schedule and 5 minutes
#: (infra/record_views.py, records_window).
DASHBOARD_WINDOW_MINUTES = 20
#: Variables that could point the demo at a real account; cleared while it runs.
_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="run the monitor end to end against an embedded sandbox (no AWS account needed)",
        description="Start the API Gateway sandbox and moto on loopback, seed a realistic account, run the "
        "Lambda handler against them and show the result.",
    )
    parser.set_defaults(run=run_guarded(run))


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    for name in _AWS_VARIABLES:
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class HandlerOutput(io.StringIO):
    """What the handler prints (its records and Powertools' log lines), kept for the demo to show.

    Powertools binds its logger to the stream it finds at the first import, so one object serves
    every invocation; :meth:`drain` takes what came since the last call.
    """

    def drain(self) -> list[str]:
        lines = self.getvalue().splitlines()
        self.seek(0)
        self.truncate()
        return lines


def invoke_captured(
    output: HandlerOutput, event: dict[str, Any]
) -> tuple[Any, list[dict[str, Any]], list[str]]:
    """Invoke the handler with its stdout captured: its answer, its records, its other log lines."""
    with redirect_stdout(output):
        answer = invoke_handler("quota_monitor.handler", event)
    records, others = record_tables.parse_records(output.drain())
    return answer, records, others


def show_records(out: Any, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    keys = [record for record in records if record["record"] == KEY_RECORD]
    plans = [record for record in records if record["record"] == PLAN_RECORD]
    targets = [record for record in records if record["record"] == TARGET_RECORD]
    out.print(
        f"\n[bold]2. Its records[/]: {len(keys)} key records, {len(plans)} plan records and "
        f"{len(targets)} target records (one per region read), "
        f"{summary['recordBytes']:,} bytes, one JSON line each on stdout (Lambda sends each line to the "
        "function's log group as a log event). No key value is in any of them. A few:"
    )
    hottest = max(keys, key=lambda record: record["utilization"] or -1)
    tagged = next(record for record in keys if record["apiKeyName"] == DEMO_ALWAYS_METRICS_KEY)
    forecast = next((record for record in keys if "exhaustsAt" in record), hottest)
    free = next(record for record in keys if record["limit"] is None)
    shown = []
    for record in (hottest, forecast, tagged, free, plans[0], *targets):
        if record not in shown:
            shown.append(record)
    for record in shown:
        out.print(Text(json.dumps(record, separators=(",", ":"), ensure_ascii=False)), style="cyan")


def show_dashboard(out: Any, records: list[dict[str, Any]], window: int) -> None:
    out.print(
        "\n[bold]3. What the dashboard would show[/]: its Logs Insights tables run these queries over the "
        f"records of the last {window} minutes (one run) in the function's log group; computed here from "
        "the records above:"
    )
    out.print(record_tables.most_used(records))
    out.print(record_tables.find(records, "gold"))
    out.print(record_tables.plans(records))
    out.print(record_tables.forecast(records))


def read_back_table(
    cloudwatch_in: Callable[[str], Any], namespace: str, result: ScanResult, top: list[KeyUsage], home: str
) -> Table:
    """GetMetricData for the keys with per-key metrics (each in its own region's CloudWatch), the plan
    roll-ups and the monitor's health (in the monitor's region, ``home``)."""
    queries: dict[str, list[dict[str, Any]]] = {}
    labels: dict[str, tuple[str, str, str]] = {}

    def query(metric: str, dimensions: dict[str, str], what: str, detail: str, region: str = home) -> None:
        query_id = f"m{len(labels)}"
        queries.setdefault(region, []).append(
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": metric,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        )
        labels[query_id] = (what, metric, detail)

    for key in top:
        dims = {"UsagePlanId": key.usage_plan_id, "ApiKeyId": key.api_key_id}
        region = key.target.region if key.target is not None else home
        who = f"{key.usage_plan_name} / {key.api_key_name or key.api_key_id}"
        if region != home:
            who += f" ({region})"
        query("QuotaUtilization", dims, who, "Percent", region)
        query("RemainingQuota", dims, who, "Count", region)
    if Settings.from_env(os.environ).key_metrics.plan_rollups:
        for plan in result.plans:
            if plan.quota is not None:
                query("MaxQuotaUtilization", {"UsagePlanId": plan.id}, f"plan {plan.name}", "Percent")
    for name in HEALTH_METRICS + ALERT_HEALTH_METRICS:
        query(name.value, {}, "monitor", "Seconds" if name is MetricName.SCAN_DURATION else "Count")

    start = result.scanned_at - timedelta(minutes=10)
    end = datetime.now(result.scanned_at.tzinfo) + timedelta(minutes=2)
    values: dict[str, float | None] = {}
    for region, asked in queries.items():
        cloudwatch = cloudwatch_in(region)
        for offset in range(0, len(asked), 500):
            response = cloudwatch.get_metric_data(
                MetricDataQueries=asked[offset : offset + 500], StartTime=start, EndTime=end
            )
            for item in response["MetricDataResults"]:
                values[item["Id"]] = max(item["Values"]) if item["Values"] else None

    table = Table(
        title=f"5. Read back from CloudWatch (namespace {namespace}, GetMetricData)", title_justify="left"
    )
    for column, justify in (("Dimensions", "left"), ("Metric", "left"), ("Value", "right"), ("Unit", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for query_id, (what, metric, unit) in labels.items():
        value = values.get(query_id)
        shown = (
            "missing"
            if value is None
            else f"{value:,.1f}"
            if unit == "Percent"
            else f"{value:,.3g}"
            if metric == "ScanDuration"
            else f"{value:,.0f}"
        )
        table.add_row(what, metric, shown, unit)
    return table


def alerts_table(by_route: dict[str, list[dict[str, Any]]]) -> Table:
    """What each route's topic delivered to its SQS inbox: one row per key, under its message's subject."""
    table = Table(
        title="6. Alerts delivered to the SNS topics (the default one, and the gold plan's route "
        f"{DEMO_ROUTE!r}), read back from an SQS inbox on each",
        title_justify="left",
    )
    for column in ("Route", "Message subject", "Event", "Plan / key", "Level", "Utilization", "Remaining"):
        table.add_column(column)
    for route, messages in by_route.items():
        for message in messages:
            _alert_rows(table, route, message)
    return table


def _alert_rows(table: Table, route: str, message: dict[str, Any]) -> None:
    subject = message.get("Subject", "")
    for alert in message["Message"]["alerts"]:
        table.add_row(
            route,
            Text(subject),
            alert["event"],
            f"{alert['usagePlanName']} / {alert['apiKeyName'] or alert['apiKeyId']}",
            f"{alert['level']}%" if alert["event"] != "forecast" else "-",
            percent(alert["utilization"]),
            f"{alert['remaining']:,}",
        )
        route = subject = ""


def events_table(events: list[dict[str, Any]]) -> Table:
    """What the rule on the local bus put in its queue: one event per key, digest or not."""
    table = Table(
        title=f"7. Events on the EventBridge bus {DEMO_BUS!r}, sent to an SQS queue by a rule "
        f'(source "{EVENT_SOURCE}"): one per key, even when email gets a digest',
        title_justify="left",
    )
    for column in ("detail-type", "Plan / key", "Level", "Route", "detail.id"):
        table.add_column(column)
    for event in events:
        detail = event["detail"]
        table.add_row(
            event["detail-type"],
            f"{detail['usagePlanName']} / {detail['apiKeyName'] or detail['apiKeyId']}",
            f"{detail['level']}%" if detail["level"] else "-",
            detail["route"],
            Text(detail["id"]),
        )
    return table


def forward_to_slack(messages: list[dict[str, Any]], slack: SlackReceiver) -> Table:
    """Hand each delivered message to the Slack forwarder, as SNS would, and show what Slack got."""
    for message in messages:
        record = {
            "Sns": {
                "MessageId": message["MessageId"],
                "Subject": message.get("Subject"),
                "Message": json.dumps(message["Message"]),
            }
        }
        invoke_handler("quota_monitor.deliver.slack.handler", {"Records": [record]})
    table = Table(
        title="8. Posted to Slack by the webhook forwarder (a local stand-in for Slack)", title_justify="left"
    )
    table.add_column("Header")
    table.add_column("Blocks", justify="right")
    for posted in slack.received:
        table.add_row(Text(posted["blocks"][0]["text"]["text"]), str(len(posted["blocks"])))
    return table


def _seed(cloud: LocalCloud) -> tuple[SeededAccount, SeededAccount]:
    """The demo's two regions; the gold plan meters the prod stage of a REST API, where GET /quota
    is answered (step 10)."""
    seeded = seed_demo_account(cloud.account)
    cloud.account.add_api_stage(seeded.plans["gold"], DEMO_API, DEMO_STAGE)
    second = SandboxAccount(seed=DEMO_SECOND_REGION_SEED)
    seeded_second = seed_second_region(second)
    cloud.sandbox.add_account(second, region=DEMO_SECOND_REGION)
    return seeded, seeded_second


def _environment(cloud: LocalCloud, alerting: AlertResources, secret_arn: str) -> dict[str, str]:
    """The monitor's settings in the demo: the local cloud's endpoints, its alert resources, both
    regions, small GetUsage pages, the Slack secret and the key snapshots."""
    return {
        **cloud.env(),
        **alerting.env(),
        "USAGE_PAGE_SIZE": DEMO_PAGE_SIZE,
        "REGIONS": DEMO_REGIONS,
        "POWERTOOLS_SERVICE_NAME": "apigw-quota-monitor",
        "SLACK_WEBHOOK_SECRET_ARN": secret_arn,
        "KEY_SNAPSHOTS": "on",
        "ARCHIVE_BUCKET": DEMO_ARCHIVE,
    }


def show_quota_endpoint(out: Console, cloud: LocalCloud, seeded: SeededAccount) -> None:
    """Step 10: ``GET /quota`` on the sandbox's REST API stage, answered by the quota endpoint's
    handler from the snapshots the first run kept (``KEY_SNAPSHOTS=on``), as a key holder sees it."""
    endpoint = importlib.reload(importlib.import_module("quota_monitor.quota_handler"))
    cloud.data_plane.add_route(DEMO_API, DEMO_STAGE, "GET", "/quota", endpoint.handler, api_key_required=True)
    key = next(key for key in seeded.keys if key.plan_id == seeded.plans["gold"])
    url = f"{cloud.data_plane.stage_url(DEMO_API, DEMO_STAGE)}/quota"
    out.print(
        f"\n[bold]10. GET /quota[/]: a key holder asks the API how much of their quota is left "
        f"(the route on stage {DEMO_STAGE!r} of API {DEMO_API}, an API key required, the quota endpoint's "
        "function behind it; the answer comes from the snapshots the first run kept):"
    )
    out.print(Text(f'$ curl -i -H "x-api-key: $KEY_OF_{key.name.upper().replace("-", "_")}" {url}'))
    value = cloud.account.keys[key.key_id].value  # the sandbox's, sent and never shown
    request = urllib.request.Request(url, headers={"x-api-key": value})  # noqa: S310 - loopback http
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        out.print(Text(f"HTTP/1.1 {response.status} {response.reason}"))
        for name in ("Content-Type", "Cache-Control", "RateLimit-Policy", "RateLimit"):
            if response.headers.get(name):
                out.print(Text(f"{name}: {response.headers[name]}"))
        out.print()
        out.print(Text(json.dumps(json.loads(response.read()), separators=(",", ":"))), soft_wrap=True)


def show_archive(out: Console, cloud: LocalCloud) -> None:
    """Step 11: the runs' records in the archive (moto's S3), and a statement of yesterday's closed
    DAY quotas, from a run made as at 23:45 yesterday (the sandbox's clock set back, its usage as it
    stood then)."""
    s3 = cloud.client("s3")
    yesterday = datetime.now(UTC).replace(hour=23, minute=45, second=0, microsecond=0) - timedelta(days=1)
    cloud.account.set_clock(lambda: yesterday)
    try:
        settings = Settings.from_env(os.environ)
        run = Invocation.unbounded(clocks=Clocks(wall=yesterday.timestamp))
        for scanned in scan_all(settings, boto3.Session(), show_progress=False, run=run):
            if scanned.target.home:
                lines = list(records(RunReport(result=scanned.result, published=None), settings))
                archive_target(s3, DEMO_ARCHIVE, run_at=yesterday, target=scanned.target, lines=lines)
    finally:
        cloud.account.set_clock(None)
    objects = [item["Key"] for item in s3.list_objects_v2(Bucket=DEMO_ARCHIVE).get("Contents", [])]
    out.print(
        f"\n[bold]11. The usage archive[/] (ARCHIVE_BUCKET={DEMO_ARCHIVE}, moto's S3): every full run's "
        f"records, gzip JSON Lines, an object a run and target; {len(objects)} objects, among them a run "
        "made as at 23:45 yesterday (the sandbox's clock set back):"
    )
    for key in sorted(objects):
        out.print(Text(f"  s3://{DEMO_ARCHIVE}/{key}"), style="dim")
    out.print(f"$ quota-monitor statement --bucket {DEMO_ARCHIVE} --period {yesterday.date()}")
    sys.stdout.flush()
    statement.run(statement_args(yesterday))
    sys.stderr.flush()
    out.print(
        "(A period that ended yesterday may have begun up to a week before (WEEK quotas): the statement "
        "reads those days too, and warns of the ones without objects, here every day before the demo's "
        "run of yesterday.)",
        style="dim",
    )


def statement_args(day: datetime) -> argparse.Namespace:
    """``quota-monitor statement --bucket <the demo's> --period <day>``, as the command line parses it."""
    parser = argparse.ArgumentParser(prog="quota-monitor")
    statement.register(parser.add_subparsers())
    return parser.parse_args(["statement", "--bucket", DEMO_ARCHIVE, "--period", day.date().isoformat()])


def run(args: argparse.Namespace) -> int:
    # The handler logs to stdout: when its reader has gone, a log line is dropped without a
    # traceback, and the next print ends the command quietly (quota_monitor_cli.main).
    logging.raiseExceptions = False
    out = console()
    if importlib.util.find_spec("moto") is None:
        console(stderr=True).print(
            "quota-monitor demo needs moto, which runs the local cloud: "
            "pip install 'apigw-quota-monitor[demo]' (make demo installs it)"
        )
        return EXIT_USAGE
    out.print("Starting the API Gateway sandbox and moto on loopback...", style="dim")
    with LocalCloud() as cloud, SlackReceiver() as slack:
        seeded, seeded_second = _seed(cloud)
        alerting = cloud.create_alert_resources(
            routes=(DEMO_ROUTE,), events=EventPattern(DEMO_BUS, {"source": [EVENT_SOURCE]})
        )
        assert alerting.events is not None
        cloud.client("s3").create_bucket(Bucket=DEMO_ARCHIVE)
        secret = cloud.client("secretsmanager").create_secret(
            Name="quota-monitor/slack-webhook", SecretString=slack.url
        )
        out.print(
            f"[bold]API Gateway sandbox[/] {cloud.sandbox.url}: in {REGION}, {len(seeded.plans)} usage plans "
            f"(DAY, WEEK, MONTH and one without a quota), {len(seeded.keys)} API keys; in "
            f"{DEMO_SECOND_REGION}, {len(seeded_second.plans)} plan and {len(seeded_second.keys)} keys "
            f"(REGIONS={DEMO_REGIONS}: one run reads both, each within its own API Gateway budget).\n"
            f"[bold]moto[/] {cloud.moto_url}: CloudWatch, the alert topics (SNS: the default one, and the "
            f"{DEMO_ROUTE!r} route's for the gold plan, tagged quota-monitor:route={DEMO_ROUTE}), each "
            f"with an SQS inbox, the EventBridge bus {DEMO_BUS!r} with a rule to an SQS queue, the alert "
            "state table (DynamoDB), the Slack webhook secret (Secrets Manager).\n"
        )
        with environment(_environment(cloud, alerting, secret["ARN"])):
            out.print("[bold]1. The Lambda handler[/] (quota_monitor.handler.handler), its log lines:")
            output = HandlerOutput()
            summary, records, log_lines = invoke_captured(output, {"source": "demo"})
            for line in log_lines:
                out.print(Text(line), style="dim")
            show_records(out, records, summary)
            settings = Settings.from_env(os.environ)
            show_dashboard(out, records, window=DASHBOARD_WINDOW_MINUTES)
            scans = scan_all(settings, boto3.Session(), show_progress=False)
            result = combined([scan.result for scan in scans], datetime.now(UTC))
            keys = sort_keys(result.keys)
            out.print()
            out.print(
                scan_table(
                    keys,
                    title=f"4. quota-monitor scan --regions {DEMO_REGIONS}: every key of both regions, most "
                    "used first",
                    columns=ACCOUNT_COLUMNS + COLUMNS,
                ),
                soft_wrap=True,
            )
            out.print(summary_line(result), style="dim", highlight=False)
            with_metrics = {
                (r["region"], r["usagePlanId"], r["apiKeyId"]) for r in records if r.get("metrics")
            }
            out.print(
                f"\n[bold]KEY_METRICS={settings.key_metrics.describe()}[/]: {len(with_metrics)} of "
                f"{len(result.keys)} keys have per-key metrics (RemainingQuota, QuotaUtilization): those "
                f"at or above their first alert level, and {DEMO_ALWAYS_METRICS_KEY}, tagged "
                f"{TAG_METRICS}=always; no per-plan roll-ups (the plans table above is their view); "
                f"{summary['keysOverMetricCap']} left out by the cap of {settings.key_metrics.top}."
            )
            top = [
                key
                for key in keys
                if (key.target.region if key.target else REGION, key.usage_plan_id, key.api_key_id)
                in with_metrics
            ]
            out.print(
                read_back_table(
                    lambda region: cloudwatch_client(region=region), settings.namespace, result, top, REGION
                )
            )
            out.print()
            delivered = alerting.received()
            out.print(alerts_table({"default": delivered, DEMO_ROUTE: alerting.received(DEMO_ROUTE)}))
            out.print()
            out.print(events_table(alerting.events.received()))
            out.print()
            sys.stdout.flush()
            slack_table = forward_to_slack(delivered, slack)
            out.print(slack_table)
            out.print(
                "\n[bold]9. The handler again[/]: every crossing was alerted once, so this run sends nothing."
            )
            again, again_records, again_lines = invoke_captured(output, {"source": "demo"})
            for line in again_lines:
                out.print(Text(line), style="dim")
            out.print(
                f"records written by the second run: {len(again_records)} ({again['recordBytes']:,} bytes)"
            )
            inbox = len(alerting.received()) + len(alerting.received(DEMO_ROUTE))
            queued = len(alerting.events.received())
            out.print(
                f"alerts sent by the second run: {again['alertsSent']}; new messages in the inboxes: "
                f"{inbox}; events sent: {again['eventsSent']}, new events in the queue: {queued}"
            )
            show_quota_endpoint(out, cloud, seeded)
            show_archive(out, cloud)
            out.print("\nAgainst your own account: [bold]quota-monitor scan[/] (read-only; see README.md).")
    return EXIT_PARTIAL if result.failures else EXIT_OK
