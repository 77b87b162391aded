"""Human override: kill switches of every scope, the read-only mode, and a switch stopping
traffic on two real gateway processes that share Redis, within a second."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis

from aistrata.testing.fake_upstream import FakeUpstream
from tests.conftest import MASTER_KEY, _services_required, gateway_config, provider_env

from .conftest import Tenancy, serve, stop

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
# A Redis database of its own: a gateway-wide switch must not reach other suites' gateways.
REDIS_URL = os.environ.get("AISTRATA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/13"


def chat(http: httpx.Client, headers: dict[str, str], model: str = "gpt", **extra: object) -> httpx.Response:
    return http.post("/v1/chat/completions", headers=headers,
                     json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra})


@pytest.mark.parametrize(("scope", "value", "refused", "served"), [
    ("model", "gpt", "gpt", "claude"),
    ("model", "gpt", "default", "claude"),          # an alias of the stopped group
    ("provider", "openai", "gpt", "claude"),
    ("deployment", "gpt#0", "gpt", "claude"),
    ("gateway", None, "claude", None),
])
def test_switches_refuse_what_they_name(tenancy: Tenancy, scope: str, value: str | None, refused: str,
                                        served: str | None) -> None:
    member = tenancy.headers("member")
    with tenancy.client() as http:
        switch = http.post("/api/kill-switches", headers=ADMIN, json={"scope": scope, "value": value,
                                                                      "reason": "incident 42"})
        assert switch.status_code == 201, switch.text
        try:
            r = chat(http, member, refused)
            assert r.status_code == 503, r.text
            assert f"kill switch '{switch.json()['id']}'" in r.text and "incident 42" in r.text
            if served:
                assert chat(http, member, served).status_code == 200
        finally:
            assert http.delete(f"/api/kill-switches/{quote(switch.json()['id'], safe='')}", headers=ADMIN).status_code == 200
        assert chat(http, member, refused).status_code == 200


def test_key_team_and_workflow_switches(tenancy: Tenancy) -> None:
    with tenancy.client() as http:
        for body, who, extra in [({"scope": "key", "value": tenancy.ids["member"]}, "member", {}),
                                 ({"scope": "team", "value": "beta"}, "b_member", {}),
                                 ({"scope": "workflow", "value": "nightly"}, "member", {"metadata": {"workflow": "nightly"}})]:
            sid = http.post("/api/kill-switches", headers=ADMIN, json=body).json()["id"]
            assert chat(http, tenancy.headers(who), **extra).status_code == 503
            assert chat(http, tenancy.headers("team_admin")).status_code == 200  # others unaffected
            http.delete(f"/api/kill-switches/{sid}", headers=ADMIN)
            assert chat(http, tenancy.headers(who), **extra).status_code == 200
        # Each refusal is a policy decision in the audit log.
        tenancy.gw.flush()
        tenancy.gw.services.security.decisions.flush()
        rows = http.get("/api/audit?action=policy.kill_switch", headers=ADMIN).json()["data"]
        assert {r["details"]["switch"] for r in rows} >= {f"key:{tenancy.ids['member']}", "team:beta",
                                                           "workflow:nightly"}


def test_read_only_mode(tenancy: Tenancy) -> None:
    with tenancy.client() as http:
        assert http.post("/api/read-only", headers=ADMIN, json={"enabled": True, "reason": "audit"}).status_code == 200
        try:
            r = http.post("/api/keys", headers=ADMIN, json={"alias": "nope"})
            assert r.status_code == 403 and "read-only" in r.text
            assert http.get("/api/keys", headers=ADMIN).status_code == 200
            assert chat(http, tenancy.headers("member")).status_code == 200  # the data plane still serves
            sid = http.post("/api/kill-switches", headers=ADMIN, json={"scope": "team", "value": "x"}).json()["id"]
            assert http.delete(f"/api/kill-switches/{sid}", headers=ADMIN).status_code == 200
        finally:
            assert http.post("/api/read-only", headers=ADMIN, json={"enabled": False}).status_code == 200
        assert http.post("/api/keys", headers=ADMIN, json={"alias": "yes"}).status_code == 201


# ---- two replicas sharing Redis ------------------------------------------------------------

@pytest.fixture()
def redis_db() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        if _services_required():
            pytest.fail(f"Redis unreachable at {REDIS_URL}: {exc}", pytrace=False)
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


def wait_until_refused(url: str, deadline: float) -> float:
    """Poll until a request is refused by the switch; returns when, fails after `deadline`."""
    with httpx.Client(base_url=url, headers=ADMIN, timeout=5) as http:
        while True:
            r = chat(http, ADMIN)
            if r.status_code == 503 and "kill switch" in r.text:
                return time.monotonic()
            assert time.monotonic() < deadline, f"{url} still serving 1 s after the switch"
            time.sleep(0.02)


def test_switch_stops_two_replicas_within_a_second(fake: FakeUpstream, redis_db: str, tmp_path: Path) -> None:
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY, "AISTRATA_REDIS_URL": redis_db}
    replicas = []
    try:
        for i in range(2):
            replicas.append(serve(tmp_path / f"r{i}", gateway_config(fake.url), env))
        for r in replicas:
            assert chat(httpx.Client(base_url=r.url), ADMIN).status_code == 200
        switched = time.monotonic()
        on = httpx.post(replicas[0].url + "/api/kill-switches", headers=ADMIN, json={"scope": "model", "value": "gpt"})
        assert on.status_code == 201, on.text
        for r in replicas:
            wait_until_refused(r.url, switched + 1.0)

        # The CLI turns it off through the same shared state; both serve again.
        cli = [sys.executable, "-m", "aistrata.interface.cli", "kill", "off", "model:gpt", "--data-dir", str(tmp_path)]
        done = subprocess.run(cli, env={**os.environ, **env}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 1.0
        for r in replicas:
            with httpx.Client(base_url=r.url) as http:
                while chat(http, ADMIN).status_code != 200:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
    finally:
        for r in replicas:
            stop(r)
