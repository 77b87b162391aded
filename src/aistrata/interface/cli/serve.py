"""`aistrata serve`: run the gateway."""

from __future__ import annotations

import gc
import ipaddress
import logging
import ssl
from pathlib import Path
from typing import Any

import click

from .common import config_options, load

log = logging.getLogger("aistrata")
GC_THRESHOLDS = (10_000, 10, 100)  # CPython's defaults are (700, 10, 10)


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
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), envvar="AISTRATA_TLS_CERT",
              help="Serve HTTPS with this certificate (PEM, chain included).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), envvar="AISTRATA_TLS_KEY",
              help="The certificate's private key (PEM).")
@click.option("--tls-client-ca", type=click.Path(exists=True, dir_okay=False), envvar="AISTRATA_TLS_CLIENT_CA",
              help="Require client certificates signed by this CA (mutual TLS).")
@click.option("--limit-concurrency", type=int, envvar="AISTRATA_LIMIT_CONCURRENCY",
              help="Answer 503 beyond this many connections and tasks at once.")
def serve(host: str, port: int, config_path: Path | None, data_dir: Path | None, log_level: str,
          tls_cert: str | None, tls_key: str | None, tls_client_ca: str | None, limit_concurrency: int | None) -> None:
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
    quiet_collector()
    groups = ", ".join(sorted(settings.groups)) or "none configured"
    log.info("model groups: %s; data in %s", groups, settings.database_url and "the database URL" or settings.data_dir)
    uvicorn.run(app, host=host, port=port, loop="uvloop", http="httptools", lifespan="on",
                access_log=False, log_level=log_level, server_header=False, limit_concurrency=limit_concurrency,
                **tls_options(tls_cert, tls_key, tls_client_ca))


def quiet_collector() -> None:
    """What startup built (config, price tables, models) lives as long as the process: freeze
    it so full collections scan only what requests allocate, and collect the young generation
    less often (each request allocates hundreds of objects, nearly all freed by refcount)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def tls_options(cert: str | None, key: str | None, client_ca: str | None) -> dict[str, Any]:
    """uvicorn's ssl settings; `--tls-client-ca` makes a client certificate mandatory."""
    if not cert:
        if key or client_ca:
            raise click.UsageError("--tls-key and --tls-client-ca need --tls-cert")
        return {}
    if not key:
        raise click.UsageError("--tls-cert needs --tls-key")
    options: dict[str, Any] = {"ssl_certfile": cert, "ssl_keyfile": key}
    if client_ca:
        options.update(ssl_ca_certs=client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options
