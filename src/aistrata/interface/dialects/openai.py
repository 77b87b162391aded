"""The OpenAI Chat Completions dialect as our gateway serves it to clients.

Streams end with `data: [DONE]`; with `stream_options.include_usage` a last chunk with
`choices: []` carries the usage. A failure after the first byte is sent as
`data: {"error": {...}}` with no `[DONE]`, which the OpenAI SDKs raise as an `APIError`.
Text deltas, the bulk of every stream, are written from pre-encoded byte templates.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ...core import (
    ChatRequest,
    ChatResponse,
    ErrorKind,
    GatewayError,
    ResponseFormat,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
    UsageReport,
    bad_request,
)
from ...providers.dialects.openai_chat import message_from_wire, tool_call_to_wire, usage_to_wire

# Body fields addressed to the gateway (LiteLLM's names), kept out of the upstream request.
GATEWAY_OPTIONS = ("cache", "routing_strategy", "fallbacks", "num_retries")
# Parameters with a neutral field; anything else is passed through to OpenAI-style upstreams.
KNOWN = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
    "n", "user", "metadata", "tools", "tool_choice", "parallel_tool_calls", "response_format", "stream",
    "stream_options", "store", *GATEWAY_OPTIONS,
}


def _number(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise bad_request(f"'{name}' must be {'an integer' if kind is int else 'a number'}", name)
    return value


def _tools(raw: Any) -> list[ToolSpec] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise bad_request("'tools' must be a list", "tools")
    tools = []
    for i, t in enumerate(raw):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad_request(f"tools[{i}].function.name is required", f"tools[{i}]")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        tools.append(ToolSpec(fn["name"], fn.get("description"), params, fn.get("strict")))
    return tools


def _tool_choice(raw: Any) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw)
    if isinstance(raw, dict) and isinstance((raw.get("function") or {}).get("name"), str):
        return ToolChoice("tool", raw["function"]["name"])
    raise bad_request("'tool_choice' must be auto, none, required or a named function", "tool_choice")


def _response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise bad_request("response_format.json_schema must hold a 'schema' object", "response_format")
        return ResponseFormat("json_schema", spec.get("schema") or {}, spec.get("name"), spec.get("strict"))
    raise bad_request("response_format.type must be text, json_object or json_schema", "response_format")


def parse_chat(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required", "model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise bad_request("'messages' must be a non-empty list", "messages")
    messages = [message_from_wire(m, f"messages[{i}]") for i, m in enumerate(raw_messages)]
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    elif stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise bad_request("'stop' must be a string or a list of strings", "stop")
    n = _number(body, "n", int) or 1
    if n < 1:
        raise bad_request("'n' must be at least 1", "n")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad_request("'metadata' must be an object", "metadata")
    options = body.get("stream_options") or {}
    max_tokens = _number(body, "max_completion_tokens", int)
    return ChatRequest(
        model=model,
        messages=messages,
        max_tokens=max_tokens if max_tokens is not None else _number(body, "max_tokens", int),
        temperature=_number(body, "temperature", float),
        top_p=_number(body, "top_p", float),
        stop=stop,
        seed=_number(body, "seed", int),
        n=n,
        user=body.get("user") if isinstance(body.get("user"), str) else None,
        metadata=metadata,
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=body.get("parallel_tool_calls"),
        response_format=_response_format(body.get("response_format")),
        stream=bool(body.get("stream")),
        include_usage=bool(options.get("include_usage")) if isinstance(options, dict) else False,
        extra={k: v for k, v in body.items() if k not in KNOWN},
        options={k: body[k] for k in GATEWAY_OPTIONS if k in body},
    )


def render_chat(resp: ChatResponse, model: str) -> dict[str, Any]:
    choices = []
    for c in resp.choices:
        calls = c.message.tool_calls
        message: dict[str, Any] = {"role": "assistant", "content": c.message.text or None, "refusal": None}
        if calls:
            message["tool_calls"] = [tool_call_to_wire(t) for t in calls]
        choices.append({"index": c.index, "message": message, "logprobs": None, "finish_reason": c.finish_reason})
    out: dict[str, Any] = {
        "id": resp.id, "object": "chat.completion", "created": resp.created or int(time.time()), "model": model,
        "choices": choices, "usage": usage_to_wire(resp.usage),
    }
    if resp.provider_details.get("system_fingerprint"):
        out["system_fingerprint"] = resp.provider_details["system_fingerprint"]
    return out


class StreamEncoder:
    """Neutral stream events -> `chat.completion.chunk` SSE frames."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self._head = b""
        self._text_head = b""
        self._usage: UsageReport | None = None

    def start(self, event: StreamStart) -> bytes:
        created = event.created or int(time.time())
        head = orjson.dumps({"id": event.id, "object": "chat.completion.chunk", "created": created, "model": self.model})
        self._head = b"data: " + head[:-1] + b',"choices":['
        self._text_head = self._head + b'{"index":0,"delta":{"content":'
        return self._head + b'{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'

    def _choice(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._head + orjson.dumps(choice) + b"]}\n\n"

    def encode(self, event: StreamEvent) -> bytes:
        if type(event) is TextDelta:
            if event.index == 0:
                return self._text_head + orjson.dumps(event.text) + b'},"logprobs":null,"finish_reason":null}]}\n\n'
            return self._choice(event.index, {"content": event.text})
        if type(event) is ToolCallDelta:
            call: dict[str, Any] = {"index": event.call_index}
            if event.id is not None:
                call["id"] = event.id
                call["type"] = "function"
            fn: dict[str, Any] = {"arguments": event.arguments}
            if event.name is not None:
                fn["name"] = event.name
            call["function"] = fn
            return self._choice(event.index, {"tool_calls": [call]})
        if type(event) is StreamFinish:
            return self._choice(event.index, {}, event.finish_reason)
        if type(event) is UsageReport:
            self._usage = event  # sent once, at the end, after every choice finished
            return b""
        if type(event) is ThinkingDelta:
            return self._choice(event.index, {"reasoning_content": event.text})
        return b""

    def end(self) -> bytes:
        tail = b""
        if self.include_usage and self._usage is not None:
            tail = self._head + b'],"usage":' + orjson.dumps(usage_to_wire(self._usage.usage)) + b"}\n\n"
        return tail + b"data: [DONE]\n\n"

    def error(self, err: GatewayError) -> bytes:
        _status, body = render_error(err)
        return b"data: " + orjson.dumps(body) + b"\n\n"


ERROR_TYPES = {
    ErrorKind.authentication: ("authentication_error", "invalid_api_key"),
    ErrorKind.permission: ("permission_error", "model_not_allowed"),
    ErrorKind.not_found: ("invalid_request_error", "model_not_found"),
    ErrorKind.bad_request: ("invalid_request_error", None),
    ErrorKind.request_too_large: ("invalid_request_error", "request_too_large"),
    ErrorKind.context_length: ("invalid_request_error", "context_length_exceeded"),
    ErrorKind.content_policy: ("invalid_request_error", "content_policy_violation"),
    ErrorKind.rate_limit: ("rate_limit_error", "rate_limit_exceeded"),
    ErrorKind.budget_exceeded: ("insufficient_quota", "budget_exceeded"),
    ErrorKind.upstream_unavailable: ("service_unavailable_error", "upstream_unavailable"),
    ErrorKind.timeout: ("timeout_error", "upstream_timeout"),
    ErrorKind.internal: ("server_error", None),
}


def render_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    etype, code = ERROR_TYPES[err.kind]
    return err.status, {"error": {"message": err.message, "type": etype, "param": err.param, "code": code}}
