"""The fast path's watch list: which keys are on it, in what order, how it is stored, and which keys a
fast run evaluates against it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from quota_monitor.alert.watch import (
    SCAN_MARGIN,
    carry_over,
    choose_watched,
    decode_watch_list,
    encode_watch_list,
    pace,
)
from quota_monitor.compute.tags import TAG_MUTE, TAG_THRESHOLDS
from quota_monitor.config import AlertSettings
from quota_monitor.fast import fast_candidates
from quota_monitor.models import ApiKey, KeyUsage, Quota, ScanFailure, ScanResult, ScanStats, UsagePlan

NOW = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
SETTINGS = AlertSettings(topic_arn="arn:aws:sns:us-east-1:123456789012:alerts", table_name="state")
INTERVAL = timedelta(minutes=15)
LIMIT = 100_000


def day_key(plan: str, key: str, percent: float, *, per_hour: float = 0.0) -> KeyUsage:
    """A key of a daily quota at ``percent``, six hours into the day (its pace: ``percent`` / 6 an
    hour), having used ``per_hour`` % of its limit an hour today by another count (a test of pace)."""
    used = int(LIMIT * percent / 100)
    return KeyUsage(
        usage_plan_id=plan,
        usage_plan_name=plan,
        api_key_id=key,
        api_key_name=f"name-{key}",
        period="DAY",
        period_start=NOW.date(),
        resets_at=datetime(2026, 11, 17, tzinfo=UTC),
        used=used,
        remaining=LIMIT - used,
        limit=LIMIT,
        utilization=percent,
        used_today=int(LIMIT * per_hour / 100 * 6) if per_hour else 0,
    )


def scan(
    *keys: KeyUsage, tags: dict[str, dict[str, str]] | None = None, failures: tuple[ScanFailure, ...] = ()
) -> ScanResult:
    tags = tags or {}
    plans = {
        key.usage_plan_id: UsagePlan(
            key.usage_plan_id, key.usage_plan_id, Quota(LIMIT, "DAY"), tags=tags.get(key.usage_plan_id, {})
        )
        for key in keys
    }
    api_keys = {
        key.api_key_id: ApiKey(key.api_key_id, key.api_key_name, tags=tags.get(key.api_key_id, {}))
        for key in keys
    }
    return ScanResult(NOW, tuple(plans.values()), keys, failures, ScanStats(), api_keys=api_keys)


def watched(result: ScanResult) -> dict[str, list[str]]:
    chosen = choose_watched(result, SETTINGS, now=NOW, scan_interval=INTERVAL, page_size=500)
    return {plan.id: [key.id for key in plan.keys] for plan in chosen.plans}


def test_keys_that_can_still_cross_are_watched_and_the_rest_are_not() -> None:
    result = scan(
        day_key("p1", "at-85", 85.0),
        day_key("p1", "at-100", 100.0),  # nothing left to cross
        day_key("p1", "far-under", 30.0),  # 50 points from 80 at 5 an hour (its 30% in 6 hours)
        day_key("p2", "muted", 95.0),
        day_key("p3", "about-to", 78.0),  # 2 points at 13 an hour: about 9 minutes
        day_key("p3", "slowly", 70.0),  # 10 points at 11.7 an hour: 51 minutes
        tags={"muted": {TAG_MUTE: "true"}},
    )
    assert watched(result) == {"p3": ["about-to"], "p1": ["at-85"]}


def test_a_key_within_two_intervals_of_its_first_level_is_watched() -> None:
    """The horizon: the next full scan's interval, and as much again for a pace read from the day so
    far. Six hours into the day, a key at 75% goes 12.5 points an hour, one at 70% 11.7."""
    inside = day_key("p1", "inside", 75.0)  # 5 points: 24 minutes
    outside = day_key("p1", "outside", 70.0)  # 10 points: 51 minutes
    assert watched(scan(inside, outside)) == {"p1": ["inside"]}


def test_a_key_tagged_with_its_own_levels_is_watched_against_them() -> None:
    result = scan(day_key("p1", "k1", 85.0), tags={"k1": {TAG_THRESHOLDS: "50/80"}})
    assert watched(result) == {}  # at or above its last level, 80
    result = scan(day_key("p1", "k1", 55.0), tags={"k1": {TAG_THRESHOLDS: "50/80"}})
    assert watched(result) == {"p1": ["k1"]}


def test_a_plan_the_scan_could_not_read_whole_is_not_watched() -> None:
    failure = ScanFailure("api-key", "k2", None, "UsageDataError", "bad entry", "p1")
    assert watched(scan(day_key("p1", "k1", 85.0), failures=(failure,))) == {}


def test_a_plan_the_next_scan_could_not_read_keeps_its_place_until_its_list_goes_stale() -> None:
    # GIVEN a list with plans p1 and p2, and a scan 15 minutes later that read p2 and not p1
    first = choose_watched(
        scan(day_key("p1", "k1", 85.0), day_key("p2", "k2", 82.0)),
        SETTINGS,
        now=NOW,
        scan_interval=INTERVAL,
        page_size=500,
    )
    later = NOW + INTERVAL
    failure = ScanFailure("usage-plan", "p1", "p1", "DeadlineReached", "no time left", "p1")
    second = choose_watched(
        replace(scan(day_key("p2", "k2", 84.0), failures=(failure,)), scanned_at=later),
        SETTINGS,
        now=later,
        scan_interval=INTERVAL,
        page_size=500,
    )
    assert [plan.id for plan in second.plans] == ["p2"]
    # WHEN the second list takes over what the first knew of the plan it could not read
    merged = carry_over(second, first, {"p1"}, now=later)
    # THEN p1 is watched still, its key expected as soon as before (its due moved to the new list's
    # time); p1 lives no longer than the list it came from, the rest of the list as long as its own
    assert sorted(plan.id for plan in merged.plans) == ["p1", "p2"]
    assert merged.carried == 1
    (old,) = [plan for plan in first.plans if plan.id == "p1"]
    (kept,) = [plan for plan in merged.plans if plan.id == "p1"]
    assert old.keys[0].due is not None
    assert kept.keys[0].due == pytest.approx(old.keys[0].due - INTERVAL.total_seconds())
    assert kept.until == first.valid_until < second.valid_until == merged.valid_until
    # and it survives storage, so the fast path drops it when its time is up, and only it
    _, stored = encode_watch_list(merged)
    assert stored.carried == 1
    back = decode_watch_list(encode_watch_list(merged)[0])
    assert [plan.until for plan in back.plans if plan.id == "p1"] == [first.valid_until]
    assert [plan.id for plan in back.live(first.valid_until - timedelta(seconds=1)).plans] == ["p1", "p2"]
    assert [plan.id for plan in back.live(first.valid_until).plans] == ["p2"]
    assert back.live(first.valid_until).carried == 0
    # and nothing is carried from a list already stale, or when every plan was read
    assert carry_over(second, first, {"p1"}, now=first.valid_until) == second
    assert carry_over(second, first, set(), now=later) == second


def test_a_plan_that_keeps_failing_is_carried_no_longer_than_its_last_read_numbers_are_good() -> None:
    # GIVEN p1 read at NOW, then failing in each scan after it, while p2 is read every time
    lists = [
        choose_watched(
            scan(day_key("p1", "k1", 85.0), day_key("p2", "k2", 82.0)),
            SETTINGS,
            now=NOW,
            scan_interval=INTERVAL,
            page_size=500,
        )
    ]
    failure = ScanFailure("usage-plan", "p1", "p1", "ThrottlingError", "throttled", "p1")
    for n in (1, 2, 3):
        at = NOW + n * INTERVAL
        chosen = choose_watched(
            replace(scan(day_key("p2", "k2", 82.0), failures=(failure,)), scanned_at=at),
            SETTINGS,
            now=at,
            scan_interval=INTERVAL,
            page_size=500,
        )
        lists.append(carry_over(chosen, lists[-1], {"p1"}, now=at))
    # THEN p1 is carried while the first list is valid, with that list's end, and then no more;
    # each list itself stays valid for its own two intervals
    first_end = lists[0].valid_until
    assert [sorted(p.id for p in w.plans) for w in lists] == [
        ["p1", "p2"],
        ["p1", "p2"],
        ["p1", "p2"],
        ["p2"],
    ]
    assert [p.until for w in lists[1:3] for p in w.plans if p.id == "p1"] == [first_end, first_end]
    assert all(w.valid_until == w.written_at + 2 * INTERVAL + SCAN_MARGIN for w in lists)


def test_the_most_urgent_plan_comes_first() -> None:
    result = scan(
        day_key("later", "a", 85.0),  # 5 points from 90 at 14 an hour: 21 minutes
        day_key("soon", "b", 89.0),  # 1 point at 15 an hour: 4 minutes
        day_key("latest", "c", 81.0),  # 9 points at 13.5 an hour: 40 minutes
    )
    assert list(watched(result)) == ["soon", "later", "latest"]


def test_pace_is_the_faster_of_the_periods_average_and_todays() -> None:
    month = replace(
        day_key("p", "k", 50.0),
        period="MONTH",
        period_start=date(2026, 11, 1),
        used=500_000,
        used_today=60_000,
    )
    # 500,000 in 15.25 days, or 60,000 in 6 hours today: today's wins.
    assert pace(month, NOW) == pytest.approx(60_000 / 21_600)
    quiet_today = replace(month, used_today=0)
    assert pace(quiet_today, NOW) == pytest.approx(500_000 / (15 * 86_400 + 21_600))


def test_the_list_round_trips_and_a_list_too_large_keeps_the_most_urgent_plans() -> None:
    keys = [day_key(f"p{n:03d}", f"k{n:03d}{m}", 85.0, per_hour=1.0 + n) for n in range(40) for m in range(5)]
    chosen = choose_watched(scan(*keys), SETTINGS, now=NOW, scan_interval=INTERVAL, page_size=500)
    data, kept = encode_watch_list(chosen)
    assert kept == chosen
    assert decode_watch_list(data) == chosen
    small, cut = encode_watch_list(chosen, limit=len(data) // 3)
    assert len(small) <= len(data) // 3
    assert cut.plans == chosen.plans[: len(cut.plans)]
    assert cut.left_out == len(chosen.plans) - len(cut.plans) > 0
    assert decode_watch_list(small) == cut


def test_a_stored_list_that_does_not_read_is_refused_saying_why() -> None:
    with pytest.raises(ValueError, match="does not decompress or parse"):
        decode_watch_list(b"not zlib")


def test_a_fast_run_evaluates_only_the_keys_that_moved_since_the_full_scan() -> None:
    before = scan(day_key("p1", "stays", 85.0), day_key("p1", "moves", 88.0))
    chosen = choose_watched(before, SETTINGS, now=NOW, scan_interval=INTERVAL, page_size=500)
    later = NOW + timedelta(minutes=3)
    after = scan(day_key("p1", "stays", 86.0), day_key("p1", "moves", 90.0))
    kept = fast_candidates(after, chosen, SETTINGS, now=later)
    assert [key.api_key_id for key in kept.keys] == ["moves"]


def test_keys_the_full_scan_left_unsettled_are_evaluated_by_every_fast_run_whatever_they_show() -> None:
    # GIVEN a key at 100% whose alert the full scan did not deliver, and one at 85% it settled
    before = scan(day_key("p1", "owed", 100.0), day_key("p1", "settled", 85.0))
    owed = "p1#owed"  # state_key of a scan without a target
    chosen = choose_watched(
        before, SETTINGS, now=NOW, scan_interval=INTERVAL, page_size=500, unsettled={owed}
    )
    # THEN the owed key is watched at its real level, marked unsettled, first in the list
    by_id = {key.id: key for plan in chosen.plans for key in plan.keys}
    assert (by_id["owed"].level, by_id["owed"].unsettled, by_id["owed"].due) == (100, True, 0.0)
    assert by_id["settled"].unsettled is False
    # and stays so through storage
    back = decode_watch_list(encode_watch_list(chosen)[0])
    assert [key.unsettled for plan in back.plans for key in plan.keys] == [True, False]
    # AND a fast run that reads both where the full scan left them evaluates the owed key alone
    kept = fast_candidates(before, back, SETTINGS, now=NOW + timedelta(minutes=1))
    assert [key.api_key_id for key in kept.keys] == ["owed"]


def test_when_the_alert_state_could_not_be_read_every_key_at_a_level_is_unsettled() -> None:
    result = scan(
        day_key("p1", "at-100", 100.0),  # at its last level: not watched as a rule
        day_key("p1", "at-85", 85.0),
        day_key("p1", "about-to", 78.0),  # below its first level, forecast to run out: owed a forecast
        day_key("p1", "far-under", 30.0),  # owed nothing, and too far from 80 to be watched
    )
    chosen = choose_watched(
        result, SETTINGS, now=NOW, scan_interval=INTERVAL, page_size=500, state_unread=True
    )
    marks = {key.id: key.unsettled for plan in chosen.plans for key in plan.keys}
    assert marks == {"at-100": True, "at-85": True, "about-to": True}
    # each keeps its own due (nothing is owed for certain): at 100% none, at 85% its next level's
    dues = {key.id: key.due for plan in chosen.plans for key in plan.keys}
    assert dues["at-100"] is None
    assert dues["at-85"] is not None
    assert dues["at-85"] > 0
    # and a key only watched (about to reach its first level, no forecast rule) is not
    quiet = replace(SETTINGS, forecast=replace(SETTINGS.forecast, enabled=False))
    chosen = choose_watched(result, quiet, now=NOW, scan_interval=INTERVAL, page_size=500, state_unread=True)
    marks = {key.id: key.unsettled for plan in chosen.plans for key in plan.keys}
    assert marks == {"at-100": True, "at-85": True, "about-to": False}
