"""OpenAI's `x-ratelimit-*` response headers, from the tightest limit a request met."""

from __future__ import annotations

from functools import lru_cache


class RateReport:
    """Collects (limit, remaining, reset) per dimension; the headers show, for requests and for
    tokens each, the limit with the least room left."""

    __slots__ = ("_requests", "_tokens")

    def __init__(self) -> None:
        # (remaining, limit, reset_s) of the tightest limit seen; a tuple is the cheapest record
        self._requests: tuple[int, int, float] | None = None
        self._tokens: tuple[int, int, float] | None = None

    def note(self, dimension: str, limit: int, remaining: int, reset_s: float) -> None:
        seen = (max(0, remaining), limit, max(0.0, reset_s))
        if dimension == "requests":
            if self._requests is None or seen[0] < self._requests[0]:
                self._requests = seen
        elif self._tokens is None or seen[0] < self._tokens[0]:
            self._tokens = seen

    def headers(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for (limit, remaining, reset), seen in zip(NAMES, (self._requests, self._tokens)):
            if seen is not None:
                out += ((limit, b"%d" % seen[1]), (remaining, b"%d" % seen[0]), (reset, duration(seen[2])))
        return out


NAMES = tuple(tuple(f"x-ratelimit-{part}-{name}".encode() for part in ("limit", "remaining", "reset"))
              for name in ("requests", "tokens"))


@lru_cache(maxsize=1024)  # mostly the window's length, on every request
def duration(seconds: float) -> bytes:
    """OpenAI's spelling: `1.5s`, `6m0s`."""
    if seconds < 60:
        return f"{seconds:.3g}s".encode()
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest}s".encode()
