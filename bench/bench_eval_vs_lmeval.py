"""Throughput of `pasr eval --methods vanilla` against EleutherAI lm-evaluation-harness on generative GSM8K.

Both arms run the same model (the built-in SmolLM2-135M-Instruct, its resolved local folder), on the same
GSM8K subset (``load_benchmark("gsm8k", limit=N, seed=0)`` from ../shared/benchmarks/gsm8k.jsonl), with the same
prompt (the chat template over pasr's standard system prompt + the gsm8k task prompt: lm-eval gets it through
``--apply_chat_template --system_instruction`` and a custom task whose ``doc_to_text`` is pasr's user
message), the same batch size, token limit, greedy decoding, dtype and thread count. Each arm is one
subprocess, timed end to end (start-up and model load included), run back to back.

What differs, by design of each tool:
- Decoding: lm-eval runs static batches through ``model.generate`` (a batch ends when its longest row
  does); pasr's transformers backend drops finished rows and refills the batch from waiting prompts.
- Answer extraction: pasr scores the ``<answer>`` content (else the whole response) with its gsm8k scorer
  (numeric comparison with the number after ``####``). lm-eval's exact_match compares strings after
  regex filters: "answer-tag" takes the first number inside ``<answer>``, "flexible-extract" (lm-eval's own
  gsm8k filter) the last number anywhere in the response. The script also rescores lm-eval's raw
  responses with pasr's scorer, which separates generation differences from extraction differences.
- Token counts: pasr counts generated ids (EOS included); lm-eval does not report them, so its responses
  are re-tokenized (+1 for the EOS when a response stopped before the limit).

lm-eval is not a pasr dependency: ``pip install lm-eval==0.4.13`` into the environment to run this.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python bench/bench_eval_vs_lmeval.py [--n 40] [--max-tokens 256] \\
        [--batch-size 8] [--threads 1] [--dtype float32] [--order lmeval-first]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pasr.data.benchmarks import load_benchmark
from pasr.models import DEFAULT_MODEL, load_tokenizer, resolve
from pasr.prompts import STANDARD_SYSTEM_PROMPT, chat, user_message
from pasr.scoring import Scorer

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "gsm8k.jsonl"
TASK = "pasr_gsm8k_subset"

TASK_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{target}}}}"
num_fewshot: 0
generation_kwargs:
  until:
    - "<|im_end|>"
  max_gen_toks: {max_tokens}
  do_sample: false
  temperature: 0.0
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore:
      - ","
      - "\\\\$"
      - "\\\\.$"
filter_list:
  - name: answer-tag
    filter:
      - function: regex
        regex_pattern: "<answer>[^0-9-]*(-?[0-9.,]+)"
      - function: take_first
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"
      - function: take_first
metadata:
  version: 1.0
"""


def env(threads: int) -> dict[str, str]:
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
             HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error")
    return e


def run_timed(cmd: list[str], threads: int, log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, env=env(threads), stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}), see {log}:\n  {' '.join(cmd)}\n{log.read_text()[-3000:]}")
    return seconds


def pasr_arm(args, subset: Path, work: Path) -> dict:
    out = work / "pasr_run"
    exe = Path(sys.executable).parent / "pasr"
    cmd = [str(exe), "eval", "--model", args.model, "--benchmark", "gsm8k", "--data-file", str(subset),
           "--methods", "vanilla", "--max-tokens", str(args.max_tokens), "--batch-size", str(args.batch_size),
           "--dtype", args.dtype, "--output", str(out)]
    seconds = run_timed(cmd, args.threads, work / "pasr.log")
    lines = [json.loads(x) for x in (out / "gsm8k" / "vanilla.jsonl").read_text().splitlines()]
    return {"seconds": seconds, "n": len(lines), "tokens": sum(x["tokens"] for x in lines),
            "accuracy": sum(x["score"] for x in lines) / len(lines),
            "texts": {x["id"]: x["final"] for x in lines}}


def lmeval_arm(args, path: str, task_dir: Path, work: Path, tokenizer) -> dict:
    out = work / "lmeval_out"
    cmd = [sys.executable, "-m", "lm_eval", "run", "--model", "hf",
           "--model_args", f"pretrained={path},dtype={args.dtype}", "--tasks", TASK, "--include_path", str(task_dir),
           "--batch_size", str(args.batch_size), "--device", "cpu", "--apply_chat_template",
           "--system_instruction", STANDARD_SYSTEM_PROMPT, "--log_samples", "--output_path", str(out)]
    seconds = run_timed(cmd, args.threads, work / "lmeval.log")
    results = json.loads(Path(sorted(glob.glob(str(out / "**" / "results_*.json"), recursive=True))[-1]).read_text())
    metrics = results["results"][TASK]
    samples_file = sorted(glob.glob(str(out / "**" / f"samples_{TASK}_*.jsonl"), recursive=True))[-1]
    samples = [json.loads(x) for x in Path(samples_file).read_text().splitlines()]
    texts, prompts = {}, {}
    for s in samples:
        doc_id = s["doc"]["id"]
        texts[doc_id] = s["resps"][0][0]
        prompts[doc_id] = s["arguments"]["gen_args_0"]["arg_0"]
    tokens = 0
    for text in texts.values():
        n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        tokens += min(n + 1, args.max_tokens) if n < args.max_tokens else n
    return {"seconds": seconds, "n": len(texts), "tokens": tokens, "texts": texts, "prompts": prompts,
            "exact_match": {k.split(",")[-1]: v for k, v in metrics.items()
                            if k.startswith("exact_match,")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="weights dtype for both arms (pasr's default 'auto' autocasts, which lm-eval cannot)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--order", choices=["lmeval-first", "pasr-first"], default="lmeval-first")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data} not found (pass --data PATH to a GSM8K JSONL with question/answer fields)")

    path = resolve(args.model)
    tokenizer = load_tokenizer(path)
    records = load_benchmark("gsm8k", data_file=args.data, limit=args.n, seed=0)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pasr-bench-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    subset = work / "gsm8k_subset.jsonl"
    with subset.open("w") as fh:
        for r in records:
            target = r.reference.split("####")[-1].strip().replace(",", "")
            fh.write(json.dumps({"id": r.id, "question": r.question, "answer": r.reference,
                                 "prompt": user_message(r.question, r.task), "target": target}) + "\n")
    task_dir = work / "tasks"
    task_dir.mkdir(exist_ok=True)
    (task_dir / f"{TASK}.yaml").write_text(TASK_YAML.format(task=TASK, data=subset, max_tokens=args.max_tokens))

    print(f"model {args.model} ({path}); {len(records)} GSM8K examples; max tokens {args.max_tokens}; "
          f"batch {args.batch_size}; greedy; dtype {args.dtype}; {args.threads} thread(s); work dir {work}")
    arms = {}
    order = ["lm-eval", "pasr"] if args.order == "lmeval-first" else ["pasr", "lm-eval"]
    for arm in order:
        print(f"running {arm} ...", flush=True)
        arms[arm] = (lmeval_arm(args, path, task_dir, work, tokenizer) if arm == "lm-eval"
                     else pasr_arm(args, subset, work))

    p, lm = arms["pasr"], arms["lm-eval"]
    by_id = {r.id: r for r in records}
    expected = {r.id: tokenizer.apply_chat_template(chat(STANDARD_SYSTEM_PROMPT, r.question, r.task), tokenize=False,
                                                     add_generation_prompt=True) for r in records}
    same_prompt = sum(lm["prompts"].get(i) == t for i, t in expected.items())
    same_text = sum(lm["texts"].get(i, "").strip() == t.strip() for i, t in p["texts"].items())
    with Scorer() as scorer:
        ids = list(lm["texts"])
        rescored = scorer.score_many([by_id[i].task for i in ids], [lm["texts"][i] for i in ids],
                                     [by_id[i].reference for i in ids])
    lm_pasr_scored = sum(rescored) / len(rescored)

    print()
    print(f"{'arm':<10}{'n':>4}{'seconds':>10}{'examples/s':>12}{'tokens':>9}{'tokens/s':>10}  accuracy")
    for name, arm in (("lm-eval", lm), ("pasr", p)):
        acc = (f"pasr scorer {100 * arm['accuracy']:.1f}%" if name == "pasr" else
               ", ".join(f"{k} {100 * v:.1f}%" for k, v in sorted(arm["exact_match"].items()))
               + f"; pasr scorer on its responses {100 * lm_pasr_scored:.1f}%")
        print(f"{name:<10}{arm['n']:>4}{arm['seconds']:>10.1f}{arm['n'] / arm['seconds']:>12.3f}{arm['tokens']:>9}"
              f"{arm['tokens'] / arm['seconds']:>10.1f}  {acc}")
    ratio = (p["n"] / p["seconds"]) / (lm["n"] / lm["seconds"])
    print(f"\npasr / lm-eval examples/s: {ratio:.2f}x   (tokens/s: "
          f"{(p['tokens'] / p['seconds']) / (lm['tokens'] / lm['seconds']):.2f}x)")
    print(f"identical prompts: {same_prompt}/{len(expected)}; identical responses: {same_text}/{len(p['texts'])}")
    print(f"arms ran back to back in the order {' then '.join(order)}; logs in {work}")


if __name__ == "__main__":
    main()
