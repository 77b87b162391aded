"""End to end: the cache inside a real gateway, called with the real `openai` SDK."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY, gateway_config, provider_env

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def cached_gateway(fake: FakeUpstream, data_dir: Path, **env: str) -> GatewayServer:
    config = {**gateway_config(fake.url), "cache": {"enabled": True, "ttl": 60}}
    return GatewayServer(data_dir=data_dir, config=config,
                         env={**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY, **env})


@pytest.fixture(scope="module")
def gw(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with cached_gateway(fake, tmp_path_factory.mktemp("gw-cache")) as server:
        yield server


def client(gw: GatewayServer, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def chat(gw: GatewayServer, text: str, key: str = MASTER_KEY, **kwargs: Any) -> tuple[str | None, ChatCompletion]:
    """(x-aistrata-cache header, parsed completion)."""
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": text}], temperature=0, **kwargs)
    return raw.headers.get("x-aistrata-cache"), raw.parse()


def record(gw: GatewayServer, request_id: str) -> dict[str, Any]:
    gw.flush()
    r = httpx.get(f"{gw.url}/api/requests/{request_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    row: dict[str, Any] = r.json()
    return row


def test_second_identical_request_never_reaches_the_upstream(gw: GatewayServer, upstream: FakeUpstream) -> None:
    text = f"what is caching? {secrets.token_hex(4)}"
    status, first = chat(gw, text)
    assert status == "miss" and len(upstream.requests) == 1
    raw = client(gw).chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": text}], temperature=0.0, user="someone-else")
    second = raw.parse()
    assert raw.headers["x-aistrata-cache"] == "hit"
    assert len(upstream.requests) == 1
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.id == first.id and second.usage == first.usage  # the stored answer, usage as first seen
    row = record(gw, raw.headers["x-aistrata-request-id"])
    assert row["cache_hit"] is True and row["saved_usd"] > 0
    assert row["status"] == 200 and row["provider"] is None  # no deployment was called


def test_per_request_controls_by_header_and_body(gw: GatewayServer, upstream: FakeUpstream) -> None:
    text = f"controls {secrets.token_hex(4)}"
    assert chat(gw, text, extra_body={"cache": {"no-store": True}})[0] == "miss"
    assert chat(gw, text, extra_headers={"x-aistrata-cache": "no-cache"})[0] == "bypass"
    assert chat(gw, text)[0] == "hit"   # the no-cache call stored its answer
    assert chat(gw, text, extra_headers={"x-aistrata-cache-namespace": "exp-1"})[0] == "miss"
    assert len(upstream.requests) == 3
    with pytest.raises(openai.BadRequestError):
        chat(gw, text, extra_headers={"x-aistrata-cache-ttl": "soon"})


def test_tenants_do_not_share_answers(gw: GatewayServer, upstream: FakeUpstream) -> None:
    keys = [httpx.post(gw.url + "/api/keys", json={"team_id": team}, headers=ADMIN).json()["key"]
            for team in ("blue", "blue", "red")]
    text = f"tenants {secrets.token_hex(4)}"
    assert [chat(gw, text, key)[0] for key in keys] == ["miss", "hit", "miss"]
    assert chat(gw, text)[0] == "miss"  # the master key is a tenant of its own


def test_anthropic_ingress_shares_the_neutral_entry(gw: GatewayServer, upstream: FakeUpstream) -> None:
    text = f"dialects {secrets.token_hex(4)}"
    assert chat(gw, text, max_tokens=50)[0] == "miss"
    raw = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0).messages.with_raw_response.create(
        model="gpt", max_tokens=50, messages=[{"role": "user", "content": text}],
        extra_body={"temperature": 0})
    assert raw.headers["x-aistrata-cache"] == "hit" and raw.parse().content
    assert len(upstream.requests) == 1


def test_admin_api_stats_and_flush(gw: GatewayServer, upstream: FakeUpstream) -> None:
    text = f"admin {secrets.token_hex(4)}"
    chat(gw, text, extra_body={"cache": {"namespace": "to-flush"}})
    stats = httpx.get(gw.url + "/api/cache", headers=ADMIN).json()
    assert stats["enabled"] and stats["backend"] == "memory" and stats["entries"] >= 1
    assert stats["hits"] >= 1 and stats["saved_usd"] > 0
    r = httpx.delete(gw.url + "/api/cache", params={"namespace": "to-flush"}, headers=ADMIN)
    assert r.json()["flushed"] == 1
    assert chat(gw, text, extra_body={"cache": {"namespace": "to-flush"}})[0] == "miss"
    key = httpx.post(gw.url + "/api/keys", json={}, headers=ADMIN).json()["key"]
    assert httpx.get(gw.url + "/api/cache", headers={"authorization": f"Bearer {key}"}).status_code == 403
    assert httpx.delete(gw.url + "/api/cache", headers={"authorization": f"Bearer {key}"}).status_code == 403


def test_two_gateways_sharing_redis_share_hits(
    fake: FakeUpstream, upstream: FakeUpstream, redis_url: str, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    namespace = f"test-{secrets.token_hex(6)}"  # keeps this run's entries apart, then flushed
    body = {"cache": {"namespace": namespace}}
    a = cached_gateway(fake, tmp_path_factory.mktemp("gw-a"), AISTRATA_REDIS_URL=redis_url)
    b = cached_gateway(fake, tmp_path_factory.mktemp("gw-b"), AISTRATA_REDIS_URL=redis_url)
    with a, b:
        try:
            status, first = chat(a, "shared across replicas", extra_body=body)
            assert status == "miss"
            status, second = chat(b, "shared across replicas", extra_body=body)
            assert status == "hit" and second.id == first.id
            assert len(upstream.requests) == 1
            stats = httpx.get(b.url + "/api/cache", headers=ADMIN).json()
            assert stats["backend"] == "redis" and stats["health"]["serving"] == "redis"
        finally:
            assert httpx.delete(a.url + "/api/cache", params={"namespace": namespace}, headers=ADMIN).json()["flushed"] == 1
