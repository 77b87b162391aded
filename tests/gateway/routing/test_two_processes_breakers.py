"""Two real `aistrata serve` processes sharing Redis: failures through one open the breaker,
and the other then skips that deployment too."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayProcess
from tests.conftest import MASTER_KEY
from tests.gateway.limits.conftest import drop_keys

GROUP = f"pair-{secrets.token_hex(4)}"  # its deployments' ids name the breaker keys
GOOD, BROKEN = f"{GROUP}#0", f"{GROUP}#1"
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def config(fake_url: str) -> dict[str, Any]:
    def entry(upstream: str) -> dict[str, Any]:
        return {"model_name": GROUP, "litellm_params": {"model": f"openai/{upstream}", "api_base": fake_url + "/v1",
                                                        "api_key": "k"}}

    return {
        "model_list": [entry("gpt-4o"), entry("gpt-4o-mini@status=500")],
        # No retries: a request sent to the broken deployment fails, so all-successes means skipped.
        "router_settings": {"routing_strategy": "round-robin", "num_retries": 0, "allowed_fails": 3,
                            "failure_window": 60, "cooldown_time": 300},
    }


@pytest.fixture(scope="module")
def pair(fake: FakeUpstream, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two gateway processes on one Redis (each with its own SQLite); yields their URLs."""
    tmp = tmp_path_factory.mktemp("breaker-pair")
    env = {"AISTRATA_REDIS_URL": redis_url, "AISTRATA_MASTER_KEY": MASTER_KEY}
    procs = [GatewayProcess(tmp / f"gw{i}", config(fake.url), env) for i in range(2)]
    try:
        for proc in procs:
            proc.start()
        yield [proc.url for proc in procs]
    finally:
        for proc in procs:
            proc.stop()
        drop_keys(redis_url, f"aistrata:breaker:{{{GROUP}*")


def chat(url: str) -> int:
    body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=10).status_code


def breakers(url: str) -> dict[str, str]:
    resp = httpx.get(url + "/api/deployments", headers=AUTH)
    resp.raise_for_status()
    return {d["id"]: d["breaker"]["state"] for d in resp.json()["data"] if d["group"] == GROUP}


def test_a_breaker_opened_through_one_process_is_skipped_by_the_other(pair: list[str]) -> None:
    a, b = pair
    assert breakers(b) == {GOOD: "closed", BROKEN: "closed"}
    statuses = [chat(a) for _ in range(8)]  # round-robin: every other one fails, 3 failures open it
    assert statuses.count(200) >= 4 and breakers(a)[BROKEN] == "open"

    assert breakers(b) == {GOOD: "closed", BROKEN: "open"}  # read from Redis
    time.sleep(0.3)  # past B's local copy's refresh (250 ms), had it one
    assert [chat(b) for _ in range(10)] == [200] * 10  # round-robin would have sent 5 to BROKEN
