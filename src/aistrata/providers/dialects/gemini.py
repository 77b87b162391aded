"""Google Gemini `generateContent` (v1beta) as a client speaks it to the Gemini API.

Wire facts this relies on:
- `POST /v1beta/models/{model}:generateContent`; streaming is `:streamGenerateContent?alt=sse`
  (without `alt=sse` the stream is one JSON array, so we always ask for SSE). Auth is the
  `x-goog-api-key` header. Keys are camelCase; roles are only `user` and `model`; the system
  prompt is the top-level `systemInstruction`.
- Function calls arrive whole as `{"functionCall": {"name", "args": {...}}}` with no id, so
  ids are ours; a result goes back as `functionResponse` keyed by the function *name*.
- Function declarations and `responseSchema` take an OpenAPI subset: keys such as
  `additionalProperties`, `$schema` or `strict` are rejected, and `type` is one string.
- Parts may carry `thought: true` (reasoning text) or only a `thoughtSignature` (no text).
- `promptTokenCount` includes `cachedContentTokenCount`; `candidatesTokenCount` excludes
  `thoughtsTokenCount`, so output is their sum.
- SSE frames are whole partial responses; there are no event names and no `[DONE]`: the
  stream ends when the connection closes, the last frame carrying `finishReason` and the
  final `usageMetadata` (earlier frames may carry running usage).
- Errors are `{"error": {"code", "message", "status"}}`; a bad API key is a 400
  INVALID_ARGUMENT saying "API key not valid", and 429s may carry a `RetryInfo` detail.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Any, AsyncIterator
from urllib.parse import urlparse

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
from ..http import HttpClient, iter_sse, parse_event, read_json, retry_after_seconds
from .openai_chat import read_json_lenient

RETRY_DELAY = re.compile(r"(\d+(?:\.\d+)?)s")
FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
FINISHES: dict[str, FinishReason] = {"MAX_TOKENS": "length"} | {r: "content_filter" for r in FILTERED}
# The OpenAPI subset Gemini's `Schema` accepts; anything else is dropped before sending.
SCHEMA_KEYS = {
    "type", "format", "title", "description", "nullable", "enum", "items", "properties", "required",
    "anyOf", "minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "minimum", "maximum", "default", "example", "propertyOrdering",
}
STATUS_KINDS = {
    "UNAUTHENTICATED": ErrorKind.authentication, "PERMISSION_DENIED": ErrorKind.permission,
    "INVALID_ARGUMENT": ErrorKind.bad_request, "NOT_FOUND": ErrorKind.not_found,
    "UNAVAILABLE": ErrorKind.upstream_unavailable, "INTERNAL": ErrorKind.upstream_unavailable,
    "DEADLINE_EXCEEDED": ErrorKind.timeout,
}
TOOL_MODES = {"auto": "AUTO", "required": "ANY", "tool": "ANY", "none": "NONE"}
# `ChatRequest.extra` keys we understand: top-level request fields and generationConfig fields.
TOP_LEVEL_EXTRAS = {"safetySettings", "cachedContent", "labels"}
GENERATION_EXTRAS = {"top_k": "topK", "topK": "topK", "presence_penalty": "presencePenalty",
                     "frequency_penalty": "frequencyPenalty", "thinkingConfig": "thinkingConfig"}


# ---- request -------------------------------------------------------------------------------


def clean_schema(schema: Any) -> Any:
    """`schema` reduced to what Gemini accepts, recursively; `["T", "null"]` types become
    `T` + `nullable` since Gemini takes a single type."""
    if isinstance(schema, list):
        return [clean_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in SCHEMA_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = clean_schema(value)
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out[key] = types[0] if types else "null"
            if len(types) < len(value):
                out["nullable"] = True
        else:
            out[key] = value
    return out


def part_to_wire(part: Any, call_names: dict[str, str]) -> dict[str, Any] | None:
    """One neutral part as a Gemini part, or None for parts Gemini has no use for."""
    if isinstance(part, TextPart):
        return {"text": part.text} if part.text else None  # Gemini rejects empty text parts
    if isinstance(part, ImagePart):
        if part.is_inline:
            media_type, data = part.inline_data()
            return {"inlineData": {"mimeType": media_type, "data": data}}
        guessed = mimetypes.guess_type(urlparse(part.url).path)[0]
        return {"fileData": {"fileUri": part.url, "mimeType": guessed or "image/jpeg"}}
    if isinstance(part, ToolCallPart):
        return {"functionCall": {"name": part.name, "args": part.input()}}
    if isinstance(part, ToolResultPart):
        name = part.name or call_names.get(part.tool_call_id)
        if not name:
            raise bad_request(f"tool result {part.tool_call_id} matches no earlier tool call", "messages")
        # Gemini's documented convention: "error" for failures, otherwise any object.
        response = {"error": part.content} if part.is_error else {"content": part.content}
        return {"functionResponse": {"name": name, "response": response}}
    return None  # thinking is not sent back: Gemini keeps reasoning server-side


def messages_to_wire(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents) with consecutive same-role turns merged."""
    call_names = {c.id: c.name for m in messages for c in m.tool_calls}
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            system.extend({"text": p.text} for p in m.parts if isinstance(p, TextPart) and p.text)
            continue
        parts = [w for w in (part_to_wire(p, call_names) for p in m.parts) if w is not None]
        if not parts:
            continue
        role = "model" if m.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def encode_request(req: ChatRequest) -> dict[str, Any]:
    system, contents = messages_to_wire(req.messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    config: dict[str, Any] = {}
    for name, wire in (("max_tokens", "maxOutputTokens"), ("temperature", "temperature"),
                       ("top_p", "topP"), ("stop", "stopSequences"), ("seed", "seed")):
        value = getattr(req, name)
        if value is not None:
            config[wire] = value
    if req.n != 1:
        config["candidateCount"] = req.n
    rf = req.response_format
    if rf is not None and rf.type != "text":
        config["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema:
            config["responseSchema"] = clean_schema(rf.schema)
    if req.tools:
        body["tools"] = [{"functionDeclarations": [
            {"name": t.name, "parameters": clean_schema(t.parameters)} | ({"description": t.description} if t.description else {})
            for t in req.tools
        ]}]
    if req.tool_choice is not None:
        fcc: dict[str, Any] = {"mode": TOOL_MODES[req.tool_choice.mode]}
        if req.tool_choice.mode == "tool" and req.tool_choice.name:
            fcc["allowedFunctionNames"] = [req.tool_choice.name]
        body["toolConfig"] = {"functionCallingConfig": fcc}
    for key, value in req.extra.items():
        if key in TOP_LEVEL_EXTRAS:
            body[key] = value
        elif key in GENERATION_EXTRAS:
            config[GENERATION_EXTRAS[key]] = value
    if config:
        body["generationConfig"] = config
    return body


# ---- response ------------------------------------------------------------------------------


def usage_from_wire(u: dict[str, Any] | None) -> Usage:
    if not u:
        return Usage()
    thoughts = u.get("thoughtsTokenCount") or 0
    return Usage(
        # Tool-use prompt tokens (grounding, code execution) are billed as input too.
        input_tokens=(u.get("promptTokenCount") or 0) + (u.get("toolUsePromptTokenCount") or 0),
        output_tokens=(u.get("candidatesTokenCount") or 0) + thoughts,
        cache_read_tokens=u.get("cachedContentTokenCount") or 0,
        reasoning_tokens=thoughts,
    )


def finish_from_wire(reason: str, has_calls: bool) -> FinishReason:
    return FINISHES.get(reason) or ("tool_calls" if has_calls else "stop")


def part_from_wire(p: dict[str, Any]) -> TextPart | ThinkingPart | ToolCallPart | None:
    if "functionCall" in p:
        fn = p["functionCall"] or {}
        args = orjson.dumps(fn.get("args") or {}).decode()
        return ToolCallPart(new_id("call_"), fn.get("name") or "", args)
    text = p.get("text")
    if not text:  # e.g. a part carrying only a thoughtSignature
        return None
    return ThinkingPart(text, p.get("thoughtSignature")) if p.get("thought") else TextPart(text)


def check_blocked(data: dict[str, Any], provider: str | None) -> None:
    reason = (data.get("promptFeedback") or {}).get("blockReason")
    if reason and not data.get("candidates"):
        raise GatewayError(ErrorKind.content_policy, f"the prompt was blocked by Gemini ({reason})", provider=provider)


def decode_response(data: Any, model: str, provider: str | None = None) -> ChatResponse:
    if isinstance(data, dict):
        check_blocked(data, provider)
    if not isinstance(data, dict) or not isinstance(data.get("candidates"), list):
        raise GatewayError(ErrorKind.upstream_unavailable, "upstream answer has no candidates", provider=provider)
    choices = []
    for i, c in enumerate(data["candidates"]):
        parts = [p for p in (part_from_wire(w) for w in (c.get("content") or {}).get("parts") or ()) if p]
        has_calls = any(isinstance(p, ToolCallPart) for p in parts)
        finish = finish_from_wire(c.get("finishReason") or "STOP", has_calls)
        choices.append(Choice(c.get("index", i), Message("assistant", parts), finish))
    return ChatResponse(
        id=data.get("responseId") or new_id("gemini-"), model=data.get("modelVersion") or model,
        choices=choices, usage=usage_from_wire(data.get("usageMetadata")),
    )


class StreamDecoder:
    """Turns SSE frames (whole partial responses) into stream events. Usage is reported once,
    from the last frame that had any, when the connection closes (`end`)."""

    def __init__(self, model: str, provider: str | None = None) -> None:
        self.model = model
        self.provider = provider
        self.started = False
        self.finished = False
        self._usage: dict[str, Any] | None = None
        self._calls: dict[int, int] = {}  # candidate index -> tool calls seen so far

    def feed(self, frame: Any) -> list[StreamEvent]:
        if not isinstance(frame, dict):
            raise GatewayError(ErrorKind.upstream_unavailable, "upstream sent a malformed stream event", provider=self.provider)
        if "error" in frame:  # mid-stream: the HTTP status is long sent; `status` decides
            raise error_from_body(500, frame, {}, self.provider)
        check_blocked(frame, self.provider)
        events: list[StreamEvent] = []
        if not self.started:
            self.started = True
            events.append(StreamStart(frame.get("responseId") or new_id("gemini-"), frame.get("modelVersion") or self.model))
        for c in frame.get("candidates") or ():
            index = c.get("index", 0)
            for wire in (c.get("content") or {}).get("parts") or ():
                part = part_from_wire(wire)
                if isinstance(part, TextPart):
                    events.append(TextDelta(part.text, index))
                elif isinstance(part, ThinkingPart):
                    events.append(ThinkingDelta(part.text, part.signature, index))
                elif isinstance(part, ToolCallPart):
                    number = self._calls.get(index, 0)
                    self._calls[index] = number + 1
                    events.append(ToolCallDelta(number, part.arguments, part.id, part.name, index))
            if c.get("finishReason"):
                self.finished = True
                events.append(StreamFinish(finish_from_wire(c["finishReason"], index in self._calls), index))
        if frame.get("usageMetadata"):
            self._usage = frame["usageMetadata"]
        return events

    def end(self) -> list[StreamEvent]:
        """The events owed when the connection closes; a stream with no finishReason was cut."""
        if not self.finished:
            raise GatewayError(ErrorKind.upstream_unavailable, "upstream stream ended before it finished", provider=self.provider)
        return [UsageReport(usage_from_wire(self._usage))] if self._usage else []


# ---- errors --------------------------------------------------------------------------------


def _retry_delay(err: dict[str, Any]) -> float | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "37s"`)."""
    for d in err.get("details") or ():
        match = RETRY_DELAY.fullmatch(str(d.get("retryDelay"))) if isinstance(d, dict) else None
        if match:
            return float(match[1])
    return None


def error_from_body(status: int, body: Any, headers: Any, provider: str | None) -> GatewayError:
    if isinstance(body, list) and body:  # the non-SSE stream wraps errors in an array
        body = body[0]
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else {}
    message = str(err.get("message") or f"upstream answered HTTP {status}")
    code = str(err.get("status") or "")
    kind = STATUS_KINDS.get(code) or kind_for_status(status)
    retry_after = None
    if code == "RESOURCE_EXHAUSTED" or status == 429:
        kind = ErrorKind.rate_limit
        retry_after = retry_after_seconds(headers) or _retry_delay(err)
    elif "api key" in message.lower() and kind in (ErrorKind.permission, ErrorKind.bad_request):
        kind = ErrorKind.authentication  # a bad key is a 400 INVALID_ARGUMENT or a 403 here
    elif kind is ErrorKind.bad_request and "maximum number of tokens" in message.lower():
        kind = ErrorKind.context_length
    return GatewayError(kind, message, retry_after=retry_after, provider=provider)


# ---- the dialect ---------------------------------------------------------------------------


class GeminiGenerateContent:
    name = "gemini"

    def base(self, dep: Deployment) -> str:
        return dep.api_base.rstrip("/") + "/v1beta"

    def model_url(self, dep: Deployment, method: str) -> str:
        return f"{self.base(dep)}/models/{dep.model.removeprefix('models/')}:{method}"

    def headers(self, dep: Deployment) -> dict[str, str]:
        h = {"x-goog-api-key": dep.key} if dep.api_key else {}
        h.update(dep.headers)
        return h

    async def _send(self, http: HttpClient, dep: Deployment, method: str, url: str, body: Any = None,
                    params: dict[str, str] | None = None, stream: bool = False, timeout: float | None = None) -> Any:
        resp = await http.send(
            method, url, body=body, headers=self.headers(dep), params=params, timeout=timeout or dep.timeout,
            connect_timeout=dep.connect_timeout, stream=stream, provider=dep.provider,
        )
        if resp.status >= 400:
            data = await read_json_lenient(resp, dep.provider)
            raise error_from_body(resp.status, data, resp.headers, dep.provider)
        return resp

    async def chat(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> ChatResponse:
        resp = await self._send(http, dep, "POST", self.model_url(dep, "generateContent"), encode_request(req))
        return decode_response(await read_json(resp, dep.provider), dep.model, dep.provider)

    async def stream(self, http: HttpClient, req: ChatRequest, dep: Deployment) -> AsyncIterator[StreamEvent]:
        url = self.model_url(dep, "streamGenerateContent")
        resp = await self._send(http, dep, "POST", url, encode_request(req), params={"alt": "sse"}, stream=True)
        decoder = StreamDecoder(dep.model, dep.provider)
        async for _event, data in iter_sse(resp, dep.provider):
            for ev in decoder.feed(parse_event(data, dep.provider)):
                yield ev
        for ev in decoder.end():
            yield ev

    async def embed(self, http: HttpClient, req: EmbeddingRequest, dep: Deployment) -> EmbeddingResponse:
        model = "models/" + dep.model.removeprefix("models/")
        options: dict[str, Any] = {"outputDimensionality": req.dimensions} if req.dimensions else {}
        if "taskType" in req.extra:  # RETRIEVAL_QUERY, SEMANTIC_SIMILARITY, ...
            options["taskType"] = req.extra["taskType"]
        requests = [{"model": model, "content": {"parts": [{"text": t}]}} | options for t in req.inputs]
        resp = await self._send(http, dep, "POST", self.model_url(dep, "batchEmbedContents"), {"requests": requests})
        data = await read_json(resp, dep.provider)
        try:
            vectors = [e["values"] for e in data["embeddings"]]
        except (KeyError, TypeError) as exc:
            raise GatewayError(ErrorKind.upstream_unavailable, "upstream embeddings answer is malformed", provider=dep.provider) from exc
        return EmbeddingResponse(dep.model, vectors)  # batchEmbedContents reports no token counts

    async def list_models(self, http: HttpClient, dep: Deployment) -> list[str]:
        names: list[str] = []
        params = {"pageSize": "1000"}
        while True:  # the listing is paged; follow nextPageToken to the end
            resp = await self._send(http, dep, "GET", f"{self.base(dep)}/models", params=params, timeout=5)
            data = await read_json(resp, dep.provider) or {}
            names += [m["name"].removeprefix("models/") for m in data.get("models") or () if isinstance(m, dict) and "name" in m]
            if not data.get("nextPageToken"):
                return names
            params = {"pageSize": "1000", "pageToken": data["nextPageToken"]}
