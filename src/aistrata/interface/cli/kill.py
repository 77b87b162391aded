"""`aistrata kill`: kill switches from the command line, written to the shared state (Redis)
that every replica reads, and recorded in the audit log."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path
from typing import Any, Awaitable, Callable

import click

from ...core import GatewayError
from ...gateway.state import build_state
from ...security.audit import AuditEvent, AuditLog
from ...security.killswitch import SCOPES, Overrides, switch_id
from ...store.migrations import ensure_schema
from .common import config_options, load, open_database


def _run(config_path: Path | None, data_dir: Path | None, action: str, target: str | None,
         change: Callable[[Overrides, str], Awaitable[Any]]) -> Any:
    settings, _ = load(config_path, data_dir)
    if not settings.redis_url:
        # In-process state lives inside each server: a CLI process cannot reach it.
        raise click.ClickException("no shared state: set AISTRATA_REDIS_URL, or use POST /api/kill-switches")
    actor = f"cli:{getpass.getuser()}"

    async def go() -> Any:
        state = build_state(settings)
        try:
            overrides = Overrides(state)
            await overrides.refresh()
            return await change(overrides, actor)
        finally:
            await state.close()

    try:
        result = asyncio.run(go())
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc
    if action:
        db = open_database(settings)
        ensure_schema(db)
        AuditLog(db).append(AuditEvent(actor=actor, role="admin", action=action, target=target))
    return result


@click.group()
def kill() -> None:
    """Stop traffic at once on every replica: a model, deployment, provider, key, team,
    workflow or the whole gateway."""


@kill.command("on")
@config_options
@click.argument("scope", type=click.Choice(SCOPES))
@click.argument("value", required=False)
@click.option("--reason", help="Shown to refused callers and in the audit log.")
def on(config_path: Path | None, data_dir: Path | None, scope: str, value: str | None, reason: str | None) -> None:
    """Turn a switch on: `aistrata kill on model gpt-4o`, `aistrata kill on gateway`."""
    try:
        sid = switch_id(scope, value)
    except GatewayError as exc:
        raise click.BadParameter(exc.message) from exc
    switch = _run(config_path, data_dir, "CLI kill on", sid,
                  lambda o, actor: o.set_switch(scope, value, actor, reason))
    click.echo(json.dumps(switch))


@kill.command("off")
@config_options
@click.argument("switch")
def off(config_path: Path | None, data_dir: Path | None, switch: str) -> None:
    """Turn a switch off by its id as listed (`gateway`, `model:gpt-4o`)."""
    if not _run(config_path, data_dir, "CLI kill off", switch, lambda o, actor: o.clear_switch(switch)):
        raise click.ClickException(f"no kill switch '{switch}'")
    click.echo(json.dumps({"id": switch, "deleted": True}))


@kill.command("list")
@config_options
def list_switches(config_path: Path | None, data_dir: Path | None) -> None:
    """The switches in force (and the read-only flag)."""

    async def read(o: Overrides, actor: str) -> dict[str, Any]:
        return o.current.to_json()

    click.echo(json.dumps(_run(config_path, data_dir, "", None, read), indent=2))
