"""Money budgets end to end, on one gateway: the race, periods, soft limits, settlement."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import openai
import pytest

from aistrata.gateway.limits import BudgetEvent, BudgetGuard, LimitsAndBudgets, Subjects
from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer

from .conftest import ask, client, model_list, new_key

pytestmark = pytest.mark.asyncio(loop_scope="function")  # fresh loop per test: clients never outlive it


def guard(gw: GatewayServer) -> BudgetGuard:
    return next(s for s in gw.services.gateway.admissions if isinstance(s, LimitsAndBudgets)).budgets


async def outcomes(calls: list[Any]) -> tuple[int, list[BaseException]]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    return len(results) - len(refused), refused


async def test_fifty_concurrent_requests_never_overspend(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(budgets=[{"scope": "team", "id": "kids", "max_usd": 1.0, "period": "monthly"}])
    c = client(gw, new_key(gw, team_id="kids"))
    admitted, refused = await outcomes([ask(c) for _ in range(50)])  # each may cost $0.10: 10 fit
    assert admitted == 10
    assert all(isinstance(e, openai.RateLimitError) for e in refused)
    assert all("budget 'team:kids monthly'" in e.message for e in refused)  # type: ignore[attr-defined]
    [usage] = (await guard(gw).usage(Subjects(None, None, "kids", None, ""), "team"))
    assert usage["spent_usd"] == pytest.approx(1.0) and usage["reserved_usd"] == 0
    with pytest.raises(openai.RateLimitError, match=r"budget 'team:kids monthly' is spent: \$1.00 of \$1.00"):
        await ask(c)


async def test_a_failed_call_releases_its_reservation(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(budgets=[{"scope": "key", "max_usd": 0.1, "period": "daily"}])
    c = client(gw, new_key(gw))
    for _ in range(3):  # each holds the whole budget while it runs, and gives it back
        with pytest.raises(openai.InternalServerError):
            await ask(c, "broken")
    await ask(c, "fast")
    with pytest.raises(openai.RateLimitError, match="is spent"):
        await ask(c, "fast")


async def test_the_budget_resets_with_its_period(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(budgets=[{"scope": "user", "id": "ann", "max_usd": 0.1, "period": "daily"}])
    now = [datetime(2026, 3, 31, 23, 0, tzinfo=timezone.utc)]
    guard(gw).clock = lambda: now[0]
    c = client(gw, new_key(gw, user_id="ann"))
    await ask(c, "fast")
    with pytest.raises(openai.RateLimitError, match="budget 'user:ann daily' is spent"):
        await ask(c, "fast")
    now[0] += timedelta(hours=1)  # midnight UTC: a new day, a new counter
    await ask(c, "fast")


async def test_soft_limit_raises_one_event(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(budgets=[{"scope": "team", "id": "ops", "max_usd": 1.0, "soft_usd": 0.25}])
    seen: list[BudgetEvent] = []
    guard(gw).hooks.append(seen.append)
    c = client(gw, new_key(gw, team_id="ops"))
    for _ in range(5):
        await ask(c, "fast")
    assert [(e.kind, e.budget) for e in seen] == [("soft_limit", "team:ops monthly")]
    assert seen[0].spent_usd == pytest.approx(0.3)
    assert guard(gw).counts["soft_limit"] == 1


async def test_key_metadata_budget_and_unknown_price(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway()
    c = client(gw, new_key(gw, metadata={"max_budget": 0.1, "budget_duration": "30d"}))
    await ask(c, "fast")
    with pytest.raises(openai.RateLimitError, match=r"budget 'key:key_\w+ monthly' is spent"):
        await ask(c, "fast")
    with pytest.raises(openai.RateLimitError, match="price of model 'mystery' is unknown"):
        await ask(c, "mystery")


async def test_unknown_price_can_be_allowed(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(budgets=[{"scope": "key", "max_usd": 1}], budgets_settings={"unknown_price": "allow"})
    await ask(client(gw, new_key(gw)), "mystery")



async def test_spend_survives_a_restart_on_one_node(fake: FakeUpstream, tmp_path: Path) -> None:
    """In-process counters start empty after a restart; the budget reads past spend back from
    the request log before admitting anything."""
    config = {"model_list": model_list(fake.url),
              "budgets": [{"scope": "team", "id": "ops", "max_usd": 0.3, "period": "monthly"}]}
    first = GatewayServer(data_dir=tmp_path, config=config, env={}).start()
    key = new_key(first, team_id="ops")
    try:
        for _ in range(2):  # $0.10 each (10 output tokens at $0.01)
            await ask(client(first, key), "fast")
    finally:
        first.stop()  # drains the recorder into the request log
    second = GatewayServer(data_dir=tmp_path, config=config, env={}).start()
    try:
        c = client(second, key)
        await ask(c, "fast")
        with pytest.raises(openai.RateLimitError, match=r"budget 'team:ops monthly' is spent: \$0.30 of \$0.30"):
            await ask(c, "fast")
    finally:
        second.stop()
