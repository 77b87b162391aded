"""The rate-limit admission stage: requests, input/output/total tokens per minute and
concurrent requests, per key, user, team, org, model and key x model.

All the sliding windows a request counts against (every rule, every dimension) are one atomic,
all-or-nothing add on the shared state; token buckets and concurrency slots are one atomic step
each. Input tokens are counted before the call and output tokens reserved at `max_tokens`; the
settle callback corrects both to the true usage (a failed call gives its tokens back). When a
later step refuses, what earlier ones took is given back, so a refused request costs nobody anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Awaitable, Callable

from ...core import ErrorKind, GatewayError
from ..context import RequestContext
from ..router import Router
from ..state import SharedState
from .estimate import Request, input_tokens, max_output_tokens
from .headers import RateReport
from .spec import LimitRule, Subjects, key_limits

WINDOW_S = 60.0
Settle = Callable[[RequestContext], Awaitable[None]]


@dataclass(slots=True)
class Taken:
    rule: LimitRule
    dimension: str
    key: str
    amount: int
    slot: int = 0          # sliding-window sub-window, for corrections
    token: str = ""        # concurrency slot


class RateLimiter:
    def __init__(self, rules: list[LimitRule], state: SharedState, router: Router, *,
                 team_orgs: dict[str, str], default_max_tokens: int = 4096, slot_ttl_s: float = 600.0) -> None:
        self.rules = rules
        self.state = state
        self.router = router
        self.team_orgs = team_orgs
        self.default_max_tokens = default_max_tokens
        self.slot_ttl_s = slot_ttl_s

    def applicable(self, subjects: Subjects, metadata: dict[str, Any]) -> list[tuple[LimitRule, str]]:
        rules = self.rules + key_limits(metadata) if metadata else self.rules
        found = []
        for rule in rules:
            subject = rule.subject(subjects)
            if subject is not None:
                found.append((rule, subject))
        return found

    async def admit(self, req: Request, ctx: RequestContext) -> Settle | None:
        subjects = Subjects.for_request(ctx, req.model, self.team_orgs)
        rules = self.applicable(subjects, ctx.principal.key.metadata if ctx.principal.key else {})
        if not rules:
            return None
        amounts = self._amounts(req, rules, ctx)
        taken: list[Taken] = []
        report = RateReport()
        try:
            # Every sliding window of the request in one atomic step (one Redis round trip).
            windows = [(rule, subject, dimension, cap) for rule, subject in rules if rule.algorithm != "token_bucket"
                       for dimension, cap in rule.caps.items()]
            if windows:
                taken += await self._add_windows(windows, amounts, report)
            for rule, subject in rules:
                if rule.algorithm == "token_bucket":
                    for dimension, cap in rule.caps.items():
                        taken.append(await self._take_bucket(rule, subject, dimension, cap, amounts[dimension], report))
                if rule.concurrent is not None:
                    taken.append(await self._acquire(rule, subject))
        except GatewayError:
            await self._give_back(taken, {d: 0 for d in amounts})  # a refused request costs nothing
            ctx.headers.extend(report.headers())
            raise
        ctx.headers.extend(report.headers())

        async def settle(ctx: RequestContext) -> None:
            u = ctx.usage
            actual = {"requests": 1, "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                      "tokens": u.input_tokens + u.output_tokens}
            await self._give_back(taken, actual)

        return settle

    def _amounts(self, req: Request, rules: list[tuple[LimitRule, str]], ctx: RequestContext) -> dict[str, int]:
        amounts = {"requests": 1, "input_tokens": 0, "output_tokens": 0, "tokens": 0}
        if any(rule.counts_tokens for rule, _ in rules):
            dep = self.router.resolve(req.model)[0]
            amounts["input_tokens"] = input_tokens(req, dep.model, ctx.estimates)
            amounts["output_tokens"] = max_output_tokens(req, dep, self.default_max_tokens)
            amounts["tokens"] = amounts["input_tokens"] + amounts["output_tokens"]
        return amounts

    async def _add_windows(self, windows: list[tuple[LimitRule, str, str, int]], amounts: dict[str, int],
                           report: RateReport) -> list[Taken]:
        keys = [counter_key(rule, subject, dimension) for rule, subject, dimension, _ in windows]
        results = await self.state.windows_add(
            [(key, amounts[dimension], cap) for key, (_, _, dimension, cap) in zip(keys, windows)], WINDOW_S)
        refused = next((i for i, w in enumerate(results) if not w.allowed), None)
        for (_, _, dimension, cap), w in zip(windows, results):
            if refused is None:
                report.note(dimension, cap, cap - w.used, WINDOW_S)
            elif not w.allowed:
                report.note(dimension, cap, 0, w.retry_after if w.retry_after >= 0 else WINDOW_S)
        if refused is not None:
            rule, subject, dimension, cap = windows[refused]
            raise _refusal(rule, subject, dimension, cap, amounts[dimension], results[refused].retry_after)
        return [Taken(rule, dimension, key, amounts[dimension], slot=w.slot)
                for (rule, _, dimension, _), key, w in zip(windows, keys, results)]

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

    async def _give_back(self, taken: list[Taken], actual: dict[str, int]) -> None:
        """Release slots and correct each counter from what was taken to what was used."""
        windows = []
        for t in reversed(taken):
            if t.dimension == "concurrent":
                await self.state.slot_release(t.key, t.token)
                continue
            delta = actual[t.dimension] - t.amount
            if delta == 0:
                continue
            if t.rule.algorithm == "token_bucket":
                cap = t.rule.caps[t.dimension]
                await self.state.bucket_take(t.key, delta, cap, cap / WINDOW_S, force=True)
            else:
                windows.append((t.key, t.slot, delta))
        if windows:
            await self.state.windows_adjust(windows, WINDOW_S)

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


def _refusal(rule: LimitRule, subject: str, dimension: str, cap: int, amount: int, retry: float) -> GatewayError:
    detail = (f"this request needs {amount}, more than the limit allows at once" if retry < 0
              else f"retry in {retry:.1f}s")
    return GatewayError(ErrorKind.rate_limit,
                        f"rate limit '{label(rule, subject)} {dimension} per minute' reached: "
                        f"limit {cap} ({detail})", retry_after=WINDOW_S if retry < 0 else retry)


def label(rule: LimitRule, subject: str) -> str:
    return f"{rule.scope}:{subject}"
