"""The audit log: append-only and hash-chained.

Each row holds who (actor, role, from_ip), what (action, target, details), when (ts) and the
result, plus `prev_hash` and `hash = sha256(prev_hash + canonical row)`. Editing, deleting or
inserting a row breaks the chain at that row, which `verify` reports.

Appends are serialised across replicas: each append runs in one transaction that first takes
a lock (a PostgreSQL advisory lock; SQLite's BEGIN IMMEDIATE is its own write lock), then
reads the chain's head and writes the next row, so two replicas can never both extend the
same head (the chain cannot fork); `seq` as the primary key is the second line of defence.

Retention (`audit: {retention_days}`) never goes below `MIN_RETENTION_DAYS`; after a pruning
the first kept row's `prev_hash` is the anchor `verify` starts from.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import orjson

from ..core import now_ms
from ..store.db import Database

log = logging.getLogger("aistrata.audit")

GENESIS = "0" * 64
PG_AUDIT_LOCK = 0x61756474  # any fixed number, distinct from the migration lock
MIN_RETENTION_DAYS = 365
_COLUMNS = "seq, ts, actor, role, action, target, from_ip, result, details, prev_hash, hash"


@dataclass(slots=True)
class AuditEvent:
    """One thing to record. `result` is "ok", "refused" or "error"."""

    actor: str
    action: str
    result: str = "ok"
    role: str | None = None
    target: str | None = None
    from_ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ts: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditEvent:
        return cls(**data)


def canonical(row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers: every field but the hashes, keys sorted."""
    fields = {k: row[k] for k in ("seq", "ts", "actor", "role", "action", "target", "from_ip", "result", "details")}
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(row)).hexdigest()


@dataclass(slots=True)
class Verification:
    ok: bool
    rows: int
    first_seq: int | None = None
    last_seq: int | None = None
    broken_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- writing -----------------------------------------------------------------------------

    def append(self, event: AuditEvent) -> dict[str, Any]:
        return self.append_many([event])[-1]

    def append_many(self, events: Iterable[AuditEvent]) -> list[dict[str, Any]]:
        """Chain `events` onto the log in one locked transaction; returns the rows written."""
        rows: list[dict[str, Any]] = []
        with self.db.transaction():
            if self.db.engine == "postgres":
                self.db.execute("SELECT pg_advisory_xact_lock(?)", (PG_AUDIT_LOCK,))
            head = self.db.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            seq, prev = (head["seq"], head["hash"]) if head else (0, GENESIS)
            for e in events:
                seq += 1
                row = {"seq": seq, "ts": e.ts, "actor": e.actor, "role": e.role, "action": e.action,
                       "target": e.target, "from_ip": e.from_ip, "result": e.result,
                       "details": orjson.dumps(e.details, option=orjson.OPT_SORT_KEYS, default=str).decode()}
                row["prev_hash"], row["hash"] = prev, row_hash(prev, row)
                prev = row["hash"]
                self.db.execute(f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                tuple(row[c.strip()] for c in _COLUMNS.split(",")))
                rows.append(row)
        return rows

    def insert_many(self, events: list[AuditEvent]) -> None:
        """The sink side of a `Recorder`: policy decisions, batched off the request path."""
        self.append_many(events)

    # ---- reading -----------------------------------------------------------------------------

    def query(self, since: int | None = None, until: int | None = None, action: str | None = None,
              actor: str | None = None, result: str | None = None, limit: int = 100,
              before_seq: int | None = None) -> list[dict[str, Any]]:
        """Newest first; `action` ending in `*` matches a prefix."""
        where, params = [], []
        for test, value in (("ts >= ?", since), ("ts < ?", until), ("actor = ?", actor), ("result = ?", result),
                            ("seq < ?", before_seq)):
            if value is not None:
                where.append(test)
                params.append(value)
        if action:
            where.append("action LIKE ?" if action.endswith("*") else "action = ?")
            params.append(action[:-1] + "%" if action.endswith("*") else action)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.fetchall(f"SELECT {_COLUMNS} FROM audit_log{clause} ORDER BY seq DESC LIMIT ?",
                                (*params, max(1, min(limit, 1000))))
        for row in rows:
            row["details"] = orjson.loads(row["details"])
        return rows

    def counts(self, since: int, until: int | None = None) -> dict[str, int]:
        """Rows per (action, result) in a window, as "action result" -> count."""
        rows = self.db.fetchall(
            "SELECT action, result, COUNT(*) AS n FROM audit_log WHERE ts >= ? AND ts < ? GROUP BY action, result",
            (since, until if until is not None else now_ms() + 1))
        return {f"{r['action']} {r['result']}": int(r["n"]) for r in rows}

    def verify(self, page: int = 1000) -> Verification:
        """Walk the chain from its first kept row; stop at the first row that does not hold."""
        result = Verification(ok=True, rows=0)
        prev_hash: str | None = None
        prev_seq: int | None = None
        for row in self._walk(page):
            seq = row["seq"]
            if prev_seq is None:
                result.first_seq = seq
                if seq == 1 and row["prev_hash"] != GENESIS:
                    return _broken(result, seq, "the first row does not start from the genesis hash")
            elif seq != prev_seq + 1:
                return _broken(result, prev_seq + 1, f"rows {prev_seq + 1}..{seq - 1} are missing")
            elif row["prev_hash"] != prev_hash:
                return _broken(result, seq, f"prev_hash does not match the hash of row {prev_seq}")
            if row_hash(row["prev_hash"], row) != row["hash"]:
                return _broken(result, seq, "the row's content does not match its hash (edited)")
            prev_hash, prev_seq = row["hash"], seq
            result.rows += 1
            result.last_seq = seq
        return result

    def _walk(self, page: int) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            rows = self.db.fetchall(f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after, page))
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1]["seq"]

    def prune(self, days: float, now: int | None = None) -> int:
        """Delete rows older than `days` (never fewer than the minimum); the chain stays
        verifiable from the first row kept."""
        if days < MIN_RETENTION_DAYS:
            log.warning("audit retention of %s days raised to the minimum, %s", days, MIN_RETENTION_DAYS)
            days = MIN_RETENTION_DAYS
        cutoff = (now_ms() if now is None else now) - int(days * 86_400_000)
        # A prefix of the chain, up to the first row young enough to keep: rows queued a
        # little late can carry an older ts than rows before them, and a gap would read as
        # tampering.
        return self.db.execute(
            "DELETE FROM audit_log WHERE seq < (SELECT MIN(seq) FROM audit_log WHERE ts >= ?)", (cutoff,))


def _broken(result: Verification, seq: int, reason: str) -> Verification:
    result.ok, result.broken_seq, result.reason = False, seq, reason
    return result
