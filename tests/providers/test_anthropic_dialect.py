"""The Anthropic Messages client dialect: request encoding, response and stream decoding,
error mapping, and the HTTP plumbing against a tiny loopback server."""

from __future__ import annotations

from typing import Any, AsyncIterator

import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from aistrata.core import (
    ChatRequest,
    EmbeddingRequest,
    ErrorKind,
    GatewayError,
    ImagePart,
    Message,
    ResponseFormat,
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
    ToolSpec,
    UsageReport,
)
from aistrata.providers.base import Deployment, Secret
from aistrata.providers.dialects.anthropic_messages import (
    AnthropicMessages,
    StreamDecoder,
    decode_response,
    encode_request,
    error_from_body,
    messages_to_wire,
    usage_from_wire,
)
from aistrata.providers.http import HttpClient


def req(*messages: Message, **kw: Any) -> ChatRequest:
    return ChatRequest(model="claude", messages=list(messages), **kw)


def user(text: str) -> Message:
    return Message("user", [TextPart(text)])


# ---- requests ------------------------------------------------------------------------------


def test_system_is_lifted_and_max_tokens_defaults() -> None:
    body = encode_request(req(Message("system", [TextPart("be brief")]), user("hi")), "claude-x", 1234)
    assert body == {"model": "claude-x", "system": "be brief", "max_tokens": 1234,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert encode_request(req(user("hi"), max_tokens=7), "m")["max_tokens"] == 7


def test_consecutive_same_role_messages_merge() -> None:
    wire = messages_to_wire([user("a"), user("b"), Message("assistant", [TextPart("c")]),
                             Message("assistant", [TextPart("")]), user("d")])
    assert [t["role"] for t in wire] == ["user", "assistant", "user"]
    assert [b["text"] for b in wire[0]["content"]] == ["a", "b"]


def test_tool_results_form_one_user_turn_after_tool_use() -> None:
    calls = Message("assistant", [TextPart("checking"), ToolCallPart("toolu_1", "w", '{"city":"Oslo"}'),
                                  ToolCallPart("toolu_2", "w", "")])
    wire = messages_to_wire([
        user("weather?"), calls,
        Message("tool", [ToolResultPart("toolu_1", "sunny")]),
        Message("tool", [ToolResultPart("toolu_2", "boom", is_error=True)]),
        user("thanks"),
    ])
    assert [t["role"] for t in wire] == ["user", "assistant", "user"]
    assert wire[1]["content"][1:] == [
        {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_2", "name": "w", "input": {}},
    ]
    assert wire[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True},
        {"type": "text", "text": "thanks"},
    ]


def test_tool_results_go_first_in_their_turn() -> None:
    wire = messages_to_wire([user("note"), Message("tool", [ToolResultPart("t", "r")])])
    assert [b["type"] for b in wire[0]["content"]] == ["tool_result", "text"]


@pytest.mark.parametrize("arguments", ['{"city": ', "[1, 2]", "nope"])
def test_malformed_tool_arguments_are_a_bad_request(arguments: str) -> None:
    msg = Message("assistant", [ToolCallPart("toolu_1", "w", arguments)])
    with pytest.raises(GatewayError) as info:
        encode_request(req(user("x"), msg), "m")
    assert info.value.kind is ErrorKind.bad_request and "toolu_1" in info.value.message


def test_images() -> None:
    wire = messages_to_wire([Message("user", [ImagePart("data:image/png;base64,QUJD"), ImagePart("https://x/y.jpg")])])
    assert wire[0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}},
    ]


def test_thinking_is_sent_back_only_when_signed() -> None:
    wire = messages_to_wire([user("q"), Message("assistant", [ThinkingPart("hmm", "sig"), ThinkingPart("other"),
                                                              TextPart("a")])])
    assert wire[1]["content"] == [{"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "a"}]


def test_parameters_tools_and_choice() -> None:
    body = encode_request(req(
        user("x"), temperature=0.2, top_p=0.9, stop=["END"], user="u1", seed=5, parallel_tool_calls=False,
        tools=[ToolSpec("w", "weather", {"type": "object", "properties": {}}, strict=True)],
        tool_choice=ToolChoice("required"), extra={"top_k": 3, "thinking": {"type": "enabled", "budget_tokens": 1024}},
    ), "m")
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "u1"}
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9 and "seed" not in body
    assert body["tools"] == [{"name": "w", "description": "weather", "strict": True,
                              "input_schema": {"type": "object", "properties": {}}}]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["top_k"] == 3 and body["thinking"]["budget_tokens"] == 1024


@pytest.mark.parametrize(("choice", "parallel", "wire"), [
    (ToolChoice("auto"), None, {"type": "auto"}),
    (ToolChoice("none"), False, {"type": "none"}),
    (ToolChoice("tool", "w"), None, {"type": "tool", "name": "w"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    (None, None, None),
])
def test_tool_choice_mapping(choice: ToolChoice | None, parallel: bool | None, wire: Any) -> None:
    body = encode_request(req(user("x"), tool_choice=choice, parallel_tool_calls=parallel), "m")
    assert body.get("tool_choice") == wire


def test_json_schema_uses_output_config_and_merges_extra() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = encode_request(req(user("x"), response_format=ResponseFormat("json_schema", schema, "answer"),
                              extra={"output_config": {"effort": "low"}}), "m")
    assert body["output_config"] == {"effort": "low", "format": {"type": "json_schema", "schema": schema}}
    assert "output_config" not in encode_request(req(user("x"), response_format=ResponseFormat("json_object")), "m")


def test_n_above_one_is_rejected() -> None:
    with pytest.raises(GatewayError) as info:
        encode_request(req(user("x"), n=2), "m")
    assert info.value.kind is ErrorKind.bad_request and info.value.param == "n"


# ---- responses -----------------------------------------------------------------------------


def test_usage_includes_cache_tokens() -> None:
    u = usage_from_wire({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100,
                         "cache_creation_input_tokens": 20, "output_tokens_details": {"thinking_tokens": 3}})
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens) == (130, 5, 100, 20, 3)


def test_decode_response() -> None:
    resp = decode_response({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "text", "text": "hi"},
                    {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"a": 1}},
                    {"type": "redacted_thinking", "data": "xx"}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 1},
    })
    (choice,) = resp.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.parts == [ThinkingPart("t", "s"), TextPart("hi"), ToolCallPart("toolu_1", "w", '{"a":1}')]
    assert (resp.id, resp.model, resp.usage.input_tokens, resp.usage.output_tokens) == ("msg_1", "claude-x", 6, 4)


@pytest.mark.parametrize(("reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("something_new", "stop"),
])
def test_stop_reason_mapping(reason: str, finish: str) -> None:
    resp = decode_response({"content": [], "stop_reason": reason, "stop_sequence": "X" if reason == "stop_sequence" else None})
    assert resp.choices[0].finish_reason == finish
    assert resp.provider_details.get("stop_sequence") == ("X" if reason == "stop_sequence" else None)


# ---- streams -------------------------------------------------------------------------------

TOOL_STREAM: list[dict[str, Any]] = [
    {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "content": [], "usage": {
        "input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 7}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "let me"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hel"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "lo"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "w", "input": {}}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'}},
    {"type": "content_block_stop", "index": 2},
    {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}}},
    {"type": "content_block_stop", "index": 3},
    {"type": "brand_new_event", "whatever": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 42}},
    {"type": "message_stop"},
]


def decode_all(events: list[dict[str, Any]]) -> tuple[StreamDecoder, list[Any]]:
    decoder = StreamDecoder("anthropic")
    return decoder, [ev for e in events for ev in decoder.feed(e)]


def test_stream_decoding_sequence() -> None:
    decoder, out = decode_all(TOOL_STREAM)
    assert decoder.finished
    assert out[:-1] == [
        StreamStart("msg_1", "claude-x"),
        ThinkingDelta("let me"), ThinkingDelta("", "SIG"),
        TextDelta("Hel"), TextDelta("lo"),
        ToolCallDelta(0, "", "toolu_a", "w"), ToolCallDelta(0, '{"city":'), ToolCallDelta(0, '"Oslo"}'),
        ToolCallDelta(1, "", "toolu_b", "now"), ToolCallDelta(1, "{}"),  # no-argument call gets "{}"
        StreamFinish("tool_calls"),
    ]
    usage = out[-1].usage
    assert isinstance(out[-1], UsageReport)
    # output is assigned (not 1 + 42); input includes the cache counts
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (132, 42, 100, 7)


def test_message_delta_may_repeat_input_and_cache_counts() -> None:
    events = [TOOL_STREAM[0], {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                               "usage": {"output_tokens": 9, "input_tokens": 30, "cache_read_input_tokens": None,
                                         "cache_creation_input_tokens": 0}},
              {"type": "message_stop"}]
    _, out = decode_all(events)
    u = out[-1].usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens) == (130, 9, 100, 0)


def test_stream_without_message_delta_still_finishes() -> None:
    _, out = decode_all([TOOL_STREAM[0], {"type": "message_stop"}])
    assert isinstance(out[1], StreamFinish) and isinstance(out[2], UsageReport)


def test_in_stream_error_raises_mapped_error() -> None:
    decoder = StreamDecoder("anthropic")
    decoder.feed(TOOL_STREAM[0])
    with pytest.raises(GatewayError) as info:
        decoder.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert info.value.kind is ErrorKind.upstream_unavailable and info.value.message == "Overloaded"


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "etype", "message", "kind"), [
    (401, "authentication_error", "invalid x-api-key", ErrorKind.authentication),
    (403, "permission_error", "no", ErrorKind.permission),
    (404, "not_found_error", "model: nope", ErrorKind.not_found),
    (429, "rate_limit_error", "slow down", ErrorKind.rate_limit),
    (529, "overloaded_error", "Overloaded", ErrorKind.upstream_unavailable),
    (529, "", "", ErrorKind.upstream_unavailable),
    (500, "api_error", "oops", ErrorKind.upstream_unavailable),
    (504, "timeout_error", "slow", ErrorKind.timeout),
    (402, "billing_error", "credit balance too low", ErrorKind.upstream_unavailable),
    (413, "request_too_large", "too big", ErrorKind.request_too_large),
    (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", ErrorKind.context_length),
    (400, "invalid_request_error", "input length and `max_tokens` exceed context limit", ErrorKind.context_length),
    (400, "invalid_request_error", "messages: roles must alternate", ErrorKind.bad_request),
    (400, "invalid_request_error", "Output blocked by content filtering policy", ErrorKind.content_policy),
])
def test_error_mapping(status: int, etype: str, message: str, kind: ErrorKind) -> None:
    body = {"type": "error", "error": {"type": etype, "message": message}} if etype else None
    err = error_from_body(status, body, {"retry-after": "7"}, "anthropic")
    assert err.kind is kind
    assert err.retry_after == 7.0
    assert err.message == (message or "upstream answered HTTP 529")


# ---- HTTP plumbing against a loopback server ----------------------------------------------


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


# The project default runs async fixtures on a session loop; the server must share the test's loop.
@pytest_asyncio.fixture(loop_scope="function")
async def upstream() -> AsyncIterator[tuple[Deployment, list[web.Request], dict[str, Any]]]:
    seen: list[web.Request] = []
    script: dict[str, Any] = {}

    async def messages(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        script["body"] = await request.json()
        if "error" in script:
            return web.json_response(script["error"], status=script["status"], headers={"retry-after": "2"})
        if script["body"].get("stream"):
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(sse(script["events"]))
            return resp
        return web.json_response(script["message"])

    async def models(request: web.Request) -> web.Response:
        if request.query.get("after_id") == "b":
            return web.json_response({"data": [{"id": "c"}], "has_more": False, "last_id": "c"})
        return web.json_response({"data": [{"id": "a"}, {"id": "b"}], "has_more": True, "last_id": "b"})

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    dep = Deployment("d1", "g", "anthropic", "anthropic_messages", "claude-x", f"http://127.0.0.1:{port}",
                     api_key=Secret("sk-test"), timeout=10, info={"max_output_tokens": 999})
    yield dep, seen, script
    await runner.cleanup()


async def test_chat_over_http(upstream: Any) -> None:
    dep, seen, script = upstream
    script["message"] = {"id": "msg_9", "model": "claude-x", "content": [{"type": "text", "text": "yo"}],
                         "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 2}}
    http = HttpClient()
    try:
        resp = await AnthropicMessages().chat(http, req(user("hi")), dep)
    finally:
        await http.close()
    assert resp.choices[0].message.text == "yo"
    assert seen[0].headers["x-api-key"] == "sk-test" and seen[0].headers["anthropic-version"] == "2023-06-01"
    assert script["body"]["max_tokens"] == 999 and script["body"]["model"] == "claude-x"


async def test_http_error_maps_with_retry_after(upstream: Any) -> None:
    dep, _, script = upstream
    script.update(status=429, error={"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})
    http = HttpClient()
    try:
        with pytest.raises(GatewayError) as info:
            await AnthropicMessages().chat(http, req(user("hi")), dep)
    finally:
        await http.close()
    assert info.value.kind is ErrorKind.rate_limit and info.value.retry_after == 2.0


async def test_stream_over_http_and_cut_stream(upstream: Any) -> None:
    dep, _, script = upstream
    http = HttpClient()
    try:
        script["events"] = TOOL_STREAM
        events = [e async for e in AnthropicMessages().stream(http, req(user("hi"), stream=True), dep)]
        assert script["body"]["stream"] is True
        assert isinstance(events[0], StreamStart) and isinstance(events[-1], UsageReport)
        script["events"] = TOOL_STREAM[:9]  # ends mid-text, no message_stop
        with pytest.raises(GatewayError) as info:
            [e async for e in AnthropicMessages().stream(http, req(user("hi"), stream=True), dep)]
        assert info.value.kind is ErrorKind.upstream_unavailable and "cut" in info.value.message
    finally:
        await http.close()


async def test_list_models_pages_and_embed_is_refused(upstream: Any) -> None:
    dep, _, _ = upstream
    http = HttpClient()
    try:
        assert await AnthropicMessages().list_models(http, dep) == ["a", "b", "c"]
        with pytest.raises(GatewayError) as info:
            await AnthropicMessages().embed(http, EmbeddingRequest("claude-x", ["x"]), dep)
        assert info.value.kind is ErrorKind.bad_request
    finally:
        await http.close()
