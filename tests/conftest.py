"""Shared fixtures."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from aistrata.store import Database

# --- store: `database`, one fresh, empty database per test on each engine ------------------
# PostgreSQL: one `aistrata_test_<random>` database per session, one schema per test inside it.

PG_ADMIN_URL = os.environ.get("AISTRATA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _services_required() -> bool:
    return os.environ.get("AISTRATA_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a scratch PostgreSQL database, dropped at the end of the session."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL unreachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}"
        if _services_required():
            pytest.fail(f"{reason} (AISTRATA_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    name = f"aistrata_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'aistrata.db'}")
    else:
        import psycopg

        base = request.getfixturevalue("postgres_url")
        schema = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        db = Database(f"{base}?options=-csearch_path%3D{schema}")
    try:
        yield db
    finally:
        db.close()

# --- end store fixtures ---------------------------------------------------------------------


# --- gateway: a fake upstream and a real gateway in front of it, over loopback -------------

from aistrata.testing.fake_upstream import FakeUpstream  # noqa: E402
from aistrata.testing.gateway import GatewayServer  # noqa: E402

# Group name -> (litellm_params built from the fake's URL, upstream model name as the fake sees it).
PROVIDER_GROUPS = {
    "gpt": (lambda url: {"model": "openai/gpt-4o-mini", "api_base": url + "/v1", "api_key": "sk-fake-openai"}, "gpt-4o-mini"),
    "azure-gpt": (lambda url: {"model": "azure/my-gpt", "api_base": url, "api_key": "fake-azure",
                               "api_version": "2024-10-21"}, "my-gpt"),
    "claude": (lambda url: {"model": "anthropic/claude-sonnet-4-5", "api_base": url, "api_key": "sk-ant-fake"},
               "claude-sonnet-4-5"),
    "gemini": (lambda url: {"model": "gemini/gemini-2.5-flash", "api_base": url, "api_key": "fake-gemini"},
               "gemini-2.5-flash"),
    "ollama": (lambda url: {"model": "ollama/llama3.2", "api_base": url}, "llama3.2"),
    "groq": (lambda url: {"model": "groq/llama-3.1-8b-instant", "api_base": url + "/v1", "api_key": "gsk-fake"},
             "llama-3.1-8b-instant"),
}


def gateway_config(fake_url: str) -> dict:
    models = [{"model_name": name, "litellm_params": build(fake_url)} for name, (build, _) in PROVIDER_GROUPS.items()]
    models += [
        {"model_name": "embed", "litellm_params": {"model": "openai/text-embedding-3-small", "api_base": fake_url + "/v1", "api_key": "k"}},
        {"model_name": "gemini-embed", "litellm_params": {"model": "gemini/text-embedding-004", "api_base": fake_url, "api_key": "k"}},
        {"model_name": "ollama-embed", "litellm_params": {"model": "ollama/nomic-embed-text", "api_base": fake_url}},
        # Faults chosen through the upstream model name (see aistrata.testing.fake_upstream.faults).
        {"model_name": "slow", "litellm_params": {"model": "openai/gpt-4o-mini@delay_ms=3000", "api_base": fake_url + "/v1",
                                                  "api_key": "k", "timeout": 0.5}},
        {"model_name": "stalls", "litellm_params": {"model": "openai/gpt-4o-mini@stall_after=4,stall_s=5",
                                                    "api_base": fake_url + "/v1", "api_key": "k", "timeout": 0.5}},
        {"model_name": "down", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1",
                                                  "api_key": "k", "connect_timeout": 1}},
    ]
    # No retries: these gateways test translation and error mapping; tests/gateway/routing tests retries.
    return {"model_list": models, "aliases": {"default": "gpt"}, "router_settings": {"num_retries": 0}}


def provider_env(fake_url: str) -> dict[str, str]:
    """Zero-config discovery pointed at the fake: `openai/<model>` etc. work without config."""
    return {
        "OPENAI_API_KEY": "sk-fake-env", "OPENAI_BASE_URL": fake_url + "/v1",
        "ANTHROPIC_API_KEY": "sk-ant-env", "ANTHROPIC_BASE_URL": fake_url,
        "GEMINI_API_KEY": "gem-env", "GEMINI_BASE_URL": fake_url,
        "OLLAMA_HOST": fake_url.removeprefix("http://"),
        "AZURE_OPENAI_API_KEY": "az-env", "AZURE_OPENAI_ENDPOINT": fake_url, "OPENAI_API_VERSION": "2024-10-21",
    }


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture()
def upstream(fake: FakeUpstream) -> Iterator[FakeUpstream]:
    """The shared fake with its knobs and records reset for this test."""
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture(scope="session")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """An open gateway (no master key), as on a developer's machine."""
    with GatewayServer(data_dir=tmp_path_factory.mktemp("gw"), config=gateway_config(fake.url),
                       env=provider_env(fake.url)) as server:
        yield server


MASTER_KEY = "sk-master-test-0123456789"


@pytest.fixture(scope="session")
def secured_gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway with a master key: every call needs a key."""
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY}
    with GatewayServer(data_dir=tmp_path_factory.mktemp("gw-secured"), config=gateway_config(fake.url), env=env) as server:
        yield server
