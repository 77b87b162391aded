"""The recorder: never blocks the caller, batches, and loses nothing while the sink fails."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson

from aistrata.observe import Recorder, RequestRecord
from aistrata.store import Database, RequestLog, migrate


def recs(n: int, start: int = 0) -> list[RequestRecord]:
    return [RequestRecord(id=f"req_{i:06d}", ts=1000 + i, tags=["t"], metadata={"i": i}) for i in range(start, start + n)]


class ListSink:
    """Stores batches; fails while `failing` is set; can be made to block."""

    def __init__(self) -> None:
        self.rows: list[RequestRecord] = []
        self.batches: list[int] = []
        self.failing = False
        self.gate = threading.Event()
        self.gate.set()

    def insert_many(self, records: list[RequestRecord]) -> None:
        self.gate.wait()
        if self.failing:
            raise ConnectionError("database is down")
        self.rows.extend(records)
        self.batches.append(len(records))


def test_writes_in_batches() -> None:
    sink = ListSink()
    rec = Recorder(sink, batch_size=100, flush_interval=0.01)
    rec.start()
    for r in recs(450):
        rec.record(r)
    assert rec.flush(5)
    rec.stop()
    assert [r.id for r in sink.rows] == [r.id for r in recs(450)]
    assert max(sink.batches) <= 100 and rec.written == 450


def test_record_never_blocks_and_counts_drops() -> None:
    sink = ListSink()
    sink.gate.clear()  # the sink hangs: the writer is stuck inside insert_many
    rec = Recorder(sink, max_queue=1000, batch_size=10, flush_interval=0.01)
    rec.start()
    started = time.perf_counter()
    for r in recs(5000):
        rec.record(r)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0  # generous: the point is that it returns while the sink hangs
    assert rec.dropped >= 5000 - 1000 - 10
    sink.gate.set()
    assert rec.flush(5)
    rec.stop()
    assert rec.written + rec.dropped == 5000


def test_failing_sink_spools_then_replays_everything(tmp_path: Path) -> None:
    sink = ListSink()
    sink.failing = True
    rec = Recorder(sink, batch_size=50, flush_interval=0.01, spool_dir=tmp_path, backoff=(0.01, 0.05))
    rec.start()
    for r in recs(300):
        rec.record(r)
    assert not rec.flush(0.3)
    assert rec.failures >= 1 and rec.spooled == 300
    assert list(tmp_path.glob("requests-*.jsonl"))
    sink.failing = False
    assert rec.flush(5)
    rec.stop()
    assert [r.id for r in sink.rows] == [r.id for r in recs(300)]  # all, in order, once
    assert sink.rows[7] == recs(300)[7]  # tags and metadata survive the spool
    assert not list(tmp_path.glob("requests-*.jsonl"))


def test_in_memory_spool_without_a_directory() -> None:
    sink = ListSink()
    sink.failing = True
    rec = Recorder(sink, batch_size=20, flush_interval=0.01, backoff=(0.01, 0.05))
    rec.start()
    for r in recs(100):
        rec.record(r)
    assert not rec.flush(0.2)
    sink.failing = False
    assert rec.flush(5)
    rec.stop()
    assert sorted(r.id for r in sink.rows) == [r.id for r in recs(100)]


def test_stop_drains_the_queue() -> None:
    sink = ListSink()
    rec = Recorder(sink, batch_size=1000, flush_interval=60)  # would otherwise wait a minute
    rec.start()
    for r in recs(123):
        rec.record(r)
    rec.stop()
    assert len(sink.rows) == 123


def test_stop_with_a_dead_sink_keeps_records_for_the_next_start(tmp_path: Path) -> None:
    sink = ListSink()
    sink.failing = True
    first = Recorder(sink, spool_dir=tmp_path, flush_interval=60)
    first.start()
    for r in recs(40):
        first.record(r)
    first.stop()
    assert sink.rows == [] and first.spooled == 40
    sink.failing = False
    second = Recorder(sink, spool_dir=tmp_path, flush_interval=0.01)
    second.start()
    assert second.flush(5)
    second.stop()
    assert [r.id for r in sink.rows] == [r.id for r in recs(40)]


def test_a_torn_spool_line_is_skipped(tmp_path: Path) -> None:
    sink = ListSink()
    good = recs(2)
    (tmp_path / "requests-000000000000.jsonl").write_bytes(
        b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in good) + b'{"id": "req_tor'
    )
    rec = Recorder(sink, spool_dir=tmp_path, flush_interval=0.01)
    rec.start()
    assert rec.flush(5)
    rec.stop()
    assert [r.id for r in sink.rows] == [r.id for r in good]


def test_into_the_request_log(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    migrate(db)
    log = RequestLog(db)
    rec = Recorder(log, batch_size=64, flush_interval=0.01)
    rec.start()
    for r in recs(200):
        rec.record(r)
    assert rec.flush(5)
    rec.stop()
    rows, _ = log.query(limit=1000)
    assert len(rows) == 200 and rows[0]["metadata"] == {"i": 199}
    db.close()
