"""Scoring throughput (responses/s) per answer family on the real benchmark files.

For every file in ../shared/benchmarks (or --data-dir) it scores each row twice through
``pasr.scoring.Scorer.score_many``: once with the reference in answer form (right) and once
with an obviously wrong answer, and prints responses per second and the mean score. The
math pool is started before timing (its start-up is printed separately).

    OMP_NUM_THREADS=1 python bench/bench_scoring.py [--workers 1] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from pasr.scoring import Scorer
from pasr.scoring.numeric import plain_number
from pasr.scoring.numeric import reference_number

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def rows(data_dir: Path, name: str) -> list[dict]:
    path = data_dir / name
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tag(text) -> str:
    return f"<answer>{text}</answer>"


def build(data_dir: Path) -> dict[str, tuple[str, list, list, list, list]]:
    """file -> (task, questions, references, right responses, wrong responses)."""
    out = {}
    r = rows(data_dir, "gsm8k.jsonl")
    nums = [reference_number("gsm8k", x["answer"]) for x in r]
    out["gsm8k.jsonl"] = ("gsm8k", [x["question"] for x in r], [x["answer"] for x in r],
                          [tag(n) for n in nums], [tag(n + 1) for n in nums])
    r = rows(data_dir, "math.json")
    refs = [x["answer"] for x in r]
    wrong = []
    for i, ref in enumerate(refs):
        value = plain_number(ref)
        wrong.append(tag(value + 1) if value is not None else tag(refs[(i + 1) % len(refs)]))
    # right: the worked solution without <answer> tags, so every item goes through math-verify
    out["math.json"] = ("math", [x["question"] for x in r], refs, [x["solution"] for x in r], wrong)
    # right: <answer>reference</answer>, mostly decided without math-verify (same text, plain numbers)
    out["math.json (tagged)"] = ("math", [x["question"] for x in r], refs, [tag(x) for x in refs], wrong)
    r = rows(data_dir, "aime24.jsonl")
    boxed = [re.fullmatch(r"\\boxed\{(.*)\}", x["solution"]).group(1) for x in r]
    out["aime24.jsonl"] = ("math", [x["problem"] for x in r], [x["solution"] for x in r],
                           [f"So the answer is $\\boxed{{{b}}}$." for b in boxed], [tag(int(b) + 1) for b in boxed])
    for name, qk, ak in [("arc.jsonl", "question", "answer"), ("commonsenseqa.jsonl", "question", "answer"),
                         ("mmlu.json", "Question", "Ground_truth")]:
        r = rows(data_dir, name)
        golds = [x[ak].strip() for x in r]
        others = [str(int(g) % 4 + 1) if g.isdigit() else "ABCD"[("ABCD".index(g) + 1) % 4] if g in "ABCD" else "A"
                  for g in golds]
        out[name] = ("choice", [x[qk] for x in r], golds, [tag(f"The answer is ({g})") for g in golds],
                     [tag(o) for o in others])
    r = rows(data_dir, "winogrande.jsonl")
    golds = [x["answer"].strip() for x in r]
    out["winogrande.jsonl"] = ("winogrande", [x["question"] for x in r], golds, [tag(g) for g in golds],
                               [tag(3 - int(g)) for g in golds])
    r = rows(data_dir, "drop.jsonl")
    out["drop.jsonl"] = ("drop", [x["question"] for x in r], [x.get("ref_text") or x["answer"] for x in r],
                         [tag(x["answer"]) for x in r], [tag("zzz qqq") for _ in r])
    r = rows(data_dir, "xsum.jsonl")
    out["xsum.jsonl"] = ("summary", [x["question"] for x in r], [x["answer"] for x in r],
                         [tag(x["answer"]) for x in r], [tag(r[(i + 1) % len(r)]["answer"]) for i in range(len(r))])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--workers", type=int, default=1, help="math worker processes")
    parser.add_argument("--repeat", type=int, default=1, help="score each set this many times (best time kept)")
    args = parser.parse_args()
    if not args.data_dir.is_dir():
        raise SystemExit(f"no benchmark folder at {args.data_dir}; pass --data-dir")
    sets = build(args.data_dir)
    with Scorer(workers=args.workers) as scorer:
        started = time.perf_counter()
        scorer.score_many(["math"], [tag("x+1")], ["1+x"])  # needs math-verify: starts the pool
        print(f"math pool start-up ({args.workers} worker(s)): {time.perf_counter() - started:.2f}s")
        for task, questions, refs, right, _ in sets.values():  # lazy imports (rouge, stemmer) outside the clock
            scorer.score_many([task] * 2, right[:2], refs[:2], questions[:2])
        print(f"{'file':<22}{'family':<12}{'n':>6}{'right/s':>11}{'mean':>7}{'wrong/s':>11}{'mean':>7}")
        for name, (task, questions, refs, right, wrong) in sets.items():
            cells = []
            for responses in (right, wrong):
                best, scores = float("inf"), []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    scores = scorer.score_many([task] * len(refs), responses, refs, questions)
                    best = min(best, time.perf_counter() - t0)
                cells.append((len(refs) / best, sum(scores) / len(scores)))
            (r_rate, r_mean), (w_rate, w_mean) = cells
            print(f"{name:<22}{task:<12}{len(refs):>6}{r_rate:>11.0f}{r_mean:>7.3f}{w_rate:>11.0f}{w_mean:>7.3f}")
        print(f"timeouts: {scorer.timeouts}, pool restarts: {scorer.restarts}")


if __name__ == "__main__":
    main()
