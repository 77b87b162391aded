"""The byte stores, memory and Redis, and the failover between them."""

from __future__ import annotations

import logging
import tracemalloc

import orjson
import pytest

from aistrata.gateway.cache import FailoverStore, MemoryStore, RedisStore
from aistrata.gateway.cache.redis_store import connect

from .conftest import Backend, FakeClock

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


async def test_set_get_and_ttl_expiry(backend: Backend) -> None:
    store = backend.store()
    assert await store.get("ns:a") is None
    await store.set("ns:a", b"short", ttl=0.2)
    await store.set("ns:b", b"long", ttl=30)
    assert await store.get("ns:a") == b"short"
    assert await store.count() == 2
    await backend.advance(0.35)
    assert await store.get("ns:a") is None
    assert await store.get("ns:b") == b"long"
    assert await store.count() == 1


async def test_flush_all_or_one_namespace(backend: Backend) -> None:
    store = backend.store()
    for key in ("x:1", "x:2", "y:1", "xy:1"):
        await store.set(key, b"v", ttl=30)
    assert await store.flush("x:") == 2
    assert await store.get("x:1") is None and await store.get("xy:1") == b"v"
    assert await store.flush() == 2
    assert await store.count() == 0


async def test_memory_is_a_bounded_lru() -> None:
    store = MemoryStore(max_entries=3, clock=FakeClock())
    for key in "abc":
        await store.set(key, key.encode(), ttl=60)
    assert await store.get("a") == b"a"      # a is now the most recently used
    await store.set("d", b"d", ttl=60)       # evicts b, the least recently used
    assert [await store.get(k) for k in "abcd"] == [b"a", None, b"c", b"d"]
    assert await store.count() == 3


async def test_memory_is_bounded_in_bytes_too() -> None:
    store = MemoryStore(max_entries=100, max_bytes=1000, clock=FakeClock())
    for key in "abc":
        await store.set(key, b"x" * 299, ttl=60)  # 300 bytes each with its key
    assert store.bytes == 900
    await store.get("a")
    await store.set("d", b"y" * 299, ttl=60)  # 1,200 > 1,000: b, the least recently used, goes
    assert [await store.get(k) is not None for k in "abcd"] == [True, False, True, True]
    await store.set("a", b"z" * 99, ttl=60)  # replaced: counted at its new size
    assert store.bytes == 700
    await store.set("huge", b"h" * 2000, ttl=60)  # bigger than the bound alone: not kept, evicts nothing
    assert await store.get("huge") is None and store.bytes == 700 and await store.count() == 3
    await store.set("c", b"z" * 5000, ttl=60)  # a too-big new answer does not leave the old one behind
    assert await store.get("c") is None and store.bytes == 400
    assert await store.flush() == 2 and store.bytes == 0


async def test_memory_holds_entries_at_their_size() -> None:
    """orjson's output carries a spare buffer of several KiB; an entry kept for its TTL must not."""
    store = MemoryStore(max_entries=1000, clock=FakeClock())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            await store.set(f"k{i}", orjson.dumps({"n": i, "text": "x" * 400}), ttl=60)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert await store.get("k7") == orjson.dumps({"n": 7, "text": "x" * 400})
    assert held < 1000 * 1024  # ~420 bytes of JSON each, with the store's own bookkeeping


async def test_failover_serves_from_memory_and_logs_each_transition_once(
    redis_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    primary = RedisStore(connect(DEAD_REDIS, timeout=0.2), prefix="aistrata-test:failover:")
    store = FailoverStore(primary, MemoryStore(10, clock=clock), retry_s=5, clock=clock)
    with caplog.at_level(logging.WARNING, "aistrata.cache"):
        await store.set("k", b"v", ttl=30)
        assert await store.get("k") == b"v"   # from memory
        assert store.health()["status"] == "degraded"
        await store.set("k2", b"v", ttl=30)
        assert sum("unreachable" in r.message for r in caplog.records) == 1
        # Redis comes back; it is tried again once the retry interval has passed
        await primary.aclose()
        primary.client = connect(redis_url)
        clock.now += 6
        assert await store.get("k") is None   # Redis holds nothing under this key
        assert store.health() == {"status": "ok", "serving": "redis", "redis": "ok"}
        assert sum("reachable again" in r.message for r in caplog.records) == 1
    await primary.flush()
    await primary.aclose()
