"""Management API: the response cache (admin only).

    GET    /api/cache                  -> stats: backend, entries, hits, misses, saved_usd, health
    DELETE /api/cache[?namespace=x]    -> flush everything, or one per-request namespace

Hits, misses and saved_usd count this node since start; `entries` is the store's (shared
across replicas with Redis). With the cache off, GET answers `{"enabled": false}`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...core import ErrorKind, GatewayError
from ...gateway.auth import Principal
from ...gateway.cache import ExactCache
from ..management import guard


def routes(services: Any) -> list[Route]:
    cache = services.gateway.cache
    cache = cache if isinstance(cache, ExactCache) else None

    async def stats(request: Request, principal: Principal) -> Response:
        if cache is None:
            return JSONResponse({"enabled": False})
        return JSONResponse({"enabled": True, **await cache.describe()})

    async def flush(request: Request, principal: Principal) -> Response:
        if cache is None:
            raise GatewayError(ErrorKind.not_found, "the response cache is not enabled")
        namespace = request.query_params.get("namespace")
        removed = await cache.flush(namespace)
        return JSONResponse({"flushed": removed, "namespace": namespace})

    return [
        Route("/api/cache", guard(services.authn, stats, admin=True), methods=["GET"]),
        Route("/api/cache", guard(services.authn, flush, admin=True), methods=["DELETE"]),
    ]
