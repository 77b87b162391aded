"""Migrations: ordered, recorded, idempotent; automatic only on an empty database."""

from __future__ import annotations

import threading

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


PARTIAL = {"requests": ("key", "user", "team"), "spans": ("session", "user", "key", "team")}


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

    # Each filter's query, as the API builds it, still searches its index.
    queries: list[tuple[str, tuple[object, ...]]] = []
    real_fetchall = database.fetchall
    database.fetchall = lambda sql, params=(): queries.append((sql, tuple(params))) or []  # type: ignore[method-assign]
    try:
        log = RequestLog(database)
        for column in ("key_id", "user_id", "team_id"):
            log.query(RequestFilters(**{column: "x"}))
        spans = SpanQueries(database)
        for column in ("session_id", "user_id", "key_id", "team_id"):
            spans.spans(SpanFilters(**{column: "x"}))
        spans.spans(SpanFilters(), Visibility(team_id="x"))
    finally:
        database.fetchall = real_fetchall  # type: ignore[method-assign]
    expected = [f"requests_{n}_idx" for n in PARTIAL["requests"]] + [f"spans_{n}_idx" for n in PARTIAL["spans"]]
    for (sql, params), index in zip(queries, [*expected, "spans_team_idx"], strict=True):
        plan = _plan(database, sql, params)
        assert index in plan, plan
