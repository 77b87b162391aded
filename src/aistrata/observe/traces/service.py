"""Tracing as the app holds it: settings from the config's `observe` section, the span
recorder, the optional OTLP exporter and the retention task.

    observe:
      enabled: true                  # false: no request log, no spans (metrics and the audit log go on)
      capture_payloads: true         # prompts and completions on gateway spans
      max_payload_bytes: 32768       # per payload; longer ones are cut with a visible marker
      otlp_endpoint: http://127.0.0.1:4318     # export every stored span (OTLP/HTTP protobuf)
      headers: {authorization: Bearer ...}
      retention_days: 30             # both data classes, unless set per class below
      retention: {requests: 90, spans: 14}   # a gateway span lives on its request's row: past
                                             # the spans' age it loses its span fields
      retention_interval_s: 3600
      batch_size: 500                # records per database write, for the request log and spans
      flush_interval_s: 0.25         # the longest a record waits for a batch to fill
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ...gateway.config import ConfigError
from ...store.db import Database
from ..recorder import Recorder, Sink
from .export import OtlpHttpSink
from .gateway_span import CaptureOptions, SpanCapture
from .model import DEFAULT_MAX_PAYLOAD_BYTES, Span
from .queries import SpanQueries
from .retention import RetentionPolicy, RetentionTask
from .store import PayloadCodec, SpanSink


@dataclass(slots=True)
class TraceSettings:
    enabled: bool = True
    capture_payloads: bool = True
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    otlp_endpoint: str | None = None
    otlp_headers: dict[str, str] = field(default_factory=dict)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    batch_size: int = 500
    flush_interval_s: float = 0.25

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> TraceSettings:
        section = raw.get("observe") or {}
        default_days = section.get("retention_days")
        per_class = section.get("retention") or {}
        batch_size = int(section.get("batch_size", 500))
        flush_interval_s = float(section.get("flush_interval_s", 0.25))
        if batch_size < 1 or flush_interval_s <= 0:
            raise ConfigError("observe.batch_size must be at least 1 and observe.flush_interval_s above 0")
        days = {name: per_class.get(name, default_days) for name in ("requests", "spans")}
        return cls(
            enabled=bool(section.get("enabled", True)),
            capture_payloads=bool(section.get("capture_payloads", True)),
            max_payload_bytes=int(section.get("max_payload_bytes") or DEFAULT_MAX_PAYLOAD_BYTES),
            otlp_endpoint=section.get("otlp_endpoint") or None,
            otlp_headers={str(k): str(v) for k, v in (section.get("headers") or {}).items()},
            retention=RetentionPolicy(
                requests_days=None if days["requests"] is None else float(days["requests"]),
                spans_days=None if days["spans"] is None else float(days["spans"]),
                interval_s=float(section.get("retention_interval_s") or 3600),
            ),
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
        )

    def recorder(self, sink: Sink, **options: Any) -> Recorder:
        """A batching recorder with this section's batch size and flush interval."""
        return Recorder(sink, batch_size=self.batch_size, flush_interval=self.flush_interval_s, **options)


class Tracing:
    def __init__(self, settings: TraceSettings, db: Database, spool_dir: Path, codec: PayloadCodec | None = None) -> None:
        self.settings = settings
        self.exporter: Recorder | None = None
        if settings.otlp_endpoint:
            self.exporter = Recorder(
                OtlpHttpSink(settings.otlp_endpoint, settings.otlp_headers), spool_dir=spool_dir / "otlp",
                decode=Span.from_dict, name="OTLP export",
            )
        self.spans = settings.recorder(SpanSink(db, self.exporter, codec), spool_dir=spool_dir / "spans",
                                       decode=Span.from_dict, name="span log")
        self.queries = SpanQueries(db, codec)
        self.capture = SpanCapture(CaptureOptions(settings.capture_payloads, settings.max_payload_bytes))
        self.retention = RetentionTask(db, settings.retention)

    def accept(self, spans: list[Span]) -> bool:
        """Queue ingested spans, or refuse the whole batch (False) when the queue lacks room,
        so the sender retries instead of losing spans to a full queue."""
        if self.spans.queued + len(spans) > self.spans.max_queue:
            return False
        for span in spans:
            self.spans.record(span)  # type: ignore[arg-type]
        return True

    def start(self) -> None:
        """Start the writer threads and (on the running event loop) the retention task."""
        if self.exporter is not None:
            self.exporter.start()
        self.spans.start()
        self.retention.start()

    async def stop(self) -> None:
        await self.retention.stop()
        self.spans.stop()  # drains into the exporter's queue first
        if self.exporter is not None:
            self.exporter.stop()

    def flush(self, timeout: float = 5.0) -> bool:
        done = self.spans.flush(timeout)
        return (self.exporter.flush(timeout) if self.exporter is not None else True) and done
