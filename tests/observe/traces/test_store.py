"""The spans table on SQLite and PostgreSQL: writes, filters, keyset pages, trees, trace
totals, visibility and retention."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aistrata.core import now_ms
from aistrata.observe.records import RequestRecord
from aistrata.observe.traces import Span, SpanFilters, SpanQueries, SpanSink, Visibility, run_retention
from aistrata.observe.traces.retention import DAY_MS, RetentionPolicy
from aistrata.store import Database
from aistrata.store.migrations import migrate
from aistrata.store.request_log import RequestLog

T0 = 1_800_000_000_000_000  # µs


@pytest.fixture()
def db(database: Database) -> Iterator[Database]:
    migrate(database)
    yield database


def _span(trace: int, span: int, parent: int | None = None, **kw: object) -> Span:
    return Span(trace_id=f"{trace:032x}", span_id=f"{span:016x}", parent_span_id=None if parent is None else f"{parent:016x}",
                name=str(kw.pop("name", f"s{span}")), start_us=T0 + span * 1000, end_us=T0 + span * 1000 + 500_000,
                **kw)  # type: ignore[arg-type]


def _seed(db: Database) -> SpanQueries:
    SpanSink(db).insert_many([
        _span(1, 1, name="agent", type="agent", session_id="s1", user_id="u1", key_id="k1", team_id="t1", tags=["beta"]),
        _span(1, 2, 1, type="generation", request_model="gpt", provider_name="openai", input_tokens=10,
              output_tokens=2, cost_usd=0.25, key_id="k1", team_id="t1", session_id="s1", user_id="u1"),
        _span(1, 3, 1, type="tool", status="error", key_id="k1", team_id="t1", session_id="s1", user_id="u1"),
        _span(2, 4, type="generation", request_model="claude", provider_name="anthropic", cost_usd=1.0,
              key_id="k2", user_id="u1"),
        _span(3, 5, 99, type="generation", request_model="gpt", key_id="k2"),  # parent never arrives
    ])
    return SpanQueries(db)


def test_filters_and_keyset_pages(db: Database) -> None:
    q = _seed(db)
    ids = lambda rows: [r["span_id"][-1] for r in rows]  # noqa: E731
    assert ids(q.spans(SpanFilters(model="gpt"))[0]) == ["5", "2"]
    assert ids(q.spans(SpanFilters(provider="anthropic"))[0]) == ["4"]
    assert ids(q.spans(SpanFilters(status="error"))[0]) == ["3"]
    assert ids(q.spans(SpanFilters(tag="beta"))[0]) == ["1"]
    assert ids(q.spans(SpanFilters(session_id="s1", type="tool"))[0]) == ["3"]
    assert ids(q.spans(SpanFilters(min_cost_usd=0.2, max_cost_usd=0.5))[0]) == ["2"]
    assert ids(q.spans(SpanFilters(since_us=T0 + 2000, until_us=T0 + 4000))[0]) == ["3", "2"]
    assert len(q.spans(SpanFilters(min_latency_ms=500, max_latency_ms=500))[0]) == 5
    assert ids(q.spans(SpanFilters(key_id="k2", user_id="u1"))[0]) == ["4"]
    seen, cursor = [], None
    while True:
        page, cursor = q.spans(SpanFilters(), limit=2, cursor=cursor)
        seen += ids(page)
        if cursor is None:
            break
    assert seen == ["5", "4", "3", "2", "1"]


def test_traces_with_totals_and_tree(db: Database) -> None:
    q = _seed(db)
    traces, _ = q.traces(SpanFilters())
    assert [t["name"] for t in traces] == ["s5", "s4", "agent"]  # the orphan counts as its trace's root
    agent = traces[2]["trace"]
    assert (agent["span_count"], agent["error_count"], agent["input_tokens"]) == (3, 1, 10)
    assert agent["total_cost_usd"] == pytest.approx(0.25) and agent["latency_ms"] == pytest.approx(502.0)
    assert [t["name"] for t in q.traces(SpanFilters(model="gpt"))[0]] == ["s5", "agent"]  # any span of the trace
    assert [t["name"] for t in q.traces(SpanFilters(status="error"))[0]] == ["agent"]
    [root] = q.trace(f"{1:032x}")
    assert root["name"] == "agent" and [c["span_id"][-1] for c in root["children"]] == ["2", "3"]
    summary = q.user_summary("u1")
    assert (summary["trace_count"], summary["span_count"], summary["error_count"]) == (2, 4, 1)
    assert summary["total_cost_usd"] == pytest.approx(1.25)


def test_visibility(db: Database) -> None:
    q = _seed(db)
    team = Visibility(key_id="k1", team_id="t1")
    assert {r["key_id"] for r in q.spans(SpanFilters(), team)[0]} == {"k1"}
    assert len(q.spans(SpanFilters(), Visibility(key_id="k2"))[0]) == 2
    assert q.trace(f"{1:032x}", Visibility(key_id="k2")) == []


def test_replayed_batch_is_not_duplicated(db: Database) -> None:
    batch = [_span(7, 1), _span(7, 2, 1)]
    SpanSink(db).insert_many(batch)
    SpanSink(db).insert_many(batch)
    assert len(SpanQueries(db).spans(SpanFilters(trace_id=f"{7:032x}"))[0]) == 2


def test_retention_deletes_old_rows_in_batches(db: Database) -> None:
    now = now_ms()
    old, new = now - 40 * DAY_MS, now - DAY_MS
    SpanSink(db).insert_many([
        Span(trace_id=f"{i:032x}", span_id=f"{i:016x}", name="x", start_us=(old if i < 25 else new) * 1000,
             end_us=(old if i < 25 else new) * 1000) for i in range(30)
    ])
    RequestLog(db).insert_many([RequestRecord(id=f"r{i}", ts=old if i < 7 else new) for i in range(10)])
    deleted = run_retention(db, RetentionPolicy(requests_days=30, spans_days=30), now=now, batch=10)
    assert deleted == {"requests": 7, "spans": 25}
    assert len(SpanQueries(db).spans(SpanFilters())[0]) == 5
    assert len(RequestLog(db).query()[0]) == 3
    assert run_retention(db, RetentionPolicy(spans_days=None), now=now) == {}


def test_gateway_spans_past_the_spans_age_leave_their_request_rows(db: Database) -> None:
    now = now_ms()
    old, new = now - 40 * DAY_MS, now - DAY_MS
    RequestLog(db).insert_many([
        RequestRecord(id=f"req_{i:032x}", ts=old if i < 3 else new, trace_id=f"{i:032x}", session_id="s",
                      input="prompt", output="answer", input_bytes=6, output_bytes=6) for i in range(5)
    ])
    deleted = run_retention(db, RetentionPolicy(requests_days=60, spans_days=30), now=now, batch=2)
    assert deleted == {"requests": 0, "spans": 3}
    rows, _ = SpanQueries(db).spans(SpanFilters(session_id="s"))
    assert sorted(r["request_id"] for r in rows) == [f"req_{i:032x}" for i in (3, 4)]
    log = {r["id"]: r for r in RequestLog(db).query()[0]}
    assert len(log) == 5 and log[f"req_{0:032x}"]["input"] is None and log[f"req_{0:032x}"]["trace_id"] is None
    assert log[f"req_{4:032x}"]["input"] == "prompt"


def test_payload_retention_blanks_gateway_spans_payloads_too(db: Database) -> None:
    from aistrata.security.service import drop_payloads

    SpanSink(db).insert_many([_span(1, 1, input="app prompt"), _span(1, 9, input="new")])  # at T0 + 1 and 9 ms
    RequestLog(db).insert_many([
        RequestRecord(id=f"req_{i:032x}", ts=T0 // 1000 + i * 3, trace_id=f"{i:032x}", input="prompt",
                      output="answer") for i in range(3)
    ])
    assert drop_payloads(db, T0 + 5000, batch=1) == 3  # one app span and two requests
    rows, _ = SpanQueries(db).spans(SpanFilters())
    assert {r["span_id"]: r["input"] for r in rows} == {
        f"{1:016x}": None, f"{9:016x}": "new", f"{0:032x}"[-16:]: None, f"{1:032x}"[-16:]: None,
        f"{2:032x}"[-16:]: "prompt",
    }
