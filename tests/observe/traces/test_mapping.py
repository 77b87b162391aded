"""Attribute flavours (OTel GenAI current and legacy, OpenInference), the JSON API's shape,
OTLP/JSON decoding and the visible payload cap."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from aistrata.gateway.config import ConfigError, load_settings
from aistrata.interface.app import build_services
from aistrata.observe.traces import (
    Span,
    SpanError,
    TraceSettings,
    cap_payload,
    normalise_trace_id,
    parse_spans,
)
from aistrata.observe.traces.attributes import apply_attributes
from aistrata.observe.traces.otlp import decode, encode, parse_json, parse_protobuf
from aistrata.providers.registry import load_registry


def _span(**attrs: object) -> Span:
    span = Span(trace_id="a" * 32, span_id="b" * 16, name="x", start_us=1, end_us=2)
    apply_attributes(span, attrs, 1024)
    return span


def test_current_gen_ai_names() -> None:
    s = _span(**{
        "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20, "gen_ai.usage.cache_read.input_tokens": 60,
        "gen_ai.usage.reasoning.output_tokens": 5, "gen_ai.conversation.id": "conv-1", "user.id": "u1",
    })
    assert (s.provider_name, s.operation_name, s.type) == ("openai", "chat", "generation")
    assert (s.request_model, s.response_model, s.session_id, s.user_id) == ("gpt-4o", "gpt-4o-2024-08-06", "conv-1", "u1")
    # OTel rule: cached and reasoning tokens are included in input/output, not added on top.
    assert (s.input_tokens, s.output_tokens, s.cache_read_tokens, s.reasoning_tokens) == (100, 20, 60, 5)
    assert s.metadata == {}


def test_legacy_gen_ai_names() -> None:
    s = _span(**{"gen_ai.system": "anthropic", "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 3,
                 "gen_ai.request.model": "claude"})
    assert (s.provider_name, s.input_tokens, s.output_tokens) == ("anthropic", 7, 3)


def test_openinference_names() -> None:
    s = _span(**{"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
                 "llm.token_count.prompt": 11, "llm.token_count.completion": 4, "llm.token_count.total": 15,
                 "input.value": "hello?", "output.value": "hi!", "session.id": "s-9", "llm.cost.total": 0.5})
    assert (s.type, s.request_model, s.provider_name, s.session_id) == ("generation", "gpt-4o-mini", "openai", "s-9")
    assert (s.input_tokens, s.output_tokens, s.cost_usd) == (11, 4, 0.5)
    assert (s.input, s.output) == ("hello?", "hi!")
    assert s.metadata == {}
    assert _span(**{"openinference.span.kind": "RETRIEVER"}).type == "retriever"
    assert _span(**{"gen_ai.operation.name": "execute_tool"}).type == "tool"


def test_unknown_and_malformed_attributes_stay_in_metadata() -> None:
    s = _span(**{"gen_ai.usage.input_tokens": "lots", "gen_ai.usage.audio_tokens": 9, "app.step": 3})
    assert s.input_tokens == 0
    assert s.metadata == {"gen_ai.usage.input_tokens": "lots", "gen_ai.usage.audio_tokens": 9, "app.step": 3}


def test_payload_cap_is_visible() -> None:
    text, size = cap_payload("é" * 100, 51)  # 200 bytes; the cut never splits a character
    assert size == 200
    assert text.startswith("é" * 25) and text.endswith("…[truncated 150 bytes]")
    assert cap_payload({"a": 1}, 100) == ('{"a":1}', 7)


def test_json_api_shape() -> None:
    [root, child] = parse_spans({"spans": [
        {"trace_id": "run-42", "span_id": "plan", "name": "plan", "type": "agent", "start_time": 1_700_000_000_000,
         "end_time": "2023-11-14T22:13:21Z", "tags": ["beta"], "metadata": {"step": 1}},
        {"trace_id": "run-42", "parent_span_id": "plan", "name": "llm", "model": "gpt-4o", "provider": "openai",
         "usage": {"input": 10, "output": 5, "cache_read": 4}, "cost_usd": 0.01, "input": [{"role": "user"}],
         "attributes": {"gen_ai.operation.name": "chat", "custom": True}},
    ]}, 1024)
    assert root.trace_id == child.trace_id == normalise_trace_id("run-42") and len(root.trace_id) == 32
    assert child.parent_span_id == root.span_id and len(root.span_id) == 16
    assert (root.type, root.start_us, root.end_us) == ("agent", 1_700_000_000_000_000, 1_700_000_001_000_000)
    assert (child.type, child.input_tokens, child.cache_read_tokens, child.cost_usd) == ("generation", 10, 4, 0.01)
    assert child.metadata == {"custom": True} and orjson.loads(child.input) == [{"role": "user"}]
    with pytest.raises(SpanError, match=r"spans\[0\].usage.input"):
        parse_spans([{"usage": {"input": -1}}], 1024)


def test_otlp_json_and_protobuf_round_trip() -> None:
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "app"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "eee19b7ec3c1b173", "name": "chat gpt-4o", "kind": 3,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000500000000",
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
                {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
            ],
            "status": {"code": 2, "message": "boom"},
        }]}],
    }]}
    [span] = decode(parse_json(body), 1024)
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173")
    assert (span.kind, span.status, span.status_message, span.service_name) == ("client", "error", "boom", "app")
    assert (span.input_tokens, span.duration_ms, span.metadata["tags"]) == (12, 500.0, ["a"])
    [again] = decode(parse_protobuf(encode([span])), 1024)
    assert (again.trace_id, again.parent_span_id, again.input_tokens, again.type) == (
        span.trace_id, span.parent_span_id, 12, "generation")


def test_observe_settings() -> None:
    s = TraceSettings.from_config({"observe": {"enabled": False, "retention_days": 30, "retention": {"spans": 7},
                                               "otlp_endpoint": "http://127.0.0.1:4318", "headers": {"x-k": 1}}})
    assert (s.enabled, s.otlp_endpoint, s.otlp_headers) == (False, "http://127.0.0.1:4318", {"x-k": "1"})
    assert (s.retention.requests_days, s.retention.spans_days, s.retention.active) == (30.0, 7.0, True)
    default = TraceSettings.from_config({})
    assert default.enabled and not default.retention.active and default.otlp_endpoint is None
    assert (default.batch_size, default.flush_interval_s) == (500, 0.25)


def test_observe_batching_settings_reach_both_recorders(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"observe": {"batch_size": 2000, "flush_interval_s": 5}}))
    svc = build_services(load_settings(load_registry(), config, tmp_path / "data"), load_registry())
    for recorder in (svc.recorder, svc.tracing.spans):
        assert (recorder.batch_size, recorder.flush_interval) == (2000, 5.0)
    for bad in ({"batch_size": 0}, {"flush_interval_s": 0}, {"flush_interval_s": -1}):
        with pytest.raises(ConfigError, match="observe.batch_size"):
            TraceSettings.from_config({"observe": bad})
