"""What every keyset-paginated, tag-filtered table shares: opaque cursors over (time, id) and
the JSON-array membership test for tags in each engine."""

from __future__ import annotations

import base64

from .db import Database


def encode_cursor(ts: int, id: str) -> str:
    return base64.urlsafe_b64encode(f"{ts}:{id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, _, id = raw.partition(":")
        return int(ts), id
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise ValueError(f"invalid cursor {cursor!r}") from exc


def tag_clause(db: Database, column: str) -> str:
    """`column` (a JSON array of strings) contains the bound parameter: GIN-indexable
    containment in PostgreSQL, `json_each` in SQLite."""
    if db.engine == "postgres":
        return f"{column} @> jsonb_build_array(?::text)"
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ?)"
