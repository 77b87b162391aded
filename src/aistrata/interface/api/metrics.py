"""`GET /metrics`: Prometheus text. Open by default, as scrapers expect; with
`observe: {metrics_auth: true}` it needs the master key."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...gateway.auth import Principal
from ...observe.metrics import CONTENT_TYPE
from ..management import guard


def routes(services: Any) -> list[Route]:
    metrics = services.metrics

    async def scrape(request: Request, principal: Principal | None = None) -> Response:
        await metrics.refresh_breakers(services.gateway.dispatcher, services.router.groups)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    protected = bool((services.settings.raw.get("observe") or {}).get("metrics_auth"))
    return [Route("/metrics", guard(services.authn, scrape, admin=True) if protected else scrape, methods=["GET"])]
