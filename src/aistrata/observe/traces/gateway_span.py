"""The gateway's own span for every request it serves.

On the request path `GatewaySpans.observe` only keeps references (the request record and the
context's trace ids, request and response) in a `PendingSpan`; the span recorder's writer
thread builds the `Span`, renders the payloads and prices it. The span joins the client's
trace when one came in (its parent is the client's span), else it starts a new trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...gateway.context import RequestContext
from ..records import RequestRecord
from ..recorder import Recorder
from ..request_recording import ensure_priced
from .model import Span, new_trace_id, normalise_span_id, normalise_trace_id
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
    request: Any
    response: Any
    options: CaptureOptions

    def build(self) -> Span:
        rec = ensure_priced(self.rec)
        operation = _OPERATIONS.get(rec.endpoint, rec.endpoint)
        start_us = rec.ts * 1000
        error = rec.status >= 400 or rec.error_kind is not None
        span = Span(
            # The request id's random part doubles as the span id: one links to the other.
            trace_id=normalise_trace_id(self.trace_id) if self.trace_id else new_trace_id(),
            span_id=rec.id[-16:],
            parent_span_id=normalise_span_id(self.parent_span_id) if self.parent_span_id else None,
            name=f"{operation} {rec.requested_model or ''}".strip(),
            start_us=start_us, end_us=start_us + int((rec.latency_ms or 0) * 1000),
            kind="client", type="embedding" if operation == "embeddings" else "generation",
            status="error" if error else "ok", status_message=rec.error_message, error_type=rec.error_kind,
            source="gateway", service_name="aistrata", session_id=self.session_id,
            user_id=getattr(self.request, "user", None) or rec.user_id, key_id=rec.key_id, team_id=rec.team_id,
            tags=list(rec.tags), metadata=dict(rec.metadata), provider_name=rec.provider, operation_name=operation,
            request_model=rec.requested_model, response_model=response_model(self.response) or rec.upstream_model,
            input_tokens=rec.input_tokens, output_tokens=rec.output_tokens, cache_read_tokens=rec.cache_read_tokens,
            cache_creation_tokens=rec.cache_write_tokens, reasoning_tokens=rec.reasoning_tokens,
            cost_usd=rec.cost_usd, request_id=rec.id, deployment_id=rec.deployment_id, cache_hit=rec.cache_hit,
            attempts=rec.attempts, overhead_ms=rec.overhead_ms,
        )
        if rec.ttft_ms is not None:
            span.metadata["gen_ai.response.time_to_first_chunk"] = rec.ttft_ms / 1000
        if self.options.payloads:
            span.set_payloads(request_payload(self.request), response_payload(self.response),
                              self.options.max_payload_bytes)
        return span

    def to_dict(self) -> dict[str, Any]:
        """For the spool: the built span (read back with `Span.from_dict`)."""
        return self.build().to_dict()


class GatewaySpans:
    """A request observer (see `request_recording.RecordObserver`): one span per request."""

    def __init__(self, spans: Recorder, options: CaptureOptions) -> None:
        self.spans = spans
        self.options = options

    def observe(self, rec: RequestRecord, ctx: RequestContext) -> None:
        self.spans.record(PendingSpan(rec, ctx.trace_id, ctx.parent_span_id, ctx.session_id, ctx.request,
                                      ctx.response, self.options))
