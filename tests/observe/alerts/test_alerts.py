"""Alert rules against a loopback webhook receiver, with an injected clock: notifications go
out exactly on state changes, in each payload format, retried when the receiver fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aistrata.observe.alerts import AlertRule, Alerts, step
from aistrata.observe.evals import Score, ScoreStore
from aistrata.observe.records import RequestRecord
from aistrata.store import Database, RequestLog, migrate

T0 = 1_767_225_600_000
# The async fixtures (receiver, HTTP session) live on the session loop; so do the tests using them.
on_session_loop = pytest.mark.asyncio(loop_scope="session")


class Receiver:
    """A tiny webhook endpoint: `/fail-once` answers 500 to its first call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.path, await request.json()))
        if request.path == "/fail-once" and sum(p == "/fail-once" for p, _ in self.calls) == 1:
            return web.Response(status=500)
        return web.json_response({"ok": True})

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [b for p, b in self.calls if p == path]


@pytest.fixture()
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield recv
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture()
async def setup(database: Database) -> AsyncIterator[tuple[Alerts, Clock, Database]]:
    migrate(database)
    clock = Clock()
    session = aiohttp.ClientSession()
    alerts = Alerts(database, lambda: session, options={"alert_backoff_s": 0.001}, clock=clock)
    yield alerts, clock, database
    await alerts.notifier.close()
    await session.close()


def errors(db: Database, at: int, failed: int, ok: int) -> None:
    RequestLog(db).insert_many(
        [RequestRecord(id=f"e{at}-{i}", ts=at, requested_model="gpt", status=503, error_kind="upstream_unavailable",
                       latency_ms=10.0) for i in range(failed)]
        + [RequestRecord(id=f"o{at}-{i}", ts=at, requested_model="gpt", latency_ms=10.0) for i in range(ok)])


def test_state_machine_steps() -> None:
    assert step("ok", None, True, 100, 50) == ("pending", 100, None)
    assert step("pending", 100, True, 149, 50) == ("pending", 100, None)
    assert step("pending", 100, True, 150, 50) == ("firing", 100, "firing")
    assert step("firing", 100, True, 999, 50) == ("firing", 100, None)
    assert step("firing", 100, False, 1000, 50) == ("ok", None, "resolved")
    assert step("pending", 100, False, 120, 50) == ("ok", None, None)
    assert step("ok", None, True, 5, 0) == ("firing", 5, "firing")


@on_session_loop
async def test_notifies_exactly_on_state_changes(setup: tuple[Alerts, Clock, Database], receiver: Receiver) -> None:
    alerts, clock, db = setup
    rule = AlertRule.from_spec({
        "name": "errors", "type": "error_rate", "threshold": 0.5, "window_s": 60, "for_s": 30,
        "filters": {"model": "gpt"}, "notify": [
            {"url": receiver.url + "/generic"}, {"url": receiver.url + "/slack", "format": "slack"},
            {"url": receiver.url + "/pd", "format": "pagerduty", "routing_key": "R0UT1NG"}]})
    alerts.store.put(rule)
    errors(db, T0 - 1000, failed=3, ok=1)

    async def tick_at(offset_s: float) -> str:
        clock.ms = T0 + int(offset_s * 1000)
        await alerts.engine.tick()
        await alerts.notifier.drain()
        return alerts.store.get(rule.id).state  # type: ignore[union-attr]

    assert await tick_at(0) == "pending"
    assert await tick_at(10) == "pending"
    assert receiver.calls == []
    assert await tick_at(31) == "firing"
    assert await tick_at(45) == "firing"  # no repeat while firing
    assert len(receiver.calls) == 3
    assert await tick_at(120) == "ok"  # the errors left the window
    assert await tick_at(130) == "ok"

    generic = receiver.bodies("/generic")
    assert [b["event"] for b in generic] == ["firing", "resolved"]
    assert generic[0]["value"] == 0.75 and generic[0]["rule"]["name"] == "errors"
    assert [b["text"].split("]")[0] for b in receiver.bodies("/slack")] == ["[FIRING", "[RESOLVED"]
    trigger, resolve = receiver.bodies("/pd")
    assert trigger["routing_key"] == "R0UT1NG" and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == resolve["dedup_key"] == rule.id and resolve["event_action"] == "resolve"
    assert trigger["payload"]["severity"] == "error" and trigger["payload"]["source"] == "aistrata"
    log = alerts.store.deliveries(rule.id)
    assert [(d["event"], d["status"], d["attempts"]) for d in log] == [
        ("firing", "delivered", 1)] * 3 + [("resolved", "delivered", 1)] * 3


@on_session_loop
async def test_retried_when_the_receiver_fails(setup: tuple[Alerts, Clock, Database], receiver: Receiver) -> None:
    alerts, clock, _ = setup
    rule = alerts.store.put(AlertRule.from_spec({
        "name": "budget", "type": "budget_soft_limit", "window_s": 300, "filters": {"scope": "team"},
        "notify": [{"url": receiver.url + "/fail-once"}]}))
    alerts.notify_budget_event("team", "research", spent_usd=80.0, budget_usd=100.0)
    await alerts.engine.tick()
    await alerts.notifier.drain()
    [delivery] = alerts.store.deliveries(rule.id)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2
    assert [a["status"] for a in delivery["attempt_log"]] == [500, 200]
    assert len(receiver.bodies("/fail-once")) == 2


@on_session_loop
async def test_gives_up_after_max_attempts(setup: tuple[Alerts, Clock, Database]) -> None:
    alerts, _, _ = setup
    rule = alerts.store.put(AlertRule.from_spec({
        "name": "dead", "type": "budget_soft_limit", "notify": [{"url": "http://127.0.0.1:9/hook"}]}))
    alerts.notify_budget_event("key", "k1", spent_usd=9.0, budget_usd=10.0)
    await alerts.engine.tick()
    await alerts.notifier.drain()
    [delivery] = alerts.store.deliveries(rule.id)
    assert delivery["status"] == "failed" and delivery["attempts"] == 5
    assert all("error" in a for a in delivery["attempt_log"])


@on_session_loop
async def test_cost_latency_and_quality_rules(setup: tuple[Alerts, Clock, Database]) -> None:
    alerts, clock, db = setup
    RequestLog(db).insert_many([RequestRecord(id=f"r{i}", ts=T0 - 10, requested_model="gpt", team_id="t1",
                                              latency_ms=float(100 * (i + 1)), cost_usd=0.4) for i in range(10)])
    ScoreStore(db).add(Score("request", "r1", "helpful", value=0.2, created_at=T0 - 5))
    ScoreStore(db).add(Score("request", "r2", "helpful", value=0.4, created_at=T0 - 5))
    specs = [
        ({"type": "cost", "threshold": 3.0, "filters": {"team_id": "t1"}}, 4.0, True),
        ({"type": "cost", "threshold": 3.0, "filters": {"team_id": "t2"}}, 0.0, False),
        ({"type": "latency_p95", "threshold": 900}, 955.0, True),
        ({"type": "latency_p95", "threshold": 900, "min_requests": 11}, 955.0, False),
        ({"type": "quality", "evaluator": "helpful", "threshold": 0.5}, 0.3, True),
        ({"type": "quality", "evaluator": "helpful", "threshold": 0.25}, 0.3, False),
    ]
    for i, (spec, value, breached) in enumerate(specs):
        rule = AlertRule.from_spec({"name": f"r{i}", **spec})
        got, hit = alerts.engine.measure(rule, clock.ms)
        assert (got, hit) == (pytest.approx(value), breached), spec


@pytest.mark.parametrize("spec, message", [
    ({"name": "x", "type": "weather"}, "type must be"),
    ({"name": "x", "type": "quality"}, "evaluator"),
    ({"name": "x", "type": "cost", "filters": {"colour": "red"}}, "unknown filters"),
    ({"name": "x", "type": "cost", "filters": {"scope": "team"}}, "unknown filters"),
    ({"name": "x", "type": "cost", "notify": [{"url": "http://h", "format": "pagerduty"}]}, "routing_key"),
])
def test_rule_validation(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertRule.from_spec(spec)
