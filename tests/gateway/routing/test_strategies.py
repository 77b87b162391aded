"""Each strategy picks what it should (randomness injected, so the outcomes are fixed)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from aistrata.gateway.config import ConfigError
from aistrata.gateway.routing.capability import RequestProfile
from aistrata.gateway.routing.policy import strategy_name
from aistrata.gateway.routing.stats import StatsBook
from aistrata.gateway.routing.strategies import CostBased, LatencyBased, LeastBusy, RoundRobin, Weighted

from .helpers import chat, dep

PROFILE = RequestProfile(chat())


def test_round_robin_takes_turns_per_group() -> None:
    a, b, c = dep("a"), dep("b"), dep("c")
    rr = RoundRobin()
    assert [rr.pick("g", [a, b, c], PROFILE).id for _ in range(4)] == ["a", "b", "c", "a"]
    assert rr.pick("other", [a, b, c], PROFILE).id == "a"  # each group has its own turn


def test_weighted_follows_the_weights() -> None:
    heavy, light = dep("heavy", weight=3), dep("light", weight=1)
    w = Weighted(random.Random(7))
    counts = Counter(w.pick("g", [heavy, light], PROFILE).id for _ in range(2000))
    assert 0.70 < counts["heavy"] / 2000 < 0.80


def test_least_busy_picks_the_fewest_in_flight() -> None:
    stats = StatsBook(100)
    a, b, c = dep("a"), dep("b"), dep("c")
    stats(a).in_flight, stats(b).in_flight, stats(c).in_flight = 3, 1, 2
    assert LeastBusy(stats, random.Random(1)).pick("g", [a, b, c], PROFILE).id == "b"


def test_latency_based_prefers_the_faster_of_two() -> None:
    stats = StatsBook(100)
    fast, slow = dep("fast"), dep("slow")
    stats(fast).observe(0.2, ttft_s=0.05)
    stats(slow).observe(0.1, ttft_s=0.5)
    strategy = LatencyBased(stats, random.Random(3))
    assert strategy.pick("g", [fast, slow], PROFILE).id == "slow"  # whole answers: total latency
    assert strategy.pick("g", [fast, slow], RequestProfile(chat(), stream=True)).id == "fast"  # streams: TTFT


def test_latency_based_samples_two_and_explores_the_unmeasured() -> None:
    stats = StatsBook(100)
    deps = [dep(f"d{i}") for i in range(5)]
    for i, d in enumerate(deps[:4]):
        stats(d).observe(1.0 + i)
    picks = Counter(LatencyBased(stats, random.Random(5)).pick("g", deps, PROFILE).id for _ in range(200))
    assert picks.most_common(1)[0][0] in ("d4", "d0")  # unmeasured (0) or the fastest win their pairs
    assert "d3" not in picks  # the slowest never wins a pair


def test_cost_based_picks_the_cheapest_and_ranks_unknown_prices_last() -> None:
    stats = StatsBook(100)
    cheap = dep("cheap", input_cost_per_token=1e-7, output_cost_per_token=4e-7)
    dear = dep("dear", input_cost_per_token=5e-6, output_cost_per_token=1.5e-5)
    unknown = dep("unknown", provider="openai", model="no-such-model-xyz")
    strategy = CostBased(stats)
    assert strategy.pick("g", [unknown, dear, cheap], PROFILE).id == "cheap"
    assert strategy.pick("g", [unknown, dear], PROFILE).id == "dear"


def test_cost_based_uses_the_request_size() -> None:
    # cheap input but dear output vs the reverse: a long answer flips the choice.
    reader = dep("reader", input_cost_per_token=1e-7, output_cost_per_token=1e-4)
    writer = dep("writer", input_cost_per_token=1e-5, output_cost_per_token=1e-7)
    strategy = CostBased(StatsBook(100))
    assert strategy.pick("g", [reader, writer], RequestProfile(chat("x " * 2000, max_tokens=1))).id == "reader"
    assert strategy.pick("g", [reader, writer], RequestProfile(chat("hi", max_tokens=4000))).id == "writer"


def test_strategy_names_accept_litellm_spellings() -> None:
    assert strategy_name("simple-shuffle", "x") == "weighted"
    assert strategy_name("latency-based-routing", "x") == "latency-based"
    assert strategy_name("cost-based-routing", "x") == "cost-based"
    with pytest.raises(ConfigError):
        strategy_name("fastest-please", "x")
