"""The request pipeline: admit, (cache,) dispatch, settle, record.

The interface layer parses the client's dialect into core types, hands them here with a
`RequestContext`, and renders what comes back. Stages are small objects behind protocols:

- `Admission` stages (rate limits, budgets, guards) run in order before the call; each may
  refuse with a `GatewayError` and returns a settle callback run after the call, success or
  not, so reservations are always released or settled to the true usage.
- `ResponseCache` answers a request without calling a provider, and stores answers.
- the `Dispatcher` picks deployments and calls them (routing and resilience live there).

Every request ends in `finish()`, which hands the context to the recorder without waiting.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable, Protocol, Sequence

from ..core import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorKind,
    GatewayError,
    StreamAccumulator,
    StreamEvent,
)
from .context import RequestContext
from .dispatch import Dispatcher

Settle = Callable[[RequestContext], Awaitable[None]]


class Recorder(Protocol):
    def record(self, ctx: RequestContext) -> None: ...


class Admission(Protocol):
    async def admit(self, req: ChatRequest | EmbeddingRequest, ctx: RequestContext) -> Settle | None: ...


class ResponseCache(Protocol):
    async def get(self, req: ChatRequest, ctx: RequestContext) -> ChatResponse | None: ...

    async def put(self, req: ChatRequest, ctx: RequestContext, resp: ChatResponse) -> None: ...


class Gateway:
    def __init__(
        self, dispatcher: Dispatcher, recorder: Recorder, *, admissions: Sequence[Admission] = (),
        cache: ResponseCache | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.router = dispatcher.router
        self.recorder = recorder
        self.admissions = list(admissions)
        self.cache = cache

    async def _admit(self, req: Any, ctx: RequestContext) -> list[Settle]:
        ctx.requested_model = req.model
        ctx.request = req
        ctx.principal.check_model(req.model)
        self.router.resolve(req.model)  # an unknown model fails before anything is reserved
        settles: list[Settle] = []
        try:
            for stage in self.admissions:
                settle = await stage.admit(req, ctx)
                if settle is not None:
                    settles.append(settle)
        except BaseException:
            await self._settle(settles, ctx)
            raise
        return settles

    @staticmethod
    async def _settle(settles: list[Settle], ctx: RequestContext) -> None:
        for settle in reversed(settles):
            await settle(ctx)

    async def chat(self, req: ChatRequest, ctx: RequestContext) -> ChatResponse:
        settles = await self._admit(req, ctx)
        try:
            if self.cache is not None:
                hit = await self.cache.get(req, ctx)
                if hit is not None:
                    return hit
            resp = await self.dispatcher.chat(req, ctx)
            ctx.usage, ctx.response = resp.usage, resp
            if self.cache is not None:
                await self.cache.put(req, ctx, resp)
            return resp
        finally:
            await self._settle(settles, ctx)

    async def stream(self, req: ChatRequest, ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        ctx.stream = True
        settles = await self._admit(req, ctx)
        events = self.dispatcher.stream(req, ctx)
        answer = StreamAccumulator()
        ctx.response = answer  # reassembled on demand by whoever reads it (traces, caches)
        try:
            async for event in events:
                answer.add(event)
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]
            await self._settle(settles, ctx)

    async def embed(self, req: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
        settles = await self._admit(req, ctx)
        try:
            resp = await self.dispatcher.embed(req, ctx)
            ctx.usage, ctx.response = resp.usage, resp
            return resp
        finally:
            await self._settle(settles, ctx)

    def finish(self, ctx: RequestContext, status: int, error: GatewayError | None = None) -> None:
        ctx.status = status
        ctx.error = error
        self.recorder.record(ctx)


def internal_error(exc: BaseException) -> GatewayError:
    """A bug of ours, reported without internals (which could hold secrets)."""
    return GatewayError(ErrorKind.internal, f"internal error ({type(exc).__name__})")
