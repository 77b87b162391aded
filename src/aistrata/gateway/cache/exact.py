"""The exact-match response cache: the pipeline's `ResponseCache` over a byte store.

What is cached: whole (non-streamed) chat answers, whatever their temperature, as LiteLLM
does — a caller who wants a fresh sample says `no-cache`. What is not:

- errors (the pipeline only offers successful answers) and answers with a choice that
  finished in `error`, or with no choices: replaying a failure would pin it for the TTL;
- requests with `n > 1`: asking for several samples is asking for variety, and handing the
  same set back on every call would silently defeat best-of-n and self-consistency;
- streamed requests, which do not pass through the cache today.

A hit answers with the stored response, usage included as the client first saw it, but
records no usage of its own (no provider was called, so limits and budgets are not
charged); `ctx.saved_usd` holds what the original call cost on the deployment that made it.
That cost is computed when the answer is stored: a price lookup takes tens of microseconds,
noise next to the provider call a miss just waited for, but most of a hit's own cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ...core import ChatRequest, ChatResponse
from ..context import RequestContext
from .codec import Entry, decode_entry, encode_entry
from .keys import CacheControls, NamespaceBy, cache_key, namespace_prefix, tenant
from .memory import Store

HEADER = b"x-aistrata-cache"
HIT, MISS, BYPASS = b"hit", b"miss", b"bypass"


@dataclass(slots=True)
class CacheStats:
    """This node's counters since start (the request log holds every node's hits)."""

    hits: int = 0
    misses: int = 0
    bypasses: int = 0
    stores: int = 0
    saved_usd: float = 0.0


class ExactCache:
    def __init__(
        self, store: Store, *, ttl: float = 300.0, namespace_by: NamespaceBy = "team",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.namespace_by = namespace_by
        self.wall_clock = wall_clock
        self.stats = CacheStats()

    def _key(self, req: ChatRequest, ctx: RequestContext, controls: CacheControls) -> str:
        """Computed once per request: the lookup's key is the store's."""
        key = ctx.estimates.get("cache_key")
        if key is None:
            key = ctx.estimates["cache_key"] = cache_key(req, tenant(ctx.principal, self.namespace_by), controls.namespace)
        return key

    async def get(self, req: ChatRequest, ctx: RequestContext) -> ChatResponse | None:
        controls = CacheControls.parse(req.options.get("cache"))
        if req.n > 1 or controls.no_cache:
            self.stats.bypasses += 1
            ctx.headers.append((HEADER, BYPASS))
            return None
        data = await self.store.get(self._key(req, ctx, controls))
        entry = decode_entry(data) if data is not None else None
        if entry is not None and controls.s_maxage is not None and self.wall_clock() - entry.stored_at > controls.s_maxage:
            entry = None  # stored, but older than this caller accepts
        if entry is None:
            self.stats.misses += 1
            ctx.headers.append((HEADER, MISS))
            return None
        ctx.cache_hit = True
        ctx.saved_usd = entry.cost_usd
        ctx.response = entry.response  # traces show what was answered, as for a call
        self.stats.hits += 1
        self.stats.saved_usd += ctx.saved_usd or 0.0
        ctx.headers.append((HEADER, HIT))
        return entry.response

    async def put(self, req: ChatRequest, ctx: RequestContext, resp: ChatResponse) -> None:
        controls = CacheControls.parse(req.options.get("cache"))
        dep = ctx.deployment
        if controls.no_store or req.n > 1 or dep is None or not _storable(resp):
            return
        cost = ctx.cost()  # the pipeline has set ctx.usage from this answer
        entry = Entry(resp, dep.provider, dep.model, self.wall_clock(), cost.cost_usd if cost is not None else None)
        await self.store.set(self._key(req, ctx, controls), encode_entry(entry), controls.ttl or self.ttl)
        self.stats.stores += 1

    async def flush(self, namespace: str | None = None) -> int:
        """Drop every entry, or those stored under one per-request namespace."""
        return await self.store.flush("" if namespace is None else namespace_prefix(namespace))

    async def describe(self) -> dict[str, Any]:
        s = self.stats
        return {
            "backend": self.store.name, "ttl": self.ttl, "namespace_by": self.namespace_by,
            "entries": await self.store.count(), "hits": s.hits, "misses": s.misses, "bypasses": s.bypasses,
            "stores": s.stores, "saved_usd": round(s.saved_usd, 10), "health": self.health(),
        }

    def health(self) -> dict[str, Any]:
        return self.store.health()


def _storable(resp: ChatResponse) -> bool:
    return bool(resp.choices) and all(c.finish_reason != "error" for c in resp.choices)
