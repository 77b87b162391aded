"""Redis with a local fallback: when Redis is unreachable the gateway keeps serving on
in-process state (limits then hold per node, not globally), says so in `health()` and the log
(once per transition, not once per request), and tries Redis again every `retry_s`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Awaitable, Callable, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .base import Admitted, BucketResult, ReserveResult, SlotResult
from .memory import MemoryState
from .redis_backend import RedisState

log = logging.getLogger("aistrata.state")
T = TypeVar("T")
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class FallbackState:
    def __init__(self, primary: RedisState, local: MemoryState, retry_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.primary = primary
        self.local = local
        self.retry_s = retry_s
        self.monotonic = monotonic
        self._down_since: float | None = None
        self._next_try = 0.0
        self._reason = ""

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    async def _run(self, call: Callable[[Any], Awaitable[T]]) -> T:
        """`call` on Redis unless it is known down and not due for a retry; else locally."""
        if self._down_since is None or self.monotonic() >= self._next_try:
            try:
                result = await call(self.primary)
            except UNREACHABLE as exc:
                self._mark_down(exc)
            else:
                if self._down_since is not None:
                    log.warning("Redis reachable again after %.0f s: shared limits restored",
                                self.monotonic() - self._down_since)
                    self._down_since = None
                return result
        return await call(self.local)

    def _mark_down(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = self.monotonic()
            self._reason = type(exc).__name__
            log.error("Redis unreachable (%s): serving on local in-process limits until it is back", self._reason)
        self._next_try = self.monotonic() + self.retry_s

    async def admit(self, windows: Sequence[tuple[str, int, int]], window_s: float,
                    holds: Sequence[tuple[str, int, float | None]], rid: str, amount: int, hold_s: float) -> Admitted:
        return await self._run(lambda s: s.admit(windows, window_s, holds, rid, amount, hold_s))

    async def release(self, adjust: Sequence[tuple[str, int, int]], window_s: float,
                      holds: Sequence[tuple[str, float | None]], rid: str, actual: int) -> list[int]:
        return await self._run(lambda s: s.release(adjust, window_s, holds, rid, actual))

    async def window_used(self, key: str, window_s: float) -> int:
        return await self._run(lambda s: s.window_used(key, window_s))

    async def bucket_take(
        self, key: str, amount: int, capacity: int, per_s: float, force: bool = False
    ) -> BucketResult:
        return await self._run(lambda s: s.bucket_take(key, amount, capacity, per_s, force))

    async def bucket_level(self, key: str, capacity: int, per_s: float) -> float:
        return await self._run(lambda s: s.bucket_level(key, capacity, per_s))

    async def slot_acquire(self, key: str, limit: int, ttl_s: float) -> SlotResult:
        return await self._run(lambda s: s.slot_acquire(key, limit, ttl_s))

    async def slot_release(self, key: str, token: str) -> None:
        await self._run(lambda s: s.slot_release(key, token))

    async def slots_used(self, key: str) -> int:
        return await self._run(lambda s: s.slots_used(key))

    async def reserve(
        self, key: str, rid: str, amount: int, cap: int, hold_s: float, ttl_s: float | None = None
    ) -> ReserveResult:
        return await self._run(lambda s: s.reserve(key, rid, amount, cap, hold_s, ttl_s))

    async def settle(self, key: str, rid: str, actual: int, ttl_s: float | None = None) -> int:
        return await self._run(lambda s: s.settle(key, rid, actual, ttl_s))

    async def reservation(self, key: str) -> tuple[int, int]:
        return await self._run(lambda s: s.reservation(key))

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        return await self._run(lambda s: s.incr(key, amount, ttl_s))

    async def get(self, key: str) -> int:
        return await self._run(lambda s: s.get(key))

    async def get_json(self, key: str) -> Any:
        return await self._run(lambda s: s.get_json(key))

    async def set_json(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        await self._run(lambda s: s.set_json(key, value, ttl_s))

    async def delete(self, key: str) -> None:
        await self._run(lambda s: s.delete(key))

    def health(self) -> dict[str, Any]:
        if self._down_since is None:
            return {"backend": "redis", "ok": True}
        return {"backend": "redis", "ok": False, "fallback": "local", "error": self._reason,
                "down_for_s": round(self.monotonic() - self._down_since, 1)}

    async def close(self) -> None:
        await self.primary.close()
