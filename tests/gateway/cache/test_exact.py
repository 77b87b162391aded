"""The response cache over each store: hits, misses, per-request controls, tenants."""

from __future__ import annotations

from typing import Any

import pytest

from aistrata.core import ChatRequest, ChatResponse, Choice, Message, TextPart, ToolCallPart, Usage
from aistrata.gateway.auth import MASTER, Principal
from aistrata.gateway.cache import ExactCache
from aistrata.gateway.context import RequestContext
from aistrata.providers.base import Deployment
from aistrata.store.keys import KeyRecord

from .conftest import Backend

DEPLOYMENT = Deployment("gpt#0", "gpt", "openai", "openai_chat", "gpt-4o-mini", "http://127.0.0.1:9")
PRICED = Deployment("cheap#0", "cheap", "openai", "openai_chat", "house-model", "http://127.0.0.1:9",
                    info={"input_cost_per_token": 0.001, "output_cost_per_token": 0.002})


def request(text: str = "hello", /, **options: Any) -> ChatRequest:
    return ChatRequest("gpt", [Message("user", [TextPart(text)])], options={"cache": options} if options else {})


def answer(text: str = "hi there", finish: str = "stop") -> ChatResponse:
    msg = Message("assistant", [TextPart(text), ToolCallPart("call_1", "lookup", '{"q": 1}')])
    return ChatResponse("chatcmpl-1", "gpt-4o-mini", [Choice(0, msg, finish)], Usage(100, 20, cache_read_tokens=40), 1700000000)


def context(principal: Principal = MASTER) -> RequestContext:
    return RequestContext("req_1", "openai", "chat", principal)


def keyed(key_id: str, team: str | None = None) -> Principal:
    return Principal("key", KeyRecord(key_id, "h", "sk-ast-x", team_id=team))


async def ask(cache: ExactCache, req: ChatRequest, principal: Principal = MASTER,
              deployment: Deployment = DEPLOYMENT, resp: ChatResponse | None = None) -> tuple[ChatResponse | None, RequestContext]:
    """What the pipeline does: look up, and on a miss 'call' the deployment and offer the answer."""
    ctx = context(principal)
    hit = await cache.get(req, ctx)
    if hit is None:
        resp = resp or answer()
        ctx.deployment, ctx.usage = deployment, resp.usage
        await cache.put(req, ctx, resp)
    return hit, ctx


def status(ctx: RequestContext) -> bytes:
    value: bytes = dict(ctx.headers)[b"x-aistrata-cache"]
    return value


async def test_miss_then_hit_returns_the_stored_answer_and_what_it_saved(backend: Backend) -> None:
    cache = ExactCache(backend.store())
    first, ctx = await ask(cache, request())
    assert first is None and status(ctx) == b"miss" and not ctx.cache_hit
    hit, ctx = await ask(cache, request())
    assert hit == answer()                  # usage included, as the client first saw it
    assert status(ctx) == b"hit" and ctx.cache_hit
    assert ctx.saved_usd is not None and ctx.saved_usd > 0
    assert ctx.usage == Usage()             # nothing was consumed this time
    assert (cache.stats.hits, cache.stats.misses, cache.stats.stores) == (1, 1, 1)


async def test_saved_usd_uses_the_original_deployments_price_override(backend: Backend) -> None:
    cache = ExactCache(backend.store())
    await ask(cache, request(), deployment=PRICED)
    _, ctx = await ask(cache, request())
    assert ctx.saved_usd == pytest.approx(100 * 0.001 + 20 * 0.002)


async def test_no_cache_skips_the_lookup_but_stores(backend: Backend) -> None:
    cache = ExactCache(backend.store())
    await ask(cache, request())
    hit, ctx = await ask(cache, request(**{"no-cache": True}), resp=answer("fresh"))
    assert hit is None and status(ctx) == b"bypass"
    hit, _ = await ask(cache, request())
    assert hit is not None and hit.choices[0].message.text == "fresh"


async def test_no_store_keeps_the_answer_out(backend: Backend) -> None:
    cache = ExactCache(backend.store())
    await ask(cache, request(**{"no-store": True}))
    hit, ctx = await ask(cache, request(**{"no-store": True}))
    assert hit is None and status(ctx) == b"miss"
    # a no-store request still reads what others stored
    await ask(cache, request())
    hit, _ = await ask(cache, request(**{"no-store": True}))
    assert hit is not None


async def test_per_request_ttl_and_default_ttl(backend: Backend) -> None:
    cache = ExactCache(backend.store(), ttl=30)
    await ask(cache, request("short", ttl=0.2))
    await ask(cache, request("long"))
    await backend.advance(0.35)
    assert (await ask(cache, request("short", ttl=0.2)))[0] is None
    assert (await ask(cache, request("long")))[0] is not None


async def test_s_maxage_refuses_older_answers(backend: Backend) -> None:
    now = [1000.0]
    cache = ExactCache(backend.store(), wall_clock=lambda: now[0])
    await ask(cache, request())
    now[0] += 60
    assert (await ask(cache, request(**{"s-maxage": 30})))[0] is None
    assert (await ask(cache, request(**{"s-maxage": 120})))[0] is not None


async def test_namespaces_and_tenants_are_separate(backend: Backend) -> None:
    cache = ExactCache(backend.store())  # namespace_by: team
    await ask(cache, request(), keyed("k1", "blue"))
    assert (await ask(cache, request(), keyed("k2", "blue")))[0] is not None   # same team shares
    assert (await ask(cache, request(), keyed("k3", "red")))[0] is None        # other team does not
    assert (await ask(cache, request(), keyed("k4")))[0] is None               # nor a team-less key
    assert (await ask(cache, request(), MASTER))[0] is None                    # nor the admin
    assert (await ask(cache, request(namespace="exp"), keyed("k1", "blue")))[0] is None
    assert (await ask(cache, request(namespace="exp"), keyed("k1", "blue")))[0] is not None


async def test_namespace_by_key_and_none(backend: Backend) -> None:
    by_key = ExactCache(backend.store(), namespace_by="key")
    await ask(by_key, request(), keyed("k1", "blue"))
    assert (await ask(by_key, request(), keyed("k2", "blue")))[0] is None
    shared = ExactCache(backend.store(), namespace_by="none")
    await ask(shared, request("shared"), keyed("k1", "blue"))
    assert (await ask(shared, request("shared"), keyed("k9", "red")))[0] is not None


async def test_flush_one_namespace_or_all(backend: Backend) -> None:
    cache = ExactCache(backend.store())
    await ask(cache, request(namespace="a"))
    await ask(cache, request(namespace="b*"))  # glob characters are quoted, not matched
    await ask(cache, request())
    assert await cache.flush("a") == 1
    assert (await ask(cache, request(namespace="b*")))[0] is not None
    assert await cache.flush() == 2
    assert (await ask(cache, request(namespace="b*")))[0] is None
    await cache.flush()
    described = await cache.describe()
    assert described["entries"] == 0 and described["backend"] == backend.store().name


async def test_what_is_never_cached(backend: Backend) -> None:
    cache = ExactCache(backend.store())
    many = ChatRequest("gpt", [Message("user", [TextPart("x")])], n=3)
    _, ctx = await ask(cache, many)
    assert status(ctx) == b"bypass"
    assert (await ask(cache, many))[0] is None
    failed = answer(finish="error")
    await ask(cache, request("broken"), resp=failed)
    assert (await ask(cache, request("broken"), resp=failed))[0] is None
    assert cache.stats.stores == 0
