"""OpenAI's `x-ratelimit-*` response headers, from the tightest limit a request met."""

from __future__ import annotations

from dataclasses import dataclass


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
        seen = Tightest(limit, max(0, remaining), max(0.0, reset_s))
        if dimension == "requests":
            if self._requests is None or seen.remaining < self._requests.remaining:
                self._requests = seen
        elif self._tokens is None or seen.remaining < self._tokens.remaining:
            self._tokens = seen

    def headers(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for name, seen in (("requests", self._requests), ("tokens", self._tokens)):
            if seen is not None:
                out += [
                    (f"x-ratelimit-limit-{name}".encode(), str(seen.limit).encode()),
                    (f"x-ratelimit-remaining-{name}".encode(), str(seen.remaining).encode()),
                    (f"x-ratelimit-reset-{name}".encode(), duration(seen.reset_s).encode()),
                ]
        return out


def duration(seconds: float) -> str:
    """OpenAI's spelling: `1.5s`, `6m0s`."""
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest}s"
