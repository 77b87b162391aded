"""The gateway's span, kept on its request record: the same fields as the `Span` it stands
for, through the payload codec and to the exporter, and read back from the request log."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

from aistrata.core import ChatResponse, Choice, Message, TextPart, Usage
from aistrata.interface.dialects.openai import parse_chat
from aistrata.observe.records import RequestRecord
from aistrata.observe.request_recording import RequestSink
from aistrata.observe.traces import Span, SpanFilters, SpanQueries, SpanSink
from aistrata.observe.traces.gateway_span import CaptureOptions, SpanCapture, span_of
from aistrata.observe.traces.model import normalise_trace_id
from aistrata.store import Database, RequestLog, migrate

REQUEST = parse_chat({"model": "gpt-x", "user": "end-user-7", "messages": [{"role": "user", "content": "hi"}]})
RESPONSE = ChatResponse(id="c1", model="gpt-x-2025", created=1, usage=Usage(12, 3),
                        choices=[Choice(0, Message("assistant", [TextPart("hello")]), "stop")])


def _captured(**kw: Any) -> RequestRecord:
    rec = RequestRecord(
        id="req_0194a3b2c1d0aabbccddeeff00112233", ts=1_700_000_000_000, endpoint="chat", key_id="key_1",
        key_alias="k", user_id="u1", team_id="t1", requested_model="gpt-x", deployment_id="dep-1",
        provider="openai", upstream_model="gpt-x-up", status=502, error_kind="upstream", error_message="bad gateway",
        latency_ms=250.5, ttft_ms=40.0, overhead_ms=1.25, input_tokens=12, output_tokens=3, cache_read_tokens=2,
        cache_write_tokens=1, reasoning_tokens=1, cost_usd=0.5, tags=["a"], metadata={"m": 1}, cache_hit=False,
        attempts=2,
    )
    ctx = SimpleNamespace(trace_id=kw.get("trace_id", "run-1"), parent_span_id=kw.get("parent", "client-span"),
                          session_id="sess-1", request=REQUEST, response=RESPONSE)
    SpanCapture(kw.get("options", CaptureOptions())).capture(rec, ctx)  # type: ignore[arg-type]
    return rec


GATEWAY_SPAN = dict(
    trace_id=normalise_trace_id("run-1"), span_id="ccddeeff00112233",
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


def test_captured_record_has_every_field_of_the_gateway_span() -> None:
    span = span_of(_captured())
    assert span == Span(**{**GATEWAY_SPAN, "parent_span_id": span.parent_span_id})
    assert span.parent_span_id is not None and len(span.parent_span_id) == 16
    spooled = RequestRecord.from_dict(orjson.loads(orjson.dumps(_captured().to_dict())))  # the spool's round trip
    assert span_of(spooled) == span
    assert _captured().metadata == {"m": 1}  # the record is not changed
    bare = span_of(_captured(trace_id=None, parent=None, options=CaptureOptions(payloads=False)))
    assert bare.parent_span_id is None and len(bare.trace_id) == 32
    assert (bare.input, bare.output, bare.input_bytes, bare.output_bytes) == (None, None, 0, 0)


def test_request_row_reads_back_as_the_same_span(database: Database) -> None:
    migrate(database)
    rec = _captured()
    RequestSink(RequestLog(database)).insert_many([rec])
    assert database.fetchone("SELECT COUNT(*) AS n FROM spans")["n"] == 0  # type: ignore[index]  # written once
    rows, _ = SpanQueries(database).spans(SpanFilters(trace_id=rec.trace_id))
    row = rows[0]
    assert (row.pop("is_root"), row.pop("duration_ms")) == (False, 250.5)
    assert row == span_of(rec).to_dict()
    [tree] = SpanQueries(database).trace(rec.trace_id)  # type: ignore[arg-type]
    assert tree["span_id"] == rec.span_id and tree["children"] == []


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
    codec = _Codec()
    RequestSink(RequestLog(database, codec), codec.mask, exporter).insert_many([_captured()])  # type: ignore[arg-type]
    SpanSink(database, exporter, codec).insert_many([ingested])  # type: ignore[arg-type]
    masked = '[{"role":"assistant","content":"*****","finish_reason":"stop"}]'
    assert [s.output for s in exporter.spans] == [masked, None]
    assert exporter.spans[1].input == "*****" and ingested.input == "hello"
    sealed = database.fetchone("SELECT output FROM requests")
    assert sealed is not None and sealed["output"] == f"sealed:{masked}"
    stored = database.fetchone("SELECT input, output, is_root, duration_ms FROM spans WHERE span_id = ?", ("b" * 16,))
    assert stored is not None and stored["input"] == "sealed:*****"
    assert not stored["is_root"] and stored["duration_ms"] == 3.0
    rows, _ = SpanQueries(database, _Codec()).spans(SpanFilters(session_id="sess-1"))
    assert rows[0]["output"] == exporter.spans[0].output and rows[0]["is_root"] is False
    assert rows[0]["tags"] == ["a"] and rows[0]["metadata"]["gen_ai.response.time_to_first_chunk"] == 0.04
