"""Every dialect adapter: the streamed answer, reassembled, agrees with the whole answer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aistrata.core import ChatRequest, Message, StreamAccumulator, TextPart, ToolSpec
from aistrata.providers.base import Deployment, Secret
from aistrata.providers.http import HttpClient
from aistrata.providers.registry import load_registry
from aistrata.testing.fake_upstream import FakeUpstream

DIALECTS = {
    "openai_chat": ("/v1", "gpt-4o-mini"),
    "azure_openai": ("", "my-gpt"),
    "anthropic_messages": ("", "claude-sonnet-4-5"),
    "gemini": ("", "gemini-2.5-flash"),
    "ollama": ("", "llama3.2"),
}
WEATHER = ToolSpec("get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}},
                                              "required": ["city"]})


@pytest.mark.parametrize("dialect_name", DIALECTS)
@pytest.mark.parametrize("prompt", ["Tell me something", "What is the weather in Paris?"])
async def test_stream_agrees_with_whole(upstream: FakeUpstream, dialect_name: str, prompt: str) -> None:
    suffix, model = DIALECTS[dialect_name]
    dep = Deployment(id="d", group="g", provider="p", dialect=dialect_name, model=model,
                     api_base=upstream.url + suffix, api_key=Secret("k"), api_version="2024-10-21")
    dialect = load_registry().dialect(dialect_name)
    http = HttpClient()
    req = ChatRequest(model="g", messages=[Message("user", [TextPart(prompt)])], tools=[WEATHER])
    try:
        whole = await dialect.chat(http, req, dep)
        acc = StreamAccumulator()
        async for event in dialect.stream(http, replace(req, stream=True), dep):
            acc.add(event)
    finally:
        await http.close()
    streamed = acc.response()
    w, s = whole.choices[0], streamed.choices[0]
    assert s.message.text == w.message.text
    assert [(c.name, c.arguments) for c in s.message.tool_calls] == [(c.name, c.arguments) for c in w.message.tool_calls]
    assert s.finish_reason == w.finish_reason
    assert (streamed.usage.input_tokens, streamed.usage.output_tokens) == (whole.usage.input_tokens, whole.usage.output_tokens)

