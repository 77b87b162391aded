"""Anthropic Messages (``POST /v1/messages``) and ``GET /v1/models``.

Wire facts reproduced:

* requests need ``x-api-key`` (or ``Authorization: Bearer``, which current
  SDKs send; 401 ``authentication_error`` otherwise) and
  ``anthropic-version`` plus a ``max_tokens`` field (400
  ``invalid_request_error``); ``system`` is top level; content is a string or
  a list of blocks (``text``, ``image`` with base64/url source, ``tool_use``,
  ``tool_result``);
* whole reply ``{"type":"message", "content":[blocks], "stop_reason", ...}``
  with ``stop_reason`` in ``end_turn | stop_sequence | max_tokens |
  tool_use`` and ``stop_sequence`` naming the matched string;
* ``usage.input_tokens`` EXCLUDES cache reads and writes, which are reported
  in ``cache_read_input_tokens`` / ``cache_creation_input_tokens``;
  ``output_tokens`` includes thinking (reasoning) tokens;
* streamed as named SSE events ``event: <type>\\ndata: <json>\\n\\n``:
  ``message_start`` (provisional ``output_tokens: 1``) → per block
  ``content_block_start`` → ``content_block_delta``\\* →
  ``content_block_stop`` → ``message_delta`` (stop_reason and CUMULATIVE
  ``usage.output_tokens``) → ``message_stop``; a ``ping`` follows the first
  block start; no ``[DONE]``;
* tool use streams ``content_block_start`` with ``input: {}``, an empty
  ``input_json_delta`` then ``partial_json`` fragments;
* structured output: ``output_config.format = {"type": "json_schema", "schema"}``
  makes the text a JSON document matching the schema;
* errors ``{"type":"error","error":{"type","message"}}`` with a
  ``request-id`` header; in-stream ``event: error`` ``overloaded_error``.
"""

from __future__ import annotations

from typing import Any

import orjson

from .content import Prompt, Reply, Tool, make_reply
from .faults import Faults
from .wire import SSE, Answer, BadRequest, Call, Stream, body_dict

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")
_MODELS_BODY = orjson.dumps({
    "data": [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in MODELS],
    "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})
_STOP = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens", "tool": "tool_use"}
_ERRORS: dict[str, tuple[str, str]] = {
    "auth": ("authentication_error", "invalid x-api-key"),
    "invalid": ("invalid_request_error", "Invalid request."),
    "not_found": ("not_found_error", "model: not found"),
    "rate_limit": ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    "server": ("api_error", "Internal server error"),
    "unavailable": ("api_error", "Service unavailable"),
    "overloaded": ("overloaded_error", "Overloaded"),
    "context_length": ("invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"),
    "content_filter": ("invalid_request_error", "Output blocked by content filtering policy"),
}


def error_body(kind: str, message: str | None = None) -> dict[str, Any]:
    etype, default = _ERRORS.get(kind, _ERRORS["server"])
    return {"type": "error", "error": {"type": etype, "message": message or default}}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _block_texts(content: Any) -> tuple[list[str], int, list[str]]:
    """(text block texts, image count, tool_result texts) of message content."""
    if isinstance(content, str):
        return [content], 0, []
    texts: list[str] = []
    results: list[str] = []
    images = 0
    for block in content or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image":
            images += 1
        elif kind == "tool_result":
            inner, more, _ = _block_texts(block.get("content") or "")
            results.extend(inner)
            images += more
    return texts, images, results


def parse(body: dict[str, Any], model: str) -> Prompt:
    if "max_tokens" not in body:
        raise BadRequest("max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required")
    system = body.get("system")
    prompt = Prompt(model=model, messages=len(messages) + (1 if system else 0), stream=bool(body.get("stream")))
    if system:
        prompt.texts.extend(_block_texts(system)[0])
    for message in messages:
        texts, images, results = _block_texts(message.get("content"))
        prompt.texts.extend(texts + results)
        prompt.images += images
        if message.get("role") == "user" and texts:
            prompt.last_user_text = " ".join(texts)
    last_results = _block_texts(messages[-1].get("content"))[2]
    if messages[-1].get("role") == "user" and last_results:
        prompt.tool_result = " ".join(last_results)
    prompt.tools = [Tool(str(t.get("name", "")), t.get("input_schema") or {}) for t in body.get("tools") or ()]
    choice = body.get("tool_choice") or {}
    mode = choice.get("type", "auto")
    prompt.tool_mode = {"any": "any", "tool": "named", "none": "none"}.get(mode, "auto")
    prompt.tool_name = choice.get("name")
    prompt.parallel_ok = not choice.get("disable_parallel_tool_use", False)
    prompt.stop = list(body.get("stop_sequences") or ())
    prompt.max_tokens = int(body["max_tokens"])
    fmt = (body.get("output_config") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":  # structured outputs: the text is JSON matching the schema
        prompt.json_mode, prompt.json_schema = True, fmt.get("schema")
    return prompt


def usage(reply: Reply) -> dict[str, Any]:
    return {"input_tokens": reply.input_tokens - reply.cached_tokens - reply.cache_write_tokens,
            "cache_creation_input_tokens": reply.cache_write_tokens,
            "cache_read_input_tokens": reply.cached_tokens,
            "output_tokens": reply.output_tokens + reply.reasoning_tokens, "service_tier": "standard"}


def _blocks(reply: Reply, tool_prefix: str) -> list[dict[str, Any]]:
    if reply.tool_calls:
        return [{"type": "tool_use", "id": f"{tool_prefix}{i}", "name": c.name, "input": c.arguments}
                for i, c in enumerate(reply.tool_calls)]
    return [{"type": "text", "text": reply.text or ""}]


class AnthropicDialect:
    name = "anthropic"
    auth_optional = False

    def credential(self, call: Call) -> str | None:
        # Recent SDKs send the API key as a bearer token, so both are accepted.
        bearer = call.headers.get("authorization", "")
        return call.headers.get("x-api-key") or (bearer[7:] if bearer[:7].lower() == "bearer " else None)

    def auth_error(self, call: Call, present: bool) -> Answer:
        message = "invalid x-api-key" if present else "x-api-key header is required"
        return self.error("auth", 401, message, call)

    def error(self, kind: str, status: int, message: str | None, call: Call, *,
              param: str | None = None, retry_after: float | None = None) -> Answer:
        return Answer(status, orjson.dumps(error_body(kind, message)),
                      headers=[(b"request-id", f"req_fake{call.seq:010d}".encode())])

    def model(self, call: Call) -> str:
        body = call.body if isinstance(call.body, dict) else {}
        return str(body.get("model") or "")

    def handle(self, call: Call, model: str, faults: Faults) -> Answer | Stream:
        if call.op == "models":
            return Answer(200, _MODELS_BODY)
        if "anthropic-version" not in call.headers:
            raise BadRequest("anthropic-version: header is required")
        body = body_dict(call)
        if not model:
            raise BadRequest("model: Field required")
        prompt = parse(body, model)
        reply = make_reply(prompt, faults)
        ident = f"msg_fake{call.seq:010d}"
        tool_prefix = f"toolu_fake{call.seq:010d}_"
        totals = usage(reply)
        headers = [(b"request-id", f"req_fake{call.seq:010d}".encode())]
        message: dict[str, Any] = {"id": ident, "type": "message", "role": "assistant", "model": model,
                                   "content": _blocks(reply, tool_prefix), "stop_reason": _STOP[reply.finish],
                                   "stop_sequence": reply.stop_sequence, "usage": totals}
        if not prompt.stream:
            return Answer(200, orjson.dumps(message), headers=headers, usage=totals)
        start = dict(message, content=[], stop_reason=None, stop_sequence=None, usage=dict(totals, output_tokens=1))
        frames = [_event("message_start", {"type": "message_start", "message": start})]
        if reply.tool_calls:
            for i, c in enumerate(reply.tool_calls):
                block = {"type": "tool_use", "id": f"{tool_prefix}{i}", "name": c.name, "input": {}}
                frames.append(_event("content_block_start", {"type": "content_block_start", "index": i,
                                                             "content_block": block}))
                if i == 0:
                    frames.append(_event("ping", {"type": "ping"}))
                frames += [_event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                    "type": "input_json_delta", "partial_json": f}}) for f in ["", *c.fragments]]
                frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": i}))
        else:
            frames.append(_event("content_block_start", {"type": "content_block_start", "index": 0,
                                                         "content_block": {"type": "text", "text": ""}}))
            frames.append(_event("ping", {"type": "ping"}))
            frames += [_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                      "delta": {"type": "text_delta", "text": p}})
                       for p in reply.pieces]
            frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        frames.append(_event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": _STOP[reply.finish], "stop_sequence": reply.stop_sequence},
            "usage": {"output_tokens": totals["output_tokens"]}}))
        frames.append(_event("message_stop", {"type": "message_stop"}))
        return Stream(frames, SSE,
                      malformed=b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"de\n\n',
                      error_frame=_event("error", error_body("overloaded")), usage=totals, headers=headers)
