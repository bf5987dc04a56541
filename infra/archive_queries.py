"""The archive's Athena table and its saved queries, as plain data: what ``infra/archive.py`` deploys
and what the tests parse as Trino SQL and run, transpiled, in DuckDB over an archive of real records.

The table is one wide table over every record (``record`` tells a key, a plan and a target record
apart; a field a record does not have reads as NULL), its columns the runtime's record fields
(:data:`quota_monitor.KEY_RECORD_FIELDS` and the others) with the types below. Column names are
lowercase, as Athena keeps them; the JSON SerDe matches the records' camelCase keys without regard
to case, and so does SQL: ``usagePlanId`` in a query is the column ``usageplanid``.

Each query is Trino SQL (Athena engine version 3) with ``{database}`` and ``{table}`` to fill in
(:func:`query_sql`) and ``?`` execution parameters, given in order as :attr:`NamedQuery.parameters`
says (docs/archive.md shows how to pass them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from quota_monitor import KEY_RECORD_FIELDS, PLAN_RECORD_FIELDS, TARGET_RECORD_FIELDS

TABLE_NAME: Final = "records"
#: The partition column: the run's UTC date, ``yyyy-MM-dd``, from the object's key (``dt=...``).
PARTITION_COLUMN: Final = "dt"
#: The first day partition projection considers; days before it hold nothing anyway.
PROJECTION_START: Final = "2026-01-01"

#: Each record field's Hive type in the Glue table (the JSON names; the table lowercases them).
FIELD_TYPES: Final[dict[str, str]] = {
    "record": "string",
    "runAt": "string",
    "usagePlanId": "string",
    "usagePlanName": "string",
    "apiKeyId": "string",
    "apiKeyName": "string",
    "period": "string",
    "periodStart": "string",
    "used": "bigint",
    "remaining": "bigint",
    "limit": "bigint",
    "utilization": "double",
    "accountId": "string",
    "region": "string",
    "levels": "array<int>",
    "level": "int",
    "metrics": "boolean",
    "exhaustsAt": "string",
    "keys": "int",
    "maxUtilization": "double",
    "hottestKeyId": "string",
    "hottestKeyName": "string",
    "keysAtLevel": "int",
    "keysForecast": "int",
    "plans": "int",
    "plansScanned": "int",
    "scanErrors": "int",
    "apiCalls": "int",
    "throttles": "int",
    "durationSeconds": "double",
    "metricsPublished": "boolean",
}


def _record_fields() -> tuple[str, ...]:
    """Every field of every record, once, in the order the records write them."""
    fields = tuple(dict.fromkeys((*KEY_RECORD_FIELDS, *PLAN_RECORD_FIELDS, *TARGET_RECORD_FIELDS)))
    untyped = [name for name in fields if name not in FIELD_TYPES]
    if untyped:
        raise ValueError(
            f"record fields {untyped} have no column type in infra/archive_queries.py FIELD_TYPES: "
            "give each a Hive type so that the archive's table reads it"
        )
    return fields


#: The table's columns: (JSON field, Hive type), every record field once.
COLUMNS: Final = tuple((name, FIELD_TYPES[name]) for name in _record_fields())


@dataclass(frozen=True)
class NamedQuery:
    """One saved query: its name in the Athena console, what it answers, its SQL and its
    ``?`` parameters, in order (each a date ``'2026-11-01'`` or an id, quoted as SQL strings)."""

    name: str
    description: str
    sql: str
    parameters: tuple[str, ...]


#: A key's readings, with the quota period each belongs to (its end is the next period's start),
#: from the partitions that can hold a period ending from the first day to the end day.
_READINGS = """\
readings AS (
    SELECT
        accountId, region, usagePlanId, usagePlanName, apiKeyId, apiKeyName, period, runAt,
        used, remaining, "limit", utilization,
        date(periodStart) AS period_start,
        CAST(
            CASE period
                WHEN 'DAY' THEN date_add('day', 1, date(periodStart))
                WHEN 'WEEK' THEN date_add('day', 7, date(periodStart))
                ELSE date_add('month', 1, date(periodStart))
            END AS date
        ) AS period_end
    FROM "{database}"."{table}"
    WHERE record = 'key'
        -- a period that ends after the first day began at most 31 days before it
        AND dt >= CAST(date_add('day', -31, date(?)) AS varchar)
        AND dt < ?
)"""

#: Each key's closed quota periods that ended from the first day to the end day: the last reading
#: of each (used, remaining, when), how many readings, whether any found the quota spent, and
#: whether an UpdateUsage raised the key's remaining above what its limit allows.
_PERIODS = """\
periods AS (
    SELECT
        accountId AS account_id,
        region,
        usagePlanId AS usage_plan_id,
        max_by(usagePlanName, runAt) AS usage_plan_name,
        apiKeyId AS api_key_id,
        max_by(apiKeyName, runAt) AS api_key_name,
        period,
        period_start,
        period_end,
        max_by("limit", runAt) AS quota_limit,
        max_by(used, runAt) AS used,
        max_by(remaining, runAt) AS remaining,
        max_by(utilization, runAt) AS utilization,
        max(runAt) AS read_at,
        min(runAt) AS first_read_at,
        count(*) AS readings,
        bool_or(remaining = 0 OR utilization >= 100) AS reached_limit,
        bool_or(used + remaining > "limit") AS extended
    FROM readings
    WHERE period_end > date(?) AND period_end <= date(?) AND period_end <= current_date
    GROUP BY accountId, region, usagePlanId, apiKeyId, period, period_start, period_end
)"""

STATEMENT = NamedQuery(
    name="Quota statement of a period",
    description="Each key's usage in each closed quota period that ended from the first day to before "
    "the end day: the last reading before the reset (up to one run interval plus GetUsage's lag "
    "before the period's end), and whether the key reached its limit.",
    sql=f"""\
-- The statement of a period: each key's usage in each quota period (DAY, WEEK or MONTH) that ended
-- from the first day to before the end day, and is over. used is the last reading before the reset:
-- up to one run interval plus GetUsage's lag (30 to 40 minutes) before the period's end.
-- Parameters: the first day, the end day, the first day, the end day ('2026-11-01', '2026-12-01').
WITH {_READINGS},
{_PERIODS}
SELECT
    account_id, region, usage_plan_id, usage_plan_name, api_key_id, api_key_name, period,
    period_start, period_end, quota_limit, used, remaining, utilization, read_at, first_read_at,
    readings, reached_limit, extended
FROM periods
ORDER BY account_id, region, usage_plan_name, usage_plan_id, api_key_name, api_key_id, period_start
""",  # noqa: S608 - this module's own constant text: nothing from outside is put in
    parameters=("first day", "end day", "first day", "end day"),
)

TOP_KEYS = NamedQuery(
    name="Quota top keys of a month",
    description="The 25 keys that used the most requests in the quota periods that ended in a month, "
    "with how many of those periods they reached their limit in.",
    sql=f"""\
-- The top keys of a month: requests used in the quota periods that ended in the month (each
-- period's last reading before the reset), most first.
-- Parameters: the month's first day, the next month's first day, twice ('2026-11-01', '2026-12-01').
WITH {_READINGS},
{_PERIODS}
SELECT
    account_id, region, usage_plan_id, max_by(usage_plan_name, read_at) AS usage_plan_name,
    api_key_id, max_by(api_key_name, read_at) AS api_key_name,
    sum(used) AS used,
    count(*) AS periods,
    count_if(reached_limit) AS periods_at_limit,
    max(utilization) AS max_utilization
FROM periods
GROUP BY account_id, region, usage_plan_id, api_key_id
ORDER BY used DESC, account_id, region, usage_plan_id, api_key_id
LIMIT 25
""",  # noqa: S608 - this module's own constant text: nothing from outside is put in
    parameters=("first day", "end day", "first day", "end day"),
)

PLAN_TREND = NamedQuery(
    name="Quota daily trend of a plan",
    description="One usage plan day by day: its last plan record of each UTC day (requests used in "
    "the current quota period by all its keys, keys, the hottest key's utilization, keys at a level).",
    sql="""\
-- A plan's daily trend: the plan record of the last run of each UTC day.
-- Parameters: the usage plan id, the first day, the end day ('a1b2c3', '2026-11-01', '2026-12-01').
SELECT
    dt AS day,
    accountId AS account_id,
    region,
    usagePlanId AS usage_plan_id,
    max_by(usagePlanName, runAt) AS usage_plan_name,
    max_by(period, runAt) AS period,
    max_by(periodStart, runAt) AS period_start,
    max(runAt) AS read_at,
    max_by(keys, runAt) AS keys,
    max_by(used, runAt) AS used,
    max_by(maxUtilization, runAt) AS max_utilization,
    max_by(keysAtLevel, runAt) AS keys_at_level
FROM "{database}"."{table}"
WHERE record = 'plan' AND usagePlanId = ? AND dt >= ? AND dt < ?
GROUP BY dt, accountId, region, usagePlanId
ORDER BY account_id, region, day
""",
    parameters=("usage plan id", "first day", "end day"),
)

AT_LIMIT = NamedQuery(
    name="Quota keys that reached their limit",
    description="Each key and quota period in which a reading found no quota left, from the first "
    "day to before the end day: the first and last such reading, and how many.",
    sql="""\
-- Keys that hit 100%, and when: the first reading of each quota period that found the key's quota
-- spent (remaining 0), its last, and how many readings did. GetUsage shows a key running out at once.
-- Parameters: the first day, the end day ('2026-11-01', '2026-12-01').
SELECT
    accountId AS account_id,
    region,
    usagePlanId AS usage_plan_id,
    max_by(usagePlanName, runAt) AS usage_plan_name,
    apiKeyId AS api_key_id,
    max_by(apiKeyName, runAt) AS api_key_name,
    period,
    periodStart AS period_start,
    min(runAt) AS first_read_at_limit,
    max(runAt) AS last_read_at_limit,
    count(*) AS readings_at_limit
FROM "{database}"."{table}"
WHERE record = 'key' AND dt >= ? AND dt < ? AND (remaining = 0 OR utilization >= 100)
GROUP BY accountId, region, usagePlanId, apiKeyId, period, periodStart
ORDER BY first_read_at_limit, account_id, region, usage_plan_id, api_key_id
""",
    parameters=("first day", "end day"),
)

#: Every saved query, in the order the console lists them.
NAMED_QUERIES: Final = (STATEMENT, TOP_KEYS, PLAN_TREND, AT_LIMIT)


def query_sql(query: NamedQuery, *, database: str, table: str = TABLE_NAME) -> str:
    """The query's SQL for this database and table."""
    return query.sql.replace("{database}", database).replace("{table}", table)
