"""Routing strategies and resilience: which deployment serves a request, and what happens when
it fails."""

from __future__ import annotations

from typing import Any

from ...providers.http import HttpClient
from ...providers.registry import Registry
from ..config import Settings
from ..dispatch import Dispatcher
from ..router import Router


def build_dispatcher(settings: Settings, router: Router, registry: Registry, http: HttpClient, state: Any) -> Dispatcher:
    return Dispatcher(router, registry, http)
