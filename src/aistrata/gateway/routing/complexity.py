"""A fast local prompt-complexity classifier for `complexity-based` groups.

It reads the last user message (capped, so cost is bounded) and the conversation's length,
and scores five features, each scaled to 0..1 and weighted:

    length       0.20  estimated tokens in the conversation (saturates at 1,500)
    code         0.20  fenced code blocks, or code-looking lines
    reasoning    0.30  words such as prove, derive, analyse, optimise, trade-off, step by step
    constraints  0.15  requirement phrases (must, at least, without, ...) and list items
    questions    0.15  open questions (why, how, explain, compare) beyond the first

A score at or above the group's threshold goes to its `complex` group. Microseconds per
call, no model: the point is a cheap first cut, not a perfect judge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...core import ChatRequest, EmbeddingRequest

MAX_CHARS = 20_000
CHARS_PER_TOKEN = 4

_FENCE = re.compile(r"```")
_CODE_LINE = re.compile(r"^\s*(def |class |function |import |#include|SELECT |for \(|if \(|\w+\s*=\s*[\w\[{(\"'])",
                        re.MULTILINE)
_REASONING = re.compile(
    r"\b(prove|proof|derive|derivation|analy[sz]e|analysis|optimi[sz]e|trade-?offs?|step[- ]by[- ]step|"
    r"reason(?:ing)?|algorithm|complexity|architecture|design|theorem|formal(?:ly)?|rigorous|evaluate|"
    r"debug|refactor|concurrency|invariant|edge cases?|justify|implications?)\b",
    re.IGNORECASE,
)
_CONSTRAINT = re.compile(
    r"\b(must|should|at least|at most|no more than|without|ensure|exactly|only if|do not|don't|"
    r"required?|constraints?)\b|^\s*(?:[-*•]|\d+[.)])\s+",
    re.IGNORECASE | re.MULTILINE,
)
_OPEN_QUESTION = re.compile(r"\b(why|how|explain|compare|contrast|what if|in what way)\b", re.IGNORECASE)

WEIGHTS = {"length": 0.20, "code": 0.20, "reasoning": 0.30, "constraints": 0.15, "questions": 0.15}


@dataclass(frozen=True, slots=True)
class Complexity:
    score: float
    features: dict[str, float]


def _last_user_text(req: ChatRequest) -> str:
    for message in reversed(req.messages):
        if message.role == "user":
            return message.text[:MAX_CHARS]
    return ""


def _conversation_tokens(req: ChatRequest) -> int:
    return sum(len(m.text) for m in req.messages) // CHARS_PER_TOKEN


def classify(req: ChatRequest | EmbeddingRequest) -> Complexity:
    if not isinstance(req, ChatRequest):
        return Complexity(0.0, {})
    text = _last_user_text(req)
    fences = len(_FENCE.findall(text)) // 2
    features = {
        "length": min(1.0, _conversation_tokens(req) / 1500),
        "code": min(1.0, fences / 2 + len(_CODE_LINE.findall(text)) / 6),
        "reasoning": min(1.0, len(_REASONING.findall(text)) / 3),
        "constraints": min(1.0, len(_CONSTRAINT.findall(text)) / 5),
        "questions": min(1.0, max(0, len(_OPEN_QUESTION.findall(text)) - 1) / 2),
    }
    score = sum(WEIGHTS[k] * v for k, v in features.items())
    return Complexity(round(score, 3), {k: round(v, 3) for k, v in features.items()})
