"""Fixtures for the state and limits tests: a Redis URL (skipped with a reason when Redis is
down, failed under AISTRATA_REQUIRE_SERVICES=1), a controllable clock, and one `state` per
test on each backend under its own key prefix, cleaned up afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import openai
import redis

from aistrata.gateway.state import MemoryState, RedisState, SharedState
from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import _services_required

REDIS_URL = os.environ.get("AISTRATA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Clock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        reason = f"Redis unreachable at {REDIS_URL}: {exc}"
        if _services_required():
            pytest.fail(f"{reason} (AISTRATA_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    return REDIS_URL


def drop_keys(url: str, pattern: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=pattern, count=500):
        client.delete(key)
    client.close()


@pytest.fixture()
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"aistrata:test:{secrets.token_hex(6)}:"
    yield prefix
    drop_keys(redis_url, prefix + "*")


@pytest.fixture()
def clock() -> Clock:
    return Clock()


# The client binds to the loop it first runs on: the test's own.
@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="function")
async def state(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[SharedState]:
    if request.param == "memory":
        backend: SharedState = MemoryState(clock=clock)
    else:
        backend = RedisState(request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix"),
                             clock=clock)
    yield backend
    await backend.close()


# --- gateways with limits in front of the fake upstream --------------------------------------

# $0.01 per output token, input free: with max_tokens=10 a call's worst case is exactly $0.10,
# and the fake (which honours max_tokens) makes the true cost the same.
PRICED = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.01}


def model_list(fake_url: str, delay_ms: int = 300) -> list[dict[str, Any]]:
    def entry(name: str, upstream: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"model_name": name, "model_info": info or {},
                "litellm_params": {"model": f"openai/{upstream}", "api_base": fake_url + "/v1", "api_key": "k"}}

    return [
        entry("priced", f"gpt-4o-mini@delay_ms={delay_ms}", PRICED),
        entry("fast", "gpt-4o-mini", PRICED),
        entry("broken", "gpt-4o-mini@status=500", PRICED),
        entry("mystery", "no-such-model-anywhere"),
    ]


@pytest.fixture()
def make_gateway(fake: FakeUpstream, tmp_path: Path) -> Iterator[Callable[..., GatewayServer]]:
    """Start a gateway with extra config sections (limits, budgets...); stopped after the test."""
    started: list[GatewayServer] = []

    def start(env: dict[str, str] | None = None, **sections: Any) -> GatewayServer:
        config = {"model_list": model_list(fake.url), **sections}
        gw = GatewayServer(data_dir=tmp_path / f"gw{len(started)}", config=config, env=env or {})
        started.append(gw.start())  # type: ignore[arg-type]
        return gw

    yield start
    for gw in started:
        gw.stop()


def client(gw: GatewayServer, key: str = "none") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def new_key(gw: GatewayServer, **fields: Any) -> str:
    raw, _ = gw.services.keys.create(**fields)
    return raw


async def ask(c: openai.AsyncOpenAI, model: str = "priced", max_tokens: int = 10) -> Any:
    return await c.chat.completions.create(model=model, max_tokens=max_tokens,
                                           messages=[{"role": "user", "content": "hi"}])
