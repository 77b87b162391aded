"""Small raw-ASGI helpers for the data plane, where a framework's per-request objects would
cost more than the work itself."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import orjson

from ..core import ErrorKind, GatewayError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = (b"content-type", b"application/json")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def header_map(scope: Scope) -> dict[str, str]:
    """Request headers as a dict; names are lower-case in ASGI. Invalid bytes are replaced
    rather than rejected so a bad header yields a clean 4xx later, not a crash."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client went away")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise GatewayError(ErrorKind.request_too_large, f"request body is larger than {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(body: bytes) -> Any:
    if not body:
        raise GatewayError(ErrorKind.bad_request, "the request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(ErrorKind.bad_request, f"the request body is not valid JSON: {exc.args[0] if exc.args else exc}") from exc


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None, content_type: tuple[bytes, bytes] = JSON
) -> None:
    h = [content_type]
    if headers:
        h.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": h})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send_bytes(send, status, orjson.dumps(payload), headers)
