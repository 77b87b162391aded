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
    """One node's cache, bounded in entries and in bytes (keys and answers, not counting
    Python's own ~200 bytes an entry): past either bound the least recently used go, and an
    answer bigger than the byte bound alone is not kept. Expired entries are dropped when read
    or when the LRU evicts them; a sweep is not needed because the bounds keep the dead weight
    finite."""

    name = "memory"

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 256 << 20, clock: Clock = time.monotonic) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.bytes = 0  # held by the entries' keys and values

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= self.clock():
            self._forget(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._forget(key)  # a new answer replaces the old, and counts from now
        size = len(key) + len(value)
        if size > self.max_bytes:
            return
        # A copy of the exact size: orjson's output keeps its whole working buffer (4 KiB and
        # up, however short the JSON), which an entry would hold for its TTL, ~9x its size.
        self._entries[key] = (self.clock() + ttl, bytes(memoryview(value)))
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            old, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= len(old) + len(dropped)

    async def flush(self, prefix: str = "") -> int:
        doomed = [k for k in self._entries if k.startswith(prefix)]
        for key in doomed:
            self._forget(key)
        return len(doomed)

    async def count(self) -> int:
        now = self.clock()
        return sum(1 for expires, _ in self._entries.values() if expires > now)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "serving": self.name}

    def _forget(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.bytes -= len(key) + len(found[1])
