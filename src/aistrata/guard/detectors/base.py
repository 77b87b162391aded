"""Shared shapes for detectors: span checks built from a candidate regex and a validator."""

from __future__ import annotations

import re
from typing import Callable, Iterable

from ..findings import Env, Finding


class SpanCheck:
    """A maskable check; subclasses yield `(start, end)` spans of what they found."""

    heavy = False
    maskable = True
    name = ""
    label = ""

    def spans(self, text: str) -> Iterable[tuple[int, int]]:
        raise NotImplementedError

    def labelled(self, text: str) -> Iterable[tuple[str, int, int]]:
        """(label, start, end) per hit; a check with several kinds overrides this."""
        for s, e in self.spans(text):
            yield self.label, s, e

    def scan(self, text: str, env: Env) -> list[Finding]:
        return [Finding(self.name, label, s, e) for label, s, e in self.labelled(text)]


class PatternCheck(SpanCheck):
    """Candidates from a regex, kept when `valid(match text)` says so (a checksum, a parse)."""

    def __init__(self, name: str, label: str, pattern: str | re.Pattern[str],
                 valid: Callable[[str], bool] | None = None, flags: int = 0) -> None:
        self.name, self.label = name, label
        self.pattern = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, flags)
        self.valid = valid

    def spans(self, text: str) -> Iterable[tuple[int, int]]:
        for m in self.pattern.finditer(text):
            group = 1 if m.re.groups else 0
            if self.valid is None or self.valid(m.group(group)):
                yield m.span(group)


class AnyOf(SpanCheck):
    """Several span checks reported under one check name (e.g. `national_id`)."""

    def __init__(self, name: str, parts: list[SpanCheck]) -> None:
        self.name = name
        self.parts = parts

    def scan(self, text: str, env: Env) -> list[Finding]:
        return [Finding(self.name, label, s, e) for p in self.parts for label, s, e in p.labelled(text)]


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())
