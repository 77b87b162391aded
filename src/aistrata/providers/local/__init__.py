"""The `local` provider: GGUF chat models (llama.cpp) and sentence-embedding models running in
worker processes on this machine, addressed as `local/<name>` like any other provider's models.

Built-ins: `local/smollm2-135m-instruct` (chat, default), `local/wordllama` (embeddings, default)
and `local/minilm-l6` (embeddings, quality). See `catalogue` for configuring other models and
`dialect` for the environment variables that set threads, concurrency and queue length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .catalogue import BUILTIN_KINDS, DEFAULT_CHAT, DEFAULT_EMBEDDING, ModelSpec, PoolLimits
from .dialect import LocalDialect

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["BUILTIN_KINDS", "DEFAULT_CHAT", "DEFAULT_EMBEDDING", "LocalDialect", "ModelSpec", "PoolLimits", "register"]


def register(registry: Registry) -> None:
    """Entry point (`aistrata.providers`): the `local` dialect and its vendor row. `api_base` is a
    placeholder; no key is needed, so `local/<name>` resolves without configuration."""
    registry.add_dialect(LocalDialect.name, LocalDialect)
    registry.add_vendor_row({"name": "local", "dialect": "local", "api_base": "local://"})
