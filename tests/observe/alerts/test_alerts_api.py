"""The alerts API on a running gateway: config rules, create, list, deliveries, delete."""

from __future__ import annotations

from pathlib import Path

import httpx

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY, gateway_config, provider_env

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def test_alerts_api(fake: FakeUpstream, tmp_path: Path) -> None:
    config = {**gateway_config(fake.url), "observe": {"alert_interval_s": 3600},
              "alerts": [{"name": "spend", "type": "cost", "threshold": 10, "window_s": 3600}]}
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY}
    with GatewayServer(data_dir=tmp_path, config=config, env=env) as gw:
        url = gw.url + "/api/alerts"
        made = httpx.post(url, headers=ADMIN, json={
            "name": "slow", "type": "latency_p95", "threshold": 2000, "for_s": 60,
            "notify": [{"url": "http://127.0.0.1:9/x", "format": "pagerduty", "routing_key": "secret"}]})
        assert made.status_code == 201
        rule = made.json()
        assert rule["state"] == "ok" and rule["channels"][0]["routing_key"] == "***"
        listed = {r["name"]: r for r in httpx.get(url, headers=ADMIN).json()["data"]}
        assert set(listed) == {"spend", "slow"} and listed["spend"]["id"] == "cfg:spend"
        assert httpx.get(f"{url}/{rule['id']}/deliveries", headers=ADMIN).json() == {"data": []}
        assert httpx.post(url, headers=ADMIN, json={"name": "x", "type": "nope"}).status_code == 400
        assert httpx.get(url).status_code == 401
        assert httpx.delete(f"{url}/cfg:spend", headers=ADMIN).status_code == 400
        assert httpx.delete(f"{url}/{rule['id']}", headers=ADMIN).json() == {"id": rule["id"], "deleted": True}
        assert httpx.get(f"{url}/{rule['id']}", headers=ADMIN).status_code == 404
