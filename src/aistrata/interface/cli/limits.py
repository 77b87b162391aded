"""`aistrata budgets`: create, list and delete money budgets (directly in the database).
A running gateway picks changes up within seconds."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ...gateway.config import ConfigError
from ...gateway.limits import BudgetStore
from ...gateway.limits.spec import BUDGET_SCOPES
from ...store.migrations import ensure_schema
from .common import config_options, load, open_database


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
