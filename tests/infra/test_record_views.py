"""The dashboard's Logs Insights queries, exactly: each one as written here, so that changing a query
means changing this file. No synth: the queries are built as the dashboard builds them."""

from __future__ import annotations

import re

import pytest

from infra.record_views import RESERVED, SEARCH_PATTERN, bare_reserved, record_views, records_window
from quota_monitor.publish.records import (
    KEY_RECORD,
    KEY_RECORD_FIELDS,
    PLAN_RECORD,
    PLAN_RECORD_FIELDS,
    TARGET_RECORD,
    TARGET_RECORD_FIELDS,
    record_lines,
)

#: Each widget's query, by title, line by line; with one target, then with several.
QUERIES: dict[bool, dict[str, tuple[str, ...]]] = {
    False: {
        "Most used keys now (top 50, from the records)": (
            'filter record = "key"',
            "| stats latest(usagePlanName) as plan, latest(apiKeyName) as keyName, latest(utilization) as "
            "pct, latest(used) as usedNow, latest(remaining) as left, latest(`limit`) as quota, "
            "latest(period) as per, latest(level) as alertLevel, latest(metrics) as metric by usagePlanId, "
            "apiKeyId",
            "| sort pct desc",
            "| limit 50",
            "| display plan, keyName, pct, usedNow, left, quota, per, alertLevel, metric, apiKeyId, "
            "usagePlanId",
        ),
        "Keys and plans matching the 'Key or plan (id or name)' box (every key until you type)": (
            'filter record = "key" and (apiKeyId like /(?i)__quota_key_or_plan__/ or apiKeyName like '
            "/(?i)__quota_key_or_plan__/ or usagePlanId like /(?i)__quota_key_or_plan__/ or usagePlanName "
            "like /(?i)__quota_key_or_plan__/)",
            "| stats latest(usagePlanName) as plan, latest(apiKeyName) as keyName, latest(utilization) as "
            "pct, latest(used) as usedNow, latest(remaining) as left, latest(`limit`) as quota, "
            "latest(period) as per, latest(level) as alertLevel, latest(metrics) as metric by usagePlanId, "
            "apiKeyId",
            "| sort pct desc",
            "| limit 200",
            "| display plan, keyName, pct, usedNow, left, quota, per, alertLevel, metric, apiKeyId, "
            "usagePlanId",
        ),
        "Plans and their hottest key (from the records)": (
            'filter record = "plan"',
            "| stats latest(usagePlanName) as plan, latest(maxUtilization) as hottestPct, "
            "latest(hottestKeyName) as hottestKey, latest(hottestKeyId) as hottestKeyId, latest(keysAtLevel) "
            "as keysAtLevel, latest(keysForecast) as keysForecast, latest(keys) as keyCount, latest(used) as "
            "usedTotal, latest(`limit`) as quota, latest(period) as per by usagePlanId",
            "| sort hottestPct desc",
            "| limit 1000",
            "| display plan, hottestPct, hottestKey, keysAtLevel, keysForecast, keyCount, usedTotal, quota, "
            "per, hottestKeyId, usagePlanId",
        ),
        "Keys forecast to run out before their quota resets (UTC)": (
            'filter record = "key" and ispresent(exhaustsAt)',
            "| stats latest(exhaustsAt) as runsOutAt, latest(usagePlanName) as plan, latest(apiKeyName) as "
            "keyName, latest(utilization) as pct, latest(used) as usedNow, latest(remaining) as left, "
            "latest(`limit`) as quota, latest(period) as per by usagePlanId, apiKeyId",
            "| sort runsOutAt asc",
            "| limit 100",
            "| display runsOutAt, plan, keyName, pct, left, quota, per, apiKeyId, usagePlanId",
        ),
    },
    True: {
        "Most used keys now (top 50, from the records)": (
            'filter record = "key"',
            "| stats latest(usagePlanName) as plan, latest(apiKeyName) as keyName, latest(utilization) as "
            "pct, latest(used) as usedNow, latest(remaining) as left, latest(`limit`) as quota, "
            "latest(period) as per, latest(level) as alertLevel, latest(metrics) as metric by accountId, "
            "region, usagePlanId, apiKeyId",
            "| sort pct desc",
            "| limit 50",
            "| display plan, keyName, pct, usedNow, left, quota, per, alertLevel, metric, apiKeyId, "
            "usagePlanId, accountId, region",
        ),
        "Keys and plans matching the 'Key or plan (id or name)' box (every key until you type)": (
            'filter record = "key" and (apiKeyId like /(?i)__quota_key_or_plan__/ or apiKeyName like '
            "/(?i)__quota_key_or_plan__/ or usagePlanId like /(?i)__quota_key_or_plan__/ or usagePlanName "
            "like /(?i)__quota_key_or_plan__/)",
            "| stats latest(usagePlanName) as plan, latest(apiKeyName) as keyName, latest(utilization) as "
            "pct, latest(used) as usedNow, latest(remaining) as left, latest(`limit`) as quota, "
            "latest(period) as per, latest(level) as alertLevel, latest(metrics) as metric by accountId, "
            "region, usagePlanId, apiKeyId",
            "| sort pct desc",
            "| limit 200",
            "| display plan, keyName, pct, usedNow, left, quota, per, alertLevel, metric, apiKeyId, "
            "usagePlanId, accountId, region",
        ),
        "Plans and their hottest key (from the records)": (
            'filter record = "plan"',
            "| stats latest(usagePlanName) as plan, latest(maxUtilization) as hottestPct, "
            "latest(hottestKeyName) as hottestKey, latest(hottestKeyId) as hottestKeyId, latest(keysAtLevel) "
            "as keysAtLevel, latest(keysForecast) as keysForecast, latest(keys) as keyCount, latest(used) as "
            "usedTotal, latest(`limit`) as quota, latest(period) as per by accountId, region, usagePlanId",
            "| sort hottestPct desc",
            "| limit 1000",
            "| display plan, hottestPct, hottestKey, keysAtLevel, keysForecast, keyCount, usedTotal, quota, "
            "per, hottestKeyId, usagePlanId, accountId, region",
        ),
        "Keys forecast to run out before their quota resets (UTC)": (
            'filter record = "key" and ispresent(exhaustsAt)',
            "| stats latest(exhaustsAt) as runsOutAt, latest(usagePlanName) as plan, latest(apiKeyName) as "
            "keyName, latest(utilization) as pct, latest(used) as usedNow, latest(remaining) as left, "
            "latest(`limit`) as quota, latest(period) as per by accountId, region, usagePlanId, apiKeyId",
            "| sort runsOutAt asc",
            "| limit 100",
            "| display runsOutAt, plan, keyName, pct, left, quota, per, apiKeyId, usagePlanId, accountId, "
            "region",
        ),
        "Accounts and regions: each one's latest run (from the records)": (
            'filter record = "target"',
            "| stats latest(plans) as plans, latest(plansScanned) as plansRead, latest(keys) as keys, "
            "latest(scanErrors) as errors, latest(apiCalls) as calls, latest(throttles) as throttled, "
            "latest(durationSeconds) as seconds, latest(metricsPublished) as metricsPublished by accountId, "
            "region",
            "| sort errors desc",
            "| display accountId, region, plans, plansRead, keys, errors, calls, throttled, seconds, "
            "metricsPublished",
        ),
    },
}
#: The fields each kind of record holds, by the value of its ``record`` field.
RECORD_FIELDS = {
    KEY_RECORD: set(KEY_RECORD_FIELDS),
    PLAN_RECORD: set(PLAN_RECORD_FIELDS),
    TARGET_RECORD: set(TARGET_RECORD_FIELDS),
}
FIELDS = {*KEY_RECORD_FIELDS, *PLAN_RECORD_FIELDS, *TARGET_RECORD_FIELDS}


@pytest.mark.parametrize("several", [False, True])
def test_each_query_is_exactly_this(several: bool) -> None:
    views = record_views(several=several)
    assert {view.title: tuple(view.query.splitlines()) for view in views} == QUERIES[several]
    assert [view.title for view in views] == list(QUERIES[several])


@pytest.mark.parametrize("several", [False, True])
def test_each_query_reads_its_records_fields_and_shows_what_its_stats_make(several: bool) -> None:
    """What a check of the fields would find in the text above: the filter and stats read fields of
    the one kind of record selected; sort and display use only the stats' columns and groups."""
    for title, lines in QUERIES[several].items():
        filter_, stats, sort, *rest = (line.removeprefix("| ") for line in lines)
        (kind,) = re.findall(r'^filter record = "(\w+)"', filter_)
        aggregated, _, groups = stats.partition(" by ")
        read = {
            *re.findall(r"\(`?(\w+)`?\)", filter_ + aggregated),  # latest(f), ispresent(f)
            *re.findall(r"(\w+) like ", filter_),
            *groups.split(", "),
        }
        assert read <= RECORD_FIELDS[kind], title
        outputs = {*re.findall(r" as (\w+)", aggregated), *groups.split(", ")}
        display = rest[-1].removeprefix("display ").split(", ")
        assert {sort.split()[1], *display} <= outputs, title


def test_a_field_named_like_a_command_is_quoted_and_a_bare_one_is_found() -> None:
    assert RESERVED.intersection(FIELDS) == {"limit"}
    for several in (False, True):
        assert all(bare_reserved(view.commands, FIELDS) == set() for view in record_views(several=several))
    # The command itself, a string and a regex are not fields; the bare field is.
    assert bare_reserved(("limit 50", 'filter apiKeyName like /limit/ or record = "limit"'), FIELDS) == set()
    assert bare_reserved(("stats latest(limit) as quota by apiKeyId", "sort limit"), FIELDS) == {"limit"}
    assert bare_reserved(("stats latest(`limit`) as quota by apiKeyId",), FIELDS) == set()


def test_the_record_fields_are_what_the_records_hold() -> None:
    """The fields above are the builder's own, so a renamed field in the records changes a query."""
    assert record_lines.__module__ == "quota_monitor.publish.records"
    assert {"record", "runAt", "exhaustsAt", "hottestKeyId", "keysAtLevel", "limit"} <= FIELDS


def test_what_a_user_types_in_the_search_box_lands_only_in_its_regexes() -> None:
    holders = [view for view in record_views(several=True) if SEARCH_PATTERN in view.query]
    assert [view.title for view in holders] == [
        "Keys and plans matching the 'Key or plan (id or name)' box (every key until you type)"
    ]
    query = holders[0].query
    assert query.count(SEARCH_PATTERN) == query.count(f" like /(?i){SEARCH_PATTERN}/") == 4


def test_the_window_covers_one_interval_and_a_margin() -> None:
    assert records_window(15) == 20
    assert records_window(60) == 65


def test_the_cost_model_counts_the_dashboards_widgets_and_the_stacks_retention() -> None:
    from infra.settings import MonitorSettings  # noqa: PLC0415 - loads the CDK
    from quota_monitor_cli.cost import RECORD_WIDGETS, RETENTION_DAYS  # noqa: PLC0415

    assert len(record_views()) == RECORD_WIDGETS
    assert MonitorSettings().log_retention_days == RETENTION_DAYS
