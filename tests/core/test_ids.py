"""Ids sort by creation time (B-tree appends), and their random parts stay unique."""

from __future__ import annotations

import re
import time

from aistrata.core import new_id
from aistrata.observe.traces.model import new_span_id, new_trace_id


def test_new_id_is_time_then_random() -> None:
    before = time.time_ns() // 1_000_000
    rid = new_id("req_")
    after = time.time_ns() // 1_000_000
    assert re.fullmatch(r"req_[0-9a-f]{28}", rid)
    assert before <= int(rid[4:16], 16) <= after


def test_new_ids_sort_by_creation_and_their_span_id_tails_are_unique() -> None:
    first = new_id("req_")
    time.sleep(0.002)
    ids = [new_id("req_") for _ in range(10_000)]
    assert all(first < i for i in ids)
    assert len({i[-16:] for i in ids}) == len(ids)  # a request id's tail is its gateway span's id


def test_new_trace_id_is_w3c_valid_and_starts_with_epoch_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    first = new_trace_id()
    time.sleep(0.002)
    ids = [new_trace_id() for _ in range(10_000)]
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) and t != "0" * 32 for t in ids)
    assert all(before <= int(t[:12], 16) <= after for t in ids)
    assert all(first < t for t in ids)  # later traces sort after earlier ones
    assert len({t[12:] for t in ids}) == len(ids)  # the random part alone is unique
    assert re.fullmatch(r"[0-9a-f]{16}", new_span_id())
