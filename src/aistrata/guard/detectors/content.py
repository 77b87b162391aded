"""Content checks: deny-listed words, topics and categories (phrase lists), and offensive
language (`alt-profanity-check`, a linear model over TF-IDF shipped inside its wheel).

Phrase lists match whole words, case-insensitively, on NFKC-folded text with invisible
characters removed, so `b\u200bomb` still matches `bomb`. Words and categories return spans
(maskable); a topic judges the whole message.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Iterable, Mapping

from ..findings import Env, Finding
from .normalise import clean

# Small built-in categories; configuration extends or replaces them (`categories:` option).
CATEGORIES: dict[str, list[str]] = {
    "violence": ["kill you", "murder", "behead", "massacre", "shoot up", "stab you", "beat you to death"],
    "self_harm": ["kill myself", "suicide", "self-harm", "self harm", "cut myself", "end my life"],
    "weapons": ["pipe bomb", "build a bomb", "make a bomb", "nerve agent", "ghost gun", "untraceable gun", "napalm"],
    "drugs": ["cook meth", "methamphetamine", "synthesize fentanyl", "buy cocaine", "heroin"],
    "sexual": ["porn", "nude", "nsfw", "sexting", "explicit sex"],
    "gambling": ["online casino", "sports betting", "place a bet", "slot machine"],
}


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({p.strip() for p in phrases if p and p.strip()}, key=len, reverse=True)
    if not words:
        return None
    body = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in words)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


def _visible(text: str) -> tuple[str, bool]:
    """NFKC-folded text, and whether offsets still match the original (then spans can mask)."""
    folded = clean(text)[0]
    return folded, len(folded) == len(text)


class PhraseCheck:
    """Named groups of phrases; one finding per hit, labelled with the group's name."""

    heavy = False

    def __init__(self, name: str, groups: Mapping[str, Iterable[str]], maskable: bool = True) -> None:
        self.name = name
        self.maskable = maskable
        self.patterns = {group: p for group, words in groups.items() if (p := _phrase_pattern(words)) is not None}

    def scan(self, text: str, env: Env) -> list[Finding]:
        folded, aligned = _visible(text)
        out = []
        for group, pattern in self.patterns.items():
            for m in pattern.finditer(folded):
                # When folding moved offsets the hit still counts, over the whole text.
                span = m.span() if aligned and self.maskable else (0, 0)
                out.append(Finding(self.name, group.upper(), *span))
        return out


def words(options: Mapping[str, Any]) -> PhraseCheck:
    return PhraseCheck("words", {"word": options.get("words") or []})


def topics(options: Mapping[str, Any]) -> PhraseCheck:
    return PhraseCheck("topics", dict(options.get("topics") or {}), maskable=False)


def categories(options: Mapping[str, Any]) -> PhraseCheck:
    chosen = options.get("categories") or list(CATEGORIES)
    groups: dict[str, list[str]] = {}
    for item in chosen:
        if isinstance(item, Mapping):  # {name: [phrases]} adds a category of one's own
            groups.update({str(k): list(v) for k, v in item.items()})
        elif item in CATEGORIES:
            groups[item] = CATEGORIES[item]
        else:
            raise ValueError(f"unknown content category {item!r} (known: {', '.join(CATEGORIES)})")
    return PhraseCheck("categories", groups)


class OffensiveCheck:
    """Offensive-language probability from alt-profanity-check; loaded on first use."""

    name = "offensive"
    heavy = True
    maskable = False
    _lock = threading.Lock()

    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = threshold

    def probability(self, text: str) -> float:
        with self._lock:  # the first import loads the joblib model (about a second)
            from profanity_check import predict_prob
        return float(predict_prob([clean(text)[0]])[0])

    def scan(self, text: str, env: Env) -> list[Finding]:
        p = self.probability(text)
        return [Finding(self.name, "OFFENSIVE", score=p)] if p >= self.threshold else []
