"""The budgets/limits management API, the `aistrata budgets` and `aistrata limits` CLIs; budget periods."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import httpx
import openai
import pytest
from click.testing import CliRunner

from aistrata.gateway.config import ConfigError
from aistrata.gateway.limits.periods import bounds, litellm_period
from aistrata.interface.cli import main
from aistrata.testing.gateway import GatewayServer
from tests.conftest import MASTER_KEY

from .conftest import ask, client, new_key

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.mark.asyncio(loop_scope="function")
async def test_budgets_api_and_usage(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(env={"AISTRATA_MASTER_KEY": MASTER_KEY},
                      limits=[{"scope": "team", "id": "kids", "requests_per_minute": 100}])
    async with httpx.AsyncClient(base_url=gw.url, headers=ADMIN) as http:
        assert (await http.post("/api/budgets", json={"scope": "team", "id": "kids", "max_usd": 5,
                                                      "period": "fortnightly"})).status_code == 400
        made = (await http.post("/api/budgets", json={"scope": "team", "id": "kids", "max_usd": 5,
                                                      "soft_usd": 4, "period": "weekly"})).json()
        assert made["id"].startswith("bud_") and made["origin"] == "api"
        await ask(client(gw, new_key(gw, team_id="kids")), "fast")
        usage = (await http.get("/api/usage", params={"scope": "team", "id": "kids"})).json()
        [budget] = usage["budgets"]
        assert (budget["spent_usd"], budget["reserved_usd"], budget["max_usd"]) == (pytest.approx(0.1), 0, 5)
        assert usage["limits"][0]["counters"]["requests"] == {"limit": 100, "used": 1}
        limits = (await http.get("/api/limits")).json()
        assert limits["data"][0]["per_minute"] == {"requests": 100} and limits["state"]["backend"] == "memory"
        assert (await http.delete(f"/api/budgets/{made['id']}")).status_code == 200
        assert (await http.get("/api/budgets")).json()["data"] == []
        denied = await http.get("/api/budgets", headers={"authorization": "Bearer " + new_key(gw)})
        assert denied.status_code == 403


@pytest.mark.asyncio(loop_scope="function")
async def test_a_caller_meets_budgets_made_and_deleted_while_it_calls(
    make_gateway: Callable[..., GatewayServer],
) -> None:
    """What applies to a caller is worked out once and kept (`limits.plans`): a budget made or
    deleted through the API must still take effect on the caller's very next request."""
    gw = make_gateway(env={"AISTRATA_MASTER_KEY": MASTER_KEY})
    c = client(gw, new_key(gw, team_id="kids"))
    await ask(c, "fast")
    async with httpx.AsyncClient(base_url=gw.url, headers=ADMIN) as http:
        made = (await http.post("/api/budgets", json={"scope": "team", "id": "kids", "max_usd": 0,
                                                      "period": "daily"})).json()
        with pytest.raises(openai.APIStatusError, match="budget 'team:kids daily' is spent"):
            await ask(c, "fast")
        assert (await http.delete(f"/api/budgets/{made['id']}")).status_code == 200
    await ask(c, "fast")


@pytest.mark.asyncio(loop_scope="function")
async def test_a_request_a_budget_refuses_uses_none_of_its_rate_limit(
    make_gateway: Callable[..., GatewayServer],
) -> None:
    """Windows and budget holds are charged in one step: a refusal by either charges neither."""
    gw = make_gateway(env={"AISTRATA_MASTER_KEY": MASTER_KEY},
                      limits=[{"scope": "team", "id": "kids", "requests_per_minute": 2}])
    c = client(gw, new_key(gw, team_id="kids"))
    async with httpx.AsyncClient(base_url=gw.url, headers=ADMIN) as http:
        made = (await http.post("/api/budgets", json={"scope": "team", "id": "kids", "max_usd": 0,
                                                      "period": "daily"})).json()
        for _ in range(3):
            with pytest.raises(openai.APIStatusError, match="budget 'team:kids daily' is spent"):
                await ask(c, "fast")
        await http.delete(f"/api/budgets/{made['id']}")
        usage = (await http.get("/api/usage", params={"scope": "team", "id": "kids"})).json()
        assert usage["limits"][0]["counters"]["requests"] == {"limit": 2, "used": 0}
    await ask(c, "fast")
    await ask(c, "fast")
    with pytest.raises(openai.RateLimitError):
        await ask(c, "fast")


@pytest.mark.asyncio(loop_scope="function")
async def test_limits_cli_reads_a_running_gateway(make_gateway: Callable[..., GatewayServer]) -> None:
    gw = make_gateway(env={"AISTRATA_MASTER_KEY": MASTER_KEY},
                      limits=[{"scope": "team", "id": "kids", "requests_per_minute": 100, "concurrent": 3},
                              {"scope": "key_model", "model": "fast", "tokens_per_minute": 5000}],
                      budgets=[{"scope": "team", "id": "kids", "max_usd": 5, "period": "daily"}])
    raw = new_key(gw, team_id="kids")
    key_id = gw.services.keys.list()[0].id
    await ask(client(gw, raw), "fast")
    runner = CliRunner()
    api = ["--url", gw.url, "--key", MASTER_KEY]

    listed = runner.invoke(main, ["limits", *api, "list"])
    assert listed.exit_code == 0, listed.output
    assert "team:kids (sliding_window, config#0): 100 requests a minute, 3 in flight" in listed.output
    assert "key_model:* model fast (sliding_window, config#1): 5000 tokens a minute" in listed.output
    assert "counters: memory, ok" in listed.output

    team = runner.invoke(main, ["limits", *api, "usage", "team", "kids"])
    assert team.exit_code == 0, team.output
    assert "budget team:kids daily: $0.1000 spent and $0.0000 held of $5.00" in team.output
    assert "limit team:kids (sliding_window): requests 1 of 100, concurrent 0 of 3" in team.output
    per_model = runner.invoke(main, ["limits", *api, "usage", "key_model", key_id, "--model", "fast", "--json"])
    [counted] = json.loads(per_model.output)["limits"]
    assert counted["counters"]["tokens"]["used"] > 0
    nobody = runner.invoke(main, ["limits", *api, "usage", "team", "grown-ups"])
    assert "no limit or budget applies to team grown-ups" in nobody.output
    denied = runner.invoke(main, ["limits", "--url", gw.url, "--key", raw, "list"])
    assert denied.exit_code != 0 and "403" in denied.output


def test_budgets_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    made = runner.invoke(main, ["budgets", "create", *base, "--scope", "org", "--id", "acme", "--max-usd", "50"])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(main, ["budgets", "list", *base])
    assert '"subject": "acme"' in listed.output and '"period": "monthly"' in listed.output
    budget_id = listed.output.split('"id": "')[1].split('"')[0]
    assert runner.invoke(main, ["budgets", "delete", *base, budget_id]).exit_code == 0
    assert runner.invoke(main, ["budgets", "delete", *base, budget_id]).exit_code != 0


def test_periods_in_utc() -> None:
    now = datetime(2026, 2, 18, 15, 30, tzinfo=timezone.utc)  # a Wednesday
    assert bounds("daily", now) == (datetime(2026, 2, 18, tzinfo=timezone.utc), datetime(2026, 2, 19, tzinfo=timezone.utc))
    assert bounds("weekly", now)[0] == datetime(2026, 2, 16, tzinfo=timezone.utc)
    assert bounds("monthly", now) == (datetime(2026, 2, 1, tzinfo=timezone.utc), datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert bounds("12h", now)[0] == datetime(2026, 2, 18, 12, tzinfo=timezone.utc)
    assert bounds("none", now) == (None, None)
    assert [litellm_period(d) for d in ("30d", "1mo", "7d", "24h", "1d", "12h")] == \
        ["monthly", "monthly", "weekly", "daily", "daily", "12h"]
    with pytest.raises(ConfigError):
        litellm_period("soon")
