"""CPU per request of the gateway's stages and of recording, in process, without HTTP.

The HTTP benches (`run.py`, `../observe/run.py`) give the figures the goals are checked on;
this one says where the time goes. It builds the real services from a config, replaces the
dispatcher by a canned answer (no upstream, no sockets) and times, with `time.process_time`:

* stages: `Gateway.chat` + `finish` with per-key limits, a budget and the exact cache, minus
  the same gateway built without that config (as `run.py`'s gateway-key); `--only limits,budgets,cache` picks
  stages, `--concurrency N` interleaves N requests (the dispatcher yields once, as a call does),
  `--evict-kib N` copies N KiB between requests, so each one starts with caches as cold as a
  server's other work (HTTP, JSON, the upstream call) leaves them;
* recording: `finish` (the record with its gateway span's fields, and observers: metrics) on
  the request path, and the request log's writer drain into SQLite (each row is also its
  request's gateway span), per request, in batches of 500.

* with `--redis URL`: the wall time per request of limits and a budget kept in Redis, one
  request at a time, where the round trips to Redis, not the CPU, are the cost.

Each figure is the best of three runs. `--profile [LINES]` prints a cProfile of the stages.

    .venv/bin/python bench/gateway/cpu.py [--requests 20000] [--only limits,budgets,cache]
                                          [--concurrency 1] [--evict-kib 0] [--profile [30]]
                                          [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from aistrata.core import ChatResponse, Choice, Message, TextPart, Usage  # noqa: E402
from aistrata.core.ids import new_id  # noqa: E402
from aistrata.gateway.config import load_settings  # noqa: E402
from aistrata.gateway.context import RequestContext  # noqa: E402
from aistrata.gateway.pipeline import Gateway  # noqa: E402
from aistrata.interface.app import Services, build_services  # noqa: E402
from aistrata.interface.dialects.openai import parse_chat  # noqa: E402
from aistrata.providers.registry import load_registry  # noqa: E402

MODEL = "bench-model"
STAGES = {  # as `run.py`'s gateway-stages: never reached, every request a cache miss
    "limits": [{"scope": "key", "requests_per_minute": 10**9, "tokens_per_minute": 10**12}],
    "budgets": [{"scope": "key", "max_usd": 10**9, "period": "daily"}],
    "cache": {"enabled": True, "backend": "memory"},
}
PRICE = {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}
BATCH = 500  # the recorder's batch


class Canned:
    """The dispatcher, minus the upstream: picks the deployment and answers at once."""

    def __init__(self, router: Any, yields: bool) -> None:
        self.router = router
        self.yields = yields

    async def chat(self, req: Any, ctx: RequestContext) -> ChatResponse:
        if self.yields:
            await asyncio.sleep(0)
        ctx.deployment, ctx.attempts = self.router.resolve(req.model)[0], 1
        answer = Message("assistant", [TextPart("Hello! How can I help you today?")])
        return ChatResponse(id="chatcmpl-1", model=MODEL, choices=[Choice(0, answer, "stop")], usage=Usage(9, 9),
                            created=1)


class NoRecording:
    def record(self, ctx: RequestContext) -> None:
        return None


def services(stages: dict[str, Any], workdir: Path) -> Services:
    model = {"model_name": MODEL, "model_info": PRICE,
             "litellm_params": {"model": f"openai/{MODEL}", "api_base": "http://127.0.0.1:9/v1", "api_key": "k"}}
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(json.dumps({"model_list": [model], **stages}))  # JSON is YAML
    return build_services(load_settings(load_registry(), path, workdir / "data"), load_registry())


async def requests(gateway: Gateway, principal: Any, n: int, concurrency: int, offset: int = 0,
                   evict: bytearray | None = None) -> float:
    """CPU µs per request of n requests through `gateway`, `concurrency` at a time; `evict` is
    copied after each one (the copy costs the same with and without stages, so it cancels)."""
    async def one(i: int) -> None:
        req = parse_chat({"model": MODEL, "messages": [{"role": "user", "content": f"Say hello {offset + i}"}]})
        ctx = RequestContext(new_id("req_"), "openai", "chat", principal)
        await gateway.chat(req, ctx)
        gateway.finish(ctx, 200)
        if evict:
            bytes(evict)

    start = time.process_time()
    if concurrency == 1:  # awaited in line: a task per request would cost more than the stages
        for i in range(n):
            await one(i)
    else:
        for i in range(0, n, concurrency):
            await asyncio.gather(*(one(i + k) for k in range(concurrency)))
    return (time.process_time() - start) / n * 1e6


async def stage_cost(args: argparse.Namespace, workdir: Path) -> None:
    svc = services({k: v for k, v in STAGES.items() if k in args.only}, workdir / "stages")
    raw, _ = svc.keys.create(alias="bench")
    principal = await svc.authn.authenticate(raw)
    dispatcher = Canned(svc.router, yields=args.concurrency > 1)
    staged = svc.gateway
    staged.dispatcher, staged.recorder = dispatcher, NoRecording()
    # The same build without the stages' config, as `run.py`'s gateway-key: its kill switches and
    # the limit and budget stages (which find nothing to apply) run, as they do in the server.
    bare = services({}, workdir / "bare").gateway
    bare.dispatcher, bare.recorder = dispatcher, NoRecording()
    for gw in (bare, staged):
        await requests(gw, principal, 2000, args.concurrency)  # warm-up
    evict = bytearray(args.evict_kib << 10) if args.evict_kib else None
    best = {"bare": [], "stages": []}
    for r in range(3):
        for name, gw in (("bare", bare), ("stages", staged)):
            best[name].append(await requests(gw, principal, args.requests, args.concurrency, (r + 1) * args.requests,
                                             evict))
    b, s = min(best["bare"]), min(best["stages"])
    print(f"stages ({', '.join(args.only)}; concurrency {args.concurrency}; {args.evict_kib} KiB evicted between "
          f"requests): gateway without stages {b:.1f} µs, "
          f"with {s:.1f} µs: the stages cost {s - b:.1f} µs CPU per request")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        await requests(staged, principal, args.requests, args.concurrency, 9 * args.requests)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)


async def recording_cost(args: argparse.Namespace, workdir: Path) -> None:
    svc = services({}, workdir / "recording")
    raw, _ = svc.keys.create(alias="bench")
    principal = await svc.authn.authenticate(raw)
    gw = svc.gateway
    gw.dispatcher = Canned(svc.router, yields=False)
    writers = {"request log": svc.recorder}  # not started: drained here
    runs = []
    for r in range(4):  # the first warms up
        hot = 0.0
        drained = dict.fromkeys(writers, 0.0)
        for b in range(args.requests // BATCH):
            for i in range(BATCH):
                req = parse_chat({"model": MODEL, "messages": [{"role": "user", "content": f"Say hi {r}-{b}-{i}"}]})
                ctx = RequestContext(new_id("req_"), "openai", "chat", principal)
                await gw.chat(req, ctx)
                start = time.process_time()
                gw.finish(ctx, 200)
                hot += time.process_time() - start
            for name, recorder in writers.items():
                start = time.process_time()
                recorder._drain(final=False)
                drained[name] += time.process_time() - start
        runs.append((hot, drained))
    n = args.requests
    hot, drained = min(runs[1:], key=lambda run: run[0] + sum(run[1].values()))
    total = hot + sum(drained.values())
    print(f"recording: {total / n * 1e6:.1f} µs CPU per request = request path {hot / n * 1e6:.1f} + writers "
          + " + ".join(f"{d / n * 1e6:.1f} ({name})" for name, d in drained.items()))


async def redis_wall(args: argparse.Namespace, workdir: Path) -> None:
    os.environ["AISTRATA_REDIS_URL"] = args.redis
    svc = services({k: v for k, v in STAGES.items() if k != "cache"}, workdir / "redis")
    raw, _ = svc.keys.create(alias="bench")
    principal = await svc.authn.authenticate(raw)
    gw = svc.gateway
    gw.dispatcher, gw.recorder = Canned(svc.router, yields=False), NoRecording()
    n = min(args.requests, 3000)
    runs = []
    for r in range(4):  # the first warms up
        start = time.perf_counter()
        for i in range(n):
            req = parse_chat({"model": MODEL, "messages": [{"role": "user", "content": f"Say hello {r}-{i}"}]})
            await gw.chat(req, RequestContext(new_id("req_"), "openai", "chat", principal))
        runs.append((time.perf_counter() - start) / n * 1e6)
    print(f"limits and a budget in Redis ({args.redis}): {min(runs[1:]):.0f} µs wall time per request, one at a time")
    await svc.state.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--only", default=",".join(STAGES), help="stages to turn on: " + ",".join(STAGES))
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--evict-kib", type=int, default=0, help="KiB copied between requests (cold caches)")
    ap.add_argument("--profile", type=int, nargs="?", const=30, default=0, metavar="LINES",
                    help="print a cProfile of the stages, its LINES costliest functions (30)")
    ap.add_argument("--skip-recording", action="store_true")
    ap.add_argument("--redis", help="also time limits and a budget kept in this Redis")
    args = ap.parse_args()
    args.only = [s for s in args.only.split(",") if s]
    workdir = Path(tempfile.mkdtemp(prefix="aistrata-cpu-bench-"))
    asyncio.run(stage_cost(args, workdir))
    if not args.skip_recording:
        asyncio.run(recording_cost(args, workdir))
    if args.redis:
        asyncio.run(redis_wall(args, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
