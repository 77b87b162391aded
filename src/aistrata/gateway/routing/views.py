"""What the management API shows of routing: groups with their policies, and each
deployment's breaker, load, latency and adaptive limit."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ...providers.base import Deployment
from ..router import all_deployments
from .dispatcher import RoutingDispatcher


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def groups_view(d: RoutingDispatcher) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, deps in d.router.groups.items():
        gp = d.policy.group(name)
        out.append({"name": name, "deployments": [x.id for x in deps], **dataclasses.asdict(gp)})
    for name, rule in d.policy.complexity.items():
        if name not in d.router.groups:
            out.append({"name": name, "deployments": [], **dataclasses.asdict(d.policy.group(name)),
                        "complexity": dataclasses.asdict(rule)})
    return out


def default_view(d: RoutingDispatcher) -> dict[str, Any]:
    """The router_settings defaults that groups without their own entry use."""
    return dataclasses.asdict(d.policy.default)


def routes_view(d: RoutingDispatcher) -> list[dict[str, Any]]:
    return [{**dataclasses.asdict(r), "tags": sorted(r.tags), "metadata": dict(r.metadata)} for r in d.policy.rules]


def find_deployment(d: RoutingDispatcher, dep_id: str) -> Deployment | None:
    return next((x for x in all_deployments(d.router.groups) if x.id == dep_id), None)


async def deployment_view(d: RoutingDispatcher, dep: Deployment) -> dict[str, Any]:
    now = d.clock()
    breaker = await d.breakers.view(dep.id, now)
    stats = d.stats(dep)
    return {
        "id": dep.id, "group": dep.group, "provider": dep.provider, "model": dep.model, "weight": dep.weight,
        "breaker": {
            "state": breaker.state, "failures": breaker.failures, "opened": breaker.opened,
            "retry_in_s": None if breaker.retry_at is None else round(max(0.0, breaker.retry_at - now), 3),
        },
        "in_flight": stats.in_flight,
        "ttft_ewma_s": _round(stats.ttft_s),
        "latency_ewma_s": _round(stats.latency_s),
        "adaptive_limit": None if math.isinf(stats.limit) else stats.limit,
        "limit_ceiling": stats.ceiling,
        "rate_limited": stats.rate_limited,
    }


async def deployments_view(d: RoutingDispatcher) -> list[dict[str, Any]]:
    return [await deployment_view(d, dep) for dep in all_deployments(d.router.groups)]
