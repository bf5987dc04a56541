"""A second region's deploy must not collide with the first: every name AWS keeps account-wide is
unique per region (infra/names.py), whether the region is known at synth or only at deploy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack

from infra.monitor import UsageQuotaMonitor
from infra.names import ACCOUNT_GLOBAL_NAMES, regional_name
from infra.settings import MonitorSettings, SlackChannel, SlackWebhook
from tests.infra_support import REPO_ROOT, cdk_json_context, render, synthesize

pytestmark = pytest.mark.synth

CHATBOT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
SLACK = {"slackWorkspaceId": "T0123ABCD45", "slackChannelId": "C0123ABCD45", "slackWebhookSecret": "create"}


def account_global_names(raw: dict[str, Any]) -> dict[str, str]:
    """Logical id -> the rendered account-wide name, for every resource that sets one."""
    return {
        logical_id: str(render(body["Properties"][ACCOUNT_GLOBAL_NAMES[body["Type"]]]))
        for logical_id, body in raw["Resources"].items()
        if body["Type"] in ACCOUNT_GLOBAL_NAMES
        and ACCOUNT_GLOBAL_NAMES[body["Type"]] in body.get("Properties", {})
    }


def test_every_account_wide_name_of_the_deployable_stack_holds_the_region(tmp_path: Path) -> None:
    """The app is environment-agnostic: the region is ``AWS::Region``, resolved at deploy."""
    synth = synthesize(tmp_path, **SLACK)
    names = account_global_names(synth.raw)
    assert names, "the Chatbot configuration at least is named"
    for logical_id, name in names.items():
        assert "${AWS::Region}" in name, f"{logical_id}: {name!r} is the same in every region"


def two_regions() -> tuple[dict[str, Any], dict[str, Any]]:
    """The construct in one app, in two regions of one account (the way StackSets or a pipeline
    deploy it): the region is known at synth."""
    app = App(context=cdk_json_context())
    stacks = []
    for region in ("us-east-1", "eu-west-1"):
        # The same stack name in both regions, as `cdk deploy` to a second region gives.
        stack = Stack(
            app,
            f"In-{region}",
            stack_name="QuotaMonitor",
            env=Environment(account="123456789012", region=region),
        )
        UsageQuotaMonitor(
            stack,
            "Monitor",
            settings=MonitorSettings(
                alert_emails=("ops@example.com",),
                slack_channel=SlackChannel(workspace_id="T0123ABCD45", channel_id="C0123ABCD45"),
                slack_webhook=SlackWebhook(secret_arn=None),
            ),
        )
        stacks.append(stack)
    assembly = app.synth()
    first, second = (assembly.get_stack_artifact(stack.artifact_id).template for stack in stacks)
    return first, second


@pytest.fixture(scope="module")
def regions() -> tuple[dict[str, Any], dict[str, Any]]:
    return two_regions()


def test_a_second_region_names_nothing_the_first_holds(
    regions: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = (set(account_global_names(raw).values()) for raw in regions)
    assert first
    assert first.isdisjoint(second)
    (chatbot,) = [name for name in second if name.startswith("QuotaMonitor-")]
    assert chatbot == "QuotaMonitor-eu-west-1-quota-alerts"
    assert CHATBOT_NAME.match(chatbot)


@pytest.mark.parametrize("region", ["us-east-1", None])
def test_a_long_stack_name_still_fits_chatbots_128_characters_and_stays_distinct(region: str | None) -> None:
    app = App()
    env = Environment(account="123456789012", region=region) if region else None
    names = []
    for tail in ("a", "b"):
        stack = Stack(app, "Q" * 120 + tail, env=env)
        names.append(regional_name(stack, "quota-alerts", max_length=128))
    for name in names:
        shown = stack.resolve(name)
        rendered = str(render(shown)).replace("${AWS::Region}", "us-isof-south-1")
        assert len(rendered) <= 128, rendered
        assert CHATBOT_NAME.match(rendered), rendered
    assert str(render(stack.resolve(names[0]))) != str(render(stack.resolve(names[1])))


def test_the_rule_is_written_down_where_the_docs_say() -> None:
    text = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "<stack name>-<region>-quota-alerts" in text
