"""Rate limits: requests, input/output/total tokens per minute and concurrent requests, per
key, user, team, org, model and key x model.

All the sliding windows a request counts against (every rule, every dimension) are added in one
atomic, all-or-nothing step on the shared state, together with its budget holds
(`admission.LimitsAndBudgets`); token buckets and concurrency slots are one atomic step each.
Input tokens are counted before the call and output tokens reserved at `max_tokens`; the
settlement corrects both to the true usage (a failed call gives its tokens back). When a later
step refuses, what earlier ones took is given back, so a refused request costs nobody anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from ...core import ErrorKind, GatewayError
from ..context import RequestContext
from ..router import Router
from ..state import SharedState
from ..state.base import WindowResult
from .estimate import Request, input_tokens, max_output_tokens
from .headers import RateReport
from .plans import Plans
from .spec import LimitRule, Subjects, key_limits

WINDOW_S = 60.0


@dataclass(slots=True)
class Taken:
    rule: LimitRule
    dimension: str
    key: str
    amount: int
    slot: int = 0          # sliding-window sub-window, for corrections
    token: str = ""        # concurrency slot


class Window(NamedTuple):
    """One sliding-window counter a request counts against."""

    rule: LimitRule
    subject: str
    dimension: str
    at: int                # the dimension's place in `Amounts`
    cap: int
    key: str


class Plan(NamedTuple):
    """What a caller's requests for one model count against, worked out once (see `Plans`)."""

    windows: tuple[Window, ...]                   # all added in one atomic step
    steps: tuple[tuple[LimitRule, str], ...]      # token buckets and concurrency: a step each
    counts_tokens: bool


DIMENSIONS = ("requests", "input_tokens", "output_tokens", "tokens")
Amounts = tuple[int, int, int, int]  # in `DIMENSIONS` order
NOTHING: Amounts = (0, 0, 0, 0)


class RateLimiter:
    def __init__(self, rules: list[LimitRule], state: SharedState, router: Router, *,
                 team_orgs: dict[str, str], default_max_tokens: int = 4096, slot_ttl_s: float = 600.0) -> None:
        self.rules = rules
        self.state = state
        self.router = router
        self.team_orgs = team_orgs
        self.default_max_tokens = default_max_tokens
        self.slot_ttl_s = slot_ttl_s
        self.plans: Plans[Plan | None] = Plans(self._plan)

    def applicable(self, subjects: Subjects, metadata: dict[str, Any]) -> list[tuple[LimitRule, str]]:
        rules = self.rules + key_limits(metadata) if metadata else self.rules
        found = []
        for rule in rules:
            subject = rule.subject(subjects)
            if subject is not None:
                found.append((rule, subject))
        return found

    def _plan(self, ctx: RequestContext, model: str) -> Plan | None:
        subjects = Subjects.for_request(ctx, model, self.team_orgs)
        rules = self.applicable(subjects, ctx.principal.key.metadata if ctx.principal.key else {})
        if not rules:
            return None
        windows = tuple(Window(rule, subject, dimension, DIMENSIONS.index(dimension), cap,
                               counter_key(rule, subject, dimension))
                        for rule, subject in rules if rule.algorithm != "token_bucket"
                        for dimension, cap in rule.caps.items())
        steps = tuple((rule, subject) for rule, subject in rules
                      if rule.algorithm == "token_bucket" or rule.concurrent is not None)
        return Plan(windows, steps, any(rule.counts_tokens for rule, _ in rules))

    def amounts(self, req: Request, ctx: RequestContext) -> Amounts:
        """What the request counts: one request, its input tokens, at most its output tokens."""
        dep = self.router.resolve(req.model)[0]
        n_in = input_tokens(req, dep.model, ctx.estimates)
        n_out = max_output_tokens(req, dep, self.default_max_tokens)
        return 1, n_in, n_out, n_in + n_out

    async def steps(self, plan: Plan, amounts: Amounts, report: RateReport) -> list[Taken]:
        """The token buckets and concurrency slots, a step each; on a refusal, what the earlier
        ones took is given back."""
        taken: list[Taken] = []
        try:
            for rule, subject in plan.steps:
                if rule.algorithm == "token_bucket":
                    for dimension, cap in rule.caps.items():
                        amount = amounts[DIMENSIONS.index(dimension)]
                        taken.append(await self._take_bucket(rule, subject, dimension, cap, amount, report))
                if rule.concurrent is not None:
                    taken.append(await self._acquire(rule, subject))
        except GatewayError:
            await self.give_back(taken, NOTHING)
            raise
        return taken

    async def _take_bucket(self, rule: LimitRule, subject: str, dimension: str, cap: int, amount: int,
                           report: RateReport) -> Taken:
        key = counter_key(rule, subject, dimension)
        b = await self.state.bucket_take(key, amount, cap, cap / WINDOW_S)
        report.note(dimension, cap, int(b.level) if b.allowed else 0, (cap - b.level) * WINDOW_S / cap)
        if not b.allowed:
            raise _refusal(rule, subject, dimension, cap, amount, b.retry_after)
        return Taken(rule, dimension, key, amount)

    async def _acquire(self, rule: LimitRule, subject: str) -> Taken:
        assert rule.concurrent is not None
        key = counter_key(rule, subject, "concurrent")
        s = await self.state.slot_acquire(key, rule.concurrent, self.slot_ttl_s)
        if not s.allowed:
            raise GatewayError(ErrorKind.rate_limit,
                               f"rate limit '{label(rule, subject)} concurrent' reached: "
                               f"{rule.concurrent} requests in flight", retry_after=1.0)
        return Taken(rule, "concurrent", key, 1, token=s.token)

    async def give_back(self, taken: list[Taken], actual: Amounts) -> None:
        """Release slots and correct each bucket from what was taken to what was used."""
        for t in reversed(taken):
            if t.dimension == "concurrent":
                await self.state.slot_release(t.key, t.token)
                continue
            delta = actual[DIMENSIONS.index(t.dimension)] - t.amount
            if delta != 0:
                cap = t.rule.caps[t.dimension]
                await self.state.bucket_take(t.key, delta, cap, cap / WINDOW_S, force=True)

    async def usage(self, subjects: Subjects, scope: str) -> list[dict[str, Any]]:
        """Current counters of the configured rules that apply to `subjects` in `scope`."""
        out = []
        for rule in self.rules:
            subject = rule.subject(subjects) if rule.scope == scope else None
            if subject is None:
                continue
            counters: dict[str, Any] = {}
            for dimension, cap in rule.caps.items():
                key = counter_key(rule, subject, dimension)
                if rule.algorithm == "token_bucket":
                    level = await self.state.bucket_level(key, cap, cap / WINDOW_S)
                    counters[dimension] = {"limit": cap, "used": round(cap - level)}
                else:
                    counters[dimension] = {"limit": cap, "used": await self.state.window_used(key, WINDOW_S)}
            if rule.concurrent is not None:
                used = await self.state.slots_used(counter_key(rule, subject, "concurrent"))
                counters["concurrent"] = {"limit": rule.concurrent, "used": used}
            out.append({**rule.as_json(), "subject": subject, "counters": counters})
        return out


def counter_key(rule: LimitRule, subject: str, dimension: str) -> str:
    return _counter_key(rule.origin, rule.scope, rule.model, subject, dimension)


@lru_cache(maxsize=65536)  # built for every counter of every request
def _counter_key(origin: str, scope: str, model: str | None, subject: str, dimension: str) -> str:
    model = f":{model}" if model and scope != "key_model" else ""
    return f"rl:{origin}:{scope}:{subject}{model}:{dimension}"


def noted(windows: tuple[Window, ...], results: list[WindowResult], report: RateReport) -> RateReport:
    """`report` with the windows a request was admitted by."""
    for w, r in zip(windows, results):
        report.note(w.dimension, w.cap, w.cap - r.used, WINDOW_S)
    return report


def window_refusal(windows: tuple[Window, ...], results: list[WindowResult], amounts: Amounts,
                    ctx: RequestContext) -> GatewayError:
    """The error for the first window that refused; the headers show every refusing one."""
    report = RateReport()
    for w, r in zip(windows, results):
        if not r.allowed:
            report.note(w.dimension, w.cap, 0, r.retry_after if r.retry_after >= 0 else WINDOW_S)
    ctx.headers.extend(report.headers())
    w, r = next((w, r) for w, r in zip(windows, results) if not r.allowed)
    return _refusal(w.rule, w.subject, w.dimension, w.cap, amounts[w.at], r.retry_after)


def _refusal(rule: LimitRule, subject: str, dimension: str, cap: int, amount: int, retry: float) -> GatewayError:
    detail = (f"this request needs {amount}, more than the limit allows at once" if retry < 0
              else f"retry in {retry:.1f}s")
    return GatewayError(ErrorKind.rate_limit,
                        f"rate limit '{label(rule, subject)} {dimension} per minute' reached: "
                        f"limit {cap} ({detail})", retry_after=WINDOW_S if retry < 0 else retry)


def label(rule: LimitRule, subject: str) -> str:
    return f"{rule.scope}:{subject}"
