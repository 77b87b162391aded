"""Retention: rows older than the configured age are deleted, in small batches.

Each batch is one short statement over the time index (rows picked by physical id, `rowid`
in SQLite and `ctid` in PostgreSQL), with a pause between batches, so the recorder's writes
interleave instead of waiting behind one long delete.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from ...core import now_ms
from ...store.db import Database

log = logging.getLogger(__name__)
DAY_MS = 86_400_000

# data class -> (table, time column, time units per millisecond)
TABLES = {"requests": ("requests", "ts", 1), "spans": ("spans", "start_us", 1000)}


@dataclass(slots=True, frozen=True)
class RetentionPolicy:
    """Days to keep each data class; None keeps it forever."""

    requests_days: float | None = None
    spans_days: float | None = None
    interval_s: float = 3600.0

    @property
    def active(self) -> bool:
        return self.requests_days is not None or self.spans_days is not None


def run_retention(
    db: Database, policy: RetentionPolicy, now: int | None = None, batch: int = 5000, pause_s: float = 0.01,
) -> dict[str, int]:
    """Delete what the policy says is too old; returns rows deleted per data class. A gateway
    span lives on its request's row (see `gateway_span`): past the spans' age, that row loses
    its span fields (trace ids, payloads) and stays for the requests' own retention."""
    now = now_ms() if now is None else now
    deleted: dict[str, int] = {}
    for data_class, days in (("requests", policy.requests_days), ("spans", policy.spans_days)):
        if days is None:
            continue
        table, column, per_ms = TABLES[data_class]
        cutoff = int((now - days * DAY_MS) * per_ms)
        deleted[data_class] = _in_batches(db, f"DELETE FROM {table} WHERE {rows_before(db, table, column)}", cutoff,
                                          batch, pause_s)
        if data_class == "spans":
            deleted["spans"] += _in_batches(
                db, f"UPDATE requests SET {_UNTRACED} WHERE {rows_before(db, 'requests', 'ts', 'trace_id IS NOT NULL')}",
                int(now - days * DAY_MS), batch, pause_s)
    return deleted


_UNTRACED = ", ".join(f"{column} = NULL" for column in (
    "trace_id", "span_id", "parent_span_id", "session_id", "end_user_id", "response_model", "input", "output"))


def rows_before(db: Database, table: str, column: str, extra: str | None = None) -> str:
    """A condition picking up to a batch (the second parameter) of `table`'s rows with `column`
    before the cutoff (the first), by physical id, for a DELETE or an UPDATE."""
    physical = "ctid" if db.engine == "postgres" else "rowid"
    pick = f"SELECT {physical} FROM {table} WHERE {column} < ?" + (f" AND {extra}" if extra else "") + " LIMIT ?"
    return f"{physical} = ANY(ARRAY({pick}))" if db.engine == "postgres" else f"{physical} IN ({pick})"


def _in_batches(db: Database, sql: str, cutoff: int, batch: int, pause_s: float) -> int:
    total = 0
    while True:
        n = db.execute(sql, (cutoff, batch))
        total += n
        if n < batch:
            return total
        time.sleep(pause_s)  # let the writers in between batches


class RetentionTask:
    """Runs `run_retention` every `policy.interval_s` on the event loop (the work in a thread)."""

    def __init__(self, db: Database, policy: RetentionPolicy) -> None:
        self.db = db
        self.policy = policy
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.policy.active and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="aistrata-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                deleted = await asyncio.to_thread(run_retention, self.db, self.policy)
                if any(deleted.values()):
                    log.info("retention deleted %s", deleted)
            except Exception:  # a failed round is retried next time; the loop must survive it
                log.exception("retention round failed")
            await asyncio.sleep(self.policy.interval_s)
