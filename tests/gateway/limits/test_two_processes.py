"""Two real `aistrata serve` processes sharing Redis and PostgreSQL: a budget and a
tokens-per-minute limit hold across both, not per process."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import psycopg
import pytest

from aistrata.providers.tokens import count_tokens
from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayProcess
from tests.conftest import MASTER_KEY

from .conftest import drop_keys, model_list

TAG = secrets.token_hex(4)
BUDGET_TEAM, TPM_TEAM = f"race-{TAG}", f"tpm-{TAG}"
MESSAGES = [{"role": "user", "content": "hi"}]
# Room for exactly 10 calls as reserved (estimated input + max_tokens=10 output).
TPM = 10 * (count_tokens("gpt-4o-mini", MESSAGES).count + 10)


@pytest.fixture(scope="module")
def cluster(fake: FakeUpstream, postgres_url: str, redis_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two gateway processes on one database schema and one Redis; yields their URLs."""
    tmp = tmp_path_factory.mktemp("cluster")
    schema = f"t_{TAG}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    config = {
        "model_list": model_list(fake.url, delay_ms=500),
        "budgets": [{"scope": "team", "id": BUDGET_TEAM, "max_usd": 1.0, "period": "daily"}],
        "limits": [{"scope": "team", "id": TPM_TEAM, "tokens_per_minute": TPM}],
    }
    env = {"AISTRATA_REDIS_URL": redis_url, "AISTRATA_MASTER_KEY": MASTER_KEY,
           "AISTRATA_DATABASE_URL": f"{postgres_url}?options=-csearch_path%3D{schema}"}
    procs = [GatewayProcess(tmp / f"gw{i}", config, env) for i in range(2)]
    try:
        for proc in procs:  # one after the other: the first start migrates the schema
            proc.start()
        yield [proc.url for proc in procs]
    finally:
        for proc in procs:
            proc.stop()
        drop_keys(redis_url, f"aistrata:*{TAG}*")


def team_key(url: str, team: str) -> str:
    resp = httpx.post(url + "/api/keys", json={"team_id": team}, headers={"authorization": f"Bearer {MASTER_KEY}"})
    resp.raise_for_status()
    return str(resp.json()["key"])


def fifty_across(urls: list[str], key: str) -> tuple[list[Any], list[BaseException]]:
    """50 requests at once, alternating between the processes. Threads, not the test's event
    loop: these clients must not depend on what earlier tests left on a shared loop."""
    clients = [openai.OpenAI(base_url=u + "/v1", api_key=key, max_retries=0) for u in urls]

    def one(i: int) -> Any:
        try:
            return clients[i % 2].chat.completions.create(model="priced", max_tokens=10, messages=MESSAGES)
        except openai.APIError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    refused = [r for r in results if isinstance(r, BaseException)]
    return [r for r in results if not isinstance(r, BaseException)], refused


def test_budget_holds_across_two_processes(cluster: list[str]) -> None:
    admitted, refused = fifty_across(cluster, team_key(cluster[0], BUDGET_TEAM))
    print(f"budget race over 2 processes: {len(admitted)} admitted, {len(refused)} refused")
    assert len(admitted) == 10  # $1.00 at $0.10 worst case (and true cost) each
    assert all(isinstance(e, openai.RateLimitError) and f"budget 'team:{BUDGET_TEAM} daily'" in e.message
               for e in refused)


def test_tokens_per_minute_hold_across_two_processes(cluster: list[str]) -> None:
    admitted, refused = fifty_across(cluster, team_key(cluster[1], TPM_TEAM))
    used = sum(r.usage.total_tokens for r in admitted)
    print(f"TPM race over 2 processes: {len(admitted)} admitted ({used} of {TPM} tokens), {len(refused)} refused")
    # Per-process counting would let through about twice the limit.
    assert 10 <= len(admitted) and used <= TPM
    assert all(isinstance(e, openai.RateLimitError) and "tokens per minute" in e.message for e in refused)
