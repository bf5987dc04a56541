"""The three rules docs/alerts.md shows users ("Events for programs") synthesize as written, and match
the monitor's events."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_events as events
from aws_cdk.assertions import Template

from quota_monitor.deliver.events import EVENT_DETAIL_TYPES, EVENT_SOURCE
from tests.infra_support import REPO_ROOT, render

pytestmark = pytest.mark.synth


def test_the_rules_in_the_docs_synthesize_and_match_the_monitors_events() -> None:
    text = (REPO_ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    (code,) = [
        block
        for block in re.findall(r"```python\n(.*?)\n```", text, re.DOTALL)
        if "quota_event_rules" in block
    ]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/alerts.md", "exec"), namespace)  # our own documentation
    stack = Stack(App(), "UserStack")
    namespace["quota_event_rules"](stack, events.EventBus.from_event_bus_name(stack, "Bus", "default"))
    rules = {
        name: render(body["Properties"])
        for name, body in Template.from_stack(stack).to_json()["Resources"].items()
        if body["Type"] == "AWS::Events::Rule"
    }
    assert len(rules) == 3
    for rule in rules.values():
        pattern = rule["EventPattern"]
        assert pattern["source"] == [EVENT_SOURCE]
        assert set(pattern.get("detail-type", EVENT_DETAIL_TYPES.values())) <= set(
            EVENT_DETAIL_TYPES.values()
        )
        assert rule["EventBusName"] == "default"
