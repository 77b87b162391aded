"""Gateway spans live on their request rows, applications' spans in `spans`: every span query
must answer exactly as it would if each gateway span were a row of `spans` (as before the
request log carried them). The same spans are stored both ways and every read compared."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aistrata.core import now_ms
from aistrata.observe.records import RequestRecord
from aistrata.observe.request_recording import RequestSink
from aistrata.observe.traces import Span, SpanFilters, SpanQueries, SpanSink, Visibility, span_of
from aistrata.store import Database, RequestLog, migrate

HOUR = 3_600_000  # ms
T0 = now_ms() - 10 * HOUR  # the rows spread over the windows `SpanQueries` pages through
APP_TRACE = f"{1:032x}"


def _app_spans() -> list[Span]:
    root = Span(trace_id=APP_TRACE, span_id=f"{1:016x}", name="agent", start_us=T0 * 1000, end_us=(T0 + 900) * 1000,
                type="agent", session_id="s1", user_id="u1", key_id="k1", team_id="t1", tags=["beta"], status="ok")
    tool = Span(trace_id=APP_TRACE, span_id=f"{2:016x}", parent_span_id=root.span_id, name="search",
                start_us=(T0 + 5) * 1000 + 500, end_us=(T0 + 50) * 1000, type="tool", status="error",
                key_id="k1", team_id="t1", user_id="u1")
    other = Span(trace_id=f"{2:032x}", span_id=f"{3:016x}", name="chat claude", start_us=(T0 + 7) * 1000,
                 end_us=(T0 + 400) * 1000, type="generation", request_model="claude", provider_name="anthropic",
                 cost_usd=1.0, input_tokens=4, key_id="k2", user_id="u2")
    return [root, tool, other]


def _requests() -> list[RequestRecord]:
    """Gateway requests: two inside the application's trace, the rest traces of their own, with
    ties on the millisecond, every endpoint, errors, sessions, end users and tags."""
    out = []
    for i in range(12):
        rec = RequestRecord(
            id=f"req_{T0 + i:012x}{i * 7919:016x}", ts=T0 + (i // 2) * 2 * HOUR, endpoint=("chat", "messages", "embeddings")[i % 3],
            key_id=("k1", "k2", None)[i % 3], user_id="u1" if i % 2 else None, team_id="t1" if i < 6 else None,
            requested_model=("gpt", "claude", "emb")[i % 3], provider=("openai", "anthropic", "openai")[i % 3],
            status=(200, 429, 502, 400)[i % 4], error_kind="rate_limited" if i % 4 == 1 else None,
            latency_ms=10.0 + i * 25.5, ttft_ms=3.0 if i % 5 == 0 else None, input_tokens=10 * i, output_tokens=i,
            cost_usd=0.01 * i if i % 6 else None, tags=["beta"] if i % 4 == 0 else [], metadata={"i": i},
            trace_id=APP_TRACE if i < 2 else f"{100 + i:032x}", parent_span_id=f"{1:016x}" if i < 2 else None,
            session_id="s1" if i % 3 == 0 else None, end_user_id=("u1", "u2", "end-9")[i % 3],
            response_model=("gpt-2025", None, "emb")[i % 3], input=f"prompt {i}", output=f"answer {i}",
            input_bytes=8, output_bytes=8,
        )
        out.append(rec)
    return out


def _store_as_before(db: Database) -> None:
    SpanSink(db).insert_many([*_app_spans(), *(span_of(r) for r in _requests())])


def _store_once(db: Database) -> None:
    SpanSink(db).insert_many(_app_spans())
    RequestSink(RequestLog(db)).insert_many(_requests())


def _every_page(read: Callable[..., tuple[list[dict[str, Any]], str | None]], limit: int) -> list[dict[str, Any]]:
    rows, cursor = read(limit=limit)
    while cursor is not None:
        more, cursor = read(limit=limit, cursor=cursor)
        rows += more
    return rows


FILTERS = [
    SpanFilters(), SpanFilters(model="gpt"), SpanFilters(model="claude"), SpanFilters(provider="openai"),
    SpanFilters(status="error"), SpanFilters(status="ok"), SpanFilters(status="unset"), SpanFilters(type="embedding"),
    SpanFilters(type="generation"), SpanFilters(type="tool"), SpanFilters(name="chat gpt"), SpanFilters(name="chat claude"),
    SpanFilters(name="embeddings emb"), SpanFilters(name="agent"), SpanFilters(session_id="s1"),
    SpanFilters(user_id="u1"), SpanFilters(user_id="end-9"), SpanFilters(key_id="k1"), SpanFilters(team_id="t1"),
    SpanFilters(tag="beta"), SpanFilters(min_latency_ms=100, max_latency_ms=200), SpanFilters(min_cost_usd=0.05),
    SpanFilters(since_us=(T0 + 2 * HOUR) * 1000 + 1, until_us=(T0 + 8 * HOUR) * 1000 + 1),
    SpanFilters(trace_id=APP_TRACE),
]
VISIBILITY = [Visibility(), Visibility(team_id="t1"), Visibility(key_id="k2"), Visibility(user_id="u1")]


def _reads(db: Database) -> dict[str, Any]:
    q = SpanQueries(db)
    out: dict[str, Any] = {}
    for n, f in enumerate(FILTERS):
        for v, vis in enumerate(VISIBILITY):
            out[f"spans {n} {v}"] = _every_page(lambda **kw: q.spans(f, vis, **kw), limit=3)
            out[f"traces {n} {v}"] = _every_page(lambda **kw: q.traces(f, vis, **kw), limit=2)
    for trace_id in (APP_TRACE, f"{105:032x}"):
        for v, vis in enumerate(VISIBILITY):
            out[f"trace {trace_id} {v}"] = q.trace(trace_id, vis)
    for user in ("u1", "u2", "end-9"):
        out[f"user {user}"] = q.user_summary(user)
    return out


def test_gateway_spans_on_request_rows_read_as_spans_rows(database: Database) -> None:
    migrate(database)
    _store_as_before(database)
    expected = _reads(database)
    assert len(expected["spans 0 0"]) == 15 and len(expected["traces 0 0"]) == 12  # the data is not trivial
    assert sum(len(rows) for key, rows in expected.items() if key.startswith("spans")) > 250
    database.execute("DELETE FROM spans WHERE source = 'gateway'")
    _store_once(database)
    assert database.fetchone("SELECT COUNT(*) AS n FROM spans")["n"] == 3  # type: ignore[index]
    found = _reads(database)
    for key in expected:
        assert _approx(found[key]) == _approx(expected[key]), key


def _approx(value: Any) -> Any:
    """Trace latencies are summed from µs in SQL: a float's last digit may differ."""
    if isinstance(value, float):
        return pytest.approx(value, abs=0.002)
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return value
