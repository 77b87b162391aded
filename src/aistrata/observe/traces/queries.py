"""Reads over the `spans` table: filtered spans, traces with aggregates, one trace as a tree,
and a user's summary. Synchronous like `Database`; the API runs them in a thread.

A trace is listed by its root span. A span whose parent never arrived (a client passed a
`traceparent` to the gateway but exports no spans of its own) counts as a root too, so such
traces still show up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ...store.db import Database
from ...store.paging import decode_cursor, encode_cursor, tag_clause
from .store import ALL, MAX_LIMIT, SELECT, PayloadCodec, Visibility, decode_row

_EQUAL = {
    "trace_id": "trace_id", "session_id": "session_id", "user_id": "user_id", "key_id": "key_id",
    "team_id": "team_id", "model": "request_model", "provider": "provider_name", "status": "status",
    "type": "type", "name": "name",
}
_ANY_SPAN = ("model", "provider", "status", "session_id", "user_id", "tag")
_AGGREGATES = (
    "SELECT trace_id, COUNT(*) AS span_count, SUM(cost_usd) AS total_cost_usd, "
    "SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, "
    "MIN(start_us) AS first_start_us, MAX(end_us) AS last_end_us, "
    "SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS error_count FROM spans"
)


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

    def spans(
        self, f: SpanFilters, visibility: Visibility = ALL, limit: int = 50, cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Spans matching `f`, newest first, and the cursor of the next page (or None)."""
        where, params = self._where(f, visibility, "s.")
        return self._page(f"{SELECT} s", where, params, limit, cursor)

    def traces(
        self, f: SpanFilters, visibility: Visibility = ALL, limit: int = 50, cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Root spans of the traces matching `f`, newest first, each with its trace's totals.
        Model, provider, status, session, user and tag match when any span of the trace has them
        (an application's root span rarely carries the model, or the session the gateway saw)."""
        any_span = SpanFilters(**{k: getattr(f, k) for k in _ANY_SPAN})
        where, params = self._where(replace(f, **{k: None for k in _ANY_SPAN}), visibility, "s.")
        where.append("(s.is_root = ? OR NOT EXISTS (SELECT 1 FROM spans p WHERE p.trace_id = s.trace_id "
                     "AND p.span_id = s.parent_span_id))")
        params.append(True)
        inner, inner_params = self._where(any_span, ALL, "a.")
        if inner:
            where.append(f"s.trace_id IN (SELECT a.trace_id FROM spans a WHERE {' AND '.join(inner)})")
            params.extend(inner_params)
        roots, next_cursor = self._page(f"{SELECT} s", where, params, limit, cursor)
        self._add_aggregates(roots, visibility)
        return roots, next_cursor

    def trace(self, trace_id: str, visibility: Visibility = ALL) -> list[dict[str, Any]]:
        """The spans of one trace as a forest (usually one tree): each span has `children`."""
        clause, params = visibility.clause()
        sql = f"{SELECT} WHERE trace_id = ?" + (f" AND {clause}" if clause else "") + " ORDER BY start_us, span_id"
        rows = [decode_row(r, self.codec) for r in self.db.fetchall(sql, (trace_id, *params))]
        by_id = {r["span_id"]: r for r in rows}
        top: list[dict[str, Any]] = []
        for row in rows:
            row["children"] = []
        for row in rows:
            parent = by_id.get(row["parent_span_id"])
            (parent["children"] if parent is not None else top).append(row)
        return top

    def user_summary(self, user_id: str, visibility: Visibility = ALL) -> dict[str, Any]:
        clause, params = visibility.clause()
        where = "user_id = ?" + (f" AND {clause}" if clause else "")
        row = self.db.fetchone(
            "SELECT COUNT(*) AS span_count, COUNT(DISTINCT trace_id) AS trace_count, "
            "COUNT(DISTINCT session_id) AS session_count, SUM(cost_usd) AS total_cost_usd, "
            "SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, "
            "SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS error_count, "
            f"MIN(start_us) AS first_seen_us, MAX(end_us) AS last_seen_us FROM spans WHERE {where}",
            (user_id, *params),
        ) or {}
        models = self.db.fetchall(
            "SELECT request_model AS model, COUNT(*) AS span_count, SUM(cost_usd) AS total_cost_usd "
            f"FROM spans WHERE {where} AND request_model IS NOT NULL GROUP BY request_model ORDER BY span_count DESC",
            (user_id, *params),
        )
        return {"user_id": user_id, **_numbers(row), "models": [_numbers(m) for m in models]}

    # ---- internals --------------------------------------------------------------------------

    def _where(self, f: SpanFilters, visibility: Visibility, alias: str) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for test, value in (
            ("start_us >= ?", f.since_us), ("start_us < ?", f.until_us),
            ("duration_ms >= ?", f.min_latency_ms), ("duration_ms <= ?", f.max_latency_ms),
            ("cost_usd >= ?", f.min_cost_usd), ("cost_usd <= ?", f.max_cost_usd),
        ):
            if value is not None:
                where.append(alias + test)
                params.append(value)
        for field, column in _EQUAL.items():
            value = getattr(f, field)
            if value is not None:
                where.append(f"{alias}{column} = ?")
                params.append(value)
        if f.tag is not None:
            where.append(tag_clause(self.db, f"{alias or 'spans.'}tags"))
            params.append(f.tag)
        clause, extra = visibility.clause(alias)
        if clause:
            where.append(clause)
            params.extend(extra)
        return where, params

    def _page(
        self, select: str, where: list[str], params: list[Any], limit: int, cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if cursor is not None:
            where = [*where, "(s.start_us, s.span_id) < (?, ?)"]  # keyset: same cost on every page
            params = [*params, *decode_cursor(cursor)]
        limit = max(1, min(limit, MAX_LIMIT))
        sql = select + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY s.start_us DESC, s.span_id DESC LIMIT ?"
        rows = self.db.fetchall(sql, (*params, limit + 1))
        more = len(rows) > limit
        rows = [decode_row(r, self.codec) for r in rows[:limit]]
        return rows, encode_cursor(rows[-1]["start_us"], rows[-1]["span_id"]) if more else None

    def _add_aggregates(self, roots: list[dict[str, Any]], visibility: Visibility) -> None:
        if not roots:
            return
        ids = sorted({r["trace_id"] for r in roots})
        clause, params = visibility.clause()
        sql = (f"{_AGGREGATES} WHERE trace_id IN ({', '.join('?' * len(ids))})" + (f" AND {clause}" if clause else "")
               + " GROUP BY trace_id")
        totals = {r["trace_id"]: r for r in self.db.fetchall(sql, (*ids, *params))}
        for root in roots:
            t = _numbers(totals.get(root["trace_id"], {}))
            root["trace"] = {
                "span_count": t.get("span_count", 0), "error_count": t.get("error_count", 0),
                "total_cost_usd": t.get("total_cost_usd"),
                "input_tokens": t.get("input_tokens", 0), "output_tokens": t.get("output_tokens", 0),
                "latency_ms": (t["last_end_us"] - t["first_start_us"]) / 1000 if t.get("first_start_us") is not None else None,
            }


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL sums come back as Decimal; JSON wants plain numbers."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is not None and type(value).__name__ == "Decimal":
            value = float(value) if value % 1 else int(value)
        out[key] = value
    return out
