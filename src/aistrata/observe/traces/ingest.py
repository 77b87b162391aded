"""Spans sent by applications: the simple JSON shape of `POST /api/spans`, and the stamp every
ingested span gets from the key that sent it.

    {"spans": [{"trace_id": "...", "span_id": "...", "parent_span_id": null, "name": "plan",
                "type": "agent", "start_time": 1767225600000, "end_time": "2026-01-01T00:00:01Z",
                "status": "ok", "session_id": "s1", "user_id": "u1", "tags": ["beta"],
                "model": "gpt-4o", "provider": "openai", "usage": {"input": 10, "output": 5},
                "cost_usd": 0.0001, "input": ..., "output": ..., "metadata": {...},
                "attributes": {"gen_ai.operation.name": "chat"}}]}

Times are epoch milliseconds or ISO 8601; ids are generated when missing (a span without a
trace id starts a trace). `attributes` go through the same mapping as OTLP attributes.
"""

from __future__ import annotations

from typing import Any, Iterable

from .attributes import apply_attributes
from .model import Span, new_span_id, new_trace_id, normalise_span_id, normalise_trace_id, now_us, parse_time_ms

_USAGE = {"input": "input_tokens", "output": "output_tokens", "cache_read": "cache_read_tokens",
          "cache_creation": "cache_creation_tokens", "reasoning": "reasoning_tokens"}
_STATUSES = {"unset", "ok", "error"}


class SpanError(ValueError):
    """A span in the JSON API's shape that cannot be read; the message names the field."""


def parse_spans(body: Any, max_payload_bytes: int) -> list[Span]:
    items = body.get("spans") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise SpanError("send a list of spans, or {\"spans\": [...]}")
    return [_parse_span(item, i, max_payload_bytes) for i, item in enumerate(items)]


def _parse_span(item: Any, index: int, cap: int) -> Span:
    if not isinstance(item, dict):
        raise SpanError(f"spans[{index}] must be an object")
    where = f"spans[{index}]"
    start = _time_us(item.get("start_time"), f"{where}.start_time") or now_us()
    end = _time_us(item.get("end_time"), f"{where}.end_time") or start
    status = str(item.get("status") or "unset").lower()
    if status not in _STATUSES:
        raise SpanError(f"{where}.status must be one of unset, ok, error")
    trace_id, parent = item.get("trace_id"), item.get("parent_span_id")
    span = Span(
        trace_id=normalise_trace_id(str(trace_id)) if trace_id else new_trace_id(),
        span_id=normalise_span_id(str(item["span_id"])) if item.get("span_id") else new_span_id(),
        parent_span_id=normalise_span_id(str(parent)) if parent else None,
        name=str(item.get("name") or "span"), start_us=start, end_us=max(end, start), status=status,  # type: ignore[arg-type]
        status_message=_opt_str(item.get("status_message")), error_type=_opt_str(item.get("error_type")),
        source="api", service_name=_opt_str(item.get("service_name")),
        session_id=_opt_str(item.get("session_id")), user_id=_opt_str(item.get("user_id")),
        tags=[str(t) for t in item.get("tags") or []], metadata=dict(item.get("metadata") or {}),
        provider_name=_opt_str(item.get("provider")), request_model=_opt_str(item.get("model")),
        response_model=_opt_str(item.get("response_model") or item.get("model")),
    )
    for key, name in _USAGE.items():
        value = (item.get("usage") or {}).get(key)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SpanError(f"{where}.usage.{key} must be a whole number >= 0")
            setattr(span, name, value)
    if item.get("cost_usd") is not None:
        span.cost_usd = float(item["cost_usd"])
    if item.get("input") is not None or item.get("output") is not None:
        span.set_payloads(item.get("input"), item.get("output"), cap)
    attrs = dict(item.get("attributes") or {})
    if isinstance(item.get("type"), str):
        attrs.setdefault("aistrata.span.type", item["type"])
    apply_attributes(span, attrs, cap)
    return span


def stamp(spans: Iterable[Span], key_id: str | None, team_id: str | None, user_id: str | None) -> None:
    """The sending key's identity goes on every span; the key's user only fills a gap."""
    for span in spans:
        span.key_id, span.team_id = key_id, team_id
        span.user_id = span.user_id or user_id


def _time_us(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 1000)
    if isinstance(value, str):
        try:
            return parse_time_ms(value) * 1000
        except ValueError:
            pass
    raise SpanError(f"{where} must be epoch milliseconds or an ISO 8601 time")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
