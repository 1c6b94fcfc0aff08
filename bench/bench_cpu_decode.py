"""Prefill and decode speed of the transformers eval backend's CPU numeric paths.

Why: evaluation is most of the CPU evidence experiment's time, and decoding is most of evaluation. This
measures, for one model, a 200-token prefill and one-token decode steps over a ~250-token KV cache at
each batch size, for fp32 weights (SDPA and eager attention), fp32 weights under bf16 autocast (what
``pasr eval --dtype auto`` does on a bf16 CPU) and bf16 weights (SDPA and eager; ``--dtype bfloat16``).

    OMP_NUM_THREADS=1 python bench/bench_cpu_decode.py [--model smollm2-135m-instruct] [--batch-sizes 16 32]
"""

from __future__ import annotations

import argparse
import time

import torch

PATHS = {  # name: (weights, autocast, attention)
    "fp32, sdpa": (torch.float32, False, "sdpa"),
    "fp32, eager": (torch.float32, False, "eager"),
    "fp32 + bf16 autocast, sdpa (--dtype auto)": (torch.float32, True, "sdpa"),
    "bf16, sdpa": (torch.bfloat16, False, "sdpa"),
    "bf16, eager (--dtype bfloat16)": (torch.bfloat16, False, "eager"),
}


def measure(model, batch: int, autocast: bool, prompt: int, steps: int) -> tuple[float, float]:
    """Seconds of one ``prompt``-token prefill of ``batch`` rows, and seconds per one-token decode step."""
    from transformers import DynamicCache

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        ids = torch.randint(0, 1000, (batch, prompt))
        started = time.perf_counter()
        out = model(input_ids=ids, past_key_values=DynamicCache(config=model.config), use_cache=True)
        prefill = time.perf_counter() - started
        cache = out.past_key_values
        model(input_ids=torch.randint(0, 1000, (batch, 50)), past_key_values=cache, use_cache=True)
        token = torch.randint(0, 1000, (batch, 1))
        for _ in range(2):  # warm-up steps
            model(input_ids=token, past_key_values=cache, use_cache=True)
        started = time.perf_counter()
        for _ in range(steps):
            model(input_ids=token, past_key_values=cache, use_cache=True)
        return prefill, (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--steps", type=int, default=8)
    opts = parser.parse_args()

    from pasr.models import load_model

    print(f"{opts.model}, {torch.get_num_threads()} thread(s), prefill {opts.prompt_tokens} tokens, "
          f"decode over a {opts.prompt_tokens + 50}-token cache")
    print("| path | batch | prefill s | decode ms/step | decode tokens/s |\n|---|---:|---:|---:|---:|")
    for name, (weights, autocast, attention) in PATHS.items():
        model = load_model(opts.model, dtype=weights).eval()
        model.set_attn_implementation(attention)
        for batch in opts.batch_sizes:
            prefill, step = measure(model, batch, autocast, opts.prompt_tokens, opts.steps)
            print(f"| {name} | {batch} | {prefill:.2f} | {step * 1000:.0f} | {batch / step:.0f} |", flush=True)


if __name__ == "__main__":
    main()
