"""Routing strategies: pick one deployment from a group's candidates.

- `round-robin`: each in turn, per group, ignoring weights.
- `weighted` (LiteLLM `simple-shuffle`): random, proportional to each deployment's `weight`.
- `least-busy`: fewest requests in flight here; ties are broken at random.
- `latency-based`: power of two choices: two candidates drawn at random, the one with the
  lower moving average wins (time to first token for streams, total latency otherwise;
  unmeasured counts as 0 so it gets measured); ties go to the less busy one.
- `cost-based`: the cheapest for this request (its input tokens and `max_tokens` at each
  deployment's prices from `model_info` overrides or genai-prices); unknown prices rank last;
  ties go to the less busy one.

Candidates have already been through conditions and capability filtering. Randomness comes
from an injected `random.Random` so tests are deterministic.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Protocol, Sequence

from ...core import Usage
from ...providers.pricing import price, price_override
from ...providers.base import Deployment
from .capability import RequestProfile
from .stats import StatsBook

PRICE_SAMPLE = 1_000_000  # tokens priced once per deployment to get per-token rates
DEFAULT_OUTPUT_TOKENS = 256  # expected answer length when the request sets no max_tokens


class Strategy(Protocol):
    def pick(self, group: str, candidates: Sequence[Deployment], profile: RequestProfile) -> Deployment: ...


class RoundRobin:
    def __init__(self) -> None:
        self._turns: dict[str, itertools.count[int]] = {}

    def pick(self, group: str, candidates: Sequence[Deployment], profile: RequestProfile) -> Deployment:
        turn = self._turns.get(group)
        if turn is None:
            turn = self._turns[group] = itertools.count()
        return candidates[next(turn) % len(candidates)]


class Weighted:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, group: str, candidates: Sequence[Deployment], profile: RequestProfile) -> Deployment:
        return self.rng.choices(candidates, weights=[d.weight for d in candidates])[0]


class LeastBusy:
    def __init__(self, stats: StatsBook, rng: random.Random) -> None:
        self.stats = stats
        self.rng = rng

    def pick(self, group: str, candidates: Sequence[Deployment], profile: RequestProfile) -> Deployment:
        loads = [self.stats(d).in_flight for d in candidates]
        low = min(loads)
        return self.rng.choice([d for d, n in zip(candidates, loads) if n == low])


class LatencyBased:
    def __init__(self, stats: StatsBook, rng: random.Random) -> None:
        self.stats = stats
        self.rng = rng

    def pick(self, group: str, candidates: Sequence[Deployment], profile: RequestProfile) -> Deployment:
        a, b = candidates if len(candidates) == 2 else self.rng.sample(candidates, 2)
        sa, sb = self.stats(a), self.stats(b)
        key_a = (sa.score(profile.stream), sa.in_flight)
        key_b = (sb.score(profile.stream), sb.in_flight)
        return b if key_b < key_a else a


class CostBased:
    def __init__(self, stats: StatsBook) -> None:
        self.stats = stats
        self._rates: dict[str, tuple[float, float]] = {}

    def rates(self, dep: Deployment) -> tuple[float, float]:
        """(USD per input token, USD per output token); infinite when unknown."""
        found = self._rates.get(dep.id)
        if found is None:
            override = price_override(dep)
            cin = price(dep.provider, dep.model, Usage(input_tokens=PRICE_SAMPLE), override)
            cout = price(dep.provider, dep.model, Usage(output_tokens=PRICE_SAMPLE), override)
            found = (math.inf, math.inf) if cin is None or cout is None else (
                cin.cost_usd / PRICE_SAMPLE, cout.cost_usd / PRICE_SAMPLE)
            self._rates[dep.id] = found
        return found

    def cost(self, dep: Deployment, profile: RequestProfile) -> float:
        rin, rout = self.rates(dep)
        if math.isinf(rin):
            return math.inf
        return rin * profile.input_tokens(dep.model) + rout * (profile.output_tokens or DEFAULT_OUTPUT_TOKENS)

    def pick(self, group: str, candidates: Sequence[Deployment], profile: RequestProfile) -> Deployment:
        return min(candidates, key=lambda d: (self.cost(d, profile), self.stats(d).in_flight))


def build_strategies(stats: StatsBook, rng: random.Random) -> dict[str, Strategy]:
    """One instance of each strategy, keyed by canonical name (see `policy.STRATEGY_NAMES`)."""
    weighted = Weighted(rng)
    return {
        "round-robin": RoundRobin(),
        "weighted": weighted,
        "least-busy": LeastBusy(stats, rng),
        "latency-based": LatencyBased(stats, rng),
        "cost-based": CostBased(stats),
        "complexity-based": weighted,  # a complexity group's own deployments, if any, share load by weight
    }
