"""Targets: which accounts and regions a run reads, and the settings that say so."""

from __future__ import annotations

import pytest

from quota_monitor.alert.rules import state_key
from quota_monitor.config import Settings
from quota_monitor.errors import ConfigError
from quota_monitor.models import Target
from quota_monitor.read.targets import targets

SPOKE = "arn:aws:iam::222222222222:role/Reader"


def test_the_home_target_is_the_own_account_in_the_own_region() -> None:
    found = targets("123456789012", "eu-west-1", ("us-east-1", "eu-west-1"), (SPOKE,))
    assert found == [
        Target("123456789012", "us-east-1", home=False),
        Target("123456789012", "eu-west-1", home=True),
        Target("222222222222", "us-east-1", SPOKE, home=False),
        Target("222222222222", "eu-west-1", SPOKE, home=False),
    ]


def test_only_the_home_targets_state_keys_keep_their_old_form() -> None:
    assert state_key("p1", "k1") == "p1#k1"
    assert state_key("p1", "k1", Target("123456789012", "us-east-1")) == "p1#k1"
    assert (
        state_key("p1", "k1", Target("123456789012", "eu-west-1", home=False))
        == "123456789012#eu-west-1#p1#k1"
    )


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"REGIONS": ""}, "an empty list"),
        ({"REGIONS": " , "}, "an empty item between commas"),
        ({"REGIONS": "us-east-1,us-east-1"}, "us-east-1 is listed twice"),
        ({"REGIONS": "mars-north-1"}, "mars-north-1 is not an AWS region API Gateway is in"),
        ({"REGIONS": "us-east-1,us-gov-west-1"}, "regions of several partitions (aws, aws-us-gov)"),
        ({"SPOKE_ROLE_ARNS": "arn:aws:iam::22:role/R"}, "is not an IAM role ARN"),
        ({"SPOKE_ROLE_ARNS": ""}, "an empty list"),
        ({"REGIONS": "cn-north-1", "SPOKE_ROLE_ARNS": SPOKE}, "is in partition aws, REGIONS in aws-cn"),
    ],
)
def test_bad_targets_fail_the_cold_start_naming_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)
    name = next(iter(env)) if "SPOKE_ROLE_ARNS" not in env or "REGIONS" not in env else "SPOKE_ROLE_ARNS"
    assert str(raised.value).startswith(f"{name}=")
    assert fragment in str(raised.value)


def test_unset_means_the_own_region_and_no_spokes() -> None:
    settings = Settings.from_env({}).targets
    assert (settings.regions, settings.spoke_role_arns) == ((), ())
    assert settings.regions_for("eu-central-1") == ("eu-central-1",)
