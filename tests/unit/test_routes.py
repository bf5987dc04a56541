"""Routing: from the plan's and the key's tags and ALERT_ROUTES to one route and one topic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota_monitor.alert.routes import DEFAULT_ROUTE, TAG_ROUTE, route_for, route_name_problem
from quota_monitor.config import AlertSettings
from quota_monitor.errors import ConfigError
from quota_monitor.models import ApiKey, Quota, UsagePlan

DEFAULT_TOPIC = "arn:aws:sns:us-east-1:123456789012:quota-alerts"
ROUTES = {
    "gold": "arn:aws:sns:us-east-1:123456789012:gold",
    "silver": "arn:aws:sns:us-east-1:123456789012:silver",
}
ENV = {"ALERT_TOPIC_ARN": DEFAULT_TOPIC, "ALERT_TABLE_NAME": "quota-alert-state"}


def plan(route: str | None = None) -> UsagePlan:
    return UsagePlan("p1", "gold", Quota(1_000, "MONTH"), tags={} if route is None else {TAG_ROUTE: route})


def key(route: str | None = None) -> ApiKey:
    return ApiKey("k1", "billing-client", tags={} if route is None else {TAG_ROUTE: route})


# (case, plan's tag, key's tag, route, source)
CASES = [
    ("no tags", None, None, "default", "default"),
    ("the plan's route", "gold", None, "gold", "plan tag"),
    ("the key's route", None, "silver", "silver", "key tag"),
    ("the key's tag beats the plan's", "gold", "silver", "silver", "key tag"),
    ("a key comes back to the default topic", "gold", "default", "default", "key tag"),
    ("spaces around a name are not part of it", " gold ", None, "gold", "plan tag"),
]


@pytest.mark.parametrize(("case", "plan_tag", "key_tag", "route", "source"), CASES, ids=[c[0] for c in CASES])
def test_routing_by_plan_and_key_tags(
    case: str, plan_tag: str | None, key_tag: str | None, route: str, source: str
) -> None:
    chosen = route_for(plan(plan_tag), key(key_tag), ROUTES, DEFAULT_TOPIC)
    assert (chosen.name, chosen.source, chosen.problems) == (route, source, ())
    assert chosen.topic_arn == ROUTES.get(route, DEFAULT_TOPIC)


def test_an_unknown_route_goes_to_the_default_topic_naming_the_resource_tag_and_value() -> None:
    """Even when the plan names a route that exists: the key's tag is the one that applies, and a
    key's alerts never go to a team that its owner did not name."""
    chosen = route_for(plan("gold"), key("platinum"), ROUTES, DEFAULT_TOPIC)
    assert (chosen.name, chosen.topic_arn) == (DEFAULT_ROUTE, DEFAULT_TOPIC)
    (problem,) = chosen.problems
    assert (problem.resource, problem.resource_id, problem.tag, problem.value) == (
        "API key",
        "k1",
        TAG_ROUTE,
        "platinum",
    )
    assert problem.describe() == (
        "API key k1: tag quota-monitor:route='platinum' ignored (no route named 'platinum'; routes: gold, "
        "silver, or default); the key's alerts go to the default topic (ALERT_TOPIC_ARN)"
    )


def test_an_empty_route_tag_and_a_case_slip_are_bad_tags_with_a_hint() -> None:
    (empty,) = route_for(plan(""), key(), ROUTES, DEFAULT_TOPIC).problems
    assert (empty.resource, empty.reason) == (
        "usage plan",
        "an empty route name; routes: gold, silver, or default",
    )
    (slip,) = route_for(plan(), key("GOLD"), {"gold": ROUTES["gold"]}, DEFAULT_TOPIC).problems
    assert slip.reason == "no route named 'GOLD'; routes: gold, or default; did you mean 'gold'?"


names = st.sampled_from(["gold", "silver", "default", "bronze", "", "Gold"])


@given(plan_tag=st.none() | names, key_tag=st.none() | names)
def test_every_key_has_exactly_one_configured_topic_and_a_warning_exactly_when_its_tag_names_no_route(
    plan_tag: str | None, key_tag: str | None
) -> None:
    chosen = route_for(plan(plan_tag), key(key_tag), ROUTES, DEFAULT_TOPIC)
    assert chosen.topic_arn in {DEFAULT_TOPIC, *ROUTES.values()}
    applied = key_tag if key_tag is not None else plan_tag
    unknown = applied is not None and applied.strip() not in {*ROUTES, DEFAULT_ROUTE}
    assert bool(chosen.problems) is unknown
    assert chosen.name == (applied.strip() if applied is not None and not unknown else DEFAULT_ROUTE)


@pytest.mark.parametrize("name", ["gold", "Gold-2", "team_a", "a", "x" * 40])
def test_route_names_that_are_allowed(name: str) -> None:
    assert route_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("default", "'default' is the name of ALERT_TOPIC_ARN's route; choose another name"),
        ("gold team", "use 1 to 40 letters, digits, '-' and '_', starting with a letter or a digit"),
        ("gold,silver", "use 1 to 40"),
        ("-gold", "use 1 to 40"),
        ("team/gold", "use 1 to 40"),
        ("", "use 1 to 40"),
        ("x" * 41, "use 1 to 40"),
    ],
)
def test_route_names_that_are_refused(name: str, problem: str) -> None:
    assert (route_name_problem(name) or "").startswith(problem)


def test_alert_routes_are_read_from_json() -> None:
    import json  # noqa: PLC0415

    settings = AlertSettings.from_env({**ENV, "ALERT_ROUTES": json.dumps(ROUTES)})
    assert settings is not None
    assert settings.routes == ROUTES
    unset = AlertSettings.from_env({**ENV, "ALERT_ROUTES": " "})
    assert unset is not None
    assert unset.routes == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("gold=arn:aws:sns:us-east-1:123456789012:gold", "it is not JSON; use a JSON object that maps route"),
        ('["arn:aws:sns:us-east-1:123456789012:gold"]', "use a JSON object that maps route names"),
        ('{"gold": "gold-topic"}', "route 'gold': 'gold-topic' is not a topic ARN; use an SNS topic ARN"),
        ('{"gold": 12}', "route 'gold': 12 is not a topic ARN"),
        ('{"default": "arn:aws:sns:us-east-1:123456789012:t"}', "route 'default': 'default' is the name"),
        ('{"gold team": "arn:aws:sns:us-east-1:123456789012:t"}', "route 'gold team': use 1 to 40"),
    ],
)
def test_bad_alert_routes_fail_naming_the_variable_the_value_and_the_route(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        AlertSettings.from_env({**ENV, "ALERT_ROUTES": value})
    assert str(raised.value).startswith(f"ALERT_ROUTES={value!r} is not allowed: ")
    assert message in str(raised.value)


def test_alert_routes_without_the_default_topic_are_refused() -> None:
    with pytest.raises(ConfigError, match="set ALERT_TOPIC_ARN and ALERT_TABLE_NAME too"):
        AlertSettings.from_env({"ALERT_ROUTES": '{"gold": "arn:aws:sns:us-east-1:123456789012:g"}'})
