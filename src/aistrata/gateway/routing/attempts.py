"""One request's way through its deployments: the group chosen (conditions, then complexity),
the chain of groups to fall back to, and what each failure means.

`Run.next()` hands out the next deployment to call; the dispatcher reports the outcome with
`succeeded()`, `failed(err)` (which raises when nothing is left to try) or `abandoned()`.

- Retryable errors (rate limit, unavailable, timeout) count against the deployment's
  breaker and are retried up to the group's `num_retries`, on a deployment not yet tried
  when there is one, else on the same one after its wait: its `retry-after` when it sent one
  (a longer one than `retry_after_max` rules the deployment out instead), otherwise
  exponential backoff with full jitter. A group out of tries falls back to the next group.
- `context_length` and `content_policy` errors switch to the group's dedicated chain.
- Any other error is the answer: it is raised at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ...core import ChatRequest, EmbeddingRequest, ErrorKind, GatewayError, bad_request
from ...providers.base import Deployment
from ..context import RequestContext
from .breaker import Verdict
from .capability import CONTEXT, RequestProfile, capable
from .complexity import classify
from .conditions import first_match
from .policy import GroupPolicy, strategy_name
from .stats import DeploymentStats

if TYPE_CHECKING:
    from .dispatcher import RoutingDispatcher

DEDICATED_CHAINS = {ErrorKind.context_length: "context_window_fallbacks",
                    ErrorKind.content_policy: "content_policy_fallbacks"}


class Run:
    """The attempt state of one request. Cheap when nothing fails: no lists are built for a
    group whose first pick answers."""

    def __init__(self, d: RoutingDispatcher, req: ChatRequest | EmbeddingRequest, ctx: RequestContext,
                 stream: bool = False) -> None:
        self.d = d
        self.ctx = ctx
        self.profile = RequestProfile(req, stream)
        self.route: dict[str, Any] = ctx.route
        self.excluded: dict[str, str] = {}      # deployment id -> why it is out for this request
        self.not_before: dict[str, float] = {}  # failed deployment id -> earliest retry
        self.last_error: GatewayError | None = None
        self.dep: Deployment | None = None
        self.stats: DeploymentStats | None = None
        self.probe = False
        self.started = 0.0
        self.tries = 0
        self.deps: Sequence[Deployment] | None = None
        options = req.options if isinstance(req, ChatRequest) else {}
        self.strategy_override: str | None = None
        if options.get("routing_strategy"):
            try:
                self.strategy_override = strategy_name(options["routing_strategy"], "routing_strategy")
            except ValueError as exc:
                raise bad_request(str(exc), "routing_strategy") from exc
        self.retries_override: int | None = int(options["num_retries"]) if "num_retries" in options else None
        self.group = self._plan(req)
        self.gp: GroupPolicy = d.policy.group(self.group)
        self.strategy = self.strategy_override or self.gp.strategy
        fallbacks = options.get("fallbacks")
        self.chain: tuple[str, ...] = (self.group, *(fallbacks if isinstance(fallbacks, list) else self.gp.fallbacks))
        self.index = -1
        self.deadline = d.clock() + self.gp.timeout if self.gp.timeout else float("inf")
        self.route["group"] = self.group
        self.route["strategy"] = self.strategy

    def _plan(self, req: ChatRequest | EmbeddingRequest) -> str:
        """The group to start from: condition routes first, then a complexity group's verdict."""
        d, model = self.d, req.model
        if d.policy.rules:
            rule = first_match(d.policy.rules, model, self.ctx)
            if rule is not None:
                self.route["rule"] = {"index": rule.index, "use": rule.use}
                model = rule.use
        name = d.canonical(model)
        rule_c = d.policy.complexity.get(name)
        if rule_c is not None:
            verdict = classify(req)
            simple = verdict.score < rule_c.threshold
            target = rule_c.simple if simple else rule_c.complex
            self.route["complexity"] = {"score": verdict.score, "threshold": rule_c.threshold,
                                        "decision": "simple" if simple else "complex", "group": target,
                                        "features": verdict.features}
            name = d.canonical(target)
        deps = d.router.resolve(name)
        return deps[0].group if deps else name

    # ---- choosing ----------------------------------------------------------------------------

    def _enter(self, index: int) -> bool:
        """Make chain[index] the current group; False when it has no usable deployment."""
        self.index, self.tries, self.deps = index, 0, None
        name = self.chain[index]
        if index:
            self.route.setdefault("fallbacks", []).append(name)
        try:
            deps = self.d.router.resolve(name)
        except GatewayError:
            self.route.setdefault("filtered", {})[name] = "unknown model group"
            return False
        self.group = deps[0].group if deps else name
        self.gp = self.d.policy.group(self.group)
        self.strategy = self.strategy_override or self.gp.strategy
        filtered: dict[str, str] = {}
        kept = capable(deps, self.profile, filtered)
        if filtered:
            self.route.setdefault("filtered", {}).update(filtered)
            self.excluded.update(filtered)
            if not kept and all(r.startswith(CONTEXT) for r in filtered.values()) and self.gp.context_window_fallbacks:
                self._switch(self.gp.context_window_fallbacks, "context_window")
                return False
        if len(kept) > 1 and "candidates" not in self.route:
            self.route["candidates"] = [x.id for x in kept]
        self.deps = kept
        return bool(kept)

    def _switch(self, chain: tuple[str, ...], reason: str) -> None:
        self.route.setdefault("fallback_reasons", []).append(reason)
        self.chain, self.index, self.deps = chain, -1, None

    def _advance(self) -> None:
        """On to the next group of the chain that has a usable deployment; raises at its end."""
        while self.index + 1 < len(self.chain):
            if self._enter(self.index + 1):
                return
        raise self._exhausted()

    def _candidates(self) -> Sequence[Deployment]:
        """The group's deployments still in play, untried ones first."""
        deps = self.deps or ()
        if not self.excluded and not self.not_before:
            return deps
        return [x for x in deps if x.id not in self.excluded and x.id not in self.not_before] or \
            [x for x in deps if x.id not in self.excluded]

    def _choose(self, candidates: Sequence[Deployment]) -> Deployment:
        if len(candidates) == 1:
            return candidates[0]
        if self.not_before and candidates[0].id in self.not_before:  # only retried ones are left
            return min(candidates, key=lambda x: self.not_before[x.id])
        return self.d.strategies[self.strategy].pick(self.group, candidates, self.profile)

    async def next(self) -> Deployment:
        d = self.d
        while True:
            retries = self.gp.num_retries if self.retries_override is None else self.retries_override
            if self.deps is None or self.tries > retries:
                self._advance()
            candidates = self._candidates()
            if not candidates:
                self.deps = None
                continue
            dep = self._choose(candidates)
            await self._wait(dep)
            stats = d.stats(dep)
            if not stats.admits():
                self.excluded[dep.id] = self._note(dep, f"at its adaptive limit ({stats.limit:g} in flight)")
                continue
            verdict = await d.breakers.admit(dep.id, d.clock())
            if verdict is Verdict.refuse:
                self.excluded[dep.id] = self._note(dep, "circuit open")
                continue
            self.probe = verdict is Verdict.probe
            self.tries += 1
            self.dep, self.stats = dep, stats
            stats.in_flight += 1
            self.started = d.clock()
            self.ctx.attempts += 1
            self.ctx.deployment = dep
            return dep

    def _note(self, dep: Deployment, reason: str) -> str:
        self.route.setdefault("filtered", {})[dep.id] = reason
        return reason

    async def _wait(self, dep: Deployment) -> None:
        at = self.not_before.get(dep.id)
        if at is None:
            return
        now = self.d.clock()
        if at > self.deadline:
            assert self.last_error is not None
            raise self.last_error
        if at > now:
            self.route["attempts"][-1]["wait_s"] = round(at - now, 3)
            await self.d.sleep(at - now)
            self.ctx.upstream_s += at - now  # waiting out the provider's retry-after is upstream time

    def _exhausted(self) -> GatewayError:
        if self.last_error is not None:
            return self.last_error
        filtered = self.route.get("filtered") or {}
        if filtered and all(r.startswith(CONTEXT) for r in filtered.values()):
            return GatewayError(ErrorKind.context_length,
                                f"the request is longer than every deployment of '{self.chain[0]}' accepts")
        reasons = "; ".join(f"{k}: {v}" for k, v in filtered.items())
        busy = not filtered or any(r.startswith(("circuit", "at its")) for r in filtered.values())
        if busy:  # breakers open or limits reached: try again later
            return GatewayError(ErrorKind.upstream_unavailable, f"no deployment of '{self.chain[0]}' is available "
                                f"({reasons})", retry_after=self.d.policy.breaker.cooldown_s)
        return GatewayError(ErrorKind.bad_request, f"no deployment of '{self.chain[0]}' can serve this request ({reasons})")

    # ---- outcomes ----------------------------------------------------------------------------

    def _release(self) -> tuple[Deployment, DeploymentStats, float]:
        assert self.dep is not None and self.stats is not None
        self.stats.in_flight -= 1
        return self.dep, self.stats, self.d.clock()

    async def succeeded(self, ttft_s: float | None = None) -> None:
        dep, stats, now = self._release()
        stats.observe(now - self.started, ttft_s)
        stats.succeeded()
        if self.probe:
            await self.d.breakers.succeeded(dep.id, now, True)
        self.route["chosen"] = dep.id

    async def abandoned(self) -> None:
        dep, _, _ = self._release()
        if self.probe:
            await self.d.breakers.abandoned(dep.id, True)

    async def failed(self, err: GatewayError, committed: bool = False) -> None:
        """Account for a failed attempt; raises `err` (or the last error) when the request
        cannot go on. `committed`: content already reached the client, so it cannot."""
        dep, stats, now = self._release()
        self.route.setdefault("attempts", []).append(
            {"deployment": dep.id, "group": self.group, "error": err.kind.value})
        if not err.retryable:
            if self.probe:  # the deployment answered: it is up, whatever it thought of the request
                await self.d.breakers.succeeded(dep.id, now, True)
            field = DEDICATED_CHAINS.get(err.kind)
            chain = getattr(self.gp, field) if field and not committed else None
            reason = field.removesuffix("_fallbacks") if field else ""
            if not chain or reason in self.route.get("fallback_reasons", ()):  # once: configs may loop
                raise err
            self._switch(chain, reason)
            self.last_error = err
            return
        await self.d.breakers.failed(dep.id, now, self.probe)
        if err.kind is ErrorKind.rate_limit:
            stats.throttled(self.started, now)
        if committed:
            raise err
        if err.kind is ErrorKind.timeout:
            stats.observe(now - self.started)  # slowness must count against latency routing
        self.last_error = err
        self.route["retries"] = self.route.get("retries", 0) + 1
        if err.retry_after is not None and err.retry_after > self.gp.retry_after_max:
            self.excluded[dep.id] = self._note(dep, f"retry-after {err.retry_after:g}s over the cap")
            return
        wait = err.retry_after if err.retry_after is not None else self.d.backoff(self.gp, self.route["retries"])
        self.not_before[dep.id] = now + wait
