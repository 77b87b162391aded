"""The inference engines a worker process runs: llama.cpp chat (and GGUF embeddings), wordllama
and ONNX sentence embeddings. Imported only inside the worker, never by the gateway process: the
heavy libraries load there, and their calls block only that process.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from .catalogue import ModelSpec

# One message to the parent: delta text, or the final "done" payload.
Emit = Callable[[dict[str, Any]], None]


class Engine(Protocol):
    def chat(self, req: dict[str, Any], emit: Emit, cancelled: Callable[[], bool]) -> dict[str, Any]: ...

    def embed(self, texts: list[str], dimensions: int | None) -> tuple[list[list[float]], int]: ...


class UnsupportedOperation(ValueError):
    pass


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _fit_dimensions(vectors: np.ndarray, dimensions: int | None, truncatable: bool) -> np.ndarray:
    native = vectors.shape[1]
    if dimensions is None or dimensions == native:
        return vectors
    if not truncatable or not 0 < dimensions < native:
        raise UnsupportedOperation(f"this model gives {native}-dimensional vectors; dimensions={dimensions} is not supported")
    # wordllama is Matryoshka-trained: a prefix of the vector is itself an embedding.
    return _normalise(vectors[:, :dimensions])


class LlamaEngine:
    """A GGUF model through llama-cpp-python, as a chat model or (kind=embedding) an embedder."""

    def __init__(self, spec: ModelSpec) -> None:
        from llama_cpp import Llama, llama_cpp

        # Any: llama-cpp-python's TypedDict unions for stream chunks do not narrow usefully.
        self._llm: Any = Llama(model_path=spec.path, n_ctx=spec.n_ctx, n_threads=spec.n_threads,
                               embedding=spec.kind == "embedding", verbose=False)
        vocab = self._llm._model.vocab
        self._is_eog: Callable[[int], bool] = lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        self._prompt_tokens = 0
        self._sampled: list[int] = []
        # Stream chunks carry no usage, so count as llama.cpp does: wrap the instance's token
        # generator to see the prompt it evaluates and every token it samples.
        generate = self._llm.generate

        def counting_generate(tokens: Any, **kwargs: Any) -> Iterator[int]:
            self._prompt_tokens = len(tokens)
            self._sampled = []
            for token in generate(tokens, **kwargs):
                self._sampled.append(token)
                yield token

        self._llm.generate = counting_generate  # type: ignore[method-assign,assignment]

    def chat(self, req: dict[str, Any], emit: Emit, cancelled: Callable[[], bool]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {k: req[k] for k in ("max_tokens", "temperature", "top_p", "stop", "seed",
                                                     "response_format") if req.get(k) is not None}
        started = time.time()
        chunks: Iterator[dict[str, Any]] = self._llm.create_chat_completion(messages=req["messages"], stream=True, **kwargs)
        text: list[str] = []
        finish: str = "stop"
        first_token_at: float | None = None
        for chunk in chunks:
            choice = chunk["choices"][0]
            piece = choice["delta"].get("content")
            if piece:
                first_token_at = first_token_at or time.time()
                if req.get("stream"):
                    emit({"type": "delta", "text": piece})
                else:
                    text.append(piece)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            if cancelled():
                chunks.close()  # type: ignore[attr-defined]
                break
        # Like llama.cpp's own usage: the end-of-generation token is sampled but not counted.
        completion = len(self._sampled) - (1 if self._sampled and self._is_eog(self._sampled[-1]) else 0)
        return {
            "type": "done", "text": "".join(text), "finish": finish,
            "usage": {"input": self._prompt_tokens, "output": completion},
            "started": started, "first_token": first_token_at, "ended": time.time(),
        }

    def embed(self, texts: list[str], dimensions: int | None) -> tuple[list[list[float]], int]:
        rows = [np.asarray(v, dtype=np.float32) for v in self._llm.embed(texts)]
        # A model without a pooling layer (a chat GGUF) gives one vector per token: mean-pool them.
        vectors = _normalise(np.stack([r.mean(0) if r.ndim == 2 else r for r in rows]))
        tokens = sum(len(self._llm.tokenize(t.encode(), add_bos=False)) for t in texts)
        return _fit_dimensions(vectors, dimensions, truncatable=False).tolist(), tokens


class WordLlamaEngine:
    """wordllama's static embeddings: ~10k sentences/s on one core."""

    def __init__(self, spec: ModelSpec) -> None:
        from wordllama import WordLlama

        # cache_dir must point at the package: its resolver would otherwise try to download the
        # tokenizer config (it looks for `tokenizer/`, the wheel ships `tokenizers/`).
        self._wl = WordLlama.load(cache_dir=spec.path, disable_download=True)

    def chat(self, req: dict[str, Any], emit: Emit, cancelled: Callable[[], bool]) -> dict[str, Any]:
        raise UnsupportedOperation("an embedding model cannot chat")

    def embed(self, texts: list[str], dimensions: int | None) -> tuple[list[list[float]], int]:
        vectors = np.asarray(self._wl.embed(texts, norm=True), dtype=np.float32).reshape(len(texts), -1)
        tokens = sum(len(e.ids) for e in self._wl.tokenizer.encode_batch(texts, add_special_tokens=False))
        return _fit_dimensions(vectors, dimensions, truncatable=True).tolist(), tokens


class OnnxEngine:
    """A sentence-transformers ONNX export (MiniLM): mean pooling over the attention mask, L2 norm."""

    def __init__(self, spec: ModelSpec) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = spec.n_threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(spec.path, options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(spec.tokenizer)
        self._tokenizer.enable_truncation(256)
        self._tokenizer.enable_padding()  # pad to the longest in the batch, not the file's fixed 128

    def chat(self, req: dict[str, Any], emit: Emit, cancelled: Callable[[], bool]) -> dict[str, Any]:
        raise UnsupportedOperation("an embedding model cannot chat")

    def embed(self, texts: list[str], dimensions: int | None) -> tuple[list[list[float]], int]:
        # Length-sorted batches of 32 keep padding (wasted compute) small.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), 0), dtype=np.float32)
        tokens = 0
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            encs = self._tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encs], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feed)[0]
            pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
            if out.shape[1] == 0:
                out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            out[batch] = _normalise(pooled)
            tokens += int(mask.sum())
        return _fit_dimensions(out, dimensions, truncatable=False).tolist(), tokens


def load(spec: ModelSpec) -> Engine:
    if spec.engine == "llama":
        return LlamaEngine(spec)
    if spec.engine == "wordllama":
        return WordLlamaEngine(spec)
    return OnnxEngine(spec)
