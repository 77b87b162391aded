"""A gateway with tracing on (master key, OTLP export to a loopback receiver), per engine."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from aistrata.testing.serving import ThreadedServer
from tests.conftest import MASTER_KEY, gateway_config, provider_env


class OtlpReceiver:
    """A tiny OTLP/HTTP collector on loopback: keeps every body POSTed to /v1/traces."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.server = ThreadedServer(self)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/v1/traces":
            self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-protobuf")]})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    with r.server:
        yield r


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def traced(request: pytest.FixtureRequest, fake: FakeUpstream, receiver: OtlpReceiver,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY}
    if request.param == "postgres":
        base = request.getfixturevalue("postgres_url")
        schema = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        env["AISTRATA_DATABASE_URL"] = f"{base}?options=-csearch_path%3D{schema}"
    config = {**gateway_config(fake.url),
              "observe": {"otlp_endpoint": receiver.server.url, "max_payload_bytes": 2048}}
    with GatewayServer(data_dir=tmp_path_factory.mktemp(f"traced-{request.param}"), config=config, env=env) as gw:
        yield gw
