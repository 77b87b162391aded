"""Aggregates over the request log: per-group performance (`summary`) and money (`costs`).

Counts and sums are SQL aggregates on both engines. Percentiles are `percentile_cont` in
PostgreSQL; SQLite has no such aggregate, so they are computed here from the newest
`max_percentile_rows` latencies of the window (the answer says `percentiles_sampled` when
that cap cut the window short). Both use the same linear interpolation, so the engines agree.

A request with several tags counts once in each of its tags' groups.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from ..store.db import Database
from ..store.request_log import RequestFilters, RequestLog

GroupBy = Literal["model", "provider", "key", "user", "team", "tag", "project", "day"]
GROUPS: tuple[str, ...] = ("model", "provider", "key", "user", "team", "tag", "project", "day")

_COLUMN = {"model": "requests.requested_model", "provider": "requests.provider", "key": "requests.key_id",
           "user": "requests.user_id", "team": "requests.team_id", "tag": "t.value"}
_ENGINE_EXPR = {
    "sqlite": {"project": "json_extract(requests.metadata, '$.project')",
               "day": "strftime('%Y-%m-%d', requests.ts / 1000, 'unixepoch')"},
    "postgres": {"project": "requests.metadata->>'project'",
                 "day": "to_char(to_timestamp(requests.ts / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"},
}
_TAG_JOIN = {"sqlite": ", json_each(requests.tags) AS t",
             "postgres": " CROSS JOIN LATERAL jsonb_array_elements_text(requests.tags) AS t(value)"}
_PERCENTILES = (("p50_latency_ms", "latency_ms", 0.5), ("p95_latency_ms", "latency_ms", 0.95),
                ("p99_latency_ms", "latency_ms", 0.99), ("p50_ttft_ms", "ttft_ms", 0.5),
                ("p95_ttft_ms", "ttft_ms", 0.95))
_ALL = "'all'"  # the one group when there is no grouping
_SUMS = """COUNT(*) AS requests,
    SUM(CASE WHEN requests.error_kind IS NOT NULL THEN 1 ELSE 0 END) AS errors,
    SUM(CASE WHEN requests.cache_hit THEN 1 ELSE 0 END) AS cache_hits,
    SUM(requests.input_tokens) AS input_tokens, SUM(requests.output_tokens) AS output_tokens,
    SUM(requests.cache_read_tokens) AS cache_read_tokens, SUM(requests.reasoning_tokens) AS reasoning_tokens,
    SUM(requests.cost_usd) AS cost_usd, SUM(requests.saved_usd) AS saved_usd"""


def percentile(ordered: list[float], q: float) -> float | None:
    """`percentile_cont`: linear interpolation between the closest ranks of sorted values."""
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(slots=True)
class _Query:
    sql_from: str
    where: str
    params: list[Any]
    group: str


class RequestStats:
    def __init__(self, db: Database, max_percentile_rows: int = 200_000) -> None:
        self.db = db
        self.log = RequestLog(db)
        self.max_percentile_rows = max_percentile_rows

    def _query(self, filters: RequestFilters, group_by: str | None) -> _Query:
        if group_by is not None and group_by not in GROUPS:
            raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
        where, params = self.log.conditions(filters)
        sql_from = "requests" + (_TAG_JOIN[self.db.engine] if group_by == "tag" else "")
        group = _ALL if group_by is None else _COLUMN.get(group_by) or _ENGINE_EXPR[self.db.engine][group_by]
        return _Query(sql_from, f" WHERE {' AND '.join(where)}" if where else "", params, group)

    def _sums(self, q: _Query, extra: str = "") -> list[dict[str, Any]]:
        grouping = f" GROUP BY {q.group}" if q.group != _ALL else ""
        sql = (f"SELECT {q.group} AS grp, {_SUMS}{extra} FROM {q.sql_from}{q.where}{grouping} "
               "ORDER BY COALESCE(SUM(requests.cost_usd), 0) DESC, COUNT(*) DESC")
        return self.db.fetchall(sql, q.params)

    def costs(self, filters: RequestFilters, group_by: str | None = None) -> list[dict[str, Any]]:
        """Money and tokens per group, biggest spender first."""
        rows = self._sums(self._query(filters, group_by))
        return [{"group": r["grp"], "requests": r["requests"], "cost_usd": r["cost_usd"] or 0.0,
                 "saved_usd": r["saved_usd"] or 0.0, "input_tokens": r["input_tokens"] or 0,
                 "output_tokens": r["output_tokens"] or 0, "cache_read_tokens": r["cache_read_tokens"] or 0,
                 "reasoning_tokens": r["reasoning_tokens"] or 0} for r in rows]

    def summary(self, filters: RequestFilters, group_by: str | None = None) -> list[dict[str, Any]]:
        """Per group: volume, error and cache-hit rates, latency and TTFT percentiles, tokens
        and cost per request."""
        q = self._query(filters, group_by)
        if self.db.engine == "postgres":
            extra = "".join(f", percentile_cont({p}) WITHIN GROUP (ORDER BY requests.{col}) AS {name}"
                            for name, col, p in _PERCENTILES)
            rows = self._sums(q, extra)
            sampled = False
        else:
            rows = self._sums(q)
            sampled = self._sqlite_percentiles(q, rows)
        return [_shape(r, sampled) for r in rows]

    def _sqlite_percentiles(self, q: _Query, rows: list[dict[str, Any]]) -> bool:
        """Fill the percentile columns from the newest latencies; True when capped."""
        sql = (f"SELECT {q.group} AS grp, requests.latency_ms, requests.ttft_ms FROM {q.sql_from}{q.where} "
               "ORDER BY requests.ts DESC LIMIT ?")
        found = self.db.fetchall(sql, (*q.params, self.max_percentile_rows + 1))
        sampled = len(found) > self.max_percentile_rows
        values: dict[Any, dict[str, list[float]]] = defaultdict(lambda: {"latency_ms": [], "ttft_ms": []})
        for r in found[: self.max_percentile_rows]:
            for col in ("latency_ms", "ttft_ms"):
                if r[col] is not None:
                    values[r["grp"]][col].append(r[col])
        for row in rows:
            series = {col: sorted(v) for col, v in values[row["grp"]].items()}
            for name, col, p in _PERCENTILES:
                row[name] = percentile(series[col], p)
        return sampled


def _shape(r: dict[str, Any], sampled: bool) -> dict[str, Any]:
    n = r["requests"] or 0
    tokens = (r["input_tokens"] or 0) + (r["output_tokens"] or 0)
    cost = r["cost_usd"] or 0.0
    out: dict[str, Any] = {
        "group": r["grp"], "requests": n, "errors": r["errors"] or 0,
        "error_rate": (r["errors"] or 0) / n if n else 0.0,
        "cache_hit_rate": (r["cache_hits"] or 0) / n if n else 0.0,
        "tokens_per_request": tokens / n if n else 0.0,
        "cost_per_request": cost / n if n else 0.0, "total_cost_usd": cost,
    }
    out.update({name: r[name] for name, _, _ in _PERCENTILES})
    if sampled:
        out["percentiles_sampled"] = True
    return out
