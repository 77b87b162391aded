"""The Gemini generateContent dialect: request encoding, response and stream decoding, error
mapping, and the real HTTP path against a loopback server serving canned Gemini bodies."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import orjson
import pytest
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
from aistrata.providers.dialects.gemini import (
    GeminiGenerateContent,
    StreamDecoder,
    clean_schema,
    decode_response,
    encode_request,
    error_from_body,
)
from aistrata.providers.http import HttpClient

CALL_ID = re.compile(r"^call_[0-9a-f]+$")


def req(*messages: Message, **kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=list(messages), **kw)


def user(text: str) -> Message:
    return Message("user", [TextPart(text)])


# ---- encode_request ------------------------------------------------------------------------


def test_system_goes_to_system_instruction_and_roles_merge() -> None:
    body = encode_request(req(
        Message("system", [TextPart("be brief")]), user("hi"), user("there"),
        Message("assistant", [ThinkingPart("hmm"), TextPart("hello")]), Message("assistant", [TextPart("again")]),
    ))
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}, {"text": "there"}]},
        {"role": "model", "parts": [{"text": "hello"}, {"text": "again"}]},
    ]
    assert "generationConfig" not in body


def test_empty_text_and_thinking_only_turns_are_dropped() -> None:
    body = encode_request(req(user("hi"), Message("assistant", [ThinkingPart("x"), TextPart("")]), user("more")))
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}, {"text": "more"}]}]


def test_images_inline_and_by_url() -> None:
    body = encode_request(req(Message("user", [
        ImagePart("data:image/png;base64,AAAA"), ImagePart("https://x.test/a/cat.webp?s=1"), ImagePart("https://x.test/img"),
    ])))
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        {"fileData": {"fileUri": "https://x.test/a/cat.webp?s=1", "mimeType": "image/webp"}},
        {"fileData": {"fileUri": "https://x.test/img", "mimeType": "image/jpeg"}},
    ]


def test_tool_calls_and_results_round_trip_by_name() -> None:
    body = encode_request(req(
        user("weather?"),
        Message("assistant", [ToolCallPart("call_1", "get_weather", '{"city":"Oslo"}'), ToolCallPart("call_2", "get_time", "")]),
        Message("tool", [ToolResultPart("call_1", "12C")]),
        Message("tool", [ToolResultPart("call_2", "boom", is_error=True)]),
        Message("tool", [ToolResultPart("other", "x", name="named")]),
    ))
    assert body["contents"][1] == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
        {"functionCall": {"name": "get_time", "args": {}}},
    ]}
    assert body["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"content": "12C"}}},
        {"functionResponse": {"name": "get_time", "response": {"error": "boom"}}},
        {"functionResponse": {"name": "named", "response": {"content": "x"}}},
    ]}


@pytest.mark.parametrize("args", ["{not json", "[1, 2]"])
def test_bad_tool_arguments_are_bad_request(args: str) -> None:
    with pytest.raises(GatewayError) as e:
        encode_request(req(Message("assistant", [ToolCallPart("c", "f", args)])))
    assert e.value.kind is ErrorKind.bad_request


def test_tool_result_without_a_known_call_is_bad_request() -> None:
    with pytest.raises(GatewayError) as e:
        encode_request(req(Message("tool", [ToolResultPart("nope", "x")])))
    assert e.value.kind is ErrorKind.bad_request


def test_clean_schema_strips_unsupported_keys_recursively() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
        "strict": True, "required": ["a"],
        "properties": {
            "a": {"type": ["string", "null"], "description": "d", "const": "x"},
            "additionalProperties": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                                                 "properties": {"z": {"type": "integer"}}}},
            "u": {"anyOf": [{"type": "string", "$ref": "#/x"}, {"type": "number"}]},
        },
    }
    assert clean_schema(schema) == {
        "type": "object", "required": ["a"],
        "properties": {
            "a": {"type": "string", "nullable": True, "description": "d"},
            # a *property* named like a banned key survives: only schema keywords are filtered
            "additionalProperties": {"type": "array", "items": {"type": "object", "properties": {"z": {"type": "integer"}}}},
            "u": {"anyOf": [{"type": "string"}, {"type": "number"}]},
        },
    }


def test_tools_and_tool_choice() -> None:
    tools = [ToolSpec("f", "does f", {"type": "object", "properties": {}, "additionalProperties": False}, strict=True), ToolSpec("g")]
    body = encode_request(req(user("x"), tools=tools, tool_choice=ToolChoice("tool", "g")))
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "f", "description": "does f", "parameters": {"type": "object", "properties": {}}},
        {"name": "g", "parameters": {"type": "object", "properties": {}}},
    ]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}}
    for mode, wire in (("auto", "AUTO"), ("required", "ANY"), ("none", "NONE")):
        body = encode_request(req(user("x"), tools=tools, tool_choice=ToolChoice(mode)))  # type: ignore[arg-type]
        assert body["toolConfig"] == {"functionCallingConfig": {"mode": wire}}


def test_generation_config_and_extras() -> None:
    body = encode_request(req(
        user("x"), max_tokens=100, temperature=0.5, top_p=0.9, stop=["END"], seed=7, n=2,
        extra={"top_k": 40, "safetySettings": [{"category": "X"}], "logit_bias": {"1": 2}},
    ))
    assert body["generationConfig"] == {
        "maxOutputTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"], "seed": 7,
        "candidateCount": 2, "topK": 40,
    }
    assert body["safetySettings"] == [{"category": "X"}]
    assert "logit_bias" not in body


def test_response_formats() -> None:
    body = encode_request(req(user("x"), response_format=ResponseFormat("json_object")))
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    body = encode_request(req(user("x"), response_format=ResponseFormat("json_schema", schema, "r", True)))
    assert body["generationConfig"] == {
        "responseMimeType": "application/json", "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}},
    }
    assert "generationConfig" not in encode_request(req(user("x"), response_format=ResponseFormat("text")))


# ---- decode_response -----------------------------------------------------------------------

ANSWER = {
    "candidates": [{
        "content": {"role": "model", "parts": [
            {"text": "pondering", "thought": True, "thoughtSignature": "sig1"},
            {"text": "The answer."},
            {"thoughtSignature": "sig2"},
        ]},
        "finishReason": "STOP", "index": 0,
    }],
    "usageMetadata": {"promptTokenCount": 15, "candidatesTokenCount": 6, "thoughtsTokenCount": 20,
                      "cachedContentTokenCount": 10, "totalTokenCount": 41},
    "modelVersion": "gemini-2.5-flash-001", "responseId": "resp-1",
}


def test_decode_text_thinking_and_usage() -> None:
    r = decode_response(ANSWER, "gemini-2.5-flash")
    assert (r.id, r.model) == ("resp-1", "gemini-2.5-flash-001")
    (choice,) = r.choices
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.parts == [ThinkingPart("pondering", "sig1"), TextPart("The answer.")]
    u = r.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens) == (15, 26, 10, 20)


def test_decode_function_calls() -> None:
    data = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "s"},
        {"functionCall": {"name": "noargs"}},
    ]}, "finishReason": "STOP"}]}
    r = decode_response(data, "gemini-x")
    assert r.model == "gemini-x" and r.id
    calls = r.choices[0].message.tool_calls
    assert [c.name for c in calls] == ["get_weather", "noargs"]
    assert orjson.loads(calls[0].arguments) == {"city": "Oslo"} and calls[1].arguments == "{}"
    assert all(CALL_ID.match(c.id) for c in calls) and calls[0].id != calls[1].id
    assert r.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("reason,expected", [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("BLOCKLIST", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("OTHER", "stop"), ("MALFORMED_FUNCTION_CALL", "stop"),
])
def test_finish_reasons(reason: str, expected: str) -> None:
    r = decode_response({"candidates": [{"finishReason": reason}]}, "m")
    assert r.choices[0].finish_reason == expected and r.choices[0].message.parts == []


def test_blocked_prompt_is_content_policy() -> None:
    with pytest.raises(GatewayError) as e:
        decode_response({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}, "m")
    assert e.value.kind is ErrorKind.content_policy


def test_answer_without_candidates_is_upstream_failure() -> None:
    with pytest.raises(GatewayError) as e:
        decode_response({"usageMetadata": {}}, "m")
    assert e.value.kind is ErrorKind.upstream_unavailable


# ---- StreamDecoder -------------------------------------------------------------------------

FRAMES: list[dict[str, Any]] = [
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "think", "thought": True}]}, "index": 0}],
     "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}, "modelVersion": "gemini-3-pro", "responseId": "r9"},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
     "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1, "thoughtsTokenCount": 4}},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"thoughtSignature": "abc"}]}, "index": 0}]},
    {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}},
                                                             {"functionCall": {"name": "g", "args": {}}}]},
                     "finishReason": "STOP", "index": 0}],
     "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9, "thoughtsTokenCount": 4, "cachedContentTokenCount": 2}},
]


def test_stream_decoder_events() -> None:
    d = StreamDecoder("gemini-3")
    events = [ev for f in FRAMES for ev in d.feed(f)] + d.end()
    assert events[0] == StreamStart("r9", "gemini-3-pro")
    assert events[1] == ThinkingDelta("think")
    assert events[2:4] == [TextDelta("Hel"), TextDelta("lo")]
    f, g = events[4], events[5]
    assert isinstance(f, ToolCallDelta) and isinstance(g, ToolCallDelta)
    assert (f.call_index, f.name, orjson.loads(f.arguments)) == (0, "f", {"a": 1})
    assert (g.call_index, g.name, g.arguments) == (1, "g", "{}")
    assert f.id and CALL_ID.match(f.id) and f.id != g.id
    assert events[6] == StreamFinish("tool_calls", 0)
    assert isinstance(events[7], UsageReport) and len(events) == 8
    u = events[7].usage  # the last usage seen, not a sum of frames
    assert (u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cache_read_tokens) == (5, 13, 4, 2)


def test_stream_start_falls_back_to_deployment_model() -> None:
    (start, text) = StreamDecoder("dep-model").feed({"candidates": [{"content": {"parts": [{"text": "x"}]}}]})
    assert isinstance(start, StreamStart) and start.model == "dep-model" and start.id
    assert text == TextDelta("x")


def test_stream_cut_before_finish_raises() -> None:
    d = StreamDecoder("m")
    d.feed(FRAMES[1])
    with pytest.raises(GatewayError) as e:
        d.end()
    assert e.value.kind is ErrorKind.upstream_unavailable


def test_stream_finish_without_usage_reports_nothing() -> None:
    d = StreamDecoder("m")
    assert d.feed({"candidates": [{"finishReason": "MAX_TOKENS"}]})[-1] == StreamFinish("length")
    assert d.end() == []


def test_stream_blocked_and_error_frames_raise() -> None:
    with pytest.raises(GatewayError) as e:
        StreamDecoder("m").feed({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})
    assert e.value.kind is ErrorKind.content_policy
    with pytest.raises(GatewayError) as e:
        StreamDecoder("m").feed({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    assert e.value.kind is ErrorKind.upstream_unavailable


# ---- errors --------------------------------------------------------------------------------


def gerr(code: int, status: str, message: str = "boom", **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, **extra}}


@pytest.mark.parametrize("status,body,kind", [
    (429, gerr(429, "RESOURCE_EXHAUSTED"), ErrorKind.rate_limit),
    (401, gerr(401, "UNAUTHENTICATED"), ErrorKind.authentication),
    (403, gerr(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without API key)"), ErrorKind.authentication),
    (403, gerr(403, "PERMISSION_DENIED", "project lacks access"), ErrorKind.permission),
    (400, gerr(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."), ErrorKind.authentication),
    (400, gerr(400, "INVALID_ARGUMENT", "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576)."), ErrorKind.context_length),
    (400, gerr(400, "INVALID_ARGUMENT", "bad field"), ErrorKind.bad_request),
    (404, gerr(404, "NOT_FOUND"), ErrorKind.not_found),
    (503, gerr(503, "UNAVAILABLE"), ErrorKind.upstream_unavailable),
    (500, gerr(500, "INTERNAL"), ErrorKind.upstream_unavailable),
    (504, gerr(504, "DEADLINE_EXCEEDED"), ErrorKind.timeout),
    (502, {"error": {"message": "html"}}, ErrorKind.upstream_unavailable),
    (400, [gerr(400, "INVALID_ARGUMENT")], ErrorKind.bad_request),
])
def test_error_mapping(status: int, body: Any, kind: ErrorKind) -> None:
    e = error_from_body(status, body, {}, "gemini")
    assert e.kind is kind and e.provider == "gemini"


def test_rate_limit_retry_after_from_header_or_retry_info() -> None:
    assert error_from_body(429, gerr(429, "RESOURCE_EXHAUSTED"), {"retry-after": "7"}, None).retry_after == 7
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]
    assert error_from_body(429, gerr(429, "RESOURCE_EXHAUSTED", details=details), {}, None).retry_after == 37


# ---- the real HTTP path --------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(routes: dict[str, Handler], seen: list[web.Request]) -> AsyncIterator[Deployment]:
    """A loopback server dispatching on the request path; yields a deployment aimed at it."""

    async def dispatch(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        await request.read()  # cache the body so tests can inspect it after the response
        return await routes[request.path](request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Deployment("d1", "g", "gemini", "gemini", "gemini-2.5-flash", f"http://127.0.0.1:{port}/", Secret("k-123"))
    finally:
        await runner.cleanup()


def sse(frames: list[Any], raw_tail: bytes = b"") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for f in frames:
            await resp.write(b"data: " + orjson.dumps(f) + b"\r\n\r\n")
        await resp.write(raw_tail)
        return resp
    return handler


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)
    return handler


CHAT = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


async def test_http_chat_sends_key_and_body() -> None:
    seen: list[web.Request] = []
    http = HttpClient()
    async with serve({CHAT: json_reply(ANSWER)}, seen) as dep:
        r = await GeminiGenerateContent().chat(http, req(user("hi"), max_tokens=5), dep)
    await http.close()
    assert r.choices[0].message.text == "The answer."
    assert seen[0].headers["x-goog-api-key"] == "k-123"
    sent = orjson.loads(await seen[0].read())
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert sent["generationConfig"] == {"maxOutputTokens": 5}


async def test_http_stream_uses_alt_sse_and_decodes_frames() -> None:
    seen: list[web.Request] = []
    http = HttpClient()
    async with serve({STREAM: sse(FRAMES)}, seen) as dep:
        events = [ev async for ev in GeminiGenerateContent().stream(http, req(user("hi"), stream=True), dep)]
    await http.close()
    assert seen[0].query["alt"] == "sse"
    assert isinstance(events[0], StreamStart) and isinstance(events[-1], UsageReport)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello"
    assert [e for e in events if isinstance(e, StreamFinish)] == [StreamFinish("tool_calls")]


@pytest.mark.parametrize("tail", [b"", b"data: {\"candidates\""], ids=["clean-close", "mid-frame"])
async def test_http_stream_cut_raises_upstream_unavailable(tail: bytes) -> None:
    http = HttpClient()
    async with serve({STREAM: sse(FRAMES[:2], tail)}, []) as dep:
        events = []
        with pytest.raises(GatewayError) as e:
            async for ev in GeminiGenerateContent().stream(http, req(user("hi"), stream=True), dep):
                events.append(ev)
    await http.close()
    assert e.value.kind is ErrorKind.upstream_unavailable
    assert [type(ev) for ev in events] == [StreamStart, ThinkingDelta, TextDelta]


async def test_http_errors_are_mapped() -> None:
    http = HttpClient()
    routes = {STREAM: json_reply(gerr(429, "RESOURCE_EXHAUSTED", "quota"), 429, {"retry-after": "3"})}
    async with serve(routes, []) as dep:
        with pytest.raises(GatewayError) as e:
            async for _ in GeminiGenerateContent().stream(http, req(user("hi"), stream=True), dep):
                pass
    await http.close()
    assert (e.value.kind, e.value.retry_after, e.value.message) == (ErrorKind.rate_limit, 3, "quota")


async def test_http_embed_and_list_models() -> None:
    seen: list[web.Request] = []
    pages = iter([{"models": [{"name": "models/gemini-2.5-flash"}], "nextPageToken": "p2"},
                  {"models": [{"name": "models/text-embedding-004"}]}])

    async def listing(request: web.Request) -> web.StreamResponse:
        return web.Response(body=orjson.dumps(next(pages)), content_type="application/json")

    routes = {
        "/v1beta/models/gemini-2.5-flash:batchEmbedContents": json_reply({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]}),
        "/v1beta/models": listing,
    }
    http = HttpClient()
    async with serve(routes, seen) as dep:
        dialect = GeminiGenerateContent()
        emb = await dialect.embed(http, EmbeddingRequest("m", ["a", "b"], dimensions=2), dep)
        names = await dialect.list_models(http, dep)
    await http.close()
    assert emb.vectors == [[0.1, 0.2], [0.3, 0.4]]
    sent = orjson.loads(await seen[0].read())
    assert sent["requests"][1] == {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 2}
    assert names == ["gemini-2.5-flash", "text-embedding-004"]
    assert seen[2].query["pageToken"] == "p2"
