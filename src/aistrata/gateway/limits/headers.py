"""OpenAI's `x-ratelimit-*` response headers, from the tightest limit a request met."""

from __future__ import annotations

from functools import lru_cache


class RateReport:
    """Collects (limit, remaining, reset) per dimension; the headers show, for requests and for
    tokens each, the limit with the least room left."""

    __slots__ = ("tightest",)

    def __init__(self) -> None:
        # (remaining, limit, reset_s) of the tightest limit seen, for requests and for tokens
        self.tightest: list[tuple[int, int, float] | None] = [None, None]

    def note(self, dimension: str, limit: int, remaining: int, reset_s: float) -> None:
        group = dimension != "requests"  # every other dimension counts tokens
        seen = self.tightest[group]
        if remaining < 0:
            remaining = 0
        if seen is None or remaining < seen[0]:
            self.tightest[group] = (remaining, limit, reset_s if reset_s > 0 else 0.0)

    def headers(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for (limit, remaining, reset), seen in zip(NAMES, self.tightest):
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
