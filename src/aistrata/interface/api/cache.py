"""Management API: the response cache (admin only).

    GET    /api/cache                  -> stats: backend, entries, hits, misses, saved_usd, health
    DELETE /api/cache[?namespace=x]    -> flush everything, or one per-request namespace

Hits, misses and saved_usd count this node since start; `entries` is the store's (shared
across replicas with Redis). With the cache off, GET answers `{"enabled": false}`.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...core import ErrorKind, GatewayError
from ...gateway.auth import Authenticator, token_from_headers
from ...gateway.cache import ExactCache
from ..management import error_response

Handler = Callable[[Request], Awaitable[Response]]


def routes(services: Any) -> list[Route]:
    authn: Authenticator = services.authn
    cache = services.gateway.cache
    cache = cache if isinstance(cache, ExactCache) else None

    def admin(handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                principal = await authn.authenticate(token_from_headers(dict(request.headers)))
                if not principal.is_admin:
                    raise GatewayError(ErrorKind.permission, "this endpoint needs the master key")
                return await handler(request)
            except GatewayError as err:
                return error_response(err)

        return endpoint

    async def stats(request: Request) -> Response:
        if cache is None:
            return JSONResponse({"enabled": False})
        return JSONResponse({"enabled": True, **await cache.describe()})

    async def flush(request: Request) -> Response:
        if cache is None:
            raise GatewayError(ErrorKind.not_found, "the response cache is not enabled")
        namespace = request.query_params.get("namespace")
        removed = await cache.flush(namespace)
        return JSONResponse({"flushed": removed, "namespace": namespace})

    return [
        Route("/api/cache", admin(stats), methods=["GET"]),
        Route("/api/cache", admin(flush), methods=["DELETE"]),
    ]
