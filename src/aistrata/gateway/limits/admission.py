"""The limits-and-budgets admission stage: what a request counts against, charged in one step.

Every sliding window of the request's rate limits and every budget reservation are one atomic,
all-or-nothing step on the shared state (one Lua script, one Redis round trip), and after the
call one more step corrects the windows to the true token counts and settles the reservations
to the true cost. A request refused by any counter has charged none of them. Token buckets and
concurrency slots (`RateLimiter.steps`) follow the combined step, each one step of its own.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from ...core import GatewayError
from ..context import RequestContext
from ..state import SharedState
from ..state.base import WindowResult
from .budget import BudgetGuard, Holds
from .estimate import Request
from .headers import RateReport
from .rate import NOTHING, WINDOW_S, Amounts, RateLimiter, Taken, Window, noted, window_refusal

Settle = Callable[[RequestContext], Awaitable[None]]
ONE_REQUEST: Amounts = (1, 0, 0, 0)


class LimitsAndBudgets:
    def __init__(self, limiter: RateLimiter, budgets: BudgetGuard, state: SharedState) -> None:
        self.limiter = limiter
        self.budgets = budgets
        self.state = state

    async def admit(self, req: Request, ctx: RequestContext) -> Settle | None:
        plan = self.limiter.plans.get(ctx, req.model)
        holds = await self.budgets.holds(req, ctx)
        if plan is None and holds is None:
            return None
        amounts = self.limiter.amounts(req, ctx) if plan is not None and plan.counts_tokens else ONE_REQUEST
        windows: tuple[Window, ...] = plan.windows if plan is not None else ()
        results: list[WindowResult] = []
        if windows or holds is not None:
            results = await self._charge(windows, amounts, holds, ctx)
        report = RateReport()
        taken: list[Taken] = []
        if plan is not None and plan.steps:
            try:
                taken = await self.limiter.steps(plan, amounts, report)
            except GatewayError:
                await self._settle(windows, results, amounts, NOTHING, holds, 0, ctx.id)  # costs nobody anything
                ctx.headers.extend(noted(windows, results, report).headers())
                raise
        ctx.headers.extend(noted(windows, results, report).headers())

        async def settle(ctx: RequestContext) -> None:
            u = ctx.usage
            actual = (1, u.input_tokens, u.output_tokens, u.input_tokens + u.output_tokens)
            if taken:
                await self.limiter.give_back(taken, actual)
            await self._settle(windows, results, amounts, actual, holds, self.budgets.spent(ctx) if holds else 0,
                               ctx.id)

        return settle

    async def _charge(self, windows: tuple[Window, ...], amounts: Amounts, holds: Holds | None,
                      ctx: RequestContext) -> list[WindowResult]:
        held = holds.held if holds is not None else []
        got = await self.state.admit([(w.key, amounts[w.at], w.cap) for w in windows], WINDOW_S,
                                     [(h.key, h.cap, h.ttl_s) for h in held], ctx.id,
                                     holds.amount if holds is not None else 0, self.budgets.hold_s)
        if not all(r.allowed for r in got.windows):
            raise window_refusal(windows, got.windows, amounts, ctx)
        if got.refused >= 0:
            assert holds is not None
            ctx.headers.extend(noted(windows, got.windows, RateReport()).headers())
            raise self.budgets.refused(held[got.refused], got.used, got.reserved, holds.worst_usd)
        return got.windows

    async def _settle(self, windows: tuple[Window, ...], results: list[WindowResult], amounts: Amounts,
                      actual: Amounts, holds: Holds | None, spent: int, rid: str) -> None:
        """Windows corrected from what was counted to `actual`, holds settled to `spent`."""
        adjust = [(w.key, r.slot, delta) for w, r in zip(windows, results) if (delta := actual[w.at] - amounts[w.at])]
        held = holds.held if holds is not None else []
        if not adjust and not held:
            return
        used = await self.state.release(adjust, WINDOW_S, [(h.key, h.ttl_s) for h in held], rid, spent)
        if held:
            self.budgets.settled(held, used, spent)
