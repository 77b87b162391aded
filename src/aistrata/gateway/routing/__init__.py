"""Routing strategies and resilience: which deployment serves a request, and what happens when
it fails.

    policy       the config: per-group strategy, retries, fallbacks, timeouts; routes; breaker
    conditions   condition routes (team, user, key, tags, metadata -> another group)
    complexity   the local prompt classifier behind `complexity-based` groups
    capability   filtering by context window, tools, vision, JSON schema
    strategies   round-robin, weighted, least-busy, latency-based, cost-based
    stats        in-flight counts, latency averages, AIMD adaptive limits
    breaker      the circuit breaker state machine behind the `BreakerStore` protocol
    shared_breakers  the same breakers in Redis, shared by every replica
    attempts     one request's attempts: retries, backoff, fallback chains
    dispatcher   the `Dispatcher` that ties them together
    views        what the management API shows
"""

from __future__ import annotations

from typing import Any

from ...providers.http import HttpClient
from ...providers.registry import Registry
from ..config import Settings
from ..dispatch import Dispatcher
from ..router import Router
from ..state import FallbackState
from .breaker import BreakerStore, BreakerView, InProcessBreakers, Verdict
from .dispatcher import RoutingDispatcher
from .policy import RoutingPolicy, load_policy
from .shared_breakers import SharedBreakers

__all__ = ["BreakerStore", "BreakerView", "InProcessBreakers", "RoutingDispatcher", "RoutingPolicy",
           "SharedBreakers", "Verdict", "build_dispatcher", "load_policy"]


def build_dispatcher(settings: Settings, router: Router, registry: Registry, http: HttpClient, state: Any) -> Dispatcher:
    """The routing dispatcher for `settings`. Breaker state is in process, or in Redis when
    `state` is (a Redis URL is set), so every replica skips the same broken deployments."""
    policy = load_policy(settings)
    for name, rule in policy.complexity.items():
        # Other stages (admission checks, budgets, the model list) resolve a complexity group
        # as its large model: the worst case is the safe estimate.
        if name not in settings.groups:
            settings.aliases.setdefault(name, rule.complex)
    breakers = SharedBreakers(policy.breaker, state) if isinstance(state, FallbackState) else None
    return RoutingDispatcher(router, registry, http, policy, breakers)
