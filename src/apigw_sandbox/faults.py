"""Fault injection: API Gateway misbehaving on purpose, per operation, with a probability and a seed.

Each fault kind is one small function in :data:`KINDS` that turns a request into an
:class:`Intervention` (what the server does instead of, or to, its normal answer):

==================  ===================================================================  ==============
kind                what the client sees                                                 operations
==================  ===================================================================  ==============
throttle            429 ``TooManyRequestsException`` with ``Retry-After`` (seconds)      all
internal-error      500 ``InternalFailure``                                              all
unavailable         503 ``ServiceUnavailableException`` (``Retry-After`` if given)       all
connection-reset    the connection closed with a TCP reset, no answer                    all
read-timeout        no answer for ``delay`` seconds, then the connection dropped         all
slow-answer         the normal answer, ``delay`` seconds late                            all
malformed-json      the answer cut in half: not JSON                                     all
missing-field       a top-level ``field`` left out (default: ``values``, ``item``,       all
                    or ``id``)
bad-number          one count replaced by ``value`` (default -1; null allowed):          GetUsage,
                    a day's used or remaining, or a plan's quota limit                   GetUsagePlans
bad-entry           one key's daily list (on each page) put in another ``shape``:        GetUsage
                    ``one-number`` (a day is ``[used]``), ``string`` (a count is
                    ``"lots"``), ``not-a-list``, ``fewer-days`` (the first day left
                    out, as a key attached mid-period might be sent),
                    ``fewer-days-at-end`` (the last day left out, as a day not yet
                    written might be), ``more-days`` (one day too many)
empty-values        ``values`` is ``{}`` and there is no next page                       GetUsage
plan-deleted        the usage plan is deleted just before the call: 404                  GetUsage,
                                                                                         GetUsagePlanKeys
key-deleted         one API key of the plan is deleted just before the call              GetUsage
duplicate-key       a page that follows another starts one item early, so the last       paged lists
                    key (or plan, or API key) of the previous page comes again
repeat-position     the answer's ``position`` is the one just requested: the next        paged lists
                    page is this page
==================  ===================================================================  ==============

Whether a fault fires on a request is decided by a random draw seeded by the injector's seed, the
fault (what it is, not its id), the request (method, path, query) and how many times that same
request was seen before: the same calls draw the same faults whatever order threads send them in,
and a retried call draws afresh. ``count`` caps how many times a fault fires (which calls get them
then depends on arrival order). The deletions change the account for good, as a real deletion would.

Driven from Python (``server.faults.add("throttle", operation="GetUsage", probability=0.5)``) or
over HTTP on the sandbox's own port (``/_sandbox/faults``, see :mod:`apigw_sandbox.server` and
docs/reliability.md).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NoReturn

from apigw_sandbox.account import InternalFailure, SandboxError, ServiceUnavailable, Throttled

if TYPE_CHECKING:
    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.server import Request

OPERATIONS = (
    "GetUsagePlans",
    "GetUsagePlan",
    "GetUsagePlanKeys",
    "GetUsage",
    "UpdateUsage",
    "GetApiKeys",
    "GetApiKey",
)
PAGED = frozenset({"GetUsagePlans", "GetUsagePlanKeys", "GetUsage", "GetApiKeys"})
ANY_OPERATION = "*"
#: The field ``missing-field`` leaves out when none is named: what the answer is for.
MAIN_FIELD = {
    "GetUsage": "values",
    "UpdateUsage": "values",
    "GetUsagePlans": "item",
    "GetUsagePlanKeys": "item",
    "GetApiKeys": "item",
    "GetUsagePlan": "id",
    "GetApiKey": "id",
}
MAX_DELAY_SECONDS = 300.0
MAX_RETRY_AFTER_SECONDS = 3600


class InvalidFault(ValueError):  # noqa: N818 - reads as what it is
    """A fault description that cannot be used; the message names the field, the value and what is allowed."""


@dataclass
class Intervention:
    """What the server does about one request because of a fault."""

    #: Answer with this error instead of serving the call.
    error: SandboxError | None = None
    #: Send no answer: close the connection with a TCP reset.
    drop: bool = False
    #: Wait this long (seconds) before answering (or dropping).
    hold: float = 0.0
    #: Serve the page as if ``position`` pointed this many items further (negative: earlier).
    position_shift: int = 0
    #: Edit the decoded JSON answer in place.
    rewrite: Callable[[dict[str, Any]], None] | None = None
    #: Edit the bytes of the answer.
    corrupt: Callable[[bytes], bytes] | None = None

    @property
    def replaces_answer(self) -> bool:
        return self.error is not None or self.drop


@dataclass(frozen=True)
class Fault:
    """One fault to inject. See the module doc for the kinds and what each does."""

    kind: str
    operation: str = ANY_OPERATION
    probability: float = 1.0
    #: At most this many injections (None: no limit).
    count: int | None = None
    #: Only requests about this usage plan (None: any).
    plan_id: str | None = None
    #: throttle, unavailable: the ``Retry-After`` header, in whole seconds (unavailable: None sends none).
    retry_after: int | None = 1
    #: read-timeout: seconds before the connection is dropped (make it longer than the client's read
    #: timeout); slow-answer: seconds the answer is held.
    delay: float = 5.0
    #: missing-field: the top-level field to leave out (None: the operation's main field).
    field: str | None = None
    #: bad-number: the number put in (None: null).
    value: int | None = -1
    #: bad-entry: what one key's daily list becomes (:data:`ENTRY_SHAPES`).
    shape: str = "one-number"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            _invalid("kind", self.kind, f"use one of {', '.join(KINDS)}")
        spec = KINDS[self.kind]
        if self.operation != ANY_OPERATION and self.operation not in spec.operations:
            allowed = ", ".join(op for op in OPERATIONS if op in spec.operations)
            _invalid("operation", self.operation, f"{self.kind} applies to * or {allowed}")
        if (
            isinstance(self.probability, bool)
            or not isinstance(self.probability, int | float)
            or not 0.0 <= self.probability <= 1.0
        ):
            _invalid("probability", self.probability, "use a number from 0 to 1")
        if self.count is not None and (
            isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1
        ):
            _invalid("count", self.count, "use a whole number of at least 1, or null for no limit")
        if self.plan_id is not None and (not isinstance(self.plan_id, str) or not self.plan_id):
            _invalid("planId", self.plan_id, "use a usage plan id, or null for any plan")
        if self.retry_after is not None and (
            isinstance(self.retry_after, bool)
            or not isinstance(self.retry_after, int)
            or not 0 <= self.retry_after <= MAX_RETRY_AFTER_SECONDS
        ):
            _invalid("retryAfter", self.retry_after, f"use whole seconds from 0 to {MAX_RETRY_AFTER_SECONDS}")
        if self.kind == "throttle" and self.retry_after is None:
            _invalid("retryAfter", None, "a 429 from API Gateway always says when to retry: use 0 or more")
        if (
            isinstance(self.delay, bool)
            or not isinstance(self.delay, int | float)
            or not 0.0 < self.delay <= MAX_DELAY_SECONDS
        ):
            _invalid("delay", self.delay, f"use seconds above 0, at most {MAX_DELAY_SECONDS:g}")
        if self.field is not None and (not isinstance(self.field, str) or not self.field):
            _invalid("field", self.field, "use the name of a top-level field of the answer, or null")
        if self.value is not None and (isinstance(self.value, bool) or not isinstance(self.value, int)):
            _invalid("value", self.value, "use a whole number (negative ones are the point) or null")
        if not isinstance(self.shape, str) or self.shape not in ENTRY_SHAPES:
            _invalid("shape", self.shape, f"use one of {', '.join(ENTRY_SHAPES)}")

    def applies_to(self, request: Request) -> bool:
        if request.operation not in KINDS[self.kind].operations:
            return False
        if self.operation not in (ANY_OPERATION, request.operation):
            return False
        return self.plan_id is None or request.params.get("plan") == self.plan_id

    def as_json(self) -> dict[str, Any]:
        return {_JSON_NAMES.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, body: object) -> Fault:
        """A fault from the HTTP API's JSON (camelCase names, as in :meth:`as_json`)."""
        if not isinstance(body, Mapping):
            _invalid("fault", body, 'use a JSON object such as {"kind": "throttle", "operation": "GetUsage"}')
        python_names = {json_name: name for name, json_name in _JSON_NAMES.items()}
        known = {_JSON_NAMES.get(f.name, f.name) for f in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            _invalid(unknown[0], body[unknown[0]], f"known fields are {', '.join(sorted(known))}")
        if "kind" not in body:
            _invalid("kind", None, f"it is required: use one of {', '.join(KINDS)}")
        return cls(**{python_names.get(str(name), str(name)): value for name, value in body.items()})


_JSON_NAMES = {"plan_id": "planId", "retry_after": "retryAfter"}


def _invalid(name: str, value: object, allowed: str) -> NoReturn:
    raise InvalidFault(f"fault {name}={value!r} is not allowed: {allowed}")


# -- one function per kind -------------------------------------------------------------------------
Inject = Callable[[Fault, "Request", "SandboxAccount", random.Random], Intervention | None]


@dataclass(frozen=True)
class Kind:
    operations: frozenset[str]
    inject: Inject


def _throttle(fault: Fault, request: Request, account: SandboxAccount, rng: random.Random) -> Intervention:
    return Intervention(
        error=Throttled("Too Many Requests (sandbox fault)", retry_after=fault.retry_after or 0)
    )


def _internal_error(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention:
    return Intervention(error=InternalFailure("Internal server error (sandbox fault)"))


def _unavailable(fault: Fault, request: Request, account: SandboxAccount, rng: random.Random) -> Intervention:
    return Intervention(error=ServiceUnavailable("Service unavailable (sandbox fault)", fault.retry_after))


def _connection_reset(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention:
    return Intervention(drop=True)


def _read_timeout(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention:
    return Intervention(drop=True, hold=fault.delay)


def _slow_answer(fault: Fault, request: Request, account: SandboxAccount, rng: random.Random) -> Intervention:
    return Intervention(hold=fault.delay)


def _malformed_json(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention:
    return Intervention(corrupt=lambda payload: payload[: len(payload) // 2])


def _missing_field(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention:
    name = fault.field or MAIN_FIELD[request.operation]
    return Intervention(rewrite=lambda body: body.pop(name, None))


def _bad_number(fault: Fault, request: Request, account: SandboxAccount, rng: random.Random) -> Intervention:
    def rewrite(body: dict[str, Any]) -> None:
        if request.operation == "GetUsage":
            values = body.get("values") or {}
            if values:
                daily = values[rng.choice(sorted(values))]
                if daily:
                    rng.choice(daily)[rng.randrange(2)] = fault.value
            return
        with_quota = [plan for plan in body.get("item") or [] if "quota" in plan]
        if with_quota:
            rng.choice(with_quota)["quota"]["limit"] = fault.value

    return Intervention(rewrite=rewrite)


def _entry_one_number(daily: list[Any], rng: random.Random) -> Any:
    day = rng.randrange(len(daily))
    daily[day] = daily[day][:1]
    return daily


def _entry_string(daily: list[Any], rng: random.Random) -> Any:
    rng.choice(daily)[rng.randrange(2)] = "lots"
    return daily


#: bad-entry's shapes: one key's daily list (never empty) -> what is sent instead.
ENTRY_SHAPES: dict[str, Callable[[list[Any], random.Random], Any]] = {
    "one-number": _entry_one_number,
    "string": _entry_string,
    "not-a-list": lambda daily, rng: "n/a",
    "fewer-days": lambda daily, rng: daily[1:],
    "fewer-days-at-end": lambda daily, rng: daily[:-1],
    "more-days": lambda daily, rng: [*daily, list(daily[-1])],
}


def _bad_entry(fault: Fault, request: Request, account: SandboxAccount, rng: random.Random) -> Intervention:
    def rewrite(body: dict[str, Any]) -> None:
        values = body.get("values") or {}
        candidates = sorted(key_id for key_id, daily in values.items() if daily)
        if candidates:
            key_id = rng.choice(candidates)
            values[key_id] = ENTRY_SHAPES[fault.shape](values[key_id], rng)

    return Intervention(rewrite=rewrite)


def _empty_values(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention:
    def rewrite(body: dict[str, Any]) -> None:
        body["values"] = {}
        body.pop("position", None)

    return Intervention(rewrite=rewrite)


def _plan_deleted(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention | None:
    plan_id = request.params.get("plan")
    if plan_id is None or plan_id not in account.plans:
        return None
    account.delete_usage_plan(plan_id)
    return Intervention()


def _key_deleted(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention | None:
    plan = account.plans.get(request.params.get("plan", ""))
    if plan is None or not plan.key_ids:
        return None
    account.delete_api_key(rng.choice(sorted(plan.key_ids)))
    return Intervention()


def _duplicate_key(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention | None:
    if "position" not in request.query:
        return None  # the first page follows no other
    return Intervention(position_shift=-1)


def _repeat_position(
    fault: Fault, request: Request, account: SandboxAccount, rng: random.Random
) -> Intervention | None:
    position = request.query.get("position")
    if position is None:
        return None

    def rewrite(body: dict[str, Any]) -> None:
        body["position"] = position

    return Intervention(rewrite=rewrite)


_ALL = frozenset(OPERATIONS)
KINDS: dict[str, Kind] = {
    "throttle": Kind(_ALL, _throttle),
    "internal-error": Kind(_ALL, _internal_error),
    "unavailable": Kind(_ALL, _unavailable),
    "connection-reset": Kind(_ALL, _connection_reset),
    "read-timeout": Kind(_ALL, _read_timeout),
    "slow-answer": Kind(_ALL, _slow_answer),
    "malformed-json": Kind(_ALL, _malformed_json),
    "missing-field": Kind(_ALL, _missing_field),
    "bad-number": Kind(frozenset({"GetUsage", "GetUsagePlans"}), _bad_number),
    "bad-entry": Kind(frozenset({"GetUsage"}), _bad_entry),
    "empty-values": Kind(frozenset({"GetUsage"}), _empty_values),
    "plan-deleted": Kind(frozenset({"GetUsage", "GetUsagePlanKeys"}), _plan_deleted),
    "key-deleted": Kind(frozenset({"GetUsage"}), _key_deleted),
    "duplicate-key": Kind(PAGED, _duplicate_key),
    "repeat-position": Kind(PAGED, _repeat_position),
}


# -- the injector ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Injection:
    """One fault injected into one request."""

    fault_id: int
    kind: str
    operation: str
    path: str
    plan_id: str | None


@dataclass
class _Active:
    id: int
    fault: Fault
    injected: int = 0

    @property
    def exhausted(self) -> bool:
        return self.fault.count is not None and self.injected >= self.fault.count


@dataclass
class FaultInjector:
    """The faults a sandbox injects, what it injected, and the seed it draws with. Thread safe."""

    seed: int = 0
    #: Every injection, in order.
    log: list[Injection] = field(default_factory=list)
    _faults: dict[int, _Active] = field(default_factory=dict)
    _seen: Counter[str] = field(default_factory=Counter)
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(
        self,
        kind: str,
        *,
        operation: str = ANY_OPERATION,
        probability: float = 1.0,
        count: int | None = None,
        plan_id: str | None = None,
        **options: Any,
    ) -> int:
        """Inject ``kind`` from now on; returns the fault's id.

        ``options``: ``retry_after``, ``delay``, ``field``, ``value``, ``shape`` (see :class:`Fault`).
        """
        return self.add_fault(
            Fault(kind, operation=operation, probability=probability, count=count, plan_id=plan_id, **options)
        )

    def add_fault(self, fault: Fault) -> int:
        with self._lock:
            fault_id = self._next_id
            self._next_id += 1
            self._faults[fault_id] = _Active(fault_id, fault)
            return fault_id

    def remove(self, fault_id: int) -> None:
        with self._lock:
            if fault_id not in self._faults:
                raise KeyError(fault_id)
            del self._faults[fault_id]

    def reset(self, seed: int | None = None) -> None:
        """No faults (ids start again at 1), nothing injected, every request unseen; optionally a new seed."""
        with self._lock:
            self._faults.clear()
            self._next_id = 1
            self.log.clear()
            self._seen.clear()
            if seed is not None:
                self.seed = seed

    @property
    def injected(self) -> Counter[str]:
        """Injections so far, by kind."""
        with self._lock:
            return Counter(injection.kind for injection in self.log)

    def faults(self) -> list[tuple[int, Fault, int]]:
        """(id, fault, times injected) for every active fault, in the order they were added."""
        with self._lock:
            return [(active.id, active.fault, active.injected) for active in self._faults.values()]

    def describe(self) -> dict[str, Any]:
        """The injector as the HTTP API shows it."""
        with self._lock:
            return {
                "seed": self.seed,
                "faults": [
                    {"id": active.id, **active.fault.as_json(), "injected": active.injected}
                    for active in self._faults.values()
                ],
                "injected": dict(Counter(injection.kind for injection in self.log)),
            }

    def intercept(self, request: Request, account: SandboxAccount) -> list[Intervention]:
        """The interventions for one request, in fault order; at most one replaces the answer."""
        identity = f"{request.method} {request.path}?{sorted(request.query.items())}"
        chosen: list[Intervention] = []
        with self._lock:
            occurrence = self._seen[identity]
            self._seen[identity] += 1
            twins: Counter[Fault] = Counter()
            for active in self._faults.values():
                fault = active.fault
                # Drawn from what the fault is, not from its id, so that the same faults added
                # again (after a reset, or over HTTP) draw the same.
                twins[fault] += 1
                if active.exhausted or not fault.applies_to(request):
                    continue
                rng = random.Random(f"{self.seed}:{fault!r}:{twins[fault]}:{identity}:{occurrence}")
                if rng.random() >= fault.probability:
                    continue
                intervention = KINDS[fault.kind].inject(fault, request, account, rng)
                if intervention is None:
                    continue
                active.injected += 1
                self.log.append(
                    Injection(
                        active.id, fault.kind, request.operation, request.path, request.params.get("plan")
                    )
                )
                chosen.append(intervention)
                if intervention.replaces_answer:
                    break
        return chosen
