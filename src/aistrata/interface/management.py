"""Management API: health, readiness, the model list, virtual keys and the request log.

Errors use the OpenAI error shape. Every endpoint goes through `guard`, which authenticates
the caller and enforces its role (see `aistrata.gateway.roles`); handlers narrow what they
read to the caller's `reach` (a team, a key or a user; everything for an admin).
"""

from __future__ import annotations

import asyncio
import ipaddress
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
from .perimeter import PRINCIPAL_SCOPE_KEY
from ..gateway.roles import TEAM_GRANTABLE, Access, authorise, parse_role
from ..providers.registry import Registry
from ..store.db import Database
from ..store.keys import KeyRecord, KeyStore
from ..store.paging import decode_cursor
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
        "revoked_at": k.revoked_at, "last_used_at": k.last_used_at, "active": k.is_active(), "role": k.role,
    }


def _healthy(health: dict[str, Any]) -> bool:
    """A component's `health()`: the shared state says `ok`, the cache stores `status`."""
    return bool(health.get("ok", health.get("status") == "ok"))


def error_response(err: GatewayError) -> JSONResponse:
    status, body = render_error(err)
    return JSONResponse(body, status_code=status)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def guard(
    authn: Authenticator, handler: Callable[[Request, Principal], Awaitable[Response]], admin: bool = False,
    access: Access | None = None,
) -> Handler:
    """An endpoint that authenticates the caller, checks its role against `access` (default:
    `Access.admin` when `admin`, else `Access.scoped`), then runs `handler`; a `GatewayError`
    becomes an error response."""
    need = access or (Access.admin if admin else Access.scoped)

    async def endpoint(request: Request) -> Response:
        try:
            principal = await authn.authenticate(token_from_headers(dict(request.headers)), client_ip(request))
            request.scope[PRINCIPAL_SCOPE_KEY] = principal
            authorise(principal.role, need, request.method)
            return await handler(request, principal)
        except GatewayError as err:
            return error_response(err)

    endpoint.access = need  # type: ignore[attr-defined]  # read by the OpenAPI document
    return endpoint


class Management:
    def __init__(
        self, authn: Authenticator, keys: KeyStore, requests: RequestLog, db: Database, router: Router,
        registry: Registry, http: HttpClient, state: Any = None, cache: Any = None,
    ) -> None:
        self.authn = authn
        self.state = state  # shared state (limits, budgets, breakers): its health goes in /ready
        self.cache = cache
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
            Route("/api/keys", guard(self.authn, self.create_key, access=Access.team), methods=["POST"]),
            Route("/api/keys", guard(self.authn, self.list_keys, access=Access.team), methods=["GET"]),
            Route("/api/keys/{id}", guard(self.authn, self.get_key, access=Access.team), methods=["GET"]),
            Route("/api/keys/{id}", guard(self.authn, self.revoke_key, access=Access.team), methods=["DELETE"]),
            Route("/api/requests", guard(self.authn, self.list_requests), methods=["GET"]),
            Route("/api/requests/{id}", guard(self.authn, self.get_request), methods=["GET"]),
        ]

    # ---- health ----------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        try:
            await asyncio.to_thread(self.db.fetchone, "SELECT 1 AS ok")
        except Exception as exc:  # noqa: BLE001 - any database failure means not ready
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        body: dict[str, Any] = {"status": "ready", "database": "ok"}
        # Redis down is not "not ready": the gateway keeps serving on local state, and says so.
        for name, part in (("state", self.state), ("cache", self.cache)):
            if part is not None:
                body[name] = part.health()
                body["degraded"] = body.get("degraded", False) or not _healthy(body[name])
        return JSONResponse(body)

    # ---- models ----------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        try:
            await self.authn.authenticate(token_from_headers(dict(request.headers)), client_ip(request))
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
        _check_cidrs(metadata.get("allowed_ips"))
        role = parse_role(body.get("role", "member"))
        team_id = body.get("team_id")
        if not principal.is_admin:  # a team admin issues keys of its own team, below admin
            if team_id not in (None, principal.team_id) or role not in TEAM_GRANTABLE:
                raise GatewayError(ErrorKind.permission, "a team admin issues keys of its own team only, never admin")
            team_id = principal.team_id
        raw, record = await asyncio.to_thread(
            self.keys.create, alias=body.get("alias"), user_id=body.get("user_id"), team_id=team_id,
            models=models, expires_at=expires_at, metadata=metadata, role=role,
        )
        return JSONResponse({"key": raw, **key_json(record)}, status_code=201)

    async def list_keys(self, request: Request, principal: Principal) -> Response:
        q = request.query_params
        if not principal.is_admin and principal.team_id is None:
            return JSONResponse({"data": []})  # a team admin without a team manages no keys
        team = q.get("team_id") if principal.is_admin else principal.team_id
        rows = await asyncio.to_thread(self.keys.list, user_id=q.get("user_id"), team_id=team)
        return JSONResponse({"data": [key_json(k) for k in rows]})

    async def get_key(self, request: Request, principal: Principal) -> Response:
        return JSONResponse(key_json(await self._key(request, principal)))

    async def revoke_key(self, request: Request, principal: Principal) -> Response:
        record = await self._key(request, principal)
        await asyncio.to_thread(self.keys.revoke, record.id)
        self.authn.forget(record.key_hash)  # effective at once on this node
        return JSONResponse({"id": record.id, "revoked": True})

    async def _key(self, request: Request, principal: Principal) -> KeyRecord:
        """The key named in the path, if the caller's reach includes it (else 404, so other
        teams' key ids are not even confirmed)."""
        record = await asyncio.to_thread(self.keys.get, request.path_params["id"])
        if record is None or not principal.reach.allows({"team_id": record.team_id}):
            raise GatewayError(ErrorKind.not_found, "no such key")
        return record

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
            cursor = q.get("cursor") or None
            if cursor is not None:
                decode_cursor(cursor)  # a forged cursor is the caller's error (400), not ours
        except ValueError as exc:
            raise bad_request(f"bad filter value: {exc}") from exc
        principal.reach.narrow(filters)
        rows, next_cursor = await asyncio.to_thread(self.requests.query, filters, limit, cursor)
        return JSONResponse({"data": rows, "next_cursor": next_cursor})

    async def get_request(self, request: Request, principal: Principal) -> Response:
        row = await asyncio.to_thread(self.requests.get, request.path_params["id"])
        if row is None or not principal.reach.allows(row):
            raise GatewayError(ErrorKind.not_found, "no such request")
        return JSONResponse(row)


def _check_cidrs(value: Any) -> None:
    if value is None:
        return
    try:
        if not isinstance(value, list):
            raise ValueError
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
    except (TypeError, ValueError) as exc:
        raise bad_request("'metadata.allowed_ips' must be a list of CIDRs like 10.0.0.0/8", "metadata") from exc


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
