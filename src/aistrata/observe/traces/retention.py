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
    """Delete what the policy says is too old; returns rows deleted per data class."""
    now = now_ms() if now is None else now
    deleted: dict[str, int] = {}
    for data_class, days in (("requests", policy.requests_days), ("spans", policy.spans_days)):
        if days is None:
            continue
        table, column, per_ms = TABLES[data_class]
        cutoff = int((now - days * DAY_MS) * per_ms)
        deleted[data_class] = _delete_before(db, table, column, cutoff, batch, pause_s)
    return deleted


def _delete_before(db: Database, table: str, column: str, cutoff: int, batch: int, pause_s: float) -> int:
    if db.engine == "postgres":
        sql = f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {column} < ? LIMIT ?))"
    else:
        sql = f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {column} < ? LIMIT ?)"
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
