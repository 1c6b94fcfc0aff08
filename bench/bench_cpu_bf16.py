"""Does bf16 pay on this CPU? One training step and one decode step of the built-in model, fp32 against bf16.

Why: the CPU recipes train under bf16 autocast and the CPU evaluations decode with bf16 weights, because on a CPU
with native bf16 (avx512_bf16 or AMX) that is 2.7x (training) and 3x (decoding) faster. On a CPU without it
(AVX2 only, e.g. AMD EPYC Zen 3) torch emulates bf16, and the same settings are far slower than fp32.
:func:`pasr.models.cpu_supports_bf16` decides which path pasr takes; this measures both on the machine at hand:

- **train**: forward + backward of a batch of ``--batch`` x ``--tokens`` tokens, fp32 against bf16 autocast
  (TRL's ``bf16: true`` on a CPU);
- **decode**: one-token decode steps at batch 16 over a ~250-token KV cache (``bench_cpu_decode.measure``),
  fp32 weights (SDPA) against bf16 weights with eager attention (``pasr eval --dtype bfloat16``).

    OMP_NUM_THREADS=2 python bench/bench_cpu_bf16.py [--model smollm2-135m-instruct] [--steps 1]

On an AVX2 CPU (AMD EPYC, 2 threads) it took 9.3 min while a test suite held the other core, almost all of it
the emulated bf16 training step; such load distorts the ratios (10.9x and 0.88x against 23x and 2.7x quiet), so
run it on a quiet machine.

Prints one table (seconds per step, bf16 / fp32) and whether pasr takes bf16 here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch


def train_step_s(model, batch: int, tokens: int, autocast: bool, steps: int) -> float:
    """Median seconds of one forward + backward at ``batch`` x ``tokens``. No warm-up step: the first step is
    within 10% of the next (an emulated bf16 step takes minutes, so each one counts)."""
    ids = torch.randint(0, 1000, (batch, tokens))
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    print(f"train, autocast {autocast}: {times}", file=sys.stderr, flush=True)
    return sorted(times)[len(times) // 2]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_cpu_decode import measure

    from pasr.models import cpu_supports_bf16, load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1, help="training steps per setting (decode: 8x as many)")
    opts = parser.parse_args()

    model = load_model(opts.model, dtype=torch.float32)
    rows = {"train": [], "decode": []}
    for autocast in (False, True):
        rows["train"].append(train_step_s(model.train(), opts.batch, opts.tokens, autocast, opts.steps))
    model.eval()
    rows["decode"].append(measure(model, 16, False, 200, 8 * opts.steps)[1])
    model = model.to(torch.bfloat16)
    model.set_attn_implementation("eager")
    rows["decode"].append(measure(model, 16, False, 200, 8 * opts.steps)[1])

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; native bf16 (pasr.models."
          f"cpu_supports_bf16): {cpu_supports_bf16()}")
    print("| step | fp32 s | bf16 s | bf16 / fp32 |")
    print("|---|---:|---:|---:|")
    names = {"train": f"train, batch {opts.batch} x {opts.tokens} tokens (bf16 autocast)",
             "decode": "decode, batch 16, ~250-token cache (bf16 weights, eager)"}
    for key, (fp32, bf16) in rows.items():
        print(f"| {names[key]} | {fp32:.3f} | {bf16:.3f} | {bf16 / fp32:.2f}x |")


if __name__ == "__main__":
    main()
