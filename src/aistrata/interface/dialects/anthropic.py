"""The Anthropic Messages ingress: clients using the Anthropic SDK call our `POST /v1/messages`.

Wire facts this relies on:
- Requests: `model`, `max_tokens` (required), `messages` of user/assistant turns whose content
  is a string or blocks, top-level `system` (string or text blocks), `tools`
  `{name, description, input_schema}`, `tool_choice {type: auto|any|tool|none, name,
  disable_parallel_tool_use}`, `stop_sequences`, `metadata.user_id`,
  `output_config.format {type: json_schema, schema}`.
- Tool results are `tool_result` blocks in user turns (`content` a string or text blocks,
  `is_error`); tool calls are `tool_use` blocks with an `input` object.
- The answer is a `message` object whose `usage.input_tokens` excludes the cache counts.
- Streams always carry usage: `message_start` (input known or 0), blocks with
  `content_block_start` / `content_block_delta` / `content_block_stop`, a `ping`, then
  `message_delta` (stop reason, cumulative `output_tokens`; input and cache counts too, as
  newer API versions send them and the SDK overwrites with them), `message_stop`.
- Errors are `{"type":"error","error":{"type","message"}}`, in-stream as `event: error`.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...core import (
    ChatRequest,
    ChatResponse,
    ErrorKind,
    GatewayError,
    ImagePart,
    Message,
    ResponseFormat,
    StreamEvent,
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
    bad_request,
    new_id,
)
from .openai import GATEWAY_OPTIONS

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

ERRORS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.authentication: (401, "authentication_error"),
    ErrorKind.permission: (403, "permission_error"),
    ErrorKind.not_found: (404, "not_found_error"),
    ErrorKind.bad_request: (400, "invalid_request_error"),
    ErrorKind.context_length: (400, "invalid_request_error"),
    ErrorKind.content_policy: (400, "invalid_request_error"),
    ErrorKind.request_too_large: (413, "request_too_large"),
    ErrorKind.rate_limit: (429, "rate_limit_error"),
    # Anthropic's own spend-limit answer; 402 also keeps the SDK from retrying a spent budget.
    ErrorKind.budget_exceeded: (402, "billing_error"),
    # 529 is what Anthropic itself sends with overloaded_error; the SDK retries it.
    ErrorKind.upstream_unavailable: (529, "overloaded_error"),
    ErrorKind.timeout: (504, "timeout_error"),  # Anthropic's documented type for a 504
    ErrorKind.internal: (500, "api_error"),
}

# Request fields handled by parse_chat; every other top-level field is passed on in `extra`.
HANDLED = frozenset({
    "model", "max_tokens", "messages", "system", "tools", "tool_choice", "stop_sequences",
    "metadata", "stream", "temperature", "top_p", "output_config", *GATEWAY_OPTIONS,
})


# ---- requests ------------------------------------------------------------------------------


def _text_of(content: Any, where: str) -> str:
    """A string, or text blocks joined; used where only text may appear."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"{where} must be a string or a list of text blocks", where)
    texts = []
    for i, b in enumerate(content):
        if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
            raise bad_request(f"{where}[{i}] must be a text block", f"{where}[{i}]")
        texts.append(b["text"])
    return "".join(texts)


def _image(block: dict[str, Any], where: str) -> ImagePart:
    src = block.get("source")
    kind = src.get("type") if isinstance(src, dict) else None
    if kind == "base64" and isinstance(src.get("data"), str) and isinstance(src.get("media_type"), str):
        return ImagePart(f"data:{src['media_type']};base64,{src['data']}")
    if kind == "url" and isinstance(src.get("url"), str):
        return ImagePart(src["url"])
    raise bad_request(f"{where}.source must be a base64 or url image source", f"{where}.source")


def _turn(m: Any, where: str) -> list[Message]:
    """One wire turn; a user turn with tool results becomes a tool message then a user message."""
    if not isinstance(m, dict):
        raise bad_request(f"{where} must be an object", where)
    role = m.get("role")
    if role not in ("user", "assistant"):
        raise bad_request(f"{where}.role must be user or assistant", f"{where}.role")
    content = m.get("content")
    if isinstance(content, str):
        return [Message(role, [TextPart(content)])]
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of blocks", f"{where}.content")
    parts: list[Any] = []
    results: list[Any] = []
    for i, b in enumerate(content):
        at = f"{where}.content[{i}]"
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text" and isinstance(b.get("text"), str):
            parts.append(TextPart(b["text"]))
        elif kind == "image":
            parts.append(_image(b, at))
        elif kind == "tool_use" and role == "assistant":
            if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
                raise bad_request(f"{at} needs an id and a name", at)
            parts.append(ToolCallPart(b["id"], b["name"], orjson.dumps(b.get("input") or {}).decode()))
        elif kind == "tool_result" and role == "user":
            if not isinstance(b.get("tool_use_id"), str):
                raise bad_request(f"{at}.tool_use_id is required", f"{at}.tool_use_id")
            text = _text_of(b.get("content") or "", f"{at}.content")
            results.append(ToolResultPart(b["tool_use_id"], text, bool(b.get("is_error"))))
        elif kind == "thinking" and role == "assistant":
            parts.append(ThinkingPart(str(b.get("thinking") or ""), b.get("signature")))
        elif kind == "redacted_thinking" and role == "assistant":
            continue  # opaque data the neutral model has no place for
        else:
            raise bad_request(f"{at} has unsupported block type {kind!r} for a {role} turn", at)
    out = [Message("tool", results)] if results else []
    if parts or not results:
        out.append(Message(role, parts))
    return out


def _tools(tools: Any) -> list[ToolSpec]:
    if not isinstance(tools, list):
        raise bad_request("tools must be a list", "tools")
    specs = []
    for i, t in enumerate(tools):
        at = f"tools[{i}]"
        if not isinstance(t, dict) or t.get("type") not in (None, "custom"):
            raise bad_request(f"{at} must be a custom tool; server tools are not supported", at)
        if not isinstance(t.get("name"), str) or not isinstance(t.get("input_schema"), dict):
            raise bad_request(f"{at} needs a name and an input_schema object", at)
        specs.append(ToolSpec(t["name"], t.get("description"), t["input_schema"], t.get("strict")))
    return specs


def _tool_choice(tc: Any) -> tuple[ToolChoice, bool | None]:
    """The choice and `parallel_tool_calls` (False when parallel use is disabled)."""
    kind = tc.get("type") if isinstance(tc, dict) else None
    mode = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}.get(kind or "")
    if mode is None:
        raise bad_request("tool_choice.type must be auto, any, tool or none", "tool_choice")
    if mode == "tool" and not isinstance(tc.get("name"), str):
        raise bad_request("tool_choice.name is required when type is tool", "tool_choice.name")
    parallel = False if tc.get("disable_parallel_tool_use") else None
    return ToolChoice(mode, tc.get("name")), parallel  # type: ignore[arg-type]


def parse_chat(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model is required", "model")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise bad_request("max_tokens is required and must be a positive integer", "max_tokens")
    wire = body.get("messages")
    if not isinstance(wire, list) or not wire:
        raise bad_request("messages must be a non-empty list", "messages")
    messages: list[Message] = []
    system = body.get("system")
    if system is not None:
        messages.append(Message("system", [TextPart(_text_of(system, "system"))]))
    for i, m in enumerate(wire):
        messages.extend(_turn(m, f"messages[{i}]"))
    req = ChatRequest(model=model, messages=messages, max_tokens=max_tokens, temperature=body.get("temperature"),
                      top_p=body.get("top_p"))
    if body.get("tools"):
        req.tools = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        req.tool_choice, req.parallel_tool_calls = _tool_choice(body["tool_choice"])
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise bad_request("stop_sequences must be a list of strings", "stop_sequences")
        req.stop = stop
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        req.user = metadata["user_id"]
    output_config = body.get("output_config")
    if isinstance(output_config, dict):
        fmt = output_config.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            req.response_format = ResponseFormat("json_schema", fmt.get("schema"))
        rest = {k: v for k, v in output_config.items() if k != "format"}
        if rest:
            req.extra["output_config"] = rest
    req.stream = body.get("stream") is True
    req.include_usage = req.stream  # Anthropic streams always carry usage
    req.extra.update((k, v) for k, v in body.items() if k not in HANDLED)
    req.options = {k: body[k] for k in GATEWAY_OPTIONS if k in body}
    return req


# ---- responses -----------------------------------------------------------------------------


def message_id(upstream_id: str) -> str:
    return upstream_id if upstream_id.startswith("msg_") else new_id("msg_")


def tool_input(arguments: str) -> dict[str, Any]:
    """`input` for a call. Arguments that are not a JSON object are kept, unparsed, under
    `_raw_arguments` so the client's schema check fails loudly instead of running the tool
    with no arguments; empty arguments mean a call without any."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def usage_to_wire(u: Usage) -> dict[str, int]:
    return {
        "input_tokens": max(u.input_tokens - u.cache_read_tokens - u.cache_write_tokens, 0),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    }


def render_chat(resp: ChatResponse, model: str) -> dict[str, Any]:
    choice = resp.choices[0] if resp.choices else None
    content: list[dict[str, Any]] = []
    for p in choice.message.parts if choice else ():
        if isinstance(p, TextPart) and p.text:
            content.append({"type": "text", "text": p.text})
        elif isinstance(p, ThinkingPart):
            content.append({"type": "thinking", "thinking": p.text, "signature": p.signature or ""})
        elif isinstance(p, ToolCallPart):
            content.append({"type": "tool_use", "id": p.id or new_id("toolu_"), "name": p.name,
                            "input": tool_input(p.arguments)})
    stop_sequence = resp.provider_details.get("stop_sequence")
    finish = choice.finish_reason if choice else "stop"
    if stop_sequence:
        stop_reason = "stop_sequence"
    elif any(b["type"] == "tool_use" for b in content) and finish in ("stop", "tool_calls"):
        stop_reason = "tool_use"  # some providers say "stop" after tool calls
    else:
        stop_reason = STOP_REASONS.get(finish or "stop", "end_turn")
    return {
        "id": message_id(resp.id), "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason, "stop_sequence": stop_sequence, "usage": usage_to_wire(resp.usage),
    }


def render_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    status, etype = ERRORS.get(err.kind, (500, "api_error"))
    return status, {"type": "error", "error": {"type": etype, "message": err.message}}


# ---- streaming -----------------------------------------------------------------------------


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"


PING = b'event: ping\ndata: {"type":"ping"}\n\n'
MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
DELTA = b"event: content_block_delta\ndata: "
TEXT_BLOCK: dict[str, Any] = {"type": "text", "text": ""}
THINKING_BLOCK: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
END = b"\n\n"


class StreamEncoder:
    """Neutral stream events to Anthropic SSE bytes. One block is open at a time: a change of
    kind (or of tool call) closes it and opens the next. `message_delta` waits for the usage,
    which may follow the finish. Usage is always sent, whatever `include_usage` says."""

    def __init__(self, model: str, include_usage: bool = True) -> None:
        self.model = model
        self.started = False
        self._block = -1  # index of the open block, -1 when none
        self._open: tuple[str, int] | None = None  # (kind, call index) of the open block
        self._stop: str | None = None
        self._usage: Usage | None = None
        self._delta_sent = False
        self._sent_tool = False  # a tool_use block was sent

    def start(self, event: StreamStart) -> bytes:
        self.started = True
        message = {
            "id": message_id(event.id), "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _event(b"message_start", {"type": "message_start", "message": message})

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            head = b"" if self._open == ("text", 0) else self._switch("text", 0, TEXT_BLOCK)
            return head + self._delta({"type": "text_delta", "text": event.text})
        if isinstance(event, ToolCallDelta):
            head = b""
            if self._open != ("tool", event.call_index):
                self._sent_tool = True
                block = {"type": "tool_use", "id": event.id or new_id("toolu_"), "name": event.name or "", "input": {}}
                head = self._switch("tool", event.call_index, block)
            if not event.arguments:
                return head
            return head + self._delta({"type": "input_json_delta", "partial_json": event.arguments})
        if isinstance(event, ThinkingDelta):
            out = b"" if self._open == ("thinking", 0) else self._switch("thinking", 0, THINKING_BLOCK)
            if event.text:
                out += self._delta({"type": "thinking_delta", "thinking": event.text})
            if event.signature:
                out += self._delta({"type": "signature_delta", "signature": event.signature})
            return out
        if isinstance(event, StreamFinish):
            if self._stop is None:
                # Some providers say "stop" after tool calls; an Anthropic client needs tool_use.
                tool_stop = self._sent_tool and event.finish_reason == "stop"
                self._stop = "tool_use" if tool_stop else STOP_REASONS.get(event.finish_reason, "end_turn")
            return self._close()
        if isinstance(event, UsageReport):
            self._usage = event.usage
            return self._message_delta() if self._stop is not None else b""
        if isinstance(event, StreamStart):
            return b"" if self.started else self.start(event)
        return b""

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return DELTA + orjson.dumps({"type": "content_block_delta", "index": self._block, "delta": delta}) + END

    def _switch(self, kind: str, call: int, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._block += 1
        self._open = (kind, call)
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        out += _event(b"content_block_start", start)
        return out + PING if self._block == 0 else out  # Anthropic pings once after the first block opens

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event(b"content_block_stop", {"type": "content_block_stop", "index": self._block})

    def _message_delta(self) -> bytes:
        if self._delta_sent:
            return b""  # a later usage report cannot be sent once message_delta went out
        self._delta_sent = True
        usage: dict[str, int] = usage_to_wire(self._usage) if self._usage else {"output_tokens": 0}
        return _event(b"message_delta", {"type": "message_delta", "usage": usage,
                                         "delta": {"stop_reason": self._stop or "end_turn", "stop_sequence": None}})

    def end(self) -> bytes:
        return self._close() + self._message_delta() + MESSAGE_STOP

    def error(self, err: GatewayError) -> bytes:
        _, body = render_error(err)
        return _event(b"error", body)
