"""`aistrata compliance report`: keys, roles, policies in force, blocked events, retention."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from ...core import GatewayError, now_ms
from ...gateway.state import build_state
from ...security.audit import AuditLog
from ...security.compliance import build_report, to_markdown
from ...security.killswitch import Overrides
from ...store.keys import KeyStore
from ...store.migrations import ensure_schema
from ..management import parse_duration_ms
from .common import config_options, load, open_database


@click.group()
def compliance() -> None:
    """Compliance reporting."""


@compliance.command("report")
@config_options
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="markdown", show_default=True)
@click.option("--since", default="30d", show_default=True, help="Window for blocked events: 24h, 30d, ...")
def report(config_path: Path | None, data_dir: Path | None, fmt: str, since: str) -> None:
    """Print the report."""
    settings, _ = load(config_path, data_dir)
    try:
        start = now_ms() - parse_duration_ms(since)
    except GatewayError as exc:
        raise click.BadParameter(exc.message, param_hint="--since") from exc
    db = open_database(settings)
    ensure_schema(db)
    data = build_report(settings.raw, settings.env, KeyStore(db), AuditLog(db), _overrides(settings), start)
    click.echo(json.dumps(data, indent=2) if fmt == "json" else to_markdown(data))


def _overrides(settings: Any) -> dict[str, Any]:
    """The kill switches in force, from the shared state when there is one (without Redis
    they live only inside each running server)."""
    if not settings.redis_url:
        return {}

    async def read() -> dict[str, Any]:
        state = build_state(settings)
        try:
            overrides = Overrides(state)
            await overrides.refresh()
            return overrides.current.to_json()
        finally:
            await state.close()

    return asyncio.run(read())
