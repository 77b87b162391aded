"""Shared state for limits, budgets, circuit breakers and the cache: in process on one node,
in Redis across replicas (`AISTRATA_REDIS_URL`), falling back to in-process state while
Redis is unreachable. See `base.SharedState` for the primitives."""

from __future__ import annotations

from ..config import Settings
from .base import Admitted, BucketResult, ReserveResult, SharedState, SlotResult, WindowResult
from .fallback import FallbackState
from .memory import MemoryState
from .redis_backend import RedisState

__all__ = [
    "Admitted", "BucketResult", "FallbackState", "MemoryState", "RedisState", "ReserveResult", "SharedState",
    "SlotResult", "WindowResult", "build_state",
]


def build_state(settings: Settings) -> SharedState:
    """Redis (with the local fallback) when a Redis URL is set, else in-process state."""
    if settings.redis_url:
        return FallbackState(RedisState(settings.redis_url), MemoryState())
    return MemoryState()
