"""One conformance suite for every `SharedState` backend (in process and Redis)."""

from __future__ import annotations

import asyncio

import pytest

from aistrata.gateway.state import FallbackState, MemoryState, RedisState, SharedState
from aistrata.gateway.state.base import WindowResult

from .conftest import Clock


async def add(state: SharedState, key: str, amount: int, limit: int) -> WindowResult:
    return (await state.admit([(key, amount, limit)], 60, [], "rid", 0, 60)).windows[0]


async def adjust(state: SharedState, key: str, slot: int, delta: int) -> None:
    await state.release([(key, slot, delta)], 60, [], "rid", 0)


async def test_window_admits_up_to_the_limit_and_says_when_to_retry(state: SharedState, clock: Clock) -> None:
    first = await add(state, "w", 6, 10)
    assert (first.allowed, first.used) == (True, 6)
    clock.advance(30)
    assert (await add(state, "w", 4, 10)).used == 10
    refused = await add(state, "w", 1, 10)
    assert not refused.allowed and refused.used == 10
    assert 30 <= refused.retry_after <= 36  # the first 6 slide out 60-66 s after they came in
    clock.advance(refused.retry_after)
    assert (await add(state, "w", 1, 10)).used == 5
    assert await state.window_used("w", 60) == 5


async def test_window_never_fits_more_than_the_limit(state: SharedState) -> None:
    result = await add(state, "w", 11, 10)
    assert not result.allowed and result.retry_after == -1


async def test_window_adjust_corrects_an_estimate_until_it_slid_out(state: SharedState, clock: Clock) -> None:
    taken = await add(state, "w", 8, 10)
    await adjust(state, "w", taken.slot, -5)
    assert await state.window_used("w", 60) == 3
    clock.advance(67)  # past 1.1 windows: surely slid out
    await adjust(state, "w", taken.slot, 100)  # too late: nothing to correct
    assert await state.window_used("w", 60) == 0


async def test_windows_are_added_all_or_nothing(state: SharedState) -> None:
    """One request's windows (say requests and tokens per minute) move together: a refusal
    by any of them adds to none."""
    await state.admit([("req", 1, 5), ("tok", 90, 100)], 60, [], "a", 0, 60)
    refused = (await state.admit([("req", 1, 5), ("tok", 20, 100)], 60, [], "b", 0, 60)).windows
    assert [w.allowed for w in refused] == [True, False]
    assert refused[1].used == 90 and refused[1].retry_after > 0
    assert (await state.window_used("req", 60), await state.window_used("tok", 60)) == (1, 90)
    admitted = (await state.admit([("req", 1, 5), ("tok", 10, 100)], 60, [], "c", 0, 60)).windows
    assert [(w.allowed, w.used) for w in admitted] == [(True, 2), (True, 100)]
    await state.release([("req", admitted[0].slot, -1), ("tok", admitted[1].slot, -60)], 60, [], "c", 0)
    assert (await state.window_used("req", 60), await state.window_used("tok", 60)) == (1, 40)


async def test_window_checks_and_adds_atomically(state: SharedState) -> None:
    results = await asyncio.gather(*(add(state, "w", 1, 10) for _ in range(50)))
    assert sum(r.allowed for r in results) == 10
    assert await state.window_used("w", 60) == 10


async def test_bucket_refills_continuously(state: SharedState, clock: Clock) -> None:
    for _ in range(6):
        assert (await state.bucket_take("b", 1, 6, 0.1)).allowed
    refused = await state.bucket_take("b", 1, 6, 0.1)
    assert not refused.allowed and refused.retry_after == pytest.approx(10, abs=0.01)
    clock.advance(10)
    assert (await state.bucket_take("b", 1, 6, 0.1)).allowed  # one token back after 10 s...
    assert not (await state.bucket_take("b", 1, 6, 0.1)).allowed  # ...and only one
    assert (await state.bucket_take("b", 7, 6, 0.1)).retry_after == -1


async def test_bucket_force_and_refund(state: SharedState) -> None:
    await state.bucket_take("b", 5, 10, 1.0)
    debt = await state.bucket_take("b", 8, 10, 1.0, force=True)
    assert debt.allowed and debt.level == pytest.approx(-3, abs=0.01)
    await state.bucket_take("b", -20, 10, 1.0, force=True)  # a refund never overfills
    assert await state.bucket_level("b", 10, 1.0) == pytest.approx(10)


async def test_slots_are_exclusive_released_and_expire(state: SharedState, clock: Clock) -> None:
    held = await asyncio.gather(*(state.slot_acquire("c", 3, 30) for _ in range(10)))
    assert sum(s.allowed for s in held) == 3
    await state.slot_release("c", next(s.token for s in held if s.allowed))
    assert await state.slots_used("c") == 2
    assert (await state.slot_acquire("c", 3, 30)).allowed
    clock.advance(31)  # the holder crashed: its slots free themselves
    assert await state.slots_used("c") == 0


async def test_reserve_never_lets_holds_pass_the_cap(state: SharedState) -> None:
    results = await asyncio.gather(*(state.reserve("r", f"id{i}", 100, 1000, 60) for i in range(50)))
    assert sum(r.allowed for r in results) == 10
    assert await state.reservation("r") == (0, 1000)


async def test_settle_replaces_the_hold_with_the_true_amount(state: SharedState) -> None:
    await state.reserve("r", "a", 100, 150, 60)
    assert not (await state.reserve("r", "b", 100, 150, 60)).allowed
    assert await state.settle("r", "a", 30) == 30
    assert await state.reservation("r") == (30, 0)
    second = await state.reserve("r", "b", 100, 150, 60)
    assert second.allowed and (second.used, second.reserved) == (30, 100)


async def test_a_crashed_callers_hold_expires(state: SharedState, clock: Clock) -> None:
    await state.reserve("r", "lost", 100, 100, hold_s=60)
    clock.advance(61)
    assert (await state.reserve("r", "next", 100, 100, hold_s=60)).allowed


async def test_admit_counts_windows_and_holds_all_or_nothing(state: SharedState) -> None:
    """A request's windows and budget holds in one step: whichever counter has no room, none
    of the others is charged."""
    windows = [("req", 1, 3), ("tok", 40, 100)]
    holds = [("team", 500, None), ("org", 2_000, 3600.0)]
    first = await state.admit(windows, 60, holds, "a", 400, 60)
    assert first.refused == -1 and [(w.allowed, w.used) for w in first.windows] == [(True, 1), (True, 40)]
    no_room = await state.admit(windows, 60, holds, "b", 400, 60)  # the team budget holds 400 of 500
    assert (no_room.refused, no_room.used, no_room.reserved) == (0, 0, 400)
    assert [w.allowed for w in no_room.windows] == [True, True]
    assert (await state.window_used("req", 60), await state.window_used("tok", 60)) == (1, 40)
    assert await state.reservation("org") == (0, 400)
    too_many = await state.admit([("req", 1, 3), ("tok", 70, 100)], 60, holds, "c", 50, 60)
    assert too_many.refused == -1 and [w.allowed for w in too_many.windows] == [True, False]
    assert too_many.windows[1].retry_after > 0
    assert (await state.reservation("team"), await state.reservation("org")) == ((0, 400), (0, 400))

    assert await state.release([("tok", first.windows[1].slot, -25)], 60, [("team", None), ("org", 3600.0)],
                               "a", 120) == [120, 120]
    assert await state.window_used("tok", 60) == 15
    assert (await state.reservation("team"), await state.reservation("org")) == ((120, 0), (120, 0))


async def test_admit_never_lets_holds_pass_the_cap(state: SharedState) -> None:
    results = await asyncio.gather(*(state.admit([("w", 1, 1000)], 60, [("r", 1000, None)], f"id{i}", 100, 60)
                                     for i in range(50)))
    assert sum(r.refused == -1 for r in results) == 10
    assert (await state.window_used("w", 60), await state.reservation("r")) == (10, (0, 1000))


async def test_counters_and_values(state: SharedState) -> None:
    assert await state.get("n") == 0
    assert await state.incr("n", 2) == 2
    assert await state.incr("n", 3, ttl_s=60) == 5
    assert await state.get("n") == 5
    assert await state.get_json("v") is None
    await state.set_json("v", {"state": "open", "until": 12.5}, ttl_s=60)
    assert await state.get_json("v") == {"state": "open", "until": 12.5}
    await state.delete("v")
    assert await state.get_json("v") is None
    assert state.health()["ok"] is True


async def test_fallback_serves_locally_and_retries_redis(redis_url: str, redis_prefix: str) -> None:
    t = Clock(0)
    state = FallbackState(RedisState("redis://127.0.0.1:1/0", timeout_s=0.2), MemoryState(), retry_s=5, monotonic=t)
    assert (await state.incr("n")) == 1  # Redis refused: counted in process
    assert state.health() == {"backend": "redis", "ok": False, "fallback": "local", "error": "ConnectionError",
                              "down_for_s": 0.0}
    state.primary = RedisState(redis_url, prefix=redis_prefix)  # Redis is back...
    assert (await state.incr("n")) == 2  # ...but not retried before retry_s
    t.advance(5)
    assert (await state.incr("n")) == 1 and state.health()["ok"]
    await state.close()
