"""OpenAI's `x-ratelimit-*` response headers, from the tightest limit a request met."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(slots=True)
class Tightest:
    limit: int
    remaining: int
    reset_s: float


class RateReport:
    """Collects (limit, remaining, reset) per dimension; the headers show, for requests and for
    tokens each, the limit with the least room left."""

    def __init__(self) -> None:
        self._requests: Tightest | None = None
        self._tokens: Tightest | None = None

    def note(self, dimension: str, limit: int, remaining: int, reset_s: float) -> None:
        remaining = max(0, remaining)
        if dimension == "requests":
            if self._requests is None or remaining < self._requests.remaining:
                self._requests = Tightest(limit, remaining, max(0.0, reset_s))
        elif self._tokens is None or remaining < self._tokens.remaining:
            self._tokens = Tightest(limit, remaining, max(0.0, reset_s))

    def headers(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for (limit, remaining, reset), seen in zip(NAMES, (self._requests, self._tokens)):
            if seen is not None:
                out += [(limit, b"%d" % seen.limit), (remaining, b"%d" % seen.remaining),
                        (reset, duration(seen.reset_s).encode())]
        return out


NAMES = tuple(tuple(f"x-ratelimit-{part}-{name}".encode() for part in ("limit", "remaining", "reset"))
              for name in ("requests", "tokens"))


@lru_cache(maxsize=1024)  # mostly the window's length, on every request
def duration(seconds: float) -> str:
    """OpenAI's spelling: `1.5s`, `6m0s`."""
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest}s"
