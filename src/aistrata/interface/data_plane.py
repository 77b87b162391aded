"""The OpenAI- and Anthropic-compatible data plane, as raw ASGI endpoints.

Each request: authenticate, parse the client's dialect once, run the gateway, render in the
same dialect. Streams send nothing until the provider's first content event arrives, so a
failure before that is still an ordinary error response (and, later, a failover); after it,
a failure ends the stream with an explicit error event.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from array import array
from types import ModuleType
from typing import Any

import orjson

from ..core import (
    EmbeddingRequest,
    ErrorKind,
    GatewayError,
    StreamStart,
    bad_request,
    new_id,
)
from ..gateway.auth import ANONYMOUS, Authenticator, Principal, token_from_headers
from ..gateway.context import RequestContext
from ..gateway.pipeline import Gateway, internal_error
from .perimeter import PRINCIPAL_SCOPE_KEY
from .asgi import SSE_HEADERS, Receive, Scope, Send, header_map, parse_json, read_body, send_bytes, send_json
from .dialects import anthropic as anthropic_dialect
from .dialects import openai as openai_dialect

log = logging.getLogger("aistrata.gateway")
CLIENT_CLOSED = 499  # nginx's status for a client that went away; only ever recorded


def _headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    return [(b"x-aistrata-overhead-ms", f"{ctx.overhead_ms():.2f}".encode()),
            (b"x-aistrata-request-id", ctx.id.encode()), *ctx.headers]


def _trace(headers: dict[str, str], ctx: RequestContext) -> None:
    """Join the client's trace: W3C `traceparent`, or our own headers, or body metadata."""
    parent = headers.get("traceparent", "")
    parts = parent.split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
        ctx.trace_id, ctx.parent_span_id = parts[1], parts[2]
    meta = ctx.metadata
    ctx.trace_id = headers.get("x-aistrata-trace-id") or ctx.trace_id or _str(meta.get("trace_id"))
    ctx.parent_span_id = headers.get("x-aistrata-parent-span-id") or ctx.parent_span_id
    ctx.session_id = headers.get("x-aistrata-session-id") or _str(meta.get("session_id"))


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


def _options(headers: dict[str, str], options: dict[str, Any]) -> dict[str, Any]:
    """Gateway options from `x-aistrata-*` headers, over those from the body."""
    if "x-aistrata-cache" in headers:
        for flag in headers["x-aistrata-cache"].split(","):
            if flag.strip():
                options.setdefault("cache", {})[flag.strip().lower()] = True
    for header, key in (("x-aistrata-cache-ttl", "ttl"), ("x-aistrata-cache-namespace", "namespace")):
        if header in headers:
            options.setdefault("cache", {})[key] = headers[header]
    if "x-aistrata-routing-strategy" in headers:
        options["routing_strategy"] = headers["x-aistrata-routing-strategy"]
    return options


def _tags(headers: dict[str, str], metadata: dict[str, Any] | None) -> list[str]:
    tags = [t.strip() for t in headers.get("x-aistrata-tags", "").split(",") if t.strip()]
    raw = (metadata or {}).get("tags")
    if isinstance(raw, list):
        tags.extend(str(t) for t in raw)
    return tags


class DataPlane:
    def __init__(self, gateway: Gateway, authn: Authenticator, body_limit: int = 32 << 20) -> None:
        self.gateway = gateway
        self.authn = authn
        self.body_limit = body_limit

    # ---- endpoints (ASGI callables) -------------------------------------------------------

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._chat(scope, receive, send, openai_dialect, "openai", "chat")

    async def messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._chat(scope, receive, send, anthropic_dialect, "anthropic", "messages")

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = RequestContext(new_id("req_"), "openai", "embeddings", ANONYMOUS)
        try:
            headers = header_map(scope)
            ctx.principal = await self._authenticate(scope, headers)
            _trace(headers, ctx)
            req = parse_embedding(parse_json(await read_body(receive, self.body_limit)))
            resp = await self.gateway.embed(req, ctx)
            payload = {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": encode_vector(v, req.encoding_format)}
                    for i, v in enumerate(resp.vectors)
                ],
                "model": req.model,
                "usage": {"prompt_tokens": resp.usage.input_tokens, "total_tokens": resp.usage.input_tokens},
            }
            await send_json(send, 200, payload, _headers(ctx))
            self.gateway.finish(ctx, 200)
        except Exception as exc:  # noqa: BLE001 - every failure answers in the client's dialect
            await self._fail(send, openai_dialect, ctx, exc)

    async def _authenticate(self, scope: Scope, headers: dict[str, str]) -> Principal:
        client = scope.get("client")
        principal = await self.authn.authenticate(token_from_headers(headers), client[0] if client else None)
        scope[PRINCIPAL_SCOPE_KEY] = principal  # for the access log
        return principal

    # ---- chat ------------------------------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send, codec: ModuleType, ingress: str, endpoint: str) -> None:
        ctx = RequestContext(new_id("req_"), ingress, endpoint, ANONYMOUS)
        try:
            headers = header_map(scope)
            ctx.principal = await self._authenticate(scope, headers)
            req = codec.parse_chat(parse_json(await read_body(receive, self.body_limit)))
            ctx.requested_model = req.model
            ctx.metadata = req.metadata or {}
            ctx.tags = _tags(headers, req.metadata)
            _trace(headers, ctx)
            _options(headers, req.options)
            if req.stream:
                await self._stream(receive, send, codec, req, ctx)
                return
            resp = await self.gateway.chat(req, ctx)
            payload = orjson.dumps(codec.render_chat(resp, req.model))
            await send_bytes(send, 200, payload, _headers(ctx))
            self.gateway.finish(ctx, 200)
        except Exception as exc:  # noqa: BLE001
            await self._fail(send, codec, ctx, exc)

    async def _stream(self, receive: Receive, send: Send, codec: ModuleType, req: Any, ctx: RequestContext) -> None:
        events = self.gateway.stream(req, ctx)
        encoder = codec.StreamEncoder(req.model, req.include_usage)
        try:
            opening = await self._opening(events, encoder, req, ctx)
        except BaseException:
            await events.aclose()
            raise
        headers = [*SSE_HEADERS, *_headers(ctx)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": opening, "more_body": True})
        gone = asyncio.ensure_future(receive())  # completes when the client disconnects
        try:
            async for event in events:
                chunk = encoder.encode(event)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if gone.done():
                    ctx.error = GatewayError(ErrorKind.bad_request, "client closed the stream")
                    self.gateway.finish(ctx, CLIENT_CLOSED, ctx.error)
                    return
            await send({"type": "http.response.body", "body": encoder.end(), "more_body": False})
            self.gateway.finish(ctx, 200)
        except Exception as exc:  # noqa: BLE001 - after the first byte, errors go in-band
            err = exc if isinstance(exc, GatewayError) else internal_error(exc)
            await send({"type": "http.response.body", "body": encoder.error(err), "more_body": False})
            self.gateway.finish(ctx, 200, err)
        finally:
            gone.cancel()
            await events.aclose()

    @staticmethod
    async def _opening(events: Any, encoder: Any, req: Any, ctx: RequestContext) -> bytes:
        """Bytes up to the first content event. Nothing reaches the client before it, so a
        failure until then is still an ordinary error response."""
        start: StreamStart | None = None
        async for event in events:
            if type(event) is StreamStart:
                start = event
                continue
            return encoder.start(start or StreamStart(ctx.id, req.model, int(time.time()))) + encoder.encode(event)
        return encoder.start(start or StreamStart(ctx.id, req.model, int(time.time())))

    async def _fail(self, send: Send, codec: ModuleType, ctx: RequestContext, exc: BaseException) -> None:
        if isinstance(exc, ConnectionResetError):
            self.gateway.finish(ctx, CLIENT_CLOSED, GatewayError(ErrorKind.bad_request, "client went away"))
            return
        err = exc if isinstance(exc, GatewayError) else internal_error(exc)
        if not isinstance(exc, GatewayError):
            log.exception("request %s failed", ctx.id)
        status, body = codec.render_error(err)
        headers = [(b"x-aistrata-request-id", ctx.id.encode()), *ctx.headers]
        if err.retry_after is not None:
            headers.append((b"retry-after", str(max(1, round(err.retry_after))).encode()))
        await send_json(send, status, body, headers)
        self.gateway.finish(ctx, status, err)


def parse_embedding(body: Any) -> EmbeddingRequest:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required", "model")
    raw = body.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(s, str) for s in raw):
        inputs = raw
    else:
        raise bad_request("'input' must be a string or a non-empty list of strings", "input")
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or dims < 1):
        raise bad_request("'dimensions' must be a positive integer", "dimensions")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise bad_request("'encoding_format' must be float or base64", "encoding_format")
    known = {"model", "input", "dimensions", "encoding_format", "user"}
    return EmbeddingRequest(
        model=model, inputs=inputs, dimensions=dims, user=body.get("user"), encoding_format=encoding,
        extra={k: v for k, v in body.items() if k not in known},
    )


def encode_vector(vector: list[float], encoding: str) -> Any:
    """`base64` is little-endian float32, as OpenAI sends it (its SDK asks for it by default)."""
    if encoding == "base64":
        return base64.b64encode(array("f", vector).tobytes()).decode()
    return vector
