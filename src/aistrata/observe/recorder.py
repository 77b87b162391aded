"""The recorder: takes request records off the hot path and writes them in batches, durably.

    record(rec) ─► bounded deque ─► writer thread ─► sink.insert_many(batch)
                                                  └► spool file (JSONL) while the sink fails

`record` is an O(1) append that never blocks; when the queue is full the record is dropped
and counted, because slowing clients down to save a log row is the wrong trade. A batch the
sink refuses is appended to the spool file (kept, not lost) and the writer backs off; while
the spool holds anything, new batches join it, so the sink sees one replay per attempt
instead of a retry storm. A successful replay empties the spool. A spool left by a crash is
replayed on the next start. Replays can repeat a batch whose write succeeded but whose
acknowledgement was lost; the request log ignores ids it already has.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Protocol

import orjson

from .records import RequestRecord

log = logging.getLogger(__name__)


class Sink(Protocol):
    def insert_many(self, records: list[Any]) -> None: ...


class _Spool:
    """Records waiting for the sink, oldest first, in segments: JSONL files under `spool_dir`
    (so a long outage neither fills memory nor needs one huge file rewritten), or batches
    in memory when there is no spool directory. Only the writer thread touches it."""

    SEGMENT_RECORDS = 10_000

    def __init__(self, spool_dir: str | Path | None, decode: Callable[[dict[str, Any]], Any]) -> None:
        self.dir = Path(spool_dir) if spool_dir is not None else None
        self.decode = decode
        self._memory: deque[list[RequestRecord]] = deque()
        self._segments: list[Path] = []
        self._current_count = 0
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._segments = sorted(self.dir.glob("requests-*.jsonl"))
            # Never append to a segment left by an earlier process: its count is unknown.
            self._current_count = self.SEGMENT_RECORDS

    def __bool__(self) -> bool:
        return bool(self._segments or self._memory)

    def append(self, records: list[RequestRecord]) -> None:
        if self.dir is None:
            self._memory.append(records)
            return
        if self._current_count >= self.SEGMENT_RECORDS or not self._segments:
            seq = int(self._segments[-1].stem.split("-")[1]) + 1 if self._segments else 0
            self._segments.append(self.dir / f"requests-{seq:012d}.jsonl")
            self._current_count = 0
        with self._segments[-1].open("ab") as f:
            f.write(_encode(records))
            f.flush()
            os.fsync(f.fileno())
        self._current_count += len(records)

    def oldest(self) -> list[RequestRecord]:
        if self.dir is None:
            return self._memory[0]
        records = []
        for line in self._segments[0].read_bytes().splitlines():
            try:
                records.append(self.decode(orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError):
                log.warning("skipping a damaged line in %s", self._segments[0])  # torn by a crash
        return records

    def drop_oldest(self) -> None:
        if self.dir is None:
            self._memory.popleft()
            return
        self._segments.pop(0).unlink(missing_ok=True)

    def keep_oldest(self, records: list[RequestRecord]) -> None:
        """Shrink the oldest segment to `records`: what a partial replay did not write."""
        if self.dir is None:
            self._memory[0] = records
            return
        path = self._segments[0]
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(_encode(records))
        os.replace(tmp, path)
        if len(self._segments) == 1:
            self._current_count = len(records)


def _encode(records: list[RequestRecord]) -> bytes:
    return b"".join(orjson.dumps(r.to_dict(), default=str) + b"\n" for r in records)


class Recorder:
    """Production passes `spool_dir` (under the data directory): without one, records the
    sink refuses wait in memory and are lost if the process exits before it recovers."""

    def __init__(
        self,
        sink: Sink,
        max_queue: int = 50_000,
        batch_size: int = 500,
        flush_interval: float = 0.25,
        *,
        spool_dir: str | Path | None = None,
        backoff: tuple[float, float] = (0.1, 10.0),
        decode: Callable[[dict[str, Any]], Any] = RequestRecord.from_dict,
        name: str = "request log",
    ) -> None:
        self.sink = sink
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.written = 0
        self.dropped = 0
        self.spooled = 0
        self.failures = 0
        self._queue: deque[RequestRecord] = deque()
        self._spool = _Spool(spool_dir, decode)  # `decode` reads back a spooled record's `to_dict()`
        self.name = name
        self._backoff_min, self._backoff_max = backoff
        self._backoff = 0.0
        self._retry_at = 0.0
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def queued(self) -> int:
        """Records waiting for the writer thread (a back-pressure gauge)."""
        return len(self._queue)

    def record(self, rec: RequestRecord) -> None:
        """Queue a record; O(1), never blocks. Dropped (and counted) when the queue is full."""
        n = len(self._queue)
        if n >= self.max_queue:
            self.dropped += 1
            return
        self._queue.append(rec)
        if n + 1 == self.batch_size:
            self._wake.set()  # a full batch is waiting: don't sit out the flush interval

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="aistrata-recorder", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued or spooled so far is in the sink; False on timeout."""
        deadline = time.monotonic() + timeout
        self._retry_at = 0.0  # a caller waiting is a good moment to retry a failing sink
        self._wake.set()
        with self._idle:
            while self._queue or self._busy or self._spool:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
                self._wake.set()
        return True

    def stop(self, timeout: float | None = 10.0) -> None:
        """Drain the queue into the sink (or the spool, if the sink still fails) and stop."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        elif self._queue or self._spool:
            self._drain(final=True)  # never started: drain in the caller's thread

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stopping = self._stopping
            self._busy = True
            try:
                self._drain(final=stopping)
            except Exception:  # a bug here must not kill the writer and silently stop logging
                log.exception("recorder cycle failed")
            finally:
                self._busy = False
                with self._idle:
                    self._idle.notify_all()
            if stopping:
                return

    def _drain(self, final: bool) -> None:
        if self._spool and (final or time.monotonic() >= self._retry_at):
            self._replay()
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
            if self._spool or not self._write(batch):
                self._to_spool(batch)

    def _replay(self) -> None:
        while self._spool:
            records = self._spool.oldest()
            for start in range(0, len(records), self.batch_size):
                if not self._write(records[start:start + self.batch_size]):
                    self._spool.keep_oldest(records[start:])
                    return
            self._spool.drop_oldest()

    def _write(self, batch: list[RequestRecord]) -> bool:
        try:
            self.sink.insert_many(batch)
        except Exception as exc:
            self.failures += 1
            self._backoff = min(max(self._backoff * 2, self._backoff_min), self._backoff_max)
            self._retry_at = time.monotonic() + self._backoff
            log.warning("%s write failed (%s); retrying in %.1fs", self.name, exc, self._backoff)
            return False
        self.written += len(batch)
        self._backoff = 0.0
        return True

    def _to_spool(self, batch: list[RequestRecord]) -> None:
        self._spool.append(batch)
        self.spooled += len(batch)
