"""The stack with events: a bus of its own (or the default bus), exact IAM for PutEvents, the events'
schema in a registry, and the example rule to an encrypted SQS queue. One synth each, cdk-nag on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.context import settings_from_context
from infra.settings import SettingError
from quota_monitor.deliver.events import EVENT_SOURCE, event_schema
from tests.infra_support import Synthesized, cfn_lint, render, statements, synthesize

pytestmark = pytest.mark.synth

DETAIL_TYPES = ["Quota Threshold Crossed", "Quota Forecast Exhausted", "Quota Recovered"]
DEFAULT_BUS = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"


@pytest.fixture(scope="module")
def created(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("events-created"), eventBus="create", eventsToQueue="true")


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("events-default"), eventBus="default")


def _granted(synth: Synthesized) -> dict[str, Any]:
    policy = synth.resources[synth.logical_id("Monitor/FunctionRole/DefaultPolicy")]
    return {statement.get("Sid", statement["Action"][0]): statement for statement in statements(policy)}


def _variables(synth: Synthesized) -> dict[str, str]:
    function = render(synth.resources[synth.logical_id("Monitor/Function")]["Properties"])
    variables: dict[str, str] = function["Environment"]["Variables"]
    return variables


def test_a_created_bus_is_named_to_the_function_and_put_on_by_it_alone(created: Synthesized) -> None:
    bus = created.logical_id("Monitor/Events/Bus")
    assert _variables(created)["EVENT_BUS_NAME"] == f"${{{bus}}}"
    granted = _granted(created)
    assert granted["PutQuotaEvents"] == {
        "Sid": "PutQuotaEvents",
        "Action": ["events:PutEvents"],
        "Condition": {"StringEquals": {"events:source": EVENT_SOURCE}},
        "Effect": "Allow",
        "Resource": [f"${{{bus}.Arn}}"],
    }
    events_actions = [
        a for statement in granted.values() for a in statement["Action"] if a.startswith("events:")
    ]
    assert events_actions == ["events:PutEvents"]


def test_the_default_bus_is_named_and_granted_by_its_arn(default: Synthesized) -> None:
    assert _variables(default)["EVENT_BUS_NAME"] == "default"
    assert _granted(default)["PutQuotaEvents"]["Resource"] == [DEFAULT_BUS]
    assert default.of_type("AWS::Events::EventBus") == {}
    assert default.of_type("AWS::Events::Rule") == {}  # the example rule is off by default
    assert "EventsQueueUrl" not in default.raw["Outputs"]


def test_the_role_grants_exactly_what_it_did_before_and_put_events(
    default: Synthesized, tmp_path_factory: pytest.TempPathFactory
) -> None:
    plain = synthesize(tmp_path_factory.mktemp("no-events"))
    assert set(_granted(default)) - set(_granted(plain)) == {"PutQuotaEvents"}
    assert "EVENT_BUS_NAME" not in _variables(plain)
    assert plain.of_type("AWS::EventSchemas::Schema") == {}


def test_the_schema_is_registered_as_shipped(created: Synthesized) -> None:
    registry_id, registry = created.one("AWS::EventSchemas::Registry")
    assert "RegistryName" not in registry["Properties"]  # CloudFormation names it: one per stack
    _, schema = created.one("AWS::EventSchemas::Schema")
    properties = render(schema["Properties"])
    assert json.loads(properties.pop("Content")) == event_schema()
    assert properties == {
        "Description": "Quota Threshold Crossed, Quota Forecast Exhausted, Quota Recovered (docs/events.md)",
        "RegistryName": f"${{{registry_id}.RegistryName}}",
        "SchemaName": "apigw-quota-monitor@QuotaEvent",
        "Type": "JSONSchemaDraft4",
    }


def test_the_example_rule_sends_the_monitors_events_to_an_encrypted_queue(created: Synthesized) -> None:
    queue = created.logical_id("Monitor/Events/Queue")
    dead_letters = created.logical_id("Monitor/Events/DeadLetterQueue")
    rule = created.logical_id("Monitor/Events/ToQueue")
    assert render(created.resources[rule]["Properties"]) == {
        "Description": "Example: every event of the API Gateway quota monitor into an SQS queue",
        "EventBusName": f"${{{created.logical_id('Monitor/Events/Bus')}}}",
        "EventPattern": {"detail-type": DETAIL_TYPES, "source": [EVENT_SOURCE]},
        "State": "ENABLED",
        "Targets": [
            {
                "Arn": f"${{{queue}.Arn}}",
                "DeadLetterConfig": {"Arn": f"${{{dead_letters}.Arn}}"},
                "Id": "Target0",
            }
        ],
    }
    assert render(created.resources[queue]["Properties"]) == {
        "MessageRetentionPeriod": 1209600,
        "RedrivePolicy": {"deadLetterTargetArn": f"${{{dead_letters}.Arn}}", "maxReceiveCount": 5},
        "SqsManagedSseEnabled": True,
    }
    (policy,) = [
        render(body["Properties"]["PolicyDocument"]["Statement"])
        for body in created.of_type("AWS::SQS::QueuePolicy").values()
        if render(body["Properties"]["Queues"]) == [f"${{{queue}}}"]
    ]
    assert policy == [
        {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": f"${{{queue}.Arn}}",
        },
        {
            "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
            "Condition": {"ArnEquals": {"aws:SourceArn": f"${{{rule}.Arn}}"}},
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": f"${{{queue}.Arn}}",
        },
    ]
    outputs = {name: render(body["Value"]) for name, body in created.raw["Outputs"].items()}
    assert outputs["EventsQueueUrl"] == f"${{{queue}}}"
    assert outputs["EventBusName"] == f"${{{created.logical_id('Monitor/Events/Bus')}}}"
    registry_id, _ = created.one("AWS::EventSchemas::Registry")
    assert outputs["EventSchemaRegistryName"] == f"${{{registry_id}.RegistryName}}"


@pytest.mark.parametrize("which", ["created", "default"])
def test_cfn_lint_passes_with_events(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    assert cfn_lint(synth.raw) == []


@pytest.mark.parametrize(
    ("context", "fragments"),
    [
        ({"eventBus": "central"}, ("eventBus='central' is not allowed", "'default'", "'create'")),
        ({"eventsToQueue": "true"}, ("eventsToQueue=True is not allowed", "set eventBus too")),
        (
            {"eventBus": "create", "eventsToQueue": "sometimes"},
            ("eventsToQueue='sometimes'", "true or false"),
        ),
    ],
)
def test_event_settings_are_checked(context: dict[str, str], fragments: tuple[str, ...]) -> None:
    with pytest.raises(SettingError) as raised:
        settings_from_context(context)
    for fragment in fragments:
        assert fragment in str(raised.value)
