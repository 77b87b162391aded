"""`aistrata keys`: issue, list and revoke virtual keys (directly in the database)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ...core import GatewayError, now_ms
from ...gateway.roles import ROLES
from ...store.keys import KeyStore
from ...store.migrations import ensure_schema
from ..management import key_json, parse_duration_ms
from .common import config_options, load, open_database


def _store(config_path: Path | None, data_dir: Path | None) -> KeyStore:
    settings, _ = load(config_path, data_dir)
    db = open_database(settings)
    ensure_schema(db)
    return KeyStore(db)


@click.group()
def keys() -> None:
    """Manage virtual keys."""


@keys.command("create")
@config_options
@click.option("--alias")
@click.option("--user", "user_id")
@click.option("--team", "team_id")
@click.option("--model", "models", multiple=True, help="Allowed model (repeat; a trailing * matches a prefix).")
@click.option("--expires-in", help="Lifetime such as 30m, 12h, 90d.")
@click.option("--metadata", help="JSON object stored with the key.")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
def create(config_path: Path | None, data_dir: Path | None, alias: str | None, user_id: str | None,
           team_id: str | None, models: tuple[str, ...], expires_in: str | None, metadata: str | None,
           role: str) -> None:
    """Issue a key; it is printed once and stored only as a hash."""
    try:
        expires_at = now_ms() + parse_duration_ms(expires_in) if expires_in else None
    except GatewayError as exc:
        raise click.BadParameter(exc.message, param_hint="--expires-in") from exc
    try:
        meta = json.loads(metadata) if metadata else {}
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--metadata") from exc
    raw, record = _store(config_path, data_dir).create(
        alias=alias, user_id=user_id, team_id=team_id, models=list(models), expires_at=expires_at, metadata=meta,
        role=role,
    )
    click.echo(json.dumps({"key": raw, **key_json(record)}, indent=2))


@keys.command("list")
@config_options
def list_keys(config_path: Path | None, data_dir: Path | None) -> None:
    """List keys (never their secrets)."""
    for record in _store(config_path, data_dir).list():
        click.echo(json.dumps(key_json(record)))


@keys.command("revoke")
@config_options
@click.argument("key_id")
def revoke(config_path: Path | None, data_dir: Path | None, key_id: str) -> None:
    """Revoke a key by id."""
    if not _store(config_path, data_dir).revoke(key_id):
        raise click.ClickException(f"no key with id {key_id}")
    click.echo(f"revoked {key_id}")
