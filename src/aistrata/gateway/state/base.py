"""The `SharedState` contract: counters, reservations and small values that every replica
of the gateway sees alike.

Each primitive is ONE atomic step on its backend (a Lua script in Redis, a lock-held block
in process), so a check and the increment it guards can never be split by another request.
Amounts are integers (requests, tokens, nano-dollars): Lua numbers are doubles, and integers
stay exact up to 2**53 where float sums would drift.

Keys are given without the namespace; each backend prefixes them (`aistrata:` by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

DEFAULT_PREFIX = "aistrata:"
# A sliding window is kept in sub-windows of 1/10 of its length. It counts the current one and
# the 10 before, so it errs on the safe side: an amount leaves between 1 and 1.1 windows later.
SUBWINDOWS = 10

# Results are named tuples: one is made per counter per request, and a tuple is much cheaper
# to build than a frozen dataclass.


class WindowResult(NamedTuple):
    allowed: bool
    used: int               # in the window, this request included when allowed
    retry_after: float      # seconds until enough has slid out; -1 when it never fits
    slot: int               # sub-window the amount went into, for `window_adjust`


class BucketResult(NamedTuple):
    allowed: bool
    level: float            # tokens left in the bucket (negative: a debt being paid back)
    retry_after: float      # seconds until the bucket holds enough; -1 when it never will


class SlotResult(NamedTuple):
    allowed: bool
    used: int               # slots held, this one included when allowed
    token: str              # hand back to `slot_release`


class ReserveResult(NamedTuple):
    allowed: bool
    used: int               # settled so far
    reserved: int           # held by calls in flight, this one included when allowed


class Admitted(NamedTuple):
    windows: list[WindowResult]  # one per window; all `allowed` unless some window had no room
    refused: int            # the first hold without room (then nothing was added), else -1
    used: int               # that hold's counter: settled so far
    reserved: int           # and held by calls in flight


class SharedState(Protocol):
    """What limits, budgets, breakers and the cache may count on, on one node or many."""

    async def window_used(self, key: str, window_s: float) -> int: ...

    async def bucket_take(
        self, key: str, amount: int, capacity: int, per_s: float, force: bool = False
    ) -> BucketResult:
        """Take `amount` from a token bucket refilled at `per_s`; `force` takes it anyway
        (a correction that may leave a debt) and a negative amount gives tokens back."""
        ...

    async def bucket_level(self, key: str, capacity: int, per_s: float) -> float: ...

    async def slot_acquire(self, key: str, limit: int, ttl_s: float) -> SlotResult:
        """Hold one of `limit` slots; a slot not released within `ttl_s` frees itself, so a
        crashed replica cannot leak it."""
        ...

    async def slot_release(self, key: str, token: str) -> None: ...

    async def slots_used(self, key: str) -> int: ...

    async def reserve(
        self, key: str, rid: str, amount: int, cap: int, hold_s: float, ttl_s: float | None = None
    ) -> ReserveResult:
        """Hold `amount` as reservation `rid` iff `used + reserved + amount <= cap`. A hold
        expires after `hold_s` (a crashed replica's reservation cannot lock a budget); the
        whole counter after `ttl_s` (its period is over)."""
        ...

    async def settle(self, key: str, rid: str, actual: int, ttl_s: float | None = None) -> int:
        """Replace reservation `rid` by the true amount; returns `used` afterwards."""
        ...

    async def admit(self, windows: Sequence[tuple[str, int, int]], window_s: float,
                    holds: Sequence[tuple[str, int, float | None]], rid: str, amount: int, hold_s: float) -> Admitted:
        """A request's admission in ONE atomic step: each window `(key, amount, limit)` gets
        `amount` added to its sliding window and each hold `(key, cap, ttl_s)` a `reserve` of
        `amount` as `rid`, all or nothing, so a request refused by one counter costs no other
        anything. One result per window; `allowed` says whether that window had room."""
        ...

    async def release(self, adjust: Sequence[tuple[str, int, int]], window_s: float,
                      holds: Sequence[tuple[str, float | None]], rid: str, actual: int) -> list[int]:
        """A request's settlement in one step: each `(key, slot, delta)` of `adjust` corrects an
        earlier add (estimate -> true count; a slot that slid out is left alone), and each
        hold `(key, ttl_s)` is settled to `actual`; returns each hold's `used` afterwards."""
        ...

    async def reservation(self, key: str) -> tuple[int, int]:
        """(used, reserved) of a reservation counter."""
        ...

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        """A plain counter (e.g. per deployment, for adaptive limits); returns the new value."""
        ...

    async def get(self, key: str) -> int: ...

    async def get_json(self, key: str) -> Any: ...

    async def set_json(self, key: str, value: Any, ttl_s: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    def health(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def sub_window_ms(window_s: float) -> int:
    return max(1, int(window_s * 1000) // SUBWINDOWS)


def ttl_ms(ttl_s: float | None) -> int:
    """0 means no expiry."""
    return 0 if ttl_s is None else max(1, int(ttl_s * 1000))
