"""A character n-gram TF-IDF + logistic-regression injection classifier.

Training needs scikit-learn (`train`); the trained model is saved as plain JSON (n-gram ->
idf and weight, plus the intercept) and scored here without scikit-learn or pickles, so a
model file can never run code and does not break when scikit-learn changes versions. The
featuriser is shared with training, which keeps the two numerically identical.

Char n-grams (3-5, inside word boundaries) tolerate misspellings and inflections that
word features miss; the text is normalised (see `normalise`) before scoring.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

NGRAMS = (3, 5)
MAX_CHARS = 4000  # long prompts are scored on their head and tail: that is where attacks sit
_WS = re.compile(r"\s\s+")


def ngrams(text: str) -> list[str]:
    """scikit-learn's `char_wb` analyser over lower-cased text, clipped to MAX_CHARS."""
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS // 2] + " " + text[-MAX_CHARS // 2:]
    out: list[str] = []
    lo, hi = NGRAMS
    for word in _WS.sub(" ", text.lower()).split():
        w = f" {word} "
        for n in range(lo, hi + 1):
            if len(w) < n:
                out.append(w)
                break
            out.extend(w[i:i + n] for i in range(len(w) - n + 1))
    return out


@dataclass(slots=True)
class Model:
    weights: dict[str, tuple[float, float]]  # n-gram -> (idf, coefficient)
    intercept: float
    meta: dict[str, Any]

    def probability(self, text: str) -> float:
        counts = Counter(g for g in ngrams(text) if g in self.weights)
        if not counts:
            return 1 / (1 + math.exp(-self.intercept))
        norm_sq = dot = 0.0
        for gram, tf in counts.items():
            idf, coef = self.weights[gram]
            v = (1 + math.log(tf)) * idf  # sublinear tf
            norm_sq += v * v
            dot += v * coef
        z = dot / math.sqrt(norm_sq) + self.intercept
        return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"format": "aistrata-char-tfidf-lr/1", "ngrams": list(NGRAMS), "intercept": self.intercept,
                "meta": self.meta, "weights": {g: [round(i, 6), round(c, 6)] for g, (i, c) in self.weights.items()}}
        path.write_text(json.dumps(body, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> Model:
        path = Path(path)
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        body = json.loads(raw)
        if body.get("format") != "aistrata-char-tfidf-lr/1" or tuple(body.get("ngrams", ())) != NGRAMS:
            raise ValueError(f"{path} is not an injection classifier of this version")
        weights = {g: (float(i), float(c)) for g, (i, c) in body["weights"].items()}
        return cls(weights, float(body["intercept"]), dict(body.get("meta") or {}))


def train(texts: Sequence[str], labels: Sequence[int], max_features: int = 40000, c: float = 4.0,
          meta: dict[str, Any] | None = None) -> Model:
    """Fit on (already normalised) texts; labels are 1 for an attack, 0 for benign."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectoriser = TfidfVectorizer(analyzer=ngrams, sublinear_tf=True, max_features=max_features, min_df=2)
    x = vectoriser.fit_transform(texts)
    lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    lr.fit(x, labels)
    coef = lr.coef_[0]
    # Every feature is kept, even near-zero weights: each one still counts in the l2 norm.
    weights = {gram: (float(vectoriser.idf_[j]), float(coef[j])) for gram, j in vectoriser.vocabulary_.items()}
    info = {"samples": len(texts), "attacks": int(sum(labels)), "features": len(weights), **(meta or {})}
    return Model(weights, float(lr.intercept_[0]), info)
