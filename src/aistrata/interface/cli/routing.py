"""`aistrata routing`: model groups and circuit breakers of a running gateway, over its API."""

from __future__ import annotations

import json
import urllib.parse

import click

from .common import call_gateway, gateway_options


@click.group()
@gateway_options
@click.pass_context
def routing(ctx: click.Context, url: str, key: str | None) -> None:
    """Routing: model groups, deployments and their circuit breakers."""
    ctx.obj = (url, key)


@routing.command("groups")
@click.pass_obj
def groups(obj: tuple[str, str | None]) -> None:
    """Groups with their deployments, strategy, retries and fallbacks."""
    body = call_gateway(*obj, "GET", "/api/groups")
    for g in body["data"]:
        fallbacks = ", ".join(g["fallbacks"]) or "-"
        click.echo(f"{g['name']}: {g['strategy']}, retries {g['num_retries']}, fallbacks {fallbacks}, "
                   f"deployments {', '.join(g['deployments']) or '-'}")
    for r in body["routes"]:
        click.echo(f"route {r['index']}: model {r['model']} -> {r['use']}")


@routing.command("breakers")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_obj
def breakers(obj: tuple[str, str | None], as_json: bool) -> None:
    """Each deployment's breaker state, load, latency and adaptive limit."""
    rows = call_gateway(*obj, "GET", "/api/deployments")["data"]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for d in rows:
        b = d["breaker"]
        retry = f" (retry in {b['retry_in_s']}s)" if b["state"] == "open" else ""
        click.echo(f"{d['id']}: {b['state']}{retry}, failures {b['failures']}, in flight {d['in_flight']}, "
                   f"latency {d['latency_ewma_s']}, limit {d['adaptive_limit'] or 'none'}")


@routing.command("reset")
@click.argument("deployment_id")
@click.pass_obj
def reset(obj: tuple[str, str | None], deployment_id: str) -> None:
    """Close DEPLOYMENT_ID's breaker."""
    body = call_gateway(*obj, "POST", f"/api/deployments/{urllib.parse.quote(deployment_id, safe='')}/reset")
    click.echo(f"{body['id']}: {body['breaker']['state']}")
