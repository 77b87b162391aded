"""The request log: one row per client request, written in batches, read newest first.

The store sits below `observe`, so it does not import `RequestRecord`: `insert_many` reads
the columns as attributes of whatever it is given (a `RequestRecord` has them all), and
reads return plain dicts (`RequestRecord.from_dict` turns one back). Reads page by keyset on
(ts, id) with an opaque cursor, so a page costs the same however deep it is.

A row is also its request's gateway span (`trace_id` onwards; the span queries read it as
one). A `PayloadCodec` (see `aistrata.security.crypto`) encrypts the payload columns on the
way in and decrypts them on the way out; masking happens before, in the recorder's sink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .db import SQLITE_NULL, Database, from_json, to_json
from .paging import decode_cursor, encode_cursor, tag_clause

COLUMNS: tuple[str, ...] = (
    "id", "ts", "endpoint", "ingress", "key_id", "key_alias", "user_id", "team_id",
    "requested_model", "deployment_id", "provider", "upstream_model", "stream", "status",
    "error_kind", "error_message", "latency_ms", "ttft_ms", "overhead_ms", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd",
    "price_version", "tags", "metadata", "cache_hit", "saved_usd", "attempts", "route",
    "trace_id", "span_id", "parent_span_id", "session_id", "end_user_id", "response_model", "input", "output",
    "input_bytes", "output_bytes",
)
_JSON = frozenset({"tags", "metadata", "route"})
_BOOL = frozenset({"stream", "cache_hit"})
_PAYLOAD_AT = (COLUMNS.index("input"), COLUMNS.index("output"))
SELECT = f"SELECT {', '.join(COLUMNS)} FROM requests"
# ON CONFLICT: a batch replayed after an unclear failure (written, but the ack was lost)
# must not become two rows.
_INSERT = (
    f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (id) DO NOTHING"
)
MAX_LIMIT = 1000


@dataclass(slots=True)
class RequestFilters:
    """Every field is optional; set ones are ANDed. `since` is inclusive, `until` exclusive."""

    since: int | None = None
    until: int | None = None
    key_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    requested_model: str | None = None
    provider: str | None = None
    deployment_id: str | None = None
    status: int | None = None
    error_kind: str | None = None
    tag: str | None = None
    stream: bool | None = None


_EQUALITY = (
    "key_id", "user_id", "team_id", "requested_model", "provider", "deployment_id", "status",
    "error_kind", "stream",
)


def _compile_params(engine: str) -> Callable[[Any], list[Any]]:
    """The writer's row builder for `engine`, compiled once from `COLUMNS` (as `dataclasses`
    compiles `__init__`): a record's parameters in one list display, where reading them with a
    getter, then a pass to replace NULLs and fix-ups cost twice as much on the writer's hot
    loop. SQLite gets NULL as NaN and booleans as 1/0 (see `Database.row`); PostgreSQL gets the
    values as they are. JSON columns are encoded (a None route as null)."""
    sqlite = engine == "sqlite"
    items = []
    for column in COLUMNS:
        if column in _JSON:
            items.append(f"to_json(rec.{column})")
        elif column in _BOOL and sqlite:
            items.append(f"int(rec.{column})")
        elif sqlite:
            items.append(f"NULL if (v := rec.{column}) is None else v")
        else:
            items.append(f"rec.{column}")
    namespace: dict[str, Any] = {"to_json": to_json, "NULL": SQLITE_NULL}
    exec(f"def params(rec):\n    return [{', '.join(items)}]\n", namespace)  # noqa: S102 - our own column names
    return namespace["params"]  # type: ignore[no-any-return]


_PARAMS = {engine: _compile_params(engine) for engine in ("sqlite", "postgres")}


class PayloadCodec(Protocol):
    def seal(self, text: str) -> str: ...

    def open(self, text: str) -> str: ...


class RequestLog:
    def __init__(self, db: Database, codec: PayloadCodec | None = None) -> None:
        self.db = db
        self.codec = codec
        self._row = _PARAMS[db.engine]

    def insert_many(self, records: Iterable[Any]) -> None:
        """Write a batch in one statement; a record whose id is already stored is skipped."""
        self.db.executemany(_INSERT, map(self._row if self.codec is None else self._params, records))

    def get(self, id: str) -> dict[str, Any] | None:
        row = self.db.fetchone(f"{SELECT} WHERE id = ?", (id,))
        return None if row is None else self.decode(row)

    def query(
        self, filters: RequestFilters | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Rows matching `filters`, newest first, and the cursor of the next page (or None)."""
        where, params = self.conditions(filters or RequestFilters())
        if cursor is not None:
            # Row-value comparison: both engines use the (ts, id) index for it.
            where.append("(ts, id) < (?, ?)")
            params.extend(decode_cursor(cursor))
        limit = max(1, min(limit, MAX_LIMIT))
        sql = SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        rows = self.db.fetchall(sql, (*params, limit + 1))
        more = len(rows) > limit
        rows = [self.decode(r) for r in rows[:limit]]
        next_cursor = encode_cursor(rows[-1]["ts"], rows[-1]["id"]) if more else None
        return rows, next_cursor

    def conditions(self, f: RequestFilters) -> tuple[list[str], list[Any]]:
        """The WHERE conditions (to be ANDed) and parameters for `f`; shared with the stats queries."""
        where: list[str] = []
        params: list[Any] = []
        if f.since is not None:
            where.append("requests.ts >= ?")
            params.append(f.since)
        if f.until is not None:
            where.append("requests.ts < ?")
            params.append(f.until)
        for name in _EQUALITY:
            value = getattr(f, name)
            if value is not None:
                where.append(f"requests.{name} = ?")
                params.append(value)
        if f.status is not None and f.status >= 400:
            where.append("requests.status >= 400")  # the term that lets both engines use the errors' index
        if f.tag is not None:
            where.append(tag_clause(self.db, "requests.tags"))
            params.append(f.tag)
        return where, params

    def _params(self, rec: Any) -> list[Any]:
        values = self._row(rec)
        if self.codec is not None:
            for at in _PAYLOAD_AT:
                if isinstance(values[at], str):  # not NULL (None, or NaN on SQLite)
                    values[at] = self.codec.seal(values[at])
        return values

    def decode(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row as read (JSON parsed, booleans as booleans, payloads decrypted), in place."""
        for name in _JSON:
            row[name] = from_json(row[name])
        row["stream"] = bool(row["stream"])  # SQLite stores 0/1
        row["cache_hit"] = bool(row["cache_hit"])
        if self.codec is not None:
            for name in ("input", "output"):
                if row.get(name) is not None:
                    row[name] = self.codec.open(row[name])
        return row
