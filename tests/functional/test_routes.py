"""Routes end to end: the Lambda handler against the sandbox and moto, a topic (and an SQS inbox) per route.

A key's route tag beats its plan's; keys without one go to the default topic; an unknown route
goes there too, with a "bad tag" warning; digests are built per route; a key whose route changes
in the middle of a period is not alerted again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from quota_monitor.alert.routes import TAG_ROUTE
from tests.functional.test_alerting import add_key, alerts_in, run

if TYPE_CHECKING:
    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import AlertResources, LocalCloud


@pytest.fixture
def routed(cloud: LocalCloud) -> AlertResources:
    """The default topic, plus the routes ``gold`` and ``silver``, each with its own topic and inbox."""
    return cloud.create_alert_resources(routes=("gold", "silver"))


def keys_by_route(infra: AlertResources) -> dict[str, set[str]]:
    """The API key ids each route's topic received alerts for (inboxes drained)."""
    return {
        route: {
            alert["apiKeyId"] for alert in alerts_in(infra.received(None if route == "default" else route))
        }
        for route in ("default", *infra.routes)
    }


def test_a_keys_route_tag_beats_its_plans_and_keys_without_one_go_to_the_default_topic(
    account: SandboxAccount, routed: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    gold = account.create_usage_plan("gold", limit=10_000, period="MONTH", tags={TAG_ROUTE: "gold"})
    plain = account.create_usage_plan("plain", limit=10_000, period="MONTH")
    by_plan = add_key(account, gold, "by-plan-tag", 92.0)
    by_key = add_key(account, gold, "by-key-tag", 92.0, tags={TAG_ROUTE: "silver"})
    back_to_default = add_key(account, gold, "back-to-default", 92.0, tags={TAG_ROUTE: "default"})
    untagged = add_key(account, plain, "untagged", 92.0)
    key_only = add_key(account, plain, "key-tag-only", 92.0, tags={TAG_ROUTE: "gold"})
    add_key(account, gold, "quiet", 10.0)

    summary = run(monkeypatch, routed, DIGEST_MIN_ALERTS="10")

    assert summary["alertsSent"] == 5
    assert keys_by_route(routed) == {
        "default": {back_to_default, untagged},
        "gold": {by_plan, key_only},
        "silver": {by_key},
    }


def test_an_unknown_route_goes_to_the_default_topic_with_a_bad_tag_warning(
    account: SandboxAccount,
    routed: AlertResources,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gold = account.create_usage_plan("gold", limit=10_000, period="MONTH", tags={TAG_ROUTE: "gold"})
    typo = add_key(account, gold, "typo", 95.0, tags={TAG_ROUTE: "Gold "})
    removed = add_key(account, gold, "removed-route", 95.0, tags={TAG_ROUTE: "bronze"})

    run(monkeypatch, routed, DIGEST_MIN_ALERTS="10")

    assert keys_by_route(routed) == {"default": {typo, removed}, "gold": set(), "silver": set()}
    warnings = {r.resourceId: r for r in caplog.records if r.getMessage() == "bad tag"}  # type: ignore[attr-defined]
    assert {key: (w.levelname, w.resource, w.tag, w.value) for key, w in warnings.items()} == {  # type: ignore[attr-defined]
        typo: ("WARNING", "API key", TAG_ROUTE, "Gold "),
        removed: ("WARNING", "API key", TAG_ROUTE, "bronze"),
    }
    assert warnings[typo].detail == (  # type: ignore[attr-defined]
        f"API key {typo}: tag {TAG_ROUTE}='Gold ' ignored (no route named 'Gold'; routes: gold, silver, "
        "or default; did you mean 'gold'?); the key's alerts go to the default topic (ALERT_TOPIC_ARN)"
    )


def test_digests_are_built_per_route(
    account: SandboxAccount, routed: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    gold = account.create_usage_plan("gold", limit=10_000, period="MONTH", tags={TAG_ROUTE: "gold"})
    plain = account.create_usage_plan("plain", limit=10_000, period="MONTH")
    gold_keys = {add_key(account, gold, f"gold-{n}", 81.0 + n) for n in range(6)}
    plain_keys = {add_key(account, plain, f"plain-{n}", 85.0) for n in range(2)}

    summary = run(monkeypatch, routed, DIGEST_MIN_ALERTS="5")

    (digest,) = routed.received("gold")
    assert digest["Subject"] == "[quota] 6 API keys: 6 crossed a level"
    assert {alert["apiKeyId"] for alert in digest["Message"]["alerts"]} == gold_keys
    # Eight notifications in the run, but only two on the default route: each its own message.
    singles = routed.received()
    assert [message["Message"]["digest"] for message in singles] == [False, False]
    assert {alert["apiKeyId"] for alert in alerts_in(singles)} == plain_keys
    assert routed.received("silver") == []
    assert (summary["alertsSent"], summary["alertMessages"]) == (8, 3)


def test_a_route_changed_mid_period_does_not_alert_again_and_the_next_crossing_takes_the_new_route(
    account: SandboxAccount, routed: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = account.create_usage_plan("gold", limit=10_000, period="MONTH", tags={TAG_ROUTE: "gold"})
    key = add_key(account, plan, "billing-client", 85.0)
    first = run(monkeypatch, routed)
    account.keys[key].tags[TAG_ROUTE] = "silver"  # the key moves to another team
    moved = run(monkeypatch, routed)
    account.record_usage(plan, key, 700)  # 85% -> 92%
    crossed = run(monkeypatch, routed)

    assert (first["alertsSent"], moved["alertsSent"], crossed["alertsSent"]) == (1, 0, 1)
    received: dict[str, list[tuple[Any, ...]]] = {
        route: [(a["apiKeyId"], a["level"]) for a in alerts_in(routed.received(route))]
        for route in ("gold", "silver")
    }
    assert received == {"gold": [(key, 80)], "silver": [(key, 90)]}
    assert routed.received() == []


def test_alert_routes_fail_the_cold_start_naming_the_route(
    routed: AlertResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apigw_sandbox.local import invoke_handler  # noqa: PLC0415

    for name, value in routed.env(
        ALERT_ROUTES='{"gold team": "arn:aws:sns:us-east-1:123456789012:t"}'
    ).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=r"ALERT_ROUTES=.* is not allowed: route 'gold team': use 1 to 40"):
        invoke_handler("quota_monitor.handler", {})
