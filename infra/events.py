"""Where events go: the account's default EventBridge bus or one of the stack's own, the events' schema
in a registry, and one example rule that sends them to an encrypted SQS queue.

The function may put events on exactly that bus, and only with its own source
(``events:source``, docs/aws-behaviour.md#eventbridge).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_eventschemas as eventschemas
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.functions import dead_letter_queue
from quota_monitor import EVENT_DETAIL_TYPES, EVENT_SOURCE, event_schema

if TYPE_CHECKING:
    from infra.settings import EventBusChoice

#: The registry's schema, named as EventBridge names the schemas it discovers (``<source>@<type>``).
SCHEMA_NAME: Final = f"{EVENT_SOURCE}@QuotaEvent"


class QuotaEvents(Construct):
    """The bus the monitor puts its events on, their schema, and (``to_queue``) the example rule."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bus: EventBusChoice,
        to_queue: bool,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.bus: events.IEventBus
        if bus == "create":
            self.bus = events.EventBus(
                self, "Bus", description="API Gateway quota monitor: a crossing, forecast or recovery per key"
            )
            #: What the function's EVENT_BUS_NAME says.
            self.bus_name = self.bus.event_bus_name
        else:
            self.bus = events.EventBus.from_event_bus_name(self, "Bus", "default")
            self.bus_name = "default"

        self.registry = eventschemas.CfnRegistry(
            self, "Schemas", description="Events of the API Gateway quota monitor (apigw-quota-monitor)"
        )
        self.schema = eventschemas.CfnSchema(
            self,
            "Schema",
            registry_name=self.registry.attr_registry_name,
            schema_name=SCHEMA_NAME,
            type="JSONSchemaDraft4",
            content=json.dumps(event_schema(), separators=(",", ":")),
            description="Quota Threshold Crossed, Quota Forecast Exhausted, Quota Recovered (docs/events.md)",
        )

        self.queue: sqs.Queue | None = None
        self.rule: events.Rule | None = None
        if to_queue:
            # Events EventBridge could not put in the queue (a queue policy changed by hand, say), and
            # messages a consumer failed to process five times.
            self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue")
            self.queue = sqs.Queue(
                self,
                "Queue",
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=Duration.days(14),
                dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5, queue=self.dead_letter_queue),
                removal_policy=removal_policy,
            )
            self.rule = events.Rule(
                self,
                "ToQueue",
                description="Example: every event of the API Gateway quota monitor into an SQS queue",
                event_bus=self.bus,
                event_pattern=events.EventPattern(
                    source=[EVENT_SOURCE], detail_type=list(EVENT_DETAIL_TYPES.values())
                ),
                targets=[targets.SqsQueue(self.queue, dead_letter_queue=self.dead_letter_queue)],
            )

    def grant_put_events(self, grantee: iam.IGrantable) -> None:
        """``events:PutEvents`` on exactly this bus, for the monitor's own source only."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PutQuotaEvents",
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={"StringEquals": {"events:source": EVENT_SOURCE}},
            )
        )
