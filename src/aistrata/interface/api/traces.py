"""Traces API: span ingestion (OTLP/HTTP and a small JSON shape), trace and span queries, and
the request log as JSONL.

    POST /v1/traces              OTLP/HTTP, application/x-protobuf or application/json (gzip ok)
    POST /api/spans              {"spans": [...]} in our own shape (see observe.traces.ingest)
    GET  /api/traces             root spans with their trace's totals; filters as below
    GET  /api/spans              spans; since, until, trace_id, session_id, user_id, key_id, team_id,
                                 model, provider, status, type, name, tag, min/max_latency_ms,
                                 min/max_cost_usd, limit, cursor
    GET  /api/traces/{trace_id}  one trace as a tree (`children` nested)
    GET  /api/sessions/{id}      the session's traces
    GET  /api/users/{id}         a user's totals
    GET  /api/requests/export    the request log as streamed JSONL (since, until)

Ingested spans carry the sender's key, team and user. Reads are narrowed to the caller's
reach (see `gateway.roles`): a team role its team's spans, a member its own; admins all.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ...core import ErrorKind, GatewayError, bad_request
from ...gateway.auth import Principal
from ...observe.traces import (
    ALL, PayloadError, SpanError, SpanFilters, Tracing, Visibility, normalise_trace_id, parse_spans, parse_time_ms,
    stamp,
)
from ...observe.traces import otlp
from ...observe.traces.export import requests_jsonl
from ...store.paging import decode_cursor
from ...store.request_log import RequestFilters
from ..management import guard

MAX_BODY = 16 << 20
_TEXT_FILTERS = ("trace_id", "session_id", "user_id", "key_id", "team_id", "model", "provider", "status", "type",
                 "name", "tag")
_NUMBER_FILTERS = ("min_latency_ms", "max_latency_ms", "min_cost_usd", "max_cost_usd")


def routes(services: Any) -> list[Route]:
    api = TracesApi(services.tracing, services.requests)
    g = lambda handler: guard(services.authn, handler)  # noqa: E731
    return [
        Route("/v1/traces", g(api.otlp), methods=["POST"]),
        Route("/api/spans", g(api.ingest), methods=["POST"]),
        Route("/api/spans", g(api.list_spans), methods=["GET"]),
        Route("/api/traces", g(api.list_traces), methods=["GET"]),
        Route("/api/traces/{trace_id}", g(api.get_trace), methods=["GET"]),
        Route("/api/sessions/{id}", g(api.get_session), methods=["GET"]),
        Route("/api/users/{id}", g(api.get_user), methods=["GET"]),
        Route("/api/requests/export", g(api.export_requests), methods=["GET"]),
    ]


def visibility(principal: Principal) -> Visibility:
    reach = principal.reach
    if reach.everything:
        return ALL
    return Visibility(key_id=reach.key_id, team_id=reach.team_id, user_id=reach.user_id)


class TracesApi:
    def __init__(self, tracing: Tracing, requests: Any) -> None:
        self.tracing = tracing
        self.requests = requests
        self.cap = tracing.settings.max_payload_bytes

    # ---- ingestion ---------------------------------------------------------------------------

    async def otlp(self, request: Request, principal: Principal) -> Response:
        body = await _body(request)
        protobuf = "protobuf" in request.headers.get("content-type", "")
        try:
            parsed = otlp.parse_protobuf(body) if protobuf else otlp.parse_json(orjson.loads(body))
            spans = otlp.decode(parsed, self.cap)
        except (PayloadError, orjson.JSONDecodeError) as exc:
            raise bad_request(str(exc)) from exc
        self._accept(spans, principal)
        if protobuf:
            return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")
        return JSONResponse({})

    async def ingest(self, request: Request, principal: Principal) -> Response:
        try:
            spans = parse_spans(orjson.loads(await _body(request)), self.cap)
        except (SpanError, orjson.JSONDecodeError, TypeError, ValueError) as exc:
            raise bad_request(str(exc)) from exc
        self._accept(spans, principal)
        return JSONResponse({"accepted": len(spans), "spans": [{"trace_id": s.trace_id, "span_id": s.span_id}
                                                               for s in spans]}, status_code=202)

    def _accept(self, spans: list[Any], principal: Principal) -> None:
        if not principal.is_admin:
            stamp(spans, principal.key_id, principal.team_id, principal.user_id)
        if not self.tracing.accept(spans):
            raise GatewayError(ErrorKind.rate_limit, "the span queue is full; retry shortly")

    # ---- queries -----------------------------------------------------------------------------

    async def list_spans(self, request: Request, principal: Principal) -> Response:
        filters, limit, cursor = _filters(request)
        rows, next_cursor = await asyncio.to_thread(
            self.tracing.queries.spans, filters, visibility(principal), limit, cursor)
        return JSONResponse({"data": rows, "next_cursor": next_cursor})

    async def list_traces(self, request: Request, principal: Principal) -> Response:
        filters, limit, cursor = _filters(request)
        rows, next_cursor = await asyncio.to_thread(
            self.tracing.queries.traces, filters, visibility(principal), limit, cursor)
        return JSONResponse({"data": rows, "next_cursor": next_cursor})

    async def get_trace(self, request: Request, principal: Principal) -> Response:
        trace_id = normalise_trace_id(request.path_params["trace_id"])
        tree = await asyncio.to_thread(self.tracing.queries.trace, trace_id, visibility(principal))
        if not tree:
            raise GatewayError(ErrorKind.not_found, "no such trace")
        return JSONResponse({"trace_id": trace_id, "spans": tree})

    async def get_session(self, request: Request, principal: Principal) -> Response:
        filters, limit, cursor = _filters(request)
        filters.session_id = request.path_params["id"]
        rows, next_cursor = await asyncio.to_thread(
            self.tracing.queries.traces, filters, visibility(principal), limit, cursor)
        return JSONResponse({"session_id": filters.session_id, "traces": rows, "next_cursor": next_cursor})

    async def get_user(self, request: Request, principal: Principal) -> Response:
        summary = await asyncio.to_thread(
            self.tracing.queries.user_summary, request.path_params["id"], visibility(principal))
        return JSONResponse(summary)

    async def export_requests(self, request: Request, principal: Principal) -> Response:
        q = request.query_params
        try:
            filters = RequestFilters(since=_time_ms(q.get("since")), until=_time_ms(q.get("until")))
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        principal.reach.narrow(filters)  # as in GET /api/requests
        pages = requests_jsonl(self.requests, filters)

        async def stream() -> Any:
            while (chunk := await asyncio.to_thread(next, pages, None)) is not None:
                yield chunk

        return StreamingResponse(stream(), media_type="application/x-ndjson")


async def _body(request: Request) -> bytes:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise GatewayError(ErrorKind.request_too_large, f"the body exceeds {MAX_BODY} bytes")
    body = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise bad_request("the body is not valid gzip") from exc
    return body


def _filters(request: Request) -> tuple[SpanFilters, int, str | None]:
    q = request.query_params
    try:
        filters = SpanFilters(
            since_us=_us(q.get("since")), until_us=_us(q.get("until")),
            **{name: q.get(name) or None for name in _TEXT_FILTERS},
            **{name: float(q[name]) if q.get(name) else None for name in _NUMBER_FILTERS},
        )
        if filters.trace_id:
            filters.trace_id = normalise_trace_id(filters.trace_id)
        limit = int(q.get("limit") or 50)
        if q.get("cursor"):
            decode_cursor(q["cursor"])  # a forged cursor is the caller's error (400), not ours
    except ValueError as exc:
        raise bad_request(f"bad filter value: {exc}") from exc
    return filters, limit, q.get("cursor") or None


def _time_ms(value: str | None) -> int | None:
    return parse_time_ms(value) if value else None


def _us(value: str | None) -> int | None:
    ms = _time_ms(value)
    return None if ms is None else ms * 1000
