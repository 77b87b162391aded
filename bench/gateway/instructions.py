"""Instructions per request in the real server, counted by valgrind's callgrind: a figure that
does not move with the VM's noise, for the two costs the goals bound.

The throughput benches (`run.py`, `../observe/run.py`) give the figures the goals are checked
on, but on this shared VM their five-round medians move by ±0.1 from one run to the next. This
one counts the CPU instructions the gateway process executes per request (every thread, user
space; the kernel's work and the CPU's cache misses are not in it), so a change's effect can be
seen without rerunning a bench many times:

* stages: `gateway-stages` / `gateway-key` (per-key limits, a budget and the exact cache, as in
  `run.py`; both record requests as by default);
* recording: the default gateway / the same with `observe: {enabled: false}`.

Each gateway runs under callgrind (about 50 times slower), on core 0 like the throughput
benches. After `--warmup` requests the counters are zeroed (a callgrind dump); then
`--requests` whole completions go through it from `--concurrency` keep-alive connections, each
with a distinct prompt (every one a cache miss), and a second dump holds the measured work.
The writer must see the batches it sees at full speed (500 records, not the handful a
0.25 s flush collects from a server slowed 50 times), and the measured window must hold the
writes of its own requests, no more, no fewer: so gateways that record run with
`observe.flush_interval_s: 3600` (a batch is written when 500 have queued), requests go in
bursts of 500, and each burst waits until the request log holds its rows (read from the database
file by this process, which costs the server nothing).

    .venv/bin/python bench/gateway/instructions.py [--pairs stages,recording] [--requests 2000]

Output: a Markdown table on stdout, JSON in `bench/results/instructions-<date>.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import importlib.util
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gateway_bench", REPO / "bench" / "gateway" / "run.py")
gw = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["gateway_bench"] = gw  # its dataclasses look their module up while it loads
_spec.loader.exec_module(gw)  # type: ignore[union-attr]

BATCH = 500  # the recorders' batch size (the default)
FULL_BATCHES = {"observe": {"flush_interval_s": 3600}}
# pair -> (base, other), each (what the report calls it, a gateway of run.py's GATEWAYS, extra config)
PAIRS = {
    "stages": (("gateway-key", "gateway-key", FULL_BATCHES), ("gateway-stages", "gateway-stages", FULL_BATCHES)),
    "recording": (("recording off", "gateway", {"observe": {"enabled": False}}),
                  ("recording on", "gateway", FULL_BATCHES)),
}
GOALS = {"stages": 1.15, "recording": 1 / 0.9}  # the throughput goals, read as CPU per request


def drive(port: int, token: str, n: int, concurrency: int, tag: str) -> None:
    """n whole completions from `concurrency` keep-alive connections; raises on any non-200."""
    failures: list[str] = []

    def worker(first: int) -> None:
        conn = http.client.HTTPConnection(gw.HOST, port, timeout=600)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        try:
            for i in range(first, n, concurrency):
                body = {"model": gw.MODEL, "messages": [{"role": "user", "content": f"{gw.PROMPT} {tag}-{i}"}]}
                conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=headers)
                resp = conn.getresponse()
                text = resp.read()
                if resp.status != 200:
                    failures.append(f"{resp.status} {text[:200]!r}")
                    return
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"requests failed: {failures[0]}")


def stored(db: Path) -> int:
    """Rows in the request log (each also its gateway span), read from outside the server (so
    the waiting costs it nothing)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    try:
        return conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]  # type: ignore[no-any-return]
    finally:
        conn.close()


def wait_stored(db: Path, rows: int, timeout: float = 900) -> None:
    """Until the request log holds `rows` rows: every queued record is written."""
    deadline = time.monotonic() + timeout
    while (found := stored(db)) != rows:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the writer stored {found} of {rows} rows in {timeout:.0f}s")
        time.sleep(0.5)


def dump(pid: int, label: str) -> None:
    subprocess.run(["callgrind_control", "--dump=" + label, str(pid)], check=True, capture_output=True, timeout=600)


def total_instructions(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {path}")


def measure(label: str, shown: str, name: str, extra: dict, args: argparse.Namespace, workdir: Path,
            fake_port: int) -> dict:
    """Instructions per request of one gateway. With recording on, requests go in bursts of one
    batch and each burst waits until the writers have stored it, so the measured window holds
    exactly the writes of its own requests."""
    out = workdir / f"{label}.callgrind"
    launcher, wait_ready = gw.gateway_launcher, gw.wait_ready
    gw.gateway_launcher = lambda: ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *launcher()]
    gw.wait_ready = lambda proc, port, path, timeout=0: wait_ready(proc, port, path, timeout=900)
    try:
        started = time.monotonic()
        side = gw.start_side(name, workdir, fake_port, label, extra)
    finally:
        gw.gateway_launcher, gw.wait_ready = launcher, wait_ready
    try:
        print(f"  {label}: ready after {time.monotonic() - started:.0f} s under valgrind", file=sys.stderr, flush=True)
        db = workdir / f"{label}-data" / "aistrata.db"
        recording = extra.get("observe", {}).get("enabled", True)
        # start_side's two check requests wait in a part-filled batch: the warm-up completes it.
        drive(side.port, side.token, args.warmup - 2, args.concurrency, "warm")
        sent = args.warmup
        if recording:
            wait_stored(db, sent)
        dump(side.proc.popen.pid, "warm")
        before = set(workdir.glob(f"{label}.callgrind.*"))
        for burst in range(args.requests // BATCH):
            drive(side.port, side.token, BATCH, args.concurrency, f"run{burst}")
            sent += BATCH
            if recording:
                wait_stored(db, sent)
        dump(side.proc.popen.pid, "measured")
        [measured] = set(workdir.glob(f"{label}.callgrind.*")) - before
    finally:
        gw.stop(side.proc)
    per = total_instructions(measured) / args.requests
    print(f"  {label}: {per / 1e3:,.0f} k instructions per request", file=sys.stderr, flush=True)
    return {"side": shown, "gateway": name, "extra": extra, "instructions_per_request": per}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default=",".join(PAIRS))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    if args.requests % BATCH or args.warmup % BATCH or not (args.requests and args.warmup):
        ap.error(f"--requests and --warmup must be positive multiples of {BATCH} (the writers' batch)")
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        ap.error("needs valgrind (apt-get install valgrind)")
    workdir = Path(tempfile.mkdtemp(prefix="aistrata-instructions-"))
    print(f"workdir {workdir}", file=sys.stderr)
    fake_port = gw.free_port()
    fake = gw.spawn("fake_upstream", [gw.PYTHON, "-m", "aistrata.testing.fake_upstream", "--host", gw.HOST,
                                      "--port", str(fake_port)], gw.LOAD_CPU, workdir, gw.main_env())
    results = {}
    try:
        gw.wait_ready(fake, fake_port, "/v1/models", timeout=30)
        for pair in args.pairs.split(","):
            print(f"== {pair}", file=sys.stderr, flush=True)
            base, other = (measure(f"{pair}-{end}", *side, args, workdir, fake_port)
                           for end, side in zip(("base", "other"), PAIRS[pair]))
            ratio = other["instructions_per_request"] / base["instructions_per_request"]
            results[pair] = {"base": base, "other": other, "ratio": ratio, "goal": GOALS[pair]}
    finally:
        gw.stop(fake)
    meta = {"date": dt.date.today().isoformat(), "requests": args.requests, "warmup": args.warmup,
            "concurrency": args.concurrency, "workdir": str(workdir), **gw.machine()}
    out = gw.RESULTS / f"instructions-{meta['date']}.json"
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = [f"### Instructions per request (callgrind), {meta['date']}", "",
             "| pair | base | k instr/request | other | k instr/request | other / base | goal, as CPU |",
             "|---|---|---:|---|---:|---:|---:|"]
    for pair, r in results.items():
        b, o = r["base"], r["other"]
        lines.append(f"| {pair} | {b['side']} | {b['instructions_per_request'] / 1e3:,.0f} | "
                     f"{o['side']} | {o['instructions_per_request'] / 1e3:,.0f} | {r['ratio']:.3f} | "
                     f"≤ {r['goal']:.3f} |")
    print("\n".join(lines))
    print(f"\nwrote {out.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
