"""Migrations: ordered, recorded, idempotent; automatic only on an empty database."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from aistrata.store import MIGRATIONS, Database, Migration, SchemaOutOfDate, ensure_schema, migrate, pending

NAMES = [m.name for m in MIGRATIONS]
EXTRA = Migration("9999_extra", ("CREATE TABLE extra (id TEXT PRIMARY KEY, doc {json} NOT NULL)",))


def tables(db: Database) -> set[str]:
    if db.engine == "sqlite":
        rows = db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = db.fetchall(
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    return {r["name"] for r in rows}


def test_migrate_applies_in_order_once(database: Database) -> None:
    assert pending(database) == NAMES
    assert migrate(database) == NAMES
    assert {"requests", "api_keys", "schema_migrations"} <= tables(database)
    assert pending(database) == []
    assert migrate(database) == []
    rows = database.fetchall("SELECT name FROM schema_migrations ORDER BY name")
    assert [r["name"] for r in rows] == NAMES


def test_request_indexes_exist(database: Database) -> None:
    migrate(database)
    if database.engine == "sqlite":
        rows = database.fetchall("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests'")
    else:
        rows = database.fetchall(
            "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'requests' AND schemaname = current_schema()"
        )
    names = {r["name"] for r in rows}
    for idx in ("ts", "key", "user", "team", "model", "status"):
        assert f"requests_{idx}_idx" in names


def test_ensure_schema_migrates_an_empty_database(database: Database) -> None:
    assert ensure_schema(database) == NAMES
    assert ensure_schema(database) == []


def test_ensure_schema_refuses_pending_migrations(database: Database) -> None:
    migrate(database)
    with pytest.raises(SchemaOutOfDate, match="aistrata migrate") as err:
        ensure_schema(database, [*MIGRATIONS, EXTRA])
    assert "9999_extra" in str(err.value)
    assert "extra" not in tables(database)
    assert migrate(database, [*MIGRATIONS, EXTRA]) == ["9999_extra"]
    assert ensure_schema(database, [*MIGRATIONS, EXTRA]) == []


def test_a_failing_migration_leaves_no_trace(database: Database) -> None:
    migrate(database)
    broken = Migration("9998_broken", ("CREATE TABLE half (id TEXT)", "CREATE TABLE nonsense ("))
    with pytest.raises(Exception):
        migrate(database, [*MIGRATIONS, broken])
    assert "half" not in tables(database)
    assert pending(database, [*MIGRATIONS, broken]) == ["9998_broken"]


def test_concurrent_migrate_applies_each_once(database: Database) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(database))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(name for r in results for name in r) == NAMES


PARTIAL = {"requests": ("key", "user", "team", "session", "end_user"), "spans": ("session", "user", "key", "team")}


def _plan(db: Database, sql: str, params: tuple[object, ...]) -> str:
    """The query plan as text; PostgreSQL is told to avoid sequential scans, which it would
    rightly prefer on tables this small."""
    if db.engine == "sqlite":
        return " ".join(r["detail"] for r in db.fetchall(f"EXPLAIN QUERY PLAN {sql}", params))
    with db.transaction():
        db.execute("SET LOCAL enable_seqscan = off")
        return " ".join(str(next(iter(r.values()))) for r in db.fetchall(f"EXPLAIN {sql}", params))


def test_often_null_columns_have_partial_indexes_the_filters_use(database: Database) -> None:
    from aistrata.observe.traces import SpanFilters, SpanQueries, Visibility
    from aistrata.store.request_log import RequestFilters, RequestLog

    migrate(database)
    for table, names in PARTIAL.items():
        for name in names:
            if database.engine == "sqlite":
                row = database.fetchone("SELECT sql FROM sqlite_master WHERE name = ?", (f"{table}_{name}_idx",))
            else:
                row = database.fetchone("SELECT indexdef AS sql FROM pg_indexes WHERE indexname = ? "
                                        "AND schemaname = current_schema()", (f"{table}_{name}_idx",))
            assert row is not None and "IS NOT NULL" in row["sql"], (table, name)

    # Each filter's query, as the API builds it, still searches its index. A span read asks
    # both tables (applications' spans, the request log's gateway spans), over widening windows.
    real_fetchall = database.fetchall
    in_requests = {"session_id": "session", "user_id": "end_user", "key_id": "key", "team_id": "team"}
    calls: list[tuple[Callable[[], object], dict[str, str]]] = [
        (lambda c=column: RequestLog(database).query(RequestFilters(**{c: "x"})),  # type: ignore[misc]
         {"requests": f"requests_{column.removesuffix('_id')}_idx"}) for column in ("key_id", "user_id", "team_id")
    ] + [(lambda: RequestLog(database).query(RequestFilters(status=429)), {"requests": "requests_status_idx"})] + [
        (lambda c=column: SpanQueries(database).spans(SpanFilters(**{c: "x"})),  # type: ignore[misc]
         {"spans": f"spans_{column.removesuffix('_id')}_idx", "requests": f"requests_{in_requests[column]}_idx"})
        for column in ("session_id", "user_id", "key_id", "team_id")
    ] + [(lambda: SpanQueries(database).spans(SpanFilters(), Visibility(team_id="x")),
          {"spans": "spans_team_idx", "requests": "requests_team_idx"})]
    for call, index_of in calls:
        queries: list[tuple[str, tuple[object, ...]]] = []
        database.fetchall = lambda sql, params=(): queries.append((sql, tuple(params))) or []  # type: ignore[method-assign]
        try:
            call()
        finally:
            database.fetchall = real_fetchall  # type: ignore[method-assign]
        assert {table for table in index_of for sql, _ in queries if f"FROM {table} " in sql} == set(index_of)
        for sql, params in queries:
            table = "spans" if "FROM spans " in sql else "requests"
            plan = _plan(database, sql, params)
            assert index_of[table] in plan, plan


def test_gateway_spans_move_onto_their_request_rows(database: Database) -> None:
    from aistrata.observe.records import RequestRecord
    from aistrata.observe.traces import Span, SpanFilters, SpanQueries, SpanSink, span_of

    migrate(database, [m for m in MIGRATIONS if m.name != "0011_gateway_spans_in_requests"])
    # As the gateway wrote two requests before 0011: a row each, and a span each in `spans`;
    # an application span; and a gateway span whose request row retention already deleted.
    recs = [RequestRecord(id=f"req_0194a3b2c1d0aabbccddeeff0011223{i}", ts=1_700_000_000_000 + i,
                          requested_model="gpt", latency_ms=12.5, trace_id="ab" * 16, parent_span_id="cd" * 8,
                          session_id="s1", end_user_id=f"end-{i}", response_model="gpt-2025", input="hi",
                          output="hello", input_bytes=2, output_bytes=5, tags=["t"], metadata={"m": i})
            for i in range(3)]
    for rec in recs[:2]:
        database.execute(
            "INSERT INTO requests (id, ts, endpoint, ingress, stream, status, input_tokens, output_tokens, "
            "cache_read_tokens, cache_write_tokens, reasoning_tokens, tags, metadata, requested_model, latency_ms) "
            "VALUES (?, ?, 'chat', 'openai', ?, 200, 0, 0, 0, 0, 0, ?, ?, ?, ?)",
            database.row([rec.id, rec.ts, False, '["t"]', f'{{"m": {rec.metadata["m"]}}}', "gpt", 12.5], (2,)))
    app = Span(trace_id="ab" * 16, span_id="cd" * 8, name="agent", start_us=1_699_999_999_999_000,
               end_us=1_700_000_000_100_000)
    SpanSink(database).insert_many([app, *(span_of(r) for r in recs)])

    assert migrate(database) == ["0011_gateway_spans_in_requests"]
    left = database.fetchall("SELECT span_id, source FROM spans ORDER BY span_id")
    assert left == [{"span_id": recs[2].span_id, "source": "gateway"}, {"span_id": "cd" * 8, "source": "api"}]
    moved = database.fetchone("SELECT trace_id, span_id, parent_span_id, session_id, end_user_id, response_model, "
                              "input, output, input_bytes, output_bytes FROM requests WHERE id = ?", (recs[1].id,))
    assert moved == {"trace_id": "ab" * 16, "span_id": recs[1].span_id, "parent_span_id": "cd" * 8,
                     "session_id": "s1", "end_user_id": "end-1", "response_model": "gpt-2025", "input": "hi",
                     "output": "hello", "input_bytes": 2, "output_bytes": 5}
    [root] = SpanQueries(database).trace("ab" * 16)  # read as before, from both tables
    assert [{k: v for k, v in c.items() if k not in ("is_root", "duration_ms", "children")}
            for c in root["children"]] == [span_of(r).to_dict() for r in recs]
    assert len(SpanQueries(database).spans(SpanFilters(session_id="s1"))[0]) == 3
