"""OTLP/HTTP trace payloads: decode (protobuf and JSON) into spans, encode spans for export.

OTLP/JSON is the protobuf schema's JSON mapping except that trace and span ids are hex, not
base64; turning them into base64 lets `json_format` parse it, so both encodings share one
decoder that walks the protobuf messages.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from typing import Any, Iterable

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from .attributes import apply_attributes
from .model import Span, SpanStatus

_KINDS = {0: "internal", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_KIND_CODES = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_STATUS: dict[int, SpanStatus] = {0: "unset", 1: "ok", 2: "error"}
_STATUS_CODES = {"unset": 0, "ok": 1, "error": 2}
_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class PayloadError(ValueError):
    """The body is not an OTLP trace export request."""


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise PayloadError(f"not an OTLP protobuf trace request: {exc}") from exc
    return request


def parse_json(data: Any) -> ExportTraceServiceRequest:
    if not isinstance(data, dict):
        raise PayloadError("an OTLP JSON trace request is an object with resourceSpans")
    _hex_ids_to_base64(data)
    try:
        return json_format.ParseDict(data, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise PayloadError(f"not an OTLP JSON trace request: {exc}") from exc


def decode(request: ExportTraceServiceRequest, max_payload_bytes: int) -> list[Span]:
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        service = resource.pop("service.name", None)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name or None
            for pb in scope_spans.spans:
                spans.append(_decode_span(pb, resource, service, scope, max_payload_bytes))
    return spans


def _decode_span(pb: PbSpan, resource: dict[str, Any], service: Any, scope: str | None, cap: int) -> Span:
    span = Span(
        trace_id=pb.trace_id.hex(), span_id=pb.span_id.hex(), parent_span_id=pb.parent_span_id.hex() or None,
        name=pb.name, start_us=pb.start_time_unix_nano // 1000, end_us=pb.end_time_unix_nano // 1000,
        kind=_KINDS.get(pb.kind, "internal"), status=_STATUS.get(pb.status.code, "unset"),
        status_message=pb.status.message or None, source="otlp",
        service_name=str(service) if service is not None else None,
    )
    if resource:
        span.metadata["resource"] = resource
    if scope:
        span.metadata["scope"] = scope
    apply_attributes(span, attributes_dict(pb.attributes), cap)
    if pb.events:
        span.metadata["events"] = [
            {"name": e.name, "time_us": e.time_unix_nano // 1000, "attributes": attributes_dict(e.attributes)}
            for e in pb.events
        ]
        if span.error_type is None:
            span.error_type = next((str(e["attributes"]["exception.type"]) for e in span.metadata["events"]
                                    if e["name"] == "exception" and "exception.type" in e["attributes"]), None)
    return span


def attributes_dict(items: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes_dict(v.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind) if kind else None


def _hex_ids_to_base64(node: Any) -> None:
    """In place, through the whole request (spans, parents, links)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError as exc:
                    raise PayloadError(f"{key} {value!r} is not hex") from exc
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


# ---- export --------------------------------------------------------------------------------

def encode(spans: Iterable[Span]) -> bytes:
    """An `ExportTraceServiceRequest` (protobuf) with one resource per service name."""
    by_service: dict[str, list[PbSpan]] = defaultdict(list)
    for span in spans:
        by_service[span.service_name or "aistrata"].append(_encode_span(span))
    request = ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(
            resource=Resource(attributes=[_kv("service.name", service)]),
            scope_spans=[ScopeSpans(scope=InstrumentationScope(name="aistrata"), spans=items)],
        )
        for service, items in by_service.items()
    ])
    return request.SerializeToString()


def _encode_span(span: Span) -> PbSpan:
    attrs: dict[str, Any] = {
        "gen_ai.provider.name": span.provider_name, "gen_ai.operation.name": span.operation_name,
        "gen_ai.request.model": span.request_model, "gen_ai.response.model": span.response_model,
        "gen_ai.conversation.id": span.session_id, "user.id": span.user_id, "error.type": span.error_type,
        "gen_ai.usage.cost": span.cost_usd, "input.value": span.input, "output.value": span.output,
        "aistrata.span.type": span.type, "aistrata.key_id": span.key_id, "aistrata.team_id": span.team_id,
        "aistrata.request_id": span.request_id, "aistrata.deployment_id": span.deployment_id,
        "aistrata.cache_hit": span.cache_hit, "aistrata.attempts": span.attempts,
        "aistrata.overhead_ms": span.overhead_ms, "aistrata.tags": span.tags or None,
    }
    if span.input_tokens or span.output_tokens:
        attrs.update({
            "gen_ai.usage.input_tokens": span.input_tokens, "gen_ai.usage.output_tokens": span.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": span.cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": span.cache_creation_tokens,
            "gen_ai.usage.reasoning.output_tokens": span.reasoning_tokens,
        })
    for key, value in span.metadata.items():
        attrs.setdefault(key, value)
    return PbSpan(
        trace_id=bytes.fromhex(span.trace_id), span_id=bytes.fromhex(span.span_id),
        parent_span_id=bytes.fromhex(span.parent_span_id) if span.parent_span_id else b"",
        name=span.name, kind=_KIND_CODES.get(span.kind, 1),  # type: ignore[arg-type]
        start_time_unix_nano=span.start_us * 1000, end_time_unix_nano=span.end_us * 1000,
        attributes=[_kv(k, v) for k, v in attrs.items() if v is not None],
        status=Status(code=_STATUS_CODES[span.status], message=span.status_message or ""),  # type: ignore[arg-type]
    )


def _kv(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=_any(value))


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[_any(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[_kv(str(k), v) for k, v in value.items()]))
    return AnyValue(string_value=str(value))
