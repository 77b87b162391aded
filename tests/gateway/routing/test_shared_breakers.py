"""What only the Redis breakers have: one state for several replicas on Redis's clock, no round
trip for a closed breaker, and the in-process fallback while Redis is unreachable.
(Their state machine is checked by the conformance suite in test_breaker_and_limits.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from aistrata.gateway.routing.breaker import Verdict
from aistrata.gateway.routing.policy import BreakerPolicy
from aistrata.gateway.routing.shared_breakers import SharedBreakers
from aistrata.gateway.state import FallbackState, MemoryState, RedisState

from .conftest import shared_breakers

QUICK = BreakerPolicy(allowed_fails=2, window_s=10, cooldown_s=0.3, probe_lease_s=60)


@pytest_asyncio.fixture(loop_scope="function")
async def replicas(redis_url: str, redis_prefix: str) -> AsyncIterator[list[SharedBreakers]]:
    """Two replicas' stores on one Redis and Redis's clock."""
    stores = [SharedBreakers(QUICK, FallbackState(RedisState(redis_url, prefix=redis_prefix), MemoryState()))
              for _ in range(2)]
    yield stores
    for s in stores:
        await s.state.close()


async def test_replicas_share_one_breaker(replicas: list[SharedBreakers]) -> None:
    a, b = replicas
    assert await b.admit("d", time.monotonic()) is Verdict.admit  # B now holds a copy: closed
    for _ in range(2):
        await a.failed("d", time.monotonic(), probe=False)
    assert await a.admit("d", time.monotonic()) is Verdict.refuse
    await asyncio.sleep(b.refresh_s)  # B's copy goes stale and is re-read
    assert await b.admit("d", time.monotonic()) is Verdict.refuse
    view = await b.view("d", time.monotonic())
    assert view.state == "open" and view.opened == 1 and view.retry_at is not None

    await asyncio.sleep(QUICK.cooldown_s)
    verdicts = await asyncio.gather(*(s.admit("d", time.monotonic()) for s in (a, b, a, b)))
    assert sorted(v.value for v in verdicts) == ["probe", "refuse", "refuse", "refuse"]  # one probe in all
    prober = (a, b)[[v.value for v in verdicts].index("probe") % 2]
    await prober.succeeded("d", time.monotonic(), probe=True)
    await asyncio.sleep(b.refresh_s)
    assert {await s.admit("d", time.monotonic()) for s in (a, b)} == {Verdict.admit}


async def test_a_closed_breaker_admits_without_a_round_trip(replicas: list[SharedBreakers]) -> None:
    store = replicas[0]
    calls = 0
    script = store._admit

    async def counted(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await script(**kwargs)

    store._admit = counted  # type: ignore[assignment]
    for _ in range(100):
        assert await store.admit("d", time.monotonic()) is Verdict.admit
    assert calls == 1  # the first one read the state; the copy served the rest


async def test_without_redis_it_breaks_circuits_locally() -> None:
    store = shared_breakers("redis://127.0.0.1:1/0", "aistrata:test:", server_time=False)
    try:
        for t in (0, 1, 2):
            await store.failed("d", t, probe=False)
        assert store.state.degraded and store.state.health()["fallback"] == "local"
        assert await store.admit("d", 3) is Verdict.refuse
        assert (await store.view("d", 3)).state == "open"
    finally:
        await store.state.close()
