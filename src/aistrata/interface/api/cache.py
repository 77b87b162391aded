"""Management API: cache."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route


def routes(services: Any) -> list[Route]:
    return []
