"""The ASGI layer around the management API (and, for the access log, the data plane):

- body size: a declared `content-length` over `max_body_bytes` gets 413 before any handler
  runs; a chunked body is counted as it is read and stopped at the same cap;
- read-only mode: management writes get 403 while it is on, except the two switches a
  person needs to get out of trouble (`/api/read-only`, `/api/kill-switches`);
- audit: every management write (POST, PUT, PATCH, DELETE) is chained into the audit log
  with its actor, role, address, route, target and outcome before its answer completes;
- access log: one line per request (method, path, status, key or actor, client address,
  latency) on the `aistrata.access` logger; never headers, bodies or query strings.

The caller is known once `management.guard` (or the data plane) has authenticated it and put
the principal in the ASGI scope under `PRINCIPAL_SCOPE_KEY`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import orjson
from starlette.routing import BaseRoute, Match

from ..core import ErrorKind, GatewayError
from ..security.audit import AuditEvent
from .dialects.openai import render_error
from ..gateway.roles import WRITES

access_log = logging.getLogger("aistrata.access")
PRINCIPAL_SCOPE_KEY = "aistrata.principal"
OVERRIDE_PATHS = ("/api/read-only", "/api/kill-switches")
Scope = dict[str, Any]
Message = dict[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class Perimeter:
    def __init__(self, app: ASGI, security: Any, routes: list[BaseRoute]) -> None:
        self.app = app
        self.security = security
        self.routes = routes
        self.limit: int = security.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]
        write = scope["method"] in WRITES
        refusal = self._refusal(scope, write)
        body: list[bytes] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif write and message["type"] == "http.response.body":
                if len(body) < 4:
                    body.append(message.get("body", b""))
                if not message.get("more_body"):  # the answer completes only once it is audited
                    await self._audit(scope, status[0], b"".join(body))
            await send(message)

        try:
            if refusal is not None:
                await _send_error(sending, refusal)
            else:
                await self.app(scope, _capped(receive, self.limit), sending)
        finally:
            if self.security.settings.access_log:
                _log_access(scope, status[0], started)

    async def logged(self, handler: ASGI, scope: Scope, receive: Any, send: Any) -> None:
        """A data-plane request with only its access-log line (the data plane caps its own
        bodies, and is neither audited nor stopped by read-only mode)."""
        started = time.perf_counter()
        status = [0]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await handler(scope, receive, sending)
        finally:
            _log_access(scope, status[0], started)

    def _refusal(self, scope: Scope, write: bool) -> GatewayError | None:
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            return GatewayError(ErrorKind.request_too_large, f"request body is larger than {self.limit} bytes")
        if write and self.security.overrides.read_only and not scope["path"].startswith(OVERRIDE_PATHS):
            return GatewayError(ErrorKind.permission, "the gateway is in read-only mode: management changes are "
                                                      "refused until an admin turns it off (POST /api/read-only)")
        return None

    async def _audit(self, scope: Scope, status: int, body: bytes) -> None:
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        route = self._template(scope)
        target = _target(body) or ",".join(str(v) for v in (scope.get("path_params") or {}).values()) or None
        event = AuditEvent(
            actor=principal.actor if principal else "unauthenticated", role=principal.role if principal else None,
            action=f"{scope['method']} {route}", target=target, from_ip=_client(scope),
            result="ok" if status < 400 else "refused" if status in (401, 403) else "error",
            details={"status": status, "path": scope["path"]},
        )
        try:
            await asyncio.to_thread(self.security.audit.append, event)
        except Exception:  # the action is done; losing its row is logged loudly, not hidden
            logging.getLogger("aistrata.audit").exception("could not write the audit row for %s", event.action)

    def _template(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", scope["path"]))
        return str(scope["path"])


def _capped(receive: Any, limit: int) -> Any:
    seen = [0]

    async def receiving() -> Message:
        message: Message = await receive()
        seen[0] += len(message.get("body", b""))
        if seen[0] > limit:  # handlers turn a GatewayError into a clean 413
            raise GatewayError(ErrorKind.request_too_large, f"request body is larger than {limit} bytes")
        return message

    return receiving


async def _send_error(send: Any, err: GatewayError) -> None:
    status, payload = render_error(err)
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _target(body: bytes) -> str | None:
    """The id of what a write created or changed, from its JSON answer (never anything else:
    a key's answer also holds the raw key)."""
    try:
        data = orjson.loads(body) if body[:1] == b"{" else None
    except orjson.JSONDecodeError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if isinstance(value, (str, int)) else None


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _log_access(scope: Scope, status: int, started: float) -> None:
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    access_log.info("%s %s %d key=%s ip=%s %.1fms", scope["method"], scope["path"], status,
                    principal.actor if principal else "-", _client(scope) or "-",
                    (time.perf_counter() - started) * 1000)
