"""The `cache:` config section (and LiteLLM's `litellm_settings.cache`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aistrata.gateway.cache import CacheConfig, ExactCache, FailoverStore, MemoryStore, build_cache
from aistrata.gateway.config import ConfigError, Settings

REDIS = "redis://127.0.0.1:6379/0"


def settings(raw: dict[str, Any], redis_url: str | None = None) -> Settings:
    return Settings(data_dir=Path("."), raw=raw, redis_url=redis_url)


def test_off_by_default() -> None:
    assert build_cache(settings({}), None) is None
    assert build_cache(settings({"cache": {"ttl": 60}}), None) is None


def test_memory_cache_with_its_settings() -> None:
    cache = build_cache(settings({"cache": {"enabled": True, "ttl": 60, "max_entries": 5, "max_memory_mb": 1.5,
                                            "namespace_by": "key"}}), None)
    assert isinstance(cache, ExactCache) and isinstance(cache.store, MemoryStore)
    assert (cache.ttl, cache.store.max_entries, cache.store.max_bytes, cache.namespace_by) == (60.0, 5, 1_572_864, "key")
    assert CacheConfig.from_settings(settings({"cache": True})) == CacheConfig(enabled=True)


def test_redis_when_a_url_is_set() -> None:
    cache = build_cache(settings({"cache": {"enabled": True}}, REDIS), None)
    assert isinstance(cache, ExactCache) and isinstance(cache.store, FailoverStore)
    forced_local = build_cache(settings({"cache": {"enabled": True, "backend": "memory"}}, REDIS), None)
    assert isinstance(forced_local, ExactCache) and isinstance(forced_local.store, MemoryStore)


def test_litellm_cache_settings() -> None:
    raw = {"litellm_settings": {"cache": True, "cache_params": {"type": "redis", "ttl": 600}}}
    assert CacheConfig.from_settings(settings(raw, REDIS)) == CacheConfig(enabled=True, ttl=600, backend="redis")


@pytest.mark.parametrize("raw, redis_url", [
    ({"cache": {"enabled": True, "backend": "redis"}}, None),
    ({"cache": {"enabled": True, "backend": "disk"}}, None),
    ({"cache": {"enabled": True, "namespace_by": "user"}}, None),
    ({"cache": {"enabled": True, "ttl": 0}}, None),
    ({"cache": {"enabled": True, "max_entries": "many"}}, None),
    ({"cache": {"enabled": True, "max_memory_mb": 0}}, None),
    ({"cache": ["enabled"]}, None),
    ({"litellm_settings": {"cache": True, "cache_params": {"type": "s3"}}}, None),
])
def test_bad_config_is_refused(raw: dict[str, Any], redis_url: str | None) -> None:
    with pytest.raises(ConfigError):
        CacheConfig.from_settings(settings(raw, redis_url))
