"""Management API: health, readiness, the model list, virtual keys and the request log.

Errors use the OpenAI error shape. Admin endpoints need the master key (or, with no master
key set, a loopback caller); a virtual key sees only its own request records.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Awaitable, Callable

import orjson

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core import ErrorKind, GatewayError, bad_request, now_ms
from ..gateway.auth import Authenticator, Principal, token_from_headers
from ..gateway.router import Router
from ..providers.http import HttpClient
from ..providers.registry import Registry
from ..store.db import Database
from ..store.keys import KeyRecord, KeyStore
from ..store.request_log import RequestFilters, RequestLog
from .dialects.openai import render_error

log = logging.getLogger("aistrata.management")
Handler = Callable[[Request], Awaitable[Response]]

DURATION = re.compile(r"^(\d+)([smhdw])$")
UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(text: str) -> int:
    match = DURATION.match(text.strip())
    if not match:
        raise bad_request(f"'{text}' is not a duration like 30m, 12h or 90d", "expires_in")
    return int(match.group(1)) * UNIT_MS[match.group(2)]


def key_json(k: KeyRecord) -> dict[str, Any]:
    return {
        "id": k.id, "key_prefix": k.key_prefix, "alias": k.alias, "user_id": k.user_id, "team_id": k.team_id,
        "models": k.models, "metadata": k.metadata, "created_at": k.created_at, "expires_at": k.expires_at,
        "revoked_at": k.revoked_at, "last_used_at": k.last_used_at, "active": k.is_active(),
    }


def error_response(err: GatewayError) -> JSONResponse:
    status, body = render_error(err)
    return JSONResponse(body, status_code=status)


def guard(
    authn: Authenticator, handler: Callable[[Request, Principal], Awaitable[Response]], admin: bool = False,
) -> Handler:
    """An endpoint that authenticates the caller (the master key when `admin`), then runs
    `handler`; a `GatewayError` becomes an error response."""

    async def endpoint(request: Request) -> Response:
        try:
            principal = await authn.authenticate(token_from_headers(dict(request.headers)))
            if admin and not principal.is_admin:
                raise GatewayError(ErrorKind.permission, "this endpoint needs the master key")
            return await handler(request, principal)
        except GatewayError as err:
            return error_response(err)

    return endpoint


class Management:
    def __init__(
        self, authn: Authenticator, keys: KeyStore, requests: RequestLog, db: Database, router: Router,
        registry: Registry, http: HttpClient,
    ) -> None:
        self.authn = authn
        self.keys = keys
        self.requests = requests
        self.db = db
        self.router = router
        self.registry = registry
        self.http = http
        self._listed: tuple[float, list[dict[str, Any]]] = (0.0, [])

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/models", self.models, methods=["GET"]),
            Route("/api/keys", self._guard(self.create_key, admin=True), methods=["POST"]),
            Route("/api/keys", self._guard(self.list_keys, admin=True), methods=["GET"]),
            Route("/api/keys/{id}", self._guard(self.get_key, admin=True), methods=["GET"]),
            Route("/api/keys/{id}", self._guard(self.revoke_key, admin=True), methods=["DELETE"]),
            Route("/api/requests", self._guard(self.list_requests), methods=["GET"]),
            Route("/api/requests/{id}", self._guard(self.get_request), methods=["GET"]),
        ]

    def _guard(self, handler: Callable[[Request, Principal], Awaitable[Response]], admin: bool = False) -> Handler:
        return guard(self.authn, handler, admin)

    # ---- health ----------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        try:
            await asyncio.to_thread(self.db.fetchone, "SELECT 1 AS ok")
        except Exception as exc:  # noqa: BLE001 - any database failure means not ready
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ready", "database": "ok"})

    # ---- models ----------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        try:
            await self.authn.authenticate(token_from_headers(dict(request.headers)))
        except GatewayError as err:
            return error_response(err)
        names = {name: "aistrata" for name in self.router.groups}
        names.update({alias: "aistrata" for alias in self.router.settings.aliases})
        data = [{"id": n, "object": "model", "created": 0, "owned_by": owner} for n, owner in names.items()]
        data.extend(await self._discovered())
        return JSONResponse({"object": "list", "data": data})

    async def _discovered(self) -> list[dict[str, Any]]:
        """Models of providers found in the environment, asked for at most once a minute."""
        at, cached = self._listed
        if time.monotonic() - at < 60:
            return cached
        vendors = self.router.discoverable_vendors()
        listed = await asyncio.gather(*(self._list_vendor(v) for v in vendors))
        found = [
            {"id": f"{vendor}/{i}", "object": "model", "created": 0, "owned_by": vendor}
            for vendor, ids in zip(vendors, listed) for i in ids
        ]
        self._listed = (time.monotonic(), found)
        return found

    async def _list_vendor(self, vendor: str) -> list[str]:
        """A provider's models, or none when it is down (a health check as much as a listing)."""
        try:
            dep = self.router.resolve(f"{vendor}/_")[0]
            return await asyncio.wait_for(self.registry.dialect(dep.dialect).list_models(self.http, dep), timeout=3)
        except Exception as exc:  # noqa: BLE001 - a provider that is down is simply not listed
            log.info("provider %s not listed: %s", vendor, type(exc).__name__)
            return []

    # ---- keys ------------------------------------------------------------------------------

    async def create_key(self, request: Request, principal: Principal) -> Response:
        body = await _json_body(request)
        models = body.get("models") or []
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise bad_request("'models' must be a list of model names", "models")
        expires_at = body.get("expires_at")
        if body.get("expires_in"):
            expires_at = now_ms() + parse_duration_ms(str(body["expires_in"]))
        if expires_at is not None and not isinstance(expires_at, int):
            raise bad_request("'expires_at' must be epoch milliseconds", "expires_at")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise bad_request("'metadata' must be an object", "metadata")
        raw, record = await asyncio.to_thread(
            self.keys.create, alias=body.get("alias"), user_id=body.get("user_id"), team_id=body.get("team_id"),
            models=models, expires_at=expires_at, metadata=metadata,
        )
        return JSONResponse({"key": raw, **key_json(record)}, status_code=201)

    async def list_keys(self, request: Request, principal: Principal) -> Response:
        q = request.query_params
        rows = await asyncio.to_thread(self.keys.list, user_id=q.get("user_id"), team_id=q.get("team_id"))
        return JSONResponse({"data": [key_json(k) for k in rows]})

    async def get_key(self, request: Request, principal: Principal) -> Response:
        record = await asyncio.to_thread(self.keys.get, request.path_params["id"])
        if record is None:
            raise GatewayError(ErrorKind.not_found, "no such key")
        return JSONResponse(key_json(record))

    async def revoke_key(self, request: Request, principal: Principal) -> Response:
        record = await asyncio.to_thread(self.keys.get, request.path_params["id"])
        if record is None:
            raise GatewayError(ErrorKind.not_found, "no such key")
        await asyncio.to_thread(self.keys.revoke, record.id)
        self.authn.forget(record.key_hash)  # effective at once on this node
        return JSONResponse({"id": record.id, "revoked": True})

    # ---- request log -----------------------------------------------------------------------

    async def list_requests(self, request: Request, principal: Principal) -> Response:
        q = request.query_params
        try:
            filters = RequestFilters(
                since=_int(q.get("since")), until=_int(q.get("until")), key_id=q.get("key_id"),
                user_id=q.get("user_id"), team_id=q.get("team_id"), requested_model=q.get("model"),
                provider=q.get("provider"), deployment_id=q.get("deployment_id"), status=_int(q.get("status")),
                error_kind=q.get("error_kind"), tag=q.get("tag"),
                stream=None if q.get("stream") is None else q.get("stream") in ("1", "true"),
            )
            limit = _int(q.get("limit")) or 50
        except ValueError as exc:
            raise bad_request(f"bad filter value: {exc}") from exc
        if not principal.is_admin:
            filters.key_id = principal.key_id  # a key sees its own traffic only
        rows, cursor = await asyncio.to_thread(self.requests.query, filters, limit, q.get("cursor"))
        return JSONResponse({"data": rows, "next_cursor": cursor})

    async def get_request(self, request: Request, principal: Principal) -> Response:
        row = await asyncio.to_thread(self.requests.get, request.path_params["id"])
        if row is None or (not principal.is_admin and row.get("key_id") != principal.key_id):
            raise GatewayError(ErrorKind.not_found, "no such request")
        return JSONResponse(row)


def _int(value: str | None) -> int | None:
    return None if value in (None, "") else int(value)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise bad_request("the request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body
