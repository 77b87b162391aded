"""Cache fixtures: each store under test, memory and Redis, behind one small harness."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis

from aistrata.gateway.cache import MemoryStore, RedisStore, Store
from aistrata.gateway.cache.redis_store import connect

REDIS_URL = os.environ.get("AISTRATA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis, or a visible skip (a failure with AISTRATA_REQUIRE_SERVICES=1)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        reason = f"Redis unreachable at {REDIS_URL}: {exc}"
        if os.environ.get("AISTRATA_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (AISTRATA_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    return REDIS_URL


def drop_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """A store plus a way to let time pass: a fake clock for memory, real time for Redis
    (its TTLs run on the server)."""

    name: str
    clock: FakeClock = field(default_factory=FakeClock)
    redis_url: str | None = None
    prefix: str = field(default_factory=lambda: f"aistrata-test:{secrets.token_hex(6)}:")

    def store(self, max_entries: int = 10_000) -> Store:
        if self.redis_url is None:
            return MemoryStore(max_entries, clock=self.clock)
        # A client per store: each test runs on its own event loop.
        return RedisStore(connect(self.redis_url), prefix=self.prefix)

    async def advance(self, seconds: float) -> None:
        if self.redis_url is None:
            self.clock.now += seconds
        else:
            await asyncio.sleep(seconds)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend("memory")
        return
    url = request.getfixturevalue("redis_url")
    b = Backend("redis", redis_url=url)
    try:
        yield b
    finally:
        drop_prefix(url, b.prefix)
