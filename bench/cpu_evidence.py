"""The CPU evidence experiment: does PASR's comparison reward teach the built-in model to refine usefully?

One shared warm-up SFT (recipes/cpu-evidence-warmup.yaml), then GRPO from it (recipes/cpu-evidence.yaml) in
four arms that differ only in ``refine_reward_mode``: ``comparison`` (PASR), ``none`` (the plain-GRPO control:
format + accuracy rewards only), and the ``single`` / ``trigger`` ablations. PASR and the control run with
every seed, the ablations with the first ``--ablation-seeds``. Then ``pasr eval`` on held-out level-3 problems
(test split: no calculation is shared with training) of the warm-up alone (standard and PASR prompts,
self-refine, self-refine-oracle), the base model with the PASR prompt, and every trained model; ``pasr report``
over all of it; and the arm-against-arm evidence (paired bootstrap over problems, seeds pooled per problem)
in OUT/evidence.md and OUT/evidence.json.

Everything is a ``pasr`` command run as a subprocess (logs in OUT/logs/), at most ``--jobs`` at a time with
``OMP_NUM_THREADS=1`` each (two one-thread processes beat one two-thread process on 2 cores; the lever's
warm-up chain, which nothing can run beside, takes all ``--jobs`` threads). A rerun skips finished jobs (resumable), so an interrupted run loses at
most the job in flight.

    python bench/cpu_evidence.py                       # the full experiment (about 80 min on 2 cores)
    python bench/cpu_evidence.py --out runs/x --seeds 0 --limit 32 --max-steps 2 --warmup-examples 16   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# Arms trained from the warm-up: name -> refine_reward_mode.
TRAINED_ARMS = {"pasr": "comparison", "control": "none", "single": "single", "trigger": "trigger"}


@dataclass
class Job:
    name: str
    args: list[str]
    done: Path
    after: list[str] = field(default_factory=list)
    threads: int = 1
    """CPU threads (and job slots) it takes; the own-error warm-up chain runs alone on all of them."""


def pasr_cli() -> list[str]:
    return [sys.executable, "-m", "pasr.cli"]


def plan(opts: argparse.Namespace) -> list[Job]:
    out = Path(opts.out)
    warmup = out / "warmup"
    test = out / "test.jsonl"
    eval_common = ["--benchmark", "synthetic", "--data-file", str(test), "--max-tokens", str(opts.max_tokens),
                   "--batch-size", str(opts.batch_size), "--dtype", opts.eval_dtype]
    jobs = [
        Job("test-data", ["data", "synthetic", "--split", "test", "--difficulty", "3", "--n", str(opts.limit),
                          "--output", str(test)], test),
    ]
    if opts.own_error_warmup:
        # Lever: a warm-up without refines, its own sampled mistakes spliced with fixes, then SFT on those.
        clean = out / "warmup-clean"
        own = out / "own-errors.jsonl"
        jobs += [
            Job("warmup-clean", ["sft", "--config", "cpu-evidence-warmup.yaml", "--output_dir", str(clean),
                                 "--model_name_or_path", opts.model, "--warmup_refine_share", "0",
                                 *warmup_overrides(opts)], clean / "final" / "config.json", threads=opts.jobs),
            Job("own-errors", ["data", "own-errors", "--model", str(clean / "final"), "--difficulty", "3",
                               "--n", str(opts.own_error_problems), "--output", str(own)], own,
                after=["warmup-clean"], threads=opts.jobs),
            Job("warmup", ["sft", "--config", "cpu-evidence-warmup.yaml", "--output_dir", str(warmup),
                           "--model_name_or_path", str(clean / "final"), "--dataset", "file", "--data_file", str(own)],
                warmup / "final" / "config.json", after=["own-errors"], threads=opts.jobs),
        ]
    else:
        jobs.append(Job("warmup", ["sft", "--config", "cpu-evidence-warmup.yaml", "--output_dir", str(warmup),
                                   "--model_name_or_path", opts.model, *warmup_overrides(opts)],
                        warmup / "final" / "config.json"))
    trained = []
    for seed in opts.seeds:
        for arm, mode in TRAINED_ARMS.items():
            if arm not in opts.arms or (arm in ("single", "trigger") and seed not in opts.seeds[: opts.ablation_seeds]):
                continue
            run = out / "train" / f"{arm}-s{seed}"
            args = ["train", "--config", "cpu-evidence.yaml", "--model_name_or_path", str(warmup / "final"),
                    "--refine_reward_mode", mode, "--seed", str(seed), "--output_dir", str(run),
                    "--resume"]  # a killed run continues from its newest checkpoint
            if opts.max_steps is not None:
                args += ["--max_steps", str(opts.max_steps)]
            jobs.append(Job(f"train-{arm}-s{seed}", args, run / "train_summary.json", after=["warmup"]))
            trained.append((arm, seed, run / "final"))
    evals = [("eval-warmup", str(warmup / "final"), "warm-up only", opts.warmup_methods, ["warmup"])]
    if opts.base_eval:
        evals.insert(0, ("eval-base", opts.model, "base model", "pasr", []))
    for arm, seed, model in trained:
        methods = "pasr,vanilla" if arm == "pasr" and opts.standard_eval else "pasr"
        evals.append((f"eval-{arm}-s{seed}", str(model), f"{arm} seed {seed}", methods, [f"train-{arm}-s{seed}"]))
    for name, model, label, methods, after in evals:
        folder = out / "eval" / name.removeprefix("eval-")
        jobs.append(Job(name, ["eval", "--model", model, "--label", label, "--methods", methods, "--output",
                               str(folder), *eval_common], folder / ".done", after=["test-data", *after]))
    return jobs


def warmup_overrides(opts: argparse.Namespace) -> list[str]:
    return [] if opts.warmup_examples is None else ["--warmup_examples", str(opts.warmup_examples)]


def run_jobs(jobs: list[Job], opts: argparse.Namespace) -> dict[str, float]:
    """Run jobs whose prerequisites are done, ``--jobs`` at a time, in plan order; returns seconds per job."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    logs = Path(opts.out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pending = [j for j in jobs if not j.done.exists()]
    finished = {j.name for j in jobs if j.done.exists()}
    running: dict[str, tuple[subprocess.Popen, float, Job]] = {}
    seconds: dict[str, float] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} jobs"),
                  TimeElapsedColumn()) as progress:
        task = progress.add_task("evidence", total=len(jobs), completed=len(finished))
        while pending or running:
            for job in list(pending):
                busy = sum(j.threads for _, _, j in running.values())
                if busy + job.threads <= max(opts.jobs, job.threads) and all(a in finished for a in job.after):
                    env = {**os.environ, "OMP_NUM_THREADS": str(job.threads), "HF_HUB_OFFLINE": "1",
                           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
                    log = open(logs / f"{job.name}.log", "a", encoding="utf-8")  # noqa: SIM115 (closed by the child)
                    proc = subprocess.Popen([*pasr_cli(), *job.args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                            cwd=ROOT)
                    running[job.name] = (proc, time.perf_counter(), job)
                    pending.remove(job)
                    progress.console.print(f"start  {job.name}: pasr {' '.join(job.args)}", highlight=False)
            time.sleep(2)
            for name, (proc, started, job) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[name]
                seconds[name] = time.perf_counter() - started
                if proc.returncode != 0 or (not job.name.startswith("eval-") and not job.done.exists()):
                    for other, _, _ in running.values():
                        other.terminate()
                    raise SystemExit(f"{name} failed (exit {proc.returncode}); see {logs / (name + '.log')}")
                if job.name.startswith("eval-"):
                    job.done.parent.mkdir(parents=True, exist_ok=True)
                    job.done.write_text(f"{seconds[name]:.1f}\n", encoding="utf-8")
                if not job.name.startswith("eval-") and not opts.keep_checkpoints:
                    prune_checkpoints(job.done)
                record_timing(Path(opts.out), {name: round(seconds[name], 1)})
                finished.add(name)
                progress.advance(task)
                progress.console.print(f"done   {name} in {seconds[name] / 60:.1f} min", highlight=False)
    return seconds


def prune_checkpoints(done: Path) -> None:
    """Delete a finished training run's ``checkpoint-*`` folders: with optimizer state each is about 3x the model
    (1.6 GB here), 17 GB over the experiment, and a finished run (its ``done`` file exists) never resumes."""
    run = done.parent.parent if done.parent.name == "final" else done.parent
    for checkpoint in run.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)


def record_timing(out: Path, entries: dict) -> None:
    """Merge ``entries`` into OUT/timing.json at once, so a killed or resumed run keeps every job's seconds."""
    timing = out / "timing.json"
    old = json.loads(timing.read_text(encoding="utf-8")) if timing.exists() else {}
    timing.write_text(json.dumps({**old, **entries}, indent=2), encoding="utf-8")


def evidence(opts: argparse.Namespace) -> dict:
    """Arm-against-arm comparisons and the targets, written to OUT/evidence.{md,json}."""
    from pasr.report.evidence import (Arm, arms_markdown, arms_plot, check_targets, compare, comparisons_markdown,
                                      load_arm, refine_claims, refine_vs_standard, refines_by_phase,
                                      require_same_generation, targets_markdown, training_markdown,
                                      training_refine_vs_baseline)

    out = Path(opts.out)
    ev = out / "eval"

    def seeds_of(arm: str, folder: Path = ev) -> list[Path]:
        return [folder / f"{arm}-s{seed}" for seed in opts.seeds if (folder / f"{arm}-s{seed}" / ".done").exists()]

    arm_specs = [
        Arm("pasr", "PASR (comparison reward)", "pasr", seeds_of("pasr")),
        Arm("pasr-standard", "PASR model, standard prompt", "vanilla", seeds_of("pasr") if opts.standard_eval else []),
        Arm("control", "plain-GRPO control (format + accuracy)", "pasr", seeds_of("control")),
        Arm("single", "ablation: single reward", "pasr", seeds_of("single")),
        Arm("trigger", "ablation: trigger reward", "pasr", seeds_of("trigger")),
        Arm("warmup", "warm-up only, PASR prompt", "pasr", [ev / "warmup"]),
        Arm("warmup-standard", "warm-up only, standard prompt", "vanilla", [ev / "warmup"]),
        Arm("self-refine", "self-refine (on the warm-up)", "self-refine", [ev / "warmup"]),
        Arm("self-refine-oracle", "self-refine-oracle (on the warm-up)", "self-refine-oracle", [ev / "warmup"]),
        Arm("base", "PASR(+prompt) on the base model", "pasr", [ev / "base"]),
    ]
    warmup_methods = opts.warmup_methods.split(",")
    arm_specs = [a for a in arm_specs if a.runs and (a.runs != [ev / "warmup"] or a.method in warmup_methods)
                 and (a.runs != [ev / "base"] or opts.base_eval)]
    arms = {a.name: load_arm(a) for a in arm_specs}
    training = training_refine_vs_baseline(sorted((out / "train").glob("pasr-s*/rollouts.jsonl")))
    warmup_refines = (refine_vs_standard(arms["warmup"], arms["warmup-standard"])
                      if "warmup" in arms and "warmup-standard" in arms else {"pairs": 0})
    claims = {arm: refine_claims(sorted((out / "train").glob(f"{arm}-s*/rollouts.jsonl"))) for arm in TRAINED_ARMS}
    phases = {arm: refines_by_phase(sorted((out / "train").glob(f"{arm}-s*/rollouts.jsonl"))) for arm in TRAINED_ARMS}
    targets, comparisons = check_targets(arms, training=training)
    if "control" in arms:  # does the accuracy reward alone clear the bar PASR is held to?
        comparisons["control-vs-warmup"] = compare(arms["control"], arms["warmup"])
    versus = {}
    if opts.versus:  # the same arm in another experiment folder, e.g. the same recipe with fewer steps
        other = Path(opts.versus) / "eval"
        for name in ("pasr", "control"):
            if name in arms and seeds_of(name, other):
                theirs = load_arm(Arm(f"{name}@{opts.versus}", name, "pasr", seeds_of(name, other)))
                require_same_generation({"here": arms[name], "there": theirs})
                versus[name] = compare(arms[name], theirs)
    summaries = {p.parent.name: json.loads(p.read_text()) for p in sorted((out / "train").glob("*/train_summary.json"))}
    result = {
        "arms": {name: {"label": r.arm.label, "method": r.arm.method, "accuracy": r.accuracy,
                        "tokens": r.mean_tokens, "refine_rate": r.refine_rate, "per_seed": r.per_seed}
                 for name, r in arms.items()},
        "comparisons": comparisons,
        "targets": [t.__dict__ for t in targets],
        "training_refines": training,
        "training_refine_claims": claims,
        "training_refines_by_phase": phases,
        "versus": {"folder": opts.versus, **versus},
        "warmup_refines_vs_standard": warmup_refines,
        "train_summaries": summaries,
    }
    (out / "evidence.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    arms_plot(arms, out / "evidence-arms.png")
    n = len(next(iter(arms.values())).scores)
    text = [
        f"# CPU evidence: {n} held-out level-3 problems, greedy, {opts.max_tokens} tokens",
        "", "## Arms", "", arms_markdown(arms), "", "![arms](evidence-arms.png)",
        "", "## PASR against each arm (seeds pooled per problem)", "", comparisons_markdown(comparisons, arms),
        "", "## Targets", "", targets_markdown(targets),
        "", "## Refines during PASR training (training questions, T=0.9)", "",
        training_markdown(training),
        "", "Refines that state a calculation (\"14 + 8 is 22\"), and how many of those calculations are right:",
        "", "| Arm | refines | stating a calculation | calculation right |", "|---|---:|---:|---:|",
        *(f"| {arm} | {c['refines']} | {c['checkable']} | {c['right']} ({c['right'] / max(1, c['checkable']):.0%}) |"
          for arm, c in claims.items() if c["refines"]),
        "", "Refining completions in training rollouts, by thirds of the run (all seeds):",
        "", "| Arm | first third | second third | last third |", "|---|---:|---:|---:|",
        *(f"| {arm} | " + " | ".join(f"{p['refining']} of {p['completions']}" for p in parts) + " |"
          for arm, parts in phases.items() if parts),
        "",
    ]
    if "control-vs-warmup" in comparisons:
        c = comparisons["control-vs-warmup"]
        text += [f"Control minus warm-up (PASR prompt): {c['delta_points']:+.1f} points (95% CI {c['ci_points'][0]:+.1f} "
                 f"to {c['ci_points'][1]:+.1f}), {c['token_ratio']:.2f}x tokens.", ""]
    if versus:
        text += [f"## Against the same arms in {opts.versus}", "", "| Arm | here minus there, points | 95% CI |",
                 "|---|---:|---|",
                 *(f"| {arm} | {c['delta_points']:+.1f} | {c['ci_points'][0]:+.1f} to {c['ci_points'][1]:+.1f} |"
                   for arm, c in versus.items()), ""]
    if warmup_refines["pairs"]:
        w = warmup_refines
        text += ["## Warm-up refines on held-out problems", "",
                 f"{w['pairs']} refining PASR-prompt answers of the warm-up: right {w['refining_accuracy']:.1%}, against "
                 f"{w['standard_accuracy']:.1%} for its standard-prompt answers to the same problems "
                 f"({w['delta_points']:+.1f} points, 95% CI {w['ci_points'][0]:+.1f} to {w['ci_points'][1]:+.1f}).", ""]
    (out / "evidence.md").write_text("\n".join(text), encoding="utf-8")
    return result


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/evidence")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="base model of the warm-up")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ablation-seeds", type=int, default=1, help="seeds the single/trigger arms run with")
    parser.add_argument("--limit", type=int, default=500, help="held-out problems")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16, help="eval batch size")
    parser.add_argument("--max-steps", type=int, default=None, help="override the recipe's GRPO steps")
    parser.add_argument("--warmup-examples", type=int, default=None, help="override the warm-up recipe's size")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at a time (one thread each)")
    parser.add_argument("--arms", type=lambda v: v.split(","), default=list(TRAINED_ARMS),
                        help=f"trained arms, comma list of {','.join(TRAINED_ARMS)}")
    parser.add_argument("--warmup-methods", default="vanilla,pasr,self-refine,self-refine-oracle",
                        help="eval methods of the warm-up model")
    parser.add_argument("--no-base-eval", dest="base_eval", action="store_false",
                        help="skip PASR(+prompt) on the base model")
    parser.add_argument("--eval-dtype", default="bfloat16", choices=["bfloat16", "auto", "float32"],
                        help="pasr eval --dtype: bfloat16 (bf16 weights, eager attention) decodes 3x faster on a "
                             "bf16 CPU than auto (fp32 weights under bf16 autocast); see bench/bench_cpu_decode.py")
    parser.add_argument("--own-error-warmup", action="store_true",
                        help="lever: warm-up refines spliced after the warm-up model's own sampled mistakes")
    parser.add_argument("--own-error-problems", type=int, default=160,
                        help="training problems sampled for --own-error-warmup")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep finished training runs' checkpoint-* folders (deleted by default: 1.6 GB each)")
    parser.add_argument("--versus", default=None, metavar="OTHER_OUT",
                        help="also compare PASR and control with the same arms of another experiment folder")
    parser.add_argument("--analyse-only", action="store_true",
                        help="no new jobs: report and evidence over the finished evals of --seeds")
    parser.add_argument("--standard-eval", action="store_true",
                        help="also evaluate the PASR models with the standard prompt (+20 CPU-minutes)")
    return parser.parse_args(argv)


def main() -> None:
    opts = parse_options()
    started = time.perf_counter()
    if not opts.analyse_only:
        run_jobs(plan(opts), opts)
    out = Path(opts.out)
    done = sorted(str(p.parent) for p in (out / "eval").glob("*/.done"))
    subprocess.run([*pasr_cli(), "report", *done, "-o", str(out / "report"),
                    "--title", "PASR CPU evidence"], check=True, cwd=ROOT,
                   stdout=open(out / "logs" / "report.log", "w", encoding="utf-8"), stderr=subprocess.STDOUT)
    from pasr.errors import PasrError

    try:
        result = evidence(opts)
    except PasrError as error:
        raise SystemExit(f"evidence: {error}") from None
    wall = time.perf_counter() - started
    timing = out / "timing.json"
    walls = json.loads(timing.read_text(encoding="utf-8")).get("invocation_wall_s", []) if timing.exists() else []
    record_timing(out, {"invocation_wall_s": [*walls, round(wall, 1)]})
    print((out / "evidence.md").read_text(encoding="utf-8"))
    met = sum(t["passed"] for t in result["targets"])
    print(f"{met}/{len(result['targets'])} targets met; wall time of this invocation {wall / 60:.1f} min")
    print(f"evidence: {out / 'evidence.md'}  report: {out / 'report' / 'report.html'}  logs: {out / 'logs'}")


if __name__ == "__main__":
    main()
