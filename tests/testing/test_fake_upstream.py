"""Faithfulness tests for the fake upstream: the REAL openai/anthropic SDKs are
pointed straight at it; Gemini and Ollama frames are checked over plain HTTP."""

from __future__ import annotations

import base64
import json
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from aistrata.testing.fake_upstream import FakeUpstream, Faults, count_input_tokens

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]},
                                     "days": {"type": "integer"}}, "required": ["location", "days"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}
ANTHROPIC_WEATHER = {"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}
USER = [{"role": "user", "content": "Tell me something nice about the sea today"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(fake: FakeUpstream) -> Iterator[None]:
    yield
    fake.reset()


def oai(fake: FakeUpstream, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url + "/v1", api_key="k", max_retries=kw.pop("max_retries", 0), **kw)


def claude(fake: FakeUpstream, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0, **kw)


def http(fake: FakeUpstream, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(fake.url + path, data=data, method=method,
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def sse_data(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]


def chat_body(**kw: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": USER, **kw}


GEMINI_KEY = {"x-goog-api-key": "k"}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "Tell me something nice about the sea"}]}]}


# --- OpenAI ----------------------------------------------------------------------------------------

def test_openai_whole_chat_text_and_usage(fake: FakeUpstream) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *USER]
    out = oai(fake).chat.completions.create(model="gpt-4o", messages=messages)
    text = out.choices[0].message.content or ""
    assert text.startswith("Hello from fake gpt-4o. You said: Tell me something nice about the sea today")
    assert len(text.split()) == 20 and out.choices[0].finish_reason == "stop"
    assert out.usage and out.usage.prompt_tokens == count_input_tokens(["Be brief.", USER[0]["content"]], 2)
    assert out.usage.completion_tokens == 20 and out.model == "gpt-4o"
    assert fake.last_request["usage"]["total_tokens"] == out.usage.total_tokens
    assert fake.last_request["headers"]["authorization"] == "Bearer k"


def test_openai_stream_include_usage(fake: FakeUpstream) -> None:
    chunks = list(oai(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True,
                                                   stream_options={"include_usage": True}))
    assert len(chunks) == 23  # role + 20 words + finish + usage
    assert len({c.id for c in chunks}) == 1 and chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-2].usage is None
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.completion_tokens == 20
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 20


def test_openai_stream_without_include_usage_has_none(fake: FakeUpstream) -> None:
    chunks = list(oai(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert len(chunks) == 22 and all(c.usage is None for c in chunks)


def test_openai_tool_call_stream_accumulated_by_sdk(fake: FakeUpstream) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    with oai(fake).chat.completions.stream(model="gpt-4o", messages=messages, tools=[WEATHER]) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"location": "Paris", "days": 1}
    status, _, raw = http(fake, "POST", "/v1/chat/completions", chat_body(
        stream=True, tools=[WEATHER], tool_choice="required"), {"authorization": "Bearer k"})
    first = json.loads(sse_data(raw)[0])["choices"][0]["delta"]["tool_calls"][0]
    assert first["function"] == {"name": "get_weather", "arguments": ""} and first["id"].startswith("call_")


def test_openai_parallel_and_named_tool_choice(fake: FakeUpstream) -> None:
    fake.faults.parallel_tools = True
    with oai(fake).chat.completions.stream(model="gpt-4o", messages=USER, tools=[WEATHER, CLOCK],
                                           tool_choice="required") as stream:
        calls = stream.get_final_completion().choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[1].function.arguments) == {"zone": "Paris"}
    whole = oai(fake).chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER, CLOCK],
                                              tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert [c.function.name for c in whole.choices[0].message.tool_calls] == ["get_time"]
    assert whole.choices[0].message.content is None


def test_openai_tool_result_round_trip(fake: FakeUpstream) -> None:
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "22C sunny"}]
    out = oai(fake).chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER])
    assert out.choices[0].message.content.startswith("Tool result: 22C sunny.")


def test_openai_json_schema_and_image(fake: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "number"},
                                               "tags": {"type": "array", "items": {"type": "string"}}}}
    out = oai(fake).chat.completions.create(model="gpt-4o", messages=USER, response_format={
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert json.loads(out.choices[0].message.content) == {"city": "Paris", "n": 1, "tags": ["Paris"]}
    loose = oai(fake).chat.completions.create(model="gpt-4o", messages=USER, response_format={"type": "json_object"})
    assert "reply" in json.loads(loose.choices[0].message.content)
    image = [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                          {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}}]}]
    seen = oai(fake).chat.completions.create(model="gpt-4o", messages=image)
    assert "I see 1 image." in seen.choices[0].message.content


def test_openai_n_stop_and_max_tokens(fake: FakeUpstream) -> None:
    client = oai(fake)
    many = client.chat.completions.create(model="gpt-4o", messages=USER, n=2)
    assert [c.index for c in many.choices] == [0, 1] and many.usage.completion_tokens == 40
    stopped = client.chat.completions.create(model="gpt-4o", messages=USER, stop=["You said"])
    assert stopped.choices[0].message.content == "Hello from fake gpt-4o. "
    assert stopped.choices[0].finish_reason == "stop"
    short = client.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=3)
    assert short.choices[0].message.content == "Hello from fake" and short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 3


def test_openai_embeddings_float_and_base64(fake: FakeUpstream) -> None:
    client = oai(fake)
    out = client.embeddings.create(model="text-embedding-3-small", input=["a b c", "d"], dimensions=4)
    assert [len(d.embedding) for d in out.data] == [4, 4] and out.usage.prompt_tokens == 4
    raw = client.embeddings.create(model="text-embedding-3-small", input="a b c", dimensions=4,
                                   encoding_format="base64")
    decoded = struct.unpack("<4f", base64.b64decode(raw.data[0].embedding))
    assert decoded == pytest.approx(out.data[0].embedding, abs=1e-6)
    assert "gpt-4o" in [m.id for m in client.models.list()]


def test_openai_error_classes_and_retry_after(fake: FakeUpstream) -> None:
    fake.faults.status, fake.faults.retry_after = 429, 2
    with pytest.raises(openai.RateLimitError) as rate:
        oai(fake).chat.completions.create(model="gpt-4o", messages=USER)
    assert rate.value.response.headers["retry-after"] == "2" and rate.value.code == "rate_limit_exceeded"
    fake.faults.status, fake.faults.retry_after, fake.faults.error = 0, None, "context_length"
    with pytest.raises(openai.BadRequestError) as ctx:
        oai(fake).chat.completions.create(model="gpt-4o", messages=USER)
    assert ctx.value.code == "context_length_exceeded"
    fake.faults.error = "content_filter"
    with pytest.raises(openai.BadRequestError) as policy:
        oai(fake).chat.completions.create(model="gpt-4o", messages=USER)
    assert policy.value.code == "content_filter"
    body = json.loads(http(fake, "POST", "/v1/chat/completions", chat_body(), {"authorization": "Bearer k"})[2])
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_openai_auth_required_key() -> None:
    with FakeUpstream(api_key="sekrit") as strict:
        with pytest.raises(openai.AuthenticationError):
            oai(strict).chat.completions.create(model="gpt-4o", messages=USER)
        ok = openai.OpenAI(base_url=strict.url + "/v1", api_key="sekrit").chat.completions.create(
            model="gpt-4o", messages=USER)
        assert ok.choices[0].message.content
    status, _, raw = http(fake_default := FakeUpstream().start(), "POST", "/v1/chat/completions", chat_body())
    fake_default.stop()
    assert status == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"


def test_fail_first_then_succeed_with_sdk_retries(fake: FakeUpstream) -> None:
    fake.faults = Faults(status=503, fail_first=2, retry_after=0.01)
    out = oai(fake, max_retries=2).chat.completions.create(model="gpt-4o", messages=USER)
    assert out.choices[0].message.content
    assert [r["status"] for r in fake.requests] == [503, 503, 200]


def test_model_name_profile(fake: FakeUpstream) -> None:
    with pytest.raises(openai.InternalServerError):
        oai(fake).chat.completions.create(model="gpt-4o@status=500", messages=USER)
    out = oai(fake).chat.completions.create(model="gpt-4o@reply_words=5,cached_tokens=4,reasoning_tokens=7",
                                            messages=USER)
    assert out.model == "gpt-4o" and len(out.choices[0].message.content.split()) == 5
    assert out.usage.prompt_tokens_details.cached_tokens == 4
    assert out.usage.completion_tokens == 12 and out.usage.completion_tokens_details.reasoning_tokens == 7
    assert fake.last_request["model"] == "gpt-4o@reply_words=5,cached_tokens=4,reasoning_tokens=7"
    status, _, _ = http(fake, "POST", "/v1/chat/completions", chat_body(model="m@bogus=1"), {"authorization": "Bearer k"})
    assert status == 400


def test_azure_paths_and_prompt_filter_chunk(fake: FakeUpstream) -> None:
    client = openai.AzureOpenAI(azure_endpoint=fake.url, api_key="k", api_version="2024-10-21", max_retries=0)
    out = client.chat.completions.create(model="my-deploy", messages=USER)
    assert out.choices[0].message.content.startswith("Hello from fake my-deploy.")
    assert fake.last_request["headers"]["api-key"] == "k" and fake.last_request["query"]["api-version"]
    chunks = list(client.chat.completions.create(model="my-deploy", messages=USER, stream=True))
    assert chunks[0].choices == [] and len(chunks) == 23
    assert client.embeddings.create(model="my-deploy", input="hi").data[0].embedding
    status, _, _ = http(fake, "POST", "/openai/deployments/d/chat/completions", chat_body(), {"api-key": "k"})
    assert status == 404


@pytest.mark.parametrize(("variant", "tail"), [
    ("standard", [[], "usage"]), ("null_choices", [None, "usage"]),
    ("second_to_last", [[], "usage", [], None])])
def test_openai_usage_chunk_variants(fake: FakeUpstream, variant: str, tail: list[Any]) -> None:
    fake.faults.usage_variant = variant
    _, _, raw = http(fake, "POST", "/v1/chat/completions", chat_body(
        stream=True, stream_options={"include_usage": True}), {"authorization": "Bearer k"})
    data = sse_data(raw)
    assert data[-1] == "[DONE]"
    frames = [json.loads(d) for d in data[:-1]]
    got: list[Any] = []
    for frame in frames[len(frames) - len(tail) // 2:]:
        got += [frame["choices"], "usage" if frame["usage"] else None]
    assert got == tail


def test_openai_usage_with_choices_rides_on_finish_chunk(fake: FakeUpstream) -> None:
    fake.faults.usage_variant = "with_choices"
    chunks = list(oai(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True,
                                                   stream_options={"include_usage": True}))
    assert len(chunks) == 22 and chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.total_tokens


# --- stream faults ---------------------------------------------------------------------------------

def test_cut_after_ends_without_done(fake: FakeUpstream) -> None:
    fake.faults.cut_after = 5
    _, _, raw = http(fake, "POST", "/v1/chat/completions", chat_body(stream=True), {"authorization": "Bearer k"})
    assert len(sse_data(raw)) == 5 and b"[DONE]" not in raw
    assert fake.last_request["completed"] is False


def test_cut_abort_drops_connection(fake: FakeUpstream) -> None:
    fake.faults.cut_after, fake.faults.cut_abort = 3, True
    with pytest.raises(openai.APIConnectionError):
        list(oai(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True))


def test_stall_after_is_silent_then_resumes(fake: FakeUpstream) -> None:
    fake.faults.stall_after, fake.faults.stall_s = 3, 0.6
    stamps = [time.monotonic() for _ in oai(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True)]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(stamps) == 22 and max(gaps) >= 0.5 and gaps.index(max(gaps)) == 2


def test_stall_trips_client_timeout(fake: FakeUpstream) -> None:
    fake.faults.stall_after, fake.faults.stall_s = 2, 5
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        list(oai(fake, timeout=0.3).chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert time.monotonic() - start < 3


def test_malformed_event_breaks_json(fake: FakeUpstream) -> None:
    fake.faults.malformed_at = 4
    _, _, raw = http(fake, "POST", "/v1/chat/completions", chat_body(stream=True), {"authorization": "Bearer k"})
    data = sse_data(raw)
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[4])
    assert len(data) == 24 and data[-1] == "[DONE]"  # 22 chunks + the broken one + [DONE]


def test_in_stream_error_event_raises_in_sdks(fake: FakeUpstream) -> None:
    fake.faults.error_at = 3
    with pytest.raises(openai.APIError, match="server had an error"):
        list(oai(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    with pytest.raises(anthropic.APIStatusError) as err:
        with claude(fake).messages.stream(model="claude-x", max_tokens=100, messages=USER) as stream:
            stream.get_final_message()
    assert "overloaded" in str(err.value).lower()


def test_keepalive_and_crlf_framing_still_parse(fake: FakeUpstream) -> None:
    fake.faults.keepalive, fake.faults.crlf = True, True
    _, _, raw = http(fake, "POST", "/v1/chat/completions", chat_body(stream=True), {"authorization": "Bearer k"})
    assert raw.startswith(b": keep-alive\r\n\r\ndata: {") and b"\n\n" not in raw.replace(b"\r\n", b"")
    assert raw.count(b": keep-alive") == 23
    chunks = list(oai(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert len(chunks) == 22
    with claude(fake).messages.stream(model="claude-x", max_tokens=100, messages=USER) as stream:
        assert len(stream.get_final_message().content[0].text.split()) == 20


def test_delays(fake: FakeUpstream) -> None:
    fake.faults.delay_ms = 300
    start = time.monotonic()
    oai(fake).chat.completions.create(model="gpt-4o", messages=USER)
    assert time.monotonic() - start >= 0.3
    fake.faults.delay_ms, fake.faults.chunk_delay_ms = 0, 20
    start = time.monotonic()
    list(oai(fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert time.monotonic() - start >= 21 * 0.02


# --- Anthropic -------------------------------------------------------------------------------------

def test_anthropic_whole_and_usage_semantics(fake: FakeUpstream) -> None:
    fake.faults.cached_tokens, fake.faults.cache_write_tokens = 5, 2
    msg = claude(fake).messages.create(model="claude-x", max_tokens=100, system="Be brief.", messages=USER)
    total = count_input_tokens(["Be brief.", USER[0]["content"]], 2)
    assert msg.content[0].text.startswith("Hello from fake claude-x.") and msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == total - 7  # Anthropic input EXCLUDES cache reads/writes
    assert msg.usage.cache_read_input_tokens == 5 and msg.usage.cache_creation_input_tokens == 2
    assert msg.usage.output_tokens == 20
    oa = oai(fake).chat.completions.create(model="gpt-4o", messages=[{"role": "system", "content": "Be brief."}, *USER])
    assert oa.usage.prompt_tokens == total  # OpenAI prompt_tokens INCLUDES cached tokens


def test_anthropic_stream_event_sequence(fake: FakeUpstream) -> None:
    fake.faults.reply_words = 3
    status, headers, raw = http(fake, "POST", "/v1/messages", {"model": "c", "max_tokens": 50, "stream": True,
                                                               "messages": USER},
                                {"x-api-key": "k", "anthropic-version": "2023-06-01"})
    events = [line[7:] for line in raw.decode().splitlines() if line.startswith("event: ")]
    assert events == ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
                      "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    datas = [json.loads(d) for d in sse_data(raw)]
    assert [d["type"] for d in datas] == events and datas[0]["message"]["usage"]["output_tokens"] == 1
    assert datas[-2]["usage"]["output_tokens"] == 3 and headers["request-id"].startswith("req_")
    with claude(fake).messages.stream(model="claude-x", max_tokens=100, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens == 3 and final.content[0].text == "Hello from fake"


def test_anthropic_tool_use_stream_and_parallel(fake: FakeUpstream) -> None:
    ask = [{"role": "user", "content": "what's the weather in Paris"}]
    with claude(fake).messages.stream(model="claude-x", max_tokens=100, messages=ask,
                                      tools=[ANTHROPIC_WEATHER]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"location": "Paris", "days": 1}
    fake.faults.parallel_tools = True
    whole = claude(fake).messages.create(model="claude-x", max_tokens=100, messages=USER, tools=[ANTHROPIC_WEATHER],
                                         tool_choice={"type": "any"})
    assert [b.type for b in whole.content] == ["tool_use", "tool_use"] and whole.content[0].id != whole.content[1].id
    single = claude(fake).messages.create(model="claude-x", max_tokens=100, messages=USER, tools=[ANTHROPIC_WEATHER],
                                          tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert len(single.content) == 1


def test_anthropic_tool_result_image_stop_and_max_tokens(fake: FakeUpstream) -> None:
    client = claude(fake)
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                   "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                              "content": [{"type": "text", "text": "22C sunny"}]}]}]
    reply = client.messages.create(model="c", max_tokens=100, messages=messages, tools=[ANTHROPIC_WEATHER])
    assert reply.content[0].text.startswith("Tool result: 22C sunny.")
    image = [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "what is this"}]}]
    assert "image" in client.messages.create(model="c", max_tokens=100, messages=image).content[0].text
    stopped = client.messages.create(model="c", max_tokens=100, messages=USER, stop_sequences=["You said"])
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "You said")
    short = client.messages.create(model="c", max_tokens=2, messages=USER)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 2


def test_anthropic_request_validation_and_errors(fake: FakeUpstream) -> None:
    ok_headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    status, _, raw = http(fake, "POST", "/v1/messages", {"model": "c", "messages": USER}, ok_headers)
    assert status == 400 and json.loads(raw) == {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: Field required"}}
    status, _, _ = http(fake, "POST", "/v1/messages", {"model": "c", "max_tokens": 5, "messages": USER}, {"x-api-key": "k"})
    assert status == 400
    status, _, raw = http(fake, "POST", "/v1/messages", {"model": "c", "max_tokens": 5, "messages": USER},
                          {"anthropic-version": "2023-06-01"})
    assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"
    fake.faults.status = 529
    with pytest.raises(anthropic.InternalServerError) as over:
        claude(fake).messages.create(model="c", max_tokens=5, messages=USER)
    assert over.value.status_code == 529 and over.value.response.headers["request-id"].startswith("req_")
    fake.faults.status, fake.faults.error = 0, "context_length"
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        claude(fake).messages.create(model="c", max_tokens=5, messages=USER)
    fake.faults.error = "rate_limit"
    with pytest.raises(anthropic.RateLimitError):
        claude(fake).messages.create(model="c", max_tokens=5, messages=USER)
    fake.faults.error = ""
    models = http(fake, "GET", "/v1/models", None, ok_headers)[2]
    assert json.loads(models)["data"][0]["type"] == "model"


# --- Gemini ----------------------------------------------------------------------------------------

def test_gemini_generate_and_auth(fake: FakeUpstream) -> None:
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    body = dict(GEMINI_BODY, systemInstruction={"parts": [{"text": "Be brief."}]})
    status, _, raw = http(fake, "POST", path, body, GEMINI_KEY)
    out = json.loads(raw)
    cand = out["candidates"][0]
    assert status == 200 and cand["finishReason"] == "STOP" and cand["content"]["role"] == "model"
    assert cand["content"]["parts"][0]["text"].startswith("Hello from fake gemini-2.5-flash.")
    assert out["usageMetadata"]["promptTokenCount"] == count_input_tokens(
        ["Be brief.", "Tell me something nice about the sea"], 2)
    assert http(fake, "POST", path + "?key=k", GEMINI_BODY)[0] == 200
    status, _, raw = http(fake, "POST", path, GEMINI_BODY)
    assert status == 403 and json.loads(raw)["error"]["status"] == "PERMISSION_DENIED"
    with FakeUpstream(api_key="right") as strict:
        status, _, raw = http(strict, "POST", path, GEMINI_BODY, GEMINI_KEY)
    assert status == 400 and json.loads(raw)["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_gemini_sse_and_json_array_streams(fake: FakeUpstream) -> None:
    fake.faults.reasoning_tokens, fake.faults.cached_tokens = 4, 3
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    status, headers, raw = http(fake, "POST", path + "?alt=sse", GEMINI_BODY, GEMINI_KEY)
    assert headers["content-type"].startswith("text/event-stream") and raw.endswith(b"}\r\n\r\n")
    frames = [json.loads(f[6:]) for f in raw.decode().split("\r\n\r\n") if f]
    assert len(frames) == 20 and b"[DONE]" not in raw and "finishReason" not in frames[0]["candidates"][0]
    meta = frames[-1]["usageMetadata"]
    assert frames[-1]["candidates"][0]["finishReason"] == "STOP" and meta["candidatesTokenCount"] == 20
    assert meta["thoughtsTokenCount"] == 4 and meta["cachedContentTokenCount"] == 3
    assert meta["totalTokenCount"] == meta["promptTokenCount"] + 20 + 4
    status, headers, raw = http(fake, "POST", path, GEMINI_BODY, GEMINI_KEY)
    array = json.loads(raw)
    assert headers["content-type"] == "application/json" and isinstance(array, list) and len(array) == 20


def test_gemini_function_call_json_mode_and_limits(fake: FakeUpstream) -> None:
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": {
        "type": "OBJECT", "properties": {"location": {"type": "STRING"}}, "required": ["location"]}}]}]
    body = dict(GEMINI_BODY, tools=tools, toolConfig={"functionCallingConfig": {"mode": "ANY"}})
    part = json.loads(http(fake, "POST", path, body, GEMINI_KEY)[2])["candidates"][0]["content"]["parts"][0]
    assert part == {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}
    result = {"contents": [GEMINI_BODY["contents"][0], {"role": "model", "parts": [part]},
                           {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                                            "response": {"result": "22C sunny"}}}]}],
              "tools": tools}
    text = json.loads(http(fake, "POST", path, result, GEMINI_KEY)[2])["candidates"][0]["content"]["parts"][0]["text"]
    assert text.startswith("Tool result: 22C sunny.")
    schema = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "ok": {"type": "BOOLEAN"}}}
    body = dict(GEMINI_BODY, generationConfig={"responseMimeType": "application/json", "responseSchema": schema})
    doc = json.loads(http(fake, "POST", path, body, GEMINI_KEY)[2])["candidates"][0]["content"]["parts"][0]["text"]
    assert json.loads(doc) == {"city": "Paris", "ok": True}
    body = dict(GEMINI_BODY, generationConfig={"maxOutputTokens": 4})
    cand = json.loads(http(fake, "POST", path, body, GEMINI_KEY)[2])["candidates"][0]
    assert cand["finishReason"] == "MAX_TOKENS" and len(cand["content"]["parts"][0]["text"].split()) == 4
    image = {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}},
                                                     {"text": "what"}]}]}
    assert "image" in json.loads(http(fake, "POST", path, image, GEMINI_KEY)[2])["candidates"][0]["content"]["parts"][0]["text"]


def test_gemini_embeddings_and_errors(fake: FakeUpstream) -> None:
    one = json.loads(http(fake, "POST", "/v1beta/models/gemini-embedding-001:embedContent",
                          {"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 3}, GEMINI_KEY)[2])
    assert len(one["embedding"]["values"]) == 3
    batch = json.loads(http(fake, "POST", "/v1beta/models/gemini-embedding-001:batchEmbedContents", {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}} for t in ("a", "b")]},
        GEMINI_KEY)[2])
    assert len(batch["embeddings"]) == 2 and batch["embeddings"][0]["values"] != batch["embeddings"][1]["values"]
    status, headers, raw = http(fake, "POST", "/v1beta/models/g@status=429,retry_after=7:generateContent",
                                GEMINI_BODY, GEMINI_KEY)
    err = json.loads(raw)["error"]
    assert (status, err["code"], err["status"], headers["retry-after"]) == (429, 429, "RESOURCE_EXHAUSTED", "7")
    assert err["details"][0]["retryDelay"] == "7s"
    status, _, raw = http(fake, "POST", "/v1beta/models/g@error=content_filter:generateContent", GEMINI_BODY, GEMINI_KEY)
    assert status == 200 and json.loads(raw)["promptFeedback"]["blockReason"] == "SAFETY"


# --- Ollama ----------------------------------------------------------------------------------------

def test_ollama_streams_ndjson_by_default(fake: FakeUpstream) -> None:
    status, headers, raw = http(fake, "POST", "/api/chat", {"model": "llama3.2", "messages": USER})
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert headers["content-type"] == "application/x-ndjson" and len(lines) == 21
    assert all(not line["done"] for line in lines[:-1]) and lines[-1]["done"] is True
    assert lines[-1]["prompt_eval_count"] == count_input_tokens([USER[0]["content"]], 1)
    assert lines[-1]["eval_count"] == 20 and lines[-1]["done_reason"] == "stop"
    assert "".join(line["message"]["content"] for line in lines).startswith("Hello from fake llama3.2.")


def test_ollama_whole_tools_embed_tags_version_errors(fake: FakeUpstream) -> None:
    whole = json.loads(http(fake, "POST", "/api/chat", {"model": "q", "messages": USER, "stream": False,
                                                        "options": {"num_predict": 2}})[2])
    assert whole["done"] and whole["message"]["content"] == "Hello from" and whole["done_reason"] == "length"
    ask = [{"role": "user", "content": "use a tool"}]
    tool = json.loads(http(fake, "POST", "/api/chat", {"model": "q", "messages": ask, "stream": False,
                                                       "tools": [WEATHER]})[2])
    assert tool["message"]["tool_calls"][0]["function"]["arguments"] == {"location": "Paris", "days": 1}
    emb = json.loads(http(fake, "POST", "/api/embed", {"model": "nomic", "input": ["a", "b"]})[2])
    assert len(emb["embeddings"]) == 2
    assert json.loads(http(fake, "GET", "/api/tags")[2])["models"][0]["name"]
    assert "version" in json.loads(http(fake, "GET", "/api/version")[2])
    status, _, raw = http(fake, "POST", "/api/chat", {"model": "q@status=503", "messages": USER})
    assert status == 503 and isinstance(json.loads(raw)["error"], str)
    fake.faults.malformed_at = 2
    lines = http(fake, "POST", "/api/chat", {"model": "q", "messages": USER})[2].decode().splitlines()
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[2])


# --- control plane and async use -------------------------------------------------------------------

def test_control_endpoints_and_recording(fake: FakeUpstream) -> None:
    status, _, raw = http(fake, "POST", "/_fake/faults", {"status": 429, "fail_first": 1})
    assert status == 200 and json.loads(raw)["status"] == 429 and fake.faults.status == 429
    assert http(fake, "POST", "/v1/chat/completions", chat_body(), {"authorization": "Bearer k"})[0] == 429
    assert http(fake, "POST", "/v1/chat/completions", chat_body(), {"authorization": "Bearer k"})[0] == 200
    assert http(fake, "POST", "/_fake/faults", {"nope": 1})[0] == 400
    recorded = json.loads(http(fake, "GET", "/_fake/requests")[2])
    assert [r["status"] for r in recorded] == [429, 200] and recorded[1]["body"]["model"] == "gpt-4o"
    assert recorded[1]["usage"]["completion_tokens"] == 20
    http(fake, "DELETE", "/_fake/faults")
    assert fake.faults == Faults()
    assert json.loads(http(fake, "DELETE", "/_fake/requests")[2]) == [] and fake.requests == []


def test_constructor_faults_and_requests_bound() -> None:
    with FakeUpstream(faults=Faults(reply_words=4), max_requests=2) as server:
        for _ in range(3):
            out = oai(server).chat.completions.create(model="m", messages=USER)
        assert out.choices[0].message.content == "Hello from fake m."
        assert len(server.requests) == 2


async def test_async_context_and_async_clients() -> None:
    async with FakeUpstream() as server:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True,
                                                      stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        assert chunks[-1].usage.completion_tokens == 20
        aclaude = anthropic.AsyncAnthropic(base_url=server.url, api_key="k", max_retries=0)
        async with aclaude.messages.stream(model="c", max_tokens=50, messages=USER) as s:
            assert (await s.get_final_message()).usage.output_tokens == 20
