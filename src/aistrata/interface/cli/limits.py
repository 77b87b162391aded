"""`aistrata budgets`: create, list and delete money budgets (directly in the database; a
running gateway picks changes up within seconds). `aistrata limits`: a running gateway's rate
limits and what a key, user, team, org or model has used of its limits and budgets now (over
its API: the counters live in that process, or in the Redis it shares)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import click

from ...gateway.config import ConfigError
from ...gateway.limits import BudgetStore
from ...gateway.limits.spec import BUDGET_SCOPES, SCOPES
from ...store.migrations import ensure_schema
from .common import call_gateway, config_options, gateway_options, load, open_database


def _store(config_path: Path | None, data_dir: Path | None) -> BudgetStore:
    settings, _ = load(config_path, data_dir)
    db = open_database(settings)
    ensure_schema(db)
    return BudgetStore(db)


@click.group()
def budgets() -> None:
    """Manage money budgets."""


@budgets.command("create")
@config_options
@click.option("--scope", required=True, type=click.Choice(BUDGET_SCOPES))
@click.option("--id", "subject", help="Key, user, team or org id (omit: each one separately).")
@click.option("--max-usd", required=True, type=float)
@click.option("--soft-usd", type=float, help="Raise an alert event once spend passes this.")
@click.option("--period", default="monthly", show_default=True, help="daily, weekly, monthly, none, or 12h / 3d.")
def create(config_path: Path | None, data_dir: Path | None, scope: str, subject: str | None, max_usd: float,
           soft_usd: float | None, period: str) -> None:
    """Create a budget."""
    row = {"scope": scope, "id": subject, "max_usd": max_usd, "soft_usd": soft_usd, "period": period}
    try:
        spec = _store(config_path, data_dir).create(row)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(spec.as_json(), indent=2))


@budgets.command("list")
@config_options
def list_budgets(config_path: Path | None, data_dir: Path | None) -> None:
    """List the budgets made through the API or this command (config budgets live in the config)."""
    for spec in _store(config_path, data_dir).list():
        click.echo(json.dumps(spec.as_json()))


@budgets.command("delete")
@config_options
@click.argument("budget_id")
def delete(config_path: Path | None, data_dir: Path | None, budget_id: str) -> None:
    """Delete a budget by id."""
    if not _store(config_path, data_dir).delete(budget_id):
        raise click.ClickException(f"no budget with id {budget_id}")
    click.echo(f"deleted {budget_id}")


@click.group()
@gateway_options
@click.pass_context
def limits(ctx: click.Context, url: str, key: str | None) -> None:
    """A running gateway's rate limits, and current usage of limits and budgets."""
    ctx.obj = (url, key)


@limits.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_obj
def list_limits(obj: tuple[str, str | None], as_json: bool) -> None:
    """The configured rate limits, and the state their counters live in."""
    body = call_gateway(*obj, "GET", "/api/limits")
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    for rule in body["data"]:
        click.echo(f"{_rule_name(rule)} ({rule['algorithm']}, {rule['origin']}): {_caps(rule)}")
    if not body["data"]:
        click.echo("no rate limits configured")
    state = body["state"]
    health = "ok" if state["ok"] else f"unreachable, counting locally ({state.get('error', '')})"
    click.echo(f"counters: {state['backend']}, {health}")


@limits.command("usage")
@click.argument("scope", type=click.Choice(SCOPES))
@click.argument("subject")
@click.option("--model", help="The model, for limits that name one (key_model, or a rule per model).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_obj
def usage(obj: tuple[str, str | None], scope: str, subject: str, model: str | None, as_json: bool) -> None:
    """What SUBJECT (a key, user, team, org or model id) has used of its limits and budgets now."""
    query = urllib.parse.urlencode({"scope": scope, "id": subject, **({"model": model} if model else {})})
    body = call_gateway(*obj, "GET", f"/api/usage?{query}")
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    for b in body["budgets"]:
        period = f", {b['period_start']} to {b['period_end']}" if b["period_start"] else ""
        click.echo(f"budget {b['scope']}:{b['subject']} {b['period']}: ${b['spent_usd']:.4f} spent and "
                   f"${b['reserved_usd']:.4f} held of ${b['max_usd']:.2f}{period}")
    for rule in body["limits"]:
        used = ", ".join(f"{_words(name)} {c['used']} of {c['limit']}" for name, c in rule["counters"].items())
        click.echo(f"limit {rule['scope']}:{rule['subject']} ({rule['algorithm']}): {used}")
    if not body["budgets"] and not body["limits"]:
        click.echo(f"no limit or budget applies to {scope} {subject}")


def _rule_name(rule: dict[str, Any]) -> str:
    model = f" model {rule['model']}" if rule["model"] else ""
    return f"{rule['scope']}:{rule['id'] or '*'}{model}"


def _caps(rule: dict[str, Any]) -> str:
    caps = [f"{n} {_words(dimension)} a minute" for dimension, n in rule["per_minute"].items()]
    if rule["concurrent"] is not None:
        caps.append(f"{rule['concurrent']} in flight")
    return ", ".join(caps)


def _words(dimension: str) -> str:
    return dimension.replace("_", " ")  # input_tokens -> input tokens
