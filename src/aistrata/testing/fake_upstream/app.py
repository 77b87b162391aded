"""The raw ASGI application: routing, auth, recording and fault injection.

No framework on purpose: this app is the baseline in throughput benchmarks.
Routes (dialect by path):

* OpenAI ``POST /v1/chat/completions``, ``POST /v1/embeddings``,
  ``GET /v1/models`` (Anthropic's list when ``anthropic-version`` is sent);
  Azure ``POST /openai/deployments/{d}/chat/completions|embeddings``;
* Anthropic ``POST /v1/messages``;
* Gemini ``POST /v1beta/models/{model}:{method}``, ``GET /v1beta/models``;
* Ollama ``POST /api/chat``, ``POST /api/embed``, ``GET /api/tags``,
  ``GET /api/version``;
* control: ``GET|DELETE /_fake/requests``, ``GET|POST|DELETE /_fake/faults``.

Every dialect request is appended to ``requests`` (bounded) as a dict with
``method, path, query, headers, body, dialect, model, status, usage,
completed``; ``usage`` is the usage object the fake reported, in the
dialect's own shape, set once the response (or stream) is finished.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import fields
from typing import Any
from urllib.parse import parse_qsl

import orjson

from .anthropic import AnthropicDialect
from .faults import FailCounter, Faults, split_model, with_profile
from .gemini import GeminiDialect, parse_path
from .ollama import OllamaDialect
from .openai import OpenAIDialect
from .wire import JSON, Answer, BadRequest, Call, Dialect, Stream

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

OPENAI, AZURE = OpenAIDialect(), OpenAIDialect(azure=True)
ANTHROPIC, GEMINI, OLLAMA = AnthropicDialect(), GeminiDialect(), OllamaDialect()
_ROUTES: dict[tuple[str, str], tuple[Dialect, str]] = {
    ("POST", "/v1/chat/completions"): (OPENAI, "chat"),
    ("POST", "/v1/embeddings"): (OPENAI, "embed"),
    ("GET", "/v1/models"): (OPENAI, "models"),
    ("POST", "/v1/messages"): (ANTHROPIC, "chat"),
    ("GET", "/v1beta/models"): (GEMINI, "models"),
    ("POST", "/api/chat"): (OLLAMA, "chat"),
    ("POST", "/api/embed"): (OLLAMA, "embed"),
    ("GET", "/api/tags"): (OLLAMA, "tags"),
    ("GET", "/api/version"): (OLLAMA, "version"),
}
_AZURE_OPS = {"chat/completions": "chat", "embeddings": "embed"}
_KEEPALIVE = b": keep-alive\n\n"
_NOT_FOUND = orjson.dumps({"error": {"message": "Unknown request URL.", "type": "invalid_request_error",
                                     "param": None, "code": "unknown_url"}})


def _route(method: str, path: str, headers: dict[str, str]) -> tuple[Dialect, str, str] | None:
    """(dialect, op, model-or-deployment from the path) for a request."""
    hit = _ROUTES.get((method, path))
    if hit is not None:
        dialect, op = hit
        if dialect is OPENAI and op == "models" and "anthropic-version" in headers:
            dialect = ANTHROPIC
        return dialect, op, ""
    if method != "POST":
        return None
    if path.startswith("/openai/deployments/"):
        deployment, _, rest = path[len("/openai/deployments/"):].partition("/")
        op = _AZURE_OPS.get(rest)
        return (AZURE, op, deployment) if op else None
    if path.startswith(("/v1beta/models/", "/v1/models/")):
        parsed = parse_path(path)
        return (GEMINI, parsed[1], parsed[0]) if parsed else None
    return None


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    while message.get("more_body"):
        message = await receive()
        body += message.get("body", b"")
    return body


async def _respond(send: Send, status: int, body: bytes, content_type: bytes = JSON,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    out = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": out + (headers or [])})
    await send({"type": "http.response.body", "body": body})


class FakeApp:
    """ASGI app serving every dialect; `faults` is read live on every request."""

    def __init__(self, api_key: str | None = None, faults: Faults | None = None, max_requests: int = 1000) -> None:
        self.api_key = api_key
        self.faults = faults if faults is not None else Faults()
        self.initial_faults = Faults(**self.faults.to_dict())
        self.requests: deque[dict[str, Any]] = deque(maxlen=max_requests)
        self.failures = FailCounter()
        self._seq = itertools.count(1)

    def reset(self) -> None:
        """Forget recorded requests; restore the start-up knobs (in place) and failure counts."""
        self.requests.clear()
        self.reset_faults()

    def reset_faults(self) -> None:
        self.failures.clear()
        for f in fields(Faults):
            setattr(self.faults, f.name, getattr(self.initial_faults, f.name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        raw = await _read_body(receive)
        method, path = scope["method"], scope["path"]
        if path.startswith("/_fake/"):
            await self._control(method, path, raw, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        route = _route(method, path, headers)
        if route is None:
            await _respond(send, 404, _NOT_FOUND)
            return
        dialect, op, path_model = route
        qs = scope["query_string"]
        query = dict(parse_qsl(qs.decode("latin-1"))) if qs else {}
        call = Call(method, path, query, headers, None, op, path_model, next(self._seq))
        record: dict[str, Any] = {"method": method, "path": path, "query": query, "headers": headers,
                                  "body": None, "dialect": dialect.name, "model": None, "status": None,
                                  "usage": None, "completed": False}
        self.requests.append(record)
        try:
            call.body = record["body"] = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            await self._finish(send, record, dialect.error("invalid", 400, "Could not parse the JSON body.", call))
            return
        await self._serve(dialect, call, record, receive, send)

    async def _serve(self, dialect: Dialect, call: Call, record: dict[str, Any], receive: Receive, send: Send) -> None:
        key = dialect.credential(call)
        if not (key == self.api_key if self.api_key is not None else key or dialect.auth_optional):
            await self._finish(send, record, dialect.auth_error(call, key is not None))
            return
        raw_model = record["model"] = dialect.model(call)
        model, spec = split_model(raw_model)
        try:
            faults = with_profile(self.faults, spec) if spec else self.faults
        except ValueError as exc:
            await self._finish(send, record, dialect.error("invalid", 400, str(exc), call))
            return
        if faults.delay_ms:
            await asyncio.sleep(faults.delay_ms / 1000)
        if self.failures.should_fail(faults, raw_model if spec else ""):
            answer = dialect.error(faults.error_kind(), faults.error_status(), None, call,
                                   retry_after=faults.retry_after)
            if faults.retry_after is not None:
                answer.headers.append((b"retry-after", f"{faults.retry_after:g}".encode()))
            await self._finish(send, record, answer)
            return
        try:
            result = dialect.handle(call, model, faults)
        except BadRequest as exc:
            result = dialect.error(exc.kind, exc.status, exc.message, call, param=exc.param)
        if isinstance(result, Stream):
            await self._stream(result, faults, record, receive, send)
        else:
            await self._finish(send, record, result)

    @staticmethod
    async def _finish(send: Send, record: dict[str, Any], answer: Answer) -> None:
        record["status"], record["usage"], record["completed"] = answer.status, answer.usage, True
        await _respond(send, answer.status, answer.body, answer.content_type, answer.headers)

    async def _stream(self, stream: Stream, faults: Faults, record: dict[str, Any],
                      receive: Receive, send: Send) -> None:
        record["status"] = 200
        headers = [(b"content-type", stream.content_type), (b"cache-control", b"no-cache"), *stream.headers]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        crlf = faults.crlf and stream.sse and not stream.crlf_native
        keepalive = _KEEPALIVE if faults.keepalive and stream.sse else b""
        delay = faults.chunk_delay_ms / 1000

        async def emit(frame: bytes) -> None:
            frame = keepalive + frame
            await send({"type": "http.response.body", "body": frame.replace(b"\n", b"\r\n") if crlf else frame,
                        "more_body": True})

        for i, frame in enumerate(stream.frames):
            if i == faults.cut_after:
                if faults.cut_abort:
                    return  # returning mid-body makes the server drop the connection
                break
            if i == faults.stall_after and await _stall(receive, faults.stall_s):
                return  # the client gave up during the stall
            if delay and i:
                await asyncio.sleep(delay)
            if i == faults.error_at:
                await emit(stream.error_frame)
                break
            if i == faults.malformed_at:
                await emit(stream.malformed)
            await emit(frame)
        else:
            record["usage"], record["completed"] = stream.usage, True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _control(self, method: str, path: str, raw: bytes, send: Send) -> None:
        if path == "/_fake/requests" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.requests.clear()
            await _respond(send, 200, orjson.dumps(list(self.requests)))
            return
        if path != "/_fake/faults" or method not in ("GET", "POST", "DELETE"):
            await _respond(send, 404, _NOT_FOUND)
            return
        if method == "DELETE":
            self.reset_faults()
        elif method == "POST":
            try:
                self.faults.update(orjson.loads(raw or b"{}"))
            except (ValueError, TypeError) as exc:
                await _respond(send, 400, orjson.dumps({"error": str(exc)}))
                return
            self.failures.clear()
        await _respond(send, 200, orjson.dumps(self.faults.to_dict()))


async def _stall(receive: Receive, seconds: float) -> bool:
    """Hold the socket open and silent; True if the client went away meanwhile."""
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
    try:
        await asyncio.wait_for(disconnected(), seconds)
    except asyncio.TimeoutError:
        return False
    return True
