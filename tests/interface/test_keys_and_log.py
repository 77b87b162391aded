"""Access control with a master key and virtual keys, and the request log's contents."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY

MSG = [{"role": "user", "content": "hello there"}]
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def new_key(gw: GatewayServer, **body: object) -> dict:
    r = httpx.post(gw.url + "/api/keys", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


def records(gw: GatewayServer, **params: object) -> list[dict]:
    gw.flush()
    r = httpx.get(gw.url + "/api/requests", params=params, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_master_key_required(secured_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    for key in ("", "sk-wrong"):
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=secured_gateway.url + "/v1", api_key=key or "none", max_retries=0).chat.completions.create(
                model="gpt", messages=MSG)
    with pytest.raises(anthropic.AuthenticationError) as info:
        anthropic.Anthropic(base_url=secured_gateway.url, api_key="sk-wrong", max_retries=0).messages.create(
            model="gpt", max_tokens=10, messages=MSG)
    assert info.value.body["error"]["type"] == "authentication_error"
    ok = openai.OpenAI(base_url=secured_gateway.url + "/v1", api_key=MASTER_KEY).chat.completions.create(model="gpt", messages=MSG)
    assert ok.choices[0].message.content
    assert not upstream.requests[0]["headers"].get("authorization", "").endswith(MASTER_KEY)  # ours never goes upstream


def test_virtual_key_lifecycle(secured_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    created = new_key(secured_gateway, alias="ci", user_id="ann", team_id="blue", models=["gpt", "claude*"],
                      metadata={"env": "test"})
    raw = created["key"]
    assert raw.startswith("sk-ast-") and created["models"] == ["gpt", "claude*"]
    client = openai.OpenAI(base_url=secured_gateway.url + "/v1", api_key=raw, max_retries=0)
    assert client.chat.completions.create(model="gpt", messages=MSG).choices[0].message.content
    # Anthropic SDK sends the key as x-api-key
    ant = anthropic.Anthropic(base_url=secured_gateway.url, api_key=raw, max_retries=0)
    assert ant.messages.create(model="claude", max_tokens=20, messages=MSG).content
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gemini", messages=MSG)
    # keys see only their own records, and cannot manage keys
    own = httpx.get(secured_gateway.url + "/api/requests", headers={"authorization": f"Bearer {raw}"})
    assert own.status_code == 200
    secured_gateway.flush()
    mine = httpx.get(secured_gateway.url + "/api/requests", headers={"authorization": f"Bearer {raw}"}).json()["data"]
    assert mine and {r["key_id"] for r in mine} == {created["id"]}
    assert httpx.get(secured_gateway.url + "/api/keys", headers={"authorization": f"Bearer {raw}"}).status_code == 403
    # revocation takes effect at once
    r = httpx.delete(secured_gateway.url + f"/api/keys/{created['id']}", headers=ADMIN)
    assert r.status_code == 200
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt", messages=MSG)
    assert "revoked" in info.value.message


def test_expired_key_is_refused(secured_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    created = new_key(secured_gateway, expires_at=int(time.time() * 1000) - 1000)
    with pytest.raises(openai.AuthenticationError) as info:
        openai.OpenAI(base_url=secured_gateway.url + "/v1", api_key=created["key"], max_retries=0).chat.completions.create(
            model="gpt", messages=MSG)
    assert "expired" in info.value.message


def test_keys_are_stored_as_hashes(secured_gateway: GatewayServer) -> None:
    created = new_key(secured_gateway, alias="hash-check")
    rows = secured_gateway.services.db.fetchall("SELECT * FROM api_keys")
    assert rows and created["key"] not in json.dumps(rows, default=str)
    listed = httpx.get(secured_gateway.url + "/api/keys", headers=ADMIN).json()["data"]
    assert created["key"] not in json.dumps(listed)


def test_cli_creates_a_working_key(secured_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    data_dir = secured_gateway.services.settings.data_dir
    out = subprocess.run([sys.executable, "-m", "aistrata.interface.cli", "keys", "create", "--data-dir", str(data_dir),
                          "--alias", "from-cli", "--team", "green", "--expires-in", "1h"],
                         capture_output=True, text=True, check=True)
    raw = json.loads(out.stdout)["key"]
    resp = openai.OpenAI(base_url=secured_gateway.url + "/v1", api_key=raw).chat.completions.create(model="gpt", messages=MSG)
    assert resp.choices[0].message.content
    assert records(secured_gateway, team_id="green")


def test_request_log_matches_what_the_upstream_reported(secured_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    key = new_key(secured_gateway, alias="logger", user_id="lee", team_id="red")
    client = openai.OpenAI(base_url=secured_gateway.url + "/v1", api_key=key["key"], max_retries=0)
    upstream.faults.cached_tokens = 2
    upstream.faults.reasoning_tokens = 5
    whole = client.chat.completions.create(model="gpt", messages=MSG, metadata={"tags": ["exp-1"], "run": "a"},
                                           extra_headers={"x-aistrata-tags": "batch"})
    list(client.chat.completions.create(model="gpt", messages=MSG, stream=True))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="openai/gpt-4o-mini@status=429", messages=MSG)
    reported = upstream.requests[0]["usage"]
    rows = records(secured_gateway, key_id=key["id"])
    assert len(rows) == 3
    failed, streamed, plain = rows  # newest first
    assert plain["id"] and plain["requested_model"] == "gpt" and plain["provider"] == "openai"
    assert plain["deployment_id"] == "gpt#0" and plain["upstream_model"] == "gpt-4o-mini"
    assert (plain["user_id"], plain["team_id"], plain["key_alias"]) == ("lee", "red", "logger")
    assert plain["input_tokens"] == reported["prompt_tokens"] == whole.usage.prompt_tokens
    assert plain["output_tokens"] == reported["completion_tokens"]
    assert plain["cache_read_tokens"] == 2 and plain["reasoning_tokens"] == 5
    # gpt-4o-mini: $0.15/M input, $0.075/M cached input, $0.60/M output (reasoning billed as output)
    expected = ((plain["input_tokens"] - 2) * 0.15 + 2 * 0.075 + plain["output_tokens"] * 0.60) / 1e6
    assert plain["cost_usd"] == pytest.approx(expected, rel=1e-6)
    assert plain["price_version"].startswith("genai-prices")
    assert set(plain["tags"]) == {"exp-1", "batch"} and plain["metadata"]["run"] == "a"
    assert plain["status"] == 200 and not plain["stream"] and plain["ttft_ms"] is None
    assert plain["latency_ms"] >= plain["overhead_ms"] >= 0
    assert streamed["stream"] and streamed["ttft_ms"] is not None and streamed["output_tokens"] == plain["output_tokens"]
    assert failed["status"] == 429 and failed["error_kind"] == "rate_limit" and failed["cost_usd"] is None
    # filters and paging
    assert [r["id"] for r in records(secured_gateway, key_id=key["id"], tag="exp-1")] == [plain["id"]]
    assert [r["id"] for r in records(secured_gateway, key_id=key["id"], status=429)] == [failed["id"]]
    page = httpx.get(secured_gateway.url + "/api/requests", params={"key_id": key["id"], "limit": 2}, headers=ADMIN).json()
    rest = httpx.get(secured_gateway.url + "/api/requests", params={"key_id": key["id"], "limit": 2, "cursor": page["next_cursor"]},
                     headers=ADMIN).json()
    assert [r["id"] for r in page["data"] + rest["data"]] == [r["id"] for r in rows]
    one = httpx.get(secured_gateway.url + f"/api/requests/{plain['id']}", headers=ADMIN).json()
    assert one["id"] == plain["id"]


def test_errors_never_carry_provider_secrets(secured_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        openai.OpenAI(base_url=secured_gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0).chat.completions.create(
            model="openai/gpt-4o-mini@error=auth", messages=MSG)
    text = json.dumps(info.value.body)
    assert "sk-fake-env" not in text and MASTER_KEY not in text
    rows = records(secured_gateway, status=401)
    assert rows and all("sk-fake-env" not in json.dumps(r) for r in rows)


def test_health_and_ready(secured_gateway: GatewayServer) -> None:
    assert httpx.get(secured_gateway.url + "/health").json() == {"status": "ok"}
    r = httpx.get(secured_gateway.url + "/ready")
    assert r.status_code == 200 and r.json()["database"] == "ok"


def test_cli_key_role(secured_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    data_dir = secured_gateway.services.settings.data_dir
    out = subprocess.run([sys.executable, "-m", "aistrata.interface.cli", "keys", "create", "--data-dir", str(data_dir),
                          "--team", "green", "--role", "viewer"], capture_output=True, text=True, check=True)
    created = json.loads(out.stdout)
    assert created["role"] == "viewer"
    with pytest.raises(openai.PermissionDeniedError):  # viewers read their team's data; no data plane
        openai.OpenAI(base_url=secured_gateway.url + "/v1", api_key=created["key"], max_retries=0).chat.completions.create(
            model="gpt", messages=MSG)
