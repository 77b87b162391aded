"""The breaker's state machine and the AIMD adaptive limit, on an explicit clock.

The breaker tests are a conformance suite: each runs on `InProcessBreakers` and on the Redis
`SharedBreakers` (fixture `breakers` in conftest.py), which must behave alike."""

from __future__ import annotations

import math

from aistrata.gateway.routing.breaker import BreakerStore, Verdict
from aistrata.gateway.routing.stats import DeploymentStats


async def _open(b: BreakerStore, at: float = 0.0) -> None:
    for i in range(3):
        await b.failed("d", at + i, probe=False)


async def test_failures_within_the_window_open_it(breakers: BreakerStore) -> None:
    await breakers.failed("d", 0, probe=False)
    await breakers.failed("d", 5, probe=False)
    assert await breakers.admit("d", 6) is Verdict.admit
    await breakers.failed("d", 20, probe=False)  # three failures, but not within 10 s
    assert await breakers.admit("d", 21) is Verdict.admit
    await breakers.failed("d", 21, probe=False)
    await breakers.failed("d", 22, probe=False)  # 20, 21, 22
    assert await breakers.admit("d", 22) is Verdict.refuse
    assert (await breakers.view("d", 22)).state == "open"


async def test_one_probe_after_the_cool_down_closes_it(breakers: BreakerStore) -> None:
    await _open(breakers)
    assert await breakers.admit("d", 31) is Verdict.refuse  # opened at 2: cools until 32
    assert (await breakers.view("d", 33)).state == "half_open"
    assert await breakers.admit("d", 33) is Verdict.probe
    assert await breakers.admit("d", 33.1) is Verdict.refuse  # only one probe at a time
    await breakers.succeeded("d", 34, probe=True)
    assert await breakers.admit("d", 34) is Verdict.admit
    assert (await breakers.view("d", 34)).state == "closed"


async def test_a_failed_probe_reopens_for_a_full_cool_down(breakers: BreakerStore) -> None:
    await _open(breakers)
    assert await breakers.admit("d", 40) is Verdict.probe
    await breakers.failed("d", 41, probe=True)
    assert await breakers.admit("d", 70) is Verdict.refuse
    assert await breakers.admit("d", 71) is Verdict.probe
    view = await breakers.view("d", 71)
    assert view.opened == 2


async def test_a_lost_probe_frees_its_slot(breakers: BreakerStore) -> None:
    await _open(breakers)
    assert await breakers.admit("d", 40) is Verdict.probe
    assert await breakers.admit("d", 99) is Verdict.refuse
    assert await breakers.admit("d", 101) is Verdict.probe  # the lease (60 s) ran out
    await breakers.abandoned("d", probe=True)
    assert await breakers.admit("d", 101.5) is Verdict.probe  # a cancelled probe hands over at once


async def test_late_failures_do_not_touch_an_open_breaker_and_reset_closes_it(breakers: BreakerStore) -> None:
    await _open(breakers)
    await breakers.failed("d", 31, probe=False)  # admitted before it opened
    assert await breakers.admit("d", 33) is Verdict.probe  # the cool-down was not extended
    await breakers.reset("d")
    assert await breakers.admit("d", 33) is Verdict.admit


def test_aimd_halves_once_per_round_and_recovers_by_one() -> None:
    s = DeploymentStats(ceiling=16)
    assert s.limit == 16
    s.in_flight = 8
    s.throttled(started=1.0, now=2.0)
    assert s.limit == 4  # half of what was in flight (plus the failed one)
    s.throttled(started=1.5, now=2.1)  # in flight before the cut: same overload, no second cut
    assert s.limit == 4
    s.in_flight = 4
    assert not s.admits()
    s.succeeded()
    assert s.limit == 5 and s.admits()
    for _ in range(50):
        s.succeeded()
    assert s.limit == 16


def test_stats_scores() -> None:
    s = DeploymentStats(ceiling=math.inf)
    assert s.score(stream=True) == 0.0
    s.observe(1.0, ttft_s=0.2)
    s.observe(2.0, ttft_s=0.4)
    assert math.isclose(s.latency_s or 0, 1.3) and math.isclose(s.ttft_s or 0, 0.26)
    assert s.score(stream=True) == s.ttft_s and s.score(stream=False) == s.latency_s
