"""The benchmark's cloud, in a process of its own: the API Gateway sandbox and moto for CloudWatch.

Run as ``python -m bench.sandbox_host --plans 300 --keys 10000 ...``. It seeds the account, starts
both servers on loopback, prints one JSON line with their URLs, then answers one JSON command a
line on stdin with one JSON line on stdout (:mod:`bench.host`'s protocol; the driver holds it as
:class:`bench.run.SandboxHost`):

- ``configure``: latency, the account's token bucket, the time scale and the other traffic of the
  account for the next run; resets every counter and CloudWatch's stored data;
- ``shape``: how many plans and API keys the account holds, and the keys attached to each plan;
- ``truth``: each attached key's ``used`` and ``remaining`` for the scan date, from the sandbox's
  own model of AWS's accounting (independent of the monitor's code);
- ``stats``: API Gateway calls per operation, 429s sent, every PutMetricData request seen on
  the wire (bytes sent, bytes after gzip decoding, data points), and the distinct metric series
  (name and dimensions: what CloudWatch bills) those requests created, by number of dimensions;
- ``alert_resources``: a fresh alert state table and alert topic in moto, optionally with an item
  for every attached key as if each had been alerted in an earlier period (``alerted_in``, the
  period's first day: the recovery storm of a month's first run); returns their names;
- ``alert_state``: what the state table holds: items by level and period, claims left;
- ``quit``.

Other traffic: with ``background_rps`` d, from the run's first API Gateway request until the next
``stats``, the host spends d tokens a second of the account's bucket, as a deploy or a console
user would, and counts how many of those calls the bucket refused (the 429s they would have seen;
they are not retried).

Time scaling: with ``time_scale`` k, latency is divided by k and the token bucket runs on a clock
k times faster, so that its ``Retry-After`` is in scaled seconds, as the client's sleeps are.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import threading
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench.host import lighter_transactions, reply, serve_lines, unknown

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from apigw_sandbox.account import SandboxAccount


class PutMetricDataRecorder:
    """WSGI middleware in front of moto: records the size of every PutMetricData request, and the
    series it creates (counted on the way in: moto's ListMetrics is slow at tens of thousands)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.requests: list[dict[str, int | None]] = []
        self.series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("REQUEST_METHOD") == "POST":
            self._inspect(environ, body)
        response: Iterable[bytes] = self.app(environ, start_response)
        return response

    def _inspect(self, environ: dict[str, Any], body: bytes) -> None:
        decoded = gzip.decompress(body) if environ.get("HTTP_CONTENT_ENCODING") == "gzip" else body
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        path = str(environ.get("PATH_INFO", ""))
        datapoints: int | None = None
        series: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        if target.endswith(".PutMetricData"):  # JSON protocol
            data = json.loads(decoded).get("MetricData", [])
            datapoints = len(data)
            series = [
                (
                    str(datum["MetricName"]),
                    tuple(sorted((d["Name"], d["Value"]) for d in datum.get("Dimensions", []))),
                )
                for datum in data
            ]
        elif b"Action=PutMetricData" in decoded:  # query protocol
            datapoints = decoded.count(b".MetricName=")
            series = query_series(decoded)
        elif not path.endswith("/PutMetricData"):  # not PutMetricData (CBOR: counted, not decoded)
            return
        with self._lock:
            self.requests.append({"wire": len(body), "decoded": len(decoded), "datapoints": datapoints})
            self.series.update(series)

    def series_by_dimensions(self) -> dict[str, int]:
        """Distinct series created by number of dimensions: "2" per key, "1" per plan, "0" health."""
        counts: dict[str, int] = {}
        with self._lock:
            for _, dimensions in self.series:
                counts[str(len(dimensions))] = counts.get(str(len(dimensions)), 0) + 1
        return counts

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.series.clear()


def query_series(body: bytes) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """The series of a PutMetricData request in the query protocol."""
    from urllib.parse import parse_qsl  # noqa: PLC0415

    fields = dict(parse_qsl(body.decode()))
    found = []
    member = 1
    while f"MetricData.member.{member}.MetricName" in fields:
        prefix = f"MetricData.member.{member}"
        dimensions = []
        index = 1
        while f"{prefix}.Dimensions.member.{index}.Name" in fields:
            dimensions.append(
                (
                    fields[f"{prefix}.Dimensions.member.{index}.Name"],
                    fields[f"{prefix}.Dimensions.member.{index}.Value"],
                )
            )
            index += 1
        found.append((fields[f"{prefix}.MetricName"], tuple(sorted(dimensions))))
        member += 1
    return found


class MotoServer:
    """moto behind :class:`PutMetricDataRecorder`, threaded, on loopback."""

    def __init__(self) -> None:
        import logging  # noqa: PLC0415

        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - heavy, this process only
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.recorder = PutMetricDataRecorder(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1", 0, self.recorder, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> None:
        self._thread.start()

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - loopback only
            pass
        self.recorder.clear()

    def stop(self) -> None:
        self._server.shutdown()


class BackgroundTraffic:
    """Other callers of the account's control plane: ``rate`` calls a (scaled) second, not retried."""

    def __init__(self, throttle: Any, rate: float, scale: float) -> None:
        self.throttle, self.interval = throttle, 1.0 / (rate * scale)
        self.calls = self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-traffic", daemon=True)
        self._started = threading.Lock()

    def start_once(self, _request: object = None) -> None:
        """A sandbox fault hook: the first request of the run starts the traffic; serves normally."""
        if self._started.acquire(blocking=False):
            self._thread.start()

    def _run(self) -> None:
        from apigw_sandbox.server import Throttled  # noqa: PLC0415

        due = time.monotonic()
        while not self._stop.is_set():
            self.calls += 1
            try:
                self.throttle.admit()
            except Throttled:
                self.refused += 1
            due += self.interval
            self._stop.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> dict[str, int]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        return {"calls": self.calls, "refused": self.refused}


def scaled_clock(scale: float) -> Callable[[], float]:
    """A monotonic clock running ``scale`` times faster than real time."""

    def clock() -> float:
        return time.monotonic() * scale

    return clock


def truth(account: SandboxAccount, today: date) -> list[list[Any]]:
    """[plan id, key id, used, remaining] for every attached key, from the sandbox's model."""
    rows: list[list[Any]] = []
    for plan in account.plans.values():
        period = str(plan.quota["period"]) if plan.quota else "MONTH"
        start = account.period_start(period, today)
        for key_id in plan.key_ids:
            series = account.daily_usage(plan.id, key_id, start, today)
            remaining = series[-1][1] if plan.quota else None
            rows.append([plan.id, key_id, sum(used for used, _ in series), remaining])
    return rows


class Host:
    """The seeded sandbox and moto, and the answers to the driver's commands."""

    def __init__(self, account: SandboxAccount, scan_date: date) -> None:
        from apigw_sandbox.server import SandboxServer  # noqa: PLC0415

        self.account, self.scan_date = account, scan_date
        self.sandbox = SandboxServer(account)
        lighter_transactions()  # DynamoDB for the alert step (bench.alert_storm)
        self.moto = MotoServer()
        self.background: BackgroundTraffic | None = None
        self._tables = 0

    def start(self) -> None:
        self.sandbox.start()
        self.moto.start()

    def stop(self) -> None:
        if self.background is not None:
            self.background.stop()
        self.sandbox.stop()
        self.moto.stop()

    def answer(self, command: dict[str, Any]) -> dict[str, Any]:
        answers: dict[str, Callable[[], dict[str, Any]]] = {
            "configure": lambda: self.configure(command),
            "shape": self.shape,
            "truth": lambda: {"keys": truth(self.account, self.scan_date)},
            "stats": self.stats,
            "alert_resources": lambda: self.alert_resources(command.get("alerted_in")),
            "alert_state": lambda: self.alert_state(str(command["table"])),
        }
        answer = answers.get(str(command.get("op")))
        return answer() if answer is not None else unknown(command)

    def shape(self) -> dict[str, Any]:
        return {
            "plans": len(self.account.plans),
            "api_keys": len(self.account.keys),
            "keys_per_plan": [len(plan.key_ids) for plan in self.account.plans.values()],
        }

    def _client(self, service: str) -> Any:
        import boto3  # noqa: PLC0415

        make: Any = boto3.client
        return make(
            service,
            endpoint_url=self.moto.url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto's placeholder
        )

    def alert_resources(self, alerted_in: str | None) -> dict[str, Any]:
        """A fresh state table (and topic); with ``alerted_in``, an item for every attached key, alerted
        at 80, 90 or 100 in the period that started that day, as the monitor itself writes them."""
        self._tables += 1
        table, dynamodb = f"quota-alert-state-{self._tables}", self._client("dynamodb")
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        topic = self._client("sns").create_topic(Name=f"quota-alerts-{self._tables}")["TopicArn"]
        items = 0
        if alerted_in is not None:
            pairs = [(plan.id, key_id) for plan in self.account.plans.values() for key_id in plan.key_ids]
            expires = (
                int(datetime.combine(self.scan_date, datetime.min.time(), tzinfo=UTC).timestamp()) + 7 * 86400
            )
            requests = [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": f"{plan_id}#{key_id}"},
                            "usagePlanId": {"S": plan_id},
                            "apiKeyId": {"S": key_id},
                            "periodStart": {"S": alerted_in},
                            "alertLevel": {"N": str((80, 90, 100)[n % 3])},
                            "forecastSent": {"BOOL": False},
                            "rev": {"N": "1"},
                            "expiresAt": {"N": str(expires)},
                        }
                    }
                }
                for n, (plan_id, key_id) in enumerate(pairs)
            ]
            for start in range(0, len(requests), 25):
                dynamodb.batch_write_item(RequestItems={table: requests[start : start + 25]})
            items = len(requests)
        return {"table": table, "topic": topic, "items": items}

    def alert_state(self, table: str) -> dict[str, Any]:
        """What the state table holds after a run: items by (period start, level), and claims left."""
        by_state: dict[str, int] = {}
        claims = items = 0
        for page in self._client("dynamodb").get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                items += 1
                state = f"{item.get('periodStart', {}).get('S')} level {item.get('alertLevel', {}).get('N')}"
                by_state[state] = by_state.get(state, 0) + 1
                claims += "claimToken" in item
        return {"items": items, "by_state": by_state, "claims": claims}

    def configure(self, command: dict[str, Any]) -> dict[str, Any]:
        from apigw_sandbox.server import AccountThrottle  # noqa: PLC0415

        if self.background is not None:
            self.background.stop()
            self.background = None
        scale = float(command["time_scale"])
        low, high = command["latency"]
        self.sandbox.latency = (low / scale, high / scale)
        rate, burst = float(command.get("account_rps") or 0), int(command.get("account_burst") or 1)
        throttle = AccountThrottle(rate, burst, clock=scaled_clock(scale)) if rate > 0 else None
        self.sandbox.throttle = throttle
        self.sandbox.reset_counters()
        self.sandbox.fault_hooks.clear()
        other = float(command.get("background_rps") or 0)
        if other > 0:
            if throttle is None:
                return {"error": "other traffic needs the account's token bucket (account_rps)"}
            self.background = BackgroundTraffic(throttle, other, scale)
            self.sandbox.fault_hooks.append(self.background.start_once)
        self.moto.reset()
        return {"ok": True}

    def stats(self) -> dict[str, Any]:
        return {
            "background": self.background.stop() if self.background is not None else None,
            "calls": dict(self.sandbox.calls),
            "throttled": self.sandbox.throttled,
            "limits": sorted({request.query.get("limit", "") for request in self.sandbox.requests}),
            "metric_requests": list(self.moto.recorder.requests),
            "series": self.moto.recorder.series_by_dimensions(),
        }


def main(argv: list[str] | None = None) -> int:
    from apigw_sandbox.account import SandboxAccount  # noqa: PLC0415
    from apigw_sandbox.seed import seed_scale_account  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_host")
    parser.add_argument("--plans", type=int, required=True)
    parser.add_argument("--keys", type=int, required=True)
    parser.add_argument("--big-plans", type=int, required=True)
    parser.add_argument("--big-plan-keys", type=int, required=True)
    parser.add_argument("--scan-date", type=date.fromisoformat, required=True)
    parser.add_argument(
        "--history-days", type=int, help="days of data before the scan date (default: from the 1st)"
    )
    parser.add_argument(
        "--utilization",
        type=float,
        nargs=2,
        default=(1.0, 99.0),
        help="each key's utilization today: from, to",
    )
    args = parser.parse_args(argv)

    scan_at = datetime.combine(args.scan_date, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    account = SandboxAccount(clock=lambda: scan_at)
    started = time.monotonic()
    seed_scale_account(
        account,
        plans=args.plans,
        keys=args.keys,
        big_plans=args.big_plans,
        big_plan_keys=args.big_plan_keys,
        history_days=args.scan_date.day - 1 if args.history_days is None else args.history_days,
        utilization=(args.utilization[0], args.utilization[1]),
    )
    seeded_in = time.monotonic() - started
    host = Host(account, args.scan_date)
    host.start()
    urls = {"apigateway": host.sandbox.url, "cloudwatch": host.moto.url}
    reply({"ready": True, **urls, "seconds_to_seed": seeded_in})
    try:
        serve_lines(host.answer)
    finally:
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
