"""``KEY_METRICS=auto`` at its edges: the level, the cap, the tag, ties, and a key leaving the selection."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from quota_monitor.alert.thresholds import DEFAULT_LEVELS, key_levels
from quota_monitor.compute.tags import TAG_THRESHOLDS
from quota_monitor.config import Settings
from quota_monitor.models import ApiKey, KeyUsage, Quota, ScanResult, ScanStats, UsagePlan
from quota_monitor.monitor import metric_keys
from quota_monitor.publish.selection import (
    AUTO_KEYS,
    DEFAULT_AUTO_CAP,
    TAG_METRICS,
    KeyMetricsSelection,
    choose_keys,
    parse_key_metrics,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def usage(plan: str, key_id: str, remaining: int | None, limit: int | None = 1_000) -> KeyUsage:
    used = 0 if limit is None or remaining is None else limit - remaining
    return KeyUsage(
        usage_plan_id=plan,
        usage_plan_name=f"name-{plan}",
        api_key_id=key_id,
        api_key_name=f"name-{key_id}",
        period="MONTH",
        period_start=date(2026, 11, 1),
        resets_at=datetime(2026, 12, 1, tzinfo=UTC),
        used=used,
        remaining=remaining,
        limit=limit,
        utilization=None if limit is None or remaining is None else 100.0 * used / limit,
    )


def scan(
    keys: list[KeyUsage],
    *,
    plan_tags: dict[str, dict[str, str]] | None = None,
    key_tags: dict[str, dict[str, str]] | None = None,
) -> ScanResult:
    plan_ids = sorted({key.usage_plan_id for key in keys})
    plan_tags, key_tags = plan_tags or {}, key_tags or {}
    plans = tuple(
        UsagePlan(plan_id, f"name-{plan_id}", Quota(1_000, "MONTH"), tags=plan_tags.get(plan_id, {}))
        for plan_id in plan_ids
    )
    api_keys = {
        key.api_key_id: ApiKey(key.api_key_id, key.api_key_name, tags=key_tags.get(key.api_key_id, {}))
        for key in keys
    }
    stats = ScanStats(plans_scanned=len(plans), keys_scanned=len(keys))
    return ScanResult(NOW, plans, tuple(keys), (), stats, api_keys=api_keys)


def chosen(result: ScanResult, selection: KeyMetricsSelection = AUTO_KEYS, **env: str) -> list[str]:
    settings = Settings.from_env({"KEY_METRICS": selection.describe(), **env})
    return [key.api_key_id for key in metric_keys(settings, result).keys]


def test_a_key_is_selected_from_its_lowest_level_on_in_whole_numbers() -> None:
    result = scan(
        [
            usage("p1", "at-80", remaining=200),  # 800 of 1,000: exactly 80%
            usage("p1", "just-under", remaining=201),  # 79.9%
            usage("p1", "full", remaining=0),
            usage("p1", "idle", remaining=1_000),
        ]
    )
    assert chosen(result) == ["at-80", "full"]
    # The level is THRESHOLDS' lowest, alerts configured or not.
    assert chosen(result, THRESHOLDS="79,95") == ["at-80", "just-under", "full"]
    assert chosen(result, THRESHOLDS="81,90") == ["full"]


def test_comparison_is_in_whole_numbers_not_rounded_percentages() -> None:
    # 2,399,999 of 3,000,000 is 79.99997%: under 80 however it is rounded.
    key = usage("p1", "k", remaining=600_001, limit=3_000_000)
    assert round(key.utilization or 0, 2) == 80.0
    assert chosen(scan([key])) == []


def test_tags_set_the_level_as_they_set_the_alerts() -> None:
    result = scan(
        [usage("p1", "key-tagged", remaining=450), usage("p1", "plain", remaining=450)],
        key_tags={"key-tagged": {TAG_THRESHOLDS: "50,75"}},
    )
    assert chosen(result) == ["key-tagged"]
    by_plan = scan(
        [usage("p2", "a", remaining=300), usage("p3", "b", remaining=300)],
        plan_tags={"p2": {TAG_THRESHOLDS: "60"}},
    )
    assert chosen(by_plan) == ["a"]
    assert key_levels(by_plan, DEFAULT_LEVELS) == {("p2", "a"): (60,), ("p3", "b"): DEFAULT_LEVELS}


def test_the_cap_keeps_the_most_used_and_ties_go_by_ids_not_scan_order() -> None:
    keys = [usage(f"p{n % 3}", f"k{n:02d}", remaining=100 - n) for n in range(40)]  # all at 90% or more
    rng = random.Random(3)
    for _ in range(3):
        shuffled = keys[:]
        rng.shuffle(shuffled)
        result = scan(shuffled)
        picked = metric_keys(Settings.from_env({}), result)
        # The 25 most used (the least remaining: 61 to 85 of 1,000).
        assert sorted(key.api_key_id for key in picked.keys) == [f"k{n:02d}" for n in range(15, 40)]
        assert (picked.eligible, picked.over_cap, picked.tagged) == (40, 40 - DEFAULT_AUTO_CAP, 0)
        # In scan order, whatever that was.
        assert list(picked.keys) == [key for key in shuffled if key in picked.keys]
    ties = [usage(plan, key_id, remaining=0) for plan, key_id in [("p2", "a"), ("p1", "z"), ("p1", "b")]]
    assert chosen(scan(ties), parse_key_metrics("auto,top:2")) == ["z", "b"]
    assert chosen(scan(list(reversed(ties))), parse_key_metrics("auto,top:2")) == ["b", "z"]


def test_the_tag_keeps_a_cold_key_on_the_key_or_its_plan_and_a_key_tag_beats_its_plan() -> None:
    result = scan(
        [
            usage("p1", "cold-tagged", remaining=990),
            usage("p1", "cold", remaining=990),
            usage("p2", "in-tagged-plan", remaining=999),
            usage("p2", "opted-out", remaining=999),
        ],
        key_tags={"cold-tagged": {TAG_METRICS: "always"}, "opted-out": {TAG_METRICS: " Auto "}},
        plan_tags={"p2": {TAG_METRICS: "ALWAYS"}},
    )
    picked = metric_keys(Settings.from_env({}), result)
    assert [key.api_key_id for key in picked.keys] == ["cold-tagged", "in-tagged-plan"]
    assert (picked.eligible, picked.tagged, picked.problems) == (2, 2, ())


def test_a_bad_tag_value_is_reported_once_and_the_next_level_applies() -> None:
    result = scan(
        [usage("p1", "a", remaining=990), usage("p1", "b", remaining=990)],
        key_tags={"a": {TAG_METRICS: "yes"}, "b": {TAG_METRICS: "yes"}},
        plan_tags={"p1": {TAG_METRICS: "sometimes"}},
    )
    picked = metric_keys(Settings.from_env({}), result)
    assert picked.keys == ()
    assert sorted((p.resource, p.resource_id, p.value) for p in picked.problems) == [
        ("API key", "a", "yes"),
        ("API key", "b", "yes"),
        ("usage plan", "p1", "sometimes"),
    ]
    assert "use always or auto" in picked.problems[0].describe()


def test_tagged_keys_come_first_when_they_alone_exceed_the_cap() -> None:
    tagged = [usage("p1", f"t{n:02d}", remaining=900 - n) for n in range(30)]  # 10% .. 12.9%
    hot = [usage("p2", "hot", remaining=0)]
    result = scan([*hot, *tagged], key_tags={key.api_key_id: {TAG_METRICS: "always"} for key in tagged})
    picked = metric_keys(Settings.from_env({}), result)
    # The tag is a promise (alarms may rest on it): the 25 most used tagged keys, the hot key waits.
    assert sorted(key.api_key_id for key in picked.keys) == [f"t{n:02d}" for n in range(5, 30)]
    assert (picked.eligible, picked.tagged, picked.over_cap) == (31, 30, 6)
    # With room to spare the hot key comes after them.
    roomy = metric_keys(Settings.from_env({"KEY_METRICS": "auto,top:31"}), result)
    assert len(roomy.keys) == 31


def test_keys_without_a_quota_are_never_selected_even_tagged() -> None:
    free = usage("p1", "free", remaining=None, limit=None)
    result = scan([free], key_tags={"free": {TAG_METRICS: "always"}})
    assert metric_keys(Settings.from_env({}), result).keys == ()


def test_a_key_leaves_the_selection_when_it_drops_under_its_level() -> None:
    before = scan([usage("p1", "k", remaining=150), usage("p1", "other", remaining=50)])
    assert chosen(before) == ["k", "other"]
    # An administrator extended the key's quota (UpdateUsage): back under 80%, out of the selection.
    after = scan([usage("p1", "k", remaining=400), usage("p1", "other", remaining=40)])
    assert chosen(after) == ["other"]
    # ... and a new period resets it too.
    assert chosen(scan([usage("p1", "k", remaining=1_000)])) == []


def test_other_modes_are_unchanged_and_see_no_tags() -> None:
    result = scan(
        [usage("p1", "a", remaining=0), usage("p1", "b", remaining=990)],
        key_tags={"b": {TAG_METRICS: "always"}},
    )
    assert chosen(result, parse_key_metrics("top:1")) == ["a"]
    assert chosen(result, parse_key_metrics("all")) == ["a", "b"]
    assert chosen(result, parse_key_metrics("none")) == []
    assert choose_keys(result, parse_key_metrics("above:50"), {}).eligible == 1


remaining = st.integers(min_value=0, max_value=1_000)


@given(
    values=st.lists(st.tuples(remaining, st.booleans()), max_size=80),
    cap=st.integers(min_value=1, max_value=30),
)
def test_never_more_keys_than_the_cap_and_no_eligible_key_hotter_than_one_chosen_is_left_out(
    values: list[tuple[int, bool]], cap: int
) -> None:
    keys = [usage("p1", f"k{n:03d}", remaining=left) for n, (left, _) in enumerate(values)]
    tags = {f"k{n:03d}": {TAG_METRICS: "always"} for n, (_, tagged) in enumerate(values) if tagged}
    result = scan(keys, key_tags=tags)
    picked = choose_keys(result, KeyMetricsSelection(top=cap, auto=True), key_levels(result, DEFAULT_LEVELS))
    assert len(picked.keys) <= cap
    eligible = [k for k in keys if k.api_key_id in tags or (k.remaining or 0) <= 200]
    assert picked.eligible == len(eligible)
    assert len(picked.keys) == min(cap, len(eligible))
    left_out = [k for k in eligible if k not in picked.keys]
    untagged_chosen = [k for k in picked.keys if k.api_key_id not in tags]
    # A tagged key left out means every chosen key is tagged; among equals, the most used win.
    if any(k.api_key_id in tags for k in left_out):
        assert untagged_chosen == []
    for is_tagged in (True, False):
        out = [k.utilization or 0 for k in left_out if (k.api_key_id in tags) is is_tagged]
        kept = [k.utilization or 0 for k in picked.keys if (k.api_key_id in tags) is is_tagged]
        if out and kept:
            assert min(kept) >= max(out)
