"""Rate limits end to end, on one gateway: headers, concurrency, key x model, algorithms,
settling token estimates, and serving on local limits while Redis is down."""

from __future__ import annotations

import asyncio
from typing import Callable

import openai
import pytest

from aistrata.gateway.limits import LimitsAndBudgets, Subjects
from aistrata.testing.gateway import GatewayServer

from .conftest import ask, client, new_key

pytestmark = pytest.mark.asyncio(loop_scope="function")  # fresh loop per test: clients never outlive it


async def test_headers_on_answers_and_retry_after_on_refusals(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(limits=[{"scope": "key", "requests_per_minute": 2, "output_tokens_per_minute": 1000}])
    c = client(gw, new_key(gw))
    raw = await c.chat.completions.with_raw_response.create(
        model="fast", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-ratelimit-limit-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    assert (raw.headers["x-ratelimit-limit-tokens"], raw.headers["x-ratelimit-remaining-tokens"]) == ("1000", "990")
    await ask(c, "fast")
    with pytest.raises(openai.RateLimitError, match=r"rate limit 'key:key_\w+ requests per minute' reached") as err:
        await ask(c, "fast")
    headers = err.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 66
    assert headers["x-ratelimit-remaining-requests"] == "0"


async def test_concurrency_limit(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(limits=[{"scope": "team", "id": "kids", "concurrent": 2}])
    c = client(gw, new_key(gw, team_id="kids"))
    results = await asyncio.gather(*(ask(c) for _ in range(6)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == 4 and "concurrent" in refused[0].message
    await ask(c)  # the slots came back when the calls ended


async def test_key_model_limit_from_key_metadata(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway()
    c = client(gw, new_key(gw, metadata={"model_rpm_limit": {"fast": 1}}))
    await ask(c, "fast")
    with pytest.raises(openai.RateLimitError, match=r"key_model:key_\w+\|fast"):
        await ask(c, "fast")
    await ask(c, "priced")  # another model of the same key is not limited


@pytest.mark.parametrize(("algorithm", "low", "high"), [("token_bucket", 9, 11), ("sliding_window", 55, 66)])
async def test_bucket_refills_gradually_window_all_at_once(
    make_gateway: Callable[..., GatewayServer], algorithm: str, low: int, high: int,
) -> None:
    gw = make_gateway(limits=[{"scope": "key", "requests_per_minute": 6, "algorithm": algorithm}])
    c = client(gw, new_key(gw))
    for _ in range(6):
        await ask(c, "fast")
    with pytest.raises(openai.RateLimitError) as err:
        await ask(c, "fast")
    # A bucket of 6/min has one request back in 10 s; a window frees up when the first slides out.
    assert low <= int(err.value.response.headers["retry-after"]) <= high


async def test_token_estimates_are_settled_to_true_usage(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(limits=[{"scope": "key", "tokens_per_minute": 10_000}])
    key, record = gw.services.keys.create()
    c = client(gw, key)
    resp = await ask(c, "fast", max_tokens=50)  # reserves estimate + 50, settles to the fake's count
    with pytest.raises(openai.InternalServerError):
        await ask(c, "broken", max_tokens=50)  # a failed call uses no tokens
    limiter = next(s for s in gw.services.gateway.admissions if isinstance(s, LimitsAndBudgets)).limiter
    [rule] = await limiter.usage(Subjects(record.id, None, None, None, "fast"), "key")
    assert resp.usage is not None
    assert rule["counters"]["tokens"]["used"] == resp.usage.total_tokens


async def test_redis_down_serves_on_local_limits(make_gateway: Callable[..., GatewayServer],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    gw = make_gateway(env={"AISTRATA_REDIS_URL": "redis://127.0.0.1:1/0"},
                      limits=[{"scope": "key", "requests_per_minute": 2}])
    c = client(gw, new_key(gw))
    await ask(c, "fast")
    await ask(c, "fast")
    with pytest.raises(openai.RateLimitError):
        await ask(c, "fast")  # the limit still holds, on this node's own counters
    health = gw.services.state.health()
    assert (health["backend"], health["ok"], health["fallback"]) == ("redis", False, "local")
    assert sum("Redis unreachable" in r.message for r in caplog.records) == 1  # logged once, not per call
