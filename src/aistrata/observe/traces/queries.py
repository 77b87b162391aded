"""Reads over traces: filtered spans, traces with aggregates, one trace as a tree, and a
user's summary. Synchronous like `Database`; the API runs them in a thread.

Spans live in two tables: applications' spans in `spans`, and the gateway's on its requests'
rows in the request log (see `gateway_span`). Every read asks both, each in its own columns
(`_span_where`, `_request_where`): a page is two `ORDER BY ... LIMIT` queries, each served by
its own table's indexes, merged here; totals are taken over both with `UNION ALL`.

A trace is listed by its root span. A span whose parent never arrived (a client passed a
`traceparent` to the gateway but exports no spans of its own) counts as a root too, so such
traces still show up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ...store.db import Database
from ...store.paging import decode_cursor, encode_cursor, tag_clause
from ...store.request_log import SELECT as SELECT_REQUESTS
from ...store.request_log import RequestLog
from .gateway_span import span_row
from .model import now_us
from .store import ALL, MAX_LIMIT, SELECT, PayloadCodec, Visibility, decode_row

_EQUAL = {
    "trace_id": "trace_id", "session_id": "session_id", "user_id": "user_id", "key_id": "key_id",
    "team_id": "team_id", "model": "request_model", "provider": "provider_name", "status": "status",
    "type": "type", "name": "name",
}
# The same filters over the request log; status, type and name are worked out from its columns.
_REQUEST_EQUAL = {
    "trace_id": "trace_id", "session_id": "session_id", "user_id": "end_user_id", "key_id": "key_id",
    "team_id": "team_id", "model": "requested_model", "provider": "provider",
}
_REQUEST_STATUS = {"error": "({a}status >= 400 OR {a}error_kind IS NOT NULL)",
                   "ok": "({a}status < 400 AND {a}error_kind IS NULL)"}
_REQUEST_TYPE = {"embedding": "{a}endpoint = 'embeddings'", "generation": "{a}endpoint <> 'embeddings'"}
_REQUEST_OPERATION = {"chat": "{a}endpoint IN ('chat', 'messages')", "embeddings": "{a}endpoint = 'embeddings'"}
_NOTHING = "1 = 0"
# How far below a page's top `_page` reads first, then next: an hour, a day, a week, all time.
_WINDOWS_US = (3_600_000_000, 86_400_000_000, 604_800_000_000, None)
_ANY_SPAN = ("model", "provider", "status", "session_id", "user_id", "tag")
# What the totals need of a span, from either table.
_FACTS = (
    "(SELECT trace_id, session_id, user_id, key_id, team_id, request_model, cost_usd, input_tokens, "
    "output_tokens, start_us, end_us, CASE WHEN status = 'error' THEN 1 ELSE 0 END AS failed FROM spans "
    "UNION ALL SELECT trace_id, session_id, end_user_id, key_id, team_id, requested_model, cost_usd, input_tokens, "
    "output_tokens, ts * 1000, ts * 1000 + CAST(COALESCE(latency_ms, 0) * 1000 AS BIGINT), "
    "CASE WHEN status >= 400 OR error_kind IS NOT NULL THEN 1 ELSE 0 END FROM requests "
    "WHERE trace_id IS NOT NULL) f"
)
_AGGREGATES = (
    "SELECT trace_id, COUNT(*) AS span_count, SUM(cost_usd) AS total_cost_usd, "
    "SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, "
    f"MIN(start_us) AS first_start_us, MAX(end_us) AS last_end_us, SUM(failed) AS error_count FROM {_FACTS}"
)
# A span's parent, looked for in both tables (correlated on the outer row `x`). In PostgreSQL
# `OFFSET 0` keeps each test a probe of the table's key: for a page it expects to read widely,
# the planner would otherwise hash the whole table first.
_PARENT = "EXISTS (SELECT 1 FROM {table} p WHERE p.trace_id = {x}.trace_id AND p.span_id = {x}.parent_span_id{fence})"


def _root(db: Database, x: str) -> str:
    """The outer row `x` is a root: it has no parent, or its parent never arrived."""
    fence = " OFFSET 0" if db.engine == "postgres" else ""
    spans, requests = (_PARENT.format(table=t, x=x, fence=fence) for t in ("spans", "requests"))
    return f"({x}.parent_span_id IS NULL OR NOT ({spans} OR {requests}))"


@dataclass(slots=True)
class SpanFilters:
    """Every field is optional; set ones are ANDed. Times are epoch µs, `since` inclusive,
    `until` exclusive; latency in ms and cost in USD are inclusive ranges."""

    since_us: int | None = None
    until_us: int | None = None
    trace_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None
    team_id: str | None = None
    model: str | None = None
    provider: str | None = None
    status: str | None = None
    type: str | None = None
    name: str | None = None
    tag: str | None = None
    min_latency_ms: float | None = None
    max_latency_ms: float | None = None
    min_cost_usd: float | None = None
    max_cost_usd: float | None = None


class SpanQueries:
    def __init__(self, db: Database, codec: PayloadCodec | None = None) -> None:
        self.db = db
        self.codec = codec
        self.requests = RequestLog(db, codec)  # decodes the request rows read as spans

    def spans(
        self, f: SpanFilters, visibility: Visibility = ALL, limit: int = 50, cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Spans matching `f`, newest first, and the cursor of the next page (or None)."""
        return self._page(self._span_where(f, visibility, "s."), self._request_where(f, visibility, "r."),
                          limit, cursor, windowed=_scans(f))

    def traces(
        self, f: SpanFilters, visibility: Visibility = ALL, limit: int = 50, cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Root spans of the traces matching `f`, newest first, each with its trace's totals.
        Model, provider, status, session, user and tag match when any span of the trace has them
        (an application's root span rarely carries the model, or the session the gateway saw)."""
        any_span = SpanFilters(**{k: getattr(f, k) for k in _ANY_SPAN})
        own = replace(f, **{k: None for k in _ANY_SPAN})
        spans, requests = self._span_where(own, visibility, "s."), self._request_where(own, visibility, "r.")
        spans[0].append(_root(self.db, "s"))
        requests[0].append(_root(self.db, "r"))
        matching = any(getattr(any_span, k) is not None for k in _ANY_SPAN)
        if matching:
            (a, a_params), (q, q_params) = self._span_where(any_span, ALL, "a."), self._request_where(any_span, ALL, "q.")
            traces = (f"IN (SELECT a.trace_id FROM spans a WHERE {' AND '.join(a)} "
                      f"UNION ALL SELECT q.trace_id FROM requests q WHERE {' AND '.join(q)})")
            for (where, params), x in ((spans, "s"), (requests, "r")):
                where.append(f"{x}.trace_id {traces}")
                params.extend((*a_params, *q_params))
        # Roots among the matching traces are found by trace id, not by a scan down the time index.
        roots, next_cursor = self._page(spans, requests, limit, cursor, windowed=not matching and _scans(own))
        self._add_aggregates(roots, visibility)
        return roots, next_cursor

    def trace(self, trace_id: str, visibility: Visibility = ALL) -> list[dict[str, Any]]:
        """The spans of one trace as a forest (usually one tree): each span has `children`."""
        one = SpanFilters(trace_id=trace_id)
        (where, params), (r_where, r_params) = self._span_where(one, visibility, ""), self._request_where(one, visibility, "")
        rows = [decode_row(r, self.codec) for r in self.db.fetchall(f"{SELECT} WHERE {' AND '.join(where)}", params)]
        rows += [span_row(self.requests.decode(r))
                 for r in self.db.fetchall(f"{SELECT_REQUESTS} WHERE {' AND '.join(r_where)}", r_params)]
        rows.sort(key=lambda r: (r["start_us"], r["span_id"]))
        by_id = {r["span_id"]: r for r in rows}
        top: list[dict[str, Any]] = []
        for row in rows:
            row["children"] = []
        for row in rows:
            parent = by_id.get(row["parent_span_id"])
            (parent["children"] if parent is not None else top).append(row)
        return top

    def user_summary(self, user_id: str, visibility: Visibility = ALL) -> dict[str, Any]:
        clause, params = visibility.clause("f.")
        where = "f.user_id = ?" + (f" AND {clause}" if clause else "")
        row = self.db.fetchone(
            "SELECT COUNT(*) AS span_count, COUNT(DISTINCT trace_id) AS trace_count, "
            "COUNT(DISTINCT session_id) AS session_count, SUM(cost_usd) AS total_cost_usd, "
            "SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, SUM(failed) AS error_count, "
            f"MIN(start_us) AS first_seen_us, MAX(end_us) AS last_seen_us FROM {_FACTS} WHERE {where}",
            (user_id, *params),
        ) or {}
        models = self.db.fetchall(
            "SELECT request_model AS model, COUNT(*) AS span_count, SUM(cost_usd) AS total_cost_usd "
            f"FROM {_FACTS} WHERE {where} AND request_model IS NOT NULL GROUP BY request_model "
            "ORDER BY span_count DESC, model",
            (user_id, *params),
        )
        return {"user_id": user_id, **_numbers(row), "models": [_numbers(m) for m in models]}

    # ---- internals --------------------------------------------------------------------------

    def _span_where(self, f: SpanFilters, visibility: Visibility, alias: str) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        _add(where, params, alias, (
            ("start_us >= ?", f.since_us), ("start_us < ?", f.until_us),
            ("duration_ms >= ?", f.min_latency_ms), ("duration_ms <= ?", f.max_latency_ms),
            ("cost_usd >= ?", f.min_cost_usd), ("cost_usd <= ?", f.max_cost_usd),
            *((f"{column} = ?", getattr(f, field)) for field, column in _EQUAL.items()),
        ))
        if f.tag is not None:
            where.append(tag_clause(self.db, f"{alias or 'spans.'}tags"))
            params.append(f.tag)
        clause, extra = visibility.clause(alias)
        if clause:
            where.append(clause)
            params.extend(extra)
        return where, params

    def _request_where(self, f: SpanFilters, visibility: Visibility, alias: str) -> tuple[list[str], list[Any]]:
        """`_span_where` for the request log's rows read as spans: times in ms (`ts`), so its
        indexes serve them; a bound in µs becomes the first ms it admits."""
        where: list[str] = [f"{alias}trace_id IS NOT NULL"]
        params: list[Any] = []
        _add(where, params, alias, (
            ("ts >= ?", None if f.since_us is None else -(-f.since_us // 1000)),
            ("ts < ?", None if f.until_us is None else -(-f.until_us // 1000)),
            ("latency_ms >= ?", f.min_latency_ms), ("latency_ms <= ?", f.max_latency_ms),
            ("cost_usd >= ?", f.min_cost_usd), ("cost_usd <= ?", f.max_cost_usd),
            *((f"{column} = ?", getattr(f, field)) for field, column in _REQUEST_EQUAL.items()),
        ))
        if f.status is not None:
            where.append(_REQUEST_STATUS.get(f.status, _NOTHING).format(a=alias))
        if f.type is not None:
            where.append(_REQUEST_TYPE.get(f.type, _NOTHING).format(a=alias))
        if f.name is not None:  # "<operation> <requested model>", as `gateway_span` names it
            operation, _, model = f.name.partition(" ")
            where.append(_REQUEST_OPERATION.get(operation, _NOTHING).format(a=alias))
            if model:
                where.append(f"{alias}requested_model = ?")
                params.append(model)
            else:
                where.append(f"({alias}requested_model IS NULL OR {alias}requested_model = '')")
        if f.tag is not None:
            where.append(tag_clause(self.db, f"{alias or 'requests.'}tags"))
            params.append(f.tag)
        clause, extra = visibility.clause(alias)
        if clause:
            where.append(clause.replace(f"{alias}user_id", f"{alias}end_user_id"))
            params.extend(extra)
        return where, params

    def _page(
        self, spans: tuple[list[str], list[Any]], requests: tuple[list[str], list[Any]], limit: int, cursor: str | None,
        windowed: bool = True,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page from each table, newest first, merged: keyset on (start_us, span_id), so a
        page costs the same however deep it is.

        A filter may match many rows in one table and none in the other, where a scan down
        the time index would then read the whole table for nothing. So the two tables are
        read over a window below the page's top first, widened until it holds more than a page
        (every row outside is older than all inside) or spans all time. Not `windowed`: all time
        at once, for filters that find their few rows by index (a trace, a session)."""
        (where, params), (r_where, r_params) = spans, requests
        top = now_us()
        if cursor is not None:
            top, span_id = decode_cursor(cursor)
            where, params = [*where, "(s.start_us, s.span_id) < (?, ?)"], [*params, top, span_id]
            r_where = [*r_where, "r.ts <= ? AND (r.ts * 1000 < ? OR r.span_id < ?)"]
            r_params = [*r_params, top // 1000, top, span_id]
        limit = max(1, min(limit, MAX_LIMIT))
        for window in _WINDOWS_US if windowed else (None,):
            since = None if window is None else top - window
            rows = self._newest(where, params, r_where, r_params, since, limit + 1)
            if len(rows) > limit:
                break
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]["start_us"], rows[-1]["span_id"]) if more else None

    def _newest(self, where: list[str], params: list[Any], r_where: list[str], r_params: list[Any],
                since_us: int | None, n: int) -> list[dict[str, Any]]:
        """The `n` newest rows of the two tables together, started at or after `since_us`."""
        if since_us is not None:
            where, params = [*where, "s.start_us >= ?"], [*params, since_us]
            r_where, r_params = [*r_where, "r.ts >= ?"], [*r_params, -(-since_us // 1000)]
        rows = [decode_row(r, self.codec) for r in self.db.fetchall(
            f"{SELECT} s{_where(where)} ORDER BY s.start_us DESC, s.span_id DESC LIMIT ?", (*params, n))]
        rows += [span_row(self.requests.decode(r)) for r in self.db.fetchall(
            f"{SELECT_REQUESTS} r{_where(r_where)} ORDER BY r.ts DESC, r.span_id DESC LIMIT ?", (*r_params, n))]
        rows.sort(key=lambda r: (r["start_us"], r["span_id"]), reverse=True)
        return rows[:n]

    def _add_aggregates(self, roots: list[dict[str, Any]], visibility: Visibility) -> None:
        if not roots:
            return
        ids = sorted({r["trace_id"] for r in roots})
        clause, params = visibility.clause("f.")
        sql = (f"{_AGGREGATES} WHERE f.trace_id IN ({', '.join('?' * len(ids))})"
               + (f" AND {clause}" if clause else "") + " GROUP BY trace_id")
        totals = {r["trace_id"]: r for r in self.db.fetchall(sql, (*ids, *params))}
        for root in roots:
            t = _numbers(totals.get(root["trace_id"], {}))
            root["trace"] = {
                "span_count": t.get("span_count", 0), "error_count": t.get("error_count", 0),
                "total_cost_usd": t.get("total_cost_usd"),
                "input_tokens": t.get("input_tokens", 0), "output_tokens": t.get("output_tokens", 0),
                "latency_ms": (t["last_end_us"] - t["first_start_us"]) / 1000 if t.get("first_start_us") is not None else None,
            }


def _add(where: list[str], params: list[Any], alias: str, tests: Iterable[tuple[str, Any]]) -> None:
    """Each `(test, value)` whose value is set, as a condition on `alias`'s columns."""
    for test, value in tests:
        if value is not None:
            where.append(alias + test)
            params.append(value)


def _scans(f: SpanFilters) -> bool:
    """Whether reading `f` may scan down the time index (no trace or session to look up)."""
    return f.trace_id is None and f.session_id is None


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL sums come back as Decimal; JSON wants plain numbers."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is not None and type(value).__name__ == "Decimal":
            value = float(value) if value % 1 else int(value)
        out[key] = value
    return out
