"""The cache shared by replicas, in Redis, and the failover that keeps serving without it.

Redis bounds the cache itself: every entry carries its TTL (`SET ... PX`), and the server's
`maxmemory` policy evicts under pressure, so `max_entries` applies to the memory store only.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, TypeVar, cast

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .memory import Clock, MemoryStore

log = logging.getLogger("aistrata.cache")
T = TypeVar("T")
KEY_PREFIX = "aistrata:cache:v1:"
SCAN_BATCH = 500


def connect(url: str, timeout: float = 0.5) -> redis.Redis:
    """A client that fails fast: a cache that waits seconds on a dead Redis costs more than
    it saves. One immediate retry covers a pooled connection dropped by a Redis restart."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1),
    )


class RedisStore:
    name = "redis"

    def __init__(self, client: redis.Redis, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    async def get(self, key: str) -> bytes | None:
        # The client is never built with decode_responses, so values stay bytes.
        return cast("bytes | None", await self.client.get(self.prefix + key))

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self.client.set(self.prefix + key, value, px=max(1, round(ttl * 1000)))

    async def flush(self, prefix: str = "") -> int:
        removed = 0
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=self.prefix + prefix + "*", count=SCAN_BATCH):
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                removed += await self.client.unlink(*batch)
                batch = []
        if batch:
            removed += await self.client.unlink(*batch)
        return removed

    async def count(self) -> int:
        # SCAN, not KEYS: an admin asking for stats must not block Redis for everyone.
        return sum([1 async for _ in self.client.scan_iter(match=self.prefix + "*", count=SCAN_BATCH)])

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "serving": self.name}

    async def aclose(self) -> None:
        await self.client.aclose()


class FailoverStore:
    """Redis while it answers, this node's memory while it does not.

    After a failure Redis is left alone for `retry_s` (no per-request connect timeouts
    during an outage), then tried again. Each transition is logged once.
    """

    name = "redis"

    def __init__(
        self, primary: RedisStore, fallback: MemoryStore, retry_s: float = 5.0, clock: Clock = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.retry_s = retry_s
        self.clock = clock
        self._down_until: float | None = None

    @property
    def redis_up(self) -> bool:
        return self._down_until is None

    async def _call(self, op: Callable[[RedisStore], Awaitable[T]], otherwise: Callable[[MemoryStore], Awaitable[T]]) -> T:
        if self._down_until is not None and self.clock() < self._down_until:
            return await otherwise(self.fallback)
        try:
            result = await op(self.primary)
        except (RedisError, OSError) as exc:
            if self._down_until is None:
                log.warning("cache: Redis unreachable (%s); serving from this node's memory", type(exc).__name__)
            self._down_until = self.clock() + self.retry_s
            return await otherwise(self.fallback)
        if self._down_until is not None:
            log.warning("cache: Redis reachable again; serving from Redis")
            self._down_until = None
        return result

    async def get(self, key: str) -> bytes | None:
        return await self._call(lambda s: s.get(key), lambda s: s.get(key))

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._call(lambda s: s.set(key, value, ttl), lambda s: s.set(key, value, ttl))

    async def flush(self, prefix: str = "") -> int:
        # The memory copy too: entries written during an outage must not outlive a flush.
        local = await self.fallback.flush(prefix)
        return await self._call(lambda s: s.flush(prefix), lambda s: _const(local))

    async def count(self) -> int:
        return await self._call(lambda s: s.count(), lambda s: s.count())

    def health(self) -> dict[str, Any]:
        if self.redis_up:
            return {"status": "ok", "serving": "redis", "redis": "ok"}
        return {"status": "degraded", "serving": "memory", "redis": "unreachable"}

    async def aclose(self) -> None:
        await self.primary.aclose()


async def _const(value: T) -> T:
    return value
