"""Traces: the wide, append-only span table, the gateway's own span per request (kept on the
request's row in the request log), ingestion of application spans (OTLP/HTTP protobuf and
JSON, and a small JSON API), queries over both, OTLP export and retention."""

from .gateway_span import CaptureOptions, SpanCapture, span_of, span_row
from .ingest import SpanError, parse_spans, stamp
from .model import Span, SpanStatus, SpanType, cap_payload, normalise_trace_id, parse_time_ms
from .otlp import PayloadError
from .queries import SpanFilters, SpanQueries
from .retention import RetentionPolicy, RetentionTask, run_retention
from .service import TraceSettings, Tracing
from .store import ALL, SpanSink, Visibility

__all__ = [
    "ALL", "CaptureOptions", "PayloadError", "RetentionPolicy", "RetentionTask", "Span", "SpanCapture",
    "SpanError", "SpanFilters", "SpanQueries", "SpanSink", "SpanStatus", "SpanType",
    "TraceSettings", "Tracing", "Visibility", "cap_payload", "normalise_trace_id", "parse_spans", "parse_time_ms",
    "run_retention", "span_of", "span_row", "stamp",
]
