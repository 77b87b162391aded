"""The same gateway with its request log and keys in PostgreSQL (AISTRATA_DATABASE_URL)."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import openai
import psycopg

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY, gateway_config, provider_env


def test_gateway_on_postgres(postgres_url: str, fake: FakeUpstream, tmp_path: Path) -> None:
    schema = f"gw_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY,
           "AISTRATA_DATABASE_URL": f"{postgres_url}?options=-csearch_path%3D{schema}"}
    admin = {"authorization": f"Bearer {MASTER_KEY}"}
    with GatewayServer(data_dir=tmp_path, config=gateway_config(fake.url), env=env) as gw:
        assert gw.services.db.engine == "postgres"
        key = httpx.post(gw.url + "/api/keys", json={"team_id": "pg"}, headers=admin).json()
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key["key"])
        resp = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi from pg"}])
        gw.flush()
        rows = httpx.get(gw.url + "/api/requests", params={"team_id": "pg"}, headers=admin).json()["data"]
    assert len(rows) == 1
    assert rows[0]["provider"] == "anthropic" and rows[0]["output_tokens"] == resp.usage.completion_tokens
    assert rows[0]["cost_usd"] > 0
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        stored = conn.execute(f'SELECT count(*) FROM "{schema}".requests').fetchone()[0]
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert stored == 1
    assert not (tmp_path / "aistrata.db").exists()  # nothing went to SQLite
