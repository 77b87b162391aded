"""Ollama's native API (`/api/chat`, `/api/embed`, `/api/tags`) as a client speaks it.

Wire facts this relies on:
- `POST /api/chat` takes `{model, messages, stream, tools?, format?, options?, keep_alive?,
  think?}`. Messages are `{role, content, images?: [base64...], tool_calls?, thinking?}`;
  images are bare base64 only (no URLs); tool calls are `{function: {name, arguments:
  <object>}}` with no ids; a tool result is `{role: "tool", content, tool_name}`.
- Sampling parameters live in `options` (`num_predict`, `temperature`, `top_p`, `seed`,
  `stop`, ...); unknown options are ignored by the server. `format` is `"json"` or a schema.
- `stream: true` answers NDJSON: partial `{"message": {...}, "done": false}` lines, then one
  `{"done": true, "done_reason", "prompt_eval_count", "eval_count"}` line. A streamed tool
  call arrives whole in one line. There is no other terminator, so no `done: true` line
  means the stream was cut.
- `prompt_eval_count` is the prompt's tokens, `eval_count` the generated ones.
- Errors are `{"error": "<text>"}` with an HTTP status (404 for an unpulled model).
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

import orjson

from ...core import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorKind,
    FinishReason,
    GatewayError,
    ImagePart,
    Message,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageReport,
    bad_request,
    kind_for_status,
    new_id,
)
from ..base import Deployment
from ..http import HttpClient, iter_lines, parse_event, read_json, retry_after_seconds
from .openai_chat import read_json_lenient

# `ChatRequest.extra` keys that are top-level request fields; every other extra is an option.
TOP_LEVEL_EXTRAS = {"keep_alive", "think"}


# ---- request -------------------------------------------------------------------------------


def message_to_wire(m: Message, call_names: dict[str, str]) -> list[dict[str, Any]]:
    """One neutral message as Ollama messages: each tool result is a message of its own."""
    out: list[dict[str, Any]] = []
    for r in (p for p in m.parts if isinstance(p, ToolResultPart)):
        result: dict[str, Any] = {"role": "tool", "content": r.content}
        name = r.name or call_names.get(r.tool_call_id)
        if name:  # older servers match results by position, so a missing name is tolerable
            result["tool_name"] = name
        out.append(result)
    text = "".join(p.text for p in m.parts if isinstance(p, TextPart))
    images = [p for p in m.parts if isinstance(p, ImagePart)]
    calls = m.tool_calls
    if out and not (text or images or calls):
        return out
    msg: dict[str, Any] = {"role": "user" if m.role == "tool" else m.role, "content": text}
    if images:
        if not all(p.is_inline for p in images):
            raise bad_request("Ollama accepts only inline (data: URL) images", "messages")
        msg["images"] = [p.inline_data()[1] for p in images]
    if calls:
        msg["tool_calls"] = [{"function": {"name": c.name, "arguments": c.input()}} for c in calls]
    out.append(msg)
    return out


def encode_request(req: ChatRequest, model: str, stream: bool) -> dict[str, Any]:
    if req.n != 1:
        raise bad_request("Ollama generates one choice per request; n must be 1", "n")
    call_names = {c.id: c.name for m in req.messages for c in m.tool_calls}
    body: dict[str, Any] = {
        "model": model, "stream": stream,
        "messages": [w for m in req.messages for w in message_to_wire(m, call_names)],
    }
    options: dict[str, Any] = {}
    for name, wire in (("max_tokens", "num_predict"), ("temperature", "temperature"),
                       ("top_p", "top_p"), ("seed", "seed"), ("stop", "stop")):
        value = getattr(req, name)
        if value is not None:
            options[wire] = value
    # Ollama has no tool_choice: "none" withholds the tools, a named tool is the only one offered.
    tools = req.tools or []
    tc = req.tool_choice
    if tc is not None and tc.mode == "none":
        tools = []
    elif tc is not None and tc.mode == "tool":
        tools = [t for t in tools if t.name == tc.name]
    if tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description or "", "parameters": t.parameters}}
            for t in tools
        ]
    rf = req.response_format
    if rf is not None and rf.type == "json_object":
        body["format"] = "json"
    elif rf is not None and rf.type == "json_schema":
        body["format"] = rf.schema or "json"
    for key, value in req.extra.items():
        if key in TOP_LEVEL_EXTRAS:
            body[key] = value
        else:
            options[key] = value
    if options:
        body["options"] = options
    return body


# ---- response ------------------------------------------------------------------------------


def usage_from_wire(data: dict[str, Any]) -> Usage:
    return Usage(input_tokens=data.get("prompt_eval_count") or 0, output_tokens=data.get("eval_count") or 0)


def tool_calls_from_wire(msg: dict[str, Any]) -> list[ToolCallPart]:
    calls = []
    for c in msg.get("tool_calls") or ():
        fn = (c.get("function") if isinstance(c, dict) else None) or {}
        args = fn.get("arguments")
        text = args if isinstance(args, str) else orjson.dumps(args if args is not None else {}).decode()
        calls.append(ToolCallPart(new_id("call_"), fn.get("name") or "", text))
    return calls


def finish_from_wire(data: dict[str, Any], has_calls: bool) -> FinishReason:
    if has_calls:
        return "tool_calls"
    return "length" if data.get("done_reason") == "length" else "stop"


def decode_response(data: Any, model: str, provider: str | None = None) -> ChatResponse:
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise GatewayError(ErrorKind.upstream_unavailable, "upstream answer has no message", provider=provider)
    msg = data["message"]
    parts: list[Any] = [ThinkingPart(msg["thinking"])] if msg.get("thinking") else []
    if msg.get("content"):
        parts.append(TextPart(msg["content"]))
    calls = tool_calls_from_wire(msg)
    parts.extend(calls)
    return ChatResponse(
        id=new_id("ollama-"), model=data.get("model") or model,
        choices=[Choice(0, Message("assistant", parts), finish_from_wire(data, bool(calls)))],
        usage=usage_from_wire(data), created=int(time.time()),
    )


class StreamDecoder:
    """Turns NDJSON lines into stream events; tool calls arrive whole, one delta each."""

    def __init__(self, model: str, provider: str | None = None) -> None:
        self.model = model
        self.provider = provider
        self.started = False
        self.finished = False
        self._calls = 0

    def feed(self, line: Any) -> list[StreamEvent]:
        if not isinstance(line, dict):
            raise GatewayError(ErrorKind.upstream_unavailable, "upstream sent a malformed stream event", provider=self.provider)
        if "error" in line:
            raise error_from_body(500, line, {}, self.provider)
        events: list[StreamEvent] = []
        if not self.started:
            self.started = True
            events.append(StreamStart(new_id("ollama-"), line.get("model") or self.model, int(time.time())))
        msg = line.get("message") or {}
        if msg.get("thinking"):
            events.append(ThinkingDelta(msg["thinking"]))
        if msg.get("content"):
            events.append(TextDelta(msg["content"]))
        for call in tool_calls_from_wire(msg):
            events.append(ToolCallDelta(self._calls, call.arguments, call.id, call.name))
            self._calls += 1
        if line.get("done"):
            self.finished = True
            events.append(StreamFinish(finish_from_wire(line, self._calls > 0)))
            events.append(UsageReport(usage_from_wire(line)))
        return events


# ---- errors --------------------------------------------------------------------------------


def error_from_body(status: int, body: Any, headers: Any, provider: str | None) -> GatewayError:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):  # an OpenAI-shaped body from a proxy in front of Ollama
        err = err.get("message")
    message = str(err or f"upstream answered HTTP {status}")
    kind = kind_for_status(status)
    if "not found" in message.lower() and status in (400, 404):
        kind = ErrorKind.not_found
    return GatewayError(kind, message, retry_after=retry_after_seconds(headers), provider=provider)


# ---- the dialect ---------------------------------------------------------------------------


class OllamaChat:
    name = "ollama"

    def url(self, dep: Deployment, path: str) -> str:
        return dep.api_base.rstrip("/") + path

    def headers(self, dep: Deployment) -> dict[str, str]:
        # Plain Ollama needs no key; one behind a proxy (or ollama.com) takes a bearer token.
        h = {"authorization": f"Bearer {dep.key}"} if dep.api_key else {}
        h.update(dep.headers)
        return h

    async def _send(self, http: HttpClient, dep: Deployment, method: str, path: str, body: Any = None,
                    stream: bool = False, timeout: float | None = None) -> Any:
        resp = await http.send(
            method, self.url(dep, path), body=body, headers=self.headers(dep), timeout=timeout or dep.timeout,
            connect_timeout=dep.connect_timeout, stream=stream, provider=dep.provider,
        )
        if resp.status >= 400:
            data = await read_json_lenient(resp, dep.provider)
            raise error_from_body(resp.status, data, resp.headers, dep.provider)
        return resp

    async def chat(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> ChatResponse:
        resp = await self._send(http, dep, "POST", "/api/chat", encode_request(req, dep.model, stream=False))
        return decode_response(await read_json(resp, dep.provider), dep.model, dep.provider)

    async def stream(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> AsyncIterator[StreamEvent]:
        resp = await self._send(http, dep, "POST", "/api/chat", encode_request(req, dep.model, stream=True), stream=True)
        decoder = StreamDecoder(dep.model, dep.provider)
        async for line in iter_lines(resp, dep.provider):
            if not line.strip():
                continue
            for ev in decoder.feed(parse_event(line, dep.provider)):
                yield ev
        if not decoder.finished:
                raise GatewayError(ErrorKind.upstream_unavailable, "upstream stream ended before it finished", provider=dep.provider)

    async def embed(self, http: HttpClient, req: EmbeddingRequest, dep: Deployment) -> EmbeddingResponse:
        body: dict[str, Any] = {"model": dep.model, "input": req.inputs}
        if req.dimensions:
            body["dimensions"] = req.dimensions
        body.update(req.extra)  # keep_alive, truncate, options: all top-level here
        resp = await self._send(http, dep, "POST", "/api/embed", body)
        data = await read_json(resp, dep.provider)
        if not isinstance(data, dict) or not isinstance(data.get("embeddings"), list):
            raise GatewayError(ErrorKind.upstream_unavailable, "upstream embeddings answer is malformed", provider=dep.provider)
        usage = Usage(input_tokens=data.get("prompt_eval_count") or 0)
        return EmbeddingResponse(data.get("model") or dep.model, data["embeddings"], usage)

    async def list_models(self, http: HttpClient, dep: Deployment) -> list[str]:
        resp = await self._send(http, dep, "GET", "/api/tags", timeout=5)
        data = await read_json(resp, dep.provider) or {}
        return [m["name"] for m in data.get("models") or () if isinstance(m, dict) and "name" in m]
