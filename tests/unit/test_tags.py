"""Tag values: one rule for every ``quota-monitor:*`` tag, and nothing shown to users that AWS refuses.

AWS's general rule for tag values (CloudFormation, the Tag Editor, most services) allows letters,
digits, spaces and ``_ . : / = + - @`` (docs/aws-behaviour.md#tags). Every example the project
shows (docs, README, messages, the demo account) must be a value those tools accept.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.seed import seed_demo_account
from quota_monitor.alert.rules import Notification
from quota_monitor.compute.tags import TAG_MUTE, TAG_PREFIX, TAG_THRESHOLDS, TagValueError, tag_flag, tag_list
from quota_monitor.config import Settings
from quota_monitor.deliver.messages import compose
from quota_monitor.errors import ConfigError
from quota_monitor.models import KeyUsage

REPO = Path(__file__).resolve().parents[2]
#: AWS's general rule for a tag value: up to 256 letters, digits, spaces and _ . : / = + - @.
AWS_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{0,256}$")
#: A tag of the monitor written with its value in the docs: `quota-monitor:x` = `value`,
#: `quota-monitor:x=value`, or quota-monitor:x (such as value) in prose.
TAG_EXAMPLE = re.compile(
    r"quota-monitor:(?P<tag>[a-z-]+)`?\s*(?:=\s*`?|\(such as\s+)(?P<value>[^`\s);]+(?: [^`\s);]+)*)"
)


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("50/75/95", ("50", "75", "95")),
        ("50 75 95", ("50", "75", "95")),
        ("50,75,95", ("50", "75", "95")),
        ("  50 /75 ,  95  ", ("50", "75", "95")),
        ("always", ("always",)),
        ("ops/billing", ("ops", "billing")),
    ],
)
def test_a_list_tag_takes_slashes_spaces_or_commas(value: str, items: tuple[str, ...]) -> None:
    assert tag_list(value) == items


@pytest.mark.parametrize("value", ["", "  ", "50//95", "50/", "/50", "50,,95", "50, /95"])
def test_an_empty_item_is_an_error_not_skipped(value: str) -> None:
    with pytest.raises(TagValueError, match="empty"):
        tag_list(value)


@pytest.mark.parametrize(
    ("value", "flag"),
    [
        *[("true", True), ("TRUE", True), (" yes ", True), ("on", True), ("1", True)],
        *[("false", False), ("No", False), ("off", False), ("0", False)],
    ],
)
def test_a_flag_tag(value: str, flag: bool) -> None:
    assert tag_flag(value) is flag


def test_a_flag_that_is_neither_says_so() -> None:
    with pytest.raises(TagValueError, match="'maybe' is not true or false"):
        tag_flag("maybe")


def test_the_tags_share_one_prefix() -> None:
    assert TAG_THRESHOLDS.startswith(TAG_PREFIX)
    assert TAG_MUTE.startswith(TAG_PREFIX)


def documented_examples() -> list[tuple[str, str, str]]:
    """(file, tag, value) for every tag example in the README and docs."""
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for match in TAG_EXAMPLE.finditer(path.read_text(encoding="utf-8")):
            found.append((path.name, match["tag"], match["value"].rstrip(".,")))
    return found


def test_every_tag_example_in_the_docs_is_a_value_aws_accepts_and_the_monitor_reads() -> None:
    examples = documented_examples()
    assert {tag for _, tag, _ in examples} >= {"thresholds", "mute"}
    for where, tag, value in examples:
        assert AWS_TAG_VALUE.match(value), (
            f"{where}: quota-monitor:{tag}={value!r} is refused by AWS's tag rules"
        )
        if tag == "thresholds":
            assert len(tag_list(value)) >= 1
        elif tag == "mute":
            tag_flag(value)


def test_the_how_to_line_in_every_alert_shows_a_value_aws_accepts() -> None:
    key = KeyUsage(
        usage_plan_id="p1",
        usage_plan_name="gold",
        api_key_id="k1",
        api_key_name="billing",
        period="MONTH",
        period_start=date(2026, 11, 1),
        resets_at=datetime(2026, 12, 1, tzinfo=UTC),
        used=950,
        remaining=50,
        limit=1_000,
        utilization=95.0,
    )
    note = Notification("threshold", key, level=90, levels=(80, 90, 100), levels_from="default")
    (message,) = compose([note], digest_min=5, region="us-east-1", now=datetime(2026, 11, 20, tzinfo=UTC))
    email = message.bodies["email"]
    shown = [(m["tag"], m["value"].rstrip(".,")) for m in TAG_EXAMPLE.finditer(email)]
    assert ("thresholds", "50/75/95") in shown
    assert ("mute", "true") in shown
    assert all(AWS_TAG_VALUE.match(value) for _, value in shown)


def test_the_demo_account_tags_with_values_aws_accepts() -> None:
    account = SandboxAccount(clock=lambda: datetime(2026, 11, 20, 12, tzinfo=UTC))
    seed_demo_account(account)
    tags = [plan.tags for plan in account.plans.values()] + [key.tags for key in account.keys.values()]
    values = [value for tagged in tags for tag, value in tagged.items() if tag.startswith(TAG_PREFIX)]
    assert values
    assert all(AWS_TAG_VALUE.match(value) for value in values), values


@pytest.mark.parametrize("value", ["75,90,100", "75/90/100", "75 90 100", " 75, 90 ,100 "])
def test_the_thresholds_setting_still_takes_commas_and_the_tag_separators(value: str) -> None:
    env = {"ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts", "ALERT_TABLE_NAME": "state"}
    settings = Settings.from_env({**env, "THRESHOLDS": value})
    assert settings.alerts is not None
    assert settings.alerts.levels == (75, 90, 100)
    with pytest.raises(
        ConfigError, match=r"THRESHOLDS='75,,90' is not allowed: an empty value .* such as 80,90,100"
    ):
        Settings.from_env({**env, "THRESHOLDS": "75,,90"})
