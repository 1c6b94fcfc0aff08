"""Issue 13's table: every trained baseline and PASR, each trained by its CPU recipe, on the same held-out problems.

Arms (``--arms``, default all), each trained from the built-in base model by its packaged CPU recipe and then
evaluated by ``pasr eval`` with the method it trains for:

========  =========================================================  =======================================
arm       training                                                   evaluation (``pasr eval --methods``)
========  =========================================================  =======================================
base      none (the built-in model)                                  ``vanilla``, ``pasr`` (PASR(+prompt))
pasr      ``pasr train`` (recipes/cpu-default.yaml)                  ``pasr``
ift       ``pasr baseline ift`` on the PASR run's rollouts           ``pasr``
star      ``pasr baseline star`` (recipes/cpu-star.yaml)             ``vanilla``
ptr       ``pasr baseline ptr`` (recipes/cpu-ptr.yaml)               ``ptr`` (3 rounds)
score     ``pasr baseline score`` (recipes/cpu-score.yaml)           ``score`` (1 round: two attempts)
rise      ``pasr baseline rise`` (recipes/cpu-rise.yaml)             ``rise-oracle``, ``rise`` (4 rounds: 5 turns)
========  =========================================================  =======================================

Every evaluation uses the same ``--limit`` held-out problems of the built-in task (``pasr data synthetic --split
test``: no calculation is shared with any training set), greedy decoding, the same ``--max-tokens`` per turn,
dtype and batch size; the baselines' own end-of-run held-out evaluations are switched off (the table evaluates
all arms one way). Tokens count every turn of a multi-turn method (its cost). ``pasr report`` over all of it
goes to OUT/report, and OUT/table.md / table.json hold the table: accuracy with its 95% bootstrap interval,
the difference from the base model's standard answer with a paired bootstrap 95% interval, tokens per problem
and refine rate.

Everything is a ``pasr`` command run as a subprocess (logs in OUT/logs/), ``--jobs`` at a time with one thread
each, finished jobs skipped on a rerun (resumable; :mod:`cpu_evidence`'s runner), per-job seconds in
OUT/timing.json, the commit of each invocation in OUT/commits.txt.

    python bench/baselines_table.py                                   # the whole table (hours on 2 cores)
    python bench/baselines_table.py --arms base,ptr --limit 200       # some arms
    python bench/baselines_table.py --out runs/t --limit 8 --smoke    # a smoke run (tiny-random, 1 step each;
                                                                      # IFT keeps every rollout, no STaR arm)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from cpu_evidence import ROOT, Job, record_timing, run_jobs

ARMS = ("base", "pasr", "ift", "star", "ptr", "score", "rise")
EVAL_METHODS = {"base": ("vanilla,pasr", 1), "pasr": ("pasr", 1), "ift": ("pasr", 1), "star": ("vanilla", 1),
                "ptr": ("ptr", 3), "score": ("score", 1), "rise": ("rise-oracle,rise", 4)}
"""Arm -> (methods, rounds) of its evaluation."""
NO_OWN_HELDOUT = {
    "star": ["--star_heldout", "0", "--star_eval_base", "false"],
    "ptr": ["--ptr_heldout_n", "0", "--ptr_eval_base", "false"],
    "score": ["--score_heldout_n", "0", "--score_eval_base", "false"],
    "rise": ["--rise_heldout_n", "0", "--rise_eval_base", "false"],
}
"""Switches off each baseline's own end-of-run held-out evaluation."""
TITLES = {"base": "base model", "pasr": "PASR", "ift": "PASR(+IFT)", "star": "STaR", "ptr": "PTR", "score": "SCoRe",
          "rise": "RISE"}


def plan(opts: argparse.Namespace) -> list[Job]:
    out = Path(opts.out)
    test = out / "test.jsonl"
    model = opts.model
    smoke = ["--max_steps", "1"] if opts.smoke else []
    jobs = [Job("test-data", ["data", "synthetic", "--split", "test", "--n", str(opts.limit), "--output", str(test)],
                test)]
    trained: dict[str, Path] = {"base": Path(model)}
    train = out / "train"
    if "pasr" in opts.arms or "ift" in opts.arms:
        run = train / "pasr"
        args = ["train", "--output_dir", str(run), "--model_name_or_path", model, "--resume", *smoke]
        if opts.smoke:
            args += ["--warmup_examples", "8", "--save_steps", "1"]
        jobs.append(Job("train-pasr", args, run / "train_summary.json"))
        trained["pasr"] = run / "final"
    if "ift" in opts.arms:
        run = train / "ift"
        loose = ["--ift_require_valid", "false", "--ift_require_refine", "false", "--ift_min_refine_reward", "-2"]
        jobs.append(Job("train-ift", ["baseline", "ift", "--ift_rollout_log", str(train / "pasr" / "rollouts.jsonl"),
                                      "--output_dir", str(run), "--model_name_or_path", model, *smoke,
                                      *(loose if opts.smoke else [])],
                        run / "final" / "config.json", after=["train-pasr"]))
        trained["ift"] = run / "final"
    for arm in ("star", "ptr", "score", "rise"):
        if arm in opts.arms:
            run = train / arm
            jobs.append(Job(f"train-{arm}", ["baseline", arm, "--output_dir", str(run), "--model_name_or_path", model,
                                             *NO_OWN_HELDOUT[arm], *smoke], run / "final" / "config.json"))
            trained[arm] = run / "final"
    for arm in opts.arms:
        methods, rounds = EVAL_METHODS[arm]
        folder = out / "eval" / arm
        after = ["test-data"] + ([f"train-{arm}"] if arm != "base" else [])
        jobs.append(Job(f"eval-{arm}", ["eval", "--model", str(trained[arm]), "--label", TITLES[arm], "--methods",
                                        methods, "--rounds", str(rounds), "--benchmark", "synthetic", "--data-file",
                                        str(test), "--max-tokens", str(opts.max_tokens), "--batch-size",
                                        str(opts.batch_size), "--dtype", opts.eval_dtype, "--output", str(folder)],
                        folder / ".done", after=after))
    return jobs


def table(opts: argparse.Namespace) -> dict:
    """OUT/table.{md,json}: every finished arm's methods against the base model's standard answer."""
    from pasr.report.evidence import Arm, compare, load_arm

    out = Path(opts.out)
    rows, base, pasr = [], None, None
    for arm in ARMS:
        folder = out / "eval" / arm
        if arm not in opts.arms or not (folder / ".done").exists():
            continue
        for method in EVAL_METHODS[arm][0].split(","):
            result = load_arm(Arm(f"{arm}/{method}", TITLES[arm], method, [folder]))
            if arm == "base" and method == "vanilla":
                base = result
            if arm == "pasr":
                pasr = result
            rows.append((arm, method, result))
    from pasr.report.stats import mean_ci

    lines = [f"# Trained baselines and PASR: {opts.limit} held-out built-in problems, greedy, {opts.max_tokens} "
             "tokens per turn, every turn's tokens counted", "",
             "| arm | method | accuracy % [95% CI] | vs base standard, points [paired 95% CI] | PASR vs this arm, points "
             "[paired 95% CI] | tokens | refine rate |",
             "|---|---|---:|---:|---:|---:|---:|"]
    found = []

    def points(delta: dict | None) -> str:
        return f"{delta['delta_points']:+.1f} [{delta['ci_points'][0]:+.1f}, {delta['ci_points'][1]:+.1f}]" if delta else "–"

    for arm, method, result in rows:
        scores = list(result.scores.values())
        acc, lo, hi = mean_ci(scores)
        delta = compare(result, base) if base is not None and result is not base else None
        pasr_delta = compare(pasr, result) if pasr is not None and result is not pasr else None
        entry = {"arm": arm, "method": method, "n": len(scores), "accuracy": acc, "ci": [lo, hi],
                 "tokens": result.mean_tokens, "refine_rate": result.refine_rate, "vs_base": delta,
                 "pasr_vs": pasr_delta}
        found.append(entry)
        lines.append(f"| {TITLES[arm]} | {method} | {100 * acc:.1f} [{100 * lo:.1f}-{100 * hi:.1f}] | {points(delta)} "
                     f"| {points(pasr_delta)} | {result.mean_tokens:.0f} | {100 * result.refine_rate:.1f}% |")
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "table.json").write_text(json.dumps(found, indent=2), encoding="utf-8")
    return {"rows": found, "markdown": "\n".join(lines)}


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/baselines-table", help="output folder (resumable)")
    parser.add_argument("--arms", type=lambda v: v.split(","), default=list(ARMS), help=f"comma list of {ARMS}")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="base model every arm starts from")
    parser.add_argument("--limit", type=int, default=200, help="held-out problems")
    parser.add_argument("--max-tokens", type=int, default=128, help="generated tokens per turn")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-dtype", default="bfloat16", choices=["bfloat16", "auto", "float32"])
    parser.add_argument("--jobs", type=int, default=2, help="jobs at a time (one thread each)")
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep finished runs' checkpoint-* folders")
    parser.add_argument("--smoke", action="store_true", help="one training step per arm (with --model tiny-random)")
    parser.add_argument("--table-only", action="store_true", help="no new jobs: the table of the finished arms")
    opts = parser.parse_args(argv)
    unknown = [a for a in opts.arms if a not in ARMS]
    if unknown:
        parser.error(f"--arms: unknown {', '.join(unknown)}; known: {', '.join(ARMS)}")
    if "ift" in opts.arms and "pasr" not in opts.arms:
        opts.arms.append("pasr")  # IFT trains on the PASR run's rollouts
    if opts.limit < 1:
        parser.error("--limit must be at least 1")
    if opts.smoke and opts.model == "smollm2-135m-instruct":
        opts.model = "tiny-random"
    if opts.smoke and "star" in opts.arms:
        print("--smoke: no star arm (STaR keeps only right rationales, and the random test model has none)")
        opts.arms.remove("star")
    return opts


def main() -> None:
    opts = parse_options()
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    with open(out / "commits.txt", "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {commit} {' '.join(sys.argv[1:])}\n")
    started = time.perf_counter()
    if not opts.table_only:
        run_jobs(plan(opts), opts)
        record_timing(out, {f"invocation-{int(time.time())}": round(time.perf_counter() - started, 1)})
    found = table(opts)
    evals = sorted(str(p.parent) for p in (out / "eval").glob("*/.done"))
    if evals:
        subprocess.run([sys.executable, "-m", "pasr.cli", "report", *evals, "-o", str(out / "report"), "--title",
                        "Trained baselines and PASR"], cwd=ROOT, check=True)
    print(found["markdown"])
    print(f"\nwrote {out / 'table.md'}, {out / 'table.json'}, {out / 'report'}; logs in {out / 'logs'}")


if __name__ == "__main__":
    main()
