"""The upstream HTTP client: one pooled aiohttp session per process, injectable everywhere,
plus the SSE/NDJSON readers the dialects share.

Errors from the network become `GatewayError`s here so dialects only map HTTP statuses.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Mapping

import aiohttp
import orjson

from ..core import ErrorKind, GatewayError


class HttpClient:
    """A thin wrapper over a pooled `aiohttp.ClientSession` (created on first use, inside the
    running loop). Pass `session=` to inject another one (tests, custom transports)."""

    def __init__(self, session: aiohttp.ClientSession | None = None, *, limit: int = 1000) -> None:
        self._session = session
        self._limit = limit

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
                skip_auto_headers=("User-Agent",), auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        stream: bool = False,
        provider: str | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request; the caller reads (and releases) the response. For streams, `timeout`
        bounds the wait for each chunk rather than the whole answer."""
        data = orjson.dumps(body) if body is not None else None
        hdrs = {"content-type": "application/json"} if data is not None else {}
        if headers:
            hdrs.update(headers)
        client_timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=timeout)
            if stream
            else aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        )
        try:
            return await self.session.request(
                method, url, data=data, headers=hdrs, params=params, timeout=client_timeout
            )
        except asyncio.TimeoutError as exc:
            raise GatewayError(ErrorKind.timeout, "upstream timed out before answering", provider=provider) from exc
        except aiohttp.ClientError as exc:
            raise GatewayError(
                ErrorKind.upstream_unavailable, f"upstream unreachable: {type(exc).__name__}", provider=provider
            ) from exc


async def read_json(resp: aiohttp.ClientResponse, provider: str | None = None) -> Any:
    """The whole body as JSON; a timeout or malformed body becomes a GatewayError."""
    try:
        raw = await resp.read()
    except asyncio.TimeoutError as exc:
        raise GatewayError(ErrorKind.timeout, "upstream timed out mid-answer", provider=provider) from exc
    except aiohttp.ClientError as exc:
        raise GatewayError(ErrorKind.upstream_unavailable, "upstream connection lost", provider=provider) from exc
    finally:
        resp.release()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            ErrorKind.upstream_unavailable, "upstream sent a malformed JSON body", provider=provider
        ) from exc


async def iter_lines(resp: aiohttp.ClientResponse, provider: str | None = None) -> AsyncIterator[bytes]:
    """Lines of a streamed body without their line endings (LF or CRLF). Transport failures
    become GatewayErrors so a cut or stalled stream is never mistaken for its end."""
    content = resp.content
    try:
        while True:
            line = await content.readline()
            if not line:
                return
            yield line.rstrip(b"\r\n")
    except asyncio.TimeoutError as exc:
        raise GatewayError(ErrorKind.timeout, "upstream stream stalled", provider=provider) from exc
    except aiohttp.ClientPayloadError as exc:
        raise GatewayError(ErrorKind.upstream_unavailable, "upstream stream was cut", provider=provider) from exc
    except aiohttp.ClientError as exc:
        raise GatewayError(ErrorKind.upstream_unavailable, "upstream connection lost", provider=provider) from exc
    finally:
        resp.release()


async def iter_sse(resp: aiohttp.ClientResponse, provider: str | None = None) -> AsyncIterator[tuple[str | None, bytes]]:
    """Server-sent events as (event name or None, data). Comment lines (keep-alives) are
    skipped; multi-line data is joined with newlines as the SSE spec says."""
    event: str | None = None
    data: list[bytes] = []
    async for line in iter_lines(resp, provider):
        if not line:
            if data:
                yield event, b"\n".join(data)
            event, data = None, []
        elif line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
        # ':' comments, 'id:' and 'retry:' fields carry nothing we use.
    if data:
        yield event, b"\n".join(data)


def parse_event(data: bytes, provider: str | None = None) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            ErrorKind.upstream_unavailable, "upstream sent a malformed stream event", provider=provider
        ) from exc


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`retry-after` (seconds) or `retry-after-ms`, as providers send them."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    return None
