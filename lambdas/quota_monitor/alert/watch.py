"""The fast path's watch list: the keys worth reading every minute, chosen by each full scan.

A key is watched when its plan has a quota, it is not muted, it is below its highest level, and it
is either at or above its first level or due there within :data:`HORIZON_INTERVALS` of the full
scan's intervals at its :func:`pace` (the faster of the period's average and today's). A key the
full scan's alert step left unsettled is watched whatever its level (:func:`choose_watched`); a plan
the full scan could not read keeps its place from the last list still valid (:func:`carry_over`).

Each watched key carries what the full scan saw (:func:`seen_state`): the fast path reads a key's
alert state only when the rules, applied to what it reads now against that, would say something.
The list is ordered by urgency, the plan whose key is expected soonest at its next level first, and
stored as compressed JSON (:func:`encode_watch_list`), at most :data:`MAX_WATCH_BYTES`: a longer
list keeps the most urgent plans and counts the others (``leftOut``). The policy and its reasons:
docs/alerts.md, "Two paths: the full scan and the fast path".
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from quota_monitor.alert.rules import AlertState, state_key
from quota_monitor.alert.thresholds import policy_for
from quota_monitor.compute.forecast import forecast, period_started_at
from quota_monitor.compute.levels import level_reached
from quota_monitor.models import PERIOD_TYPES, ApiKey, Quota, UsagePlan

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    from quota_monitor.config import AlertSettings
    from quota_monitor.models import KeyUsage, ScanResult, Target

#: Today's pace is measured over at least this long, so that the first minutes after midnight do not
#: make one request look like a storm.
MIN_PACE_SECONDS: Final = 900.0
#: The list's compressed size at most: a DynamoDB item holds 400 KB, names and attributes included.
MAX_WATCH_BYTES: Final = 350_000
#: Added to two of the full scan's intervals for the list's lifetime: the next scan's own run.
SCAN_MARGIN: Final = timedelta(minutes=5)
#: How many of the full scan's intervals ahead a key about to reach its first level is watched: the
#: next full scan writes the next list an interval from now, and as much again allows for the error
#: of a pace read from the day so far.
HORIZON_INTERVALS: Final = 2
SCHEMA: Final = 1


@dataclass(frozen=True)
class WatchedKey:
    """One watched key, as the full scan saw it."""

    id: str
    name: str | None
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    #: The highest of its levels it had reached (0: none yet).
    level: int = 0
    #: Whether a forecast was due (it would run out before the reset at its period's pace).
    forecast: bool = False
    #: Seconds after the scan at which it was expected at its next level; None: not moving.
    due: float | None = None
    #: The full scan's alert step did not deliver what it owed the key, or could not read its state
    #: (``choose_watched``): every fast run reads its state, whatever it reads of its usage.
    unsettled: bool = False

    def api_key(self) -> ApiKey:
        return ApiKey(self.id, self.name, tags=self.tags)


@dataclass(frozen=True)
class WatchedPlan:
    """One plan with watched keys: what the fast path needs to read them without listing anything."""

    id: str
    name: str
    quota: Quota
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    #: GetUsage pages the whole plan takes (its keys at the scan's page size).
    pages: int = 1
    #: The quota period the full scan saw the keys in.
    period_start: date | None = None
    keys: tuple[WatchedKey, ...] = ()
    #: Set on a plan carried from an earlier list (:func:`carry_over`): after this it is not read,
    #: whatever the list's own validity. None: as long as the list.
    until: datetime | None = None

    @property
    def due(self) -> float:
        """The soonest any of its keys is expected at its next level (seconds after the scan)."""
        return min((key.due for key in self.keys if key.due is not None), default=math.inf)

    def usage_plan(self, target: Target | None) -> UsagePlan:
        return UsagePlan(self.id, self.name, self.quota, tags=self.tags, target=target)


@dataclass(frozen=True)
class WatchList:
    """One target's watch list, most urgent plan first."""

    written_at: datetime
    #: After this the list is stale (the full scan has stopped writing it) and is not used.
    valid_until: datetime
    plans: tuple[WatchedPlan, ...] = ()
    #: Plans that qualified and were left out to keep the list under :data:`MAX_WATCH_BYTES`.
    left_out: int = 0
    #: Plans kept from the last list because this scan could not read them (:func:`carry_over`).
    carried: int = 0

    @property
    def keys(self) -> int:
        return sum(len(plan.keys) for plan in self.plans)

    def calls(self) -> int:
        """GetUsage calls a fast run makes to read it all: per plan, its pages or one per key when
        fewer (:func:`quota_monitor.read.scan.scan_watched_plan`)."""
        return sum(min(plan.pages, len(plan.keys)) for plan in self.plans)

    def valid_at(self, now: datetime) -> bool:
        return self.written_at <= now + SCAN_MARGIN and now < self.valid_until

    def live(self, now: datetime) -> WatchList:
        """The list without the carried plans whose own time ran out (:func:`carry_over`)."""
        kept = tuple(plan for plan in self.plans if plan.until is None or now < plan.until)
        if len(kept) == len(self.plans):
            return self
        return replace(self, plans=kept, carried=sum(1 for plan in kept if plan.until is not None))

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "writtenAt": self.written_at.isoformat(),
            "validUntil": self.valid_until.isoformat(),
            "leftOut": self.left_out,
            "carried": self.carried,
            "plans": [_plan_json(plan) for plan in self.plans],
        }

    @classmethod
    def from_json(cls, body: object) -> WatchList:
        """The list as :meth:`as_json` wrote it; ValueError names what does not read."""
        if not isinstance(body, dict) or body.get("schema") != SCHEMA:
            raise ValueError(f"not a watch list of schema {SCHEMA}")
        try:
            return cls(
                written_at=_aware(datetime.fromisoformat(body["writtenAt"])),
                valid_until=_aware(datetime.fromisoformat(body["validUntil"])),
                plans=tuple(_plan_from(plan) for plan in body["plans"]),
                left_out=int(body.get("leftOut", 0)),
                carried=int(body.get("carried", 0)),
            )
        except (KeyError, TypeError, IndexError) as error:
            raise ValueError(f"a watch list field does not read: {error!r}") from None


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"{at.isoformat()} has no time zone")
    return at


def _plan_json(plan: WatchedPlan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "name": plan.name,
        "quota": [plan.quota.limit, plan.quota.period, plan.quota.offset],
        "tags": plan.tags,
        "pages": plan.pages,
        "periodStart": plan.period_start.isoformat() if plan.period_start else None,
        **({"until": plan.until.isoformat()} if plan.until is not None else {}),
        **(
            {"unsettled": [k.id for k in plan.keys if k.unsettled]}
            if any(k.unsettled for k in plan.keys)
            else {}
        ),
        # A list per key: the list is read every minute, and field names would be most of its bytes.
        "keys": [
            [k.id, k.name, k.level, k.forecast, k.due, *([k.tags] if k.tags else [])] for k in plan.keys
        ],
    }


def _plan_from(body: dict[str, Any]) -> WatchedPlan:
    limit, period, offset = body["quota"]
    if period not in PERIOD_TYPES or not isinstance(limit, int) or not isinstance(offset, int):
        raise ValueError(f"plan {body.get('id')!r}: quota {body['quota']!r} does not read")
    keys = []
    unsettled = set(body.get("unsettled") or ())
    for entry in body["keys"]:
        key_id, name, level, due_forecast, due, *tags = entry
        if not isinstance(key_id, str) or not isinstance(level, int):
            raise ValueError(f"plan {body.get('id')!r}: key entry {entry!r} does not read")
        keys.append(
            WatchedKey(
                key_id,
                name,
                tags=dict(tags[0]) if tags else {},
                level=level,
                forecast=bool(due_forecast),
                due=None if due is None else float(due),
                unsettled=key_id in unsettled,
            )
        )
    start = body.get("periodStart")
    until = body.get("until")
    return WatchedPlan(
        id=str(body["id"]),
        name=str(body["name"]),
        quota=Quota(limit, period, offset),
        tags=dict(body.get("tags") or {}),
        pages=int(body.get("pages", 1)),
        period_start=date.fromisoformat(start) if start else None,
        keys=tuple(keys),
        until=_aware(datetime.fromisoformat(until)) if until else None,
    )


def pace(key: KeyUsage, now: datetime) -> float:
    """Requests a second the key is using: the faster of its period's average and today's (module doc)."""
    elapsed = (now - period_started_at(key)).total_seconds()
    average = key.used / elapsed if elapsed > 0 else 0.0
    if key.used_today is None:
        return average
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    today = key.used_today / max(MIN_PACE_SECONDS, (now - midnight).total_seconds())
    return max(average, today)


def next_level_due(key: KeyUsage, levels: tuple[int, ...], now: datetime) -> float | None:
    """Seconds until ``key`` reaches the next of ``levels`` at its pace; None when it is not moving or
    has none left."""
    if key.limit is None or key.remaining is None:
        return None
    reached = level_reached(key, levels)
    above = [level for level in levels if level > reached]
    rate = pace(key, now)
    if not above or rate <= 0:
        return None
    consumed = max(0, key.limit - key.remaining)
    needed = math.ceil(above[0] * key.limit / 100) - consumed
    return max(0.0, needed / rate)


def watched_key(
    key: KeyUsage,
    levels: tuple[int, ...],
    api_key: ApiKey,
    *,
    now: datetime,
    horizon: timedelta,
    settings: AlertSettings,
    newer: tuple[int, bool] | None = None,
) -> WatchedKey | None:
    """The key as the watch list carries it, or None when it is not worth watching (module doc).

    ``newer``: (level, forecast sent) as another run left the key's alert state from a reading newer
    than ``key``'s, which then stands for what the key has reached."""
    if key.limit is None or key.remaining is None or not levels:
        return None
    reached = level_reached(key, levels) if newer is None else newer[0]
    if reached >= levels[-1]:
        return None
    due = next_level_due(key, levels, now)
    if reached == 0 and (due is None or due > horizon.total_seconds()):
        return None
    return WatchedKey(
        key.api_key_id,
        key.api_key_name,
        tags=api_key.tags,
        level=reached,
        forecast=forecast(key, now, settings.forecast) is not None if newer is None else newer[1],
        due=None if due is None else round(due, 1),
    )


def choose_watched(
    result: ScanResult,
    settings: AlertSettings,
    *,
    now: datetime,
    scan_interval: timedelta,
    page_size: int,
    unsettled: Collection[str] = frozenset(),
    state_unread: bool = False,
    newer: Mapping[str, tuple[int, bool]] | None = None,
) -> WatchList:
    """The watch list of one target's scan (module doc), most urgent plan first; plans with keys
    the scan could not read are left out.

    ``unsettled``: state keys whose notification the run's alert step did not deliver (another run
    held the key, or it ran out of time; ``AlertReport.unsettled``). They are watched whatever their
    level, marked :attr:`WatchedKey.unsettled`, so that every fast run reads their state, and delivers
    what is still owed, until a full scan has settled them. ``state_unread``: the alert step could
    not read the alert state at all (``AlertReport.state_unread``): every key at a level, or with a
    forecast due, is taken as unsettled. ``newer``: keys whose alert state another run set from a
    newer reading than this scan's (``AlertReport.newer``): what they reached is taken from it, so that
    an older reading never puts back on the list what a newer one moved past (:func:`watched_key`)."""
    newer = newer or {}
    failed = {f.usage_plan_id for f in result.failures if f.resource in ("usage-plan", "api-key")}
    horizon = HORIZON_INTERVALS * scan_interval
    by_plan: dict[str, list[KeyUsage]] = {}
    for key in result.keys:
        by_plan.setdefault(key.usage_plan_id, []).append(key)
    plans: list[WatchedPlan] = []
    for plan in result.plans:
        keys = by_plan.get(plan.id, [])
        if plan.quota is None or plan.id in failed or not keys:
            continue
        watched: list[WatchedKey] = []
        for key in keys:
            api_key = result.api_keys.get(key.api_key_id)
            if api_key is None:
                continue  # its tags are unknown: the alert step does not evaluate it either
            policy = policy_for(plan, api_key, settings.levels)
            if policy.muted:
                continue
            pk = state_key(plan.id, key.api_key_id, result.target)
            found = watched_key(
                key, policy.levels, api_key, now=now, horizon=horizon, settings=settings, newer=newer.get(pk)
            )
            owed = pk in unsettled
            # A key owed a notification by this run is due now; one only because the state could not
            # be read keeps its own due, so that it does not push the truly urgent down the list.
            due = 0.0 if owed else (found.due if found is not None else None)
            if state_unread and not owed and key.limit is not None and key.remaining is not None:
                owed = bool(policy.levels) and (
                    level_reached(key, policy.levels) > 0 or forecast(key, now, settings.forecast) is not None
                )
            if owed:
                found = WatchedKey(
                    key.api_key_id,
                    key.api_key_name,
                    tags=api_key.tags,
                    level=level_reached(key, policy.levels) if policy.levels else 0,
                    forecast=forecast(key, now, settings.forecast) is not None,
                    due=due,
                    unsettled=True,
                )
            if found is not None:
                watched.append(found)
        if watched:
            watched.sort(key=lambda k: (math.inf if k.due is None else k.due, k.id))
            plans.append(
                WatchedPlan(
                    plan.id,
                    plan.name,
                    plan.quota,
                    tags=plan.tags,
                    pages=max(1, math.ceil(len(keys) / page_size)),
                    period_start=keys[0].period_start,
                    keys=tuple(watched),
                )
            )
    plans.sort(key=lambda p: (p.due, p.id))
    return WatchList(now, now + 2 * scan_interval + SCAN_MARGIN, tuple(plans))


def carry_over(
    chosen: WatchList, previous: WatchList | None, unread: Collection[str], *, now: datetime
) -> WatchList:
    """``chosen``, with the plans of ``previous`` that this scan could not read (``unread``: a plan
    that failed, or that the run had no time left for): their keys stay watched as the last scan that
    read them saw them, rather than drop off the list because one read failed.

    Only from a list still valid at ``now``. Each carried plan keeps its own end (``until``): the
    validity of the list that last had it read, so a plan that keeps failing is carried until the
    numbers it holds are as old as a stale list's, never beyond, while the rest of the new list keeps
    the new list's validity."""
    if previous is None or not unread or not previous.valid_at(now):
        return chosen
    have = {plan.id for plan in chosen.plans}
    shift = (previous.written_at - chosen.written_at).total_seconds()
    carried = [
        replace(
            plan,
            keys=tuple(replace(key, due=None if key.due is None else key.due + shift) for key in plan.keys),
            until=plan.until or previous.valid_until,
        )
        for plan in previous.live(now).plans
        if plan.id in unread and plan.id not in have
    ]
    if not carried:
        return chosen
    return replace(
        chosen,
        plans=tuple(sorted((*chosen.plans, *carried), key=lambda p: (p.due, p.id))),
        carried=len(carried),
    )


def encode_watch_list(watch: WatchList, *, limit: int = MAX_WATCH_BYTES) -> tuple[bytes, WatchList]:
    """The list as stored: compressed JSON of at most ``limit`` bytes, and the list it holds (fewer
    plans than ``watch`` when the whole one would not fit: the most urgent are kept)."""
    kept = watch
    while True:
        data = zlib.compress(json.dumps(kept.as_json(), separators=(",", ":")).encode(), 6)
        if len(data) <= limit or not kept.plans:
            return data, kept
        # Cut by the share over the limit (at least one plan), then measure again.
        keep = min(len(kept.plans) - 1, int(len(kept.plans) * limit / len(data)))
        plans = kept.plans[:keep]
        kept = replace(
            kept,
            plans=plans,
            left_out=watch.left_out + len(watch.plans) - keep,
            carried=sum(1 for plan in plans if plan.until is not None),
        )


def decode_watch_list(data: bytes) -> WatchList:
    """The list :func:`encode_watch_list` stored; ValueError when it does not read."""
    try:
        body = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError) as error:
        raise ValueError(f"the watch list does not decompress or parse: {error}") from None
    return WatchList.from_json(body)


def seen_state(plan: WatchedPlan, key: WatchedKey) -> AlertState:
    """What the full scan's alerts left the key at, as far as the list knows: its pre-filter state."""
    return AlertState(period_start=plan.period_start, level=key.level, forecast_sent=key.forecast, rev=0)


def api_keys(plans: Iterable[WatchedPlan]) -> dict[str, ApiKey]:
    return {key.id: key.api_key() for plan in plans for key in plan.keys}
