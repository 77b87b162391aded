"""Money budgets: which apply to a request, what it must hold, and the events they raise.

Before the call the request's WORST-CASE cost (estimated input x input price + max output x
output price, on the dearest deployment that may serve it) is reserved against every budget
that applies, in the same atomic step as the rate limits (`admission.LimitsAndBudgets`); after
the call, success or not, each reservation is settled to the true cost. Concurrent requests
therefore cannot overspend: the sum of what is spent and held never passes the cap. A call
whose price is unknown is refused unless `budgets_settings.unknown_price: allow`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple

from ...core import ErrorKind, GatewayError
from ..context import RequestContext
from ..router import Router
from ..state import SharedState
from ..state.memory import MemoryState
from .estimate import NANO, Request, actual_usd, to_nano, worst_case_usd
from .periods import bounds, counter_ttl_s, period_tag
from .plans import Plans
from .spec import BudgetSpec, Subjects, key_budget
from .store import BudgetStore

log = logging.getLogger("aistrata.budgets")
Clock = Callable[[], datetime]
MAX_COUNTERS = 100_000  # counter keys remembered (one per budget and subject)


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    kind: str                  # "soft_limit" (crossed, once per period) | "exhausted" (a call refused)
    budget: str                # e.g. "team:kids monthly"
    spent_usd: float
    max_usd: float
    soft_usd: float | None
    at: datetime
    scope: str = ""            # "team", "key", ...
    subject: str = ""          # the team's, key's, ... id


class Held(NamedTuple):  # one per budget per request: a tuple is the cheapest record to build
    spec: BudgetSpec
    subject: str
    key: str
    ttl_s: float | None
    cap: int               # nano-dollars


class Holds(NamedTuple):
    held: list[Held]
    worst_usd: float       # the most the call may cost
    amount: int            # that, in nano-dollars, rounded up


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class BudgetGuard:
    def __init__(
        self, configured: list[BudgetSpec], store: BudgetStore | None, state: SharedState, router: Router, *,
        team_orgs: dict[str, str], unknown_price: str = "deny", default_max_tokens: int = 4096,
        hold_s: float = 900.0, refresh_s: float = 5.0, clock: Clock = utc_now,
    ) -> None:
        self.configured = configured
        self.store = store
        self.state = state
        self.router = router
        self.team_orgs = team_orgs
        self.allow_unknown = unknown_price == "allow"
        self.default_max_tokens = default_max_tokens
        self.hold_s = hold_s  # longer than any call may run: a hold outliving it is a crashed replica's
        self.refresh_s = refresh_s
        self.clock = clock
        self.events: deque[BudgetEvent] = deque(maxlen=1000)
        self.counts: Counter[str] = Counter()
        self.hooks: list[Callable[[BudgetEvent], None]] = []
        self._stored: list[BudgetSpec] = []
        # In-process counters start at zero after a restart: seed each period's counter once from
        # the request log. (Redis keeps its counters across gateway restarts.)
        self._seeds: dict[str, asyncio.Future[None]] | None = {} if isinstance(state, MemoryState) else None
        self._counters: dict[tuple[str, str, str, str], tuple[str, datetime | None, datetime | None]] = {}
        self._loaded_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self.plans: Plans[list[tuple[BudgetSpec, str, int]]] = Plans(self._plan)
        if store is not None:
            self.reload()

    # -- which budgets ---------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the budgets made through the API (blocking: call it in a thread)."""
        if self.store is not None:
            self._stored = self.store.list()
            # Every refresh starts the plans again, so one made from the old list in a race
            # with this thread lives no longer than `refresh_s`, as on any other replica.
            self.plans.clear()
        self._loaded_at = time.monotonic()

    def _reload_quietly(self) -> None:
        try:
            self.reload()
        except Exception:  # noqa: BLE001 - keep the budgets we have; the next refresh tries again
            log.exception("could not re-read budgets from the database")

    def specs(self) -> list[BudgetSpec]:
        return self.configured + self._stored

    def _refresh_soon(self) -> None:
        # Other replicas' API changes arrive within `refresh_s`, read off the request path.
        if self.store is None or time.monotonic() - self._loaded_at < self.refresh_s:
            return
        if self._refreshing is None or self._refreshing.done():
            self._loaded_at = time.monotonic()
            self._refreshing = asyncio.ensure_future(asyncio.to_thread(self._reload_quietly))

    def applicable(self, subjects: Subjects, key_meta: dict[str, Any]) -> list[tuple[BudgetSpec, str]]:
        specs = self.specs()
        own = key_budget(subjects.key, key_meta) if subjects.key and key_meta else None
        if own is not None:
            specs = [*specs, own]
        return [(spec, subject) for spec in specs if (subject := spec.subject(subjects)) is not None]

    def _plan(self, ctx: RequestContext, model: str) -> list[tuple[BudgetSpec, str, int]]:
        """The budgets that apply, each with its subject and cap in nano-dollars."""
        subjects = Subjects.for_request(ctx, model, self.team_orgs)
        found = self.applicable(subjects, ctx.principal.key.metadata if ctx.principal.key else {})
        return [(spec, subject, to_nano(spec.max_usd)) for spec, subject in found]

    def counter(self, spec: BudgetSpec, subject: str, now: datetime) -> tuple[str, float | None]:
        """The state key of this budget's counter in the period holding `now`, and its TTL.
        Kept until the period ends: computing period bounds costs more than the rest of a check."""
        ident = (spec.budget_id or spec.origin, spec.scope, subject, spec.period)
        found = self._counters.get(ident)
        if found is None or (found[1] is not None and not found[1] <= now < found[2]):  # type: ignore[operator]
            if len(self._counters) > MAX_COUNTERS:
                self._counters.clear()
            start, end = bounds(spec.period, now)
            found = self._counters[ident] = (f"budget:{':'.join(ident[:3])}:{spec.period}:{period_tag(start)}",
                                             start, end)
        return found[0], counter_ttl_s(found[2], now)

    def _seeding(self, spec: BudgetSpec, subject: str, key: str, ttl: float | None,
                 now: datetime) -> asyncio.Future[None] | None:
        """The read that makes this counter hold what the log says was spent, while it runs
        (started by the counter's first request; concurrent first requests wait on the same
        read); None once it is done, which is the common case, checked without awaiting."""
        if self._seeds is None or self.store is None:
            return None
        seed = self._seeds.get(key)
        if seed is None:
            seed = self._seeds[key] = asyncio.ensure_future(self._seed(spec, subject, key, ttl, now))
        return None if seed.done() else seed

    async def _seed(self, spec: BudgetSpec, subject: str, key: str, ttl: float | None, now: datetime) -> None:
        assert self.store is not None
        start, _ = bounds(spec.period, now)
        since = int(start.timestamp() * 1000) if start else 0
        try:
            spent = await asyncio.to_thread(self.store.spent_since, spec.scope, subject, since)
        except Exception:  # noqa: BLE001 - a missing log must not stop traffic; counted from zero
            log.exception("could not read past spend for budget %s", spec.label(subject))
            return
        if spent:
            rid = f"seed:{key}"
            await self.state.reserve(key, rid, 0, 1 << 62, self.hold_s, ttl)
            await self.state.settle(key, rid, to_nano(spent), ttl)

    # -- admission: `admission.LimitsAndBudgets` holds and settles these with the rate limits --

    async def holds(self, req: Request, ctx: RequestContext) -> Holds | None:
        """What this request must hold: the applicable budgets' counters and its worst-case cost;
        None when no budget applies."""
        self._refresh_soon()
        found = self.plans.get(ctx, req.model)
        if not found:
            return None
        worst = worst_case_usd(req, self.router.resolve(req.model), self.default_max_tokens, ctx.estimates)
        if worst is None:
            if not self.allow_unknown:
                spec, subject, _ = found[0]
                raise GatewayError(
                    ErrorKind.budget_exceeded,
                    f"budget '{spec.label(subject)}' cannot be checked: the price of model '{req.model}' is "
                    "unknown (set budgets_settings.unknown_price: allow to admit such calls)")
            worst = 0.0
        now = self.clock()
        held: list[Held] = []
        for spec, subject, cap in found:
            key, ttl = self.counter(spec, subject, now)
            seeding = self._seeding(spec, subject, key, ttl, now)
            if seeding is not None:
                await asyncio.shield(seeding)
            held.append(Held(spec, subject, key, ttl, cap))
        return Holds(held, worst, to_nano(worst, up=True))

    def refused(self, h: Held, used: int, reserved: int, worst: float) -> GatewayError:
        self._emit("exhausted", h.spec, h.subject, used)
        return GatewayError(ErrorKind.budget_exceeded, refusal(h.spec, h.subject, used, reserved, worst))

    @staticmethod
    def spent(ctx: RequestContext) -> int:
        """What the call cost, in the counters' nano-dollars."""
        cost = actual_usd(ctx)
        if cost is None:  # only reachable with unknown_price: allow
            log.warning("request %s: price of %s unknown, counted as $0", ctx.id, ctx.requested_model)
            cost = 0.0
        return to_nano(cost)

    def settled(self, held: list[Held], used: list[int], n: int) -> None:
        """After the holds were settled to `n`: a soft limit crossed by exactly this call raises
        its event."""
        for h, total in zip(held, used):
            soft = h.spec.soft_usd
            if soft is not None and total - n < to_nano(soft) <= total:
                self._emit("soft_limit", h.spec, h.subject, total)

    def _emit(self, kind: str, spec: BudgetSpec, subject: str, used: int) -> None:
        event = BudgetEvent(kind, spec.label(subject), used / NANO, spec.max_usd, spec.soft_usd, self.clock(),
                            spec.scope, subject)
        self.events.append(event)
        self.counts[kind] += 1
        if kind == "soft_limit":
            log.warning("budget '%s' passed its soft limit: $%.2f of $%.2f", event.budget, event.spent_usd, spec.max_usd)
        for hook in self.hooks:
            try:
                hook(event)
            except Exception:  # noqa: BLE001 - an alerting hook must never fail a request
                log.exception("budget event hook failed")

    async def usage(self, subjects: Subjects, scope: str) -> list[dict[str, Any]]:
        """Spend and holds of each budget of `scope` that applies to `subjects`."""
        now = self.clock()
        out = []
        for spec, subject in self.applicable(subjects, {}):
            if spec.scope != scope:
                continue
            key, _ = self.counter(spec, subject, now)
            used, reserved = await self.state.reservation(key)
            start, end = bounds(spec.period, now)
            out.append({**spec.as_json(), "subject": subject, "spent_usd": used / NANO, "reserved_usd": reserved / NANO,
                        "period_start": start.isoformat() if start else None,
                        "period_end": end.isoformat() if end else None})
        return out


def refusal(spec: BudgetSpec, subject: str, used: int, reserved: int, worst: float) -> str:
    name = spec.label(subject)
    if used >= to_nano(spec.max_usd):
        return f"budget '{name}' is spent: ${used / NANO:.2f} of ${spec.max_usd:.2f}"
    return (f"budget '{name}' cannot cover this call: ${used / NANO:.2f} spent and ${reserved / NANO:.2f} held by "
            f"calls in flight, of ${spec.max_usd:.2f}; this call may cost up to ${worst:.4f}")
