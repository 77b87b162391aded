"""Model resolution: the name a client asks for -> the deployments that can serve it.

Order: alias -> configured model group -> `<provider>/<model>` for a provider found in the
environment (zero-config). Picking among a group's deployments is weighted round-robin
here; richer strategies plug in as `Strategy` objects.
"""

from __future__ import annotations

import itertools
from typing import Mapping, Protocol

from ..core import ErrorKind, GatewayError
from ..providers.base import Deployment
from ..providers.registry import Registry
from .config import Settings, make_deployment, split_model


class Strategy(Protocol):
    def pick(self, group: str, candidates: list[Deployment]) -> Deployment: ...


class WeightedRoundRobin:
    """Smooth weighted round-robin (nginx's): deterministic, spreads heavier deployments evenly."""

    def __init__(self) -> None:
        self._current: dict[str, float] = {}

    def pick(self, group: str, candidates: list[Deployment]) -> Deployment:
        if len(candidates) == 1:
            return candidates[0]
        total = 0.0
        best: Deployment | None = None
        for d in candidates:
            w = self._current.get(d.id, 0.0) + d.weight
            self._current[d.id] = w
            total += d.weight
            if best is None or w > self._current[best.id]:
                best = d
        assert best is not None
        self._current[best.id] -= total
        return best


class Router:
    def __init__(self, settings: Settings, registry: Registry, strategy: Strategy | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.strategy = strategy or WeightedRoundRobin()
        self._discovered: dict[str, list[Deployment]] = {}

    @property
    def groups(self) -> Mapping[str, list[Deployment]]:
        return self.settings.groups

    def resolve(self, model: str) -> list[Deployment]:
        seen = set()
        while model in self.settings.aliases and model not in seen:  # aliases may chain
            seen.add(model)
            model = self.settings.aliases[model]
        group = self.settings.groups.get(model) or self._discovered.get(model)
        if group:
            return group
        group = self._discover(model)
        self._discovered[model] = group
        return group

    def pick(self, model: str) -> Deployment:
        candidates = self.resolve(model)
        return self.strategy.pick(model, candidates)

    def _discover(self, model: str) -> list[Deployment]:
        split = split_model(model, self.registry)
        if split is None:
            raise GatewayError(ErrorKind.not_found, f"The model '{model}' does not exist or is not configured", param="model")
        vendor = self.registry.vendor(split[0])
        assert vendor is not None
        env = self.settings.env
        if vendor.key_env and not env.get(vendor.key_env) and not (vendor.base_env and env.get(vendor.base_env)):
            raise GatewayError(
                ErrorKind.not_found,
                f"The model '{model}' needs provider {vendor.name}, which is not configured: set {vendor.key_env}",
                param="model",
            )
        return [make_deployment(self.registry, model, 0, {"model": model}, {}, env)]

    def discoverable_vendors(self) -> list[str]:
        """Vendors whose models can be listed: credentials in the environment, or none needed
        (local servers such as Ollama, LM Studio, llama.cpp, and the embedded models)."""
        env = self.settings.env
        return [
            v.name for v in self.registry.vendors.values()
            if v.discoverable and (
                (v.key_env and env.get(v.key_env)) or (v.base_env and env.get(v.base_env))
                or (not v.key_env and v.api_base)
            )
        ]


def all_deployments(groups: Mapping[str, list[Deployment]]) -> list[Deployment]:
    return list(itertools.chain.from_iterable(groups.values()))
