"""The routing dispatcher against a scripted dialect: retries, waits, fallbacks, dedicated
chains, breakers and stream failover, with the clock and the sleeps injected."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from aistrata.core import ChatResponse, Choice, ErrorKind, GatewayError, Message, StreamStart, TextDelta, TextPart
from aistrata.gateway.auth import ANONYMOUS
from aistrata.gateway.config import Settings
from aistrata.gateway.context import RequestContext
from aistrata.gateway.router import Router
from aistrata.gateway.routing import RoutingDispatcher, load_policy

from .helpers import chat, dep


class Script:
    """A dialect whose answers per deployment id are queued outcomes: "ok" or an error kind."""

    name = "openai_chat"

    def __init__(self, plan: dict[str, list[Any]]) -> None:
        self.plan = plan
        self.calls: list[str] = []

    def _next(self, dep_id: str) -> Any:
        self.calls.append(dep_id)
        queue = self.plan.get(dep_id) or ["ok"]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    async def chat(self, http: Any, req: Any, d: Any) -> ChatResponse:
        outcome = self._next(d.id)
        if isinstance(outcome, GatewayError):
            raise outcome
        return ChatResponse("id", d.model, [Choice(0, Message("assistant", [TextPart(f"from {d.id}")]))])

    async def stream(self, http: Any, req: Any, d: Any) -> AsyncIterator[Any]:
        outcome = self._next(d.id)
        yield StreamStart("id", d.model)
        if outcome == "cut-before":
            raise GatewayError(ErrorKind.upstream_unavailable, "cut")
        yield TextDelta(f"from {d.id}")
        if outcome == "cut-after":
            raise GatewayError(ErrorKind.upstream_unavailable, "cut")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def err(kind: ErrorKind, retry_after: float | None = None) -> GatewayError:
    return GatewayError(kind, kind.value, retry_after=retry_after)


def make(raw: dict[str, Any], groups: dict[str, int], plan: dict[str, list[Any]]) -> tuple[RoutingDispatcher, Script, Clock]:
    settings = Settings(data_dir=Path("."), raw=raw,
                        routing_strategy=str((raw.get("router_settings") or {}).get("routing_strategy", "round-robin")))
    settings.groups = {g: [dep(f"{g}#{i}", g) for i in range(n)] for g, n in groups.items()}
    script, clock = Script(plan), Clock()
    registry: Any = type("Reg", (), {"dialect": lambda self, name: script})()
    router = Router(settings, registry)
    d = RoutingDispatcher(router, registry, None, load_policy(settings), rng=random.Random(1),  # type: ignore[arg-type]
                          clock=clock, sleep=clock.sleep)
    return d, script, clock


def ctx() -> RequestContext:
    return RequestContext("r", "openai", "chat", ANONYMOUS)


RS = {"router_settings": {"routing_strategy": "round-robin", "num_retries": 2, "backoff_base": 0.1}}


async def test_retry_after_is_waited_for_then_the_same_deployment_answers() -> None:
    d, script, clock = make(RS, {"g": 1}, {"g#0": [err(ErrorKind.rate_limit, 1.5), "ok"]})
    c = ctx()
    resp = await d.chat(chat(), c)
    assert resp.choices[0].message.text == "from g#0"
    assert clock.slept == [1.5] and c.attempts == 2
    assert c.route["attempts"] == [{"deployment": "g#0", "group": "g", "error": "rate_limit", "wait_s": 1.5}]


async def test_a_retry_after_over_the_cap_moves_on_without_waiting() -> None:
    raw = {**RS, "router_settings": {**RS["router_settings"], "retry_after_max": 5, "fallbacks": [{"g": ["h"]}]}}
    d, script, clock = make(raw, {"g": 1, "h": 1}, {"g#0": [err(ErrorKind.rate_limit, 60)]})
    c = ctx()
    assert (await d.chat(chat(), c)).choices[0].message.text == "from h#0"
    assert clock.slept == [] and c.route["fallbacks"] == ["h"]


async def test_unavailable_tries_another_deployment_first_then_backs_off_then_falls_back() -> None:
    raw = {"router_settings": {"routing_strategy": "round-robin", "num_retries": 2, "backoff_base": 0.1},
           "groups": {"g": {"fallbacks": ["h"]}}}
    down = [err(ErrorKind.upstream_unavailable)]
    d, script, clock = make(raw, {"g": 2, "h": 1}, {"g#0": down, "g#1": down})
    c = ctx()
    assert (await d.chat(chat(), c)).choices[0].message.text == "from h#0"
    assert script.calls == ["g#0", "g#1", "g#0", "h#0"]  # a fresh deployment before a repeat
    assert len(clock.slept) == 1 and 0 <= clock.slept[0] <= 0.2  # full jitter, second retry
    assert c.attempts == 4 and c.route["retries"] == 3 and c.deployment is not None and c.deployment.id == "h#0"


async def test_dedicated_chains_for_context_length_and_content_policy() -> None:
    raw = {**RS, "router_settings": {**RS["router_settings"], "fallbacks": [{"g": ["general"]}],
                                     "context_window_fallbacks": [{"g": ["long"]}],
                                     "content_policy_fallbacks": [{"g": ["lenient"]}]}}
    groups = {"g": 1, "general": 1, "long": 1, "lenient": 1}
    d, script, _ = make(raw, groups, {"g#0": [err(ErrorKind.context_length)]})
    assert (await d.chat(chat(), ctx())).choices[0].message.text == "from long#0"
    d, script, _ = make(raw, groups, {"g#0": [err(ErrorKind.content_policy)]})
    c = ctx()
    assert (await d.chat(chat(), c)).choices[0].message.text == "from lenient#0"
    assert c.route["fallback_reasons"] == ["content_policy"]


async def test_client_errors_are_not_retried() -> None:
    raw = {**RS, "groups": {"g": {"fallbacks": ["h"]}}}
    d, script, clock = make(raw, {"g": 2, "h": 1}, {"g#0": [err(ErrorKind.authentication)]})
    with pytest.raises(GatewayError) as info:
        await d.chat(chat(), ctx())
    assert info.value.kind is ErrorKind.authentication and script.calls == ["g#0"]


async def test_open_breakers_are_skipped_then_probed() -> None:
    raw = {"router_settings": {"routing_strategy": "round-robin", "num_retries": 0, "allowed_fails": 2,
                               "cooldown_time": 10}, "groups": {"g": {"fallbacks": ["g"]}}}
    d, script, clock = make(raw, {"g": 2}, {"g#0": [err(ErrorKind.upstream_unavailable)] * 2 + ["ok"]})
    for _ in range(4):
        await d.chat(chat(), ctx())
    assert (await d.breakers.view("g#0", clock.now)).state == "open"
    script.calls.clear()
    for _ in range(3):
        await d.chat(chat(), ctx())
    assert script.calls == ["g#1"] * 3
    clock.now += 11
    for _ in range(2):  # round-robin lands on g#0 within two turns: the probe, which succeeds
        await d.chat(chat(), ctx())
    assert "g#0" in script.calls and (await d.breakers.view("g#0", clock.now)).state == "closed"


async def test_streams_fail_over_before_the_first_token_only() -> None:
    d, script, _ = make(RS, {"g": 2}, {"g#0": ["cut-before"], "g#1": ["ok", "cut-after"]})
    c = ctx()
    texts = [e.text async for e in d.stream(chat(), c) if isinstance(e, TextDelta)]
    assert texts == ["from g#1"] and c.attempts == 2
    with pytest.raises(GatewayError):
        async for _ in d.stream(chat(), ctx()):
            pass
    assert d.stats(d.router.groups["g"][1]).in_flight == 0


async def test_conditions_then_complexity_then_strategy() -> None:
    raw = {**RS, "groups": {"auto": {"routing_strategy": "complexity-based", "simple": "small", "complex": "big",
                                     "threshold": 0.4}},
           "routes": [{"when": {"tag": "batch"}, "model": "auto", "use": "small"}]}
    d, script, _ = make(raw, {"small": 1, "big": 1}, {})
    c = ctx()
    req = chat("Design an algorithm, prove it step by step and analyze its complexity. It must be "
               "lock-free, must not allocate, and why and how does it compare to a mutex?\n```c\nint x = 1;\n```")
    req.model = "auto"
    assert (await d.chat(req, c)).choices[0].message.text == "from big#0"
    assert c.route["complexity"]["decision"] == "complex" and c.route["group"] == "big"
    c = ctx()
    c.tags = ["batch"]
    assert (await d.chat(req, c)).choices[0].message.text == "from small#0"
    assert c.route["rule"] == {"index": 0, "use": "small"}
