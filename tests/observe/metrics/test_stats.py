"""Stats and cost aggregates on known data (both engines), and hand-checked prices for
cached-input and reasoning tokens through a real gateway."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from aistrata.observe.records import RequestRecord
from aistrata.observe.stats import RequestStats, percentile
from aistrata.store import Database, RequestFilters, RequestLog, migrate
from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import gateway_config, provider_env

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def rec(i: int, model: str, latency: float, **kw: object) -> RequestRecord:
    return RequestRecord(id=f"r{model}{i}", ts=kw.pop("ts", T0 + i), requested_model=model,  # type: ignore[arg-type]
                         provider="openai", latency_ms=latency, **kw)  # type: ignore[arg-type]


@pytest.fixture()
def stats(database: Database) -> RequestStats:
    migrate(database)
    records = [rec(i, "a", float(10 * (i + 1)), input_tokens=10, output_tokens=5, cost_usd=0.01,
                   team_id="t1", tags=["x", "y"], metadata={"project": "p1"}) for i in range(10)]
    records += [rec(i, "b", 100.0, ttft_ms=float(i + 1), error_kind="timeout" if i < 2 else None,
                    cache_hit=i == 3, cost_usd=0.5, team_id="t2", tags=["y"], metadata={"project": "p2"},
                    ts=T0 + DAY + i) for i in range(4)]
    RequestLog(database).insert_many(records)
    return RequestStats(database)


def test_percentile_interpolates_like_percentile_cont() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0], 0.99) == 10.0
    assert percentile([], 0.5) is None


def test_summary_by_model(stats: RequestStats) -> None:
    rows = {r["group"]: r for r in stats.summary(RequestFilters(since=T0, until=T0 + 2 * DAY), "model")}
    a, b = rows["a"], rows["b"]
    # latencies 10, 20, ..., 100: p50 = 55, p95 = 95.5, p99 = 99.1 (linear interpolation)
    assert (a["requests"], a["errors"], a["error_rate"]) == (10, 0, 0.0)
    assert a["p50_latency_ms"] == pytest.approx(55.0)
    assert a["p95_latency_ms"] == pytest.approx(95.5)
    assert a["p99_latency_ms"] == pytest.approx(99.1)
    assert a["p50_ttft_ms"] is None
    assert a["tokens_per_request"] == 15.0
    assert a["cost_per_request"] == pytest.approx(0.01) and a["total_cost_usd"] == pytest.approx(0.1)
    assert (b["errors"], b["error_rate"], b["cache_hit_rate"]) == (2, 0.5, 0.25)
    assert b["p50_ttft_ms"] == pytest.approx(2.5) and b["p95_ttft_ms"] == pytest.approx(3.85)


def test_summary_ungrouped_and_filtered(stats: RequestStats) -> None:
    [row] = stats.summary(RequestFilters(since=T0, until=T0 + DAY, team_id="t1"))
    assert row["group"] == "all" and row["requests"] == 10
    [empty] = stats.summary(RequestFilters(since=0, until=1))
    assert empty["requests"] == 0 and empty["p50_latency_ms"] is None


def test_percentiles_capped_in_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    migrate(db)
    RequestLog(db).insert_many([rec(i, "a", float(i)) for i in range(10)])
    [row] = RequestStats(db, max_percentile_rows=4).summary(RequestFilters())
    assert row["percentiles_sampled"] is True and row["p50_latency_ms"] == pytest.approx(7.5)  # newest four: 6..9


@pytest.mark.parametrize("group_by, expected", [
    ("team", {"t1": 0.1, "t2": 2.0}),
    ("tag", {"x": 0.1, "y": 2.1}),           # a request counts in each of its tags
    ("project", {"p1": 0.1, "p2": 2.0}),
    ("day", {"2026-01-01": 0.1, "2026-01-02": 2.0}),
    (None, {"all": 2.1}),
])
def test_costs_by_group(stats: RequestStats, group_by: str | None, expected: dict[str, float]) -> None:
    rows = stats.costs(RequestFilters(since=T0, until=T0 + 2 * DAY), group_by)
    assert {r["group"]: pytest.approx(r["cost_usd"]) for r in rows} == expected
    assert rows[0]["cost_usd"] == max(expected.values())  # biggest spender first


def test_bad_group_by(stats: RequestStats) -> None:
    with pytest.raises(ValueError, match="group_by"):
        stats.summary(RequestFilters(), "colour")


def test_cached_and_reasoning_tokens_priced_through_the_gateway(fake: FakeUpstream, tmp_path: Path) -> None:
    fake.reset()
    fake.faults.cached_tokens, fake.faults.reasoning_tokens = 4, 7
    try:
        with GatewayServer(data_dir=tmp_path, config=gateway_config(fake.url), env=provider_env(fake.url)) as gw:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
            client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "one two three four five"}],
                                           metadata={"project": "apollo"})
            gw.flush()
            [row], _ = gw.services.requests.query()
            # The fake counts 5 words + 3 per message = 8 input tokens, 20 reply words + 7 reasoning.
            assert (row["input_tokens"], row["cache_read_tokens"]) == (8, 4)
            assert (row["output_tokens"], row["reasoning_tokens"]) == (27, 7)
            # gpt-4o-mini: $0.15/M input, $0.075/M cached input, $0.60/M output (reasoning is output).
            expected = 4 * 0.15e-6 + 4 * 0.075e-6 + 27 * 0.60e-6
            assert row["cost_usd"] == pytest.approx(expected, rel=1e-9)
            assert row["price_version"].startswith("genai-prices")
            body = httpx.get(gw.url + "/api/costs", params={"group_by": "project"}).json()
            assert body["data"][0]["group"] == "apollo"
            assert body["data"][0]["cost_usd"] == pytest.approx(expected, rel=1e-9)
            stats = httpx.get(gw.url + "/api/stats", params={"group_by": "model"}).json()["data"]
            assert stats[0]["group"] == "gpt" and stats[0]["requests"] == 1 and stats[0]["p50_latency_ms"] > 0
            assert httpx.get(gw.url + "/api/stats", params={"group_by": "colour"}).status_code == 400
    finally:
        fake.reset()
