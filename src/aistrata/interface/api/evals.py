"""Management API: scores, datasets and runs.

    POST /api/scores                 {request_id|trace_id|span_id, name, value|label, data_type?, comment?}
                                     feedback from people; a virtual key may score its own requests
    GET  /api/scores?target_id=&name=&source=&since=&until=&limit=
    POST /api/datasets               {name, description?, metadata?, items?: [...]}
    GET  /api/datasets               GET /api/datasets/{id} (with its items)
    POST /api/datasets/{id}/items    {items: [{input, expected_output?, metadata?}]}
    POST /api/datasets/{id}/runs     {models: [...], evaluators: ["exact_match", {"evaluator": ...}]} -> 202
    GET  /api/runs/{id}              status, per-model comparison, per-item results
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...core import ErrorKind, GatewayError, bad_request
from ...gateway.auth import Principal
from ...observe.evals import Evaluations, Score
from ..management import _int, _json_body, guard


def _not_found(what: str) -> GatewayError:
    return GatewayError(ErrorKind.not_found, f"no such {what}")


def routes(services: Any) -> list[Route]:
    evals: Evaluations = services.evals

    async def post_score(request: Request, principal: Principal) -> Response:
        score = Score.from_body(await _json_body(request))
        if not principal.is_admin:
            # A key may only judge its own requests: traces and spans are not attributable here.
            row = await asyncio.to_thread(services.requests.get, score.target_id) \
                if score.target_type == "request" else None
            if row is None or not principal.reach.allows(row):
                raise _not_found("request")
        await asyncio.to_thread(evals.scores.add, score)
        return JSONResponse(score.to_dict(), status_code=201)

    async def list_scores(request: Request, principal: Principal) -> Response:
        q = request.query_params
        try:
            since, until, limit = _int(q.get("since")), _int(q.get("until")), _int(q.get("limit")) or 100
        except ValueError as exc:
            raise bad_request(f"bad filter value: {exc}") from exc
        rows = await asyncio.to_thread(evals.scores.query, target_id=q.get("target_id"), name=q.get("name"),
                                       source=q.get("source"), since=since, until=until, limit=limit)
        return JSONResponse({"data": rows})

    async def create_dataset(request: Request, principal: Principal) -> Response:
        body = await _json_body(request)
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise bad_request("'name' is required", "name")
        dataset = await asyncio.to_thread(evals.datasets.create, body["name"], body.get("description"),
                                          body.get("metadata"))
        items = await asyncio.to_thread(evals.datasets.add_items, dataset["id"], _items(body)) \
            if body.get("items") else []
        return JSONResponse({**dataset, "items": items}, status_code=201)

    async def list_datasets(request: Request, principal: Principal) -> Response:
        return JSONResponse({"data": await asyncio.to_thread(evals.datasets.list)})

    async def get_dataset(request: Request, principal: Principal) -> Response:
        dataset = await _dataset(request)
        items = await asyncio.to_thread(evals.datasets.items, dataset["id"])
        return JSONResponse({**dataset, "items": items})

    async def add_items(request: Request, principal: Principal) -> Response:
        dataset = await _dataset(request)
        items = await asyncio.to_thread(evals.datasets.add_items, dataset["id"], _items(await _json_body(request)))
        return JSONResponse({"data": items}, status_code=201)

    async def start_run(request: Request, principal: Principal) -> Response:
        dataset = await _dataset(request)
        body = await _json_body(request)
        models, evaluators = body.get("models"), body.get("evaluators") or []
        if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
            raise bad_request("'models' must be a non-empty list of model names", "models")
        if not isinstance(evaluators, list):
            raise bad_request("'evaluators' must be a list", "evaluators")
        run, built = await asyncio.to_thread(evals.runs.create, dataset["id"], models, evaluators)
        evals.runs.start(run, built)
        return JSONResponse(run, status_code=202)

    async def get_run(request: Request, principal: Principal) -> Response:
        report = await asyncio.to_thread(evals.runs.report, request.path_params["id"])
        if report is None:
            raise _not_found("run")
        return JSONResponse(report)

    async def _dataset(request: Request) -> dict[str, Any]:
        dataset = await asyncio.to_thread(evals.datasets.get, request.path_params["id"])
        if dataset is None:
            raise _not_found("dataset")
        return dataset

    def admin(handler: Any) -> Any:
        return guard(services.authn, handler, admin=True)

    return [
        Route("/api/scores", guard(services.authn, post_score), methods=["POST"]),
        Route("/api/scores", admin(list_scores), methods=["GET"]),
        Route("/api/datasets", admin(create_dataset), methods=["POST"]),
        Route("/api/datasets", admin(list_datasets), methods=["GET"]),
        Route("/api/datasets/{id}", admin(get_dataset), methods=["GET"]),
        Route("/api/datasets/{id}/items", admin(add_items), methods=["POST"]),
        Route("/api/datasets/{id}/runs", admin(start_run), methods=["POST"]),
        Route("/api/runs/{id}", admin(get_run), methods=["GET"]),
    ]


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) and "input" in i for i in items):
        raise bad_request("'items' must be a list of objects with an 'input'", "items")
    return items
