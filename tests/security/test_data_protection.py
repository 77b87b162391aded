"""Data protection: prompts and completions encrypted (and masked) at rest, key rotation,
and data residency."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography.fernet import Fernet

from aistrata.observe.records import RequestRecord
from aistrata.observe.traces import Span, SpanFilters, SpanQueries, SpanSink
from aistrata.security.crypto import PayloadCipher, PayloadProtection, regex_mask, rotate_payloads
from aistrata.store import Database, RequestLog
from aistrata.store.migrations import migrate
from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY, gateway_config, provider_env

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
SECRET_PROMPT = "my card is 4111 1111 1111 1111, write to jane.doe@example.com"


@pytest.fixture(scope="module")
def protected(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = {**gateway_config(fake.url), "security": {"mask_payloads": True}}
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY,
           "AISTRATA_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    with GatewayServer(data_dir=tmp_path_factory.mktemp("gw-protected"), config=config, env=env) as gw:
        yield gw


def test_payloads_are_encrypted_and_masked_at_rest(protected: GatewayServer) -> None:
    with httpx.Client(base_url=protected.url, headers=ADMIN) as http:
        r = http.post("/v1/chat/completions", json={"model": "gpt", "messages": [
            {"role": "user", "content": SECRET_PROMPT}]})
        assert r.status_code == 200
        protected.flush()
        raw = protected.services.db.fetchone("SELECT trace_id, input, output FROM requests WHERE id = ?",
                                             (r.headers["x-aistrata-request-id"],))
        assert raw["input"].startswith("enc1:") and raw["output"].startswith("enc1:")
        assert "jane" not in raw["input"] and "4111" not in raw["input"]
        shown = http.get(f"/api/traces/{raw['trace_id']}").json()["spans"][0]
    assert "<EMAIL>" in shown["input"] and "jane.doe" not in shown["input"] and "4111 1111" not in shown["input"]
    assert shown["output"]  # the completion reads back in clear


def _span(i: int) -> Span:
    span = Span(trace_id=f"{i:032x}", span_id=f"{i:016x}", name="chat", start_us=1_000_000 + i, end_us=2_000_000,
                kind="client", type="generation", status="ok", source="gateway")
    span.set_payloads([{"role": "user", "content": f"prompt {i}"}], [{"content": f"answer {i}"}], 10_000)
    return span


def _request(i: int) -> RequestRecord:
    rec = RequestRecord(id=f"req_{i:032x}", ts=1_000 + i, trace_id=f"{i:032x}", input_bytes=10, output_bytes=10,
                        input=f'[{{"role":"user","content":"prompt {i}"}}]', output=f'[{{"content":"answer {i}"}}]')
    return rec


def test_rotation_re_encrypts_and_reads_back(database: Database, tmp_path: Path) -> None:
    migrate(database)
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    SpanSink(database, codec=PayloadProtection(PayloadCipher([old_key]), None)).insert_many([_span(i) for i in range(3)])
    SpanSink(database).insert_many([_span(9)])  # written before encryption was on
    # A gateway span's payloads are on its request row.
    RequestLog(database, PayloadProtection(PayloadCipher([old_key]), None)).insert_many([_request(5)])
    both = "SELECT span_id, input FROM spans UNION ALL SELECT span_id, input FROM requests"
    before = {r["span_id"]: r["input"] for r in database.fetchall(both)}
    assert all(v.startswith("enc1:") for k, v in before.items() if k != f"{9:016x}") and len(before) == 5

    assert rotate_payloads(database, PayloadCipher([new_key, old_key]), page=2) == 5
    after = {r["span_id"]: r["input"] for r in database.fetchall(both)}
    assert all(v.startswith("enc1:") and v != before[k] for k, v in after.items())
    # The old key can go: the new one alone reads everything, the old one alone nothing.
    rows, _ = SpanQueries(database, PayloadProtection(PayloadCipher([new_key]), None)).spans(
        SpanFilters(), limit=10)
    assert sorted(r["input"] for r in rows) == sorted(f'[{{"role":"user","content":"prompt {i}"}}]'
                                                      for i in (0, 1, 2, 5, 9))
    with pytest.raises(Exception):
        PayloadCipher([old_key]).fernet.decrypt(after[f"{0:016x}"][5:].encode())


def test_rotate_encryption_cli(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'aistrata.db'}")
    migrate(db)
    SpanSink(db).insert_many([_span(1)])
    key = Fernet.generate_key().decode()
    cmd = [sys.executable, "-m", "aistrata.interface.cli", "keys", "rotate-encryption", "--data-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"AISTRATA_ENCRYPTION_KEY": key, "PATH": ""})
    assert done.returncode == 0 and "re-encrypted 1" in done.stdout, done.stderr
    assert db.fetchone("SELECT input FROM spans")["input"].startswith("enc1:")
    db.close()


def test_export_cli_reads_gateway_payloads_in_clear(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'aistrata.db'}")
    migrate(db)
    key = Fernet.generate_key().decode()
    RequestLog(db, PayloadProtection(PayloadCipher([key]), None)).insert_many([_request(3)])
    assert db.fetchone("SELECT input FROM requests")["input"].startswith("enc1:")  # type: ignore[index]
    db.close()
    cmd = [sys.executable, "-m", "aistrata.interface.cli", "export", "requests", "--data-dir", str(tmp_path)]
    for env, clear in (({"AISTRATA_ENCRYPTION_KEY": key}, True), ({}, False)):
        done = subprocess.run(cmd, capture_output=True, text=True, env={**env, "PATH": ""})
        assert done.returncode == 0, done.stderr
        [row] = [orjson.loads(line) for line in done.stdout.splitlines()]
        assert (row["input"] == _request(3).input) is clear and row["trace_id"] == _request(3).trace_id


def test_regex_mask_fallback() -> None:
    masked = regex_mask("mail bob@example.org, card 4111-1111-1111-1111, key sk-abcdefghijklmnopqrstuv")
    assert "bob@" not in masked and "4111" not in masked and "sk-abc" not in masked


# ---- residency -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def regional(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    base = {"model": "openai/gpt-4o-mini", "api_base": fake.url + "/v1", "api_key": "k"}
    config = {
        "model_list": [
            {"model_name": "eu-gpt", "litellm_params": base, "model_info": {"region": "eu"}},
            {"model_name": "us-gpt", "litellm_params": base, "model_info": {"region": "us"}},
            {"model_name": "mixed", "litellm_params": base, "model_info": {"region": "eu"}},
            {"model_name": "mixed", "litellm_params": base, "model_info": {"region": "us"}},
            {"model_name": "eu-with-us-fallback", "litellm_params": base, "model_info": {"region": "eu"}},
        ],
        "router_settings": {"fallbacks": [{"eu-with-us-fallback": ["us-gpt"]}]},
        "residency": {"teams": {"acme": ["eu"]}},
    }
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY}
    with GatewayServer(data_dir=tmp_path_factory.mktemp("gw-regional"), config=config, env=env) as gw:
        yield gw


def test_residency_keeps_a_team_in_its_region(regional: GatewayServer) -> None:
    with httpx.Client(base_url=regional.url) as http:
        acme = {"authorization": "Bearer " + http.post("/api/keys", headers=ADMIN, json={"team_id": "acme"}).json()["key"]}
        other = {"authorization": "Bearer " + http.post("/api/keys", headers=ADMIN, json={"team_id": "zeta"}).json()["key"]}
        body = {"messages": [{"role": "user", "content": "hi"}]}
        assert http.post("/v1/chat/completions", headers=acme, json={**body, "model": "eu-gpt"}).status_code == 200
        for model in ("us-gpt", "mixed", "eu-with-us-fallback"):
            r = http.post("/v1/chat/completions", headers=acme, json={**body, "model": model})
            assert r.status_code == 403 and "residency" in r.text and "acme" in r.text, (model, r.text)
            assert http.post("/v1/chat/completions", headers=other, json={**body, "model": model}).status_code == 200
