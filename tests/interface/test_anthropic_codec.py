"""The Anthropic ingress codec: request parsing, message rendering, the SSE stream encoder
(checked against the real `anthropic` SDK's accumulator) and error rendering."""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable

import anthropic
import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from aistrata.core import (
    ChatResponse,
    Choice,
    ErrorKind,
    GatewayError,
    ImagePart,
    Message,
    StreamFinish,
    StreamStart,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
    UsageReport,
)
from aistrata.interface.dialects.anthropic import StreamEncoder, parse_chat, render_chat, render_error
from aistrata.providers.dialects.anthropic_messages import StreamDecoder


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]} | kw


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in raw.decode().split("\n\n"):
        if frame:
            name, data = frame.split("\n")
            out.append((name.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


# ---- parse_chat ----------------------------------------------------------------------------


def test_parse_full_request() -> None:
    req = parse_chat(body(
        system=[{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
                                         {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "S"},
                                              {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
                                         {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True},
                                         {"type": "text", "text": "and now?"}]},
        ],
        tools=[{"name": "w", "description": "weather", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        stop_sequences=["END"], metadata={"user_id": "u1"}, temperature=0.5, top_p=0.9, top_k=5,
        thinking={"type": "enabled", "budget_tokens": 1024}, stream=True,
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "low"},
        cache={"no-cache": True},
    ))
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool", "user"]
    assert req.messages[0].text == "be brief"
    assert req.messages[1].parts[1:] == [ImagePart("data:image/png;base64,QUJD"), ImagePart("https://x/y.png")]
    assert req.messages[2].parts == [ThinkingPart("hmm", "S"), ToolCallPart("toolu_1", "w", '{"city":"Oslo"}')]
    assert req.messages[3].parts == [ToolResultPart("toolu_1", "sunny"), ToolResultPart("toolu_2", "boom", True)]
    assert req.messages[4].text == "and now?"
    assert req.tools and req.tools[0].parameters == {"type": "object"} and req.tools[0].description == "weather"
    assert req.tool_choice == ToolChoice("required") and req.parallel_tool_calls is False
    assert (req.stop, req.user, req.temperature, req.top_p, req.max_tokens) == (["END"], "u1", 0.5, 0.9, 100)
    assert req.stream and req.include_usage
    assert req.response_format is not None and req.response_format.schema == {"type": "object"}
    assert req.options == {"cache": {"no-cache": True}}  # gateway options never go upstream
    assert req.extra == {"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}, "output_config": {"effort": "low"}}


@pytest.mark.parametrize(("tc", "mode", "name"), [({"type": "auto"}, "auto", None), ({"type": "none"}, "none", None),
                                                  ({"type": "tool", "name": "w"}, "tool", "w")])
def test_tool_choice(tc: dict[str, Any], mode: str, name: str | None) -> None:
    req = parse_chat(body(tool_choice=tc))
    assert req.tool_choice == ToolChoice(mode, name) and req.parallel_tool_calls is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("bad", "param"), [
    ({"model": ""}, "model"),
    ({"max_tokens": None}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]},
     "messages[0].content[0].source"),
    ({"system": [{"type": "image"}]}, "system[0]"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ({"tools": [{"name": "w"}]}, "tools[0]"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
    ({"stop_sequences": "END"}, "stop_sequences"),
])
def test_invalid_requests_name_the_field(bad: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse_chat(body(**bad))
    assert info.value.kind is ErrorKind.bad_request and info.value.param == param


# ---- render_chat ---------------------------------------------------------------------------


def response(*parts: Any, finish: Any = "stop", usage: Usage | None = None, **details: Any) -> ChatResponse:
    return ChatResponse("chatcmpl-1", "gpt-x", [Choice(0, Message("assistant", list(parts)), finish)],
                        usage or Usage(), provider_details=details)


def test_render_chat_message_shape_and_usage() -> None:
    out = render_chat(response(ThinkingPart("t", "S"), TextPart("hi"), ToolCallPart("call_1", "w", '{"a":1}'),
                               finish="tool_calls", usage=Usage(130, 5, cache_read_tokens=100, cache_write_tokens=20)),
                      "claude-alias")
    assert out["id"].startswith("msg_") and out["model"] == "claude-alias"
    assert (out["type"], out["role"], out["stop_reason"], out["stop_sequence"]) == ("message", "assistant", "tool_use", None)
    assert out["content"] == [{"type": "thinking", "thinking": "t", "signature": "S"}, {"type": "text", "text": "hi"},
                              {"type": "tool_use", "id": "call_1", "name": "w", "input": {"a": 1}}]
    assert out["usage"] == {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 20,
                            "cache_read_input_tokens": 100}
    # the result validates as the SDK's Message model
    assert anthropic.types.Message.model_validate(out).usage.cache_read_input_tokens == 100


@pytest.mark.parametrize(("arguments", "expected"), [("", {}), ('{"a": ', {"_raw_arguments": '{"a": '}),
                                                     ("[1]", {"_raw_arguments": "[1]"})])
def test_unparseable_tool_arguments_are_kept_raw(arguments: str, expected: dict[str, Any]) -> None:
    out = render_chat(response(ToolCallPart("call_1", "w", arguments), finish="tool_calls"), "m")
    assert out["content"][0]["input"] == expected


@pytest.mark.parametrize(("finish", "parts", "details", "reason"), [
    ("stop", [TextPart("x")], {}, "end_turn"), ("length", [], {}, "max_tokens"),
    ("content_filter", [], {}, "refusal"), ("stop", [], {"stop_sequence": "END"}, "stop_sequence"),
    ("stop", [ToolCallPart("c", "w", "{}")], {}, "tool_use"), (None, [], {}, "end_turn"),
])
def test_stop_reasons(finish: Any, parts: list[Any], details: dict[str, Any], reason: str) -> None:
    out = render_chat(response(*parts, finish=finish, **details), "m")
    assert out["stop_reason"] == reason
    assert out["stop_sequence"] == details.get("stop_sequence")


def test_anthropic_ids_are_kept() -> None:
    resp = response(TextPart("x"))
    resp.id = "msg_01abc"
    assert render_chat(resp, "m")["id"] == "msg_01abc"


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status", "etype"), [
    (ErrorKind.authentication, 401, "authentication_error"), (ErrorKind.permission, 403, "permission_error"),
    (ErrorKind.not_found, 404, "not_found_error"), (ErrorKind.bad_request, 400, "invalid_request_error"),
    (ErrorKind.context_length, 400, "invalid_request_error"), (ErrorKind.content_policy, 400, "invalid_request_error"),
    (ErrorKind.request_too_large, 413, "request_too_large"), (ErrorKind.rate_limit, 429, "rate_limit_error"),
    (ErrorKind.upstream_unavailable, 529, "overloaded_error"), (ErrorKind.timeout, 504, "timeout_error"),
    (ErrorKind.internal, 500, "api_error"), (ErrorKind.budget_exceeded, 402, "billing_error"),
])
def test_render_error(kind: ErrorKind, status: int, etype: str) -> None:
    assert render_error(GatewayError(kind, "why")) == (status, {"type": "error", "error": {"type": etype, "message": "why"}})


# ---- stream encoder ------------------------------------------------------------------------

TOOL_EVENTS: list[Any] = [
    StreamStart("chatcmpl-9", "gpt-x"),
    ThinkingDelta("let me "), ThinkingDelta("think"), ThinkingDelta("", "SIG"),
    TextDelta("Hel"), TextDelta("lo"),
    ToolCallDelta(0, "", "call_a", "w"), ToolCallDelta(0, '{"city":'), ToolCallDelta(0, '"Oslo"}'),
    ToolCallDelta(1, '{"tz":"UTC"}', "call_b", "now"),
    StreamFinish("tool_calls"),
    UsageReport(Usage(130, 42, cache_read_tokens=100, cache_write_tokens=7)),
]


def encode_all(events: list[Any], end: bool = True) -> bytes:
    enc = StreamEncoder("claude-alias", include_usage=False)
    out = b"".join(enc.encode(e) for e in events)
    return out + enc.end() if end else out


def test_encoder_event_sequence() -> None:
    events = parse_sse(encode_all(TOOL_EVENTS))
    assert [n for n, _ in events] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
        "content_block_delta", "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    ]
    assert all(n == d["type"] for n, d in events)
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and start["model"] == "claude-alias" and start["usage"]["input_tokens"] == 0
    assert [d["index"] for n, d in events if n == "content_block_start"] == [0, 1, 2, 3]
    assert events[11][1]["content_block"] == {"type": "tool_use", "id": "call_a", "name": "w", "input": {}}
    assert events[-2][1] == {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                             "usage": {"input_tokens": 23, "output_tokens": 42, "cache_creation_input_tokens": 7,
                                       "cache_read_input_tokens": 100}}


def test_start_keeps_anthropic_ids() -> None:
    ((name, data),) = parse_sse(StreamEncoder("m", include_usage=True).start(StreamStart("msg_01x", "claude-x")))
    assert name == "message_start" and data["message"]["id"] == "msg_01x" and data["message"]["model"] == "m"


def test_message_delta_waits_for_usage_after_finish() -> None:
    enc = StreamEncoder("m", include_usage=True)
    enc.encode(StreamStart("x", "m"))
    enc.encode(TextDelta("a"))
    assert b"message_delta" not in enc.encode(StreamFinish("length"))
    out = parse_sse(enc.encode(UsageReport(Usage(5, 3))) + enc.end())
    assert [n for n, _ in out] == ["message_delta", "message_stop"]
    assert out[0][1]["delta"]["stop_reason"] == "max_tokens" and out[0][1]["usage"]["output_tokens"] == 3


def test_end_without_usage_or_finish_still_closes_cleanly() -> None:
    out = parse_sse(encode_all([StreamStart("x", "m"), TextDelta("a")]))
    assert [n for n, _ in out][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert out[-2][1]["delta"]["stop_reason"] == "end_turn" and out[-2][1]["usage"] == {"output_tokens": 0}


def test_error_event() -> None:
    enc = StreamEncoder("m", include_usage=True)
    ((name, data),) = parse_sse(enc.error(GatewayError(ErrorKind.upstream_unavailable, "cut")))
    assert name == "error" and data == {"type": "error", "error": {"type": "overloaded_error", "message": "cut"}}


def test_decode_then_encode_round_trip() -> None:
    upstream = [
        {"type": "message_start", "message": {"id": "msg_01", "model": "claude-x", "content": [],
                                              "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 10,
                                                        "cache_creation_input_tokens": 0}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a":1}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 15}},
        {"type": "message_stop"},
    ]
    decoder = StreamDecoder("anthropic")
    wire = encode_all([ev for e in upstream for ev in decoder.feed(e)])
    got = [d for _, d in parse_sse(wire)]
    assert got[0]["message"]["id"] == "msg_01"
    assert got[1:-2] == upstream[1:-2]  # blocks, deltas and even the ping come out as they went in
    assert got[-2]["usage"] == {"input_tokens": 25, "output_tokens": 15, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 10}
    assert got[-2]["delta"]["stop_reason"] == "tool_use"


# ---- the real SDK against the encoder's bytes ----------------------------------------------


@pytest_asyncio.fixture(loop_scope="function")  # the server must run on the test's own loop
async def gateway() -> AsyncIterator[Callable[[bytes], anthropic.AsyncAnthropic]]:
    state: dict[str, Any] = {}

    async def messages(request: web.Request) -> web.StreamResponse:
        parsed = parse_chat(await request.json())  # the SDK's own request must parse
        if not parsed.stream:
            return web.json_response(render_chat(response(TextPart("plain"), usage=Usage(3, 4)), parsed.model))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(state["wire"])
        return resp

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    clients: list[anthropic.AsyncAnthropic] = []

    def client(wire: bytes) -> anthropic.AsyncAnthropic:
        state["wire"] = wire
        clients.append(anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{port}", api_key="k", max_retries=0))
        return clients[-1]

    yield client
    for c in clients:
        await c.close()
    await runner.cleanup()


async def test_sdk_accumulates_encoder_stream(gateway: Callable[[bytes], anthropic.AsyncAnthropic]) -> None:
    client = gateway(encode_all(TOOL_EVENTS))
    async with client.messages.stream(model="claude-alias", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
        msg = await s.get_final_message()
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert msg.content[0].thinking == "let me think" and msg.content[0].signature == "SIG"  # type: ignore[union-attr]
    assert msg.content[1].text == "Hello"  # type: ignore[union-attr]
    assert msg.content[2].input == {"city": "Oslo"} and msg.content[3].input == {"tz": "UTC"}  # type: ignore[union-attr]
    assert msg.stop_reason == "tool_use"
    u = msg.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens) == (23, 42, 100, 7)


async def test_sdk_sees_in_band_error(gateway: Callable[[bytes], anthropic.AsyncAnthropic]) -> None:
    enc = StreamEncoder("m", include_usage=True)
    wire = enc.encode(StreamStart("x", "m")) + enc.encode(TextDelta("par")) + enc.error(GatewayError(ErrorKind.upstream_unavailable, "cut"))
    client = gateway(wire)
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]) as s:
            await s.get_final_message()
    assert "cut" in str(info.value)


async def test_sdk_parses_rendered_message(gateway: Callable[[bytes], anthropic.AsyncAnthropic]) -> None:
    msg = await gateway(b"").messages.create(model="claude-alias", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "plain" and msg.model == "claude-alias" and msg.usage.output_tokens == 4  # type: ignore[union-attr]
