"""Options and loading shared by the commands."""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import click

from ...gateway.config import ConfigError, Settings, load_settings
from ...providers.registry import Registry, load_registry
from ...store.db import Database


def config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  envvar="AISTRATA_CONFIG", help="YAML config (a LiteLLM config.yaml works too).")
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), envvar="AISTRATA_DATA_DIR",
                  help="Where the SQLite database and spool files live (default ~/.aistrata).")
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def load(config_path: Path | None, data_dir: Path | None) -> tuple[Settings, Registry]:
    registry = load_registry()
    try:
        return load_settings(registry, config_path, data_dir), registry
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def open_database(settings: Settings) -> Database:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return Database.from_settings(settings.data_dir, settings.database_url)


def gateway_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--url` and `--key` of a running gateway, for the commands that go through its API
    (its in-process state, breakers and counters, lives in that process)."""
    @click.option("--url", default="http://127.0.0.1:4000", envvar="AISTRATA_URL", show_default=True,
                  help="The running gateway.")
    @click.option("--key", envvar="AISTRATA_MASTER_KEY", help="The master key (default: $AISTRATA_MASTER_KEY).")
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def call_gateway(url: str, key: str | None, method: str, path: str) -> Any:
    """The JSON answer of a management API call; an error answer or no gateway ends the command."""
    req = urllib.request.Request(url.rstrip("/") + path, method=method, data=b"" if method == "POST" else None)
    if key:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{exc.code}: {exc.read().decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach the gateway at {url}: {exc.reason}") from exc
