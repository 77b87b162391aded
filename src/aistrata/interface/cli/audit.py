"""`aistrata audit`: verify the audit log's hash chain, and read it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ...security.audit import AuditLog
from ...store.migrations import ensure_schema
from .common import config_options, load, open_database


def _log(config_path: Path | None, data_dir: Path | None) -> AuditLog:
    settings, _ = load(config_path, data_dir)
    db = open_database(settings)
    ensure_schema(db)
    return AuditLog(db)


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit log."""


@audit.command("verify")
@config_options
def verify(config_path: Path | None, data_dir: Path | None) -> None:
    """Walk the chain; exit 1 and name the first broken row if it does not hold."""
    result = _log(config_path, data_dir).verify()
    click.echo(json.dumps(result.to_dict(), indent=2))
    if not result.ok:
        raise click.ClickException(f"audit chain broken at row {result.broken_seq}: {result.reason}")


@audit.command("list")
@config_options
@click.option("--action", help="An action, or a prefix ending in * (policy.*).")
@click.option("--limit", default=50, show_default=True, type=int)
def list_rows(config_path: Path | None, data_dir: Path | None, action: str | None, limit: int) -> None:
    """The newest rows, one JSON object a line."""
    for row in _log(config_path, data_dir).query(action=action, limit=limit):
        click.echo(json.dumps(row))
