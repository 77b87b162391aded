"""The store protocol, and its in-process implementation: a bounded LRU with per-entry TTL.

Stores hold opaque bytes under string keys; what the bytes mean is `codec`'s business.
Keys start with `<quoted namespace>:` (see `keys.cache_key`) so a flush can target one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Protocol

Clock = Callable[[], float]


class Store(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def flush(self, prefix: str = "") -> int: ...

    async def count(self) -> int: ...

    def health(self) -> dict[str, Any]: ...


class MemoryStore:
    """One node's cache. Expired entries are dropped when read or when the LRU evicts them;
    a sweep is not needed because the bound keeps the dead weight finite."""

    name = "memory"

    def __init__(self, max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        # A copy of the exact size: orjson's output keeps its whole working buffer (4 KiB and
        # up, however short the JSON), which an entry would hold for its TTL, ~9x its size.
        self._entries[key] = (self.clock() + ttl, bytes(memoryview(value)))
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def flush(self, prefix: str = "") -> int:
        doomed = [k for k in self._entries if k.startswith(prefix)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    async def count(self) -> int:
        now = self.clock()
        return sum(1 for expires, _ in self._entries.values() if expires > now)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "serving": self.name}
