"""Offline token counting. Expected counts were checked against tiktoken 0.14 (with the BPE files
the litellm wheel ships) and OpenAI's cookbook; quicktok gave identical ids for every text here."""

from __future__ import annotations

import pytest

from aistrata.core import Message, TextPart
from aistrata.providers.tokens import count_tokens, encoding_name

from .conftest import needs

pytestmark = needs("quicktok")

TEXTS = {  # text: (cl100k_base, o200k_base)
    "hello world": (2, 2),
    "tiktoken is great!": (6, 6),
    "The quick brown fox jumps over the lazy dog.": (10, 10),
    "def f(x):\n    return x**2  # comment": (12, 12),
    "日本語のテキストも数えます。": (13, 11),
}

# OpenAI cookbook, "How to count tokens with tiktoken": 129 tokens for gpt-4/gpt-3.5, 124 for gpt-4o.
COOKBOOK = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more time to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
]


@pytest.mark.parametrize("text", list(TEXTS))
def test_exact_counts(text: str) -> None:
    cl100k, o200k = TEXTS[text]
    assert count_tokens("gpt-4", text) == (c := count_tokens("gpt-3.5-turbo", text))
    assert (c.count, c.exact, c.encoding) == (cl100k, True, "cl100k_base")
    o = count_tokens("openai/gpt-4o-mini", text)
    assert (o.count, o.exact, o.encoding) == (o200k, True, "o200k_base")


def test_chat_messages_follow_openai_overhead() -> None:
    assert count_tokens("gpt-4", COOKBOOK).count == 129
    assert count_tokens("gpt-4o", COOKBOOK).count == 124


def test_neutral_messages_count_like_wire_messages() -> None:
    neutral = [Message(m["role"], [TextPart(m["content"])], name=m.get("name")) for m in COOKBOOK]  # type: ignore[arg-type]
    assert count_tokens("gpt-4o", neutral) == count_tokens("gpt-4o", COOKBOOK)


def test_special_token_text_is_plain_text() -> None:
    assert count_tokens("gpt-4o", "<|endoftext|>").count > 1


@pytest.mark.parametrize(("model", "encoding"), [
    ("gpt-5-mini", "o200k_base"), ("o3-mini", "o200k_base"), ("o1", "o200k_base"), ("gpt-4.1-nano", "o200k_base"),
    ("azure/gpt-35-turbo", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"), ("text-embedding-3-small", "cl100k_base"),
    ("claude-sonnet-4-5", None), ("gemini-2.5-flash", None), ("omni-moderation", None),
])
def test_encoding_for_model(model: str, encoding: str | None) -> None:
    assert encoding_name(model) == encoding


def test_other_families_are_estimates() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    est = count_tokens("anthropic/claude-sonnet-4-5", text)
    assert est.exact is False and est.encoding is None
    assert 5 <= est.count <= 20
    assert count_tokens("claude-sonnet-4-5", COOKBOOK).exact is False
