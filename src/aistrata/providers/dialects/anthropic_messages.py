"""Anthropic Messages as a client speaks it to Anthropic (`POST {api_base}/v1/messages`).

Wire facts this relies on:
- Headers `x-api-key` and `anthropic-version: 2023-06-01`; `max_tokens` is required.
- `system` is a top-level field; `messages` strictly alternate user/assistant. Tool results are
  `tool_result` blocks in the user turn right after the assistant's `tool_use` turn, and come
  before any other block of that turn. A `tool_use.input` is a JSON object, not a string.
- Thinking blocks are only accepted back with the signature Anthropic gave them.
- Structured output is the documented `output_config.format = {"type": "json_schema", "schema"}`;
  the answer is then plain JSON text. There is no "any JSON" mode.
- `usage.input_tokens` excludes `cache_read_input_tokens` and `cache_creation_input_tokens`;
  `output_tokens_details.thinking_tokens` is part of `output_tokens`.
- Streams are SSE with named events and no `[DONE]`: `message_start`, per block
  `content_block_start` / `content_block_delta`* / `content_block_stop`, `message_delta`
  (stop reason; `output_tokens` cumulative, newer versions repeat input and cache counts),
  `message_stop`. `ping` and unknown events may appear anywhere; `error` ends the stream.
- Errors are `{"type":"error","error":{"type","message"}}`; overloaded is HTTP 529.
"""

from __future__ import annotations

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
)
from ..base import Deployment
from ..http import HttpClient, iter_sse, parse_event, read_json, retry_after_seconds
from .openai_chat import read_json_lenient

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

STOP_REASONS: dict[str | None, FinishReason] = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}

ERROR_KINDS = {
    "authentication_error": ErrorKind.authentication,
    "permission_error": ErrorKind.permission,
    "not_found_error": ErrorKind.not_found,
    "rate_limit_error": ErrorKind.rate_limit,
    "overloaded_error": ErrorKind.upstream_unavailable,
    "api_error": ErrorKind.upstream_unavailable,
    "timeout_error": ErrorKind.timeout,
    # Our provider account is out of credit: no fault of the client's, another deployment may serve.
    "billing_error": ErrorKind.upstream_unavailable,
    "request_too_large": ErrorKind.request_too_large,
    "invalid_request_error": ErrorKind.bad_request,
}
CONTEXT_PHRASES = ("prompt is too long", "context limit", "context window")


# ---- messages: neutral -> wire -------------------------------------------------------------


def image_to_wire(part: ImagePart) -> dict[str, Any]:
    if part.is_inline:
        media_type, data = part.inline_data()
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": part.url}}


def part_to_wire(part: Any) -> dict[str, Any] | None:
    """One block, or None for parts Anthropic would reject and that carry nothing it needs."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None  # empty text blocks are a 400
    if isinstance(part, ImagePart):
        return image_to_wire(part)
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.input()}
    if isinstance(part, ToolResultPart):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id, "content": part.content}
        if part.is_error:
            block["is_error"] = True
        return block
    if isinstance(part, ThinkingPart):
        # Unsigned thinking (another provider's reasoning) would be rejected; drop it.
        return {"type": "thinking", "thinking": part.text, "signature": part.signature} if part.signature else None
    raise bad_request(f"a {part.kind} part cannot be sent to anthropic")


def messages_to_wire(messages: list[Message]) -> list[dict[str, Any]]:
    """Non-system messages as alternating turns: `tool` becomes `user`, same-role neighbours merge,
    and in each user turn the tool results go first."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        role = "assistant" if m.role == "assistant" else "user"
        blocks = [b for b in map(part_to_wire, m.parts) if b is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")  # stable: keeps each group's order
    return out


def usage_from_wire(u: dict[str, Any] | None) -> Usage:
    if not u:
        return Usage()
    read = u.get("cache_read_input_tokens") or 0
    write = u.get("cache_creation_input_tokens") or 0
    details = u.get("output_tokens_details") or {}
    return Usage(
        input_tokens=(u.get("input_tokens") or 0) + read + write,  # neutral input includes the cache
        output_tokens=u.get("output_tokens") or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=details.get("thinking_tokens") or 0,
    )


# ---- requests and responses ----------------------------------------------------------------


def encode_request(req: ChatRequest, model: str, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> dict[str, Any]:
    if req.n != 1:
        raise bad_request("anthropic returns a single choice; n must be 1", "n")
    body: dict[str, Any] = {
        "model": model,
        "messages": messages_to_wire(req.messages),
        "max_tokens": req.max_tokens or default_max_tokens,
    }
    system = req.system_text
    if system:
        body["system"] = system
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop_sequences"] = req.stop
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.tools:
        body["tools"] = [
            {"name": t.name, "input_schema": t.parameters}
            | ({"description": t.description} if t.description else {})
            | ({"strict": t.strict} if t.strict is not None else {})
            for t in req.tools
        ]
    choice = tool_choice_to_wire(req)
    if choice is not None:
        body["tool_choice"] = choice
    rf = req.response_format
    output_config: dict[str, Any] = {}
    if rf is not None and rf.type == "json_schema":
        output_config["format"] = {"type": "json_schema", "schema": rf.schema or {"type": "object"}}
    if req.stream:
        body["stream"] = True
    for key, value in req.extra.items():
        if key == "output_config" and isinstance(value, dict):
            output_config = value | output_config
        else:
            body[key] = value
    if output_config:
        body["output_config"] = output_config
    return body


def tool_choice_to_wire(req: ChatRequest) -> dict[str, Any] | None:
    tc = req.tool_choice
    if tc is None and req.parallel_tool_calls is not False:
        return None
    mode = tc.mode if tc is not None else "auto"
    if mode == "none":
        return {"type": "none"}
    choice: dict[str, Any] = {"type": {"auto": "auto", "required": "any", "tool": "tool"}[mode]}
    if mode == "tool":
        if tc is None or not tc.name:
            raise bad_request("tool_choice of type tool needs a tool name", "tool_choice")
        choice["name"] = tc.name
    if req.parallel_tool_calls is False:
        choice["disable_parallel_tool_use"] = True
    return choice


def block_to_part(block: dict[str, Any]) -> Any:
    """A response block as a part; None for blocks the neutral model cannot hold (redacted
    thinking, server tool blocks)."""
    kind = block.get("type")
    if kind == "text":
        return TextPart(block.get("text") or "")
    if kind == "tool_use":
        arguments = orjson.dumps(block.get("input") or {}).decode()
        return ToolCallPart(block.get("id") or "", block.get("name") or "", arguments)
    if kind == "thinking":
        return ThinkingPart(block.get("thinking") or "", block.get("signature"))
    return None


def decode_response(data: Any, provider: str | None = None) -> ChatResponse:
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise GatewayError(ErrorKind.upstream_unavailable, "upstream answer has no content", provider=provider)
    parts = [p for p in map(block_to_part, data["content"]) if p is not None]
    details = {"stop_reason": data.get("stop_reason")}
    if data.get("stop_sequence"):
        details["stop_sequence"] = data["stop_sequence"]
    return ChatResponse(
        id=data.get("id") or "", model=data.get("model") or "",
        choices=[Choice(0, Message("assistant", parts), STOP_REASONS.get(data.get("stop_reason"), "stop"))],
        usage=usage_from_wire(data.get("usage")), provider_details=details,
    )


class StreamDecoder:
    """Turns parsed stream events into neutral events. Usage is kept here and reported once,
    after the finish, as the neutral stream grammar wants."""

    def __init__(self, provider: str | None = None) -> None:
        self.provider = provider
        self.finished = False  # message_stop seen
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, tuple[str, int]] = {}  # block index -> (block type, call index)
        self._args_seen: set[int] = set()  # call indexes that got a non-empty fragment
        self._calls = 0
        self._stop: FinishReason | None = None

    def feed(self, event: Any) -> list[StreamEvent]:
        if not isinstance(event, dict):
            raise GatewayError(
                ErrorKind.upstream_unavailable, "upstream sent a malformed stream event", provider=self.provider
            )
        kind = event.get("type")
        if kind == "content_block_delta":
            return self._delta(event.get("index", 0), event.get("delta") or {})
        if kind == "content_block_start":
            return self._block_start(event.get("index", 0), event.get("content_block") or {})
        if kind == "content_block_stop":
            block, call = self._blocks.get(event.get("index", 0), ("", 0))
            if block == "tool_use" and call not in self._args_seen:
                return [ToolCallDelta(call, "{}")]  # a call without arguments still needs valid JSON
            return []
        if kind == "message_start":
            msg = event.get("message") or {}
            self._usage.update(msg.get("usage") or {})
            return [StreamStart(msg.get("id") or "", msg.get("model") or "")]
        if kind == "message_delta":
            # Counts here are cumulative totals: assign over the message_start values.
            self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason and self._stop is None:
                self._stop = STOP_REASONS.get(reason, "stop")
                return [StreamFinish(self._stop)]
            return []
        if kind == "message_stop":
            self.finished = True
            events: list[StreamEvent] = [] if self._stop else [StreamFinish("stop")]
            events.append(UsageReport(usage_from_wire(self._usage)))
            return events
        if kind == "error":
            raise error_from_body(0, event, {}, self.provider)
        return []  # ping and event types newer than this code

    def _block_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        kind = block.get("type") or ""
        if kind == "tool_use":
            call = self._calls
            self._calls += 1
            self._blocks[index] = (kind, call)
            return [ToolCallDelta(call, "", block.get("id") or "", block.get("name") or "")]
        self._blocks[index] = (kind, 0)
        if kind == "text" and block.get("text"):
            return [TextDelta(block["text"])]
        if kind == "thinking" and (block.get("thinking") or block.get("signature")):
            return [ThinkingDelta(block.get("thinking") or "", block.get("signature"))]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[StreamEvent]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(delta.get("text") or "")]
        if kind == "input_json_delta":
            fragment = delta.get("partial_json") or ""
            block, call = self._blocks.get(index, ("", 0))
            if not fragment or block != "tool_use":
                return []
            self._args_seen.add(call)
            return [ToolCallDelta(call, fragment)]
        if kind == "thinking_delta":
            return [ThinkingDelta(delta.get("thinking") or "")]
        if kind == "signature_delta":
            return [ThinkingDelta("", delta.get("signature"))]
        return []  # citations and future delta types


# ---- errors --------------------------------------------------------------------------------


def error_from_body(status: int, body: Any, headers: Any, provider: str | None) -> GatewayError:
    """`status` is 0 for an in-stream error event, which has only the body to go by."""
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else {}
    etype = str(err.get("type") or "")
    message = str(err.get("message") or (f"upstream answered HTTP {status}" if status else "upstream stream failed"))
    # HTTP 529 (overloaded) needs no case of its own: kind_for_status maps every 5xx upstream.
    kind = ERROR_KINDS.get(etype) or (kind_for_status(status) if status else ErrorKind.upstream_unavailable)
    if kind is ErrorKind.bad_request:
        lowered = message.lower()
        if any(p in lowered for p in CONTEXT_PHRASES):
            kind = ErrorKind.context_length
        elif "content filtering" in lowered:  # "Output blocked by content filtering policy"
            kind = ErrorKind.content_policy
    return GatewayError(kind, message, retry_after=retry_after_seconds(headers), provider=provider)


# ---- the dialect ---------------------------------------------------------------------------


class AnthropicMessages:
    name = "anthropic_messages"

    def url(self, dep: Deployment, path: str) -> str:
        base = dep.api_base.rstrip("/")
        return base + path if base.endswith("/v1") else f"{base}/v1{path}"  # tolerate a base that has /v1

    def headers(self, dep: Deployment) -> dict[str, str]:
        h = {"anthropic-version": dep.api_version or API_VERSION}
        if dep.api_key:
            h["x-api-key"] = dep.key
        h.update(dep.headers)
        return h

    def encode(self, req: ChatRequest, dep: Deployment) -> dict[str, Any]:
        return encode_request(req, dep.model, dep.info.get("max_output_tokens") or DEFAULT_MAX_TOKENS)

    async def _post(self, http: HttpClient, dep: Deployment, body: Any, stream: bool = False) -> Any:
        resp = await http.send(
            "POST", self.url(dep, "/messages"), body=body, headers=self.headers(dep),
            timeout=dep.timeout, connect_timeout=dep.connect_timeout, stream=stream, provider=dep.provider,
        )
        if resp.status >= 400:
            data = await read_json_lenient(resp, dep.provider)
            raise error_from_body(resp.status, data, resp.headers, dep.provider)
        return resp

    async def chat(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> ChatResponse:
        resp = await self._post(http, dep, self.encode(req, dep))
        return decode_response(await read_json(resp, dep.provider), dep.provider)

    async def stream(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> AsyncIterator[StreamEvent]:
        resp = await self._post(http, dep, self.encode(req, dep), stream=True)
        decoder = StreamDecoder(dep.provider)
        async for _event, data in iter_sse(resp, dep.provider):
            for ev in decoder.feed(parse_event(data, dep.provider)):
                yield ev
            if decoder.finished:
                return
        raise GatewayError(
            ErrorKind.upstream_unavailable, "upstream stream was cut before message_stop", provider=dep.provider
        )

    async def embed(self, http: HttpClient, req: EmbeddingRequest, dep: Deployment) -> EmbeddingResponse:
        raise bad_request("anthropic has no embeddings API", "model")

    async def list_models(self, http: HttpClient, dep: Deployment) -> list[str]:
        ids: list[str] = []
        params = {"limit": "1000"}
        while True:
            resp = await http.send(
                "GET", self.url(dep, "/models"), headers=self.headers(dep), params=params, timeout=5,
                provider=dep.provider,
            )
            if resp.status >= 400:
                resp.release()
                raise GatewayError(kind_for_status(resp.status), "model listing failed", provider=dep.provider)
            data = await read_json(resp, dep.provider) or {}
            ids.extend(m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m)
            if not data.get("has_more") or not data.get("last_id"):
                return ids
            params = {"limit": "1000", "after_id": data["last_id"]}
