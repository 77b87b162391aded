"""The gateway side of the local workers: one `WorkerProcess` per subprocess, and a `ModelPool` per
model that bounds concurrency and the queue in front of it.

The event loop only ever awaits pipe I/O here; all inference happens in the subprocesses. A worker
that dies (killed, crashed, out of memory) fails its in-flight request with `upstream_unavailable`
and is replaced by a fresh one on the next request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, AsyncIterator

import orjson

from ...core import ErrorKind, GatewayError
from .catalogue import ModelSpec, PoolLimits

log = logging.getLogger("aistrata.local")

START_TIMEOUT = 120.0
PIPE_LIMIT = 256 << 20  # one line holds a whole embeddings batch


class WorkerProcess:
    """One worker subprocess and the demultiplexer of its replies by request id."""

    def __init__(self, spec: ModelSpec, proc: asyncio.subprocess.Process, load_s: float) -> None:
        self.spec = spec
        self.proc = proc
        self.load_s = load_s
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._exit_message = ""
        self._reader = asyncio.create_task(self._read_loop())

    @classmethod
    async def start(cls, spec: ModelSpec, timeout: float = START_TIMEOUT) -> WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aistrata.providers.local.worker", orjson.dumps(spec.to_json()).decode(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=PIPE_LIMIT,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            hello = orjson.loads(line) if line else {"type": "fatal", "message": f"exited with {await proc.wait()}"}
        except (TimeoutError, orjson.JSONDecodeError) as exc:
            hello = {"type": "fatal", "message": f"no ready signal ({type(exc).__name__})"}
        if hello.get("type") != "ready":
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise GatewayError(ErrorKind.upstream_unavailable,
                               f"local model {spec.name!r} failed to load: {hello.get('message')}", provider="local")
        log.info("local worker pid %d loaded %s in %.2fs", proc.pid, spec.name, hello["load_s"])
        return cls(spec, proc, float(hello["load_s"]))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self._reader.done()

    async def _read_loop(self) -> None:
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                msg = orjson.loads(line)
                q = self._pending.get(msg.get("id"))
                if q is not None:  # replies to cancelled requests are dropped
                    q.put_nowait(msg)
        except (ValueError, orjson.JSONDecodeError) as exc:  # an over-long or garbled line: stop trusting it
            log.error("local worker %d sent a bad line: %s", self.pid, exc)
            self.proc.kill()
        code = await self.proc.wait()
        self._exit_message = f"local model worker (pid {self.pid}) exited with code {code}"
        log.log(logging.INFO if code == 0 else logging.WARNING, "%s", self._exit_message)
        for q in self._pending.values():
            q.put_nowait({"type": "exit"})

    async def request(self, msg: dict[str, Any], timeout: float) -> AsyncGenerator[dict[str, Any], None]:
        """Send one request; yield its replies up to and including the final one. Closing the
        iterator early cancels the request in the worker."""
        if not self.alive:
            raise GatewayError(ErrorKind.upstream_unavailable, "local model worker is not running", provider="local")
        rid = next(self._ids)
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending[rid] = q
        finished = False
        try:
            await self._write({**msg, "id": rid})
            while True:
                try:
                    reply = await asyncio.wait_for(q.get(), timeout)
                except TimeoutError:
                    self.proc.kill()  # a stuck worker holds its slot forever; replace it
                    raise GatewayError(ErrorKind.timeout, f"local model {self.spec.name!r} timed out",
                                       provider="local") from None
                kind = reply.get("type")
                if kind == "exit":
                    raise GatewayError(ErrorKind.upstream_unavailable, self._exit_message, provider="local")
                if kind == "error":
                    raise GatewayError(ErrorKind(reply["kind"]), reply["message"], provider="local")
                finished = kind != "delta"
                yield reply
                if finished:
                    return
        finally:
            del self._pending[rid]
            if not finished and self.alive:
                await self._write({"op": "cancel", "id": rid}, quiet=True)

    async def _write(self, msg: dict[str, Any], quiet: bool = False) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(orjson.dumps(msg) + b"\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            if not quiet:
                raise GatewayError(ErrorKind.upstream_unavailable, "local model worker is gone",
                                   provider="local") from exc

    async def close(self, grace: float = 3.0) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # end of input: the worker finishes and exits
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
        await self._reader


class ModelPool:
    """Up to `concurrency` workers of one model, each running one request at a time; at most
    `max_queue` requests wait for a free worker, the rest are refused with `rate_limit`."""

    def __init__(self, spec: ModelSpec, limits: PoolLimits) -> None:
        self.spec = spec
        self.limits = limits
        self._slots: asyncio.Queue[WorkerProcess | None] = asyncio.Queue()
        for _ in range(limits.concurrency):
            self._slots.put_nowait(None)  # a slot whose worker starts on first use
        self._workers: set[WorkerProcess] = set()
        self._waiting = 0
        self._avg_s = 1.0  # moving average of a request's time in a worker, for retry_after

    @property
    def workers(self) -> list[WorkerProcess]:
        return [w for w in self._workers if w.alive]

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[WorkerProcess]:
        if self._slots.empty() and self._waiting >= self.limits.max_queue:
            retry = max(1.0, round(self._avg_s * (self._waiting + 1) / self.limits.concurrency, 1))
            raise GatewayError(ErrorKind.rate_limit, f"local model {self.spec.name!r} is busy: "
                               f"{self._waiting} requests already queued", retry_after=retry, provider="local")
        self._waiting += 1
        try:
            worker = await self._slots.get()
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            if worker is None or not worker.alive:
                if worker is not None:
                    self._workers.discard(worker)
                worker = None
                worker = await WorkerProcess.start(self.spec)
                self._workers.add(worker)
            yield worker
        finally:
            self._avg_s = 0.8 * self._avg_s + 0.2 * (loop.time() - started)
            self._slots.put_nowait(worker)

    async def close(self) -> None:
        await asyncio.gather(*(w.close() for w in self._workers), return_exceptions=True)
        self._workers.clear()
