"""Export: stored spans to an OpenTelemetry collector (OTLP/HTTP protobuf), and the request log
as JSONL.

The OTLP exporter is the sink of its own `Recorder`, fed by the span sink after each stored
batch: it batches, retries with back-off and spools while the collector is down, all in a
writer thread, so a slow collector never slows a request or a span write.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Mapping

import orjson

from ...store.request_log import RequestFilters, RequestLog
from .model import Span
from .otlp import encode


class OtlpHttpSink:
    """POSTs span batches to `<endpoint>/v1/traces`; any failure raises, so the recorder keeps
    the batch and retries."""

    def __init__(self, endpoint: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> None:
        base = endpoint.rstrip("/")
        self.url = base if base.endswith("/v1/traces") else base + "/v1/traces"
        self.headers = {"Content-Type": "application/x-protobuf", **{str(k): str(v) for k, v in (headers or {}).items()}}
        self.timeout = timeout

    def insert_many(self, spans: list[Span]) -> None:
        request = urllib.request.Request(self.url, data=encode(spans), headers=self.headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured URL
            response.read()  # urlopen raises HTTPError for 4xx/5xx


def requests_jsonl(log: RequestLog, filters: RequestFilters, page: int = 1000) -> Iterator[bytes]:
    """The request log as JSON lines, newest first, one page in memory at a time."""
    cursor: str | None = None
    while True:
        rows, cursor = log.query(filters, page, cursor)
        yield b"".join(orjson.dumps(row, default=str) + b"\n" for row in rows)
        if cursor is None:
            return
