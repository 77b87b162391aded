"""OpenAI Chat Completions as a client speaks it to a provider (OpenAI, Azure OpenAI and every
OpenAI-compatible vendor), plus the message codecs the OpenAI ingress reuses.

Wire facts this relies on:
- `prompt_tokens` includes cached tokens, `completion_tokens` includes reasoning tokens.
- Streams are `data: <chunk>` lines ending in `data: [DONE]`; with
  `stream_options.include_usage` one extra chunk before `[DONE]` carries usage. Servers vary:
  `choices` may be `null` or non-empty in that chunk, usage may come one chunk early.
- Tool-call fragments are keyed by `index`; some servers reuse index 0 for parallel calls and
  differ only by `id`.
- A stream that ends without `[DONE]` and before any `finish_reason` was cut.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from ...core import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorKind,
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

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter"}


# ---- messages: neutral -> wire -------------------------------------------------------------


def part_to_wire(part: Any) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        image: dict[str, Any] = {"url": part.url}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    raise bad_request(f"a {part.kind} part cannot appear in this message")


def tool_call_to_wire(call: ToolCallPart) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def messages_to_wire(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        results = [p for p in m.parts if isinstance(p, ToolResultPart)]
        for r in results:  # each tool result is a message of its own in this dialect
            out.append({"role": "tool", "tool_call_id": r.tool_call_id, "content": r.content})
        rest = [p for p in m.parts if not isinstance(p, (ToolResultPart, ThinkingPart))]
        if m.role == "assistant":
            calls = [p for p in rest if isinstance(p, ToolCallPart)]
            text = "".join(p.text for p in rest if isinstance(p, TextPart))
            msg: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                msg["tool_calls"] = [tool_call_to_wire(c) for c in calls]
            out.append(msg)
            continue
        if results and not rest:
            continue
        if all(isinstance(p, TextPart) for p in rest):
            msg = {"role": m.role if m.role != "tool" else "user", "content": "".join(p.text for p in rest)}
        else:
            msg = {"role": m.role, "content": [part_to_wire(p) for p in rest]}
        if m.name:
            msg["name"] = m.name
        out.append(msg)
    return out


# ---- messages: wire -> neutral -------------------------------------------------------------


def _content_parts(content: Any, where: str) -> list[Any]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of parts", where)
    parts: list[Any] = []
    for i, p in enumerate(content):
        kind = p.get("type") if isinstance(p, dict) else None
        if kind == "text":
            parts.append(TextPart(str(p.get("text", ""))))
        elif kind == "image_url":
            image = p.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise bad_request(f"{where}.content[{i}].image_url.url is required", where)
            parts.append(ImagePart(url, image.get("detail") if isinstance(image, dict) else None))
        else:
            raise bad_request(f"{where}.content[{i}] has unsupported type {kind!r}", where)
    return parts


def message_from_wire(m: Any, where: str = "messages") -> Message:
    if not isinstance(m, dict):
        raise bad_request(f"{where} must be an object", where)
    role = m.get("role")
    if role == "developer":
        role = "system"
    if role == "tool":
        call_id = m.get("tool_call_id")
        if not isinstance(call_id, str):
            raise bad_request(f"{where}.tool_call_id is required for tool messages", where)
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return Message("tool", [ToolResultPart(call_id, content or "", name=m.get("name"))])
    if role not in ("system", "user", "assistant"):
        raise bad_request(f"{where}.role must be one of system, developer, user, assistant, tool", where)
    parts = _content_parts(m.get("content"), where)
    if role == "assistant":
        reasoning = m.get("reasoning_content")
        if reasoning:
            parts.insert(0, ThinkingPart(reasoning))
        for c in m.get("tool_calls") or ():
            fn = c.get("function") or {}
            args = fn.get("arguments")
            parts.append(ToolCallPart(c.get("id") or "", fn.get("name") or "", args if isinstance(args, str) else ""))
    return Message(role, parts, name=m.get("name"))


def usage_from_wire(u: dict[str, Any] | None) -> Usage:
    if not u:
        return Usage()
    prompt = u.get("prompt_tokens_details") or {}
    completion = u.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=u.get("prompt_tokens") or 0,
        output_tokens=u.get("completion_tokens") or 0,
        cache_read_tokens=prompt.get("cached_tokens") or 0,
        reasoning_tokens=completion.get("reasoning_tokens") or 0,
    )


def usage_to_wire(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


# ---- requests and responses ----------------------------------------------------------------


def encode_request(req: ChatRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages_to_wire(req.messages)}
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    for name in ("temperature", "top_p", "stop", "seed", "user", "parallel_tool_calls"):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if req.n != 1:
        body["n"] = req.n
    if req.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}
             | ({"strict": t.strict} if t.strict is not None else {})}
            for t in req.tools
        ]
    if req.tool_choice is not None:
        tc = req.tool_choice
        body["tool_choice"] = {"type": "function", "function": {"name": tc.name}} if tc.mode == "tool" else tc.mode
    rf = req.response_format
    if rf is not None:
        if rf.type == "json_schema":
            spec: dict[str, Any] = {"name": rf.name or "response", "schema": rf.schema or {}}
            if rf.strict is not None:
                spec["strict"] = rf.strict
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            body["response_format"] = {"type": rf.type}
    if req.stream:
        # Always ask for usage: the request log needs it even when the client did not.
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if req.extra:
        body.update(req.extra)
    return body


def decode_response(data: Any, provider: str | None = None) -> ChatResponse:
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise GatewayError(ErrorKind.upstream_unavailable, "upstream answer has no choices", provider=provider)
    choices = []
    for i, c in enumerate(data["choices"]):
        msg = message_from_wire(c.get("message") or {"role": "assistant"}, "choices.message")
        finish = c.get("finish_reason")
        choices.append(Choice(c.get("index", i), msg, finish if finish in FINISH_REASONS else "stop"))
    details = {k: data[k] for k in ("system_fingerprint", "service_tier") if data.get(k)}
    return ChatResponse(
        id=data.get("id") or "", model=data.get("model") or "", choices=choices,
        usage=usage_from_wire(data.get("usage")), created=data.get("created") or 0, provider_details=details,
    )


class StreamDecoder:
    """Turns parsed chunks into stream events; tolerant of the known server variants."""

    def __init__(self, provider: str | None = None) -> None:
        self.provider = provider
        self.started = False
        self.finished = False
        self._calls: dict[tuple[int, int], tuple[str | None, int]] = {}  # (choice, index) -> (id, call index)
        self._next_call: dict[int, int] = {}

    def feed(self, chunk: Any) -> list[StreamEvent]:
        if not isinstance(chunk, dict):
            raise GatewayError(ErrorKind.upstream_unavailable, "upstream sent a malformed stream event", provider=self.provider)
        if "error" in chunk and not chunk.get("choices"):
            raise error_from_body(500, chunk, {}, self.provider)
        events: list[StreamEvent] = []
        if not self.started:
            self.started = True
            events.append(StreamStart(chunk.get("id") or "", chunk.get("model") or "", chunk.get("created") or 0))
        for c in chunk.get("choices") or ():
            index = c.get("index", 0)
            delta = c.get("delta") or {}
            if delta.get("reasoning_content"):
                events.append(ThinkingDelta(delta["reasoning_content"], index=index))
            if delta.get("content"):
                events.append(TextDelta(delta["content"], index))
            for tc in delta.get("tool_calls") or ():
                events.append(self._tool_delta(index, tc))
            finish = c.get("finish_reason")
            if finish:
                self.finished = True
                events.append(StreamFinish(finish if finish in FINISH_REASONS else "stop", index))
        if chunk.get("usage"):
            events.append(UsageReport(usage_from_wire(chunk["usage"])))
        return events

    def _tool_delta(self, choice: int, tc: dict[str, Any]) -> ToolCallDelta:
        wire_index = tc.get("index", 0)
        call_id = tc.get("id")
        known = self._calls.get((choice, wire_index))
        if known is None or (call_id and known[0] and call_id != known[0]):
            number = self._next_call.get(choice, 0)
            self._next_call[choice] = number + 1
            known = (call_id, number)
            self._calls[(choice, wire_index)] = known
        fn = tc.get("function") or {}
        return ToolCallDelta(known[1], fn.get("arguments") or "", call_id, fn.get("name"), choice)


# ---- errors --------------------------------------------------------------------------------


def error_from_body(status: int, body: Any, headers: Any, provider: str | None) -> GatewayError:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, str):
        err = {"message": err}
    err = err if isinstance(err, dict) else {}
    message = str(err.get("message") or f"upstream answered HTTP {status}")
    code = str(err.get("code") or "")
    etype = str(err.get("type") or "")
    kind = kind_for_status(status)
    if code == "context_length_exceeded" or "context length" in message.lower() or "maximum context" in message.lower():
        kind = ErrorKind.context_length
    elif code in ("content_filter", "content_policy_violation") or etype == "content_filter":
        kind = ErrorKind.content_policy
    elif code == "rate_limit_exceeded" or etype in ("rate_limit_error", "rate_limit_exceeded"):
        kind = ErrorKind.rate_limit
    elif status == 500 and etype in ("overloaded_error", "service_unavailable"):
        kind = ErrorKind.upstream_unavailable
    return GatewayError(kind, message, retry_after=retry_after_seconds(headers), provider=provider, param=err.get("param"))


# ---- the dialect ---------------------------------------------------------------------------


class OpenAIChat:
    name = "openai_chat"

    def url(self, dep: Deployment, path: str) -> str:
        return dep.api_base.rstrip("/") + path

    def headers(self, dep: Deployment) -> dict[str, str]:
        h = {"authorization": f"Bearer {dep.key}"} if dep.api_key else {}
        h.update(dep.headers)
        return h

    def params(self, dep: Deployment) -> dict[str, str] | None:
        return None

    def wire_model(self, dep: Deployment) -> str:
        return dep.model

    async def _post(self, http: HttpClient, dep: Deployment, path: str, body: Any, stream: bool = False) -> Any:
        resp = await http.send(
            "POST", self.url(dep, path), body=body, headers=self.headers(dep), params=self.params(dep),
            timeout=dep.timeout, connect_timeout=dep.connect_timeout, stream=stream, provider=dep.provider,
        )
        if resp.status >= 400:
            data = await read_json_lenient(resp, dep.provider)
            raise error_from_body(resp.status, data, resp.headers, dep.provider)
        return resp

    async def chat(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> ChatResponse:
        resp = await self._post(http, dep, "/chat/completions", encode_request(req, self.wire_model(dep)))
        return decode_response(await read_json(resp, dep.provider), dep.provider)

    async def stream(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> AsyncIterator[StreamEvent]:
        resp = await self._post(http, dep, "/chat/completions", encode_request(req, self.wire_model(dep)), stream=True)
        decoder = StreamDecoder(dep.provider)
        async for _event, data in iter_sse(resp, dep.provider):
            if data == b"[DONE]":
                return
            for ev in decoder.feed(parse_event(data, dep.provider)):
                yield ev
        if not decoder.finished:
            raise GatewayError(ErrorKind.upstream_unavailable, "upstream stream ended before it finished", provider=dep.provider)

    async def embed(self, http: HttpClient, req: EmbeddingRequest, dep: Deployment) -> EmbeddingResponse:
        body: dict[str, Any] = {"model": self.wire_model(dep), "input": req.inputs}
        if req.dimensions:
            body["dimensions"] = req.dimensions
        if req.user:
            body["user"] = req.user
        body.update(req.extra)
        resp = await self._post(http, dep, "/embeddings", body)
        data = await read_json(resp, dep.provider)
        try:
            rows = sorted(data["data"], key=lambda d: d.get("index", 0))
            vectors = [r["embedding"] for r in rows]
        except (KeyError, TypeError) as exc:
            raise GatewayError(ErrorKind.upstream_unavailable, "upstream embeddings answer is malformed", provider=dep.provider) from exc
        usage = data.get("usage") or {}
        return EmbeddingResponse(data.get("model") or dep.model, vectors, Usage(input_tokens=usage.get("prompt_tokens") or 0))

    async def list_models(self, http: HttpClient, dep: Deployment) -> list[str]:
        resp = await http.send("GET", self.url(dep, "/models"), headers=self.headers(dep), timeout=5, provider=dep.provider)
        if resp.status >= 400:
            resp.release()
            raise GatewayError(kind_for_status(resp.status), "model listing failed", provider=dep.provider)
        data = await read_json(resp, dep.provider)
        return [m["id"] for m in (data or {}).get("data", []) if isinstance(m, dict) and "id" in m]


class AzureOpenAIChat(OpenAIChat):
    """Azure OpenAI: the deployment is in the path, the version in the query, the key in `api-key`."""

    name = "azure_openai"

    def url(self, dep: Deployment, path: str) -> str:
        return f"{dep.api_base.rstrip('/')}/openai/deployments/{dep.model}{path}"

    def headers(self, dep: Deployment) -> dict[str, str]:
        h = {"api-key": dep.key} if dep.api_key else {}
        h.update(dep.headers)
        return h

    def params(self, dep: Deployment) -> dict[str, str] | None:
        return {"api-version": dep.api_version or "2024-10-21"}


async def read_json_lenient(resp: Any, provider: str | None) -> Any:
    """An error body: JSON when it is JSON, else its text wrapped as a message."""
    try:
        return await read_json(resp, provider)
    except GatewayError:
        return {"error": {"message": f"upstream answered HTTP {resp.status}"}}
