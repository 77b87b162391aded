"""The request pipeline: route, call the provider, account, record.

The interface layer parses the client's dialect into core types, hands them here with a
`RequestContext`, and renders what comes back. Every request ends in `finish()`, which turns
the context into a record for the recorder; that is the only thing the hot path does for
observability, and it never waits.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Protocol

from ..core import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorKind,
    GatewayError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UsageReport,
)
from ..providers.http import HttpClient
from ..providers.registry import Registry
from .context import RequestContext
from .router import Router


class Recorder(Protocol):
    def record(self, ctx: RequestContext) -> None: ...


class Gateway:
    def __init__(self, router: Router, registry: Registry, http: HttpClient, recorder: Recorder) -> None:
        self.router = router
        self.registry = registry
        self.http = http
        self.recorder = recorder

    def _prepare(self, model: str, ctx: RequestContext) -> Any:
        ctx.requested_model = model
        ctx.principal.check_model(model)
        dep = self.router.pick(model)
        ctx.deployment = dep
        return dep, self.registry.dialect(dep.dialect)

    async def chat(self, req: ChatRequest, ctx: RequestContext) -> ChatResponse:
        dep, dialect = self._prepare(req.model, ctx)
        t0 = time.perf_counter()
        try:
            resp = await dialect.chat(self.http, req, dep)
        finally:
            ctx.upstream_s += time.perf_counter() - t0
        ctx.usage = resp.usage
        return resp

    async def stream(self, req: ChatRequest, ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        """Provider events, timed: the wait for each one counts as upstream time."""
        dep, dialect = self._prepare(req.model, ctx)
        ctx.stream = True
        events = dialect.stream(self.http, req, dep).__aiter__()
        clock = time.perf_counter
        try:
            while True:
                t0 = clock()
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    ctx.upstream_s += clock() - t0
                if ctx.first_token_s is None and type(event) in _CONTENT_EVENTS:
                    ctx.first_token_s = clock() - ctx.started
                if type(event) is UsageReport:
                    ctx.usage = event.usage
                yield event
        finally:
            await events.aclose()

    async def embed(self, req: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
        dep, dialect = self._prepare(req.model, ctx)
        t0 = time.perf_counter()
        try:
            resp = await dialect.embed(self.http, req, dep)
        finally:
            ctx.upstream_s += time.perf_counter() - t0
        ctx.usage = resp.usage
        return resp

    def finish(self, ctx: RequestContext, status: int, error: GatewayError | None = None) -> None:
        ctx.status = status
        ctx.error = error
        self.recorder.record(ctx)


_CONTENT_EVENTS = (TextDelta, ThinkingDelta, ToolCallDelta)


def internal_error(exc: BaseException) -> GatewayError:
    """A bug of ours, reported without internals (which could hold secrets)."""
    return GatewayError(ErrorKind.internal, f"internal error ({type(exc).__name__})")

