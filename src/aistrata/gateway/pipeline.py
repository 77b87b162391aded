"""The request pipeline: admit, (cache,) dispatch, settle, record.

The interface layer parses the client's dialect into core types, hands them here with a
`RequestContext`, and renders what comes back. Stages are small objects behind protocols:

- `Admission` stages (rate limits, budgets, guards) run in order before the call; each may
  refuse with a `GatewayError` and returns a settle callback run after the call, success or
  not, so reservations are always released or settled to the true usage.
- `ResponseCache` answers a request without calling a provider, and stores answers.
- the `Dispatcher` picks deployments and calls them (routing and resilience live there).
- `OutputCheck` stages (output guards) inspect, mask or refuse the answer; on streams they
  see every event through a per-stream filter that may hold back a little text to mask it.

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


class StreamFilter(Protocol):
    def feed(self, event: StreamEvent) -> list[StreamEvent]: ...

    def end(self) -> list[StreamEvent]: ...


class OutputCheck(Protocol):
    async def check_response(self, req: ChatRequest, ctx: RequestContext, resp: ChatResponse) -> ChatResponse: ...

    def stream_filter(self, req: ChatRequest, ctx: RequestContext) -> StreamFilter | None: ...


class Gateway:
    def __init__(
        self, dispatcher: Dispatcher, recorder: Recorder, *, admissions: Sequence[Admission] = (),
        cache: ResponseCache | None = None, output_checks: Sequence[OutputCheck] = (),
    ) -> None:
        self.dispatcher = dispatcher
        self.router = dispatcher.router
        self.recorder = recorder
        self.admissions = list(admissions)
        self.cache = cache
        self.output_checks = list(output_checks)

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
            for check in self.output_checks:
                resp = ctx.response = await check.check_response(req, ctx, resp)
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
        filters = [f for f in (c.stream_filter(req, ctx) for c in self.output_checks) if f is not None]
        try:
            async for event in events:
                for out in _through(filters, event) if filters else (event,):
                    answer.add(out)
                    yield out
            for out in _drain(filters):
                answer.add(out)
                yield out
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


def _through(filters: list[StreamFilter], event: StreamEvent) -> list[StreamEvent]:
    events = [event]
    for f in filters:
        events = [out for e in events for out in f.feed(e)]
    return events


def _drain(filters: list[StreamFilter]) -> list[StreamEvent]:
    """What the filters held back, passed through the filters after each one."""
    events: list[StreamEvent] = []
    for i, f in enumerate(filters):
        held = f.end()
        for later in filters[i + 1:]:
            held = [out for e in held for out in later.feed(e)]
        events.extend(held)
    return events


def internal_error(exc: BaseException) -> GatewayError:
    """A bug of ours, reported without internals (which could hold secrets)."""
    return GatewayError(ErrorKind.internal, f"internal error ({type(exc).__name__})")
