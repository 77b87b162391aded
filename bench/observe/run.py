"""Observability benchmark: span ingestion rate, query latency on a million spans, and the
gateway's throughput with recording on versus off.

Method
------
* Ingestion: N spans (GenAI attributes, small payloads) are `record()`ed into a `Recorder`
  whose sink is the `SpanSink`, exactly as the gateway and the ingestion API do; the clock
  runs from the first `record()` until `flush()` returns (everything committed). The process
  is pinned to one core. Once for SQLite (WAL, file in a temp dir), once for PostgreSQL.
* Queries: a fresh database gets 1,000,000 spans generated inside it (`INSERT ... SELECT` over
  a generated series: 200,000 traces of 5 spans, 30 days, 20 models, 1,000 users, 100 keys, 10
  teams, 40,000 sessions, 2% errors; of each trace's five, two are gateway spans, kept on
  their request rows, and three applications' spans in `spans`), then each API query (limit
  50, over both tables) runs `--repeat` times after one warm-up; the median and max are
  reported.
* Gateway: the fake upstream and two gateways run as in `bench/gateway/run.py` (its helpers
  are imported: gateways on core 0, fake + wrk on core 1), one with the default config
  (request log with its gateway spans recorded to SQLite, metrics) and one with `observe: {enabled: false}`,
  both called with a virtual key. They run side by side and wrk alternates between them
  (`--rounds` rounds of whole and streamed completions at each concurrency); the on/off
  ratio is the median of the per-round ratios, which cancels the VM's drift in speed.

Results: a Markdown table on stdout, JSON in `bench/results/observe-<date>.json`.

    python bench/observe/run.py [--spans 50000] [--rows 1000000] [--duration 8] [--rounds 5]
                                [--skip-gateway] [--skip-queries]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from aistrata.observe.recorder import Recorder  # noqa: E402
from aistrata.observe.traces import Span, SpanFilters, SpanQueries, SpanSink  # noqa: E402
from aistrata.store.db import Database  # noqa: E402
from aistrata.store.migrations import migrate  # noqa: E402

_spec = importlib.util.spec_from_file_location("gateway_bench", REPO / "bench" / "gateway" / "run.py")
gw = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["gateway_bench"] = gw  # its dataclasses look their module up while it loads
_spec.loader.exec_module(gw)  # type: ignore[union-attr]

PG_ADMIN_URL = os.environ.get("AISTRATA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DAY_US = 86_400_000_000


# ---------------------------------------------------------------- databases

def sqlite_db(workdir: Path, name: str) -> Database:
    return Database(f"sqlite:///{workdir / name}")


def postgres_db() -> tuple[Database, Callable[[], None]]:
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    return Database(f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"), drop


# ---------------------------------------------------------------- ingestion

def sample_spans(n: int) -> list[Span]:
    now = time.time_ns() // 1000
    spans = []
    for i in range(n):
        trace = os.urandom(16).hex()
        spans.append(Span(
            trace_id=trace, span_id=os.urandom(8).hex(), name="chat gpt-4o-mini", start_us=now + i, end_us=now + i + 850_000,
            kind="client", type="generation", status="ok", source="otlp", session_id=f"s{i % 500}", user_id=f"u{i % 100}",
            key_id="k1", team_id="t1", tags=["bench"], metadata={"app.step": i % 7}, provider_name="openai",
            operation_name="chat", request_model="gpt-4o-mini", response_model="gpt-4o-mini", input_tokens=120,
            output_tokens=40, cache_read_tokens=64, cost_usd=0.00012, input='[{"role":"user","content":"hello there"}]',
            output='[{"role":"assistant","content":"hi"}]', input_bytes=42, output_bytes=39,
        ))
    return spans


def ingest_rate(db: Database, n: int) -> dict[str, Any]:
    migrate(db)
    spans = sample_spans(n)
    recorder = Recorder(SpanSink(db), max_queue=n + 1, decode=Span.from_dict, name="bench spans")
    recorder.start()
    t0 = time.perf_counter()
    for span in spans:
        recorder.record(span)  # type: ignore[arg-type]
    ok = recorder.flush(timeout=600)
    seconds = time.perf_counter() - t0
    recorder.stop()
    stored = db.fetchone("SELECT COUNT(*) AS n FROM spans")["n"]  # type: ignore[index]
    return {"spans": n, "stored": stored, "seconds": seconds, "spans_per_s": n / seconds, "flushed": ok}


# ---------------------------------------------------------------- a million spans

def fill(db: Database, rows: int) -> float:
    """`rows` spans generated inside the database: traces of 5 (one root, four children), two
    of the children gateway spans (on request rows), the rest applications' spans."""
    migrate(db)
    now_us = time.time_ns() // 1000
    # Every column from one integer n (multiplying by a prime spreads values pseudo-randomly).
    cols = {
        "name": "CASE WHEN n % 5 = 0 THEN 'agent' ELSE 'chat' END",
        "start_us": f"{now_us} - (n / 5) * {30 * DAY_US // max(1, rows // 5)} - (n % 5) * 1000",
        "end_us": f"{now_us} - (n / 5) * {30 * DAY_US // max(1, rows // 5)} - (n % 5) * 1000 + (n * 7919) % 5000000",
        "kind": "'client'", "type": "CASE WHEN n % 5 = 0 THEN 'agent' ELSE 'generation' END",
        "status": "CASE WHEN n % 50 = 7 THEN 'error' ELSE 'ok' END", "source": "'otlp'",
        "session_id": "'s' || ((n / 5) % 40000)", "user_id": "'u' || ((n / 5) % 1000)",
        "key_id": "'k' || ((n / 5) % 100)", "team_id": "'t' || ((n / 5) % 10)",
        "tags": "{tags}", "metadata": "{empty}",
        "provider_name": "'p' || (n % 5)", "operation_name": "'chat'", "request_model": "'model-' || (n % 20)",
        "input_tokens": "(n * 31) % 4000", "output_tokens": "(n * 17) % 800", "cache_read_tokens": "0",
        "cache_creation_tokens": "0", "reasoning_tokens": "0", "cost_usd": "((n * 13) % 1000) / 100000.0",
        "input_bytes": "0", "output_bytes": "0", "is_root": "{root}", "duration_ms": "((n * 7919) % 5000000) / 1000.0",
    }
    if db.engine == "postgres":
        hex32, hex16 = "lpad(to_hex({}), 32, '0')", "lpad(to_hex({}), 16, '0')"
        fmt = {"tags": "jsonb_build_array('tag' || (n % 10))", "empty": "'{}'::jsonb", "root": "(n % 5 = 0)",
               "false": "FALSE"}
        source = f"FROM generate_series(0::bigint, {rows - 1}) AS g(n)"
    else:
        hex32, hex16 = "printf('%032x', {})", "printf('%016x', {})"
        fmt = {"tags": "json_array('tag' || (n % 10))", "empty": "'{}'", "root": "(n % 5 = 0)", "false": "0"}
        source = f"FROM (WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < {rows - 1}) SELECT n FROM c)"
    exprs = {
        "trace_id": hex32.format("n / 5"), "span_id": hex16.format("n"),
        "parent_span_id": f"CASE WHEN n % 5 = 0 THEN NULL ELSE {hex16.format('n - n % 5')} END",
        **{k: v.format(**fmt) for k, v in cols.items()},
    }
    # Two of each trace's four generations went through the gateway: they are request rows.
    gateway = "n % 5 IN (1, 2)"
    requests = {
        "id": f"'req_' || {hex16.format('n')}", "ts": f"({exprs['start_us']}) / 1000", "endpoint": "'chat'",
        "ingress": "'openai'", "key_id": exprs["key_id"], "user_id": exprs["user_id"], "team_id": exprs["team_id"],
        "requested_model": exprs["request_model"], "provider": exprs["provider_name"], "stream": fmt["false"],
        "status": "CASE WHEN n % 50 = 7 THEN 502 ELSE 200 END",
        "error_kind": "CASE WHEN n % 50 = 7 THEN 'upstream' ELSE NULL END", "latency_ms": exprs["duration_ms"],
        "input_tokens": exprs["input_tokens"], "output_tokens": exprs["output_tokens"], "cache_read_tokens": "0",
        "cache_write_tokens": "0", "reasoning_tokens": "0", "cost_usd": exprs["cost_usd"], "tags": exprs["tags"],
        "metadata": exprs["metadata"], "trace_id": exprs["trace_id"], "span_id": exprs["span_id"],
        "parent_span_id": exprs["parent_span_id"], "session_id": exprs["session_id"], "end_user_id": exprs["user_id"],
    }
    t0 = time.perf_counter()
    db.execute(f"INSERT INTO spans ({', '.join(exprs)}) SELECT {', '.join(exprs.values())} {source} WHERE NOT {gateway}")
    db.execute(f"INSERT INTO requests ({', '.join(requests)}) SELECT {', '.join(requests.values())} {source} "
               f"WHERE {gateway}")
    for table in ("spans", "requests"):
        db.execute(f"ANALYZE {table}")
    return time.perf_counter() - t0


def query_latencies(db: Database, repeat: int) -> dict[str, dict[str, float]]:
    q = SpanQueries(db)
    week_ago = time.time_ns() // 1000 - 7 * DAY_US
    trace_id = db.fetchone("SELECT trace_id FROM spans WHERE name = 'agent' LIMIT 1")["trace_id"]  # type: ignore[index]
    page = q.spans(SpanFilters(), limit=50)
    deep_cursor = None
    for _ in range(20):
        page = q.spans(SpanFilters(), limit=50, cursor=page[1])
        deep_cursor = page[1]
    cases: dict[str, Callable[[], Any]] = {
        "spans: newest page": lambda: q.spans(SpanFilters()),
        "spans: page 21 (cursor)": lambda: q.spans(SpanFilters(), cursor=deep_cursor),
        "spans: model, last 7 days": lambda: q.spans(SpanFilters(model="model-3", since_us=week_ago)),
        "spans: provider": lambda: q.spans(SpanFilters(provider="p2")),
        "spans: user": lambda: q.spans(SpanFilters(user_id="u42")),
        "spans: key": lambda: q.spans(SpanFilters(key_id="k7")),
        "spans: team + errors": lambda: q.spans(SpanFilters(team_id="t3", status="error")),
        "spans: session": lambda: q.spans(SpanFilters(session_id="s1234")),
        "spans: tag": lambda: q.spans(SpanFilters(tag="tag3")),
        "spans: latency > 4.9 s": lambda: q.spans(SpanFilters(min_latency_ms=4900)),
        "spans: cost 0.009-0.0095": lambda: q.spans(SpanFilters(min_cost_usd=0.009, max_cost_usd=0.0095)),
        "traces: newest page + totals": lambda: q.traces(SpanFilters()),
        "traces: session": lambda: q.traces(SpanFilters(session_id="s1234")),
        "traces: user, last 7 days": lambda: q.traces(SpanFilters(user_id="u42", since_us=week_ago)),
        "trace: one tree": lambda: q.trace(trace_id),
        "user summary": lambda: q.user_summary("u42"),
    }
    out = {}
    for name, run in cases.items():
        run()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = {"median_ms": statistics.median(times), "max_ms": max(times)}
        print(f"  {name:32} {out[name]['median_ms']:9.2f} ms", file=sys.stderr, flush=True)
    return out


# ---------------------------------------------------------------- gateway, recording on vs off

def gateway_throughput(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    """Recording on / off, side by side in alternating rounds (`gw.paired`)."""
    fake_port = gw.free_port()
    fake = gw.spawn("fake_upstream", [gw.PYTHON, "-m", "aistrata.testing.fake_upstream", "--host", gw.HOST,
                                      "--port", str(fake_port)], gw.LOAD_CPU, workdir, gw.main_env())
    sides: list[Any] = []
    try:
        gw.wait_ready(fake, fake_port, "/v1/models", timeout=30)
        sides = [gw.start_side("gateway", workdir, fake_port, "recording-off", {"observe": {"enabled": False}}),
                 gw.start_side("gateway", workdir, fake_port, "recording-on")]
        return gw.paired(sides[0], sides[1], args, fake)
    finally:
        for side in sides:
            gw.stop(side.proc)
        gw.stop(fake)


# ---------------------------------------------------------------- report

def markdown(out: dict[str, Any]) -> str:
    lines = [f"### Observability benchmark, {out['meta']['date']}", "",
             f"{out['meta']['cpu']}; ingestion pinned to one core.", "",
             "| ingestion (Recorder → SpanSink) | spans | seconds | spans/s | target |", "|---|---:|---:|---:|---|"]
    for engine, r in out["ingest"].items():
        lines.append(f"| {engine} | {r['spans']} | {r['seconds']:.2f} | {r['spans_per_s']:,.0f} | "
                     f"{'PASS' if r['spans_per_s'] >= 5000 else '**FAIL**'} (≥ 5,000/s) |")
    if out.get("queries"):
        engines = list(out["queries"])
        lines += ["", f"| query on {out['meta']['rows']:,} spans (limit 50) | "
                  + " | ".join(f"{e} median ms | {e} max ms" for e in engines) + " |",
                  "|---|" + "---:|---:|" * len(engines)]
        for name in out["queries"][engines[0]]["latency"]:
            cells = " | ".join(f"{out['queries'][e]['latency'][name]['median_ms']:.2f} | "
                               f"{out['queries'][e]['latency'][name]['max_ms']:.2f}" for e in engines)
            lines.append(f"| {name} | {cells} |")
        lines.append("")
        lines.append("Bulk generation: " + ", ".join(f"{e} {out['queries'][e]['fill_s']:.1f} s" for e in engines) + ".")
    if out.get("gateway"):
        rows = out["gateway"]
        lines += ["", f"Gateway, recording on / off: the two side by side, {len(rows[0]['rounds'])} alternating rounds, "
                  "medians; goal: within 10%.", "",
                  "| mode | conc | rps on | rps off | on / off | result | CPU ms/req on | CPU ms/req off | CPU on / off | errors |",
                  "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['mode']} | {r['concurrency']} | {r['rps_other']:.0f} | {r['rps_base']:.0f} | "
                         f"{r['rps_ratio']:.3f} | {'PASS' if r['rps_ratio'] >= 0.9 else '**FAIL**'} | "
                         f"{r['cpu_ms_other']:.3f} | {r['cpu_ms_base']:.3f} | {r['cpu_ratio']:.3f} | {r['errors']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=50_000, help="spans per ingestion run")
    ap.add_argument("--rows", type=int, default=1_000_000, help="spans in the query table")
    ap.add_argument("--repeat", type=int, default=20, help="timed runs per query")
    ap.add_argument("--duration", type=float, default=8, help="seconds per wrk run")
    ap.add_argument("--warmup", type=float, default=2, help="seconds of wrk warm-up")
    ap.add_argument("--concurrency", default="16,64")
    ap.add_argument("--rounds", type=int, default=5, help="alternating on/off rounds per mode and concurrency")
    ap.add_argument("--skip-gateway", action="store_true")
    ap.add_argument("--skip-queries", action="store_true")
    args = ap.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.modes, args.mode_names = [False, True], ["whole", "stream"]
    workdir = Path(tempfile.mkdtemp(prefix="aistrata-observe-bench-"))
    meta = {"date": dt.date.today().isoformat(), "rows": args.rows, "spans": args.spans, "workdir": str(workdir),
            **gw.machine()}
    out: dict[str, Any] = {"meta": meta, "ingest": {}, "queries": {}}
    os.sched_setaffinity(0, {0})  # "on one core": the writer thread and the producer share it
    print("== ingestion", file=sys.stderr, flush=True)
    db = sqlite_db(workdir, "ingest.db")
    out["ingest"]["SQLite"] = ingest_rate(db, args.spans)
    db.close()
    db, drop = postgres_db()
    try:
        out["ingest"]["PostgreSQL"] = ingest_rate(db, args.spans)
    finally:
        db.close()
        drop()
    if not args.skip_queries:
        for engine in ("SQLite", "PostgreSQL"):
            print(f"== queries, {engine}", file=sys.stderr, flush=True)
            db, drop = (sqlite_db(workdir, "million.db"), lambda: None) if engine == "SQLite" else postgres_db()
            try:
                fill_s = fill(db, args.rows)
                out["queries"][engine] = {"fill_s": fill_s, "latency": query_latencies(db, args.repeat)}
            finally:
                db.close()
                drop()
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    if not args.skip_gateway:
        print("== gateway", file=sys.stderr, flush=True)
        out["gateway"] = gateway_throughput(args, workdir)
    results = REPO / "bench" / "results" / f"observe-{meta['date']}.json"
    results.write_text(json.dumps(out, indent=2) + "\n")
    print(markdown(out))
    print(f"\nwrote {results.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
