"""Secrets and API keys: provider-specific token shapes, private key blocks, JWTs, and
high-entropy strings.

Known shapes come first (they are precise). The entropy rule catches the rest with the
thresholds detect-secrets uses (Shannon entropy > 4.5 bits/char for base64-like tokens),
tightened to need upper case, lower case and digits, so long words and paths do not trip
it; hex strings count only next to a word like `key`, `secret` or `token`, because a bare
40-hex string is far more often a commit hash than a credential.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable

from .base import SpanCheck

_KNOWN = [
    ("AWS_ACCESS_KEY", r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    ("AWS_SECRET_KEY", r"(?i:aws_?secret(?:_access)?_?key[\"']?\s*[:=]\s*[\"']?)([A-Za-z0-9/+]{40})\b"),
    ("GITHUB_TOKEN", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),
    ("GITHUB_TOKEN", r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b"),
    ("GITLAB_TOKEN", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    ("SLACK_TOKEN", r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    ("SLACK_WEBHOOK", r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"),
    ("STRIPE_KEY", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b"),
    ("GOOGLE_API_KEY", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("ANTHROPIC_KEY", r"\bsk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{20,}"),
    ("OPENAI_KEY", r"\bsk-(?:proj-|svcacct-|admin-)?(?!ant-)[A-Za-z0-9_-]{20,}"),
    ("TWILIO_KEY", r"\b(?:SK|AC)[0-9a-f]{32}\b"),
    ("SENDGRID_KEY", r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}\b"),
    ("NPM_TOKEN", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("PYPI_TOKEN", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
    ("PRIVATE_KEY", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    ("JWT", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("PASSWORD", r"(?i:\b(?:password|passwd|pwd)\s*[:=]\s*)([^\s'\"]{6,})"),
]
_PATTERNS = [(label, re.compile(p)) for label, p in _KNOWN]
_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{24,}")
_HEX = re.compile(r"(?i:(?:key|secret|token|passw\w*|credential|auth)\w*[\"']?\s*[:=]?\s*[\"']?)([0-9a-fA-F]{32,})\b")
# A private key block that has begun but not ended yet: a stream filter holds text from here.
PRIVATE_KEY_START = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY")
PRIVATE_KEY_BLOCK = next(p for label, p in _PATTERNS if label == "PRIVATE_KEY")


def entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _high_entropy(token: str) -> bool:
    core = token.strip("=-_")
    if len(core) < 24 or not (re.search(r"[a-z]", core) and re.search(r"[A-Z]", core) and re.search(r"\d", core)):
        return False
    return entropy(core) > 4.5


class SecretsCheck(SpanCheck):
    name, label = "secrets", "SECRET"

    def __init__(self, entropy_tokens: bool = True) -> None:
        self.entropy_tokens = entropy_tokens

    def labelled(self, text: str) -> Iterable[tuple[str, int, int]]:
        taken: list[tuple[int, int]] = []
        for label, pattern in _PATTERNS:
            for m in pattern.finditer(text):
                span = m.span(1) if pattern.groups else m.span()
                taken.append(span)
                yield label, *span
        for m in _HEX.finditer(text):
            yield "SECRET", *m.span(1)
        if self.entropy_tokens:
            for m in _TOKEN.finditer(text):
                if not any(s <= m.start() < e for s, e in taken) and _high_entropy(m.group()):
                    yield "SECRET", m.start(), m.end()
