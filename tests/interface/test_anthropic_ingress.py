"""The real `anthropic` SDK against the gateway's `/v1/messages`, in front of every provider."""

from __future__ import annotations

import anthropic
import pytest

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import PROVIDER_GROUPS

GROUPS = list(PROVIDER_GROUPS)
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture()
def client(gateway: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="anything", max_retries=0)


@pytest.mark.parametrize("group", GROUPS)
def test_whole_message(client: anthropic.Anthropic, upstream: FakeUpstream, group: str) -> None:
    msg = client.messages.create(model=group, max_tokens=200, system="Be kind",
                                 messages=[{"role": "user", "content": "Say hello please"}])
    assert msg.type == "message" and msg.role == "assistant" and msg.model == group
    assert msg.id.startswith("msg_")
    assert msg.content[0].type == "text"
    assert msg.content[0].text.startswith(f"Hello from fake {PROVIDER_GROUPS[group][1]}.")
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens == 20


@pytest.mark.parametrize("group", GROUPS)
def test_stream_matches_whole(client: anthropic.Anthropic, upstream: FakeUpstream, group: str) -> None:
    messages = [{"role": "user", "content": "Stream this"}]
    whole = client.messages.create(model=group, max_tokens=200, messages=messages)
    with client.messages.stream(model=group, max_tokens=200, messages=messages) as stream:
        names = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == whole.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "content_block_start" in names and "content_block_stop" in names and "message_delta" in names


@pytest.mark.parametrize("group", GROUPS)
def test_tool_use_round_trip(client: anthropic.Anthropic, upstream: FakeUpstream, group: str) -> None:
    messages: list[dict] = [{"role": "user", "content": "What is the weather in Paris?"}]
    msg = client.messages.create(model=group, max_tokens=200, messages=messages, tools=[WEATHER])
    assert msg.stop_reason == "tool_use"
    use = next(b for b in msg.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21C"}]},
    ]
    answer = client.messages.create(model=group, max_tokens=200, messages=messages, tools=[WEATHER])
    assert "Sunny, 21C" in answer.content[0].text


@pytest.mark.parametrize("group", GROUPS)
def test_streamed_tool_use(client: anthropic.Anthropic, upstream: FakeUpstream, group: str) -> None:
    with client.messages.stream(model=group, max_tokens=200, tools=[WEATHER],
                                messages=[{"role": "user", "content": "weather in Paris?"}]) as stream:
        final = stream.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert final.stop_reason == "tool_use"
    assert use.name == "get_weather" and use.input == {"city": "Paris"}


def test_forced_tool_choice_reaches_openai(client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    client.messages.create(model="gpt", max_tokens=50, tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"},
                           messages=[{"role": "user", "content": "hi"}])
    sent = upstream.last_request["body"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["max_tokens"] == 50


def test_system_prompt_reaches_openai_as_system_message(client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    client.messages.create(model="gpt", max_tokens=50, system="You are terse.", messages=[{"role": "user", "content": "hi"}])
    assert upstream.last_request["body"]["messages"][0] == {"role": "system", "content": "You are terse."}


def test_cache_tokens_round_trip_through_anthropic(client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    upstream.faults.cached_tokens = 3
    msg = client.messages.create(model="claude", max_tokens=50, messages=[{"role": "user", "content": "hi there friend"}])
    reported = upstream.last_request["usage"]
    assert msg.usage.cache_read_input_tokens == 3
    assert msg.usage.input_tokens == reported["input_tokens"]
