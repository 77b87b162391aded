"""Google Gemini (``/v1beta/models/{model}:{method}``; ``/v1/`` works too).

Wire facts reproduced:

* auth by ``x-goog-api-key`` or ``?key=``; like the real API a missing key is
  403 ``PERMISSION_DENIED`` and a wrong key is 400 ``INVALID_ARGUMENT`` with
  an ``ErrorInfo`` detail whose reason is ``API_KEY_INVALID`` (not 401);
* camelCase request (``contents``, ``systemInstruction``,
  ``generationConfig.{maxOutputTokens, stopSequences, candidateCount,
  responseMimeType, responseSchema}``, ``tools[].functionDeclarations``,
  ``toolConfig.functionCallingConfig.mode``), roles ``user``/``model``;
  image parts are ``inlineData``/``fileData``; tool results are
  ``functionResponse`` parts;
* reply ``candidates[].content.parts`` (``text`` or whole ``functionCall``
  with an ``args`` object), upper-case ``finishReason`` (``STOP`` also for
  function calls, ``MAX_TOKENS``), ``usageMetadata`` with
  ``promptTokenCount`` (INCLUDES ``cachedContentTokenCount``),
  ``candidatesTokenCount``, ``thoughtsTokenCount`` (only when non-zero,
  counted in ``totalTokenCount`` but not in candidates);
* ``:streamGenerateContent?alt=sse``: bare ``data: <json>\\r\\n\\r\\n`` frames, no
  event names, no ``[DONE]``; intermediate frames carry a partial
  ``usageMetadata`` (prompt and total only), the last one the finishReason
  and full usage; without ``alt=sse`` the body is one streamed JSON array
  ``[{..}\\r\\n,\\r\\n{..}]`` served as ``application/json``;
* a ``content_filter`` fault is a 200 with ``promptFeedback.blockReason:
  SAFETY`` and no candidates, as Gemini really reports blocked prompts;
* errors ``{"error":{"code","message","status"}}``; a 429 with
  ``retry_after`` also carries a ``RetryInfo`` detail.
"""

from __future__ import annotations

from typing import Any

import orjson

from .content import DEFAULT_EMBED_DIMS, Prompt, Reply, Tool, embedding, make_reply
from .faults import Faults, split_model
from .wire import JSON, SSE, Answer, BadRequest, Call, Stream, body_dict

MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001")
_MODELS_BODY = orjson.dumps({"models": [
    {"name": f"models/{m}", "displayName": m, "supportedGenerationMethods": ["generateContent"]} for m in MODELS]})
_FINISH = {"stop": "STOP", "stop_sequence": "STOP", "length": "MAX_TOKENS", "tool": "STOP"}
_ERRORS: dict[str, tuple[str, str]] = {
    "auth": ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    "invalid": ("INVALID_ARGUMENT", "Invalid argument."),
    "not_found": ("NOT_FOUND", "Model is not found for API version v1beta."),
    "rate_limit": ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "server": ("INTERNAL", "An internal error has occurred. Please retry or report it."),
    "unavailable": ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    "overloaded": ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    "context_length": ("INVALID_ARGUMENT",
                       "The input token count (250000) exceeds the maximum number of tokens allowed (1048576)."),
}


def error_body(kind: str, status: int, message: str | None = None, details: list[Any] | None = None) -> bytes:
    label, default = _ERRORS.get(kind, _ERRORS["server"])
    err: dict[str, Any] = {"code": status, "message": message or default, "status": label}
    if details:
        err["details"] = details
    return orjson.dumps({"error": err})


def _response_text(response: Any) -> str:
    """A functionResponse payload as text: a lone string value, else its JSON."""
    if isinstance(response, dict) and len(response) == 1:
        (value,) = response.values()
        if isinstance(value, str):
            return value
    return orjson.dumps(response).decode()


def parse(body: dict[str, Any], model: str) -> Prompt:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    system = body.get("systemInstruction")
    prompt = Prompt(model=model, messages=len(contents) + (1 if system else 0))
    if system:
        prompt.texts.extend(str(p.get("text", "")) for p in system.get("parts") or () if "text" in p)
    results: list[str] = []
    for content in contents:
        texts, results = [], []
        for part in content.get("parts") or ():
            if "text" in part:
                texts.append(str(part["text"]))
            elif "inlineData" in part or "fileData" in part:
                prompt.images += 1
            elif "functionResponse" in part:
                results.append(_response_text((part["functionResponse"] or {}).get("response")))
        prompt.texts.extend(texts + results)
        if content.get("role", "user") == "user" and texts:
            prompt.last_user_text = " ".join(texts)
    if results:  # `results` holds the last content's functionResponse texts
        prompt.tool_result = " ".join(results)
    for group in body.get("tools") or ():
        for decl in group.get("functionDeclarations") or ():
            schema = decl.get("parameters") or decl.get("parametersJsonSchema") or {}
            prompt.tools.append(Tool(str(decl.get("name", "")), schema))
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = str(calling.get("mode", "AUTO")).upper()
    prompt.tool_mode = {"ANY": "any", "NONE": "none"}.get(mode, "auto")
    if mode == "ANY" and calling.get("allowedFunctionNames"):
        prompt.tool_name = calling["allowedFunctionNames"][0]
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        prompt.json_mode = True
        prompt.json_schema = config.get("responseSchema") or config.get("responseJsonSchema")
    prompt.n = int(config.get("candidateCount") or 1)
    prompt.stop = list(config.get("stopSequences") or ())
    if config.get("maxOutputTokens") is not None:
        prompt.max_tokens = int(config["maxOutputTokens"])
    return prompt


def usage(reply: Reply, n: int) -> dict[str, Any]:
    candidates = reply.output_tokens * n
    meta: dict[str, Any] = {"promptTokenCount": reply.input_tokens, "candidatesTokenCount": candidates,
                            "totalTokenCount": reply.input_tokens + candidates + reply.reasoning_tokens,
                            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.input_tokens}]}
    if reply.cached_tokens:
        meta["cachedContentTokenCount"] = reply.cached_tokens
    if reply.reasoning_tokens:
        meta["thoughtsTokenCount"] = reply.reasoning_tokens
    return meta


def _parts(reply: Reply, pieces: list[str] | None) -> list[dict[str, Any]]:
    if reply.tool_calls:
        return [{"functionCall": {"name": c.name, "args": c.arguments}} for c in reply.tool_calls]
    return [{"text": p} for p in (pieces if pieces is not None else [reply.text or ""])]


class GeminiDialect:
    name = "gemini"
    auth_optional = False

    def credential(self, call: Call) -> str | None:
        return call.headers.get("x-goog-api-key") or call.query.get("key") or None

    def auth_error(self, call: Call, present: bool) -> Answer:
        if not present:
            return Answer(403, orjson.dumps({"error": {"code": 403, "status": "PERMISSION_DENIED", "message":
                          "Method doesn't allow unregistered callers (callers without established identity). "
                          "Please use API Key or other form of API consumer identity to call this API."}}))
        detail = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                  "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}
        return Answer(400, error_body("invalid", 400, "API key not valid. Please pass a valid API key.", [detail]))

    def error(self, kind: str, status: int, message: str | None, call: Call, *,
              param: str | None = None, retry_after: float | None = None) -> Answer:
        if kind == "content_filter":
            return Answer(200, orjson.dumps({"promptFeedback": {"blockReason": "SAFETY"},
                                             "usageMetadata": {"promptTokenCount": 0, "totalTokenCount": 0},
                                             "modelVersion": split_model(call.path_model)[0]}))
        details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}] \
            if retry_after is not None and status == 429 else None
        return Answer(status, error_body(kind, status, message, details))

    def model(self, call: Call) -> str:
        return call.path_model

    def handle(self, call: Call, model: str, faults: Faults) -> Answer | Stream:
        if call.op == "models":
            return Answer(200, _MODELS_BODY)
        body = body_dict(call)
        if call.op in ("embedContent", "batchEmbedContents"):
            return self._embed(call.op, body)
        if call.op not in ("generateContent", "streamGenerateContent"):
            raise BadRequest(f"Method {call.op} not found.", status=404, kind="not_found")
        prompt = parse(body, model)
        reply = make_reply(prompt, faults)
        meta = usage(reply, prompt.n)
        ident = f"fake{call.seq:010d}"

        def frame(pieces: list[str] | None, final: bool) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"parts": _parts(reply, pieces), "role": "model"}}
            candidates = [dict(candidate, index=i) for i in range(prompt.n)]
            if final:
                for c in candidates:
                    c["finishReason"] = _FINISH[reply.finish]
            partial = {"promptTokenCount": reply.input_tokens, "totalTokenCount": reply.input_tokens}
            return {"candidates": candidates, "usageMetadata": meta if final else partial,
                    "modelVersion": model, "responseId": ident}

        if call.op == "generateContent":
            return Answer(200, orjson.dumps(frame(None, True)), usage=meta)
        pieces = reply.pieces or [""]
        docs = [frame(None, True)] if reply.tool_calls else \
            [frame([p], i == len(pieces) - 1) for i, p in enumerate(pieces)]
        encoded = [orjson.dumps(d) for d in docs]
        error = error_body("unavailable", 503)
        if call.query.get("alt") == "sse":
            return Stream([b"data: " + e + b"\r\n\r\n" for e in encoded], SSE,
                          malformed=b'data: {"candidates":[{"content":{"parts":[{"te\r\n\r\n',
                          error_frame=b"data: " + error + b"\r\n\r\n", usage=meta, crlf_native=True)
        frames = [b"[" + encoded[0]] + [b",\r\n" + e for e in encoded[1:]] + [b"]"]
        return Stream(frames, JSON, malformed=b',\r\n{"candidates":[{"content":{"pa', error_frame=b",\r\n" + error + b"]",
                      usage=meta, sse=False)

    def _embed(self, op: str, body: dict[str, Any]) -> Answer:
        requests = body.get("requests") if op == "batchEmbedContents" else [body]
        if not isinstance(requests, list) or not requests:
            raise BadRequest("* BatchEmbedContentsRequest.requests: requests is not specified")
        vectors = []
        for request in requests:
            parts = (request.get("content") or {}).get("parts") or ()
            text = " ".join(str(p.get("text", "")) for p in parts)
            if not text:
                raise BadRequest("* EmbedContentRequest.content: content is not specified")
            dims = int(request.get("outputDimensionality") or DEFAULT_EMBED_DIMS)
            vectors.append({"values": embedding(text, dims)})
        out = {"embeddings": vectors} if op == "batchEmbedContents" else {"embedding": vectors[0]}
        return Answer(200, orjson.dumps(out))


def parse_path(path: str) -> tuple[str, str] | None:
    """``/v1beta/models/gemini-x:generateContent`` → (``gemini-x``, ``generateContent``)."""
    tail = path.split("/models/", 1)[1] if "/models/" in path else ""
    model, sep, method = tail.rpartition(":")
    return (model, method) if sep and model else None

