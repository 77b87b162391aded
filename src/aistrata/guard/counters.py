"""Process-wide guard counters, read by the metrics layer through `aistrata.guard.stats()`.

Plain dict increments under the GIL: guards run on the event loop and in worker threads,
and a lost update would only cost one count, but a lock keeps the numbers exact for tests.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

_lock = threading.Lock()
_decisions: dict[tuple[str, str, str, str], int] = defaultdict(int)  # (policy, check, action, where)
_runs: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])         # check -> [runs, seconds]


def count_decision(policy: str, check: str, action: str, where: str) -> None:
    with _lock:
        _decisions[(policy, check, action, where)] += 1


def count_run(check: str, seconds: float) -> None:
    with _lock:
        run = _runs[check]
        run[0] += 1
        run[1] += seconds


def stats() -> dict[str, Any]:
    """A snapshot: decisions by policy/check/action/where, and runs and time per check."""
    with _lock:
        return {
            "decisions": [{"policy": p, "check": c, "action": a, "where": w, "count": n}
                          for (p, c, a, w), n in sorted(_decisions.items())],
            "checks": {name: {"runs": int(r[0]), "seconds": round(r[1], 6)} for name, r in sorted(_runs.items())},
        }


def reset() -> None:
    with _lock:
        _decisions.clear()
        _runs.clear()
