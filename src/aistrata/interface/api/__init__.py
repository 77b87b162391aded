"""Management API sections, one module each; `routes()` gathers them."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from . import alerts, cache, evals, limits, metrics, routing, stats


def routes(services: Any) -> list[Route]:
    return [*limits.routes(services), *routing.routes(services), *cache.routes(services),
            *metrics.routes(services), *stats.routes(services), *evals.routes(services), *alerts.routes(services)]
