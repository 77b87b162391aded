from __future__ import annotations

import orjson

from aistrata.core import Usage
from aistrata.observe import RequestRecord


def test_dict_round_trip_through_json() -> None:
    rec = RequestRecord(id="req_1", ts=5, stream=True, cost_usd=0.5, tags=["a"], metadata={"k": [1]})
    assert RequestRecord.from_dict(orjson.loads(orjson.dumps(rec.to_dict()))) == rec
    assert RequestRecord.from_dict({**rec.to_dict(), "from_a_newer_version": 1}) == rec


def test_usage_in_and_out() -> None:
    rec = RequestRecord(id="req_1", ts=5)
    usage = Usage(input_tokens=10, output_tokens=5, cache_read_tokens=4, cache_write_tokens=2, reasoning_tokens=3)
    rec.set_usage(usage)
    assert rec.usage == usage and rec.ttft_ms is None and rec.cost_usd is None
