"""`aistrata serve`: run the gateway."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import click

from .common import config_options, load

log = logging.getLogger("aistrata")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="AISTRATA_HOST")
@click.option("--port", default=4000, show_default=True, type=int, envvar="AISTRATA_PORT")
@config_options
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(host: str, port: int, config_path: Path | None, data_dir: Path | None, log_level: str) -> None:
    """Run the gateway (OpenAI- and Anthropic-compatible) on HOST:PORT."""
    import uvicorn

    from ..app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings, registry = load(config_path, data_dir)
    if not settings.master_key:
        if not is_loopback(host):
            log.warning("no AISTRATA_MASTER_KEY set: serving on 127.0.0.1 only, not %s", host)
            host = "127.0.0.1"
        log.warning("no AISTRATA_MASTER_KEY set: open to local callers without a key (loopback only)")
    app = create_app(settings, registry)
    groups = ", ".join(sorted(settings.groups)) or "none configured"
    log.info("model groups: %s; data in %s", groups, settings.database_url and "the database URL" or settings.data_dir)
    uvicorn.run(app, host=host, port=port, loop="uvloop", http="httptools", lifespan="on",
                access_log=False, log_level=log_level, server_header=False)
