"""The local embedding models (wordllama, MiniLM-L6 int8 ONNX): dimensions, normalisation and
whether paraphrases land closer together than unrelated sentences."""

from __future__ import annotations

import math

import pytest

from aistrata.core import EmbeddingRequest, ErrorKind, GatewayError
from aistrata.providers.local import LocalDialect

from .conftest import deployment, needs_models

pytestmark = [pytest.mark.asyncio(loop_scope="session"), needs_models]

PAIRS = [
    ("The cat is sleeping on the sofa.", "A cat naps on the couch."),
    ("How do I reset my password?", "I forgot my password and need to change it."),
    ("The stock market fell sharply today.", "Share prices dropped steeply this afternoon."),
]
UNRELATED = "Volcanic eruptions can change the weather for years."


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.mark.parametrize(("model", "dim"), [("wordllama", 256), ("minilm-l6", 384)])
async def test_dimension_norm_and_usage(dialect: LocalDialect, model: str, dim: int) -> None:
    resp = await dialect.embed(None, EmbeddingRequest(model=f"local/{model}", inputs=["hello world", "a second, longer input"]),
                               deployment(model))
    assert [len(v) for v in resp.vectors] == [dim, dim]
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3 for v in resp.vectors)
    assert resp.usage.input_tokens > 4 and resp.model == model


@pytest.mark.parametrize("model", ["wordllama", "minilm-l6"])
async def test_paraphrases_are_closer_than_unrelated(dialect: LocalDialect, model: str) -> None:
    texts = [t for pair in PAIRS for t in pair] + [UNRELATED]
    vectors = (await dialect.embed(None, EmbeddingRequest(model=f"local/{model}", inputs=texts), deployment(model))).vectors
    unrelated = vectors[-1]
    for i in range(len(PAIRS)):
        a, b = vectors[2 * i], vectors[2 * i + 1]
        assert cosine(a, b) > cosine(a, unrelated) and cosine(a, b) > cosine(b, unrelated), PAIRS[i]
        other = vectors[(2 * i + 2) % (2 * len(PAIRS))]  # the first sentence of the next pair
        assert cosine(a, b) > cosine(a, other), PAIRS[i]


async def test_input_order_is_kept(dialect: LocalDialect) -> None:
    # MiniLM batches by length internally; the answer must still follow the input order.
    texts = ["a much longer sentence than the others, with several clauses in it", "short", "medium length text"]
    dep = deployment("minilm-l6")
    together = (await dialect.embed(None, EmbeddingRequest(model="local/minilm-l6", inputs=texts), dep)).vectors
    for text, vector in zip(texts, together):
        alone = (await dialect.embed(None, EmbeddingRequest(model="local/minilm-l6", inputs=[text]), dep)).vectors[0]
        assert cosine(alone, vector) > 0.999


async def test_wordllama_dimensions_truncate(dialect: LocalDialect) -> None:
    resp = await dialect.embed(None, EmbeddingRequest(model="local/wordllama", inputs=["hello"], dimensions=64),
                               deployment("wordllama"))
    assert len(resp.vectors[0]) == 64


async def test_minilm_refuses_other_dimensions(dialect: LocalDialect) -> None:
    with pytest.raises(GatewayError) as info:
        await dialect.embed(None, EmbeddingRequest(model="local/minilm-l6", inputs=["hello"], dimensions=128),
                            deployment("minilm-l6"))
    assert info.value.kind is ErrorKind.bad_request


async def test_chat_model_refuses_embeddings(dialect: LocalDialect) -> None:
    with pytest.raises(GatewayError) as info:
        await dialect.embed(None, EmbeddingRequest(model="local/x", inputs=["hi"]), deployment("smollm2-135m-instruct"))
    assert info.value.kind is ErrorKind.bad_request


async def test_unknown_model_is_not_found(dialect: LocalDialect) -> None:
    with pytest.raises(GatewayError) as info:
        await dialect.embed(None, EmbeddingRequest(model="local/nope", inputs=["hi"]), deployment("nope"))
    assert info.value.kind is ErrorKind.not_found
