"""Management API: budgets, rate limits and current usage (all need the master key).

    GET    /api/budgets                 every budget (config, API-made), with its origin
    POST   /api/budgets                 {scope, id?, max_usd, soft_usd?, period?} -> 201
    DELETE /api/budgets/{id}            an API-made budget
    GET    /api/limits                  the configured rate limits, and the state backend's health
    GET    /api/usage?scope=team&id=kids   spend and holds per budget, counters per limit
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...core import ErrorKind, GatewayError, bad_request
from ...gateway.auth import Principal
from ...gateway.config import ConfigError
from ...gateway.limits import BudgetGuard, BudgetStore, RateLimiter, Subjects
from ...gateway.limits.spec import BUDGET_SCOPES, SCOPES
from ..management import Management, _json_body

Handler = Callable[[Request, Principal], Awaitable[Response]]


class LimitsApi:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.store = BudgetStore(services.db)
        stages = services.gateway.admissions
        self.guard: BudgetGuard | None = next((s for s in stages if isinstance(s, BudgetGuard)), None)
        self.limiter: RateLimiter | None = next((s for s in stages if isinstance(s, RateLimiter)), None)

    def admin(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        # Management's guard only needs `.authn`, which the services carry: same auth, same errors.
        return Management._guard(self.services, handler, admin=True)  # type: ignore[arg-type]

    async def list_budgets(self, request: Request, principal: Principal) -> Response:
        if self.guard is not None:
            specs = self.guard.specs()
        else:
            specs = await asyncio.to_thread(self.store.list)
        return JSONResponse({"data": [s.as_json() for s in specs]})

    async def create_budget(self, request: Request, principal: Principal) -> Response:
        body = await _json_body(request)
        try:
            spec = await asyncio.to_thread(self.store.create, body)
        except ConfigError as exc:
            raise bad_request(str(exc)) from exc
        await self._reload()
        return JSONResponse(spec.as_json(), status_code=201)

    async def delete_budget(self, request: Request, principal: Principal) -> Response:
        budget_id = request.path_params["id"]
        if budget_id.startswith("config#"):
            raise bad_request("budgets from the config file are changed in the config file")
        if not await asyncio.to_thread(self.store.delete, budget_id):
            raise GatewayError(ErrorKind.not_found, "no such budget")
        await self._reload()
        return JSONResponse({"id": budget_id, "deleted": True})

    async def _reload(self) -> None:
        if self.guard is not None:  # at once on this node; other replicas within seconds
            await asyncio.to_thread(self.guard.reload)

    async def list_limits(self, request: Request, principal: Principal) -> Response:
        rules = self.limiter.rules if self.limiter is not None else []
        return JSONResponse({"data": [r.as_json() for r in rules], "state": self.services.state.health()})

    async def usage(self, request: Request, principal: Principal) -> Response:
        q = request.query_params
        scope, subject = q.get("scope"), q.get("id")
        if scope not in SCOPES or not subject:
            raise bad_request(f"'scope' ({', '.join(SCOPES)}) and 'id' are required")
        model = q.get("model", "")
        if scope == "key_model":
            subject, _, model = subject.partition("|")
        values = {s: None for s in BUDGET_SCOPES}
        values["key" if scope == "key_model" else scope] = subject
        subjects = Subjects(values["key"], values["user"], values["team"], values["org"],
                            subject if scope == "model" else model)
        budgets = await self.guard.usage(subjects, scope) if self.guard is not None and scope in BUDGET_SCOPES else []
        limits = await self.limiter.usage(subjects, scope) if self.limiter is not None else []
        return JSONResponse({"scope": scope, "id": q.get("id"), "budgets": budgets, "limits": limits})


def routes(services: Any) -> list[Route]:
    api = LimitsApi(services)
    return [
        Route("/api/budgets", api.admin(api.list_budgets), methods=["GET"]),
        Route("/api/budgets", api.admin(api.create_budget), methods=["POST"]),
        Route("/api/budgets/{id}", api.admin(api.delete_budget), methods=["DELETE"]),
        Route("/api/limits", api.admin(api.list_limits), methods=["GET"]),
        Route("/api/usage", api.admin(api.usage), methods=["GET"]),
    ]
