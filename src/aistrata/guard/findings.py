"""What every detector returns, and how findings are masked.

A `Finding` is one hit of one check. A span finding (`start < end`) can be masked: the
text between the offsets is replaced by `<LABEL>`. A finding without a span judges the
whole text (an injection score, an off-topic answer) and can only block or flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True, frozen=True)
class Finding:
    check: str
    label: str               # the mask token's name: EMAIL, CREDIT_CARD, ...
    start: int = 0
    end: int = 0             # start == end: the finding is about the whole text
    score: float = 1.0

    @property
    def has_span(self) -> bool:
        return self.end > self.start


@dataclass(slots=True)
class Env:
    """What a check may need besides the text: the request and this request's canary."""

    request: Any = None
    canary: str | None = None


class Check(Protocol):
    """One detector. `heavy` checks run in a worker thread; `maskable` ones return spans."""

    name: str
    heavy: bool
    maskable: bool

    def scan(self, text: str, env: Env) -> list[Finding]: ...


def mask(text: str, findings: list[Finding]) -> str:
    """`text` with every span replaced by `<LABEL>`; overlapping spans merge (first label wins)."""
    spans = sorted((f for f in findings if f.has_span), key=lambda f: (f.start, -f.end))
    out: list[str] = []
    pos = 0
    for f in spans:
        if f.end <= pos:
            continue  # inside a span already masked
        if f.start >= pos:
            out.append(text[pos:f.start])
            out.append(f"<{f.label}>")
        pos = f.end
    out.append(text[pos:])
    return "".join(out)
