"""End to end: the real OpenTelemetry SDK exporter into the gateway, a client's trace joined by
the gateway's span, queries, visibility, OTLP export and JSONL export (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from aistrata.observe.traces.otlp import decode, parse_protobuf
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY

from .conftest import OtlpReceiver

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def _provider(gw: GatewayServer, key: str = MASTER_KEY) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "my-agent"}))
    exporter = OTLPSpanExporter(endpoint=gw.url + "/v1/traces", headers={"Authorization": f"Bearer {key}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _get(gw: GatewayServer, path: str, headers: dict[str, str] = ADMIN, **params: Any) -> Any:
    gw.flush()
    response = httpx.get(gw.url + path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _key(gw: GatewayServer, **body: Any) -> str:
    response = httpx.post(gw.url + "/api/keys", headers=ADMIN, json=body)
    assert response.status_code == 201, response.text
    return response.json()["key"]


def test_sdk_spans_arrive_with_parents_names_and_usage(traced: GatewayServer) -> None:
    provider = _provider(traced)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("agent run", attributes={"gen_ai.operation.name": "invoke_agent",
                                                               "gen_ai.conversation.id": "conv-sdk"}) as root:
        with tracer.start_as_current_span("chat gpt-4o", kind=trace.SpanKind.CLIENT, attributes={
            "gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 30, "gen_ai.usage.output_tokens": 8,
            "gen_ai.usage.cache_read.input_tokens": 10, "app.custom": "kept",
        }):
            pass
    provider.shutdown()
    trace_id = f"{root.get_span_context().trace_id:032x}"
    [tree] = _get(traced, f"/api/traces/{trace_id}")["spans"]
    assert (tree["name"], tree["type"], tree["session_id"], tree["service_name"]) == ("agent run", "agent", "conv-sdk", "my-agent")
    [child] = tree["children"]
    assert child["parent_span_id"] == tree["span_id"] and child["kind"] == "client"
    assert (child["provider_name"], child["type"], child["request_model"]) == ("openai", "generation", "gpt-4o")
    assert (child["input_tokens"], child["output_tokens"], child["cache_read_tokens"]) == (30, 8, 10)
    assert child["metadata"]["app.custom"] == "kept"


def test_client_traceparent_joins_the_gateways_span(traced: GatewayServer, receiver: OtlpReceiver) -> None:
    provider = _provider(traced)
    tracer = provider.get_tracer("test")
    client = openai.OpenAI(base_url=traced.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    with tracer.start_as_current_span("answer question") as parent:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x" * 5000}],
                                       extra_headers={**headers, "x-aistrata-session-id": "sess-tp"})
    provider.shutdown()
    trace_id = f"{parent.get_span_context().trace_id:032x}"
    [root] = _get(traced, f"/api/traces/{trace_id}")["spans"]
    assert root["name"] == "answer question"
    [gw_span] = root["children"]
    assert gw_span["parent_span_id"] == f"{parent.get_span_context().span_id:016x}"
    assert (gw_span["source"], gw_span["name"], gw_span["type"], gw_span["status"]) == ("gateway", "chat gpt", "generation", "ok")
    assert gw_span["session_id"] == "sess-tp" and gw_span["input_tokens"] > 0 and gw_span["output"]
    # The 5 kB prompt is over the 2 kB cap: cut with a visible marker, never dropped.
    assert gw_span["input_bytes"] > 5000 and "…[truncated " in gw_span["input"]
    sessions = _get(traced, "/api/sessions/sess-tp")["traces"]
    assert [t["trace_id"] for t in sessions] == [trace_id]
    # The gateway's spans also went to the configured collector.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        exported = [s for body in list(receiver.bodies) for s in decode(parse_protobuf(body), 10_000)]
        if any(s.trace_id == trace_id and s.metadata.get("aistrata.request_id") == gw_span["request_id"] for s in exported):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the gateway's span never reached the OTLP receiver")


def test_otlp_json_and_span_api_with_a_virtual_key(traced: GatewayServer) -> None:
    key = _key(traced, alias="app", team_id="team-a")
    other = _key(traced, alias="other", team_id="team-b")
    auth = {"Authorization": f"Bearer {key}"}
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "retrieve",
        "startTimeUnixNano": str(time.time_ns()), "endTimeUnixNano": str(time.time_ns() + 10**6),
        "attributes": [{"key": "openinference.span.kind", "value": {"stringValue": "RETRIEVER"}}]}]}]}]}
    garbage = httpx.post(traced.url + "/v1/traces", headers={**auth, "content-type": "application/x-protobuf"},
                         content=b"\xff\xff not protobuf")
    assert garbage.status_code == 400
    response = httpx.post(traced.url + "/v1/traces", headers={**auth, "content-type": "application/json"},
                          content=orjson.dumps(body))
    assert response.status_code == 200, response.text
    response = httpx.post(traced.url + "/api/spans", headers=auth, json={"spans": [
        {"trace_id": "0af7651916cd43dd8448eb211c80319c", "parent_span_id": "b7ad6b7169203331", "name": "rerank",
         "type": "retriever", "model": "rr-1", "cost_usd": 0.002}]})
    assert response.status_code == 202, response.text
    spans = _get(traced, "/api/spans", headers=auth, trace_id="0af7651916cd43dd8448eb211c80319c")["data"]
    assert {s["name"] for s in spans} == {"retrieve", "rerank"}
    assert all(s["team_id"] == "team-a" and s["type"] == "retriever" for s in spans)
    assert _get(traced, "/api/spans", headers={"Authorization": f"Bearer {other}"},
                trace_id="0af7651916cd43dd8448eb211c80319c")["data"] == []
    missing = httpx.get(traced.url + "/api/traces/0af7651916cd43dd8448eb211c80319c",
                        headers={"Authorization": f"Bearer {other}"})
    assert missing.status_code == 404
    assert httpx.post(traced.url + "/api/spans", json={"spans": []}).status_code == 401


def test_trace_list_filters_and_pages(traced: GatewayServer) -> None:
    client = openai.OpenAI(base_url=traced.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    for i in range(3):
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": f"q{i}"}],
                                       extra_headers={"x-aistrata-tags": "paging"})
    first = _get(traced, "/api/traces", tag="paging", limit=2)
    second = _get(traced, "/api/traces", tag="paging", limit=2, cursor=first["next_cursor"])
    rows = first["data"] + second["data"]
    assert len(rows) == 3 and second["next_cursor"] is None
    assert all(r["provider_name"] == "anthropic" and r["trace"]["span_count"] == 1 for r in rows)
    assert _get(traced, "/api/traces", tag="paging", model="gpt")["data"] == []
    assert len(_get(traced, "/api/spans", tag="paging", provider="anthropic", status="ok", since="1h")["data"]) == 3


def test_requests_export_jsonl(traced: GatewayServer) -> None:
    client = openai.OpenAI(base_url=traced.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "export me"}])
    traced.flush()
    response = httpx.get(traced.url + "/api/requests/export", headers=ADMIN, params={"since": "1h"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    rows = [orjson.loads(line) for line in response.content.splitlines()]
    assert rows and all(r["id"].startswith("req_") for r in rows)
    assert httpx.get(traced.url + "/api/requests/export", headers=ADMIN, params={"since": "soon"}).status_code == 400
