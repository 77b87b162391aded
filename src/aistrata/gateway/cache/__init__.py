"""The exact-match response cache: whole chat answers, keyed on the normalised request and
the caller's namespace, in this node's memory or in Redis across replicas.

    cache:
      enabled: true          # off by default
      ttl: 300               # seconds an answer lives, unless a request says otherwise
      backend: redis         # memory | redis; default redis when AISTRATA_REDIS_URL is set
      max_entries: 10000     # the memory store's LRU bounds (also the Redis fallback's):
      max_memory_mb: 256     #   entries, and MiB of keys and answers
      namespace_by: team     # team (the key's team, else the key) | key | none (all share)

LiteLLM's `litellm_settings: {cache: true, cache_params: {type: redis|local, ttl: ...}}`
is read too when there is no `cache` section. Per-request controls: see `keys.CacheControls`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from ..config import ConfigError, Settings
from .exact import CacheStats, ExactCache
from .keys import CacheControls, NamespaceBy, cache_key, fingerprint, tenant
from .memory import MemoryStore, Store
from .redis_store import FailoverStore, RedisStore, connect

__all__ = [
    "CacheConfig", "CacheControls", "CacheStats", "ExactCache", "FailoverStore", "MemoryStore", "RedisStore",
    "Store", "build_cache", "cache_key", "fingerprint", "tenant",
]

Backend = Literal["memory", "redis"]
LITELLM_TYPES: dict[str, Backend] = {"local": "memory", "redis": "redis"}


@dataclass(frozen=True, slots=True)
class CacheConfig:
    enabled: bool = False
    ttl: float = 300.0
    backend: Backend = "memory"
    max_entries: int = 10_000
    max_memory_mb: float = 256.0
    namespace_by: NamespaceBy = "team"

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheConfig:
        raw = settings.raw.get("cache")
        if raw is None:
            raw = _from_litellm(settings.raw.get("litellm_settings") or {})
        elif isinstance(raw, bool):
            raw = {"enabled": raw}  # `cache: true` turns it on with the defaults
        if not isinstance(raw, dict):
            raise ConfigError("cache must be a mapping, e.g. {enabled: true, ttl: 300}")
        backend = raw.get("backend") or ("redis" if settings.redis_url else "memory")
        if backend not in ("memory", "redis"):
            raise ConfigError(f"cache.backend must be memory or redis, not {backend!r}")
        if backend == "redis" and not settings.redis_url:
            raise ConfigError("cache.backend is redis but no Redis URL is set (AISTRATA_REDIS_URL)")
        namespace_by = raw.get("namespace_by") or "team"
        if namespace_by not in ("key", "team", "none"):
            raise ConfigError(f"cache.namespace_by must be key, team or none, not {namespace_by!r}")
        try:
            ttl = float(300 if raw.get("ttl") is None else raw["ttl"])
            max_entries = int(10_000 if raw.get("max_entries") is None else raw["max_entries"])
            max_memory_mb = float(256 if raw.get("max_memory_mb") is None else raw["max_memory_mb"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"cache.ttl, cache.max_entries and cache.max_memory_mb must be numbers: {exc}") from exc
        if ttl <= 0 or max_entries < 1 or max_memory_mb * 2**20 < 1:
            raise ConfigError("cache.ttl, cache.max_entries and cache.max_memory_mb must be positive")
        return cls(bool(raw.get("enabled", False)), ttl, cast(Backend, backend), max_entries, max_memory_mb,
                   cast(NamespaceBy, namespace_by))


def _from_litellm(section: dict[str, Any]) -> dict[str, Any]:
    if not section.get("cache"):
        return {}
    params = section.get("cache_params") or {}
    kind = params.get("type") or "local"
    if kind not in LITELLM_TYPES:
        raise ConfigError(f"litellm_settings.cache_params.type {kind!r} is not supported (local or redis)")
    return {"enabled": True, "backend": LITELLM_TYPES[kind], "ttl": params.get("ttl")}


def build_cache(settings: Settings, state: Any) -> ExactCache | None:
    """The response cache the settings configure, or None when it is off.

    `state` (the shared limits/budgets state) is not used: the cache keeps its own Redis
    client so its bytes-in, bytes-out traffic never queues behind their Lua scripts.
    """
    config = CacheConfig.from_settings(settings)
    if not config.enabled:
        return None
    memory = MemoryStore(config.max_entries, int(config.max_memory_mb * 2**20))
    store: Store = memory
    if config.backend == "redis":
        assert settings.redis_url is not None  # checked by from_settings
        store = FailoverStore(RedisStore(connect(settings.redis_url)), memory)
    return ExactCache(store, ttl=config.ttl, namespace_by=config.namespace_by)
