"""End to end: the real `openai` SDK through a real gateway to the fake upstream. Which
deployment answered is read from the fake's reply ("Hello from fake <model>") and from the
requests the fake received."""

from __future__ import annotations

import threading
import time
import urllib.parse
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner

from aistrata.interface.cli import main
from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer

USER = [{"role": "user", "content": "hello there"}]


def ask(client: openai.OpenAI, model: str, content: str = "hello there", **kw: Any) -> str:
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kw)
    return resp.choices[0].message.content or ""


def answered_by(text: str) -> str:
    return text.split("Hello from fake ", 1)[1].split(".", 1)[0]


def route_of(gw: GatewayServer, client: openai.OpenAI, model: str, **kw: Any) -> tuple[str, dict[str, Any]]:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=USER, **kw)
    gw.flush()
    row = gw.services.requests.get(raw.headers["x-aistrata-request-id"])
    return raw.parse().choices[0].message.content or "", row


def upstream_models(upstream: FakeUpstream) -> list[str]:
    return [r["model"] for r in upstream.requests]


# ---- strategies -------------------------------------------------------------------------------


def test_round_robin_alternates(client: openai.OpenAI) -> None:
    got = [answered_by(ask(client, "rr")) for _ in range(4)]
    assert got[0] != got[1] and got[:2] == got[2:]


def test_weighted_follows_weights(client: openai.OpenAI) -> None:
    assert {answered_by(ask(client, "weighted")) for _ in range(5)} == {"gpt-4o"}


def test_cost_based_takes_the_cheapest(client: openai.OpenAI) -> None:
    assert {answered_by(ask(client, "cheapest")) for _ in range(3)} == {"gpt-4o-mini"}


def test_strategy_overridden_per_request(client: openai.OpenAI) -> None:
    got = {answered_by(ask(client, "cheapest", extra_headers={"x-aistrata-routing-strategy": "round-robin"}))
           for _ in range(2)}
    assert got == {"gpt-4o", "gpt-4o-mini"}
    with pytest.raises(openai.BadRequestError):
        ask(client, "cheapest", extra_body={"routing_strategy": "psychic"})


def test_least_busy_spreads_concurrent_requests(client: openai.OpenAI) -> None:
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(answered_by(ask(client, "busy")))) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.1)  # the first is in flight when the second is routed
    for t in threads:
        t.join()
    assert sorted(got) == ["gpt-4o", "gpt-4o-mini"]


def test_latency_based_settles_on_the_faster(client: openai.OpenAI) -> None:
    got = [answered_by(ask(client, "fast")) for _ in range(5)]
    assert got[-2:] == ["gpt-4o-mini", "gpt-4o-mini"]


def test_capability_filter_skips_a_too_small_context_window(client: openai.OpenAI) -> None:
    long = "please read all of this " * 20
    assert {answered_by(ask(client, "cap", long)) for _ in range(3)} == {"gpt-4o"}
    assert {answered_by(ask(client, "cap")) for _ in range(2)} == {"gpt-4o", "gpt-4o-mini"}


def test_complexity_routing_records_its_decision(routing_gateway: GatewayServer, client: openai.OpenAI) -> None:
    text, row = route_of(routing_gateway, client, "auto")
    assert answered_by(text) == "gpt-4o-mini"
    assert row["route"]["complexity"]["decision"] == "simple" and row["route"]["group"] == "small"
    hard = ("Design an algorithm for a lock-free queue, prove it correct step by step and analyze its complexity. "
            "It must not allocate and must handle edge cases. Why and how does it compare to a mutex?")
    assert answered_by(ask(client, "auto", hard)) == "gpt-4o"


def test_tag_condition_reroutes(routing_gateway: GatewayServer, client: openai.OpenAI) -> None:
    text, row = route_of(routing_gateway, client, "big", extra_headers={"x-aistrata-tags": "batch"})
    assert answered_by(text) == "gpt-4o-mini" and row["route"]["rule"] == {"index": 0, "use": "small"}
    assert answered_by(ask(client, "big")) == "gpt-4o"


# ---- failures ---------------------------------------------------------------------------------


def test_429_waits_out_retry_after_then_succeeds(routing_gateway: GatewayServer, client: openai.OpenAI,
                                                 upstream: FakeUpstream) -> None:
    text, row = route_of(routing_gateway, client, "limited")
    assert answered_by(text) == "gpt-4o-mini"
    assert row["attempts"] == 2 and row["route"]["attempts"][0]["error"] == "rate_limit"
    assert row["route"]["attempts"][0]["wait_s"] == pytest.approx(1.0, abs=0.05)
    assert len(upstream.requests) == 2


def test_503_is_retried_then_falls_back(routing_gateway: GatewayServer, client: openai.OpenAI,
                                        upstream: FakeUpstream) -> None:
    text, row = route_of(routing_gateway, client, "flaky")
    assert answered_by(text) == "gpt-4o-mini"
    assert upstream_models(upstream) == ["gpt-4o@status=503", "gpt-4o@status=503", "gpt-4o-mini"]
    assert row["attempts"] == 3 and row["route"]["fallbacks"] == ["small"]


def test_context_length_uses_the_context_window_chain(client: openai.OpenAI) -> None:
    assert answered_by(ask(client, "toolong")) == "gpt-4o"


def test_content_filter_uses_the_content_policy_chain(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    assert answered_by(ask(client, "filtered")) == "claude-sonnet-4-5"


def test_auth_errors_are_neither_retried_nor_failed_over(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.AuthenticationError):
        ask(client, "badkey")
    assert upstream_models(upstream) == ["gpt-4o@error=auth"]


def _breaker(gw: GatewayServer, dep_id: str) -> dict[str, Any]:
    rows = httpx.get(gw.url + "/api/deployments").json()["data"]
    return next(r for r in rows if r["id"] == dep_id)["breaker"]


def test_breaker_opens_half_opens_and_closes_after_one_probe(routing_gateway: GatewayServer,
                                                             client: openai.OpenAI, upstream: FakeUpstream) -> None:
    for _ in range(3):
        assert answered_by(ask(client, "fragile")) == "gpt-4o-mini"  # failed over each time
    assert _breaker(routing_gateway, "fragile#0")["state"] == "open"
    seen = len(upstream.requests)
    assert answered_by(ask(client, "fragile")) == "gpt-4o-mini"
    assert upstream_models(upstream)[seen:] == ["gpt-4o-mini"]  # skipped while open
    time.sleep(1.1)
    assert _breaker(routing_gateway, "fragile#0")["state"] == "half_open"
    assert answered_by(ask(client, "fragile")) == "gpt-4o"  # the probe; fail_first is used up
    assert _breaker(routing_gateway, "fragile#0")["state"] == "closed"


def test_reset_endpoint_and_cli(routing_gateway: GatewayServer, client: openai.OpenAI) -> None:
    for _ in range(2):
        ask(client, "flaky")  # 4 failures: open
    assert _breaker(routing_gateway, "flaky#0")["state"] == "open"
    dep = urllib.parse.quote("flaky#0", safe="")
    body = httpx.post(f"{routing_gateway.url}/api/deployments/{dep}/reset").json()
    assert body["breaker"]["state"] == "closed"
    assert httpx.post(f"{routing_gateway.url}/api/deployments/nope%230/reset").status_code == 404
    groups = {g["name"]: g for g in httpx.get(routing_gateway.url + "/api/groups").json()["data"]}
    assert groups["flaky"]["strategy"] == "weighted" and groups["flaky"]["fallbacks"] == ["small"]
    assert groups["auto"]["complexity"] == {"simple": "small", "complex": "big", "threshold": 0.4}
    out = CliRunner().invoke(main, ["routing", "--url", routing_gateway.url, "breakers"])
    assert out.exit_code == 0 and "flaky#0: closed" in out.output
    out = CliRunner().invoke(main, ["routing", "--url", routing_gateway.url, "groups"])
    assert out.exit_code == 0 and "fast: latency-based" in out.output


# ---- streams ----------------------------------------------------------------------------------


def stream_text(client: openai.OpenAI, model: str) -> str:
    chunks = client.chat.completions.create(model=model, messages=USER, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_stream_cut_before_the_first_token_fails_over_cleanly(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    text = stream_text(client, "cutfirst")
    assert text == ask(client, "small")  # the whole answer, from the fallback
    assert upstream_models(upstream)[:2] == ["gpt-4o@cut_after=1", "gpt-4o-mini"]


def test_stream_cut_after_the_first_token_ends_with_an_error(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.APIError):
        stream_text(client, "cutlate")
    assert upstream_models(upstream) == ["gpt-4o@cut_after=5"]  # no failover once content went out


def test_stream_stall_before_the_first_token_fails_over(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    assert answered_by(stream_text(client, "stallfirst")) == "gpt-4o-mini"
    assert upstream_models(upstream)[:2] == ["gpt-4o@stall_after=1,stall_s=5", "gpt-4o-mini"]
