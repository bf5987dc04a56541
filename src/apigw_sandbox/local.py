"""Everything the monitor talks to, on loopback: the sandbox for API Gateway, moto for the rest.

moto serves CloudWatch, SNS, SQS, DynamoDB, EventBridge and Secrets Manager; it has no GetUsage and does not
page usage plans, which is why the sandbox exists
(docs/aws-behaviour.md#botocore-and-moto-behaviour-found-here). :meth:`LocalCloud.env` gives the standard
boto3 settings (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_API_GATEWAY``, fake credentials, a region) that point
any boto3 client, and the Lambda handler, at both. :attr:`LocalCloud.data_plane` serves REST API stages
whose methods call Python handlers as Lambda proxy integrations, metered by the sandbox's usage plans
(:mod:`apigw_sandbox.data_plane`).
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
import threading
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apigw_sandbox.server import AccountThrottle, SandboxServer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.data_plane import DataPlane

REGION = "us-east-1"


def atomic_moto_server(refused_roles: set[str]) -> Any:
    """moto's threaded server, serving one request at a time, and refusing to let anyone assume the
    roles in ``refused_roles``.

    AWS applies each request to one item atomically: a DynamoDB ``UpdateItem`` with a
    ``ConditionExpression`` checks and writes as one step, which is what the alert claims rely on.
    moto's backends do not: ``update_item`` reads the item, evaluates the condition and writes
    with no lock, so two concurrent requests can both pass the same condition (seen here: two
    overlapping runs both claiming a key). Serializing requests makes each one atomic, as in AWS.

    moto lets anyone assume any role; AWS refuses a role whose trust policy does not name the caller.
    A refused role here gets the answer STS gives then: 403 ``AccessDenied``.
    """
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: PLC0415 - heavy
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    class AtomicMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            lock = threading.Lock()

            def one_at_a_time(environ: Any, start_response: Any) -> list[bytes]:
                refusal = _refused_assume_role(environ, refused_roles)
                if refusal is not None:
                    start_response("403 Forbidden", [("Content-Type", "text/xml")])
                    return [refusal]
                with lock:
                    return list(app(environ, start_response))

            self._server = make_server(
                self._ip_address, self._port, one_at_a_time, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return AtomicMotoServer(ip_address="127.0.0.1", port=0, verbose=False)


def _refused_assume_role(environ: Any, refused_roles: set[str]) -> bytes | None:
    """STS's AccessDenied answer when the request assumes a refused role; None for any other request.

    The body is read and put back, so that moto reads the request as it came.
    """
    if not refused_roles or "/sts/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    role = (form.get("RoleArn") or [""])[0]
    if form.get("Action") != ["AssumeRole"] or role not in refused_roles:
        return None
    message = f"User is not authorized to perform: sts:AssumeRole on resource: {role}"
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>AccessDenied</Code><Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


class LocalCloud:
    """The sandbox, its data plane and a moto server, started together; a context manager."""

    def __init__(
        self,
        account: SandboxAccount | None = None,
        *,
        throttle: AccountThrottle | None = None,
        latency: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from apigw_sandbox.data_plane import DataPlane  # noqa: PLC0415 - it imports this module

        self.sandbox = SandboxServer(account, throttle=throttle, latency=latency)
        #: REST API stages of the sandbox's (default) account, metered by whichever account it serves.
        self.data_plane: DataPlane = DataPlane(lambda: self.sandbox.account, region=REGION)
        #: Roles STS refuses to let anyone assume (:meth:`refuse_assume_role`).
        self.refused_roles: set[str] = set()
        self._moto = atomic_moto_server(self.refused_roles)
        self._accounts_of_keys: dict[str, str] = {}
        self.moto_url = ""

    @property
    def account(self) -> SandboxAccount:
        return self.sandbox.account

    def start(self) -> LocalCloud:
        self.sandbox.start()
        self.data_plane.start()
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self.sandbox.account_of = self.account_of
        return self

    def account_of(self, access_key_id: str) -> str:
        """The account whose credentials these are, as moto's STS knows them (an assumed role's keys
        belong to the role's account; any other key to moto's default account). The sandbox asks, as
        API Gateway's endpoints ask IAM, so that a spoke's requests reach the spoke's usage plans."""
        known = self._accounts_of_keys.get(access_key_id)
        if known is None:
            import boto3  # noqa: PLC0415

            sts = boto3.client(
                "sts",
                endpoint_url=self.moto_url,
                region_name=REGION,
                aws_access_key_id=access_key_id,
                aws_secret_access_key="unused",  # noqa: S106 - moto reads the key id only
            )
            known = str(sts.get_caller_identity()["Account"])
            self._accounts_of_keys[access_key_id] = known
        return known

    def refuse_assume_role(self, role_arn: str) -> None:
        """STS answers AccessDenied to anyone assuming ``role_arn`` (its trust policy names someone else)."""
        self.refused_roles.add(role_arn)

    def stop(self) -> None:
        self.sandbox.stop()
        self.data_plane.stop()
        self._moto.stop()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """boto3's standard settings for this local cloud (credentials are placeholders)."""
        return {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ENDPOINT_URL_API_GATEWAY": self.sandbox.url,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def reset_moto(self) -> None:
        """Forget every moto resource (between tests), and the roles refused."""
        self.refused_roles.clear()
        self._accounts_of_keys.clear()
        request = urllib.request.Request(f"{self.moto_url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback only
            pass

    def create_alert_resources(
        self,
        *,
        table_name: str = "quota-alert-state",
        topic_name: str = "quota-alerts",
        routes: Sequence[str] = (),
        events: EventPattern | None = None,
    ) -> AlertResources:
        """The alert state table, the alert topic and an SQS inbox subscribed to it, in moto; for
        each route in ``routes``, a topic of its own with its own inbox (``ALERT_ROUTES``); and with
        ``events``, an EventBridge bus whose rule sends matching events to an SQS queue
        (``EVENT_BUS_NAME``)."""
        self.client("dynamodb").create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        default = self.create_topic_with_inbox(topic_name)
        return AlertResources(
            self,
            topic_arn=default.topic_arn,
            table_name=table_name,
            queue_url=default.queue_url,
            routes={route: self.create_topic_with_inbox(f"{topic_name}-{route}") for route in routes},
            events=self.create_bus_with_queue(events) if events is not None else None,
        )

    def create_bus_with_queue(self, pattern: EventPattern) -> EventInbox:
        """An EventBridge bus (moto's; ``default`` is there already) with one rule that sends the events
        matching ``pattern`` to an SQS queue, as a user's rule would."""
        events, sqs = self.client("events"), self.client("sqs")
        if pattern.bus != "default":
            events.create_event_bus(Name=pattern.bus)
        queue_url = sqs.create_queue(QueueName=f"{pattern.bus}-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        rule = f"{pattern.bus}-to-queue"
        events.put_rule(Name=rule, EventBusName=pattern.bus, EventPattern=json.dumps(pattern.pattern))
        events.put_targets(Rule=rule, EventBusName=pattern.bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
        return EventInbox(self, bus=pattern.bus, queue_url=queue_url)

    def create_topic_with_inbox(self, topic_name: str) -> TopicInbox:
        """An SNS topic and an SQS queue subscribed to it, in moto."""
        sns, sqs = self.client("sns"), self.client("sqs")
        topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
        queue_url = sqs.create_queue(QueueName=f"{topic_name}-inbox")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attributes["QueueArn"])
        return TopicInbox(topic_arn, queue_url)

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3  # noqa: PLC0415

        endpoint = self.sandbox.url if service == "apigateway" else self.moto_url
        make: Any = boto3.client
        return make(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",  # noqa: S106 - placeholder
            **kwargs,
        )


@dataclass
class LambdaContextStandIn:
    """The parts of a Lambda context that the handlers and Powertools read."""

    function_name: str = "quota-monitor-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:quota-monitor-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/quota-monitor-local"
    log_stream_name: str = "local"
    remaining_millis: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


def invoke_handler(
    module_name: str, event: dict[str, Any], context: LambdaContextStandIn | None = None
) -> Any:
    """Import a Lambda handler module afresh, as at a cold start (it reads settings at import); call it."""
    module = importlib.reload(importlib.import_module(module_name))
    _log_to_stdout(module)
    return module.handler(event, context or LambdaContextStandIn())


def _log_to_stdout(module: Any) -> None:
    """A cold start is a new process, whose logger writes to its stdout. In this one, Powertools keeps
    the logger of the first import (``Logger`` configures a service's logger once) and the stdout of
    that moment, perhaps a capture closed since: point its stream handlers at today's stdout."""
    service = getattr(getattr(module, "logger", None), "service", None)
    for handler in logging.getLogger(str(service)).handlers if service else ():
        if type(handler) is logging.StreamHandler and handler.stream not in (sys.stderr, sys.__stderr__):
            handler.stream = sys.stdout


@dataclass(frozen=True)
class EventPattern:
    """A bus, and the event pattern of the rule that sends its events to a queue."""

    bus: str
    pattern: dict[str, Any]


@dataclass(frozen=True)
class EventInbox:
    """An EventBridge bus and the SQS queue its rule sends events to."""

    cloud: LocalCloud
    bus: str
    queue_url: str

    def received(self) -> list[dict[str, Any]]:
        """Every event the rule delivered so far (drained), as EventBridge delivers them."""
        return drain(self.cloud, self.queue_url)


@dataclass(frozen=True)
class TopicInbox:
    """An SNS topic and the SQS queue subscribed to it."""

    topic_arn: str
    queue_url: str


def drain(cloud: LocalCloud, queue_url: str) -> list[dict[str, Any]]:
    """Every message in an SQS queue so far, bodies parsed as JSON; the queue is left empty."""
    sqs = cloud.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return out
        for message in batch:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class AlertResources:
    """The alert topic, state table and SQS inbox of a :class:`LocalCloud`, and the routes' topics."""

    cloud: LocalCloud
    topic_arn: str
    table_name: str
    queue_url: str
    routes: dict[str, TopicInbox] = field(default_factory=dict)
    events: EventInbox | None = None

    def env(self, **extra: str) -> dict[str, str]:
        """The monitor's alert settings for these resources, with ``extra`` settings."""
        routes = {"ALERT_ROUTES": json.dumps(self.route_topics())} if self.routes else {}
        bus = {"EVENT_BUS_NAME": self.events.bus} if self.events is not None else {}
        return {
            "ALERT_TOPIC_ARN": self.topic_arn,
            "ALERT_TABLE_NAME": self.table_name,
            **routes,
            **bus,
            **extra,
        }

    def route_topics(self) -> dict[str, str]:
        """``ALERT_ROUTES``: route name -> topic ARN."""
        return {route: inbox.topic_arn for route, inbox in self.routes.items()}

    def received(self, route: str | None = None) -> list[dict[str, Any]]:
        """Every message delivered to the default topic's inbox (or ``route``'s) so far, drained: SNS
        envelopes, ``Message`` parsed."""
        queue_url = self.queue_url if route is None else self.routes[route].queue_url
        envelopes = drain(self.cloud, queue_url)
        for envelope in envelopes:
            envelope["Message"] = json.loads(envelope["Message"])
        return envelopes

    def items(self) -> dict[str, dict[str, Any]]:
        """The state table's items by ``pk``: every page (a Scan page holds at most 1 MB)."""
        pages = self.cloud.client("dynamodb").get_paginator("scan").paginate(TableName=self.table_name)
        return {item["pk"]["S"]: item for page in pages for item in page["Items"]}
