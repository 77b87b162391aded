"""Management API: request statistics and cost totals over a window.

    GET /api/stats?since=&until=&group_by=model|provider|key|user|team|tag|project|day&<filters>
        -> per group: requests, errors, error_rate, p50/p95/p99 latency, p50/p95 TTFT,
           tokens_per_request, cost_per_request, total_cost_usd, cache_hit_rate
    GET /api/costs?since=&until=&group_by=key|user|team|model|tag|project|day&<filters>
        -> per group: cost_usd, saved_usd, requests and tokens

`since`/`until` are epoch milliseconds (default: the last 24 hours). Filters are those of
`/api/requests` (model, provider, key_id, user_id, team_id, tag, deployment_id, status,
error_kind). A virtual key sees only its own traffic.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...core import bad_request, now_ms
from ...gateway.auth import Principal
from ...observe.stats import RequestStats
from ...store.request_log import RequestFilters
from ..management import _int, guard

DEFAULT_WINDOW_MS = 86_400_000


def window_filters(request: Request, principal: Principal) -> tuple[RequestFilters, str | None]:
    q = request.query_params
    try:
        until = _int(q.get("until")) or now_ms()
        filters = RequestFilters(
            since=_int(q.get("since")) or until - DEFAULT_WINDOW_MS, until=until, key_id=q.get("key_id"),
            user_id=q.get("user_id"), team_id=q.get("team_id"), requested_model=q.get("model"),
            provider=q.get("provider"), deployment_id=q.get("deployment_id"), status=_int(q.get("status")),
            error_kind=q.get("error_kind"), tag=q.get("tag"),
        )
    except ValueError as exc:
        raise bad_request(f"bad filter value: {exc}") from exc
    principal.reach.narrow(filters)  # a key sees its own traffic, a team role its team's
    return filters, q.get("group_by") or None


def routes(services: Any) -> list[Route]:
    stats = RequestStats(services.db)

    async def run(request: Request, principal: Principal, method: Any) -> Response:
        filters, group_by = window_filters(request, principal)
        try:
            rows = await asyncio.to_thread(method, filters, group_by)
        except ValueError as exc:
            raise bad_request(str(exc), "group_by") from exc
        return JSONResponse({"since": filters.since, "until": filters.until, "group_by": group_by, "data": rows})

    async def get_stats(request: Request, principal: Principal) -> Response:
        return await run(request, principal, stats.summary)

    async def get_costs(request: Request, principal: Principal) -> Response:
        return await run(request, principal, stats.costs)

    return [
        Route("/api/stats", guard(services.authn, get_stats), methods=["GET"]),
        Route("/api/costs", guard(services.authn, get_costs), methods=["GET"]),
    ]
