"""Fixtures for the security suite: a secured gateway with keys of every role in two teams,
some recorded traffic of each team, and real `aistrata serve` processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayProcess, GatewayServer
from tests.conftest import MASTER_KEY, gateway_config, provider_env

JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"
JWT_ISSUER = "https://idp.test/"
JWT_AUDIENCE = "aistrata"


@dataclass
class Tenancy:
    """A secured gateway and the keys of each role (team A = "acme", team B = "beta")."""

    gw: GatewayServer
    keys: dict[str, str]          # role name -> raw key
    ids: dict[str, str]           # role name -> key id
    b_request_id: str             # a request made by team B's member
    b_trace_id: str

    def headers(self, who: str) -> dict[str, str]:
        if who == "anonymous":
            return {}
        return {"authorization": f"Bearer {MASTER_KEY if who == 'admin' else self.keys[who]}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.gw.url, timeout=10)


def security_config(fake_url: str) -> dict[str, Any]:
    config = gateway_config(fake_url)
    config["auth"] = {"jwt": {"secret": JWT_SECRET, "issuer": JWT_ISSUER, "audience": JWT_AUDIENCE}}
    return config


@pytest.fixture(scope="module")
def tenancy(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenancy]:
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY}
    with GatewayServer(data_dir=tmp_path_factory.mktemp("gw-tenancy"), config=security_config(fake.url),
                       env=env) as gw, httpx.Client(base_url=gw.url, timeout=10) as http:
        admin = {"authorization": f"Bearer {MASTER_KEY}"}
        keys, ids = {}, {}
        for name, team, role in [("team_admin", "acme", "team_admin"), ("member", "acme", "member"),
                                 ("viewer", "acme", "viewer"), ("b_member", "beta", "member"),
                                 ("b_team_admin", "beta", "team_admin")]:
            r = http.post("/api/keys", headers=admin, json={"alias": name, "team_id": team, "role": role,
                                                             "user_id": f"user-{name}"})
            assert r.status_code == 201, r.text
            keys[name], ids[name] = r.json()["key"], r.json()["id"]
        r = http.post("/v1/chat/completions", headers={"authorization": f"Bearer {keys['b_member']}"},
                      json={"model": "gpt", "messages": [{"role": "user", "content": "beta's secret plans"}]})
        assert r.status_code == 200, r.text
        b_request = r.headers["x-aistrata-request-id"]
        r = http.post("/api/budgets", headers=admin, json={"scope": "team", "id": "beta", "max_usd": 5})
        assert r.status_code == 201, r.text
        gw.flush()
        trace = gw.services.db.fetchone("SELECT trace_id FROM requests WHERE id = ?", (b_request,))
        assert trace is not None
        yield Tenancy(gw, keys, ids, b_request, trace["trace_id"])


# ---- real `aistrata serve` processes ---------------------------------------------------------

def serve(tmp: Path, config: dict[str, Any], env: dict[str, str], *args: str, scheme: str = "http",
          ready: Any = None) -> GatewayProcess:
    """Start `aistrata serve` and wait until it answers; the caller stops it with `stop`."""
    return GatewayProcess(tmp, config, env, *args, scheme=scheme).start(ready=ready)


def stop(served: GatewayProcess) -> None:
    served.stop()
