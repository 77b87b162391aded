"""The gateway's span, made from the request record without a `Span` in between: the same
fields as the `Span` it stands for, through the payload codec and to the exporter."""

from __future__ import annotations

from typing import Any

import orjson

from aistrata.core import ChatResponse, Choice, Message, TextPart, Usage
from aistrata.interface.dialects.openai import parse_chat
from aistrata.observe.records import RequestRecord
from aistrata.observe.traces import Span, SpanFilters, SpanQueries, SpanSink
from aistrata.observe.traces.gateway_span import CaptureOptions, PendingSpan
from aistrata.observe.traces.model import normalise_trace_id
from aistrata.store import Database, migrate

REQUEST = parse_chat({"model": "gpt-x", "user": "end-user-7", "messages": [{"role": "user", "content": "hi"}]})
RESPONSE = ChatResponse(id="c1", model="gpt-x-2025", created=1, usage=Usage(12, 3),
                        choices=[Choice(0, Message("assistant", [TextPart("hello")]), "stop")])


def _pending(**kw: Any) -> PendingSpan:
    rec = RequestRecord(
        id="req_0194a3b2c1d0aabbccddeeff00112233", ts=1_700_000_000_000, endpoint="chat", key_id="key_1",
        key_alias="k", user_id="u1", team_id="t1", requested_model="gpt-x", deployment_id="dep-1",
        provider="openai", upstream_model="gpt-x-up", status=502, error_kind="upstream", error_message="bad gateway",
        latency_ms=250.5, ttft_ms=40.0, overhead_ms=1.25, input_tokens=12, output_tokens=3, cache_read_tokens=2,
        cache_write_tokens=1, reasoning_tokens=1, cost_usd=0.5, tags=["a"], metadata={"m": 1}, cache_hit=False,
        attempts=2,
    )
    return PendingSpan.of(rec, kw.get("trace_id", "run-1"), kw.get("parent", "client-span"), "sess-1", REQUEST,
                          RESPONSE, kw.get("options", CaptureOptions()))


def test_pending_span_has_every_field_of_the_gateway_span() -> None:
    span = _pending().build()
    assert span == Span(
        trace_id=normalise_trace_id("run-1"), span_id="ccddeeff00112233", parent_span_id=span.parent_span_id,
        name="chat gpt-x", start_us=1_700_000_000_000_000, end_us=1_700_000_000_250_500, kind="client",
        type="generation", status="error", status_message="bad gateway", error_type="upstream", source="gateway",
        service_name="aistrata", session_id="sess-1", user_id="end-user-7", key_id="key_1", team_id="t1",
        tags=["a"], metadata={"m": 1, "gen_ai.response.time_to_first_chunk": 0.04}, provider_name="openai",
        operation_name="chat", request_model="gpt-x", response_model="gpt-x-2025", input_tokens=12, output_tokens=3,
        cache_read_tokens=2, cache_creation_tokens=1, reasoning_tokens=1, cost_usd=0.5,
        input='[{"role":"user","content":"hi"}]',
        output='[{"role":"assistant","content":"hello","finish_reason":"stop"}]',
        input_bytes=32, output_bytes=63, request_id="req_0194a3b2c1d0aabbccddeeff00112233", deployment_id="dep-1",
        cache_hit=False, attempts=2, overhead_ms=1.25,
    )
    assert span.parent_span_id is not None and len(span.parent_span_id) == 16
    assert Span.from_dict(orjson.loads(orjson.dumps(_pending().to_dict()))) == span  # the spool's round trip
    assert _pending().rec.metadata == {"m": 1}  # the record is not changed
    bare = _pending(trace_id=None, parent=None, options=CaptureOptions(payloads=False)).build()
    assert bare.parent_span_id is None and len(bare.trace_id) == 32
    assert (bare.input, bare.output, bare.input_bytes, bare.output_bytes) == (None, None, 0, 0)


class _Codec:
    def mask(self, text: str) -> str:
        return text.replace("hello", "*****")

    def seal(self, text: str) -> str:
        return f"sealed:{text}"

    def open(self, text: str) -> str:
        return text.removeprefix("sealed:")


class _Exporter:
    def __init__(self) -> None:
        self.spans: list[Span] = []

    def record(self, span: Span) -> None:
        self.spans.append(span)


def test_codec_masks_for_table_and_exporter_and_seals_for_the_table(database: Database) -> None:
    migrate(database)
    exporter = _Exporter()
    ingested = Span(trace_id="a" * 32, span_id="b" * 16, name="tool", start_us=1, end_us=3_001, input="hello",
                    parent_span_id="c" * 16, tags=["x"])
    SpanSink(database, exporter, _Codec()).insert_many([_pending(), ingested])  # type: ignore[arg-type]
    masked = '[{"role":"assistant","content":"*****","finish_reason":"stop"}]'
    assert [s.output for s in exporter.spans] == [masked, None]
    assert exporter.spans[1].input == "*****" and ingested.input == "hello"
    stored = database.fetchone("SELECT input, output, is_root, duration_ms FROM spans WHERE span_id = ?", ("b" * 16,))
    assert stored is not None and stored["input"] == "sealed:*****"
    assert not stored["is_root"] and stored["duration_ms"] == 3.0
    rows, _ = SpanQueries(database, _Codec()).spans(SpanFilters(session_id="sess-1"))
    assert rows[0]["output"] == exporter.spans[0].output and rows[0]["is_root"] is False
    assert rows[0]["tags"] == ["a"] and rows[0]["metadata"]["gen_ai.response.time_to_first_chunk"] == 0.04
