"""The gateway's own span for every request it serves.

A gateway request is written once: its request record carries the span's own fields (trace
ids, session, end user, response model, payloads), which `SpanCapture` sets on the request
path, and the span is made from the record wherever one is needed: `span_of` for the OTLP
exporter, `span_row` when the span queries read the request log as spans. The span joins the
client's trace when one came in (its parent is the client's span), else it starts a new trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...gateway.context import RequestContext
from ..records import RequestRecord
from .model import FIELDS, Span, cap_payload, duration_ms, normalise_span_id, normalise_trace_id, trace_id_for
from .payloads import request_payload, response_model, response_payload

_OPERATIONS = {"chat": "chat", "messages": "chat", "embeddings": "embeddings"}


@dataclass(slots=True, frozen=True)
class CaptureOptions:
    payloads: bool = True
    max_payload_bytes: int = 32 * 1024


class SpanCapture:
    """Sets a request record's span fields from its context, before the record is queued."""

    def __init__(self, options: CaptureOptions) -> None:
        self.options = options

    def capture(self, rec: RequestRecord, ctx: RequestContext) -> None:
        """Payloads are rendered to text now, not in the writer: a queued record then holds two
        strings instead of the request's and the answer's object graphs, which the garbage
        collector would otherwise scan again and again while they wait (about 25 objects)."""
        rec.trace_id = normalise_trace_id(ctx.trace_id) if ctx.trace_id else trace_id_for(rec.id)
        rec.parent_span_id = normalise_span_id(ctx.parent_span_id) if ctx.parent_span_id else None
        rec.session_id = ctx.session_id
        rec.end_user_id = getattr(ctx.request, "user", None) or rec.user_id
        rec.response_model = response_model(ctx.response) or rec.upstream_model
        if self.options.payloads:
            limit = self.options.max_payload_bytes
            rec.input, rec.input_bytes = cap_payload(request_payload(ctx.request), limit)
            rec.output, rec.output_bytes = cap_payload(response_payload(ctx.response), limit)


def span_values(rec: RequestRecord) -> tuple[Any, ...]:
    """The gateway span of a traced record, as its fields in `Span` order (`model.FIELDS`).
    Tags are the record's own list, not a copy: nothing downstream changes them."""
    operation = _OPERATIONS.get(rec.endpoint, rec.endpoint)
    start_us = rec.ts * 1000
    metadata = rec.metadata
    if rec.ttft_ms is not None:
        metadata = {**metadata, "gen_ai.response.time_to_first_chunk": rec.ttft_ms / 1000}
    return (
        rec.trace_id,
        rec.span_id,
        f"{operation} {rec.requested_model or ''}".strip(),  # name
        start_us,
        start_us + int((rec.latency_ms or 0) * 1000),  # end_us
        rec.parent_span_id,
        "client",  # kind
        "embedding" if operation == "embeddings" else "generation",  # type
        "error" if rec.status >= 400 or rec.error_kind is not None else "ok",  # status
        rec.error_message,  # status_message
        rec.error_kind,  # error_type
        "gateway",  # source
        "aistrata",  # service_name
        # Trace context.
        rec.session_id,
        rec.end_user_id,  # user_id
        rec.key_id,
        rec.team_id,
        rec.tags,
        metadata,
        # GenAI.
        rec.provider,  # provider_name
        operation,  # operation_name
        rec.requested_model,  # request_model
        rec.response_model,
        rec.input_tokens,
        rec.output_tokens,
        rec.cache_read_tokens,
        rec.cache_write_tokens,  # cache_creation_tokens
        rec.reasoning_tokens,
        rec.cost_usd,
        rec.input,
        rec.output,
        rec.input_bytes,
        rec.output_bytes,
        # Gateway-only.
        rec.id,  # request_id
        rec.deployment_id,
        rec.cache_hit,
        rec.attempts,
        rec.overhead_ms,
    )


def span_of(rec: RequestRecord) -> Span:
    return Span(*span_values(rec))  # FIELDS is the dataclass's field order


def span_row(request_row: dict[str, Any]) -> dict[str, Any]:
    """A decoded request-log row as the span queries return a span (with `is_root` and
    `duration_ms`, as a decoded `spans` row has them)."""
    row = dict(zip(FIELDS, span_values(RequestRecord.from_dict(request_row))))
    row["is_root"] = row["parent_span_id"] is None
    row["duration_ms"] = duration_ms(row["start_us"], row["end_us"])
    return row
