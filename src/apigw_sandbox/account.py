"""An API Gateway account's usage plans, API keys and daily usage, with AWS's quota accounting.

This is the sandbox's model of what AWS does (docs/aws-behaviour.md#getusage-and-its-paginator), kept
independent of the monitor's own code so that each checks the other:

- usage is counted per UTC day; a quota period is the UTC day, the week (starting on
  ``week_start``, Sunday unless told otherwise) or the calendar month;
- ``remaining`` for a day is what is left of the period after that day: the limit, less the
  plan's ``offset`` in the plan's first period, less the requests used so far in the period;
- requests beyond the quota are refused by API Gateway, so recorded use never takes
  ``remaining`` below zero;
- UpdateUsage replaces ``remaining`` for the current period from today on, so remaining can
  exceed the limit minus used;
- a plan without a quota reports ``remaining`` as 0 (what AWS reports there is unconfirmed; the
  monitor must not read it);
- a plan meters its keys on the API stages it lists (``apiStages``); a key may be in only one plan
  per stage (API Gateway answers ConflictException otherwise), which is how a request to a stage
  finds the one plan to count it against (:meth:`SandboxAccount.admit_request`).
"""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

# 2023-01-01 was a Sunday; weeks are counted from it by ordinal arithmetic.
_A_SUNDAY = date(2023, 1, 1).toordinal()
SUNDAY = 6


class SandboxError(Exception):
    """An error the sandbox answers in AWS's shape."""

    status = 400
    code = "BadRequestException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Headers the error is sent with, besides ``x-amzn-ErrorType``."""
        return {}


class NotFound(SandboxError):  # noqa: N818 - AWS's error name
    status = 404
    code = "NotFoundException"


class BadRequest(SandboxError):  # noqa: N818 - AWS's error name
    status = 400
    code = "BadRequestException"


class Throttled(SandboxError):  # noqa: N818 - AWS's error name
    """429 with ``Retry-After`` in seconds, as API Gateway sends it."""

    status = 429
    code = "TooManyRequestsException"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UnrecognizedClient(SandboxError):  # noqa: N818 - AWS's error name
    """403: credentials the endpoint does not know; also what an opt-in region the account has not
    enabled answers."""

    status = 403
    code = "UnrecognizedClientException"


class Conflict(SandboxError):  # noqa: N818 - AWS's error name
    status = 409
    code = "ConflictException"


class InternalFailure(SandboxError):  # noqa: N818 - AWS's error name
    status = 500
    code = "InternalFailure"


class ServiceUnavailable(SandboxError):  # noqa: N818 - AWS's error name
    """503; API Gateway may say when to come back (``Retry-After``, seconds)."""

    status = 503
    code = "ServiceUnavailableException"

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


@dataclass(frozen=True)
class ApiStage:
    """A stage of a REST API that a usage plan covers (AWS's ``ApiStage``): the plan's keys are
    accepted there and each request is counted against the plan's quota."""

    api_id: str
    stage: str
    #: Per-method limits by ``"{resourcePath}/{httpMethod}"`` (``{"/quota/GET": {"rateLimit": 5.0,
    #: "burstLimit": 10}}``), as the control plane returns them; the data plane does not enforce them.
    throttle: dict[str, dict[str, float]] | None = None

    def covers(self, api_id: str, stage: str) -> bool:
        return self.api_id == api_id and self.stage == stage


@dataclass
class SandboxPlan:
    id: str
    name: str
    quota: dict[str, object] | None
    tags: dict[str, str]
    created: date
    description: str = ""
    key_ids: list[str] = field(default_factory=list)
    api_stages: list[ApiStage] = field(default_factory=list)

    def covers(self, api_id: str, stage: str) -> bool:
        """The plan meters requests to this stage of this API."""
        return any(api_stage.covers(api_id, stage) for api_stage in self.api_stages)


@dataclass
class SandboxKey:
    id: str
    name: str
    value: str
    enabled: bool
    tags: dict[str, str]
    created: datetime
    customer_id: str | None = None


@dataclass(frozen=True)
class SandboxRestApi:
    """A REST API of the account: only its id (what URLs and ``apiStages`` name) and its name."""

    id: str
    name: str
    created: datetime


@dataclass(frozen=True)
class Admission:
    """What API Gateway decides about a request to a method that requires an API key.

    ``forbidden``: no key, or not an enabled key's value, or a key in no plan of this stage (403);
    ``limit_exceeded``: the plan's quota is used up (429, not counted); ``admitted``: counted.
    """

    outcome: Literal["admitted", "forbidden", "limit_exceeded"]
    key: SandboxKey | None = None
    plan: SandboxPlan | None = None


class SandboxAccount:
    """Thread-safe state of one emulated account and region."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        week_start: int = SUNDAY,
        seed: int = 0,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.week_start = week_start
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self.plans: dict[str, SandboxPlan] = {}
        self.keys: dict[str, SandboxKey] = {}
        self.rest_apis: dict[str, SandboxRestApi] = {}
        # (plan id, key id) -> day -> requests used that day
        self._used: dict[tuple[str, str], dict[date, int]] = {}
        # (plan id, key id) -> day -> (requests used that day before the UpdateUsage, new remaining)
        self._extensions: dict[tuple[str, str], dict[date, tuple[int, int]]] = {}
        #: When set, GetUsage leaves out keys with no use at all in the range (AWS's behaviour
        #: here is unconfirmed; the monitor's plan-key cross-check is tested against it).
        self.omit_idle_keys = False

    # -- time -----------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def set_clock(self, clock: Callable[[], datetime] | None) -> None:
        """Read the time from ``clock`` from now on (None: the real time): a demo's time travel."""
        self._clock = clock or (lambda: datetime.now(UTC))

    def today(self) -> date:
        return self.now().date()

    def period_start(self, period: str, day: date) -> date:
        if period == "DAY":
            return day
        if period == "MONTH":
            return date(day.year, day.month, 1)
        ordinal = day.toordinal()
        week_anchor = _A_SUNDAY + (self.week_start - SUNDAY)
        return date.fromordinal(ordinal - (ordinal - week_anchor) % 7)

    # -- ids --------------------------------------------------------------------------------------
    def _new_id(self, length: int, taken: Iterable[str]) -> str:
        alphabet = string.ascii_lowercase + string.digits
        existing = set(taken)
        while True:
            candidate = "".join(self._rng.choice(alphabet) for _ in range(length))
            if candidate not in existing:
                return candidate

    # -- writes -----------------------------------------------------------------------------------
    def create_usage_plan(
        self,
        name: str,
        *,
        limit: int | None = None,
        period: str | None = None,
        offset: int = 0,
        tags: Mapping[str, str] | None = None,
        created: date | None = None,
        plan_id: str | None = None,
        api_stages: Iterable[ApiStage | tuple[str, str]] = (),
    ) -> str:
        """A usage plan; ``api_stages``: the stages it covers, as ``(api id, stage)`` or :class:`ApiStage`."""
        if (limit is None) != (period is None):
            raise ValueError("a quota needs both limit and period")
        if period is not None and period not in ("DAY", "WEEK", "MONTH"):
            raise ValueError(f"period {period!r} is not DAY, WEEK or MONTH")
        with self._lock:
            new_id = plan_id or self._new_id(6, self.plans)
            quota: dict[str, object] | None = (
                None if limit is None else {"limit": limit, "offset": offset, "period": period}
            )
            self.plans[new_id] = SandboxPlan(
                id=new_id,
                name=name,
                quota=quota,
                tags=dict(tags or {}),
                created=created or date(2020, 1, 1),
                api_stages=[_api_stage(api_stage) for api_stage in api_stages],
            )
            return new_id

    def create_rest_api(self, name: str, *, api_id: str | None = None) -> str:
        """A REST API; its id is 10 lowercase letters and digits, as API Gateway makes them."""
        with self._lock:
            new_id = api_id or self._new_id(10, self.rest_apis)
            self.rest_apis[new_id] = SandboxRestApi(id=new_id, name=name, created=self.now())
            return new_id

    def add_api_stage(
        self, plan_id: str, api_id: str, stage: str, *, throttle: dict[str, dict[str, float]] | None = None
    ) -> None:
        """UpdateUsagePlan ``add /apiStages``. The sandbox does not check that the API or the stage exists
        (API Gateway does); it does refuse a stage one of the plan's keys is metered on by another plan."""
        with self._lock:
            plan = self.plan(plan_id)
            if plan.covers(api_id, stage):
                return
            for key_id in plan.key_ids:
                self._check_one_plan_per_stage(key_id, plan, [ApiStage(api_id, stage)])
            plan.api_stages.append(ApiStage(api_id, stage, throttle))

    def _check_one_plan_per_stage(self, key_id: str, plan: SandboxPlan, stages: Iterable[ApiStage]) -> None:
        """API Gateway's rule: a key is in at most one plan per API stage."""
        for other in self.plans.values():
            if other.id == plan.id or key_id not in other.key_ids:
                continue
            for api_stage in stages:
                if other.covers(api_stage.api_id, api_stage.stage):
                    raise Conflict(
                        f"Usage Plan {plan.id} cannot be added because API Key {key_id} cannot reference "
                        f"multiple Usage Plans with the same API Stage: {api_stage.api_id}:{api_stage.stage}"
                    )

    def create_api_key(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        enabled: bool = True,
        key_id: str | None = None,
        customer_id: str | None = None,
    ) -> str:
        with self._lock:
            new_id = key_id or self._new_id(10, self.keys)
            value = "".join(self._rng.choice(string.ascii_letters + string.digits) for _ in range(40))
            self.keys[new_id] = SandboxKey(
                id=new_id,
                name=name,
                value=value,
                enabled=enabled,
                tags=dict(tags or {}),
                created=self.now(),
                customer_id=customer_id,
            )
            return new_id

    def attach_key(self, plan_id: str, key_id: str) -> None:
        with self._lock:
            plan = self.plan(plan_id)
            self.key(key_id)
            if key_id not in plan.key_ids:
                self._check_one_plan_per_stage(key_id, plan, plan.api_stages)
                plan.key_ids.append(key_id)

    def delete_usage_plan(self, plan_id: str) -> None:
        with self._lock:
            self.plan(plan_id)
            del self.plans[plan_id]
            for table in (self._used, self._extensions):
                for pair in [pair for pair in table if pair[0] == plan_id]:
                    del table[pair]

    def delete_api_key(self, key_id: str) -> None:
        with self._lock:
            self.key(key_id)
            del self.keys[key_id]
            for plan in self.plans.values():
                if key_id in plan.key_ids:
                    plan.key_ids.remove(key_id)

    def set_daily_usage(self, plan_id: str, key_id: str, used_by_day: Mapping[date, int]) -> None:
        """Bulk history for seeding: requests per day, taken as served (no clamping)."""
        with self._lock:
            used_by = self._used.setdefault((plan_id, key_id), {})
            for day, used in used_by_day.items():
                if used < 0:
                    raise ValueError(f"used {used} on {day} is negative")
                used_by[day] = used_by.get(day, 0) + used

    def record_usage(self, plan_id: str, key_id: str, requests: int, day: date | None = None) -> int:
        """Serve ``requests`` calls on ``day`` (default today); returns the number the quota let through."""
        with self._lock:
            plan = self.plan(plan_id)
            day = day or self.today()
            allowed = requests
            if plan.quota is not None:
                allowed = max(0, min(requests, self._remaining_after(plan, key_id, day)))
            if allowed:
                used_by = self._used.setdefault((plan_id, key_id), {})
                used_by[day] = used_by.get(day, 0) + allowed
            return allowed

    def admit_request(self, api_key: str | None, api_id: str, stage: str) -> Admission:
        """A request to a method that requires an API key, as API Gateway meters it: ``api_key`` (the
        ``x-api-key`` header) must be an enabled key's value, in a plan covering the stage; the request
        is then counted for today against that plan, unless its quota is used up. One step, so that
        concurrent requests cannot together overrun a quota."""
        with self._lock:
            key = next((key for key in self.keys.values() if api_key and key.value == api_key), None)
            if key is None or not key.enabled:
                return Admission("forbidden")
            plan = next(
                (
                    self.plans[plan_id]
                    for plan_id in sorted(self.plans)
                    if key.id in self.plans[plan_id].key_ids and self.plans[plan_id].covers(api_id, stage)
                ),
                None,
            )
            if plan is None:
                return Admission("forbidden", key)
            if self.record_usage(plan.id, key.id, 1) == 0:
                return Admission("limit_exceeded", key, plan)
            return Admission("admitted", key, plan)

    def update_remaining(self, plan_id: str, key_id: str, remaining: int) -> None:
        """UpdateUsage ``replace /remaining``: the new value holds from now, for the current period only."""
        with self._lock:
            plan = self.plan(plan_id)
            if key_id not in plan.key_ids:
                raise NotFound(
                    f"Invalid API Key identifier specified: {key_id} is not in usage plan {plan_id}"
                )
            if plan.quota is None:
                raise BadRequest(f"Usage plan {plan_id} has no quota to extend")
            if remaining < 0:
                raise BadRequest(f"Invalid remaining quota: {remaining}")
            today = self.today()
            used_today = self._used.get((plan_id, key_id), {}).get(today, 0)
            self._extensions.setdefault((plan_id, key_id), {})[today] = (used_today, remaining)

    # -- reads ------------------------------------------------------------------------------------
    def plan(self, plan_id: str) -> SandboxPlan:
        try:
            return self.plans[plan_id]
        except KeyError:
            raise NotFound(f"Invalid Usage Plan ID specified: {plan_id}") from None

    def key(self, key_id: str) -> SandboxKey:
        try:
            return self.keys[key_id]
        except KeyError:
            raise NotFound(f"Invalid API Key identifier specified: {key_id}") from None

    def _remaining_after(self, plan: SandboxPlan, key_id: str, day: date) -> int:
        series = self.daily_usage(plan.id, key_id, day, day)
        return series[0][1]

    def daily_usage(self, plan_id: str, key_id: str, start: date, end: date) -> list[list[int]]:
        """GetUsage's ``[used, remaining]`` for each day from ``start`` to ``end``, both included."""
        with self._lock:
            plan = self.plan(plan_id)
            used_by = self._used.get((plan_id, key_id), {})
            quota = plan.quota
            if quota is None:
                return [[used_by.get(start + timedelta(days=i), 0), 0] for i in range((end - start).days + 1)]
            extensions = self._extensions.get((plan_id, key_id), {})
            period = str(quota["period"])
            limit, offset = int(str(quota["limit"])), int(str(quota.get("offset") or 0))
            first_period = self.period_start(period, plan.created)
            day = self.period_start(period, start)
            current: date | None = None
            remaining = 0
            series: list[list[int]] = []
            while day <= end:
                period_start = self.period_start(period, day)
                if period_start != current:
                    current = period_start
                    remaining = limit - (offset if period_start == first_period else 0)
                used = used_by.get(day, 0)
                if day in extensions:
                    used_before, new_remaining = extensions[day]
                    remaining = new_remaining - (used - used_before)
                else:
                    remaining -= used
                if day >= start:
                    series.append([used, max(0, remaining)])
                day += timedelta(days=1)
            return series

    def has_use(self, plan_id: str, key_id: str, start: date, end: date) -> bool:
        used_by = self._used.get((plan_id, key_id), {})
        return any(start <= day <= end and used for day, used in used_by.items())


def _api_stage(api_stage: ApiStage | tuple[str, str]) -> ApiStage:
    return api_stage if isinstance(api_stage, ApiStage) else ApiStage(*api_stage)
