"""The recorder loses nothing when its database goes away mid-load: records wait in the spool
file and are replayed when PostgreSQL accepts connections again."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
import psycopg

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY, PG_ADMIN_URL, gateway_config

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}


def set_connections(admin: psycopg.Connection, name: str, allowed: bool) -> None:
    admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if allowed else "false"}')
    if not allowed:  # and cut the pool's open connections: a real outage, not a slow one
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def test_postgres_outage_mid_load_loses_no_record(postgres_url: str, fake: FakeUpstream, tmp_path: Path) -> None:
    name = f"aistrata_outage_{secrets.token_hex(4)}"
    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    env = {"AISTRATA_MASTER_KEY": MASTER_KEY, "AISTRATA_DATABASE_URL": url}
    ids: list[str] = []
    try:
        with GatewayServer(data_dir=tmp_path, config=gateway_config(fake.url), env=env) as gw, \
                httpx.Client(base_url=gw.url, headers=ADMIN, timeout=30) as http:
            def burst(n: int) -> None:
                for _ in range(n):
                    r = http.post("/v1/chat/completions", json=CHAT)
                    assert r.status_code == 200, r.text  # the hot path never waits on the database
                    ids.append(r.headers["x-aistrata-request-id"])

            burst(20)
            gw.flush()
            set_connections(admin, name, allowed=False)
            burst(30)
            deadline = time.monotonic() + 15  # let the writer fail and spool (slower on a loaded machine)
            while gw.services.recorder.spooled == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert gw.services.recorder.spooled > 0
            set_connections(admin, name, allowed=True)
            deadline = time.monotonic() + 30
            stored: set[str] = set()
            while time.monotonic() < deadline:
                gw.flush(1)
                rows = gw.services.db.fetchall("SELECT id FROM requests")
                stored = {r["id"] for r in rows}
                if stored >= set(ids):
                    break
                time.sleep(0.3)
        assert set(ids) <= stored, f"{len(set(ids) - stored)} of {len(ids)} records lost"
        assert len(stored) == len(set(ids))  # replayed once, not twice
    finally:
        set_connections(admin, name, allowed=True)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


