"""`/metrics` read by the Prometheus text parser after real SDK calls through a gateway, and
the label cardinality bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aistrata.core import Usage
from aistrata.observe.metrics import OTHER, GatewayMetrics
from aistrata.observe.recorder import Recorder
from aistrata.observe.records import RequestRecord
from aistrata.observe.traces import SpanFilters
from aistrata.providers.pricing import price
from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY, gateway_config, provider_env


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= ls)


@pytest.fixture()
def gw(fake: FakeUpstream, tmp_path: Path) -> Iterator[GatewayServer]:
    fake.reset()
    with GatewayServer(data_dir=tmp_path, config=gateway_config(fake.url), env=provider_env(fake.url)) as server:
        yield server


def test_metrics_after_sdk_calls(gw: GatewayServer) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="anything", max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi there"}])
    stream = client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True)
    for _ in stream:
        pass
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="down", messages=[{"role": "user", "content": "hi"}])
    assert gw.flush()
    rows = gw.services.requests.query()[0]

    found = samples(httpx.get(gw.url + "/metrics").text)
    assert total(found, "aistrata_requests_total", model="gpt", provider="openai") == 4
    assert total(found, "aistrata_requests_total", model="down") == 1
    assert total(found, "aistrata_request_errors_total", model="down", error_kind="upstream_unavailable") == 1
    gpt = [r for r in rows if r["requested_model"] == "gpt"]
    assert total(found, "aistrata_tokens_total", model="gpt", type="input") == sum(r["input_tokens"] for r in gpt)
    assert total(found, "aistrata_tokens_total", model="gpt", type="output") == sum(r["output_tokens"] for r in gpt)
    assert total(found, "aistrata_cost_usd_total", model="gpt") == pytest.approx(sum(r["cost_usd"] for r in gpt))
    assert total(found, "gen_ai_client_operation_duration_seconds_count", gen_ai_request_model="gpt") == 4
    assert total(found, "gen_ai_client_operation_time_to_first_chunk_seconds_count", gen_ai_request_model="gpt") == 1
    assert total(found, "gen_ai_client_token_usage_count", gen_ai_token_type="input") == 4
    # One row per request, which is also its gateway span: the spans recorder takes only
    # applications' spans.
    for recorder, written in (("requests", 5), ("spans", 0)):
        assert total(found, "aistrata_recorder_written_total", recorder=recorder) == written
        assert total(found, "aistrata_recorder_dropped_total", recorder=recorder) == 0
        assert found[("aistrata_recorder_queue_capacity", frozenset({("recorder", recorder)}))] == 50_000
    assert ("aistrata_recorder_queue_length", frozenset({("recorder", "requests")})) in found
    breaker = ("aistrata_deployment_breaker_state", frozenset({("deployment", "gpt#0"), ("model_group", "gpt")}))
    assert found[breaker] == 0  # closed


def test_metrics_count_with_recording_off(fake: FakeUpstream, tmp_path: Path) -> None:
    """`observe.enabled: false` stops the request log and traces, not the metrics."""
    fake.reset()
    config = {**gateway_config(fake.url), "observe": {"enabled": False}}
    with GatewayServer(data_dir=tmp_path, config=config, env=provider_env(fake.url)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="anything", max_retries=0)
        usages = [client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}]).usage
                  for _ in range(2)]
        server.flush()
        assert server.services.requests.query()[0] == []
        assert server.services.tracing.queries.spans(SpanFilters())[0] == []
        found = samples(httpx.get(server.url + "/metrics").text)
        assert total(found, "aistrata_requests_total", model="gpt") == 2
        assert total(found, "gen_ai_client_token_usage_count", gen_ai_token_type="input") == 2
        # No writer thread counts cost after a write here: it is priced as requests finish.
        dep = server.services.router.resolve("gpt")[0]
        expected = sum(price(dep.provider, dep.model, Usage(u.prompt_tokens, u.completion_tokens)).cost_usd
                       for u in usages)
        assert expected > 0
        assert total(found, "aistrata_cost_usd_total", model="gpt") == pytest.approx(expected)


def test_metrics_auth_when_configured(fake: FakeUpstream, tmp_path: Path) -> None:
    config = {**gateway_config(fake.url), "observe": {"metrics_auth": True}}
    env = {**provider_env(fake.url), "AISTRATA_MASTER_KEY": MASTER_KEY}
    with GatewayServer(data_dir=tmp_path, config=config, env=env) as server:
        assert httpx.get(server.url + "/metrics").status_code == 401
        ok = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {MASTER_KEY}"})
        assert ok.status_code == 200 and "aistrata_recorder_queue_length" in ok.text


def test_label_cardinality_is_bounded() -> None:
    metrics = GatewayMetrics(max_label_values=3)
    for i in range(20):
        metrics.observe(RequestRecord(id=f"r{i}", ts=0, requested_model=f"m{i}", provider="openai",
                                      key_alias=f"k{i % 5}", team_id=None, latency_ms=5.0, input_tokens=1))
    found = samples(metrics.render().decode())
    models = {dict(ls)["model"] for (n, ls), _ in found.items() if n == "aistrata_requests_total"}
    aliases = {dict(ls)["key_alias"] for (n, ls), _ in found.items() if n == "aistrata_requests_total"}
    assert models == {"m0", "m1", "m2", OTHER}
    assert aliases == {"k0", "k1", "k2", OTHER}
    assert total(found, "aistrata_requests_total", model=OTHER) == 17
    assert total(found, "aistrata_requests_total", team="none") == 20


def test_refusals_cache_hits_and_cost_on_write() -> None:
    metrics = GatewayMetrics()
    limited = RequestRecord(id="a", ts=0, requested_model="gpt", status=429, error_kind="rate_limit")
    broke = RequestRecord(id="b", ts=0, requested_model="gpt", status=429, error_kind="budget_exceeded")
    hit = RequestRecord(id="c", ts=0, requested_model="gpt", cache_hit=True, saved_usd=0.5, cost_usd=0.0)
    for rec in (limited, broke, hit):
        metrics.observe(rec)

    class Sink:
        def insert_many(self, records: list[RequestRecord]) -> None:
            pass

    metrics.metered(Sink()).insert_many([hit, RequestRecord(id="d", ts=0, requested_model="gpt", cost_usd=0.25)])
    found = samples(metrics.render().decode())
    assert total(found, "aistrata_limit_refusals_total", reason="rate_limit") == 1
    assert total(found, "aistrata_limit_refusals_total", reason="budget_exceeded") == 1
    assert total(found, "aistrata_cache_hits_total", model="gpt") == 1
    assert total(found, "aistrata_cache_saved_usd_total") == 0.5
    assert total(found, "aistrata_cost_usd_total") == 0.25


def test_request_path_series_export_as_prometheus_client_would() -> None:
    """Counters and histograms kept as plain numbers still export `_total`/`_created` and
    cumulative `_bucket`s with `_count`, `_sum` and `_created`, and only series that counted."""
    metrics = GatewayMetrics()
    for latency in (5.0, 30.0, 100_000.0):
        metrics.observe(RequestRecord(id="r", ts=0, requested_model="gpt", provider="openai", latency_ms=latency,
                                      input_tokens=5, output_tokens=0))
    found = samples(metrics.render().decode())
    base = {"model": "gpt", "provider": "openai", "key_alias": "none", "team": "none"}
    assert found[("aistrata_requests_total", frozenset(base.items()))] == 3
    assert ("aistrata_requests_created", frozenset(base.items())) in found
    assert total(found, "aistrata_tokens_total", type="input") == 15
    assert not [k for k in found if k[0] == "aistrata_tokens_total" and ("type", "output") in k[1]]
    assert not [k for k in found if k[0].startswith(("aistrata_request_errors", "gen_ai_client_operation_time_to"))]
    genai = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt",
             "error_type": ""}
    bucket = lambda le: found[("gen_ai_client_operation_duration_seconds_bucket",  # noqa: E731
                               frozenset({**genai, "le": le}.items()))]
    assert (bucket("0.01"), bucket("0.02"), bucket("0.04"), bucket("81.92"), bucket("+Inf")) == (1, 1, 2, 2, 3)
    assert found[("gen_ai_client_operation_duration_seconds_count", frozenset(genai.items()))] == 3
    assert found[("gen_ai_client_operation_duration_seconds_sum", frozenset(genai.items()))] == pytest.approx(100.035)
    assert ("gen_ai_client_operation_duration_seconds_created", frozenset(genai.items())) in found
    usage = {**genai, "gen_ai_token_type": "output"}
    del usage["error_type"]
    assert found[("gen_ai_client_token_usage_bucket", frozenset({**usage, "le": "1.0"}.items()))] == 3  # 0 <= 1


def test_each_recorders_back_pressure_has_its_own_series() -> None:
    metrics = GatewayMetrics()

    class Sink:
        def insert_many(self, records: list) -> None:
            pass

    spans = Recorder(Sink(), max_queue=2)  # never started: whatever exceeds the queue is dropped
    metrics.track_recorder("requests", Recorder(Sink()))
    metrics.track_recorder("spans", spans)
    for i in range(5):
        spans.record(RequestRecord(id=f"s{i}", ts=0))
    found = samples(metrics.render().decode())
    assert total(found, "aistrata_recorder_dropped_total", recorder="spans") == 3
    assert total(found, "aistrata_recorder_queue_length", recorder="spans") == 2
    assert total(found, "aistrata_recorder_dropped_total", recorder="requests") == 0
    assert total(found, "aistrata_recorder_queue_capacity", recorder="spans") == 2
