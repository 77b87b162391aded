"""The local model worker: `python -m aistrata.providers.local.worker '<spec json>'`.

One process per loaded model instance. It speaks line-delimited JSON over its pipes:

    parent -> worker   {"id": 7, "op": "chat", "messages": [...], "stream": true, "max_tokens": 16, ...}
                       {"id": 8, "op": "embed", "inputs": [...], "dimensions": null}
                       {"id": 7, "op": "cancel"}
    worker -> parent   {"type": "ready", "pid": 123, "load_s": 0.2}            (once, after loading)
                       {"type": "fatal", "message": "..."}                    (loading failed; exits 1)
                       {"id": 7, "type": "delta", "text": "Hel"}
                       {"id": 7, "type": "done", "finish": "stop", "usage": {"input": 30, "output": 2}, ...}
                       {"id": 8, "type": "vectors", "vectors": [[...]], "tokens": 12}
                       {"id": 9, "type": "error", "kind": "bad_request", "message": "..."}

Requests run one at a time, in arrival order; a reader thread keeps listening so a `cancel` can
stop a generation between tokens. End of stdin (the gateway exited) ends the worker.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from typing import IO, Any, Callable

import orjson

from .catalogue import ModelSpec
from .engines import Engine, UnsupportedOperation, load


def _error_kind(exc: Exception) -> str:
    text = str(exc)
    if "context window" in text:
        return "context_length"
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return "bad_request"
    return "internal"


def _reader(stdin: IO[bytes], inbox: queue.Queue[dict[str, Any] | None], cancelled: set[int]) -> None:
    for line in stdin:
        msg = orjson.loads(line)
        if msg.get("op") == "cancel":
            cancelled.add(msg["id"])
        else:
            inbox.put(msg)
    inbox.put(None)


def _handle(engine: Engine, msg: dict[str, Any], send: Callable[[dict[str, Any]], None], cancelled: set[int]) -> None:
    rid = msg["id"]
    try:
        if msg["op"] == "chat":
            done = engine.chat(msg, lambda m: send({"id": rid, **m}), lambda: rid in cancelled)
            send({"id": rid, **done})
        elif msg["op"] == "embed":
            vectors, tokens = engine.embed(msg["inputs"], msg.get("dimensions"))
            send({"id": rid, "type": "vectors", "vectors": vectors, "tokens": tokens})
        else:
            raise UnsupportedOperation(f"unknown op {msg['op']!r}")
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the waiting request
        send({"id": rid, "type": "error", "kind": _error_kind(exc), "message": str(exc) or type(exc).__name__})
    finally:
        cancelled.discard(rid)


def main(argv: list[str]) -> int:
    spec = ModelSpec.from_json(orjson.loads(argv[1]))
    # Keep stdout for the protocol only: whatever C libraries print goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    lock = threading.Lock()

    def send(msg: dict[str, Any]) -> None:
        data = orjson.dumps(msg, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        with lock:
            out.write(data)
            out.flush()

    started = time.perf_counter()
    try:
        engine = load(spec)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it to the client
        send({"type": "fatal", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    send({"type": "ready", "pid": os.getpid(), "load_s": time.perf_counter() - started})

    inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
    cancelled: set[int] = set()
    threading.Thread(target=_reader, args=(sys.stdin.buffer, inbox, cancelled), daemon=True).start()
    while (msg := inbox.get()) is not None:
        if msg["id"] in cancelled:  # cancelled while still queued
            cancelled.discard(msg["id"])
            continue
        _handle(engine, msg, send, cancelled)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
