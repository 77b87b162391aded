"""Management API: routing (admin only).

    GET  /api/groups                   model groups: deployments, strategy, retries, fallbacks; routes
    GET  /api/deployments              per deployment: breaker state, in flight, latency EWMAs, adaptive limit
    POST /api/deployments/{id}/reset   close a deployment's breaker (ids hold '#': send it as %23)
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...core import ErrorKind, GatewayError
from ...gateway.auth import Principal
from ...gateway.routing import RoutingDispatcher
from ...gateway.routing.views import (
    default_view,
    deployment_view,
    deployments_view,
    find_deployment,
    groups_view,
    routes_view,
)
from ..management import guard


def routes(services: Any) -> list[Route]:
    dispatcher = services.gateway.dispatcher
    if not isinstance(dispatcher, RoutingDispatcher):
        return []

    def admin(handler: Any) -> Any:
        return guard(services.authn, handler, admin=True)

    async def groups(request: Request, principal: Principal) -> Response:
        return JSONResponse({"data": groups_view(dispatcher), "routes": routes_view(dispatcher),
                             "default": default_view(dispatcher)})

    async def deployments(request: Request, principal: Principal) -> Response:
        return JSONResponse({"data": await deployments_view(dispatcher)})

    async def reset(request: Request, principal: Principal) -> Response:
        dep = find_deployment(dispatcher, request.path_params["id"])
        if dep is None:
            raise GatewayError(ErrorKind.not_found, "no such deployment")
        await dispatcher.breakers.reset(dep.id)
        return JSONResponse(await deployment_view(dispatcher, dep))

    return [
        Route("/api/groups", admin(groups), methods=["GET"]),
        Route("/api/deployments", admin(deployments), methods=["GET"]),
        Route("/api/deployments/{id:path}/reset", admin(reset), methods=["POST"]),
    ]

