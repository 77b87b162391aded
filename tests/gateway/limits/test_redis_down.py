"""A gateway whose Redis is unreachable keeps serving on local limits, breakers and cache, and
says so in `/ready` (still 200: the database is fine) and once in the log."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from aistrata.gateway.routing import SharedBreakers
from aistrata.testing.gateway import GatewayServer

from .conftest import ask, client

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


async def test_serves_and_reports_the_fallback(make_gateway: Callable[..., GatewayServer],
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    gw = make_gateway(env={"AISTRATA_REDIS_URL": NOWHERE}, cache={"enabled": True},
                      limits=[{"scope": "key", "requests_per_minute": 1000}])
    assert isinstance(gw.services.gateway.dispatcher.breakers.inner, SharedBreakers)  # under the kill switches
    c = client(gw)
    for _ in range(3):
        assert (await ask(c, model="fast")).choices[0].message.content

    resp = httpx.get(gw.url + "/ready")
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "ready" and body["degraded"] is True
    assert body["state"]["ok"] is False and body["state"]["fallback"] == "local"
    assert body["cache"]["status"] == "degraded" and body["cache"]["serving"] == "memory"
    down = [r for r in caplog.records if r.name == "aistrata.state" and "unreachable" in r.getMessage()]
    assert len(down) == 1  # once per transition, not once per request


def test_ready_is_not_degraded_without_redis(make_gateway: Callable[..., GatewayServer]) -> None:
    body = httpx.get(make_gateway().url + "/ready").json()
    assert body["degraded"] is False and body["state"] == {"backend": "memory", "ok": True}
