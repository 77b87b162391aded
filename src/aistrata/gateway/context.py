"""What the gateway knows about one request while it runs; it becomes the request record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..core import GatewayError, Usage
from ..providers.base import Deployment
from ..providers.pricing import Price, deployment_price
from .auth import Principal


@dataclass(slots=True)
class RequestContext:
    id: str
    ingress: str                      # "openai" | "anthropic"
    endpoint: str                     # "chat" | "messages" | "embeddings"
    principal: Principal
    started: float = field(default_factory=time.perf_counter)
    ts_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    requested_model: str = ""
    stream: bool = False
    deployment: Deployment | None = None
    upstream_s: float = 0.0           # time spent waiting on the provider
    first_token_s: float | None = None
    usage: Usage = field(default_factory=Usage)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    error: GatewayError | None = None
    # Response headers stages add (rate-limit state, cache status), sent with the answer.
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    cache_hit: bool = False
    saved_usd: float | None = None
    attempts: int = 0
    route: dict[str, Any] = field(default_factory=dict)  # how the deployment was chosen
    # Trace context: the client's (W3C `traceparent`, `x-aistrata-trace-id`) or a new one.
    trace_id: str | None = None
    parent_span_id: str | None = None
    session_id: str | None = None
    # What was asked and answered (neutral types), for traces; streams are reassembled.
    request: Any = None
    response: Any = None
    # Pre-call estimates stages share (input tokens per model), so each is computed once.
    estimates: dict[Any, Any] = field(default_factory=dict)
    _cost: tuple[Any, Any, Price | None] | None = field(default=None, repr=False)

    def cost(self) -> Price | None:
        """What the call cost on the deployment that answered (None: no deployment, or its
        price is unknown). Priced once for all who ask (budgets, cache, the request record)."""
        if not self.priced():
            dep = self.deployment
            self._cost = (dep, self.usage, deployment_price(dep, self.usage) if dep is not None else None)
        return self._cost[2]  # type: ignore[index]

    def priced(self) -> bool:
        """Whether `cost()` is at hand for the present deployment and usage."""
        memo = self._cost
        return memo is not None and memo[0] is self.deployment and memo[1] is self.usage

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def overhead_ms(self) -> float:
        """Time the gateway itself added so far: everything but the wait on the provider."""
        return max(0.0, (self.elapsed_s() - self.upstream_s) * 1000)
