"""The Ollama native-API dialect: request encoding, response and NDJSON stream decoding, error
mapping, and the real HTTP path against a loopback server serving canned Ollama bodies."""

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
    Usage,
    UsageReport,
)
from aistrata.providers.base import Deployment, Secret
from aistrata.providers.dialects.ollama import OllamaChat, StreamDecoder, decode_response, encode_request, error_from_body
from aistrata.providers.http import HttpClient

CALL_ID = re.compile(r"^call_[0-9a-f]+$")


def req(*messages: Message, **kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=list(messages), **kw)


def user(text: str) -> Message:
    return Message("user", [TextPart(text)])


# ---- encode_request ------------------------------------------------------------------------


def test_messages_images_and_stream_flag() -> None:
    body = encode_request(req(
        Message("system", [TextPart("be brief")]),
        Message("user", [TextPart("what is "), ImagePart("data:image/png;base64,AAAA"), TextPart("this?")]),
        Message("assistant", [ThinkingPart("hmm"), TextPart("a cat")]),
    ), "llama3.2", stream=True)
    assert body == {"model": "llama3.2", "stream": True, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is this?", "images": ["AAAA"]},
        {"role": "assistant", "content": "a cat"},
    ]}


def test_url_images_are_bad_request() -> None:
    with pytest.raises(GatewayError) as e:
        encode_request(req(Message("user", [ImagePart("https://x.test/cat.png")])), "m", stream=False)
    assert e.value.kind is ErrorKind.bad_request


def test_tool_calls_and_results() -> None:
    body = encode_request(req(
        user("weather?"),
        Message("assistant", [ToolCallPart("call_1", "get_weather", '{"city":"Oslo"}')]),
        Message("tool", [ToolResultPart("call_1", "12C")]),
        Message("tool", [ToolResultPart("x", "named", name="n"), ToolResultPart("unknown", "anon")]),
    ), "m", stream=False)
    assert body["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "12C", "tool_name": "get_weather"},
        {"role": "tool", "content": "named", "tool_name": "n"},
        {"role": "tool", "content": "anon"},
    ]


def test_bad_tool_arguments_are_bad_request() -> None:
    with pytest.raises(GatewayError) as e:
        encode_request(req(Message("assistant", [ToolCallPart("c", "f", "{oops")])), "m", stream=False)
    assert e.value.kind is ErrorKind.bad_request


def test_tools_and_tool_choice() -> None:
    tools = [ToolSpec("f", "does f", {"type": "object", "properties": {"a": {"type": "string"}}}), ToolSpec("g")]
    body = encode_request(req(user("x"), tools=tools), "m", stream=False)
    assert body["tools"] == [
        {"type": "function", "function": {"name": "f", "description": "does f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "g", "description": "", "parameters": {"type": "object", "properties": {}}}},
    ]
    assert "tools" not in encode_request(req(user("x"), tools=tools, tool_choice=ToolChoice("none")), "m", stream=False)
    only_g = encode_request(req(user("x"), tools=tools, tool_choice=ToolChoice("tool", "g")), "m", stream=False)
    assert [t["function"]["name"] for t in only_g["tools"]] == ["g"]


def test_options_format_and_extras() -> None:
    body = encode_request(req(
        user("x"), max_tokens=64, temperature=0.2, top_p=0.8, seed=1, stop=["\n"],
        response_format=ResponseFormat("json_object"), extra={"num_ctx": 8192, "keep_alive": "5m", "think": True},
    ), "m", stream=False)
    assert body["options"] == {"num_predict": 64, "temperature": 0.2, "top_p": 0.8, "seed": 1, "stop": ["\n"], "num_ctx": 8192}
    assert (body["format"], body["keep_alive"], body["think"]) == ("json", "5m", True)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert encode_request(req(user("x"), response_format=ResponseFormat("json_schema", schema)), "m", stream=False)["format"] == schema
    assert "format" not in encode_request(req(user("x"), response_format=ResponseFormat("text")), "m", stream=False)


def test_n_above_one_is_bad_request() -> None:
    with pytest.raises(GatewayError) as e:
        encode_request(req(user("x"), n=2), "m", stream=False)
    assert e.value.kind is ErrorKind.bad_request


# ---- decode_response -----------------------------------------------------------------------

ANSWER = {
    "model": "llama3.2", "created_at": "2025-01-01T00:00:00.123456789Z",
    "message": {"role": "assistant", "content": "Hi there", "thinking": "greet"},
    "done": True, "done_reason": "stop", "prompt_eval_count": 12, "eval_count": 4, "total_duration": 1,
}


def test_decode_text_thinking_and_usage() -> None:
    r = decode_response(ANSWER, "dep-model")
    assert r.model == "llama3.2" and r.id and r.created > 0
    (choice,) = r.choices
    assert choice.message.parts == [ThinkingPart("greet"), TextPart("Hi there")]
    assert choice.finish_reason == "stop"
    assert r.usage == Usage(input_tokens=12, output_tokens=4)


def test_decode_tool_calls_and_length() -> None:
    data = {"message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": {"a": 1}}}, {"function": {"name": "g", "arguments": '{"b":2}'}},
    ]}, "done": True, "done_reason": "stop"}
    r = decode_response(data, "dep-model")
    calls = r.choices[0].message.tool_calls
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [("f", {"a": 1}), ("g", {"b": 2})]
    assert all(CALL_ID.match(c.id) for c in calls) and calls[0].id != calls[1].id
    assert r.choices[0].finish_reason == "tool_calls" and r.model == "dep-model"
    assert decode_response({"message": {"content": "x"}, "done_reason": "length"}, "m").choices[0].finish_reason == "length"


def test_decode_without_message_is_upstream_failure() -> None:
    with pytest.raises(GatewayError) as e:
        decode_response({"done": True}, "m")
    assert e.value.kind is ErrorKind.upstream_unavailable


# ---- StreamDecoder -------------------------------------------------------------------------

LINES: list[dict[str, Any]] = [
    {"model": "qwen3", "message": {"role": "assistant", "content": "", "thinking": "plan"}, "done": False},
    {"model": "qwen3", "message": {"role": "assistant", "content": "Hel"}, "done": False},
    {"model": "qwen3", "message": {"role": "assistant", "content": "lo"}, "done": False},
    {"model": "qwen3", "message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": {"a": 1}}}, {"function": {"name": "g", "arguments": {}}}]}, "done": False},
    {"model": "qwen3", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
     "prompt_eval_count": 20, "eval_count": 7},
]


def test_stream_decoder_events() -> None:
    d = StreamDecoder("dep-model")
    events = [ev for line in LINES for ev in d.feed(line)]
    assert isinstance(events[0], StreamStart) and events[0].model == "qwen3" and events[0].id
    assert events[1:4] == [ThinkingDelta("plan"), TextDelta("Hel"), TextDelta("lo")]
    f, g = events[4], events[5]
    assert isinstance(f, ToolCallDelta) and isinstance(g, ToolCallDelta)
    assert (f.call_index, f.name, orjson.loads(f.arguments)) == (0, "f", {"a": 1})
    assert (g.call_index, g.name, g.arguments) == (1, "g", "{}")
    assert f.id and CALL_ID.match(f.id) and f.id != g.id
    assert events[6:] == [StreamFinish("tool_calls"), UsageReport(Usage(input_tokens=20, output_tokens=7))]
    assert d.finished


def test_stream_length_finish() -> None:
    d = StreamDecoder("m")
    events = d.feed({"message": {"content": "x"}, "done": True, "done_reason": "length", "eval_count": 1})
    assert StreamFinish("length") in events


def test_stream_error_line_raises() -> None:
    with pytest.raises(GatewayError) as e:
        StreamDecoder("m").feed({"error": "an error was encountered while running the model"})
    assert e.value.kind is ErrorKind.upstream_unavailable


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("status,body,kind", [
    (404, {"error": 'model "nope" not found, try pulling it first'}, ErrorKind.not_found),
    (400, {"error": "invalid options"}, ErrorKind.bad_request),
    (401, {"error": "unauthorized"}, ErrorKind.authentication),
    (429, {"error": "too many requests"}, ErrorKind.rate_limit),
    (500, {"error": "model requires more system memory"}, ErrorKind.upstream_unavailable),
    (503, {"error": {"message": "server busy"}}, ErrorKind.upstream_unavailable),
])
def test_error_mapping(status: int, body: Any, kind: ErrorKind) -> None:
    e = error_from_body(status, body, {"retry-after": "2"}, "ollama")
    assert e.kind is kind and e.provider == "ollama" and e.retry_after == 2


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
        yield Deployment("d1", "g", "ollama", "ollama", "llama3.2", f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


def ndjson(lines: list[Any], raw_tail: bytes = b"") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await resp.prepare(request)
        for line in lines:
            await resp.write(orjson.dumps(line) + b"\n")
        await resp.write(raw_tail)
        return resp
    return handler


def json_reply(data: Any, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")
    return handler


async def test_http_chat() -> None:
    seen: list[web.Request] = []
    http = HttpClient()
    async with serve({"/api/chat": json_reply(ANSWER)}, seen) as dep:
        dep.api_key = Secret("tok")
        r = await OllamaChat().chat(http, req(user("hi"), temperature=0.1), dep)
    await http.close()
    assert r.choices[0].message.text == "Hi there"
    assert seen[0].headers["authorization"] == "Bearer tok"
    sent = orjson.loads(await seen[0].read())
    assert sent == {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 0.1}}


async def test_http_stream() -> None:
    seen: list[web.Request] = []
    http = HttpClient()
    async with serve({"/api/chat": ndjson(LINES, b"\n")}, seen) as dep:
        events = [ev async for ev in OllamaChat().stream(http, req(user("hi"), stream=True), dep)]
    await http.close()
    assert "authorization" not in seen[0].headers
    assert orjson.loads(await seen[0].read())["stream"] is True
    assert isinstance(events[0], StreamStart) and isinstance(events[-1], UsageReport)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello"


@pytest.mark.parametrize("tail", [b"", b'{"model":"qwen3","mess'], ids=["clean-close", "mid-line"])
async def test_http_stream_cut_raises_upstream_unavailable(tail: bytes) -> None:
    http = HttpClient()
    async with serve({"/api/chat": ndjson(LINES[:3], tail)}, []) as dep:
        events = []
        with pytest.raises(GatewayError) as e:
            async for ev in OllamaChat().stream(http, req(user("hi"), stream=True), dep):
                events.append(ev)
    await http.close()
    assert e.value.kind is ErrorKind.upstream_unavailable
    assert [type(ev) for ev in events] == [StreamStart, ThinkingDelta, TextDelta, TextDelta]


async def test_http_model_not_found() -> None:
    http = HttpClient()
    async with serve({"/api/chat": json_reply({"error": 'model "llama3.2" not found, try pulling it first'}, 404)}, []) as dep:
        with pytest.raises(GatewayError) as e:
            await OllamaChat().chat(http, req(user("hi")), dep)
    await http.close()
    assert e.value.kind is ErrorKind.not_found and "try pulling" in e.value.message


async def test_http_embed_and_list_models() -> None:
    seen: list[web.Request] = []
    routes = {
        "/api/embed": json_reply({"model": "nomic-embed-text", "embeddings": [[0.1, 0.2], [0.3, 0.4]], "prompt_eval_count": 6}),
        "/api/tags": json_reply({"models": [{"name": "llama3.2:latest", "size": 1}, {"name": "nomic-embed-text:latest"}]}),
    }
    http = HttpClient()
    async with serve(routes, seen) as dep:
        emb = await OllamaChat().embed(http, EmbeddingRequest("m", ["a", "b"]), dep)
        names = await OllamaChat().list_models(http, dep)
    await http.close()
    assert emb.vectors == [[0.1, 0.2], [0.3, 0.4]] and emb.usage.input_tokens == 6
    assert orjson.loads(await seen[0].read()) == {"model": "llama3.2", "input": ["a", "b"]}
    assert seen[1].method == "GET"
    assert names == ["llama3.2:latest", "nomic-embed-text:latest"]
