"""The routing dispatcher: the `Dispatcher` contract (upstream wait in `ctx.upstream_s`, the
answering deployment in `ctx.deployment`, `ctx.attempts` per deployment tried) with
strategies, retries, fallbacks, circuit breakers and adaptive limits behind it.

Streams commit to a deployment at its first content event. Until then nothing has reached
the client, so an error, a cut or a stall (no content within `first_token_timeout`) moves
on to the next deployment; after it, a failure is raised and the interface ends the stream
with an explicit error event.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from ...core import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorKind,
    GatewayError,
    StreamEvent,
)
from ...providers.base import Deployment, Dialect
from ...providers.http import HttpClient
from ...providers.registry import Registry
from ..context import RequestContext
from ..dispatch import CONTENT_EVENTS, Dispatcher, timed
from ..router import Router
from .attempts import Run
from .breaker import BreakerStore, InProcessBreakers
from .policy import GroupPolicy, RoutingPolicy
from .stats import StatsBook
from .strategies import build_strategies

T = TypeVar("T")
Call = Callable[[Dialect, Deployment], Awaitable[T]]


class RoutingDispatcher(Dispatcher):
    def __init__(
        self, router: Router, registry: Registry, http: HttpClient, policy: RoutingPolicy,
        breakers: BreakerStore | None = None, *, rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        super().__init__(router, registry, http)
        self.policy = policy
        self.breakers: BreakerStore = breakers or InProcessBreakers(policy.breaker)
        self.stats = StatsBook(policy.max_parallel_requests)
        self.rng = rng or random.Random()
        self.strategies = build_strategies(self.stats, self.rng)
        self.clock = clock
        self.sleep = sleep

    def canonical(self, model: str) -> str:
        """`model` with aliases followed, stopping at a complexity group (itself an alias, for
        the stages that only need its worst case)."""
        aliases = self.router.settings.aliases
        for _ in range(len(aliases) + 1):  # bounded: aliases may loop
            if model in self.policy.complexity or model not in aliases:
                return model
            model = aliases[model]
        return model

    def backoff(self, gp: GroupPolicy, retry: int) -> float:
        """Exponential backoff with full jitter (AWS's): uniform in [0, min(cap, base * 2^(n-1))]."""
        return self.rng.uniform(0.0, min(gp.backoff_max, gp.backoff_base * 2 ** (retry - 1)))

    # ---- whole answers -------------------------------------------------------------------------

    async def chat(self, req: ChatRequest, ctx: RequestContext) -> ChatResponse:
        return await self._call(req, ctx, lambda dialect, dep: dialect.chat(self.http, req, dep))

    async def embed(self, req: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
        return await self._call(req, ctx, lambda dialect, dep: dialect.embed(self.http, req, dep))

    async def _call(self, req: ChatRequest | EmbeddingRequest, ctx: RequestContext, call: Call[T]) -> T:
        run = Run(self, req, ctx)
        clock = time.perf_counter
        while True:
            dep = await run.next()
            t0 = clock()
            try:
                result = await self._bounded(call(self.registry.dialect(dep.dialect), dep), run.deadline)
            except GatewayError as err:
                ctx.upstream_s += clock() - t0
                await run.failed(err)
                continue
            except BaseException:
                ctx.upstream_s += clock() - t0
                await run.abandoned()
                raise
            ctx.upstream_s += clock() - t0
            await run.succeeded()
            return result

    async def _bounded(self, call: Awaitable[T], deadline: float) -> T:
        if math.isinf(deadline):
            return await call
        try:
            async with asyncio.timeout(max(0.0, deadline - self.clock())):
                return await call
        except TimeoutError as exc:
            raise GatewayError(ErrorKind.timeout, "the request's time limit ran out") from exc

    # ---- streams -----------------------------------------------------------------------------

    async def stream(self, req: ChatRequest, ctx: RequestContext) -> AsyncIterator[StreamEvent]:  # type: ignore[override]
        run = Run(self, req, ctx, stream=True)
        while True:
            dep = await run.next()
            events = timed(self.registry.dialect(dep.dialect).stream(self.http, req, dep), ctx)
            try:
                head = await self._head(events, run)
                break
            except GatewayError as err:
                await events.aclose()  # type: ignore[attr-defined]
                await run.failed(err)
            except BaseException:
                await events.aclose()  # type: ignore[attr-defined]
                await run.abandoned()
                raise
        ttft = self.clock() - run.started
        reported = False
        try:
            for event in head:
                yield event
            deadline = run.deadline
            async for event in events:
                yield event
                if deadline < math.inf and self.clock() > deadline:
                    raise GatewayError(ErrorKind.timeout, "the request's time limit ran out mid-stream")
        except GatewayError as err:
            reported = True
            await run.failed(err, committed=True)  # always raises: content already went out
        else:
            reported = True
            await run.succeeded(ttft)
        finally:
            await events.aclose()  # type: ignore[attr-defined]
            if not reported:  # the client went away
                await run.abandoned()

    async def _head(self, events: AsyncIterator[StreamEvent], run: Run) -> list[StreamEvent]:
        """Events up to and including the first content event (or the whole stream when it
        has none), within the first-token timeout and the request's deadline."""
        limit = run.gp.first_token_timeout
        remaining = run.deadline - self.clock()
        if limit is None or remaining < limit:
            limit = None if math.isinf(remaining) else max(0.0, remaining)
        head: list[StreamEvent] = []
        try:
            async with asyncio.timeout(limit):
                async for event in events:
                    head.append(event)
                    if type(event) in CONTENT_EVENTS:
                        break
        except TimeoutError as exc:
            raise GatewayError(ErrorKind.timeout, f"no first token within {limit:g}s") from exc
        return head
