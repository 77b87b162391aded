"""Against a real gateway whose fake upstream is also the judge: online rules score requests
after they complete, the judge call is an ordinary request tagged `eval` with its cost, people
post feedback, and dataset runs compare two model groups."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Callable

import httpx
import openai
import pytest

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY, gateway_config, provider_env

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@pytest.fixture(scope="module")
def gw(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = {**gateway_config(fake.url), "evaluations": [
        {"name": "helpful", "evaluator": "helpfulness", "judge_model": "gpt", "sample_rate": 1.0, "models": ["claude"]},
        {"name": "has_hello", "evaluator": "regex", "pattern": "^Hello", "models": ["claude"]},
    ]}
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY}
    with GatewayServer(data_dir=tmp_path_factory.mktemp("evals"), config=config, env=env) as server:
        yield server


def test_online_rules_and_judge_through_the_gateway(gw: GatewayServer) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "user", "content": "What is the capital of France?"}])
    request_id = raw.headers["x-aistrata-request-id"]

    def scores() -> list[dict[str, Any]]:
        rows = httpx.get(gw.url + "/api/scores", params={"target_id": request_id}, headers=ADMIN).json()["data"]
        return rows if len(rows) == 2 else []

    found = {s["name"]: s for s in wait_for(scores)}
    assert found["has_hello"]["value"] == 1.0 and found["has_hello"]["source"] == "EVAL"
    helpful = found["helpful"]
    assert helpful["data_type"] == "NUMERIC" and helpful["value"] == 1.0  # the fake judge answers {"score": 1}
    assert helpful["evaluator"] == "helpfulness" and helpful["judge_request_id"]

    gw.flush()
    judge = gw.services.requests.get(helpful["judge_request_id"])
    assert judge is not None and judge["tags"] == ["eval"] and judge["requested_model"] == "gpt"
    assert judge["cost_usd"] > 0 and judge["metadata"]["target"] == request_id
    costs = httpx.get(gw.url + "/api/costs", params={"group_by": "tag"}, headers=ADMIN).json()["data"]
    assert any(r["group"] == "eval" and r["cost_usd"] > 0 for r in costs)
    # The judge's own request is never judged, and gpt is outside the rules' models.
    assert httpx.get(gw.url + "/api/scores", params={"target_id": judge["id"]}, headers=ADMIN).json()["data"] == []


def test_feedback_from_people(gw: GatewayServer) -> None:
    keyed = httpx.post(gw.url + "/api/keys", json={"alias": "app"}, headers=ADMIN).json()["key"]
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=keyed, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
    request_id = raw.headers["x-aistrata-request-id"]
    gw.flush()
    as_key = {"Authorization": f"Bearer {keyed}"}
    thumbs = httpx.post(gw.url + "/api/scores", headers=as_key,
                        json={"request_id": request_id, "name": "thumbs", "value": True, "data_type": "BOOLEAN",
                              "comment": "great"})
    assert thumbs.status_code == 201 and thumbs.json()["value"] == 1.0 and thumbs.json()["source"] == "API"
    label = httpx.post(gw.url + "/api/scores", headers=ADMIN,
                       json={"trace_id": "a" * 32, "name": "tone", "label": "friendly", "source": "HUMAN"})
    assert label.status_code == 201 and label.json()["data_type"] == "CATEGORICAL"
    # A key cannot score requests it did not make, and bad bodies are 400s.
    assert httpx.post(gw.url + "/api/scores", headers=as_key,
                      json={"request_id": "req_other", "name": "x", "value": 1}).status_code == 404
    assert httpx.post(gw.url + "/api/scores", headers=ADMIN, json={"name": "x", "value": 1}).status_code == 400
    assert httpx.post(gw.url + "/api/scores", headers=ADMIN,
                      json={"span_id": "b" * 16, "name": "x", "data_type": "BOOLEAN", "value": 3}).status_code == 400
    listed = httpx.get(gw.url + "/api/scores", params={"name": "thumbs"}, headers=ADMIN).json()["data"]
    assert [s["target_id"] for s in listed] == [request_id]
    assert httpx.get(gw.url + "/api/scores", headers=as_key).status_code == 403


def test_dataset_run_compares_two_models(gw: GatewayServer) -> None:
    created = httpx.post(gw.url + "/api/datasets", headers=ADMIN, json={
        "name": "capitals", "items": [
            {"input": "Capital of France?", "expected_output": "Paris"},
            {"input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Peru?"}],
             "expected_output": "Lima"},
        ]})
    assert created.status_code == 201 and len(created.json()["items"]) == 2
    ds = created.json()["id"]
    assert httpx.post(gw.url + "/api/datasets", headers=ADMIN, json={"name": "capitals"}).status_code == 400
    more = httpx.post(gw.url + f"/api/datasets/{ds}/items", headers=ADMIN,
                      json={"items": [{"input": "Capital of Chile?", "expected_output": "Santiago"}]})
    assert more.status_code == 201
    assert len(httpx.get(gw.url + f"/api/datasets/{ds}", headers=ADMIN).json()["items"]) == 3

    run = httpx.post(gw.url + f"/api/datasets/{ds}/runs", headers=ADMIN, json={
        "models": ["gpt", "claude"],
        "evaluators": ["exact_match", {"evaluator": "regex", "pattern": "^Hello from fake"},
                       {"evaluator": "helpfulness", "judge_model": "gpt"}],
    })
    assert run.status_code == 202
    report = wait_for(lambda: (r := httpx.get(gw.url + f"/api/runs/{run.json()['id']}", headers=ADMIN).json())
                      ["status"] != "running" and r)
    assert report["status"] == "done" and len(report["items"]) == 6
    assert set(report["comparison"]) == {"gpt", "claude"}
    for model in ("gpt", "claude"):
        summary = report["comparison"][model]
        assert summary["items"] == 3 and summary["errors"] == 0
        assert summary["mean_scores"] == {"exact_match": 0.0, "regex": 1.0, "helpfulness": 1.0}
        assert summary["mean_latency_ms"] > 0 and summary["total_cost_usd"] > 0
    # Sonnet costs more than gpt-4o-mini for the same tokens.
    assert report["comparison"]["claude"]["total_cost_usd"] > report["comparison"]["gpt"]["total_cost_usd"]
    assert report["items"][0]["output"].startswith("Hello from fake")

    bad = httpx.post(gw.url + f"/api/datasets/{ds}/runs", headers=ADMIN, json={"models": ["gpt"], "evaluators": ["nope"]})
    assert bad.status_code == 400
    assert httpx.get(gw.url + "/api/runs/run_missing", headers=ADMIN).status_code == 404
