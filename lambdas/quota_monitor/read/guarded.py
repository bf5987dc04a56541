"""The API Gateway client every run reads with: the monitor's rate limit, retries, the run's
deadline and, with the fast path on, the API budget both paths share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quota_monitor.invocation import REAL_TIME
from quota_monitor.read.budget import BudgetLimiter
from quota_monitor.read.calls import ApiGatewayCalls, RetryPolicy
from quota_monitor.read.limiter import RateLimiter, usable_burst

if TYPE_CHECKING:
    from collections.abc import Callable

    from quota_monitor.config import ScanSettings
    from quota_monitor.invocation import Clocks, Invocation
    from quota_monitor.read.budget import SharedBudget
    from quota_monitor.read.calls import ApiGatewayClient, FailedAttempt
    from quota_monitor.read.limiter import CallLimiter


def rate_limiter(settings: ScanSettings, clocks: Clocks = REAL_TIME) -> RateLimiter:
    """The monitor's limiter: ``APIGATEWAY_MAX_RPS``, and ``APIGATEWAY_BURST`` at most the account's
    burst less the calls its threads can have on their way (:func:`usable_burst`)."""
    burst = usable_burst(settings.burst, in_flight=settings.max_workers)
    return RateLimiter(settings.max_rps, burst, clock=clocks.monotonic, sleep=clocks.sleep)


def guarded_api(
    client: ApiGatewayClient,
    settings: ScanSettings,
    run: Invocation | None = None,
    *,
    on_failed_attempt: Callable[[FailedAttempt], None] | None = None,
    budget: SharedBudget | None = None,
    budget_calls: int | None = None,
) -> ApiGatewayCalls:
    """The API Gateway client behind the monitor's rate limit and retry policy, starting no call once
    ``run`` is past its time for calls (none: the CLI's, which has no deadline).

    ``on_failed_attempt`` hears of every attempt that failed with an error the policy retries (the
    CLI says from it when API Gateway cannot be reached). With ``budget``, every call also takes a
    slot of the budget the monitor's runs share (:mod:`quota_monitor.read.budget`); with
    ``budget_calls`` (the fast path), none is made without one, and that many are reserved ahead of
    the full scan's.
    """
    clocks = run.clocks if run is not None else REAL_TIME
    deadline = run.calls_over if run is not None else None
    local = rate_limiter(settings, clocks)
    limiter: CallLimiter = local
    if budget is not None:
        limiter = BudgetLimiter(
            local,
            budget,
            required=budget_calls is not None,
            expected=budget_calls,
            clock=clocks.wall,
            sleep=clocks.sleep,
            deadline=deadline,
        )
    return ApiGatewayCalls(
        client,
        limiter=limiter,
        policy=RetryPolicy(max_attempts=settings.max_attempts),
        deadline=deadline,
        sleep=clocks.sleep,
        clock=clocks.monotonic,
        on_failed_attempt=on_failed_attempt,
    )


def finish_budget(api: ApiGatewayCalls) -> str | None:
    """A scan's calls are done: give its unused slots of the shared budget back; why the budget
    could not be used, if it could not (None without a shared budget)."""
    limiter = api.limiter
    if not isinstance(limiter, BudgetLimiter):
        return None
    limiter.finish()
    return limiter.error
