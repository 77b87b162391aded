"""One small database class over two engines, chosen by URL.

    sqlite:///relative/path.db   sqlite:////absolute/path.db   (stdlib sqlite3, WAL)
    postgresql://user@host:5432/db                             (psycopg 3 + a connection pool)

The API is synchronous on purpose: both drivers are, and callers on the event loop run it in
a thread (`await asyncio.to_thread(db.fetchall, ...)`). SQL is written once with `?`
placeholders; for psycopg they become `%s` (and a literal `%` becomes `%%`). Rows come back
as plain dicts. JSON columns are TEXT in SQLite and JSONB in PostgreSQL: write them with
`to_json`, read them with `from_json`, which accepts both shapes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import orjson

Engine = Literal["sqlite", "postgres"]
Params = Sequence[Any]

SQLITE_BUSY_TIMEOUT_S = 10.0
# sqlite3 binds int, float and str as they are, but sends None and bool through its adapter
# registry first (about 0.3 µs each): a request-log or span row, with a dozen NULLs, paid more
# for them than for the insert. SQLite stores a NaN as NULL, so hot writers bind NULL as NaN.
SQLITE_NULL = float("nan")


# Most rows' tags and metadata are empty: their text without a call to the encoder.
_EMPTY_JSON = {list: "[]", dict: "{}"}


def to_json(value: Any) -> str:
    if not value:
        empty = _EMPTY_JSON.get(type(value))
        if empty is not None:
            return empty
    return orjson.dumps(value, default=str).decode()


def from_json(value: Any) -> Any:
    """A JSON column's value: SQLite hands back text, psycopg already-decoded JSONB."""
    if isinstance(value, (str, bytes)):
        return orjson.loads(value)
    return value


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """Turn `?` placeholders into psycopg's `%s`, leaving quoted text and identifiers alone."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch a new database to WAL (a persistent setting, so later connections only read it).
    The switch needs the file to itself and SQLite answers `locked` at once, without waiting
    out the busy timeout, when another connection is opening it too; so wait here instead."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Database:
    """A connection source for one database; safe to share between threads."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self._local = threading.local()
        self._lock = threading.Lock()
        if url.startswith("sqlite:///"):
            self.engine: Engine = "sqlite"
            self.path = url.removeprefix("sqlite:///")
            self._sqlite_conns: list[sqlite3.Connection] = []
        elif url.startswith(("postgresql://", "postgres://")):
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool

            self.engine = "postgres"
            # Autocommit outside `transaction()`: one statement, one commit, no idle-in-transaction.
            self._pool = ConnectionPool(
                url, min_size=1, max_size=pool_size, open=True,
                kwargs={"autocommit": True, "row_factory": dict_row},
            )
        else:
            raise ValueError(f"unsupported database URL {url!r}: use sqlite:///... or postgresql://...")

    @classmethod
    def from_settings(cls, data_dir: str | Path, database_url: str | None = None) -> Database:
        """`database_url` (else the `AISTRATA_DATABASE_URL` variable) wins; otherwise the
        default single-machine store, `<data_dir>/aistrata.db`."""
        url = database_url or os.environ.get("AISTRATA_DATABASE_URL")
        if url:
            return cls(url)
        path = Path(data_dir).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path / 'aistrata.db'}")

    # -- statements -------------------------------------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        with self._cursor() as cur:
            cur.execute(self._sql(sql), params)
            return cur.rowcount

    def row(self, values: Iterable[Any], bools: Sequence[int] = ()) -> list[Any]:
        """`values` as the cheapest parameters to bind for this engine: on SQLite, None as NaN
        (stored as NULL) and the booleans at positions `bools` as 1/0 (which SQLite keeps for
        them anyway); on PostgreSQL, unchanged."""
        if self.engine != "sqlite":
            return list(values)
        out = [SQLITE_NULL if v is None else v for v in values]
        for at in bools:
            if out[at] is True or out[at] is False:
                out[at] = int(out[at])
        return out

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        rows = list(rows)
        if not rows:
            return
        # A batch is all-or-nothing: a failed write leaves nothing half-inserted to replay.
        with self.transaction(), self._cursor() as cur:
            cur.executemany(self._sql(sql), rows)

    def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), params)
            rows = cur.fetchall()
        return rows if self.engine == "postgres" else [dict(r) for r in rows]

    def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), params)
            row = cur.fetchone()
        return None if row is None else dict(row)

    def transaction(self) -> AbstractContextManager[None]:
        """Statements inside run on one connection and commit together; nesting is allowed
        (an inner block is a savepoint)."""
        return self._pg_transaction() if self.engine == "postgres" else self._sqlite_transaction()

    @contextmanager
    def _pg_transaction(self) -> Iterator[None]:
        conn = getattr(self._local, "pg", None)
        if conn is not None:
            with conn.transaction():  # psycopg nests as a savepoint
                yield
            return
        with self._pool.connection() as conn, conn.transaction():
            self._local.pg = conn
            try:
                yield
            finally:
                self._local.pg = None

    @contextmanager
    def _sqlite_transaction(self) -> Iterator[None]:
        conn = self._sqlite()
        depth: int = getattr(self._local, "depth", 0)
        # IMMEDIATE takes the write lock up front, so two writers wait (busy timeout) instead
        # of deadlocking on a read-to-write upgrade.
        if depth == 0:
            begin, commit, rollback = "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)
        else:
            sp = f"sp{depth}"
            begin, commit, rollback = f"SAVEPOINT {sp}", f"RELEASE {sp}", (f"ROLLBACK TO {sp}", f"RELEASE {sp}")
        conn.execute(begin)
        self._local.depth = depth + 1
        try:
            yield
        except BaseException:
            for stmt in rollback:
                conn.execute(stmt)
            raise
        else:
            conn.execute(commit)
        finally:
            self._local.depth = depth

    def close(self) -> None:
        if self.engine == "postgres":
            self._pool.close()
            return
        with self._lock:
            for conn in self._sqlite_conns:
                conn.close()
            self._sqlite_conns.clear()
        self._local = threading.local()

    # -- internals --------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return to_pyformat(sql) if self.engine == "postgres" else sql

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.engine == "sqlite":
            cur = self._sqlite().cursor()
            try:
                yield cur
            finally:
                cur.close()
            return
        conn = getattr(self._local, "pg", None)
        if conn is not None:
            with conn.cursor() as cur:
                yield cur
            return
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    def _sqlite(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "sqlite", None)
        if conn is None:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (see `transaction`).
            conn = sqlite3.connect(
                self.path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            with self._lock:
                _enable_wal(conn)
                self._sqlite_conns.append(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.sqlite = conn
        return conn

    def __repr__(self) -> str:
        return f"Database(engine={self.engine!r})"
