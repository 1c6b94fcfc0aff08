"""Two jobs at one thread each, or one job at two threads? Decode throughput of the built-in model per layout.

Why: ``bench/cpu_evidence.py`` runs its jobs two at a time at one thread each (``--jobs 2``), which pays only
if two one-thread processes together decode faster than one process with both threads. On this machine class
(2 vCPUs) the measured job times suggested otherwise (the sums warm-up: 33 min alone at 2 threads, 73 min beside
other jobs), so this measures it directly: one-token decode steps of the eval backend's numeric path (bf16
weights, eager attention, ``pasr eval --dtype bfloat16``) at batch 16 over a ~250-token KV cache, for

- **1 x 1 thread**: one process, ``OMP_NUM_THREADS=1``, the other core idle;
- **1 x 2 threads**: one process, ``OMP_NUM_THREADS=2``;
- **2 x 1 thread**: two such one-thread processes at the same time (``--jobs 2``).

Run it on a quiet machine (nothing else running):

    python bench/bench_cpu_slots.py [--model smollm2-135m-instruct] [--steps 40]

Prints one table: ms per step of each process and decoded tokens per second of the whole layout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def worker(model_name: str, batch: int, prompt: int, steps: int) -> dict:
    """Seconds per decode step of one process (its thread count comes from ``OMP_NUM_THREADS``), measured as
    ``bench_cpu_decode.measure`` does."""
    import torch
    from bench_cpu_decode import measure  # bench/ is on the path when run as a script

    from pasr.models import load_model

    model = load_model(model_name, dtype=torch.bfloat16).eval()
    model.set_attn_implementation("eager")
    _prefill, step = measure(model, batch, False, prompt, steps)
    return {"threads": torch.get_num_threads(), "step_s": step}


def run_layout(processes: int, threads: int, opts: argparse.Namespace) -> list[dict]:
    """Start ``processes`` workers at ``threads`` threads each, at once; their results."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, __file__, "--worker", "--model", opts.model, "--batch", str(opts.batch),
            "--prompt-tokens", str(opts.prompt_tokens), "--steps", str(opts.steps)]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"bench_cpu_slots: a worker failed (exit {proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        print(json.dumps(worker(opts.model, opts.batch, opts.prompt_tokens, opts.steps)))
        return
    print(f"{opts.model}, bf16 eager, batch {opts.batch}, decode over a {opts.prompt_tokens + 50}-token cache, "
          f"{os.cpu_count()} CPUs")
    print("| layout | ms/step per process | tokens/s in all |\n|---|---:|---:|")
    for processes, threads in ((1, 1), (1, 2), (2, 1)):
        results = run_layout(processes, threads, opts)
        per = [r["step_s"] for r in results]
        total = sum(opts.batch / s for s in per)
        print(f"| {processes} x {threads} thread{'s' if threads > 1 else ''} | "
              f"{', '.join(f'{s * 1000:.0f}' for s in per)} | {total:.0f} |", flush=True)


if __name__ == "__main__":
    main()
