"""Management API: alert rules and their delivery log (admin only).

    POST   /api/alerts                   a rule (see `observe.alerts.rules` for the fields) -> 201
    GET    /api/alerts                   every rule with its state (ok, pending, firing)
    GET    /api/alerts/{id}
    DELETE /api/alerts/{id}              rules from the config file cannot be deleted here
    GET    /api/alerts/{id}/deliveries   each notification with its attempts
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...core import ErrorKind, GatewayError, bad_request
from ...gateway.auth import Principal
from ...observe.alerts import AlertRule, Alerts
from ..management import _json_body, guard


def routes(services: Any) -> list[Route]:
    alerts: Alerts = services.alerts

    async def _rule(request: Request) -> AlertRule:
        rule = await asyncio.to_thread(alerts.store.get, request.path_params["id"])
        if rule is None:
            raise GatewayError(ErrorKind.not_found, "no such alert rule")
        return rule

    async def create(request: Request, principal: Principal) -> Response:
        try:
            rule = AlertRule.from_spec(await _json_body(request))
        except (ValueError, TypeError) as exc:
            raise bad_request(str(exc)) from exc
        await asyncio.to_thread(alerts.store.put, rule)
        return JSONResponse(rule.to_json(), status_code=201)

    async def list_rules(request: Request, principal: Principal) -> Response:
        rules = await asyncio.to_thread(alerts.store.list)
        return JSONResponse({"data": [r.to_json() for r in rules]})

    async def get_rule(request: Request, principal: Principal) -> Response:
        return JSONResponse((await _rule(request)).to_json())

    async def delete_rule(request: Request, principal: Principal) -> Response:
        rule = await _rule(request)
        if rule.source == "config":
            raise bad_request("this rule comes from the config file; remove it there")
        await asyncio.to_thread(alerts.store.delete, rule.id)
        return JSONResponse({"id": rule.id, "deleted": True})

    async def deliveries(request: Request, principal: Principal) -> Response:
        rule = await _rule(request)
        return JSONResponse({"data": await asyncio.to_thread(alerts.store.deliveries, rule.id)})

    def admin(handler: Any) -> Any:
        return guard(services.authn, handler, admin=True)

    return [
        Route("/api/alerts", admin(create), methods=["POST"]),
        Route("/api/alerts", admin(list_rules), methods=["GET"]),
        Route("/api/alerts/{id}", admin(get_rule), methods=["GET"]),
        Route("/api/alerts/{id}", admin(delete_rule), methods=["DELETE"]),
        Route("/api/alerts/{id}/deliveries", admin(deliveries), methods=["GET"]),
    ]
