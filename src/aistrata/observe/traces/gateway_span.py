"""The gateway's own span for every request it serves.

On the request path `GatewaySpans.observe` renders the payloads to text and keeps them, with
the request record and the context's trace ids, in a `PendingSpan`; the span recorder's writer
thread makes the span's row from it and prices it. The span joins the client's trace when one
came in (its parent is the client's span), else it starts a new trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...gateway.context import RequestContext
from ..records import RequestRecord
from ..recorder import Recorder
from ..request_recording import ensure_priced
from .model import Span, cap_payload, new_trace_id, normalise_span_id, normalise_trace_id
from .payloads import request_payload, response_model, response_payload

_OPERATIONS = {"chat": "chat", "messages": "chat", "embeddings": "embeddings"}


@dataclass(slots=True, frozen=True)
class CaptureOptions:
    payloads: bool = True
    max_payload_bytes: int = 32 * 1024


@dataclass(slots=True)
class PendingSpan:
    rec: RequestRecord
    trace_id: str | None
    parent_span_id: str | None
    session_id: str | None
    user_id: str | None          # the end user the request names, else the key's
    response_model: str | None
    input: str | None = None
    output: str | None = None
    input_bytes: int = 0
    output_bytes: int = 0

    @classmethod
    def of(cls, rec: RequestRecord, trace_id: str | None, parent_span_id: str | None, session_id: str | None,
           request: Any, response: Any, options: CaptureOptions) -> PendingSpan:
        """Rendered now, not in the writer: a queued span then holds two strings instead of the
        request's and the answer's object graphs, which the garbage collector would otherwise
        scan again and again while they wait for the writer (about 25 objects a request)."""
        span = cls(rec, trace_id, parent_span_id, session_id, getattr(request, "user", None) or rec.user_id,
                   response_model(response) or rec.upstream_model)
        if options.payloads:
            limit = options.max_payload_bytes
            span.input, span.input_bytes = cap_payload(request_payload(request), limit)
            span.output, span.output_bytes = cap_payload(response_payload(response), limit)
        return span

    def values(self) -> tuple[Any, ...]:
        """The span's fields in `Span` order (`model.FIELDS`): the writer turns them into a row
        without building a `Span` and reading it back field by field (`build` makes one when
        a `Span` is really needed: the OTLP exporter, the spool). Tags and metadata are the
        record's own objects, not copies: nothing downstream changes them."""
        rec = ensure_priced(self.rec)
        operation = _OPERATIONS.get(rec.endpoint, rec.endpoint)
        start_us = rec.ts * 1000
        metadata = rec.metadata
        if rec.ttft_ms is not None:
            metadata = {**metadata, "gen_ai.response.time_to_first_chunk": rec.ttft_ms / 1000}
        return (
            normalise_trace_id(self.trace_id) if self.trace_id else new_trace_id(),  # trace_id
            rec.id[-16:],  # span_id: the request id's random part, so one links to the other
            f"{operation} {rec.requested_model or ''}".strip(),  # name
            start_us,
            start_us + int((rec.latency_ms or 0) * 1000),  # end_us
            normalise_span_id(self.parent_span_id) if self.parent_span_id else None,  # parent_span_id
            "client",  # kind
            "embedding" if operation == "embeddings" else "generation",  # type
            "error" if rec.status >= 400 or rec.error_kind is not None else "ok",  # status
            rec.error_message,  # status_message
            rec.error_kind,  # error_type
            "gateway",  # source
            "aistrata",  # service_name
            # Trace context.
            self.session_id,
            self.user_id,
            rec.key_id,
            rec.team_id,
            rec.tags,
            metadata,
            # GenAI.
            rec.provider,  # provider_name
            operation,  # operation_name
            rec.requested_model,  # request_model
            self.response_model,
            rec.input_tokens,
            rec.output_tokens,
            rec.cache_read_tokens,
            rec.cache_write_tokens,  # cache_creation_tokens
            rec.reasoning_tokens,
            rec.cost_usd,
            self.input,
            self.output,
            self.input_bytes,
            self.output_bytes,
            # Gateway-only.
            rec.id,  # request_id
            rec.deployment_id,
            rec.cache_hit,
            rec.attempts,
            rec.overhead_ms,
        )

    def build(self) -> Span:
        return Span(*self.values())  # FIELDS is the dataclass's field order

    def to_dict(self) -> dict[str, Any]:
        """For the spool: the built span (read back with `Span.from_dict`)."""
        return self.build().to_dict()


class GatewaySpans:
    """A request observer (see `request_recording.RecordObserver`): one span per request."""

    def __init__(self, spans: Recorder, options: CaptureOptions) -> None:
        self.spans = spans
        self.options = options

    def observe(self, rec: RequestRecord, ctx: RequestContext) -> None:
        self.spans.record(PendingSpan.of(rec, ctx.trace_id, ctx.parent_span_id, ctx.session_id, ctx.request,
                                         ctx.response, self.options))
