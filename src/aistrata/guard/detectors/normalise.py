"""Deterministic text normalisation before any injection rule or classifier runs.

Character-injection attacks (zero-width joiners, bidi overrides, Unicode tag characters,
variation selectors, homoglyphs, full-width or mathematical letters) defeat ML detectors
with 70-100% success in published tests, so they are undone here first. Encoded payloads
(base64, hex, rot13, URL-encoding) are decoded and returned as extra variants to re-scan.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote

_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2060-\u2064"
                        "\u206a-\u206f\u3164\ufeff\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
# Letters from Cyrillic, Greek and Armenian that render like Latin ones.
_HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ӏ": "l", "ɡ": "g", "ο": "o", "α": "a",
    "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "օ": "o",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "Ι": "I", "Ο": "O", "Α": "A", "Β": "B", "Ε": "E", "Κ": "K", "Ν": "N", "Τ": "T", "Υ": "Y",
    "Ζ": "Z", "Η": "H", "Μ": "M", "Ρ": "P", "Χ": "X",
})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEXRUN = re.compile(r"\b(?:[0-9a-fA-F]{2}[ :]?){10,}\b")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_SPACED = re.compile(r"\b(?:\w[ .\-_*]){4,}\w\b")


@dataclass(slots=True)
class Normalised:
    text: str                                           # cleaned, NFKC, homoglyphs folded, lower case
    variants: list[str] = field(default_factory=list)   # decoded payloads and hidden text, to re-scan
    hidden: bool = False                                # invisible or tag characters were present


def _printable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(c.isalpha() or c.isspace() for c in text)
    return text if len(text) >= 8 and letters / len(text) > 0.8 else None


def _decode_b64(token: str) -> str | None:
    padded = token + "=" * (-len(token) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable(raw)


def _decode_hex(run: str) -> str | None:
    try:
        return _printable(bytes.fromhex(re.sub(r"[ :]", "", run)))
    except ValueError:
        return None


def clean(text: str) -> tuple[str, list[str], bool]:
    """(visible text folded to plain letters, text hidden in tag characters, hidden?)."""
    hidden_tags = ["".join(chr(ord(c) - 0xE0000) for c in m.group()) for m in _TAGS.finditer(text)]
    stripped = _TAGS.sub("", _BIDI.sub("", _INVISIBLE.sub("", text)))
    hidden = bool(hidden_tags) or len(stripped) != len(text)
    folded = unicodedata.normalize("NFKC", stripped).translate(_HOMOGLYPHS)
    return folded, [t for t in hidden_tags if t.strip()], hidden


def normalise(text: str, depth: int = 2) -> Normalised:
    folded, hidden_texts, hidden = clean(text)
    out = Normalised(folded.casefold(), [h.casefold() for h in hidden_texts], hidden)
    # Spelled-out words ("i g n o r e") and leetspeak ("1gn0r3") as extra variants.
    if _SPACED.search(folded):
        out.variants.append(_SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group()), folded).casefold())
    leet = out.text.translate(_LEET)
    if leet != out.text:
        out.variants.append(leet)
    if depth > 0:
        decoded = [d for d in (_decode_b64(m.group()) for m in _B64.finditer(folded)) if d]
        decoded += [d for d in (_decode_hex(m.group()) for m in _HEXRUN.finditer(folded)) if d]
        if len(_PCT.findall(folded)) >= 3:
            decoded.append(unquote(folded))
        for payload in decoded:
            inner = normalise(payload, depth - 1)
            out.variants += [inner.text, *inner.variants]
            out.hidden = out.hidden or inner.hidden
    # rot13 is tried on the whole text: rules only match if the decoding produced real words.
    out.variants.append(codecs.decode(out.text, "rot13"))
    return out
