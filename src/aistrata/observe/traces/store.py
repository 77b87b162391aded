"""The `spans` table: batched writes (the span recorder's sink) and the shared read helpers.

Rows are immutable; a batch replayed from the spool after an unclear failure is absorbed by
the primary key (trace_id, span_id). Reads page by keyset on (start_us, span_id), newest first,
with an opaque cursor. A virtual key's reads are narrowed by `Visibility`. A `PayloadCodec`
(see `aistrata.security.crypto`) masks and encrypts the payload columns on the way in and
decrypts them on the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ...store.db import Database, from_json, to_json
from ..recorder import Recorder
from .model import FIELDS, Span, duration_ms

COLUMNS: tuple[str, ...] = (*FIELDS, "is_root", "duration_ms")
_JSON = frozenset({"tags", "metadata"})
_BOOL = frozenset({"is_root", "cache_hit"})
SELECT = f"SELECT {', '.join(COLUMNS)} FROM spans"
_INSERT = (
    f"INSERT INTO spans ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (trace_id, span_id) DO NOTHING"
)
MAX_LIMIT = 1000
_TAGS_AT, _METADATA_AT = FIELDS.index("tags"), FIELDS.index("metadata")
_INPUT_AT, _OUTPUT_AT = FIELDS.index("input"), FIELDS.index("output")
_PARENT_AT, _START_AT, _END_AT = FIELDS.index("parent_span_id"), FIELDS.index("start_us"), FIELDS.index("end_us")
_BOOL_AT = (COLUMNS.index("cache_hit"), COLUMNS.index("is_root"))


class PayloadCodec(Protocol):
    def mask(self, text: str) -> str: ...

    def seal(self, text: str) -> str: ...

    def open(self, text: str) -> str: ...


@dataclass(slots=True, frozen=True)
class Visibility:
    """What a caller may read: everything (admin), or one team's, one key's or one user's spans."""

    key_id: str | None = None
    team_id: str | None = None
    user_id: str | None = None

    def clause(self, alias: str = "") -> tuple[str | None, list[Any]]:
        if self.team_id is not None:
            return f"{alias}team_id = ?", [self.team_id]
        if self.key_id is not None:
            return f"{alias}key_id = ?", [self.key_id]
        if self.user_id is not None:
            return f"{alias}user_id = ?", [self.user_id]
        return None, []


ALL = Visibility()


class SpanSink:
    """Writes span batches; after a batch is stored, hands it to the exporter (if any)."""

    def __init__(self, db: Database, exporter: Recorder | None = None, codec: PayloadCodec | None = None) -> None:
        self.db = db
        self.exporter = exporter
        self.codec = codec

    def insert_many(self, spans: Iterable[Span]) -> None:
        codec, exporter = self.codec, self.exporter
        rows: list[list[Any]] = []
        exported: list[Span] = []
        for span in spans:
            values = list(span.values())
            if codec is not None:  # masked for the exporter too; encrypted for the table only
                values[_INPUT_AT] = _apply(codec.mask, values[_INPUT_AT])
                values[_OUTPUT_AT] = _apply(codec.mask, values[_OUTPUT_AT])
            if exporter is not None:
                exported.append(Span(*values))  # the masked copy (the ingested span is not changed)
            rows.append(self.db.row(_row(values, codec), _BOOL_AT))
        self.db.executemany(_INSERT, rows)
        if exporter is not None:
            for masked in exported:
                exporter.record(masked)


def _row(values: list[Any], codec: PayloadCodec | None) -> tuple[Any, ...]:
    """`values` (a span's fields, in `FIELDS` order) as the row `_INSERT` takes."""
    values[_TAGS_AT], values[_METADATA_AT] = to_json(values[_TAGS_AT]), to_json(values[_METADATA_AT])
    if codec is not None:
        values[_INPUT_AT] = _apply(codec.seal, values[_INPUT_AT])
        values[_OUTPUT_AT] = _apply(codec.seal, values[_OUTPUT_AT])
    is_root = values[_PARENT_AT] is None
    return (*values, is_root, duration_ms(values[_START_AT], values[_END_AT]))


def _apply(fn: Callable[[str], str], value: str | None) -> str | None:
    return None if value is None else fn(value)


def decode_row(row: dict[str, Any], codec: PayloadCodec | None = None) -> dict[str, Any]:
    if codec is not None:
        row["input"], row["output"] = _apply(codec.open, row.get("input")), _apply(codec.open, row.get("output"))
    for name in _JSON:
        row[name] = from_json(row[name])
    for name in _BOOL:
        if row.get(name) is not None:
            row[name] = bool(row[name])  # SQLite stores 0/1
    return row


