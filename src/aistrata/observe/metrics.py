"""Prometheus metrics for `GET /metrics`, in a registry of our own (not the process default).

Updated in three places, none of which waits on anything:

- `observe(rec, ctx)`: the recorder hook on the request path, a few counter/histogram steps
  on plain numbers (exported as the same series a prometheus_client metric would have);
- `metered(sink)`: wraps the request-log sink, so cost is counted in the writer thread once a
  record is priced and written (prices are looked up there, never on the request path), as
  plain numbers too;
- scrape time: the recorder's queue and counters (a custom collector), and the circuit
  breakers' states (`refresh_breakers`, awaited by the endpoint: the breaker store is async).

Names follow OTel GenAI (`gen_ai_client_*`, translated to Prometheus) plus `aistrata_*`
gateway counters. Labels model, provider, key alias and team are bounded: each label keeps at
most `max_label_values` distinct values and folds the rest into `other`.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

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
        r = self.registry
        # The request path's series: plain numbers behind one lock (see `_Counter`).
        self._lock = threading.Lock()
        self.requests = _Counter("aistrata_requests", "Client requests finished", LABELS)
        self.errors = _Counter("aistrata_request_errors", "Requests that failed, by error class",
                               (*LABELS, "error_kind"))
        self.refusals = _Counter("aistrata_limit_refusals", "Requests refused by a rate limit or a budget",
                                 (*LABELS, "reason"))
        self.cache_hits = _Counter("aistrata_cache_hits", "Requests answered from the response cache", LABELS)
        self.tokens = _Counter("aistrata_tokens", "Tokens by type (cache reads inside input, reasoning inside output)",
                               (*LABELS, "type"))
        genai = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
        self.duration = _Histogram("gen_ai_client_operation_duration_seconds", "GenAI operation duration",
                                   (*genai, "error_type"), DURATION_BUCKETS)
        self.ttft = _Histogram("gen_ai_client_operation_time_to_first_chunk_seconds",
                               "Time to the first streamed chunk", genai, DURATION_BUCKETS)
        self.token_usage = _Histogram("gen_ai_client_token_usage", "Tokens per operation",
                                      (*genai, "gen_ai_token_type"), TOKEN_BUCKETS)
        r.register(_SeriesCollector(self._lock, (self.requests, self.errors, self.refusals, self.cache_hits,
                                                 self.tokens, self.duration, self.ttft, self.token_usage)))
        # Cost is counted in the request log's writer thread, under a lock of its own: the event
        # loop must never wait for a writer that holds one.
        self._cost_lock = threading.Lock()
        self.cost = _Counter("aistrata_cost_usd", "Spend in USD, counted when the priced record is written", LABELS)
        self.saved = _Counter("aistrata_cache_saved_usd", "What cache hits would have cost", LABELS)
        r.register(_SeriesCollector(self._cost_lock, (self.cost, self.saved)))
        # Read at scrape time: the recorders' queues and counters, the breakers (prometheus_client's gauge).
        self._recorders = _RecorderCollector()
        r.register(self._recorders)
        # Deployments come from the config, not from clients: no cardinality bound needed.
        self.breakers = Gauge("aistrata_deployment_breaker_state",
                              "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open",
                              ("deployment", "model_group"), registry=r)

    # -- hot path ---------------------------------------------------------------------------

    def observe(self, rec: RequestRecord, ctx: Any = None) -> None:
        """Count one finished request (the recorder hook; `ctx` is unused here)."""
        labels = self.labels.of(rec)
        genai = (rec.endpoint, labels[1], labels[0])
        error_kind = rec.error_kind
        with self._lock:
            self.requests.inc(labels)
            if error_kind is not None:
                self.errors.inc((*labels, error_kind))
                if error_kind in REFUSALS:
                    self.refusals.inc((*labels, error_kind))
            if rec.cache_hit:
                self.cache_hits.inc(labels)
            for kind, attr in TOKEN_TYPES:
                n = getattr(rec, attr)
                if n:
                    self.tokens.inc((*labels, kind), n)
            if rec.latency_ms is not None:
                self.duration.observe((*genai, error_kind or ""), rec.latency_ms / 1000)
            if rec.ttft_ms is not None:
                self.ttft.observe(genai, rec.ttft_ms / 1000)
            if rec.input_tokens or rec.output_tokens:
                self.token_usage.observe((*genai, "input"), rec.input_tokens)
                self.token_usage.observe((*genai, "output"), rec.output_tokens)

    # -- writer thread ----------------------------------------------------------------------

    def metered(self, sink: Sink) -> Sink:
        return _MeteredSink(sink, self)

    def count_cost(self, records: list[RequestRecord]) -> None:
        for rec in records:
            if rec.cost_usd or rec.saved_usd:
                labels = self.labels.of(rec)
                with self._cost_lock:
                    if rec.cost_usd:
                        self.cost.inc(labels, rec.cost_usd)
                    if rec.saved_usd:
                        self.saved.inc(labels, rec.saved_usd)

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

    def track_recorder(self, name: str, recorder: Recorder) -> None:
        """Export `recorder`'s queue and counters under `recorder="<name>"`."""
        self._recorders.recorders[name] = recorder

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


class _Counter:
    """A labelled counter as a dict of numbers. prometheus_client's children validate and take
    a lock on every step (~0.5 µs, and about eight per request); these are updated under their
    collector's lock (one for the request path, one for the writer's cost counters) and turned
    into the same series when scraped. A series exists from its first count on, as a child
    does from its `labels()` call."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.series: dict[tuple[str, ...], list[float]] = {}  # labels -> [value, created]

    def inc(self, labels: tuple[str, ...], amount: float = 1) -> None:
        series = self.series.get(labels)
        if series is None:
            self.series[labels] = [amount, time.time()]
        else:
            series[0] += amount

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, (value, created) in self.series.items():
            family.add_metric(labels, value, created=created)
        return family


class _Histogram:
    """A labelled histogram as bucket counts (see `_Counter`); buckets are upper bounds, as in
    prometheus_client, with +Inf added."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.bounds = (*map(float, buckets), float("inf"))
        self.les = tuple(floatToGoString(b) for b in self.bounds)
        self.series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}  # labels -> (counts, [sum, created])

    def observe(self, labels: tuple[str, ...], amount: float) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = ([0] * len(self.bounds), [0.0, time.time()])
        series[0][bisect_left(self.bounds, amount)] += 1  # the first bucket with amount <= bound
        series[1][0] += amount

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, (counts, (total, created)) in self.series.items():
            cumulative, acc = [], 0
            for le, n in zip(self.les, counts):
                acc += n
                cumulative.append((le, acc))
            family.add_metric(labels, cumulative, total)
            # HistogramMetricFamily has no `created`; prometheus_client's Histogram exports one.
            family.samples.append(Sample(f"{self.name}_created", dict(zip(self.labelnames, labels)), created))
        return family


class _SeriesCollector(Collector):
    def __init__(self, lock: threading.Lock, metrics: Sequence[_Counter | _Histogram]) -> None:
        self.lock = lock
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        with self.lock:  # a consistent snapshot; the families copy the numbers
            return iter([m.family() for m in self.metrics])


class _RecorderCollector(Collector):
    """Back-pressure of the recorders (request log, spans, OTLP export), read when scraped,
    one series per recorder (`recorder` label)."""

    def __init__(self) -> None:
        self.recorders: dict[str, Recorder] = {}

    def collect(self) -> Iterator[Any]:
        families = [
            (GaugeMetricFamily, "aistrata_recorder_queue_length", "Records waiting for the writer", "queued"),
            (GaugeMetricFamily, "aistrata_recorder_queue_capacity", "Queue bound", "max_queue"),
            (CounterMetricFamily, "aistrata_recorder_written", "Records written", "written"),
            (CounterMetricFamily, "aistrata_recorder_dropped", "Records dropped because the queue was full", "dropped"),
            (CounterMetricFamily, "aistrata_recorder_spooled",
             "Records spooled to disk while the destination refused writes", "spooled"),
            (CounterMetricFamily, "aistrata_recorder_write_failures", "Failed batch writes", "failures"),
        ]
        for kind, name, doc, attr in families:
            family = kind(name, doc, labels=("recorder",))
            for label, recorder in self.recorders.items():
                family.add_metric((label,), getattr(recorder, attr))
            yield family
