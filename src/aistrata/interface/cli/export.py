"""`aistrata export requests`: the request log as JSONL on standard output."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ...observe.traces import parse_time_ms
from ...observe.traces.export import requests_jsonl
from ...security.crypto import PayloadCipher, PayloadProtection
from ...store.request_log import RequestFilters, RequestLog
from .common import config_options, load, open_database


def _time(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    try:
        return parse_time_ms(value) if value else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group()
def export() -> None:
    """Export recorded data."""


@export.command("requests")
@config_options
@click.option("--since", callback=_time, help="Start (inclusive): epoch ms, ISO 8601, or an age like 7d.")
@click.option("--until", callback=_time, help="End (exclusive): epoch ms, ISO 8601, or an age like 1h.")
@click.option("--key-id", help="Only this virtual key's requests.")
def requests(config_path: Path | None, data_dir: Path | None, since: int | None, until: int | None,
             key_id: str | None) -> None:
    """Write the request log as JSON lines, newest first:  aistrata export requests --since 7d > log.jsonl"""
    settings, _ = load(config_path, data_dir)
    db = open_database(settings)
    try:
        out = sys.stdout.buffer
        # Payloads (gateway spans' prompts and completions) read back in clear, as the API shows them.
        cipher = PayloadCipher.from_env(os.environ)
        log = RequestLog(db, PayloadProtection(cipher, None) if cipher else None)
        for chunk in requests_jsonl(log, RequestFilters(since=since, until=until, key_id=key_id)):
            out.write(chunk)
        out.flush()
    finally:
        db.close()
