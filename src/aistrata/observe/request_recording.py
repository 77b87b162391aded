"""From a finished gateway request to a stored, priced request record.

`GatewayRecorder.record` runs on the hot path and only copies fields; pricing happens in
the recorder's writer thread (`RequestSink`), except for prices stages (budgets, cache)
already looked up and prices set in the config, which are plain arithmetic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..gateway.context import RequestContext
from ..providers.pricing import price, price_override
from .metrics import GatewayMetrics
from .records import RequestRecord
from .recorder import Recorder, Sink
from .traces.gateway_span import span_of

log = logging.getLogger(__name__)

def to_record(ctx: RequestContext) -> RequestRecord:
    dep = ctx.deployment
    p = ctx.principal
    err = ctx.error
    usage = ctx.usage
    rec = RequestRecord(
        id=ctx.id, ts=ctx.ts_ms, endpoint=ctx.endpoint, ingress=ctx.ingress,  # type: ignore[arg-type]
        key_id=p.key_id, key_alias=p.key_alias, user_id=p.user_id, team_id=p.team_id,
        requested_model=ctx.requested_model or None,
        deployment_id=dep.id if dep else None, provider=dep.provider if dep else None,
        upstream_model=dep.model if dep else None, stream=ctx.stream, status=ctx.status,
        error_kind=err.kind.value if err else None, error_message=err.message if err else None,
        latency_ms=round(ctx.elapsed_s() * 1000, 3),
        ttft_ms=round(ctx.first_token_s * 1000, 3) if ctx.first_token_s is not None else None,
        overhead_ms=round(ctx.overhead_ms(), 3),
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens, tags=ctx.tags, metadata=ctx.metadata,
        cache_hit=ctx.cache_hit, saved_usd=ctx.saved_usd, attempts=max(ctx.attempts, 1 if dep else 0),
        route=ctx.route or None,
    )
    # A price stages already looked up, or one set in the config (plain arithmetic), is taken
    # here; a table lookup is left to the writer thread.
    if dep is not None and (ctx.priced() or price_override(dep)):
        found = ctx.cost()
        if found is not None:
            rec.cost_usd, rec.price_version = found.cost_usd, found.version
    return rec


class RecordObserver(Protocol):
    """Sees every finished request on the request path (metrics, online evaluation): must be
    O(1) and must not block."""

    def observe(self, rec: RequestRecord, ctx: RequestContext) -> None: ...


class SpanFields(Protocol):
    """Sets the gateway span's fields of a record (see `traces.gateway_span.SpanCapture`)."""

    def capture(self, rec: RequestRecord, ctx: RequestContext) -> None: ...


class GatewayRecorder:
    """The gateway's recorder hook: context -> record (with its span's fields, when traced) ->
    the batching recorder's queue, and the same record to each observer."""

    def __init__(self, recorder: Recorder | None, observers: Sequence[RecordObserver] = (),
                 spans: SpanFields | None = None) -> None:
        self.recorder = recorder  # None: the request log is off (`observe.enabled: false`)
        self.observers = list(observers)
        self.spans = spans

    def record(self, ctx: RequestContext) -> None:
        rec = to_record(ctx)
        if self.recorder is not None:
            if self.spans is not None:
                self.spans.capture(rec, ctx)  # before the queue: the writer thread reads the record
            self.recorder.record(rec)
        for observer in self.observers:
            try:
                observer.observe(rec, ctx)
            except Exception:  # a metrics or evaluation bug must not fail a finished request
                log.exception("record observer %r failed", observer)


def ensure_priced(rec: RequestRecord) -> RequestRecord:
    """Price a record that has usage but no cost yet (a lookup: never on the request path)."""
    if rec.cost_usd is None and rec.provider and rec.upstream_model and (rec.input_tokens or rec.output_tokens):
        found = price(rec.provider, rec.upstream_model, rec.usage)
        if found is not None:
            rec.cost_usd, rec.price_version = found.cost_usd, found.version
    return rec


class CostOnFinish:
    """A request observer for when the request log is off (`observe.enabled: false`): there is
    no writer thread then to price records and count their cost after the write (see
    `GatewayMetrics.metered`), so they are priced and counted as they finish."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def observe(self, rec: RequestRecord, ctx: RequestContext) -> None:
        self.metrics.count_cost([ensure_priced(rec)])


class RequestSink:
    """The request recorder's sink: prices records that have usage but no cost yet, masks
    their payloads (`mask`, when the security layer asks for it), writes them, then hands
    their gateway spans to the OTLP exporter (if any), masked as they were stored."""

    def __init__(self, sink: Sink, mask: Callable[[str], str] | None = None, exporter: Recorder | None = None) -> None:
        self.sink = sink
        self.mask = mask
        self.exporter = exporter

    def insert_many(self, records: list[Any]) -> None:
        mask = self.mask
        for rec in records:
            if rec.cost_usd is None:  # most were priced on the request path (see `to_record`)
                ensure_priced(rec)
            if mask is not None:
                rec.input = None if rec.input is None else mask(rec.input)
                rec.output = None if rec.output is None else mask(rec.output)
        self.sink.insert_many(records)
        if self.exporter is not None:
            for rec in records:
                if rec.trace_id is not None:
                    self.exporter.record(span_of(rec))
