"""Load benchmark: fake upstream directly, through the AI Strata gateway, and through LiteLLM.

Method
------
* One fake upstream (``aistrata.testing.fake_upstream``) runs for the whole run,
  pinned to core 1 together with the load generator (``wrk``, also ``taskset -c 1``).
* The targets run one after another, each pinned to core 0 with one worker:
    - ``fake``    -- wrk hits the fake upstream directly (the baseline),
    - ``gateway`` -- ``python -m aistrata.interface.cli serve`` in front of the fake,
    - ``gateway-key`` -- the same gateway called with a virtual key (per-key stages need one)
      and a model_info price for ``bench-model``, as every model in the price table has one
      (so both sides of the stage cost price their requests for the request log alike),
    - ``gateway-stages`` -- ``gateway-key`` with its stages on: per-key limits (requests and
      tokens per minute, never reached), a per-key budget (the price lets the worst-case
      reservation and the settlement run) and the exact cache (in memory),
    - ``litellm`` -- LiteLLM 1.110.2 (``bench/gateway/peer.py``, its own venv) in front of the fake.
  Both proxies route model ``bench-model`` to the fake, so the same wrk script hits all of them.
  Every request's prompt ends in a counter unique to the wrk run and thread, so a cache, when
  on, misses every time (its lookup and its store both run). Streams are not cached.
* For each target: time from spawn to ready (first 200 on ``/ready`` for the gateway,
  ``/health/liveliness`` for LiteLLM), idle RSS (1 s after ready, before any request),
  one whole and one streamed request checked for a sane body, then for each mode
  (whole, streamed) and concurrency (1, 16, 64) a short warm-up and a measured wrk run.
* Per measured run: requests/s and p50/p99 latency (from a wrk Lua ``done()`` that prints
  JSON), errors (socket errors + non-2xx/3xx), and CPU ms per request = delta of
  utime+stime over the target's process tree (``/proc/<pid>/stat``, children found through
  ``/proc/<pid>/task/*/children``) divided by the requests wrk completed.
  "Added latency" = target p50/p99 minus the fake-direct p50/p99 at the same mode and
  concurrency (for streams, latency is to the end of the stream). RSS after load = VmRSS
  summed over the process tree. "core use" = target CPU seconds / wall seconds; "fake core
  use" is the same for the fake upstream, which shares core 1 with wrk -- when the target's
  core use is well under 1, core 1 (fake + wrk), not the target, is the limit.
* Ratios are gateway / LiteLLM, checked against the targets from the issue:
  throughput >= 20x (whole and streamed, peak over concurrencies), added p50 at c=1
  <= 1/15 (whole and streamed), idle RSS <= 1/3, gateway ready within 1.5 s.
* Stage cost: gateway-stages / gateway-key (the same caller, so only the stages differ) at
  each mode and concurrency, throughput and CPU ms/request, each checked against "within
  15%" (rps ratio >= 0.85, CPU ratio <= 1.15). These two are measured again as a PAIR: both
  gateways run side by side (both on core 0, only one loaded at a time) and wrk alternates
  between them for `--rounds` rounds (which goes first alternates from round to round); the
  ratio is the median of the per-round ratios. On a shared VM a machine's speed drifts by tens
  of percent within minutes, which one run after the other would book as a difference between
  the targets; alternating cancels the drift.

Results go to ``bench/results/gateway-<date>[-quick].json``; a Markdown report goes to stdout.

    python bench/gateway/run.py [--quick] [--duration 10] [--rounds 5]
                                [--only fake,gateway,gateway-key,gateway-stages,litellm]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
MAIN_PY = REPO / ".venv" / "bin" / "python"
PYTHON = str(MAIN_PY if MAIN_PY.exists() else Path(sys.executable))
HOST = "127.0.0.1"
MODEL = "bench-model"
TARGET_CPU = "0"     # the proxy under test
LOAD_CPU = "1"       # fake upstream + wrk
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

TARGETS = ("fake", "gateway", "gateway-key", "gateway-stages", "litellm")
GATEWAYS = ("gateway", "gateway-key", "gateway-stages")
GOALS = {"rps_ratio_min": 20.0, "added_p50_c1_ratio_max": 1 / 15,
         "idle_rss_ratio_max": 1 / 3, "gateway_ready_s_max": 1.5, "stage_cost_max": 0.15}
BARE_TOKEN = "sk-bench"  # any token will do: the bare gateway runs open (loopback), LiteLLM without a key
# gateway-key and gateway-stages: $1/M tokens in and out; gateway-stages: limits and a budget far out of reach.
PRICE = {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}
STAGES = {
    "limits": [{"scope": "key", "requests_per_minute": 10**9, "tokens_per_minute": 10**12}],
    "budgets": [{"scope": "key", "max_usd": 10**9, "period": "daily"}],
    "cache": {"enabled": True, "backend": "memory"},
}

# The body is split around the prompt's end, where "<run salt>-<thread>-<n>" goes (a fresh
# prompt per request). The salt comes from the command line, so warm-up and measured runs differ.
WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local head, tail = '%(head)s', '%(tail)s'
local threads, salt, n = 0, "", 0

setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

init = function(args)
  salt = args[1] or ""
end

request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. " " .. salt .. "-" .. tid .. "-" .. n .. tail)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%.1f,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


# ---------------------------------------------------------------- processes and /proc

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """All descendants of pid, from /proc/<pid>/task/*/children."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            kids = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            out += [kid] + children(kid)
    return out


def tree(pid: int) -> list[int]:
    return [pid] + children(pid)


def cpu_seconds(pid: int) -> float:
    """utime+stime of pid and its live descendants (plus reaped children's cutime+cstime)."""
    total = 0
    for p in tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # fields from #3 (state) on
        total += sum(int(x) for x in fields[11:15])    # utime stime cutime cstime
    return total / CLK_TCK


def rss_mib(pid: int) -> float:
    """VmRSS summed over the process tree, MiB."""
    kib = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
        except OSError:
            continue
    return kib / 1024


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    started: float
    log: Path
    ready_s: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid


def main_env() -> dict:
    """Environment for main-venv processes: the repo's src/ importable even without an install."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    return env


def spawn(name: str, cmd: list[str], cpu: str, workdir: Path, env: dict | None = None) -> Proc:
    log = workdir / f"{name}.log"
    with open(log, "wb") as fh:
        started = time.monotonic()
        popen = subprocess.Popen(["taskset", "-c", cpu, *cmd], cwd=workdir, env=env,
                                 stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Proc(name, popen, started, log)


def stop(proc: Proc) -> None:
    """SIGTERM the process and its descendants by PID; SIGKILL whatever is left after 10 s."""
    pids = tree(proc.pid)
    send(pids, signal.SIGTERM)
    try:
        proc.popen.wait(10)
    except subprocess.TimeoutExpired:
        pass
    send([p for p in pids if Path(f"/proc/{p}").exists()], signal.SIGKILL)
    proc.popen.wait()


def send(pids: list[int], sig: int) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------- HTTP helpers

def request(method: str, port: int, path: str, body: dict | None = None, timeout: float = 30,
            token: str = BARE_TOKEN):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def wait_ready(proc: Proc, port: int, path: str, timeout: float = 120) -> float:
    """Seconds from spawn to the first 200 on path."""
    while time.monotonic() - proc.started < timeout:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{tail(proc.log)}")
        try:
            if request("GET", port, path, timeout=0.5)[0] == 200:
                return time.monotonic() - proc.started
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{proc.name} not ready on {path} after {timeout}s:\n{tail(proc.log)}")


PROMPT = "Say hello"


def chat_body(stream: bool) -> dict:
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
    return body


def check_replies(port: int, token: str) -> None:
    """One whole and one streamed completion; raise unless both look like OpenAI replies."""
    status, text = request("POST", port, "/v1/chat/completions", chat_body(False), token=token)
    if status != 200 or '"choices"' not in text:
        raise RuntimeError(f"whole reply: {status} {text[:300]}")
    status, text = request("POST", port, "/v1/chat/completions", chat_body(True), token=token)
    if status != 200 or "data: [DONE]" not in text:
        raise RuntimeError(f"streamed reply: {status} {text[:300]}")


# ---------------------------------------------------------------- load generation

def wrk_script(workdir: Path, name: str, stream: bool, token: str) -> Path:
    path = workdir / f"{name}-{'stream' if stream else 'whole'}.lua"
    body = json.dumps(chat_body(stream))
    head, tail = body.split(PROMPT + '"', 1)
    path.write_text(WRK_LUA % {"token": token, "head": head + PROMPT, "tail": '"' + tail})
    return path


def run_wrk(port: int, script: Path, conns: int, seconds: float) -> dict:
    threads = 2 if conns >= 64 else 1
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(script), f"http://{HOST}:{port}/v1/chat/completions",
           "--", str(time.time_ns())]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"wrk printed no result (rc {out.returncode}):\n{out.stdout}\n{out.stderr}")


def measure(port: int, script: Path, conns: int, seconds: float, pid: int, fake_pid: int) -> dict:
    """One measured wrk run; CPU deltas of the target (pid) and of the fake upstream."""
    cpu0 = cpu_seconds(pid)
    fake0 = cpu_seconds(fake_pid)
    t0 = time.monotonic()
    w = run_wrk(port, script, conns, seconds)
    wall = time.monotonic() - t0
    n = w["requests"]
    errors = w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"]
    secs = w["duration_us"] / 1e6
    cpu = cpu_seconds(pid) - cpu0
    return {
        "requests": n, "rps": n / secs if secs else 0.0,
        "p50_ms": w["p50_us"] / 1000, "p99_ms": w["p99_us"] / 1000, "mean_ms": w["mean_us"] / 1000,
        "errors": errors, "error_detail": {k: w[k] for k in ("connect", "read", "write", "status", "timeout")},
        "cpu_ms_per_req": cpu * 1000 / n if n else None, "cpu_util": cpu / wall,
        "fake_cpu_util": (cpu_seconds(fake_pid) - fake0) / wall,
    }


# ---------------------------------------------------------------- targets

def gateway_config(workdir: Path, name: str, fake_port: int) -> Path:
    path = workdir / f"{name}.yaml"
    model = {"model_name": MODEL,
             "litellm_params": {"model": f"openai/{MODEL}",
                                "api_base": f"http://{HOST}:{fake_port}/v1", "api_key": "fake-key"}}
    config: dict = {"model_list": [model]}
    if name in ("gateway-key", "gateway-stages"):
        model["model_info"] = PRICE
    if name == "gateway-stages":
        config.update(STAGES)
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def virtual_key(port: int) -> str:
    """A fresh virtual key (the per-key limits and budget need a key to count against)."""
    status, text = request("POST", port, "/api/keys", {"alias": "bench"})
    if status != 201:
        raise RuntimeError(f"creating a key: {status} {text[:300]}")
    return json.loads(text)["key"]


def gateway_launcher() -> list[str]:
    return [PYTHON, "-m", "aistrata.interface.cli"]


def start_target(name: str, workdir: Path, fake_port: int) -> tuple[Proc, int, str]:
    port = free_port()
    if name in GATEWAYS:
        data = workdir / f"{name}-data"
        data.mkdir(exist_ok=True)
        cmd = [*gateway_launcher(), "serve", "--host", HOST, "--port", str(port),
               "--config", str(gateway_config(workdir, name, fake_port)), "--data-dir", str(data),
               "--log-level", "warning"]
        return spawn(name, cmd, TARGET_CPU, workdir, main_env()), port, "/ready"
    if name == "litellm":
        cfg = peer.write_config(workdir / "litellm.yaml", fake_port)
        return spawn(name, peer.command(cfg, port), TARGET_CPU, workdir, peer.env()), port, peer.HEALTH_PATH
    raise ValueError(name)


def bench_target(name: str, args, workdir: Path, fake: Proc, fake_port: int) -> dict:
    """Start (unless fake), measure start/idle, run the load matrix, stop."""
    result: dict = {"target": name, "runs": []}
    proc = None
    try:
        if name == "fake":  # already running (and idle) since the start of the run
            port, pid = fake_port, fake.pid
            result["ready_s"] = fake.ready_s
            result["idle_rss_mib"] = rss_mib(pid)
        else:
            proc, port, ready_path = start_target(name, workdir, fake_port)
            pid = proc.pid
            result["ready_s"] = wait_ready(proc, port, ready_path)
            time.sleep(1)
            result["idle_rss_mib"] = rss_mib(pid)
        token = virtual_key(port) if name in GATEWAYS[1:] else BARE_TOKEN
        t0 = time.monotonic()
        check_replies(port, token)
        result["first_replies_s"] = time.monotonic() - t0
        for stream in args.modes:
            script = wrk_script(workdir, name, stream, token)
            for conns in args.concurrency:
                run_wrk(port, script, conns, args.warmup)
                r = measure(port, script, conns, args.duration, pid, fake.pid)
                r.update(mode="stream" if stream else "whole", concurrency=conns)
                result["runs"].append(r)
                log_run(name, r)
        result["loaded_rss_mib"] = rss_mib(pid)
        check_replies(port, token)  # still answering sensibly after the load
    except Exception as exc:  # report and go on with the other targets
        result["failed"] = str(exc)
        print(f"\n!!! {name} FAILED: {exc}\n", file=sys.stderr)
    finally:
        if proc:
            stop(proc)
    return result


@dataclass
class Side:
    """One gateway of a pair, started and ready, with its wrk scripts."""
    name: str
    proc: Proc
    port: int
    scripts: dict = field(default_factory=dict)  # stream? -> wrk script
    token: str = ""  # its virtual key


def start_side(name: str, workdir: Path, fake_port: int, label: str | None = None, extra: dict | None = None) -> Side:
    """A gateway configured as target `name` (plus `extra` config) under its own label, data
    directory and virtual key, with whole and streamed wrk scripts."""
    label = label or f"{name}-paired"
    config = {**json.loads(gateway_config(workdir, name, fake_port).read_text()), **(extra or {})}
    path = workdir / f"{label}.yaml"
    path.write_text(json.dumps(config, indent=2))
    data = workdir / f"{label}-data"
    data.mkdir(exist_ok=True)
    port = free_port()
    proc = spawn(label, [*gateway_launcher(), "serve", "--host", HOST, "--port", str(port), "--config", str(path),
                         "--data-dir", str(data), "--log-level", "warning"], TARGET_CPU, workdir, main_env())
    try:
        wait_ready(proc, port, "/ready")
        token = virtual_key(port)
        check_replies(port, token)
    except BaseException:
        stop(proc)
        raise
    scripts = {stream: wrk_script(workdir, label, stream, token) for stream in (False, True)}
    return Side(label, proc, port, scripts, token)


def paired(base: Side, other: Side, args, fake: Proc) -> list[dict]:
    """For each mode and concurrency, `args.rounds` rounds of base and other (in turns, which goes
    first); per-round ratios other/base of requests/s and CPU ms/request, and their medians."""
    rows = []
    for stream, mode in zip(args.modes, args.mode_names):
        for conns in args.concurrency:
            for side in (base, other):
                run_wrk(side.port, side.scripts[stream], conns, args.warmup)
            rounds = []
            for i in range(args.rounds):
                # Odd rounds go other-first, so a drift within rounds biases half of them each way.
                first, second = (base, other) if i % 2 == 0 else (other, base)
                runs = {side.name: measure(side.port, side.scripts[stream], conns, args.duration, side.proc.pid, fake.pid)
                        for side in (first, second)}
                a, b = runs[base.name], runs[other.name]
                rounds.append({"base": a, "other": b, "rps_ratio": ratio(b["rps"], a["rps"]),
                               "cpu_ratio": ratio(b["cpu_ms_per_req"], a["cpu_ms_per_req"])})
            row = {"mode": mode, "concurrency": conns, "rounds": rounds,
                   "rps_base": statistics.median(r["base"]["rps"] for r in rounds),
                   "rps_other": statistics.median(r["other"]["rps"] for r in rounds),
                   "cpu_ms_base": statistics.median(r["base"]["cpu_ms_per_req"] for r in rounds),
                   "cpu_ms_other": statistics.median(r["other"]["cpu_ms_per_req"] for r in rounds),
                   "rps_ratio": statistics.median(r["rps_ratio"] for r in rounds),
                   "cpu_ratio": statistics.median(r["cpu_ratio"] for r in rounds),
                   "errors": sum(r["base"]["errors"] + r["other"]["errors"] for r in rounds)}
            each = ", ".join(f"{r['rps_ratio']:.3f}" for r in rounds)
            print(f"  {other.name} / {base.name} {mode:6} c={conns:<3} rps ratio {row['rps_ratio']:.3f} "
                  f"(rounds: {each}), CPU ratio {row['cpu_ratio']:.3f}", file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def log_run(name: str, r: dict) -> None:
    err = f"  !!! {r['errors']} ERRORS {r['error_detail']}" if r["errors"] else ""
    cpu = f" cpu {r['cpu_ms_per_req']:.2f} ms/req" if r.get("cpu_ms_per_req") else ""
    print(f"  {name:14} {r['mode']:6} c={r['concurrency']:<3} {r['rps']:9.1f} rps  "
          f"p50 {r['p50_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms{cpu}{err}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- analysis and report

def find(results: dict, target: str, mode: str, conns: int) -> dict | None:
    for r in results.get(target, {}).get("runs", []):
        if r["mode"] == mode and r["concurrency"] == conns:
            return r
    return None


def add_added_latency(results: dict) -> None:
    for target in (*GATEWAYS, "litellm"):
        for r in results.get(target, {}).get("runs", []):
            base = find(results, "fake", r["mode"], r["concurrency"])
            if base:
                r["added_p50_ms"] = r["p50_ms"] - base["p50_ms"]
                r["added_p99_ms"] = r["p99_ms"] - base["p99_ms"]


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def comparisons(results: dict, args) -> list[dict]:
    """gateway / LiteLLM for each metric, with the issue's goals where there is one."""
    rows = []
    g, l = results.get("gateway", {}), results.get("litellm", {})

    def row(metric, gv, lv, goal=None, ok=None):
        rows.append({"metric": metric, "gateway": gv, "litellm": lv, "ratio": ratio(gv, lv),
                     "goal": goal, "pass": ok})

    for mode in args.mode_names:
        peak = lambda t: max((r["rps"] for r in results.get(t, {}).get("runs", []) if r["mode"] == mode), default=None)
        gv, lv = peak("gateway"), peak("litellm")
        rr = ratio(gv, lv)
        row(f"peak rps, {mode}", gv, lv, ">= 20x", None if rr is None else rr >= GOALS["rps_ratio_min"])
        for conns in args.concurrency:
            gr, lr = find(results, "gateway", mode, conns), find(results, "litellm", mode, conns)
            get = lambda r, k: r.get(k) if r else None
            row(f"rps, {mode}, c={conns}", get(gr, "rps"), get(lr, "rps"))
            for k, label in (("added_p50_ms", "added p50 ms"), ("added_p99_ms", "added p99 ms")):
                gv, lv = get(gr, k), get(lr, k)
                goal = ok = None
                if k == "added_p50_ms" and conns == 1:
                    goal = "<= 1/15"
                    rr = ratio(gv, lv)
                    ok = None if rr is None else rr <= GOALS["added_p50_c1_ratio_max"]
                row(f"{label}, {mode}, c={conns}", gv, lv, goal, ok)
            row(f"CPU ms/req, {mode}, c={conns}", get(gr, "cpu_ms_per_req"), get(lr, "cpu_ms_per_req"))
    gv, lv = g.get("idle_rss_mib"), l.get("idle_rss_mib")
    rr = ratio(gv, lv)
    row("idle RSS MiB", gv, lv, "<= 1/3", None if rr is None else rr <= GOALS["idle_rss_ratio_max"])
    row("RSS after load MiB", g.get("loaded_rss_mib"), l.get("loaded_rss_mib"))
    gv = g.get("ready_s")
    row("start to ready s", gv, l.get("ready_s"), "gateway <= 1.5 s",
        None if gv is None else gv <= GOALS["gateway_ready_s_max"])
    return rows


def stage_costs(pairs: list[dict]) -> list[dict]:
    """gateway-stages / gateway-key per mode and concurrency (the paired rounds): what the stages cost."""
    limit = GOALS["stage_cost_max"]
    return [{"mode": p["mode"], "concurrency": p["concurrency"], "rounds": len(p["rounds"]),
             "rps_stages": p["rps_other"], "rps_bare": p["rps_base"], "rps_ratio": p["rps_ratio"],
             "rps_pass": p["rps_ratio"] >= 1 - limit, "cpu_ms_stages": p["cpu_ms_other"], "cpu_ms_bare": p["cpu_ms_base"],
             "cpu_ratio": p["cpu_ratio"], "cpu_pass": p["cpu_ratio"] <= 1 + limit, "errors": p["errors"]}
            for p in pairs]


def measure_stage_cost(args, workdir: Path, fake: Proc, fake_port: int) -> list[dict]:
    """gateway-key and gateway-stages side by side, alternating (see the module's docstring)."""
    sides: list[Side] = []
    try:
        sides = [start_side("gateway-key", workdir, fake_port), start_side("gateway-stages", workdir, fake_port)]
        return stage_costs(paired(sides[0], sides[1], args, fake))
    finally:
        for side in sides:
            stop(side.proc)


def fmt(v, digits=2) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "PASS" if v else "**FAIL**"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def failure_note(res: dict) -> str:
    lines = [l.strip() for l in res.get("failed", "").splitlines() if l.strip()]
    if not lines:
        return ""
    note = lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1]}"
    return "**FAILED**: " + note.replace("|", "\\|")[:300]


def markdown(results: dict, comps: list[dict], stages: list[dict], meta: dict) -> str:
    out = [f"### Gateway benchmark, {meta['date']}{' (quick)' if meta['quick'] else ''}", "",
           f"{meta['cpu']}, {meta['nproc']} cores; targets on core {TARGET_CPU}, fake upstream + wrk on core "
           f"{LOAD_CPU}; {meta['duration_s']} s per run after {meta['warmup_s']} s warm-up; LiteLLM {peer.VERSION}; "
           f"load average {meta['loadavg_start'][0]:.2f} at start, {meta['loadavg_end'][0]:.2f} at end.", ""]
    out += ["| target | mode | conc | rps | p50 ms | p99 ms | added p50 | added p99 | CPU ms/req | core use | fake core use | errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, res in results.items():
        for r in res.get("runs", []):
            errs = f"**{r['errors']}**" if r["errors"] else "0"
            out.append(f"| {name} | {r['mode']} | {r['concurrency']} | {r['rps']:.1f} | {r['p50_ms']:.2f} | "
                       f"{r['p99_ms']:.2f} | {fmt(r.get('added_p50_ms'))} | {fmt(r.get('added_p99_ms'))} | "
                       f"{fmt(r.get('cpu_ms_per_req'))} | {fmt(r.get('cpu_util'))} | {fmt(r.get('fake_cpu_util'))} | {errs} |")
    out += ["", "| target | start to ready s | idle RSS MiB | RSS after load MiB | note |", "|---|---:|---:|---:|---|"]
    for name, res in results.items():
        out.append(f"| {name} | {fmt(res.get('ready_s'))} | {fmt(res.get('idle_rss_mib'), 1)} | "
                   f"{fmt(res.get('loaded_rss_mib'), 1)} | {failure_note(res)} |")
    if any(c["gateway"] is not None and c["litellm"] is not None for c in comps):
        out += ["", "| metric | gateway | LiteLLM | gateway / LiteLLM | goal | result |", "|---|---:|---:|---:|---|---|"]
        for c in comps:
            out.append(f"| {c['metric']} | {fmt(c['gateway'])} | {fmt(c['litellm'])} | {fmt(c['ratio'], 3)} | "
                       f"{c['goal'] or ''} | {fmt(c['pass']) if c['pass'] is not None else ''} |")
    if stages:
        out += ["", "Stage cost: gateway-stages (limits, budget, cache: every request a miss) / gateway-key "
                f"(no stages, the same virtual key), side by side, {stages[0]['rounds']} alternating rounds, "
                "medians; goal: within 15%.", "",
                "| mode | conc | rps stages | rps no stages | rps ratio | result | CPU ms/req stages | CPU ms/req no stages | "
                "CPU ratio | result |", "|---|---:|---:|---:|---:|---|---:|---:|---:|---|"]
        for c in stages:
            out.append(f"| {c['mode']} | {c['concurrency']} | {c['rps_stages']:.1f} | {c['rps_bare']:.1f} | "
                       f"{fmt(c['rps_ratio'], 3)} | {fmt(c['rps_pass'])} | {fmt(c['cpu_ms_stages'])} | "
                       f"{fmt(c['cpu_ms_bare'])} | {fmt(c['cpu_ratio'], 3)} | {fmt(c['cpu_pass'])} |")
    total_errors = sum(r["errors"] for res in results.values() for r in res.get("runs", []))
    total_errors += sum(c["errors"] for c in stages)
    if total_errors:
        out += ["", f"**!!! {total_errors} request errors in this run — the figures above are not trustworthy.**"]
    return "\n".join(out)


def machine() -> dict:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()
    return {"cpu": cpu, "nproc": os.cpu_count(), "kernel": platform.release(), "loadavg_start": os.getloadavg(),
            "python": platform.python_version(), "wrk": wrk[0] if wrk else None}


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 s runs, c=1 and 16")
    ap.add_argument("--duration", type=float, default=None, help="seconds per measured run (default 10)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds of warm-up per run (default 3)")
    ap.add_argument("--only", default=",".join(TARGETS), help="comma list of " + ",".join(TARGETS))
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds of the stage-cost pair (default 5)")
    ap.add_argument("--fake-module", default="aistrata.testing.fake_upstream",
                    help="module run as the fake upstream (for testing the harness)")
    ap.add_argument("--no-install", action="store_true", help="do not create/refresh the LiteLLM venv")
    args = ap.parse_args()
    args.targets = [t for t in TARGETS if t in args.only.split(",")]
    args.duration = args.duration or (3 if args.quick else 10)
    args.warmup = args.warmup or (1 if args.quick else 3)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.concurrency = [1, 16] if args.quick else [1, 16, 64]
    args.modes = [False, True]
    args.mode_names = ["whole", "stream"]
    return args


def main() -> int:
    args = parse_args()
    if "litellm" in args.targets and not args.no_install:
        peer.install()
    workdir = Path(tempfile.mkdtemp(prefix="aistrata-bench-"))
    meta = {"date": dt.date.today().isoformat(), "quick": args.quick, "duration_s": args.duration,
            "warmup_s": args.warmup, "targets": args.targets,
            "litellm_packages": peer.installed_versions() if "litellm" in args.targets else None,
            "goals": GOALS, "workdir": str(workdir), **machine()}
    print(f"workdir {workdir}", file=sys.stderr)
    results: dict = {}
    stages: list[dict] = []
    fake_port = free_port()
    fake = spawn("fake_upstream", [PYTHON, "-m", args.fake_module, "--host", HOST, "--port", str(fake_port)],
                 LOAD_CPU, workdir, main_env())
    try:
        fake.ready_s = wait_ready(fake, fake_port, "/v1/models", timeout=30)
        time.sleep(1)
        for name in args.targets:
            print(f"== {name}", file=sys.stderr, flush=True)
            results[name] = bench_target(name, args, workdir, fake, fake_port)
        if {"gateway-key", "gateway-stages"} <= set(args.targets):
            print("== gateway-stages / gateway-key, side by side", file=sys.stderr, flush=True)
            stages = measure_stage_cost(args, workdir, fake, fake_port)
    finally:
        stop(fake)
    meta["loadavg_end"] = os.getloadavg()
    add_added_latency(results)
    comps = comparisons(results, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"gateway-{meta['date']}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps({"meta": meta, "results": results, "comparisons": comps, "stage_costs": stages},
                              indent=2) + "\n")
    print(markdown(results, comps, stages, meta))
    print(f"\nwrote {out.relative_to(REPO)}", file=sys.stderr)
    errors = sum(r["errors"] for res in results.values() for r in res.get("runs", [])) + sum(s["errors"] for s in stages)
    if errors:
        print(f"\n!!!!!!!! {errors} REQUEST ERRORS IN THIS RUN !!!!!!!!", file=sys.stderr)
    failed = [n for n, r in results.items() if r.get("failed")]
    return 2 if errors or failed else 0


if __name__ == "__main__":
    sys.exit(main())
