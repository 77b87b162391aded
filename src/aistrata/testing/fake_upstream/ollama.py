"""Ollama native API: ``/api/chat``, ``/api/embed``, ``/api/tags``, ``/api/version``.

Wire facts reproduced:

* ``/api/chat`` STREAMS BY DEFAULT: unless the body says ``"stream": false``
  the reply is NDJSON (``application/x-ndjson``), one object per line with
  ``message.content`` pieces and ``done: false``, then a final object with
  ``done: true``, ``done_reason`` (``stop`` / ``length``) and the counters
  ``prompt_eval_count`` / ``eval_count`` plus ``*_duration`` nanoseconds;
* options live in ``options`` (``num_predict``, ``stop``); JSON mode is
  ``format: "json"`` or ``format: <schema>``; images are base64 strings in
  ``message.images``; tool calls come back whole as
  ``message.tool_calls[].function.{name, arguments}`` with ``arguments`` an
  OBJECT; tool results are ``role: tool`` messages;
* errors are ``{"error": "<text>"}``, also as an NDJSON line mid-stream;
* Ollama has no auth of its own: a key is only checked (``Authorization:
  Bearer``) when the server was given an exact ``api_key``.
"""

from __future__ import annotations

from typing import Any

import orjson

from .content import DEFAULT_EMBED_DIMS, Prompt, Reply, Tool, embedding, make_reply
from .faults import Faults
from .wire import Answer, BadRequest, Call, Stream, body_dict

NDJSON = b"application/x-ndjson"
CREATED_AT = "2025-01-01T00:00:00.000000Z"
MODELS = ("llama3.2:latest", "qwen3:8b", "nomic-embed-text:latest")
_TAGS_BODY = orjson.dumps({"models": [
    {"name": m, "model": m, "modified_at": CREATED_AT, "size": 2019393189, "digest": "0" * 64,
     "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}
    for m in MODELS]})
_VERSION_BODY = b'{"version":"0.12.6"}'
_ERRORS = {
    "auth": "unauthorized",
    "not_found": "model not found, try pulling it first",
    "rate_limit": "too many requests",
    "unavailable": "server busy, please try again. maximum pending requests exceeded",
    "overloaded": "server busy, please try again. maximum pending requests exceeded",
    "context_length": "the input length exceeds the context length",
    "content_filter": "content blocked",
}


def error_body(kind: str, message: str | None = None) -> bytes:
    return orjson.dumps({"error": message or _ERRORS.get(kind, "internal server error")})


def parse(body: dict[str, Any], model: str) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("messages is required")
    prompt = Prompt(model=model, messages=len(messages), stream=body.get("stream", True) is not False)
    for message in messages:
        text = str(message.get("content") or "")
        prompt.texts.append(text)
        prompt.images += len(message.get("images") or ())
        if message.get("role") == "user":
            prompt.last_user_text = text
    if messages and messages[-1].get("role") == "tool":
        prompt.tool_result = str(messages[-1].get("content") or "")
    for tool in body.get("tools") or ():
        fn = tool.get("function") or {}
        prompt.tools.append(Tool(str(fn.get("name", "")), fn.get("parameters") or {}))
    fmt = body.get("format")
    if fmt:
        prompt.json_mode = True
        prompt.json_schema = fmt if isinstance(fmt, dict) else None
    options = body.get("options") or {}
    stop = options.get("stop")
    prompt.stop = [stop] if isinstance(stop, str) else list(stop or ())
    if options.get("num_predict") is not None and int(options["num_predict"]) >= 0:
        prompt.max_tokens = int(options["num_predict"])
    return prompt


def usage(reply: Reply) -> dict[str, Any]:
    return {"prompt_eval_count": reply.input_tokens, "eval_count": reply.output_tokens + reply.reasoning_tokens}


def _final(model: str, reply: Reply, message: dict[str, Any]) -> dict[str, Any]:
    counts = usage(reply)
    return {"model": model, "created_at": CREATED_AT, "message": message, "done": True,
            "done_reason": "length" if reply.finish == "length" else "stop",
            "total_duration": 1000000, "load_duration": 100000,
            "prompt_eval_count": counts["prompt_eval_count"], "prompt_eval_duration": 200000,
            "eval_count": counts["eval_count"], "eval_duration": 700000}


class OllamaDialect:
    name = "ollama"
    auth_optional = True

    def credential(self, call: Call) -> str | None:
        bearer = call.headers.get("authorization", "")
        return bearer[7:] if bearer[:7].lower() == "bearer " else None

    def auth_error(self, call: Call, present: bool) -> Answer:
        return Answer(401, error_body("auth"))

    def error(self, kind: str, status: int, message: str | None, call: Call, *,
              param: str | None = None, retry_after: float | None = None) -> Answer:
        return Answer(status, error_body(kind, message))

    def model(self, call: Call) -> str:
        body = call.body if isinstance(call.body, dict) else {}
        return str(body.get("model") or "")

    def handle(self, call: Call, model: str, faults: Faults) -> Answer | Stream:
        if call.op == "tags":
            return Answer(200, _TAGS_BODY)
        if call.op == "version":
            return Answer(200, _VERSION_BODY)
        body = body_dict(call)
        if not model:
            raise BadRequest("model is required")
        if call.op == "embed":
            return self._embed(body, model)
        prompt = parse(body, model)
        reply = make_reply(prompt, faults)
        counts = usage(reply)
        if reply.tool_calls:
            calls = [{"function": {"name": c.name, "arguments": c.arguments}} for c in reply.tool_calls]
            message: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": calls}
        else:
            message = {"role": "assistant", "content": reply.text or ""}
        if not prompt.stream:
            return Answer(200, orjson.dumps(_final(model, reply, message)), usage=counts)
        lines = [] if reply.tool_calls else [
            orjson.dumps({"model": model, "created_at": CREATED_AT,
                          "message": {"role": "assistant", "content": p}, "done": False}) + b"\n"
            for p in reply.pieces]
        if reply.tool_calls:  # Ollama emits tool calls whole in one non-final line
            lines.append(orjson.dumps({"model": model, "created_at": CREATED_AT, "message": message,
                                       "done": False}) + b"\n")
        lines.append(orjson.dumps(_final(model, reply, {"role": "assistant", "content": ""})) + b"\n")
        return Stream(lines, NDJSON, malformed=b'{"model":"' + model.encode() + b'","message":{"ro\n',
                      error_frame=error_body("server", "an error was encountered while running the model") + b"\n",
                      usage=counts, sse=False)

    def _embed(self, body: dict[str, Any], model: str) -> Answer:
        raw = body.get("input")
        if not raw:
            raise BadRequest("input is required")
        items = [raw] if isinstance(raw, str) else [str(x) for x in raw]
        dims = int(body.get("dimensions") or DEFAULT_EMBED_DIMS)
        tokens = sum(len(t.split()) for t in items)
        return Answer(200, orjson.dumps({"model": model, "embeddings": [embedding(t, dims) for t in items],
                                         "total_duration": 1000000, "load_duration": 100000,
                                         "prompt_eval_count": tokens}), usage={"prompt_eval_count": tokens})
