"""Management API: human override, the audit log and the compliance report (admin only, but
`whoami`, which any caller may ask).

    GET    /api/kill-switches              the switches in force and the read-only flag
    POST   /api/kill-switches              {scope, value?, reason?} -> 201 (scope: gateway, model,
                                           deployment, provider, key, team, workflow)
    DELETE /api/kill-switches/{id}         id as listed ("gateway", "model:gpt"), URL-encoded
    GET    /api/read-only                  POST /api/read-only {enabled, reason?}
    GET    /api/audit?since=&until=&action=&actor=&result=&limit=&before_seq=   newest first
    GET    /api/audit/verify               walks the hash chain; names the first broken row
    GET    /api/compliance/report?format=json|markdown&since=&until=
    GET    /api/whoami                     the caller's role, team and what it may read
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ...core import ErrorKind, GatewayError, bad_request
from ...gateway.auth import Principal
from ...security.compliance import build_report, to_markdown
from ..management import _int, _json_body, guard


def routes(services: Any) -> list[Route]:
    security = services.security
    overrides = security.overrides

    async def list_switches(request: Request, principal: Principal) -> Response:
        return JSONResponse({"data": list(overrides.current.switches.values()),
                             "read_only": overrides.current.read_only})

    async def add_switch(request: Request, principal: Principal) -> Response:
        body = await _json_body(request)
        value, reason = body.get("value"), body.get("reason")
        if not isinstance(body.get("scope"), str) or (value is not None and not isinstance(value, str)) \
                or (reason is not None and not isinstance(reason, str)):
            raise bad_request("'scope' (and 'value', 'reason' when given) must be strings", "scope")
        switch = await overrides.set_switch(body["scope"], value, principal.actor, reason)
        return JSONResponse(switch, status_code=201)

    async def remove_switch(request: Request, principal: Principal) -> Response:
        sid = request.path_params["id"]
        if not await overrides.clear_switch(sid):
            raise GatewayError(ErrorKind.not_found, "no such kill switch")
        return JSONResponse({"id": sid, "deleted": True})

    async def get_read_only(request: Request, principal: Principal) -> Response:
        return JSONResponse({"enabled": overrides.read_only is not None, "detail": overrides.read_only})

    async def set_read_only(request: Request, principal: Principal) -> Response:
        body = await _json_body(request)
        if not isinstance(body.get("enabled"), bool):
            raise bad_request("'enabled' must be true or false", "enabled")
        reason = body.get("reason") if isinstance(body.get("reason"), str) else None
        flag = await overrides.set_read_only(body["enabled"], principal.actor, reason)
        return JSONResponse({"enabled": flag is not None, "detail": flag})

    async def audit(request: Request, principal: Principal) -> Response:
        q = request.query_params
        try:
            args = {"since": _int(q.get("since")), "until": _int(q.get("until")),
                    "before_seq": _int(q.get("before_seq")), "limit": _int(q.get("limit")) or 100}
        except ValueError as exc:
            raise bad_request(f"bad filter value: {exc}") from exc
        rows = await asyncio.to_thread(security.audit.query, action=q.get("action"), actor=q.get("actor"),
                                       result=q.get("result"), **args)
        return JSONResponse({"data": rows})

    async def verify(request: Request, principal: Principal) -> Response:
        return JSONResponse((await asyncio.to_thread(security.audit.verify)).to_dict())

    async def report(request: Request, principal: Principal) -> Response:
        q = request.query_params
        fmt = q.get("format") or "json"
        if fmt not in ("json", "markdown"):
            raise bad_request("'format' must be json or markdown", "format")
        try:
            since, until = _int(q.get("since")), _int(q.get("until"))
        except ValueError as exc:
            raise bad_request(f"bad filter value: {exc}") from exc
        data = await asyncio.to_thread(build_report, services.settings.raw, services.settings.env, services.keys,
                                       security.audit, overrides.current.to_json(), since, until)
        if fmt == "markdown":
            return PlainTextResponse(to_markdown(data), media_type="text/markdown")
        return JSONResponse(data)

    async def whoami(request: Request, principal: Principal) -> Response:
        reach = principal.reach
        return JSONResponse({"kind": principal.kind, "actor": principal.actor, "role": principal.role,
                             "key_id": principal.key_id, "user_id": principal.user_id, "team_id": principal.team_id,
                             "reads": "everything" if reach.everything else {k: v for k, v in (
                                 ("team_id", reach.team_id), ("key_id", reach.key_id),
                                 ("user_id", reach.user_id)) if v is not None}})

    def admin(handler: Any) -> Any:
        return guard(services.authn, handler, admin=True)

    return [
        Route("/api/kill-switches", admin(list_switches), methods=["GET"]),
        Route("/api/kill-switches", admin(add_switch), methods=["POST"]),
        Route("/api/kill-switches/{id:path}", admin(remove_switch), methods=["DELETE"]),
        Route("/api/read-only", admin(get_read_only), methods=["GET"]),
        Route("/api/read-only", admin(set_read_only), methods=["POST"]),
        Route("/api/audit", admin(audit), methods=["GET"]),
        Route("/api/audit/verify", admin(verify), methods=["GET"]),
        Route("/api/compliance/report", admin(report), methods=["GET"]),
        Route("/api/whoami", guard(services.authn, whoami), methods=["GET"]),
    ]
