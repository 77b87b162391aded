"""A gateway whose model groups exercise every strategy and failure class, in front of the
shared fake upstream (faults chosen through the upstream model name); and the breaker stores
the conformance suite runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
import pytest_asyncio

from aistrata.gateway.routing.breaker import BreakerStore, InProcessBreakers
from aistrata.gateway.routing.policy import BreakerPolicy
from aistrata.gateway.routing.shared_breakers import SharedBreakers
from aistrata.gateway.state import FallbackState, MemoryState, RedisState
from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.gateway.limits.conftest import redis_prefix, redis_url  # noqa: F401 - fixtures: skip or fail without Redis

BREAKER_POLICY = BreakerPolicy(allowed_fails=3, window_s=10, cooldown_s=30, probe_lease_s=60)


def shared_breakers(url: str, prefix: str, **options: Any) -> SharedBreakers:
    return SharedBreakers(BREAKER_POLICY, FallbackState(RedisState(url, prefix=prefix), MemoryState()), **options)


# The Redis client binds to the loop it first runs on: the test's own. The Redis store runs on
# the caller's clock here (`server_time=False`) so the tests can step it as they step the other.
@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="function")
async def breakers(request: pytest.FixtureRequest) -> AsyncIterator[BreakerStore]:
    if request.param == "memory":
        yield InProcessBreakers(BREAKER_POLICY)
        return
    store = shared_breakers(request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix"),
                            server_time=False)
    yield store
    await store.state.close()

PRICES = {"gpt-4o": (5e-6, 1.5e-5), "gpt-4o-mini": (1.5e-7, 6e-7)}


def _entry(group: str, model: str, url: str, **info: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"model": f"openai/{model}", "api_base": url + "/v1", "api_key": "k"}
    if "weight" in info:
        params["weight"] = info.pop("weight")
    return {"model_name": group, "litellm_params": params, "model_info": info}


def routing_config(url: str) -> dict[str, Any]:
    e = _entry
    models = [
        e("small", "gpt-4o-mini", url), e("big", "gpt-4o", url),
        e("rr", "gpt-4o", url), e("rr", "gpt-4o-mini", url),
        e("weighted", "gpt-4o", url, weight=1_000_000), e("weighted", "gpt-4o-mini", url, weight=1),
        *(e("cheapest", m, url, input_cost_per_token=p[0], output_cost_per_token=p[1]) for m, p in PRICES.items()),
        e("busy", "gpt-4o@delay_ms=600", url), e("busy", "gpt-4o-mini@delay_ms=600", url),
        e("fast", "gpt-4o@delay_ms=300", url), e("fast", "gpt-4o-mini", url),
        e("cap", "gpt-4o-mini", url, max_input_tokens=30, supports_vision=False), e("cap", "gpt-4o", url),
        e("limited", "gpt-4o-mini@status=429,retry_after=1,fail_first=1", url),
        e("flaky", "gpt-4o@status=503", url),
        e("toolong", "gpt-4o@error=context_length", url),
        e("filtered", "gpt-4o@error=content_filter", url),
        e("badkey", "gpt-4o@error=auth", url),
        e("fragile", "gpt-4o@status=503,fail_first=3", url),
        e("cutfirst", "gpt-4o@cut_after=1", url),
        e("cutlate", "gpt-4o@cut_after=5", url),
        e("stallfirst", "gpt-4o@stall_after=1,stall_s=5", url),
        {"model_name": "lenient", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_base": url,
                                                     "api_key": "sk-ant"}},
    ]
    return {
        "model_list": models,
        "router_settings": {
            "routing_strategy": "simple-shuffle", "num_retries": 0, "allowed_fails": 3, "cooldown_time": 1,
            "backoff_base": 0.05, "context_window_fallbacks": [{"toolong": ["big"]}],
            "content_policy_fallbacks": [{"filtered": ["lenient"]}],
        },
        "groups": {
            "rr": {"routing_strategy": "round-robin"},
            "cheapest": {"routing_strategy": "cost-based"},
            "busy": {"routing_strategy": "least-busy"},
            "fast": {"routing_strategy": "latency-based"},
            "cap": {"routing_strategy": "round-robin"},
            "auto": {"routing_strategy": "complexity-based", "simple": "small", "complex": "big", "threshold": 0.4},
            "limited": {"num_retries": 2},
            "flaky": {"num_retries": 1, "fallbacks": ["small"]},
            "badkey": {"fallbacks": ["small"]},
            "fragile": {"fallbacks": ["small"]},
            "cutfirst": {"fallbacks": ["small"]},
            "cutlate": {"fallbacks": ["small"]},
            "stallfirst": {"fallbacks": ["small"], "first_token_timeout": 0.5},
        },
        "routes": [{"when": {"tag": "batch"}, "model": "big", "use": "small"}],
    }


@pytest.fixture(scope="module")
def routing_gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with GatewayServer(data_dir=tmp_path_factory.mktemp("gw-routing"), config=routing_config(fake.url), env={}) as gw:
        yield gw


@pytest.fixture()
def client(routing_gateway: GatewayServer, upstream: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=routing_gateway.url + "/v1", api_key="anything", max_retries=0)
