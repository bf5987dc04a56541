"""The offline Logs Insights checker: the dashboard's queries pass, and broken queries fail, each for
its reason. No synth: the queries are built as the dashboard builds them."""

from __future__ import annotations

import pytest

from infra.logs_insights import QueryError, check_query, raise_for, sources, tokenize
from infra.record_views import SEARCH_PATTERN, record_views, records_window
from quota_monitor import KEY_RECORD_FIELDS, PLAN_RECORD_FIELDS, record_lines

FIELDS = {*KEY_RECORD_FIELDS, *PLAN_RECORD_FIELDS}


def test_every_dashboard_query_checks_against_the_record_fields() -> None:
    views = record_views()
    assert len(views) == 4
    for view in views:
        assert check_query(view.query, fields=FIELDS) == [], view.title
        # Each one selects records by their marker, then keeps each key's (or plan's) latest.
        assert view.commands[0].startswith('filter record = "')
        assert view.commands[1].startswith("stats latest(")


def test_the_record_fields_are_what_the_records_hold() -> None:
    """The field list the queries are checked against is the builder's own, so a renamed field in
    the records fails the check above rather than a widget in production."""
    assert record_lines.__module__ == "quota_monitor.publish.records"
    assert "limit" in FIELDS
    assert {"record", "runAt", "exhaustsAt", "hottestKeyId", "keysAtLevel"} <= FIELDS


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("filter record = 1 | frobnicate x", "unknown command 'frobnicate'"),
        ('filter (record = "key"', "unbalanced parentheses"),
        ('filter record = "key")', "unbalanced ')'"),
        ('filter record = "key', "unterminated quote"),
        ("filter apiKeyId like /abc", "unterminated regular expression"),
        ("filter record = 1 | stats frob(used) as x by apiKeyId", "unknown function frob()"),
        ("filter max(used) > 3", "max() aggregates; only stats may use it"),
        ("stats used by apiKeyId", "each item needs an aggregation"),
        ("stats count(*) by max(used)", "cannot group by an aggregation"),
        ("filter record = 1 | sort used desc | dedup apiKeyId | sort used", "only limit may follow dedup"),
        (
            "stats count(*) as a by apiKeyId | stats count(*) as b by a | stats count(*) as c by b",
            "at most 2",
        ),
        ("limit 0", "not a whole number from 1 to 10,000"),
        ("limit 10001", "not a whole number from 1 to 10,000"),
        ("limit many", "not a whole number"),
        ("filter record = 1 |", "command 2 is empty"),
        ("filter nosuchfield = 1", "unknown field 'nosuchfield'"),
        ("stats latest(used) as u by apiKeyId | sort used desc", "sort: unknown field 'used'"),
        (
            "stats latest(used) as u by apiKeyId | display u, usagePlanId",
            "display: unknown field 'usagePlanId'",
        ),
        ("stats latest(limit) as quota by apiKeyId", "the field 'limit' has a command's name"),
        ("stats latest(used) as limit by apiKeyId", "the name 'limit' is a command"),
        ("filter apiKeyId like 3", "like needs a string or /regex/"),
        ('parse apiKeyName "key-*"', "a glob pattern needs 'as'"),
        ("display", "unexpected end of the command"),
        ("sort used sideways", "unexpected 'sideways'"),
    ],
)
def test_broken_queries_fail_for_their_reason(query: str, problem: str) -> None:
    problems = check_query(query, fields=FIELDS)
    assert any(problem in found for found in problems), problems
    with pytest.raises(QueryError, match="does not check"):
        raise_for(query, fields=FIELDS)


@pytest.mark.parametrize(
    "query",
    [
        "fields @timestamp, @message | sort @timestamp desc | limit 20",
        "filter @message like /(?i)(exception|error|fail)/ | stats count(*) as errors by bin(5m)",
        'parse @message "user=* action=*" as user, action | stats count(*) by user, action',
        "parse @message /(?<code>\\d{3}) (?<path>\\S+)/ | filter code >= 500 | display code, path",
        "fields strlen(apiKeyName) as n, used * 100 / `limit` as share | filter n > 3 and not share < 1",
        "filter apiKeyId in ['a', 'b'] or usagePlanId not in [\"c\"] | stats count_distinct(apiKeyId)",
        "filter ispresent(exhaustsAt) and utilization >= 80 | sort exhaustsAt asc | dedup apiKeyId | limit 5",
        "stats avg(used) as a, pct(used, 90) as p90 by usagePlanId | filter a > 0 | sort p90 desc",
        "filter used / 2 > 1 | stats sum(used) / count(*) as mean by period",
        "# the hottest keys\nfilter utilization > 90 # over 90%\n| sort utilization desc",
    ],
)
def test_valid_queries_pass(query: str) -> None:
    assert check_query(query, fields=FIELDS | {"code", "path"}) == []


def test_a_widget_query_names_its_log_groups_first() -> None:
    groups, rest = sources("SOURCE 'a/b' | SOURCE 'c' | filter record = 1")
    assert (groups, rest.strip()) == (["a/b", "c"], "filter record = 1")
    assert check_query("SOURCE 'lg' | filter record = 1 | limit 3", fields=FIELDS) == []


def test_a_slash_divides_after_an_operand_and_opens_a_regex_after_an_operator() -> None:
    kinds = [token.kind for token in tokenize("filter used / 2 > 1 and apiKeyId like /a\\/b/i")]
    assert kinds == ["name", "name", "op", "number", "op", "number", "name", "name", "name", "regex"]


def test_what_a_user_types_in_the_search_box_keeps_the_query_valid() -> None:
    (search,) = [view for view in record_views() if SEARCH_PATTERN in view.query]
    for typed in ("gold", "k0000012", "billing-client", ".", "a.b_c"):
        assert check_query(search.query.replace(SEARCH_PATTERN, typed), fields=FIELDS) == []


def test_the_window_covers_one_interval_and_a_margin() -> None:
    assert records_window(15) == 20
    assert records_window(60) == 65


def test_the_cost_model_counts_the_dashboards_widgets_and_the_stacks_retention() -> None:
    from infra.settings import MonitorSettings  # noqa: PLC0415 - loads the CDK
    from quota_monitor_cli.cost import RECORD_WIDGETS, RETENTION_DAYS  # noqa: PLC0415

    assert len(record_views()) == RECORD_WIDGETS
    assert MonitorSettings().log_retention_days == RETENTION_DAYS
