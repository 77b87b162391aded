"""Shared state for limits, budgets, circuit breakers and the cache: in process on one node,
in Redis across replicas."""

from __future__ import annotations

from typing import Any

from ..config import Settings


def build_state(settings: Settings) -> Any:
    """The state backend the settings ask for."""
    return None
