"""The request log on both engines: insert, get, filters, keyset pagination."""

from __future__ import annotations

import pytest

from aistrata.observe import RequestRecord
from aistrata.observe.records import FIELDS
from aistrata.store import Database, RequestFilters, RequestLog
from aistrata.store.request_log import COLUMNS

T0 = 1_760_000_000_000


def rec(i: int, **kw: object) -> RequestRecord:
    return RequestRecord(id=f"req_{i:04d}", ts=T0 + i * 1000, **kw)  # type: ignore[arg-type]


def ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


def test_columns_match_the_record() -> None:
    # span_id is a property of the record (the id's random part), stored for the span reads.
    assert [c for c in COLUMNS if c != "span_id"] == list(FIELDS)
    assert rec(1).span_id == "req_0001"[-16:] and "span_id" in COLUMNS


def test_round_trip(db: Database) -> None:
    log = RequestLog(db)
    full = rec(
        1, endpoint="messages", ingress="anthropic", key_id="key_1", key_alias="ci", user_id="u1",
        team_id="t1", requested_model="claude", deployment_id="dep1", provider="anthropic",
        upstream_model="claude-sonnet-4-5", stream=True, status=200, latency_ms=812.5, ttft_ms=120.25,
        overhead_ms=1.5, input_tokens=1000, output_tokens=200, cache_read_tokens=600,
        cache_write_tokens=100, reasoning_tokens=50, cost_usd=0.0123, price_version="genai-prices 0.2.3",
        tags=["prod", "ci"], metadata={"trace": {"id": "abc"}, "n": 1},
    )
    log.insert_many([full, rec(2)])
    assert RequestRecord.from_dict(log.get("req_0001")) == full  # type: ignore[arg-type]
    bare = log.get("req_0002")
    assert bare is not None and RequestRecord.from_dict(bare) == rec(2)
    assert bare["stream"] is False and bare["tags"] == [] and bare["metadata"] == {}
    assert log.get("missing") is None


def test_duplicate_ids_are_ignored(db: Database) -> None:
    log = RequestLog(db)
    log.insert_many([rec(1, status=200)])
    log.insert_many([rec(1, status=500), rec(2)])
    rows, _ = log.query()
    assert ids(rows) == ["req_0002", "req_0001"]
    assert rows[1]["status"] == 200


@pytest.fixture
def filled(db: Database) -> RequestLog:
    log = RequestLog(db)
    log.insert_many(
        rec(
            i,
            key_id=f"key_{i % 2}", user_id=f"user_{i % 3}", team_id="t" if i < 10 else None,
            requested_model="gpt" if i % 2 else "claude", provider="openai" if i % 2 else "anthropic",
            deployment_id=f"dep_{i % 4}", status=429 if i % 5 == 0 else 200,
            error_kind="rate_limit" if i % 5 == 0 else None, stream=i % 3 == 0,
            tags=["even"] if i % 2 == 0 else ["odd", "x"],
        )
        for i in range(20)
    )
    return log


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (RequestFilters(), list(range(20))),
        (RequestFilters(since=T0 + 5000, until=T0 + 8000), [5, 6, 7]),
        (RequestFilters(key_id="key_1"), [i for i in range(20) if i % 2]),
        (RequestFilters(user_id="user_0", key_id="key_0"), [0, 6, 12, 18]),
        (RequestFilters(team_id="t", requested_model="gpt"), [1, 3, 5, 7, 9]),
        (RequestFilters(provider="anthropic", status=429), [0, 10]),
        (RequestFilters(deployment_id="dep_3"), [3, 7, 11, 15, 19]),
        (RequestFilters(error_kind="rate_limit"), [0, 5, 10, 15]),
        (RequestFilters(tag="x", stream=True), [3, 9, 15]),
        (RequestFilters(tag="ev"), []),
        (RequestFilters(stream=False, since=T0 + 15000), [16, 17, 19]),
    ],
)
def test_filters(filled: RequestLog, filters: RequestFilters, expected: list[int]) -> None:
    rows, cursor = filled.query(filters, limit=100)
    assert ids(rows) == [f"req_{i:04d}" for i in sorted(expected, reverse=True)]
    assert cursor is None


def test_keyset_pagination_walks_everything_once(db: Database) -> None:
    log = RequestLog(db)
    # Same timestamps on purpose: ties are broken by id.
    log.insert_many(RequestRecord(id=f"req_{i:04d}", ts=T0 + (i // 3)) for i in range(23))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        rows, cursor = log.query(RequestFilters(), limit=5, cursor=cursor)
        seen += ids(rows)
        pages += 1
        if cursor is None:
            break
    assert pages == 5
    assert seen == [f"req_{i:04d}" for i in reversed(range(23))]


def test_pagination_combines_with_filters(filled: RequestLog) -> None:
    first, cursor = filled.query(RequestFilters(key_id="key_0"), limit=4)
    assert ids(first) == ["req_0018", "req_0016", "req_0014", "req_0012"]
    rest, end = filled.query(RequestFilters(key_id="key_0"), limit=100, cursor=cursor)
    assert ids(rest) == ["req_0010", "req_0008", "req_0006", "req_0004", "req_0002", "req_0000"]
    assert end is None


def test_bad_cursor_is_a_value_error(db: Database) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        RequestLog(db).query(cursor="not-a-cursor!")
