"""Management API sections, one module each; `routes()` gathers them."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from . import cache, limits, routing


def routes(services: Any) -> list[Route]:
    return [*limits.routes(services), *routing.routes(services), *cache.routes(services)]
