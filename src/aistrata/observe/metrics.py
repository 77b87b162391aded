"""Prometheus metrics for `GET /metrics`, in a registry of our own (not the process default).

Updated in three places, none of which waits on anything:

- `observe(rec, ctx)`: the recorder hook on the request path, a few counter/histogram steps;
- `metered(sink)`: wraps the request-log sink, so cost is counted in the writer thread once a
  record is priced and written (prices are looked up there, never on the request path);
- scrape time: the recorder's queue and counters (a custom collector), and the circuit
  breakers' states (`refresh_breakers`, awaited by the endpoint: the breaker store is async).

Names follow OTel GenAI (`gen_ai_client_*`, translated to Prometheus) plus `aistrata_*`
gateway counters. Labels model, provider, key alias and team are bounded: each label keeps at
most `max_label_values` distinct values and folds the rest into `other`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .records import RequestRecord
from .recorder import Recorder, Sink

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"
NONE = "none"
LABELS = ("model", "provider", "key_alias", "team")
# OTel GenAI's advised buckets: durations 0.01 s .. 81.92 s, tokens 1 .. 4^13.
DURATION_BUCKETS = tuple(0.01 * 2**i for i in range(14))
TOKEN_BUCKETS = tuple(4**i for i in range(14))
TOKEN_TYPES = (("input", "input_tokens"), ("output", "output_tokens"), ("cache_read", "cache_read_tokens"),
               ("cache_write", "cache_write_tokens"), ("reasoning", "reasoning_tokens"))
REFUSALS = frozenset({"rate_limit", "budget_exceeded"})
BREAKER_LEVEL = {"closed": 0, "half_open": 1, "open": 2}  # LiteLLM's deployment_state scale


class BoundedLabels:
    """Caps distinct values per label: a client inventing model names or tags cannot grow the
    scrape without bound. Values already seen keep their own series."""

    def __init__(self, max_values: int) -> None:
        self.max_values = max_values
        self._seen: dict[str, set[str]] = {name: set() for name in LABELS}
        self._lock = threading.Lock()

    def value(self, label: str, raw: str | None) -> str:
        if raw is None or raw == "":
            return NONE
        seen = self._seen[label]
        if raw in seen:
            return raw
        with self._lock:
            if len(seen) < self.max_values:
                seen.add(raw)
                return raw
        return OTHER

    def of(self, rec: RequestRecord) -> tuple[str, str, str, str]:
        return (self.value("model", rec.requested_model), self.value("provider", rec.provider),
                self.value("key_alias", rec.key_alias), self.value("team", rec.team_id))


class GatewayMetrics:
    def __init__(self, max_label_values: int = 50) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.labels = BoundedLabels(max_label_values)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry
        self.requests = Counter("aistrata_requests", "Client requests finished", LABELS, registry=r)
        self.errors = Counter("aistrata_request_errors", "Requests that failed, by error class",
                              (*LABELS, "error_kind"), registry=r)
        self.refusals = Counter("aistrata_limit_refusals", "Requests refused by a rate limit or a budget",
                                (*LABELS, "reason"), registry=r)
        self.cache_hits = Counter("aistrata_cache_hits", "Requests answered from the response cache",
                                  LABELS, registry=r)
        self.tokens = Counter("aistrata_tokens", "Tokens by type (cache reads inside input, reasoning inside output)",
                              (*LABELS, "type"), registry=r)
        self.cost = Counter("aistrata_cost_usd", "Spend in USD, counted when the priced record is written",
                            LABELS, registry=r)
        self.saved = Counter("aistrata_cache_saved_usd", "What cache hits would have cost", LABELS, registry=r)
        genai = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
        self.duration = Histogram("gen_ai_client_operation_duration_seconds", "GenAI operation duration",
                                  (*genai, "error_type"), buckets=DURATION_BUCKETS, registry=r)
        self.ttft = Histogram("gen_ai_client_operation_time_to_first_chunk_seconds",
                              "Time to the first streamed chunk", genai, buckets=DURATION_BUCKETS, registry=r)
        # Deployments come from the config, not from clients: no cardinality bound needed.
        self.breakers = Gauge("aistrata_deployment_breaker_state",
                              "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open",
                              ("deployment", "model_group"), registry=r)
        self.token_usage = Histogram("gen_ai_client_token_usage", "Tokens per operation",
                                     (*genai, "gen_ai_token_type"), buckets=TOKEN_BUCKETS, registry=r)

    # -- hot path ---------------------------------------------------------------------------

    def observe(self, rec: RequestRecord, ctx: Any = None) -> None:
        """Count one finished request (the recorder hook; `ctx` is unused here)."""
        labels = self.labels.of(rec)
        self._child(self.requests, *labels).inc()
        if rec.error_kind is not None:
            self._child(self.errors, *labels, rec.error_kind).inc()
            if rec.error_kind in REFUSALS:
                self._child(self.refusals, *labels, rec.error_kind).inc()
        if rec.cache_hit:
            self._child(self.cache_hits, *labels).inc()
        for kind, attr in TOKEN_TYPES:
            n = getattr(rec, attr)
            if n:
                self._child(self.tokens, *labels, kind).inc(n)
        genai = (rec.endpoint, labels[1], labels[0])
        if rec.latency_ms is not None:
            self._child(self.duration, *genai, rec.error_kind or "").observe(rec.latency_ms / 1000)
        if rec.ttft_ms is not None:
            self._child(self.ttft, *genai).observe(rec.ttft_ms / 1000)
        if rec.input_tokens or rec.output_tokens:
            self._child(self.token_usage, *genai, "input").observe(rec.input_tokens)
            self._child(self.token_usage, *genai, "output").observe(rec.output_tokens)

    def _child(self, metric: Any, *labels: str) -> Any:
        """A labelled series, cached: `labels()` validates and locks on every call, and the
        label space is bounded, so the cache is too."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- writer thread ----------------------------------------------------------------------

    def metered(self, sink: Sink) -> Sink:
        return _MeteredSink(sink, self)

    def count_cost(self, records: list[RequestRecord]) -> None:
        for rec in records:
            if rec.cost_usd or rec.saved_usd:
                labels = self.labels.of(rec)
                if rec.cost_usd:
                    self.cost.labels(*labels).inc(rec.cost_usd)
                if rec.saved_usd:
                    self.saved.labels(*labels).inc(rec.saved_usd)

    # -- scrape -----------------------------------------------------------------------------

    async def refresh_breakers(self, dispatcher: Any, groups: Mapping[str, Sequence[Any]]) -> None:
        """Read each deployment's breaker, when the dispatcher has breakers at all."""
        store = getattr(dispatcher, "breakers", None)
        if store is None:
            return
        now = time.monotonic()
        for group, deployments in groups.items():
            for dep in deployments:
                view = await store.view(dep.id, now)
                self.breakers.labels(dep.id, group).set(BREAKER_LEVEL.get(view.state, 0))

    def track_recorder(self, recorder: Recorder) -> None:
        self.registry.register(_RecorderCollector(recorder))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _MeteredSink:
    """Counts cost after a successful write, so a batch the database refused (spooled, then
    replayed) is counted when it lands, not once per attempt."""

    def __init__(self, sink: Sink, metrics: GatewayMetrics) -> None:
        self.sink = sink
        self.metrics = metrics

    def insert_many(self, records: list[Any]) -> None:
        self.sink.insert_many(records)
        self.metrics.count_cost(records)


class _RecorderCollector(Collector):
    """Back-pressure of the request recorder, read when scraped."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def collect(self) -> Iterator[Any]:
        r = self.recorder
        yield GaugeMetricFamily("aistrata_recorder_queue_length", "Records waiting for the writer", value=r.queued)
        yield GaugeMetricFamily("aistrata_recorder_queue_capacity", "Queue bound", value=r.max_queue)
        for name, doc, value in (
            ("aistrata_recorder_written", "Records written to the request log", r.written),
            ("aistrata_recorder_dropped", "Records dropped because the queue was full", r.dropped),
            ("aistrata_recorder_spooled", "Records spooled to disk while the database refused writes", r.spooled),
            ("aistrata_recorder_write_failures", "Failed batch writes", r.failures),
        ):
            yield CounterMetricFamily(name, doc, value=value)
