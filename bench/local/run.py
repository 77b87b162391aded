"""Local models through the `local` dialect, as the gateway runs them (worker process, pipes).

    .venv/bin/python bench/local/run.py [--threads 2] [--runs 3] [--max-tokens 128]

Chat (SmolLM2-135M-Instruct): worker load time, time to first token (request sent -> first delta
received, pipes included), decode tokens/s (tokens after the first / time after the first) and the
worker's RSS (current and peak). Embeddings (wordllama, MiniLM-L6 int8): sentences/s over 512
sentences sent as requests of 32. Best and median over `--runs`. Other jobs may share the CPU, so
treat the figures as lower bounds. Prints a Markdown table; writes bench/results/local-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from aistrata.core import ChatRequest, EmbeddingRequest, Message, TextDelta, TextPart, UsageReport
from aistrata.providers.base import Deployment
from aistrata.providers.http import HttpClient
from aistrata.providers.local import DEFAULT_CHAT, LocalDialect

HTTP = HttpClient()  # required by the Dialect protocol; the local dialect never uses it
RESULTS = Path(__file__).resolve().parent.parent / "results"
PROMPT = "Write a long story about a dragon who learns to bake bread in a small mountain village."
WORDS = ["the", "gateway", "routes", "every", "model", "call", "through", "one", "fast", "layer", "that", "limits",
         "records", "and", "translates", "requests", "for", "teams", "who", "run", "many", "providers", "at", "once",
         "while", "keeping", "costs", "visible"]


def deployment(model: str) -> Deployment:
    return Deployment(id=model, group=model, provider="local", dialect="local", model=model, api_base="local://")


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def sentences(n: int) -> list[str]:
    # ~18 distinct words each, varied by rotation so no two sentences are equal.
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(18)) + f" ({i})." for i in range(n)]


async def bench_chat(dialect: LocalDialect, runs: int, max_tokens: int) -> dict[str, Any]:
    dep = deployment(DEFAULT_CHAT)
    ttft, decode = [], []
    usage = None
    for run in range(runs + 1):  # the first run starts the worker: its load is reported separately
        # A different first word each run: llama.cpp would otherwise reuse the whole cached prompt.
        text = f"{WORDS[run % len(WORDS)].capitalize()}: {PROMPT}"
        req = ChatRequest(model=DEFAULT_CHAT, messages=[Message("user", [TextPart(text)])], max_tokens=max_tokens,
                          temperature=0)
        sent = time.perf_counter()
        first = last = 0.0
        async for ev in dialect.stream(HTTP, req, dep):
            if isinstance(ev, TextDelta):
                last = time.perf_counter()
                first = first or last
            elif isinstance(ev, UsageReport):
                usage = ev.usage
        assert usage is not None and usage.output_tokens > 1
        ttft.append(first - sent)
        decode.append((usage.output_tokens - 1) / (last - first))
    assert usage is not None
    [worker] = dialect.pool(dep, "chat").workers
    rss, peak = rss_mib(worker.pid)
    return {
        "model": DEFAULT_CHAT, "load_s": worker.load_s, "prompt_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens, "cold_ttft_s": ttft[0],
        "ttft_s": {"best": min(ttft[1:]), "median": statistics.median(ttft[1:])},
        "decode_tok_s": {"best": max(decode[1:]), "median": statistics.median(decode[1:])},
        "rss_mib": rss, "peak_rss_mib": peak,
    }


async def bench_embed(dialect: LocalDialect, model: str, runs: int, batch: int = 32, total: int = 512) -> dict[str, Any]:
    dep = deployment(model)
    texts = sentences(total)
    started = time.perf_counter()
    dim = len((await dialect.embed(HTTP, EmbeddingRequest(model=model, inputs=texts[:1]), dep)).vectors[0])
    cold_s = time.perf_counter() - started
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for i in range(0, total, batch):
            await dialect.embed(HTTP, EmbeddingRequest(model=model, inputs=texts[i:i + batch]), dep)
        rates.append(total / (time.perf_counter() - t0))
    [worker] = dialect.pool(dep, "embedding").workers
    rss, peak = rss_mib(worker.pid)
    return {"model": model, "dim": dim, "load_s": worker.load_s, "cold_first_call_s": cold_s, "batch": batch,
            "sentences_per_s": {"best": max(rates), "median": statistics.median(rates)}, "rss_mib": rss,
            "peak_rss_mib": peak}


def report(chat: dict[str, Any], embeds: list[dict[str, Any]], threads: int) -> str:
    lines = [
        (f"### Chat: `local/{chat['model']}` ({threads} threads, prompt {chat['prompt_tokens']} tokens, "
         f"{chat['output_tokens']} generated)"), "",
        "| load | cold TTFT | TTFT best / median | decode tok/s best / median | worker RSS (peak) |",
        "|---|---|---|---|---|",
        (f"| {chat['load_s']:.2f} s | {chat['cold_ttft_s'] * 1000:.0f} ms "
         f"| {chat['ttft_s']['best'] * 1000:.0f} / {chat['ttft_s']['median'] * 1000:.0f} ms "
         f"| {chat['decode_tok_s']['best']:.1f} / {chat['decode_tok_s']['median']:.1f} "
         f"| {chat['rss_mib']:.0f} MiB ({chat['peak_rss_mib']:.0f}) |"), "",
        f"### Embeddings (requests of {embeds[0]['batch']} sentences, ~18 words each)", "",
        "| model | dim | load | sentences/s best / median | worker RSS (peak) |", "|---|---|---|---|---|",
    ]
    for e in embeds:
        lines.append(f"| `local/{e['model']}` | {e['dim']} | {e['load_s']:.2f} s | {e['sentences_per_s']['best']:.0f} / "
                     f"{e['sentences_per_s']['median']:.0f} | {e['rss_mib']:.0f} MiB ({e['peak_rss_mib']:.0f}) |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    dialect = LocalDialect(n_threads=args.threads)
    try:
        chat = await bench_chat(dialect, args.runs, args.max_tokens)
        embeds = [await bench_embed(dialect, m, args.runs) for m in ("wordllama", "minilm-l6")]
    finally:
        await dialect.aclose()
    print(report(chat, embeds, args.threads))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"local-{dt.date.today().isoformat()}.json"
    out.write_text(json.dumps({"date": dt.datetime.now().isoformat(timespec="seconds"), "threads": args.threads,
                               "runs": args.runs, "python": platform.python_version(), "chat": chat,
                               "embeddings": embeds}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
