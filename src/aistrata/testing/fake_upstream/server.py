"""`FakeUpstream`: the fake served by uvicorn in a background thread.

Binds 127.0.0.1 on an ephemeral port before starting, so ``.url`` is known at
once; ``start`` returns when uvicorn accepts connections. A thread-based
server suits both plain and pytest-asyncio tests (``with`` or ``async
with``), since the test's own event loop never has to run it.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from ..serving import ThreadedServer
from .app import FakeApp
from .faults import Faults


class FakeUpstream(ThreadedServer):
    """A running fake provider server; see the package docstring for routes and knobs."""

    def __init__(self, api_key: str | None = None, faults: Faults | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, max_requests: int = 1000) -> None:
        self.fake = FakeApp(api_key=api_key, faults=faults, max_requests=max_requests)
        super().__init__(self.fake, host=host, port=port)

    @property
    def faults(self) -> Faults:
        """The live knobs: mutate attributes to change the next requests."""
        return self.fake.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.fake.faults = value
        self.fake.failures.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Recorded requests, oldest first (see `app.FakeApp` for the record keys)."""
        return list(self.fake.requests)

    @property
    def last_request(self) -> dict[str, Any]:
        return self.fake.requests[-1]

    def reset(self) -> None:
        self.fake.reset()

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self

    async def __aenter__(self) -> FakeUpstream:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)
