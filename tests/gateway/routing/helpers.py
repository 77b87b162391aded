"""Builders shared by the routing tests."""

from __future__ import annotations

from typing import Any

from aistrata.core import ChatRequest, ImagePart, Message, TextPart, ToolSpec
from aistrata.providers.base import Deployment


def dep(id: str, group: str = "g", *, weight: float = 1.0, provider: str = "openai", model: str = "gpt-4o-mini",
        **info: Any) -> Deployment:
    return Deployment(id=id, group=group, provider=provider, dialect="openai_chat", model=model,
                      api_base="http://127.0.0.1:9/v1", weight=weight, info=info)


def chat(text: str = "hi", *, tools: bool = False, image: bool = False, max_tokens: int | None = None,
         **options: Any) -> ChatRequest:
    parts: list[Any] = [TextPart(text)]
    if image:
        parts.append(ImagePart("https://example.invalid/cat.png"))
    return ChatRequest(model="g", messages=[Message("user", parts)], max_tokens=max_tokens,
                       tools=[ToolSpec("get_weather")] if tools else None, options=dict(options))
