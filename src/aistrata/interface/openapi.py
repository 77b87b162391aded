"""`GET /openapi.json`: an OpenAPI 3.1 document of the data plane and the management API.

Paths come from the app's own routes, so a new endpoint is described (with its path
parameters) the moment it exists; request bodies are written out here for the endpoints that
take one, with their main fields. Model names offered as examples are the configured groups.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_STR = {"type": "string"}
_INT = {"type": "integer"}
_OBJ = {"type": "object"}
_STRINGS = {"type": "array", "items": _STR}
_MESSAGE = {"type": "object", "required": ["role", "content"], "properties": {
    "role": {"type": "string", "enum": ["system", "user", "assistant", "tool", "developer"]},
    "content": {"anyOf": [_STR, {"type": "array", "items": _OBJ}]}}}
_ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "message": _STR, "type": _STR, "code": {}, "param": {}}}}}
_QUERY = ("since", "until", "limit", "cursor", "key_id", "user_id", "team_id", "model", "status", "group_by",
          "action", "format")


def _body(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def request_bodies(models: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    model = {"type": "string", "examples": models[:5] or ["gpt-4o-mini"]}
    return {
        ("POST", "/v1/chat/completions"): _body(
            ["model", "messages"], model=model, messages={"type": "array", "items": _MESSAGE}, stream={"type": "boolean"},
            max_tokens=_INT, temperature={"type": "number"}, metadata=_OBJ),
        ("POST", "/v1/messages"): _body(
            ["model", "max_tokens", "messages"], model=model, max_tokens=_INT, system=_STR,
            messages={"type": "array", "items": _MESSAGE}, stream={"type": "boolean"}),
        ("POST", "/v1/embeddings"): _body(["model", "input"], model=model, input={"anyOf": [_STR, _STRINGS]},
                                          dimensions=_INT, encoding_format={"enum": ["float", "base64"]}),
        ("POST", "/api/keys"): _body([], alias=_STR, user_id=_STR, team_id=_STR, models=_STRINGS, expires_in=_STR,
                                     role={"enum": ["admin", "team_admin", "member", "viewer"]}, metadata=_OBJ),
        ("POST", "/api/budgets"): _body(["scope", "max_usd"], scope={"enum": ["key", "user", "team", "org"]}, id=_STR,
                                        max_usd={"type": "number"}, soft_usd={"type": "number"}, period=_STR),
        ("POST", "/api/alerts"): _body(["name", "kind"], name=_STR, kind=_STR, threshold={"type": "number"},
                                       webhook=_STR),
        ("POST", "/api/scores"): _body(["name"], request_id=_STR, trace_id=_STR, span_id=_STR, name=_STR,
                                       value={"type": "number"}, label=_STR, comment=_STR),
        ("POST", "/api/datasets"): _body(["name"], name=_STR, description=_STR, items={"type": "array", "items": _OBJ}),
        ("POST", "/api/datasets/{id}/items"): _body(["items"], items={"type": "array", "items": _OBJ}),
        ("POST", "/api/datasets/{id}/runs"): _body(["models"], models=_STRINGS, evaluators={"type": "array"}),
        ("POST", "/api/spans"): _body(["spans"], spans={"type": "array", "items": _OBJ}),
        ("POST", "/v1/traces"): _body([], resourceSpans={"type": "array", "items": _OBJ}),
        ("POST", "/api/kill-switches"): _body(
            ["scope"], scope={"enum": ["gateway", "model", "deployment", "provider", "key", "team", "workflow"]},
            value=_STR, reason=_STR),
        ("POST", "/api/read-only"): _body(["enabled"], enabled={"type": "boolean"}, reason=_STR),
    }


def document(routes: list[BaseRoute], models: list[str]) -> dict[str, Any]:
    bodies = request_bodies(models)
    paths: dict[str, dict[str, Any]] = {}
    data_plane = [("POST", p) for p in ("/v1/chat/completions", "/v1/messages", "/v1/embeddings")]
    found = [(m, r.path) for r in routes if isinstance(r, Route) for m in sorted(r.methods or ()) if m != "HEAD"]
    for method, raw_path in [*data_plane, *found]:
        path = _PARAM.sub(r"{\1}", raw_path)
        op: dict[str, Any] = {
            "operationId": f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
            "responses": {"200": {"description": "OK"}, "default": {
                "description": "an error in the OpenAI shape",
                "content": {"application/json": {"schema": _ERROR}}}},
        }
        params = [{"name": n, "in": "path", "required": True, "schema": _STR} for n in _PARAM.findall(raw_path)]
        if method == "GET":
            params += [{"name": n, "in": "query", "required": False, "schema": _STR} for n in _QUERY]
        if params:
            op["parameters"] = params
        body = bodies.get((method, path))
        if body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "AI Strata gateway", "version": __version__},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def route(routes: list[BaseRoute], models: list[str]) -> Route:
    """The `/openapi.json` route over `routes` (itself included once the list is complete)."""

    async def openapi(request: Request) -> Response:
        return JSONResponse(document(routes, models))

    return Route("/openapi.json", openapi, methods=["GET"])
