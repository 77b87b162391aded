"""The real `openai` SDK against the gateway, in front of every provider dialect."""

from __future__ import annotations

import json

import openai
import pytest

from aistrata.testing.fake_upstream import FakeUpstream
from aistrata.testing.gateway import GatewayServer
from tests.conftest import PROVIDER_GROUPS

GROUPS = list(PROVIDER_GROUPS)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture()
def client(gateway: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="anything", max_retries=0)


@pytest.mark.parametrize("group", GROUPS)
def test_whole_answer(client: openai.OpenAI, upstream: FakeUpstream, group: str) -> None:
    resp = client.chat.completions.create(model=group, messages=[{"role": "user", "content": "Say hello please"}])
    upstream_model = PROVIDER_GROUPS[group][1]
    assert resp.model == group
    assert resp.choices[0].message.content.startswith(f"Hello from fake {upstream_model}. You said: Say hello please")
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens == 20
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


@pytest.mark.parametrize("group", GROUPS)
def test_stream_agrees_with_whole(client: openai.OpenAI, upstream: FakeUpstream, group: str) -> None:
    messages = [{"role": "user", "content": "Stream this answer"}]
    whole = client.chat.completions.create(model=group, messages=messages)
    chunks = list(client.chat.completions.create(
        model=group, messages=messages, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (whole.usage.prompt_tokens, whole.usage.completion_tokens)
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("group", GROUPS)
def test_stream_without_include_usage_sends_no_usage(client: openai.OpenAI, upstream: FakeUpstream, group: str) -> None:
    chunks = list(client.chat.completions.create(model=group, messages=[{"role": "user", "content": "hi"}], stream=True))
    assert chunks and all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


@pytest.mark.parametrize("group", GROUPS)
def test_tool_call_round_trip(client: openai.OpenAI, upstream: FakeUpstream, group: str) -> None:
    messages: list[dict] = [{"role": "user", "content": "What is the weather in Paris?"}]
    resp = client.chat.completions.create(model=group, messages=messages, tools=[WEATHER])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21C"},
    ]
    answer = client.chat.completions.create(model=group, messages=messages, tools=[WEATHER])
    assert "Sunny, 21C" in answer.choices[0].message.content


@pytest.mark.parametrize("group", GROUPS)
def test_streamed_tool_call_accumulates(client: openai.OpenAI, upstream: FakeUpstream, group: str) -> None:
    with client.chat.completions.stream(
        model=group, messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER],
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}


@pytest.mark.parametrize("group", ["gpt", "claude", "gemini"])
def test_parallel_tool_calls(client: openai.OpenAI, upstream: FakeUpstream, group: str) -> None:
    upstream.faults.parallel_tools = True
    for stream in (False, True):
        if stream:
            with client.chat.completions.stream(model=group, messages=[{"role": "user", "content": "weather?"}],
                                                tools=[WEATHER]) as s:
                message = s.get_final_completion().choices[0].message
        else:
            message = client.chat.completions.create(model=group, messages=[{"role": "user", "content": "weather?"}],
                                                     tools=[WEATHER]).choices[0].message
        assert len(message.tool_calls) == 2
        assert len({c.id for c in message.tool_calls}) == 2


@pytest.mark.parametrize("group", GROUPS)
def test_json_schema_response_format(client: openai.OpenAI, upstream: FakeUpstream, group: str) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    resp = client.chat.completions.create(
        model=group, messages=[{"role": "user", "content": "Invent a person"}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}},
    )
    data = json.loads(resp.choices[0].message.content)
    assert set(data) >= {"name", "age"} and isinstance(data["age"], int)


@pytest.mark.parametrize("group", ["gpt", "claude", "gemini", "ollama"])
def test_image_input_reaches_provider(client: openai.OpenAI, upstream: FakeUpstream, group: str) -> None:
    pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    resp = client.chat.completions.create(model=group, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": pixel}},
    ]}])
    assert "image" in resp.choices[0].message.content.lower()


def test_parameters_reach_openai_upstream(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    client.chat.completions.create(
        model="gpt", messages=[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "hi"}],
        n=2, stop=["zzz"], seed=7, user="u-1", temperature=0.5, metadata={"team": "a"}, max_tokens=50,
    )
    sent = upstream.last_request["body"]
    assert sent["model"] == "gpt-4o-mini"
    assert (sent["n"], sent["stop"], sent["seed"], sent["user"], sent["temperature"], sent["max_tokens"]) == (
        2, ["zzz"], 7, "u-1", 0.5, 50)
    assert sent["messages"][0] == {"role": "system", "content": "Be brief"}
    assert "metadata" not in sent  # ours, for the request log; OpenAI rejects it without `store`


def test_n_choices(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    resp = client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}], n=3)
    assert [c.index for c in resp.choices] == [0, 1, 2]


def test_stop_and_max_tokens_finish_reasons(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    for group in ("gpt", "claude", "gemini"):
        short = client.chat.completions.create(model=group, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
        assert short.choices[0].finish_reason == "length", group


def test_embeddings_float_and_base64(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    for group in ("embed", "gemini-embed", "ollama-embed"):
        resp = client.embeddings.create(model=group, input=["first text", "second text"])  # SDK asks for base64
        assert [d.index for d in resp.data] == [0, 1]
        dims = {len(d.embedding) for d in resp.data}
        assert len(dims) == 1 and dims.pop() > 0
        floats = client.embeddings.create(model=group, input="first text", encoding_format="float")
        assert floats.data[0].embedding == pytest.approx(resp.data[0].embedding, rel=1e-6)


def test_models_lists_groups_aliases_and_discovered(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    ids = {m.id for m in client.models.list()}
    assert set(GROUPS) <= ids and "default" in ids
    assert any(i.startswith("ollama/") for i in ids)  # the ollama server answered /api/tags


def test_zero_config_provider_prefix(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    for model, seen in (("openai/gpt-4.1-mini", "gpt-4.1-mini"), ("anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
                        ("gemini/gemini-2.0-flash", "gemini-2.0-flash"), ("ollama/qwen3", "qwen3")):
        resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert f"fake {seen}." in resp.choices[0].message.content
    assert upstream.requests[0]["headers"]["authorization"] == "Bearer sk-fake-env"


def test_alias_resolves(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    resp = client.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
    assert resp.model == "default" and "gpt-4o-mini" in resp.choices[0].message.content


def test_overhead_header(gateway: GatewayServer, upstream: FakeUpstream) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x")
    raw = client.chat.completions.with_raw_response.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
    assert float(raw.headers["x-aistrata-overhead-ms"]) >= 0
    assert raw.headers["x-aistrata-request-id"].startswith("req_")
    with client.chat.completions.with_streaming_response.create(
        model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True) as streamed:
        assert float(streamed.headers["x-aistrata-overhead-ms"]) >= 0

