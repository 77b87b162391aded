"""A gateway whose model groups exercise every strategy and failure class, in front of the
shared fake upstream (faults chosen through the upstream model name)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer

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
