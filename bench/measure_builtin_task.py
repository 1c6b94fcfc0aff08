"""How well does a model solve the built-in arithmetic task, per difficulty level?

Generates greedy answers for held-out (test split) problems of each level with the standard system prompt
and prints the accuracy per level. pasr uses it to pick ``pasr.data.synthetic.DEFAULT_DIFFICULTY``: the
untrained built-in model should solve some but far from all problems, so GRPO has reward spread to learn from.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python bench/measure_builtin_task.py            # built-in model
    python bench/measure_builtin_task.py --model runs/sft --prompt pasr --levels 2 3    # a trained model

CPU: bf16 autocast is on by default (about 1.6x faster generation on CPUs with avx512_bf16); --fp32 turns it off.
"""

from __future__ import annotations

import argparse
import json
import math
import time


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval for a proportion: honest at small n and near 0 or 1."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    from pasr.data.synthetic import LEVELS

    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--n", type=int, default=48, help="test problems per level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--prompt", choices=["standard", "pasr"], default="standard")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--show", type=int, default=2, help="responses to print per level")
    parser.add_argument("--out", help="write per-problem results as JSONL here")
    args = parser.parse_args()

    import torch

    from pasr.data import synthetic
    from pasr.format import parse
    from pasr.models import load_model, load_tokenizer
    from pasr.prompts import SYSTEM_PROMPTS, chat
    from pasr.scoring import score

    tokenizer = load_tokenizer(args.model, padding_side="left")
    model = load_model(args.model).eval()
    system = SYSTEM_PROMPTS[args.prompt]
    print(f"model {args.model}, prompt {args.prompt}, greedy, {args.max_new_tokens} new tokens, "
          f"{'fp32' if args.fp32 else 'bf16 autocast'}, torch threads {torch.get_num_threads()}")
    rows, summary = [], []
    for level in args.levels:
        records = synthetic.generate(args.n, seed=args.seed, split="test", difficulty=level)
        prompts = [tokenizer.apply_chat_template(chat(system, r.question, r.task), tokenize=False,
                                                 add_generation_prompt=True) for r in records]
        order = sorted(range(len(records)), key=lambda i: len(prompts[i]))
        texts, tokens = [""] * len(records), [0] * len(records)
        started = time.perf_counter()
        for begin in range(0, len(order), args.batch):
            chunk = order[begin:begin + args.batch]
            enc = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.fp32):
                out = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
            for i, seq in zip(chunk, out[:, enc.input_ids.shape[1]:]):
                kept = seq[seq != tokenizer.pad_token_id]
                tokens[i] = int(kept.numel()) + 1 if kept.numel() < seq.numel() else int(seq.numel())
                texts[i] = tokenizer.decode(kept, skip_special_tokens=True)
        seconds = time.perf_counter() - started
        scores = [score("arith", t, r.reference) for t, r in zip(texts, records)]
        right = sum(s >= 0.5 for s in scores)
        answered = sum(parse(t).answer is not None for t in texts)
        valid = sum(parse(t).valid for t in texts)
        lo, hi = wilson(right, len(records))
        summary.append((level, right, len(records), lo, hi, answered, valid, sum(tokens) / len(tokens), seconds))
        for r, t, s, k in zip(records, texts, scores, tokens):
            rows.append({"level": level, "id": r.id, "question": r.question, "reference": r.reference,
                         "response": t, "score": s, "tokens": k})
        print(f"\nlevel {level}: {right}/{len(records)} = {right / len(records):.0%} "
              f"(95% CI {lo:.0%}-{hi:.0%}); <answer> given {answered}/{len(records)}, format-valid {valid}, "
              f"mean {sum(tokens) / len(tokens):.0f} tokens, {seconds:.0f} s")
        for r, t, s in list(zip(records, texts, scores))[: args.show]:
            print(f"  Q: {r.question}  [ref {r.reference}, score {s}]\n  A: {t[:400]!r}")
    print("\nlevel  accuracy  95% CI      <answer>  valid  tokens  seconds")
    for level, right, n, lo, hi, answered, valid, mean_tokens, seconds in summary:
        print(f"{level:>5}  {right:>3}/{n:<4} {lo:>4.0%}-{hi:<4.0%}   {answered:>3}/{n:<4} {valid:>4}  "
              f"{mean_tokens:>6.0f}  {seconds:>7.0f}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"per-problem results: {args.out}")


if __name__ == "__main__":
    main()
