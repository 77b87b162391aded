"""In-process state for one node (and the fallback when Redis is unreachable).

Every primitive runs under one lock without awaiting inside it, so it is atomic against other
requests on the event loop and against other threads (CLI, test servers) alike.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, Callable

import orjson

from .base import (
    SUBWINDOWS,
    Admitted,
    BucketResult,
    ReserveResult,
    SlotResult,
    WindowResult,
    sub_window_ms,
    ttl_ms,
)

SWEEP_EVERY = 10_000  # operations between sweeps of expired keys
SWEEP_HOLDS = 1_000   # holds on one budget before expired ones are looked for


class MemoryState:
    """Keys are kept as given: the namespace prefix that Redis keys carry (`base.DEFAULT_PREFIX`)
    would be one more string to build and hash on every access, and one process's state has
    no neighbours to keep apart from."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}
        self._expires: dict[str, int] = {}
        self._ops = 0

    # -- storage -------------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock() * 1000)

    def _load(self, key: str, now: int, default: Callable[[], Any]) -> Any:
        """The live value of `key`, or a fresh default (an expired key is a missing key)."""
        self._ops += 1
        if self._ops >= SWEEP_EVERY:
            self._ops = 0
            for k in [k for k, at in self._expires.items() if at <= now]:
                self._drop(k)
        at = self._expires.get(key)
        if at is not None and at <= now:
            self._drop(key)
        value = self._data.get(key)
        if value is None:
            value = self._data[key] = default()
        return value

    def _peek(self, key: str, now: int) -> Any:
        """The live value of `key` or None, creating nothing (reads leave no garbage)."""
        at = self._expires.get(key)
        if at is not None and at <= now:
            self._drop(key)
        return self._data.get(key)

    def _drop(self, key: str) -> None:
        self._data.pop(key, None)
        self._expires.pop(key, None)

    # -- sliding window ------------------------------------------------------------------------

    def _windows(self, items: Sequence[tuple[str, int, int]], now: int, floor: int) -> list[_Window]:
        """The window of each item, with what has slid out before `floor` dropped."""
        found = []
        for key, _, _ in items:
            w: _Window = self._load(key, now, _Window)
            if w.oldest < floor:
                w.trim(floor)
            found.append(w)
        return found

    def _adjust_windows(self, items: Sequence[tuple[str, int, int]], now: int, step: int) -> None:
        for key, slot, delta in items:
            if slot >= now // step - SUBWINDOWS:
                w: _Window = self._load(key, now, _Window)
                w.add(slot, delta)

    async def window_used(self, key: str, window_s: float) -> int:
        step = sub_window_ms(window_s)
        with self._lock:
            now = self._now()
            w: _Window | None = self._peek(key, now)
            if w is None:
                return 0
            w.trim(now // step - SUBWINDOWS)
            return w.used

    # -- token bucket --------------------------------------------------------------------------

    async def bucket_take(
        self, key: str, amount: int, capacity: int, per_s: float, force: bool = False
    ) -> BucketResult:
        with self._lock:
            now = self._now()
            bucket: list[float] = self._load(key, now, lambda: [float(capacity), float(now)])
            level = min(float(capacity), bucket[0] + max(0.0, now - bucket[1]) * per_s / 1000)
            bucket[1] = float(now)
            if force or level >= amount:
                bucket[0] = min(float(capacity), level - amount)
                self._expires[key] = now + _refill_ms(bucket[0], capacity, per_s)
                return BucketResult(True, bucket[0], 0.0)
            bucket[0] = level
            retry = -1.0 if amount > capacity else math.ceil((amount - level) * 1000 / per_s) / 1000
            return BucketResult(False, level, retry)

    async def bucket_level(self, key: str, capacity: int, per_s: float) -> float:
        with self._lock:
            now = self._now()
            bucket: list[float] = self._peek(key, now) or [float(capacity), float(now)]
            return min(float(capacity), bucket[0] + max(0.0, now - bucket[1]) * per_s / 1000)

    # -- concurrency slots ---------------------------------------------------------------------

    async def slot_acquire(self, key: str, limit: int, ttl_s: float) -> SlotResult:
        token = uuid.uuid4().hex
        with self._lock:
            now = self._now()
            held: dict[str, int] = self._load(key, now, dict)
            for t in [t for t, exp in held.items() if exp <= now]:
                del held[t]
            if len(held) >= limit:
                return SlotResult(False, len(held), token)
            held[token] = now + ttl_ms(ttl_s)
            return SlotResult(True, len(held), token)

    async def slot_release(self, key: str, token: str) -> None:
        with self._lock:
            held: dict[str, int] = self._peek(key, self._now()) or {}
            held.pop(token, None)

    async def slots_used(self, key: str) -> int:
        with self._lock:
            now = self._now()
            held: dict[str, int] = self._peek(key, now) or {}
            return sum(1 for exp in held.values() if exp > now)

    # -- reservations --------------------------------------------------------------------------

    async def reserve(
        self, key: str, rid: str, amount: int, cap: int, hold_s: float, ttl_s: float | None = None
    ) -> ReserveResult:
        with self._lock:
            now = self._now()
            entry, fits = self._room(key, amount, cap, now)
            if not fits:
                return ReserveResult(False, entry.used, entry.held)
            self._hold(key, entry, rid, amount, now, hold_s, ttl_s)
            return ReserveResult(True, entry.used, entry.held)

    async def settle(self, key: str, rid: str, actual: int, ttl_s: float | None = None) -> int:
        with self._lock:
            return self._settle(key, rid, actual, self._now(), ttl_s)

    def _room(self, key: str, amount: int, cap: int, now: int) -> tuple[_Reservation, bool]:
        entry: _Reservation = self._load(key, now, _Reservation)
        # `held` is the running sum of the holds; expired ones (a call that never settled)
        # are dropped only when they could matter: before a refusal, or as they pile up.
        if entry.used + entry.held + amount > cap or len(entry.holds) >= SWEEP_HOLDS:
            entry.drop_expired(now)
        return entry, entry.used + entry.held + amount <= cap

    def _hold(self, key: str, entry: _Reservation, rid: str, amount: int, now: int, hold_s: float,
              ttl_s: float | None) -> None:
        replaced = entry.holds.get(rid)
        entry.holds[rid] = (amount, now + ttl_ms(hold_s))
        entry.held += amount - (replaced[0] if replaced else 0)
        if ttl_s is not None:
            self._expires[key] = now + ttl_ms(ttl_s)

    def _settle(self, key: str, rid: str, actual: int, now: int, ttl_s: float | None) -> int:
        entry: _Reservation = self._load(key, now, _Reservation)
        hold = entry.holds.pop(rid, None)
        if hold is not None:
            entry.held -= hold[0]
        entry.used += actual
        if ttl_s is not None:
            self._expires[key] = now + ttl_ms(ttl_s)
        return entry.used

    # -- a request's windows and budgets together -------------------------------------------------

    async def admit(self, windows: Sequence[tuple[str, int, int]], window_s: float,
                    holds: Sequence[tuple[str, int, float | None]], rid: str, amount: int, hold_s: float) -> Admitted:
        step = sub_window_ms(window_s)
        with self._lock:
            now = self._now()
            cur = now // step
            found = self._windows(windows, now, cur - SUBWINDOWS)
            for w, (_, n, limit) in zip(found, windows):
                if w.used + n > limit:
                    return Admitted(_refused_windows(found, windows, now, step), -1, 0, 0)
            entries = []
            for i, (key, cap, _) in enumerate(holds):
                entry, room = self._room(key, amount, cap, now)
                if not room:
                    return Admitted(_refused_windows(found, windows, now, step), i, entry.used, entry.held)
                entries.append(entry)
            expires = now + step * (SUBWINDOWS + 2)
            results = []
            for w, (key, n, _) in zip(found, windows):
                w.add(cur, n)
                self._expires[key] = expires
                results.append(WindowResult(True, w.used, 0.0, cur))
            for (key, _, ttl_s), entry in zip(holds, entries):
                self._hold(key, entry, rid, amount, now, hold_s, ttl_s)
            return Admitted(results, -1, 0, 0)

    async def release(self, adjust: Sequence[tuple[str, int, int]], window_s: float,
                      holds: Sequence[tuple[str, float | None]], rid: str, actual: int) -> list[int]:
        with self._lock:
            now = self._now()
            if adjust:
                self._adjust_windows(adjust, now, sub_window_ms(window_s))
            return [self._settle(key, rid, actual, now, ttl_s) for key, ttl_s in holds]

    async def reservation(self, key: str) -> tuple[int, int]:
        with self._lock:
            now = self._now()
            entry: _Reservation = self._peek(key, now) or _Reservation()
            return entry.used, sum(a for a, exp in entry.holds.values() if exp > now)

    # -- plain counters and values -------------------------------------------------------------

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        with self._lock:
            now = self._now()
            value = int(self._load(key, now, int)) + amount
            self._data[key] = value
            if ttl_s is not None:
                self._expires[key] = now + ttl_ms(ttl_s)
            return value

    async def get(self, key: str) -> int:
        with self._lock:
            value = self._peek(key, self._now())
            return value if isinstance(value, int) else 0

    async def get_json(self, key: str) -> Any:
        with self._lock:
            raw = self._peek(key, self._now())
            return orjson.loads(raw) if isinstance(raw, bytes) else None

    async def set_json(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        # Stored encoded, so a caller mutating its object later cannot change what is stored.
        raw = orjson.dumps(value)
        with self._lock:
            self._data[key] = raw
            if ttl_s is None:
                self._expires.pop(key, None)
            else:
                self._expires[key] = self._now() + ttl_ms(ttl_s)

    async def delete(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def health(self) -> dict[str, Any]:
        return {"backend": "memory", "ok": True}

    async def close(self) -> None:
        return None


class _Window:
    """A sliding window's amounts per sub-window, with their sum and the oldest sub-window kept
    up to date, so that a check costs the same however many sub-windows are live."""

    __slots__ = ("slots", "used", "oldest")

    def __init__(self) -> None:
        self.slots: dict[int, int] = {}
        self.used = 0
        self.oldest: float = math.inf

    def add(self, slot: int, amount: int) -> None:
        self.slots[slot] = self.slots.get(slot, 0) + amount
        self.used += amount
        if slot < self.oldest:
            self.oldest = slot

    def trim(self, floor: int) -> None:
        """Drop the sub-windows before `floor`: they have slid out."""
        if self.oldest < floor:
            self.slots = {s: v for s, v in self.slots.items() if s >= floor}
            self.used = sum(self.slots.values())
            self.oldest = min(self.slots, default=math.inf)


class _Reservation:
    """A budget counter: what was settled, what calls in flight hold (their sum, and each
    hold's amount and expiry by request id)."""

    __slots__ = ("used", "held", "holds")

    def __init__(self) -> None:
        self.used = 0
        self.held = 0
        self.holds: dict[str, tuple[int, int]] = {}

    def drop_expired(self, now: int) -> None:
        for rid in [rid for rid, (_, exp) in self.holds.items() if exp <= now]:
            self.held -= self.holds.pop(rid)[0]


def _refill_ms(level: float, capacity: int, per_s: float) -> int:
    """How long until a bucket is full again (then its key is as good as missing)."""
    return math.ceil(max(0.0, capacity - level) * 1000 / per_s) + 1000


def _refused_windows(found: list[_Window], items: Sequence[tuple[str, int, int]], now: int,
                     step: int) -> list[WindowResult]:
    """One result per window, when some window had no room (then nothing was added): one without
    room says when enough will have slid out."""
    cur = now // step
    return [WindowResult(True, w.used, 0.0, cur) if w.used + n <= limit else
            WindowResult(False, w.used, _window_retry(w.slots, w.used + n - limit, n > limit, step, now), cur)
            for w, (_, n, limit) in zip(found, items)]


def _window_retry(slots: dict[int, int], excess: int, never: bool, step: int, now: int) -> float:
    """Seconds until the oldest sub-windows holding `excess` have slid out."""
    if never:
        return -1.0
    for s in sorted(slots):
        excess -= slots[s]
        if excess <= 0:
            return ((s + SUBWINDOWS + 1) * step - now) / 1000
    return 0.0
