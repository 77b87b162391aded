"""A budget crossing its soft limit during real traffic fires the `budget_soft_limit` alert."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from aistrata.testing.serving import ThreadedServer


class Hook:
    """A webhook receiver as a raw ASGI app: records every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(orjson.loads(body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def test_soft_budget_limit_notifies(fake: FakeUpstream, tmp_path: Path) -> None:
    hook = Hook()
    with ThreadedServer(hook) as receiver:
        config = {
            "model_list": [{"model_name": "priced", "litellm_params": {"model": "openai/gpt-x", "api_base": fake.url + "/v1",
                                                                       "api_key": "k"},
                            "model_info": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.001}}],
            "budgets": [{"scope": "key", "max_usd": 100, "soft_usd": 0.01, "period": "monthly"}],
            "alerts": [{"name": "soft", "type": "budget_soft_limit", "window_s": 300,
                        "notify": [{"url": receiver.url + "/hook"}]}],
            "observe": {"alert_interval_s": 0.2},
        }
        with GatewayServer(data_dir=tmp_path, config=config, env={"AISTRATA_MASTER_KEY": "sk-master"}) as gw:
            key = httpx.post(gw.url + "/api/keys", json={"alias": "spender"},
                             headers={"authorization": "Bearer sk-master"}).json()["key"]
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key)
            client.chat.completions.create(model="priced", messages=[{"role": "user", "content": "spend a little"}])
            deadline = time.monotonic() + 10
            while not hook.bodies and time.monotonic() < deadline:
                time.sleep(0.1)
    assert hook.bodies, "no alert arrived"
    assert "soft" in orjson.dumps(hook.bodies[0]).decode()
