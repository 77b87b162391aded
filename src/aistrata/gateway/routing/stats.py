"""Live per-deployment figures the strategies and the adaptive limit read: requests in
flight, moving averages of time to first token and total latency, and the AIMD concurrency
limit that a provider's 429s shrink and successes grow back.

These are this process's view (load and latency are local facts); breaker state, which must
agree across replicas, lives behind `BreakerStore` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...providers.base import Deployment

EWMA_ALPHA = 0.3  # weight of the newest sample: reacts within a few requests, smooths one-offs


def ewma(old: float | None, sample: float) -> float:
    return sample if old is None else old + EWMA_ALPHA * (sample - old)


@dataclass(slots=True)
class DeploymentStats:
    ceiling: float
    limit: float = math.inf  # admitted concurrency; starts at the ceiling
    in_flight: int = 0
    ttft_s: float | None = None
    latency_s: float | None = None
    last_cut: float = -math.inf  # clock time of the last multiplicative decrease
    rate_limited: int = 0

    def __post_init__(self) -> None:
        self.limit = min(self.limit, self.ceiling)

    def admits(self) -> bool:
        return self.in_flight < self.limit

    def observe(self, total_s: float, ttft_s: float | None = None) -> None:
        self.latency_s = ewma(self.latency_s, total_s)
        if ttft_s is not None:
            self.ttft_s = ewma(self.ttft_s, ttft_s)

    def succeeded(self) -> None:
        """Additive increase: one more admitted request per success, up to the ceiling."""
        if self.limit < self.ceiling:
            self.limit = min(self.ceiling, self.limit + 1)

    def throttled(self, started: float, now: float) -> None:
        """Multiplicative decrease on a provider 429. Requests that were already in flight at
        the last cut report the same overload, so they do not cut again (one cut per round)."""
        self.rate_limited += 1
        if started < self.last_cut:
            return
        self.limit = max(1.0, math.floor(min(self.limit, self.in_flight + 1) / 2))
        self.last_cut = now

    def score(self, stream: bool) -> float:
        """Latency estimate for latency-based routing: time to first token for streams (what
        the user waits for), total latency otherwise; unknown counts as 0 so new deployments
        get tried."""
        first = self.ttft_s if stream else self.latency_s
        if first is not None:
            return first
        other = self.latency_s if stream else self.ttft_s
        return other if other is not None else 0.0


class StatsBook:
    """Stats per deployment id, created on first use."""

    def __init__(self, default_ceiling: int) -> None:
        self.default_ceiling = default_ceiling
        self._stats: dict[str, DeploymentStats] = {}

    def __call__(self, dep: Deployment) -> DeploymentStats:
        stats = self._stats.get(dep.id)
        if stats is None:
            ceiling = dep.info.get("max_parallel_requests") or self.default_ceiling
            stats = self._stats[dep.id] = DeploymentStats(float(ceiling))
        return stats

    def get(self, dep_id: str) -> DeploymentStats | None:
        return self._stats.get(dep_id)
