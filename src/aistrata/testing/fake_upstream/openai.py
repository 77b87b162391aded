"""OpenAI Chat Completions, Embeddings and Models, plus the Azure OpenAI paths.

Wire facts reproduced:

* whole reply ``object: chat.completion``; streamed ``chat.completion.chunk``
  frames ``data: <json>\\n\\n`` with one shared ``id``/``created``, the first
  delta carrying ``role``, a last choice chunk with ``delta: {}`` and the
  ``finish_reason``, every chunk ``"usage": null``, then ``data: [DONE]``;
* ``stream_options.include_usage``: one extra chunk before ``[DONE]`` with
  ``choices: []`` and the totals (variants: ``null_choices`` → ``choices:
  null`` as vLLM; ``with_choices`` → usage rides on the finish chunk;
  ``second_to_last`` → usage chunk then an empty ``choices: []`` chunk);
* ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``;
  ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``;
* streamed tool calls: first fragment per ``index`` has ``id``, ``type`` and
  ``function.name`` with ``arguments: ""``, then argument fragments;
  ``finish_reason: tool_calls``; whole replies have ``content: null``;
* errors ``{"error":{"message","type","param","code"}}``; in-stream
  ``data: {"error":{...}}``;
* Azure: ``/openai/deployments/{d}/...`` needs ``?api-version`` (404
  "Resource not found" otherwise), takes ``api-key``, and streams open with
  a ``choices: []`` chunk carrying ``prompt_filter_results``;
* embeddings honour ``dimensions`` and ``encoding_format: base64``
  (little-endian float32).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from .content import DEFAULT_EMBED_DIMS, Prompt, Reply, Tool, embedding, embedding_b64, make_reply
from .faults import Faults
from .wire import SSE, Answer, BadRequest, Call, Stream, body_dict

MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small")
_MODELS_BODY = orjson.dumps({"object": "list", "data": [
    {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake-upstream"} for m in MODELS]})
_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool": "tool_calls"}
_DONE = b"data: [DONE]\n\n"
_ERRORS: dict[str, tuple[str, str | None, str | None, str]] = {
    "auth": ("invalid_request_error", "invalid_api_key", None, "Incorrect API key provided."),
    "invalid": ("invalid_request_error", None, None, "Invalid request."),
    "not_found": ("invalid_request_error", "model_not_found", "model",
                  "The model does not exist or you do not have access to it."),
    "rate_limit": ("requests", "rate_limit_exceeded", None,
                   "Rate limit reached for requests. Please try again later."),
    "server": ("server_error", None, None, "The server had an error while processing your request. Sorry about that!"),
    "unavailable": ("server_error", None, None, "The engine is currently overloaded, please try again later."),
    "overloaded": ("server_error", None, None, "The engine is currently overloaded, please try again later."),
    "context_length": ("invalid_request_error", "context_length_exceeded", "messages",
                       "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                       "250000 tokens. Please reduce the length of the messages."),
    "content_filter": ("invalid_request_error", "content_filter", "prompt",
                       "The response was filtered due to the prompt triggering the content management policy."),
}
_PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": {}}]


def error_body(kind: str, message: str | None = None, param: str | None = None) -> dict[str, Any]:
    etype, code, default_param, default_message = _ERRORS.get(kind, _ERRORS["server"])
    return {"error": {"message": message or default_message, "type": etype,
                      "param": param or default_param, "code": code}}


def _parts(content: Any) -> tuple[list[str], int]:
    """(text parts, image count) of a message's content (string or part list)."""
    if isinstance(content, str):
        return [content], 0
    texts: list[str] = []
    images = 0
    for part in content or ():
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image_url":
            images += 1
    return texts, images


def parse_chat(body: dict[str, Any], model: str) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", "messages")
    prompt = Prompt(model=model, messages=len(messages), stream=bool(body.get("stream")))
    for message in messages:
        texts, images = _parts(message.get("content"))
        prompt.texts.extend(texts)
        prompt.images += images
        if message.get("role") == "user":
            prompt.last_user_text = " ".join(texts)
    if messages[-1].get("role") == "tool":
        prompt.tool_result = " ".join(_parts(messages[-1].get("content"))[0])
    for tool in body.get("tools") or ():
        fn = tool.get("function") or {}
        prompt.tools.append(Tool(str(fn.get("name", "")), fn.get("parameters") or {}))
    choice = body.get("tool_choice")
    if choice == "none":
        prompt.tool_mode = "none"
    elif choice == "required":
        prompt.tool_mode = "any"
    elif isinstance(choice, dict):
        prompt.tool_mode, prompt.tool_name = "named", (choice.get("function") or {}).get("name")
    prompt.parallel_ok = body.get("parallel_tool_calls", True) is not False
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        prompt.json_mode = True
        prompt.json_schema = (fmt.get("json_schema") or {}).get("schema")
    prompt.n = int(body.get("n") or 1)
    stop = body.get("stop")
    prompt.stop = [stop] if isinstance(stop, str) else list(stop or ())
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    prompt.max_tokens = int(limit) if limit is not None else None
    return prompt


def usage(reply: Reply, n: int) -> dict[str, Any]:
    completion = (reply.output_tokens + reply.reasoning_tokens) * n
    return {"prompt_tokens": reply.input_tokens, "completion_tokens": completion,
            "total_tokens": reply.input_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reply.reasoning_tokens * n, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _message(reply: Reply, call_prefix: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
    if reply.tool_calls:
        message["tool_calls"] = [{"id": f"{call_prefix}{i}", "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments_json}}
                                 for i, c in enumerate(reply.tool_calls)]
    return message


def _choice_chunks(reply: Reply, index: int, call_prefix: str) -> list[dict[str, Any]]:
    """The per-choice chunk sequence: role, content or tool fragments, finish."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    if not reply.tool_calls:
        out = [chunk({"role": "assistant", "content": "", "refusal": None})]
        out += [chunk({"content": piece}) for piece in reply.pieces]
    else:
        out = []
        for i, c in enumerate(reply.tool_calls):
            first = {"index": i, "id": f"{call_prefix}{i}", "type": "function",
                     "function": {"name": c.name, "arguments": ""}}
            delta: dict[str, Any] = {"tool_calls": [first]}
            if i == 0:
                delta = {"role": "assistant", "content": None, "tool_calls": [first], "refusal": None}
            out.append(chunk(delta))
            out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": f}}]}) for f in c.fragments]
    out.append(chunk({}, _FINISH[reply.finish]))
    return out


class OpenAIDialect:
    name = "openai"
    auth_optional = False

    def __init__(self, azure: bool = False) -> None:
        self.azure = azure
        if azure:
            self.name = "azure"

    def credential(self, call: Call) -> str | None:
        key = call.headers.get("api-key") if self.azure else None
        if key:
            return key
        bearer = call.headers.get("authorization", "")
        return bearer[7:] if bearer[:7].lower() == "bearer " else None

    def auth_error(self, call: Call, present: bool) -> Answer:
        msg = "Incorrect API key provided." if present else \
            "You didn't provide an API key. You need to provide your API key in an Authorization header."
        return Answer(401, orjson.dumps(error_body("auth", msg)))

    def error(self, kind: str, status: int, message: str | None, call: Call, *,
              param: str | None = None, retry_after: float | None = None) -> Answer:
        return Answer(status, orjson.dumps(error_body(kind, message, param)))

    def model(self, call: Call) -> str:
        body = call.body if isinstance(call.body, dict) else {}
        return str(body.get("model") or call.path_model)

    def handle(self, call: Call, model: str, faults: Faults) -> Answer | Stream:
        if self.azure and "api-version" not in call.query:
            return Answer(404, orjson.dumps({"error": {"code": "404", "message": "Resource not found"}}))
        if call.op == "models":
            return Answer(200, _MODELS_BODY)
        body = body_dict(call)
        if call.op == "embed":
            return self._embed(body, model)
        prompt = parse_chat(body, model)
        reply = make_reply(prompt, faults)
        ident = f"chatcmpl-fake{call.seq:010d}"
        call_prefix = f"call_fake{call.seq:010d}_"
        totals = usage(reply, prompt.n)
        if not prompt.stream:
            out: dict[str, Any] = {
                "id": ident, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": i, "message": _message(reply, call_prefix), "logprobs": None,
                             "finish_reason": _FINISH[reply.finish]} for i in range(prompt.n)],
                "usage": totals, "service_tier": "default", "system_fingerprint": "fp_fake"}
            if self.azure:
                out["prompt_filter_results"] = _PROMPT_FILTER
            return Answer(200, orjson.dumps(out), usage=totals)
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        return self._stream(ident, model, reply, prompt.n, call_prefix, totals if include else None,
                            faults.usage_variant)

    def _stream(self, ident: str, model: str, reply: Reply, n: int, call_prefix: str,
                totals: dict[str, Any] | None, variant: str) -> Stream:
        # Every chunk shares this prefix, so it is encoded once per stream.
        head = orjson.dumps({"id": ident, "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": model, "system_fingerprint": "fp_fake"})[:-1] + b',"choices":'
        per_choice = [_choice_chunks(reply, i, call_prefix) for i in range(n)]
        frames = [b"data: " + head + b"[]," + orjson.dumps({"prompt_filter_results": _PROMPT_FILTER})[1:]
                  + b"\n\n"] if self.azure else []
        finish_usage = totals if totals is not None and variant == "with_choices" else None
        last = len(per_choice[0]) - 1
        for pos in range(last + 1):
            choices = orjson.dumps([chunks[pos] for chunks in per_choice])
            tail = orjson.dumps(finish_usage) if pos == last and finish_usage else b"null"
            frames.append(b"data: " + head + choices + b',"usage":' + tail + b"}\n\n")
        if totals is not None and variant != "with_choices":
            choices = b"null" if variant == "null_choices" else b"[]"
            frames.append(b"data: " + head + choices + b',"usage":' + orjson.dumps(totals) + b"}\n\n")
            if variant == "second_to_last":
                frames.append(b"data: " + head + b'[],"usage":null}\n\n')
        frames.append(_DONE)
        return Stream(frames, SSE,
                      malformed=b'data: {"id":"' + ident.encode() + b'","choices":[{"delta":{"content":"oo\n\n',
                      error_frame=b"data: " + orjson.dumps(error_body("server")) + b"\n\n",
                      usage=totals)

    def _embed(self, body: dict[str, Any], model: str) -> Answer:
        raw = body.get("input")
        if raw is None or raw == [] or raw == "":
            raise BadRequest("'input' is a required property.", "input")
        items: list[Any] = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else list(raw)
        dims = int(body.get("dimensions") or DEFAULT_EMBED_DIMS)
        b64 = body.get("encoding_format") == "base64"
        data, tokens = [], 0
        for i, item in enumerate(items):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += len(text.split())
            vector = embedding(text, dims)
            data.append({"object": "embedding", "index": i, "embedding": embedding_b64(vector) if b64 else vector})
        totals = {"prompt_tokens": tokens, "total_tokens": tokens}
        return Answer(200, orjson.dumps({"object": "list", "data": data, "model": model, "usage": totals}),
                      usage=totals)
