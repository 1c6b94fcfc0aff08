"""The transformers eval backend's two CPU speed-ups, one change at a time: time and outputs with and without.

Why: every prompt of a ``pasr eval`` call opens with the same system prompt and chat template (140 of the
~177 tokens of a ``sums`` PASR prompt), and on a CPU the prefill of 500 such prompts is most of the time of an
evaluation whose answers are short. :class:`pasr.generation.backends.TransformersBackend` now encodes the
shared prefix once per call (``prefix_cache=True``), and on a CPU its SDPA attention no longer copies the KV
cache's grouped heads under the padding mask (:mod:`pasr.generation.attention`). This measures, on held-out
``sums`` problems under the PASR prompt (greedy, the evidence run's 288 tokens and batch 16), the wall time of
three settings one after the other in this process: both (the backend now), grouped attention only, neither
(the backend before); and whether their completions are identical to the first's.

    OMP_NUM_THREADS=1 python bench/bench_prefix_cache.py [--model smollm2-135m-instruct] [--n 128]
        [--dtype auto] [--out prefix-cache.json]

Prints a table (seconds, generated tokens, tokens/s, completions identical to "both") and the speed-ups;
``--out`` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    from pasr.data import sums
    from pasr.generation.backends import TransformersBackend
    from pasr.models import resolve
    from pasr.prompts import PASR_SYSTEM_PROMPT, chat

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=128, help="held-out sums problems")
    parser.add_argument("--max-tokens", type=int, default=288)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="auto", help="as `pasr eval --dtype`")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    opts = parser.parse_args()

    import torch

    path = resolve(opts.model)
    records = sums.generate(opts.n, seed=0, split="test")
    conversations = [chat(PASR_SYSTEM_PROMPT, r.question, r.task) for r in records]
    settings = {"both": (True, True), "grouped attention only": (False, True), "neither (before)": (False, False)}
    results, outputs = {}, {}
    model = tokenizer = None  # loaded by the first backend, shared by the others
    for name, (cached, grouped) in settings.items():
        backend = TransformersBackend(path, batch_size=opts.batch_size, dtype=opts.dtype, model_obj=model,
                                      tokenizer=tokenizer, prefix_cache=cached)
        model, tokenizer = backend.model, backend.tokenizer
        if not grouped:
            model.set_attn_implementation("sdpa")
        prompts = [backend.encode(c) for c in conversations]
        shared = backend._shared_prefix(prompts)
        started = time.perf_counter()
        outputs[name] = backend.generate(conversations, opts.max_tokens)
        seconds = time.perf_counter() - started
        tokens = sum(n for _, n in outputs[name])
        results[name] = {
            "prefix_cache": cached, "attention": model.config._attn_implementation, "seconds": round(seconds, 1),
            "generated_tokens": tokens, "tokens_per_s": round(tokens / seconds, 1),
            "prompt_tokens": sum(len(p) for p in prompts),
            "shared_prefix_tokens": shared[0][0].shape[-2] if shared else 0,
            "identical_to_both": sum(a == b for a, b in zip(outputs[name], outputs["both"])),
        }
        print(f"{name}: {seconds:.1f} s, {tokens} tokens", file=sys.stderr, flush=True)
    before = results["neither (before)"]["seconds"]
    summary = {"model": opts.model, "problems": opts.n, "threads": torch.get_num_threads(),
               "batch_size": opts.batch_size, "max_tokens": opts.max_tokens, "dtype": opts.dtype, "settings": results,
               "speedup": {name: round(before / row["seconds"], 2) for name, row in results.items()}}
    print("| setting | attention | seconds | generated tokens | tokens/s | prompt tokens (shared) "
          "| identical to both |\n|---|---|---:|---:|---:|---:|---:|")
    for name, row in results.items():
        print(f"| {name} | {row['attention']} | {row['seconds']} | {row['generated_tokens']} | {row['tokens_per_s']} | "
              f"{row['prompt_tokens']} ({row['shared_prefix_tokens']}) | {row['identical_to_both']} of {opts.n} |")
    print("speed-up over neither: " + ", ".join(f"{name} {x}x" for name, x in summary["speedup"].items()))
    if opts.out:
        opts.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
