"""Dispatch: choose a deployment for the request and call it.

This is the stage routing strategies and resilience (retries, fallbacks, circuit breakers)
plug into; its contract is that upstream wait time is added to `ctx.upstream_s`, the
deployment that answered is left in `ctx.deployment`, and a stream only commits to a
deployment once that deployment has produced its first content event.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

from ..core import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UsageReport,
)
from ..providers.base import Deployment, Dialect
from ..providers.http import HttpClient
from ..providers.registry import Registry
from .context import RequestContext
from .router import Router

CONTENT_EVENTS = (TextDelta, ThinkingDelta, ToolCallDelta)


class Dispatcher:
    def __init__(self, router: Router, registry: Registry, http: HttpClient) -> None:
        self.router = router
        self.registry = registry
        self.http = http

    def _choose(self, model: str, ctx: RequestContext) -> tuple[Deployment, Dialect]:
        dep = self.router.pick(model)
        ctx.deployment = dep
        ctx.attempts += 1
        return dep, self.registry.dialect(dep.dialect)

    async def chat(self, req: ChatRequest, ctx: RequestContext) -> ChatResponse:
        dep, dialect = self._choose(req.model, ctx)
        t0 = time.perf_counter()
        try:
            return await dialect.chat(self.http, req, dep)
        finally:
            ctx.upstream_s += time.perf_counter() - t0

    async def embed(self, req: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
        dep, dialect = self._choose(req.model, ctx)
        t0 = time.perf_counter()
        try:
            return await dialect.embed(self.http, req, dep)
        finally:
            ctx.upstream_s += time.perf_counter() - t0

    def stream(self, req: ChatRequest, ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        dep, dialect = self._choose(req.model, ctx)
        return timed(dialect.stream(self.http, req, dep), ctx)


async def timed(events: AsyncIterator[StreamEvent], ctx: RequestContext) -> AsyncIterator[StreamEvent]:
    """Provider events with the wait for each counted as upstream time; notes the first
    token's arrival and the latest usage."""
    it = events.__aiter__()
    clock = time.perf_counter
    try:
        while True:
            t0 = clock()
            try:
                event = await it.__anext__()
            except StopAsyncIteration:
                return
            finally:
                ctx.upstream_s += clock() - t0
            if ctx.first_token_s is None and type(event) in CONTENT_EVENTS:
                ctx.first_token_s = clock() - ctx.started
            if type(event) is UsageReport:
                ctx.usage = event.usage
            yield event
    finally:
        await _aclose(it)


async def _aclose(it: Any) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()
