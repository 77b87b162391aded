"""The engine layer: the same statements behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from aistrata.store import Database
from aistrata.store.db import to_pyformat


def test_placeholders_are_translated_outside_quotes() -> None:
    assert to_pyformat("SELECT ? WHERE a LIKE 'x?%' AND b = ?") == (
        "SELECT %s WHERE a LIKE 'x?%%' AND b = %s"
    )


def test_rows_are_dicts_and_params_bind(database: Database) -> None:
    database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    database.executemany("INSERT INTO t (id, name) VALUES (?, ?)", [(1, "a%"), (2, "b?")])
    assert database.fetchall("SELECT id, name FROM t WHERE name LIKE '%?' OR name = ? ORDER BY id", ("a%",)) == [
        {"id": 1, "name": "a%"}, {"id": 2, "name": "b?"},
    ]
    assert database.fetchone("SELECT name FROM t WHERE id = ?", (2,)) == {"name": "b?"}
    assert database.fetchone("SELECT name FROM t WHERE id = ?", (3,)) is None
    assert database.execute("UPDATE t SET name = ? WHERE id > ?", ("z", 0)) == 2


def test_transaction_commits_or_rolls_back_as_one(database: Database) -> None:
    database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    with pytest.raises(RuntimeError):
        with database.transaction():
            database.execute("INSERT INTO t (id) VALUES (1)")
            raise RuntimeError("abort")
    with database.transaction():
        database.execute("INSERT INTO t (id) VALUES (2)")
        with pytest.raises(RuntimeError), database.transaction():  # inner block: a savepoint
            database.execute("INSERT INTO t (id) VALUES (3)")
            raise RuntimeError("abort inner")
    assert database.fetchall("SELECT id FROM t") == [{"id": 2}]


def test_row_binds_nulls_and_booleans_as_stored(database: Database) -> None:
    """`row` changes how values are bound (NULL as NaN on SQLite), not what is stored."""
    kind = "BOOLEAN" if database.engine == "postgres" else "INTEGER"
    database.execute(f"CREATE TABLE t (a TEXT, b REAL, c INTEGER, d {kind}, e {kind}, f TEXT NOT NULL)")
    rows = [database.row(r, bools=(3, 4)) for r in [(None, None, None, True, None, "x"), ("y", 1.5, 2, False, True, "z")]]
    database.executemany("INSERT INTO t (a, b, c, d, e, f) VALUES (?, ?, ?, ?, ?, ?)", rows)
    got = database.fetchall("SELECT a, b, c, d, e, f FROM t ORDER BY f")
    assert [(r["a"], r["b"], r["c"], bool(r["d"]), r["e"] if r["e"] is None else bool(r["e"]), r["f"]) for r in got] == [
        (None, None, None, True, None, "x"), ("y", 1.5, 2, False, True, "z"),
    ]
    assert database.fetchone("SELECT COUNT(*) AS n FROM t WHERE a IS NULL AND b IS NULL AND c IS NULL") == {"n": 1}
    with pytest.raises(Exception):  # a NULL is still a NULL to a NOT NULL column
        database.executemany("INSERT INTO t (f) VALUES (?)", [database.row([None])])


def test_failed_executemany_writes_nothing(database: Database) -> None:
    database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    with pytest.raises(Exception):
        database.executemany("INSERT INTO t (id) VALUES (?)", [(1,), (2,), (1,)])
    assert database.fetchall("SELECT id FROM t") == []


def test_threads_share_one_database(database: Database) -> None:
    database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")

    def insert(start: int) -> None:
        for i in range(start, start + 20):
            with database.transaction():
                database.execute("INSERT INTO t (id) VALUES (?)", (i,))

    threads = [threading.Thread(target=insert, args=(n * 100,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert database.fetchone("SELECT COUNT(*) AS n FROM t") == {"n": 80}


def test_from_settings_defaults_to_sqlite_in_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AISTRATA_DATABASE_URL", raising=False)
    db = Database.from_settings(tmp_path / "data")
    try:
        assert db.engine == "sqlite"
        assert Path(db.path) == (tmp_path / "data" / "aistrata.db").resolve()
        assert db.fetchone("PRAGMA journal_mode") == {"journal_mode": "wal"}
    finally:
        db.close()


def test_from_settings_url_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISTRATA_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    db = Database.from_settings(tmp_path / "data")
    assert db.path == str(tmp_path / "env.db")
    db.close()
    db = Database.from_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'arg.db'}")
    assert db.path == str(tmp_path / "arg.db")
    db.close()


def test_unknown_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        Database("mysql://localhost/x")
