"""Is checking easier than answering at once? Direct vs checked accuracy on the `sums` task, easy vs hard.

Issue 12's precondition for PASR's effect: a refine helps only where the model's check is more reliable
than its first attempt. For a model (the warm-up model of ``pasr train --config recipes/cpu-sums.yaml``)
and held-out ``sums`` problems (``pasr.data.sums``), measured per difficulty (easy: no carry; hard: 4-digit
sums with 2+ carries), greedy, before any RL:

- **direct (standard prompt)**: the answer under the standard system prompt (the warm-up teaches it to
  answer at once there);
- **PASR prompt, free**: the answer, the refine rate, and the direct value the think part states first;
- **checked**: the model's own first statement ``a + b = N.`` under the PASR prompt, then
  ``<refine>Check by columns:`` prefilled, and the value the model's check arrives at: the accuracy of the
  check the model performs, on every problem (not only where it chose to refine).

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 python bench/measure_checking.py --model runs/sums/warmup/final --n 200
    python bench/measure_checking.py --model smollm2-135m-instruct --n 48      # the untrained model

Prints one table (accuracy with 95% Wilson intervals per difficulty) and writes ``--out`` JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import time

from measure_builtin_task import wilson  # 95% Wilson interval (bench/ is on the path when run as a script)

_FIRST_SUM = re.compile(r"(\d+)\s*\+\s*(\d+)\s*=\s*(\d+)")
_SO_SUM = re.compile(r"[Ss]o\s+(\d+)\s*\+\s*(\d+)\s*=\s*(\d+)")
_ANSWER = re.compile(r"<answer>\s*(-?\d+)\s*</answer>")
_INT = re.compile(r"-?\d+")


def first_value(text: str, a: int, b: int) -> int | None:
    """The value the think part first states for ``a + b`` (the direct answer), if any."""
    for match in _FIRST_SUM.finditer(text):
        if (int(match[1]), int(match[2])) == (a, b):
            return int(match[3])
    return None


def checked_value(continuation: str, a: int, b: int) -> int | None:
    """The value a check arrives at: ``So a + b = N`` inside it, else the answer tag, else the last number
    before ``</refine>``."""
    for match in _SO_SUM.finditer(continuation):
        if (int(match[1]), int(match[2])) == (a, b):
            return int(match[3])
    answer = _ANSWER.search(continuation)
    if answer:
        return int(answer[1])
    inside = continuation.split("</refine>", 1)[0]
    numbers = _INT.findall(inside)
    return int(numbers[-1]) if numbers else None


def generate(model, tokenizer, texts: list[str], max_new_tokens: int, batch: int, bf16: bool = False) -> list[str]:
    import torch

    out: list[str] = []
    for start in range(0, len(texts), batch):
        enc = tokenizer(texts[start:start + batch], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        out += tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        print(f"  {len(out)}/{len(texts)}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=200, help="held-out sums problems (the family's easy/hard mix)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=288, help="PASR-prompt answers and forced checks (a "
                        "refining hard answer is 244-260 tokens); the standard answers get 64")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16",
                        help="bfloat16: bf16 weights with eager attention (fastest on a bf16 CPU)")
    parser.add_argument("--out", help="write the summary and per-problem rows as JSON here")
    args = parser.parse_args()

    import torch

    from pasr.data import sums
    from pasr.format import parse
    from pasr.models import load_model, load_tokenizer, resolve
    from pasr.prompts import PASR_SYSTEM_PROMPT, STANDARD_SYSTEM_PROMPT, chat

    path = resolve(args.model)
    tokenizer = load_tokenizer(path, padding_side="left")
    model = load_model(path, dtype=args.dtype).eval()
    if args.dtype == "bfloat16":
        model.set_attn_implementation("eager")  # torch's SDPA CPU kernel is slow for one-token decode steps
    records = sums.generate(args.n, seed=args.seed, split="test")
    bf16 = False  # the weights' own dtype
    print(f"model {args.model}: {len(records)} held-out sums problems, greedy, {args.max_new_tokens} new tokens, "
          f"{args.dtype}, torch threads {torch.get_num_threads()}", flush=True)

    def rendered(system: str, record, prefix: str = "") -> str:
        messages = chat(system, record.question, record.task)
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + prefix

    started = time.perf_counter()
    print("direct answers (standard prompt)", flush=True)
    standard = generate(model, tokenizer, [rendered(STANDARD_SYSTEM_PROMPT, r) for r in records],
                        64, args.batch, bf16)
    print("PASR prompt, free", flush=True)
    free = generate(model, tokenizer, [rendered(PASR_SYSTEM_PROMPT, r) for r in records],
                    args.max_new_tokens, args.batch, bf16)
    rows = []
    for record, std_text, pasr_text in zip(records, standard, free):
        a, b = record.meta["addends"]
        truth = a + b
        answer = _ANSWER.search(std_text)
        trace = parse(pasr_text)
        final = _ANSWER.search(pasr_text)
        rows.append({
            "id": record.id, "difficulty": record.meta["difficulty"], "a": a, "b": b, "sum": truth,
            "standard_right": bool(answer and int(answer[1]) == truth),
            "pasr_right": bool(final and int(final[1]) == truth),
            "pasr_refined": bool(trace.refined),
            "pasr_direct": first_value(pasr_text.split("<refine>", 1)[0], a, b),
        })
    # The forced check: the model's own direct statement (its guess under the PASR prompt; a standard-prompt
    # guess where it stated none), then the prefilled refine opening.
    prefixes = []
    for row, std_text in zip(rows, standard):
        guess = row["pasr_direct"]
        if guess is None:
            found = _ANSWER.search(std_text)
            guess = int(found[1]) if found else 0
        row["checked_from"] = guess
        prefixes.append(f"<think>{row['a']} + {row['b']} = {guess}. <refine>Check by columns:")
    print("forced check", flush=True)
    checks = generate(model, tokenizer, [rendered(PASR_SYSTEM_PROMPT, r, p) for r, p in zip(records, prefixes)],
                      args.max_new_tokens, args.batch, bf16)
    for row, text in zip(rows, checks):
        value = checked_value(text, row["a"], row["b"])
        row["checked"] = value
        row["checked_right"] = value == row["sum"]
        row["direct_right"] = row["pasr_direct"] == row["sum"]
        row["check_text"] = text[:400]
    seconds = time.perf_counter() - started

    measures = [("standard prompt, answer", "standard_right"), ("PASR prompt, first stated value", "direct_right"),
                ("PASR prompt, final answer", "pasr_right"), ("PASR prompt, refine rate", "pasr_refined"),
                ("forced check, value reached", "checked_right")]
    summary: dict = {"model": args.model, "n": len(rows), "seconds": round(seconds, 1), "by_difficulty": {}}
    print(f"\n{'measure':34s} " + " ".join(f"{d:>22s}" for d in ("easy", "hard", "all")))
    for label, key in measures:
        cells = []
        for difficulty in ("easy", "hard", "all"):
            chosen = [r for r in rows if difficulty == "all" or r["difficulty"] == difficulty]
            k = sum(bool(r[key]) for r in chosen)
            lo, hi = wilson(k, len(chosen))
            share = k / len(chosen) if chosen else float("nan")
            summary["by_difficulty"].setdefault(difficulty, {"n": len(chosen)})[key] = {
                "share": share, "ci": [lo, hi], "count": k}
            cells.append(f"{100 * share:5.1f}% [{100 * lo:4.1f}-{100 * hi:5.1f}] n={len(chosen):<3d}")
        print(f"{label:34s} " + " ".join(f"{c:>22s}" for c in cells))
    wrong_starts = [r for r in rows if r["checked_from"] != r["sum"]]
    summary["check_kept_its_start"] = sum(r["checked"] == r["checked_from"] for r in rows) / len(rows)
    summary["wrong_starts"] = len(wrong_starts)
    summary["wrong_starts_fixed"] = sum(bool(r["checked_right"]) for r in wrong_starts)
    print(f"\nthe forced check ends on the value it started from in {100 * summary['check_kept_its_start']:.0f}% "
          f"of problems; of {len(wrong_starts)} wrong starting values it fixes {summary['wrong_starts_fixed']}")
    print(f"{seconds:.0f} s")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"summary": summary, "rows": rows}, handle, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
