"""Management API: budgets, rate limits and current usage (admin; a team admin manages its
own team's budgets).

    GET    /api/budgets                 every budget (config, API-made), with its origin
    POST   /api/budgets                 {scope, id?, max_usd, soft_usd?, period?} -> 201
    DELETE /api/budgets/{id}            an API-made budget
    GET    /api/limits                  the configured rate limits, and the state backend's health
    GET    /api/usage?scope=team&id=kids   spend and holds per budget, counters per limit
                                        (&model=M: for limits that name a model)
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
from ...gateway.limits import BudgetGuard, BudgetStore, LimitsAndBudgets, RateLimiter, Subjects
from ...gateway.limits.spec import BUDGET_SCOPES, SCOPES
from ...gateway.roles import Access
from ..management import _json_body, guard

Handler = Callable[[Request, Principal], Awaitable[Response]]


class LimitsApi:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.store = BudgetStore(services.db)
        stage = next((s for s in services.gateway.admissions if isinstance(s, LimitsAndBudgets)), None)
        self.guard: BudgetGuard | None = stage.budgets if stage is not None else None
        self.limiter: RateLimiter | None = stage.limiter if stage is not None else None

    def admin(self, handler: Handler, access: Access = Access.admin) -> Callable[[Request], Awaitable[Response]]:
        return guard(self.services.authn, handler, access=access)

    async def list_budgets(self, request: Request, principal: Principal) -> Response:
        if self.guard is not None:
            specs = self.guard.specs()
        else:
            specs = await asyncio.to_thread(self.store.list)
        return JSONResponse({"data": [s.as_json() for s in specs if _own(principal, s.scope, s.id)]})

    async def create_budget(self, request: Request, principal: Principal) -> Response:
        body = await _json_body(request)
        if not _own(principal, body.get("scope"), body.get("id")):
            raise GatewayError(ErrorKind.permission, "a team admin manages its own team's budget only")
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
        if not principal.is_admin:
            specs = await asyncio.to_thread(self.store.list)
            if not any(s.budget_id == budget_id and _own(principal, s.scope, s.id) for s in specs):
                raise GatewayError(ErrorKind.not_found, "no such budget")
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
        if scope == "key_model" and "|" in subject:  # KEY|MODEL, or the key with ?model=
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
        Route("/api/budgets", api.admin(api.list_budgets, Access.team), methods=["GET"]),
        Route("/api/budgets", api.admin(api.create_budget, Access.team), methods=["POST"]),
        Route("/api/budgets/{id}", api.admin(api.delete_budget, Access.team), methods=["DELETE"]),
        Route("/api/limits", api.admin(api.list_limits), methods=["GET"]),
        Route("/api/usage", api.admin(api.usage), methods=["GET"]),
    ]


def _own(principal: Principal, scope: Any, subject: Any) -> bool:
    """Whether a budget is the caller's to see and change: any for an admin, its team's
    budget for a team admin."""
    return principal.is_admin or (scope == "team" and subject is not None and subject == principal.team_id)
