"""Pre-call estimates: input tokens, the most output a call may produce, and the worst case
it may cost; and, after the call, what it truly cost."""

from __future__ import annotations

import math
from typing import Any

from ...core import ChatRequest, EmbeddingRequest, Usage
from ...providers.pricing import deployment_rates, price, price_override
from ...providers.base import Deployment
from ...providers.tokens import count_tokens
from ..context import RequestContext

Request = ChatRequest | EmbeddingRequest
# ~4 characters a token is a guess for non-OpenAI models; pad it so a worst case stays one.
INEXACT_MARGIN = 1.25
NANO = 1_000_000_000  # state counters hold money as integer nano-dollars (exact in Lua)


def input_tokens(req: Request, model: str, memo: dict[Any, Any] | None = None) -> int:
    """Input tokens `req` costs on `model`; `memo` (the request context's) keeps the count
    for the other stages that need it."""
    if memo is not None:
        key = ("input_tokens", model)
        n = memo.get(key)
        if n is None:
            n = memo[key] = input_tokens(req, model)
        return n
    if isinstance(req, EmbeddingRequest):
        counts = [count_tokens(model, text) for text in req.inputs]
        n, exact = sum(c.count for c in counts), all(c.exact for c in counts)
    else:
        c = count_tokens(model, req.messages)
        n, exact = c.count, c.exact
    return n if exact else math.ceil(n * INEXACT_MARGIN)


def max_output_tokens(req: Request, dep: Deployment | None, default: int) -> int:
    if isinstance(req, EmbeddingRequest):
        return 0
    if req.max_tokens is not None:
        return req.max_tokens * max(req.n, 1)
    cap = dep.info.get("max_output_tokens") if dep else None
    return int(cap) * max(req.n, 1) if cap else default * max(req.n, 1)


def worst_case_usd(req: Request, candidates: list[Deployment], default_max_tokens: int,
                   memo: dict[Any, Any] | None = None) -> float | None:
    """The most this request can cost on any deployment that may serve it; None when a
    candidate's price is unknown (so the worst case is too)."""
    worst = 0.0
    for dep in candidates:
        n_in = input_tokens(req, dep.model, memo if memo is not None else {})
        n_out = max_output_tokens(req, dep, default_max_tokens)
        rates = deployment_rates(dep)
        if rates is not None:
            cost = n_in * rates.input + n_out * rates.output
        else:
            found = price(dep.provider, dep.model, Usage(input_tokens=n_in, output_tokens=n_out), price_override(dep))
            if found is None:
                return None
            cost = found.cost_usd
        if cost > worst:
            worst = cost
    return worst


def actual_usd(ctx: RequestContext) -> float | None:
    """What the call cost on the deployment that answered; 0 when none did."""
    if ctx.deployment is None or (ctx.usage.input_tokens == 0 and ctx.usage.output_tokens == 0):
        return 0.0
    found = ctx.cost()
    return None if found is None else found.cost_usd


def to_nano(usd: float, up: bool = False) -> int:
    return math.ceil(usd * NANO - 1e-6) if up else round(usd * NANO)
