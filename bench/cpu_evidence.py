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
``OMP_NUM_THREADS=1`` each (two one-thread processes beat one two-thread process on 2 cores: decoding at batch
16, 149 against 111 tokens/s, ``bench/bench_cpu_slots.py``; but the warm-up, or the own-error lever's warm-up
chain, which every other job waits on, runs alone on all ``--jobs`` threads). A rerun skips finished jobs and
resumes a warm-up or GRPO run from its last checkpoint (every 16 or 4 steps) and an evaluation from its last
appended chunk, so an interrupted run loses at most the work since those.

    python bench/cpu_evidence.py                       # the full experiment (about 80 min on 2 cores)
    python bench/cpu_evidence.py --out runs/x --seeds 0 --limit 32 --max-steps 2 --warmup-examples 16   # smoke

``--family sums`` (issue 12) runs the same plan on the built-in sums family (40% easy sums of two 2-digit numbers
without a carry, 60% hard 4-digit sums with 2+ carries, where a column check inside ``<refine>`` is more reliable
than a direct answer): the held-out problems come from ``pasr data synthetic --family sums --split test``, the
warm-up and GRPO get ``--synthetic_family sums`` (and no level), GRPO's ``max_completion_length`` follows
``--max-tokens`` (default 288 for sums: a refining hard solution is 244-260 tokens, the recipe's 128 would cut it),
every arm is evaluated with ``pasr eval --benchmark sums`` and the default folder is runs/evidence-sums. Because
the records carry ``meta["difficulty"]``, the evidence adds per arm the refine rate on easy and on hard problems
(95% CIs, hard/easy ratio), the accuracy of refining and non-refining answers, the refining answers against the
warm-up's standard-prompt answers to the same problems (paired bootstrap), tokens, and issue 12's targets
(:mod:`pasr.report.evidence`). ``--mask-slips`` is a lever, one change at a time: the warm-up leaves its planted
slips out of the loss (``--warmup_mask_slips true``); default folder runs/evidence[-sums]-mask-slips. A folder
holds one experiment: continuing it with another family or warm-up is refused (OUT/experiment.json).

    python bench/cpu_evidence.py --family sums        # runs/evidence-sums (about 2-3.5 h, see below)
    python bench/cpu_evidence.py --family sums --mask-slips --arms pasr,control --warmup-methods vanilla,pasr \
        --no-base-eval --versus runs/evidence-sums     # the masked-slip lever (about 65-145 min)

Time: each invocation prints an estimate first (COSTS: per-job seconds from the measured arith run and the sums
step times, simulated on the ``--jobs`` slots as :func:`run_jobs` schedules them; jobs already done are left out),
records every job's seconds in OUT/timing.json as it ends (a job stopped by Ctrl-C or SIGTERM keeps its seconds so
far and is timed in full when a later invocation finishes it), and prints them beside the estimate at the end.
Arith's plan comes to 71-90 min (measured: 78, in the plan order before :func:`evidence_first`). For sums, **8 GRPO
steps instead of the recipe's 12** (SUMS_GRPO_STEPS; the same in every arm, learning rate still decaying to 0 over
the run). Measured in the sums runs (README, "The sums experiment": the first, and the second's seed 0; COSTS): the
640-example warm-up 33 min alone at two threads, a run of 8 steps 9.8-17.8 min at one thread beside a second job
(288-token completions, 70-130 s a step), the evaluation of 500 problems 4.2-6.4 min for a trained model that rarely
refines but 33 min for one that refines nearly everywhere (as trigger, 29 min, and the second run's PASR did), the
warm-up's four methods 27-28. The plan with ``--mask-slips --warmup-examples 640`` comes to 137-213 min, the high
end if every PASR seed learns to refine everywhere; the first run took about 130 min of wall time after its warm-up.
Kept whole: 500 held-out problems, 3 seeds of PASR and control, every arm and evaluation method the issue names, one
evaluation setting for all. ``--max-steps 12`` restores the recipe's length (about 20-35 min more).
``--learning-rate`` is a GRPO lever (every arm; recorded in OUT/experiment.json with the warm-up's size).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# Arms trained from the warm-up: name -> refine_reward_mode.
TRAINED_ARMS = {"pasr": "comparison", "control": "none", "single": "single", "trigger": "trigger"}
SUMS_GRPO_STEPS = 8
"""GRPO steps of the sums experiment unless --max-steps says otherwise (the module docstring says why)."""


@dataclass
class Job:
    name: str
    args: list[str]
    done: Path
    after: list[str] = field(default_factory=list)
    threads: int = 1
    """CPU threads (and job slots) it takes; the warm-up (and the own-error lever's chain) runs alone on all."""


def pasr_cli() -> list[str]:
    return [sys.executable, "-m", "pasr.cli"]


def plan(opts: argparse.Namespace) -> list[Job]:
    out = Path(opts.out)
    warmup = out / "warmup"
    test = out / "test.jsonl"
    sums = opts.family == "sums"
    eval_common = ["--benchmark", benchmark_of(opts), "--data-file", str(test), "--max-tokens", str(opts.max_tokens),
                   "--batch-size", str(opts.batch_size), "--dtype", opts.eval_dtype]
    test_args = (["data", "synthetic", "--family", "sums", "--split", "test"] if sums
                 else ["data", "synthetic", "--split", "test", "--difficulty", "3"])
    jobs = [
        Job("test-data", [*test_args, "--n", str(opts.limit), "--output", str(test)], test),
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
        # every other job waits on the warm-up, so it runs alone on all the threads (the sums warm-up: 33 min
        # alone at two threads, 73 min at one thread beside other jobs)
        jobs.append(Job("warmup", ["sft", "--config", "cpu-evidence-warmup.yaml", "--output_dir", str(warmup),
                                   "--model_name_or_path", opts.model, *warmup_overrides(opts)],
                        warmup / "final" / "config.json", threads=opts.jobs))
    trained = []
    for seed in opts.seeds:
        for arm, mode in TRAINED_ARMS.items():
            if arm not in opts.arms or (arm in ("single", "trigger") and seed not in opts.seeds[: opts.ablation_seeds]):
                continue
            run = out / "train" / f"{arm}-s{seed}"
            args = ["train", "--config", "cpu-evidence.yaml", "--model_name_or_path", str(warmup / "final"),
                    "--refine_reward_mode", mode, "--seed", str(seed), "--output_dir", str(run),
                    "--resume"]  # a killed run continues from its newest checkpoint
            args += family_overrides(opts)
            if sums:  # the recipe's 128 tokens cut a refining hard solution (~160 tokens) short
                args += ["--max_completion_length", str(opts.max_tokens)]
            if grpo_steps(opts) is not None:
                args += ["--max_steps", str(grpo_steps(opts))]
            if opts.learning_rate is not None:
                args += ["--learning_rate", str(opts.learning_rate)]
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
    return sorted(jobs, key=lambda job: evidence_first(job, opts))


def evidence_first(job: Job, opts: argparse.Namespace) -> int:
    """Plan rank (a free slot takes the first ready job in plan order, :func:`run_jobs`): the data and the warm-up;
    a trained model's evaluation as soon as its run ends; PASR and control at the first seed; the warm-up's
    evaluation; PASR and control at the other seeds; the ablations; the base model. A run stopped part-way (on a
    slow CPU it spans several sittings) then holds the issue's main comparisons first, each arm evaluated."""
    if job.name.startswith("train-"):
        arm, seed = job.name.removeprefix("train-").rsplit("-s", 1)
        if arm in ("single", "trigger"):
            return 5
        return 2 if int(seed) == opts.seeds[0] else 4
    if job.name == "eval-warmup":
        return 3
    if job.name == "eval-base":
        return 6
    return 1 if job.name.startswith("eval-") else 0


def warmup_overrides(opts: argparse.Namespace) -> list[str]:
    args = [] if opts.warmup_examples is None else ["--warmup_examples", str(opts.warmup_examples)]
    args += family_overrides(opts)
    if opts.mask_slips:
        args += ["--warmup_mask_slips", "true"]
    return args


def family_overrides(opts: argparse.Namespace) -> list[str]:
    """Recipe overrides of the task family: the recipes are arith level 3, and sums has no level."""
    return ["--synthetic_family", "sums", "--synthetic_difficulty", "None"] if opts.family == "sums" else []


def benchmark_of(opts: argparse.Namespace) -> str:
    """The `pasr eval` benchmark (and results subfolder) of the family's held-out problems."""
    return "sums" if opts.family == "sums" else "synthetic"


def grpo_steps(opts: argparse.Namespace) -> int | None:
    """GRPO steps to override the recipe's 12 with: ``--max-steps``, else SUMS_GRPO_STEPS for sums (see the
    module docstring: the time budget), else None (the recipe's)."""
    if opts.max_steps is not None:
        return opts.max_steps
    return SUMS_GRPO_STEPS if opts.family == "sums" else None


# --- time estimate ------------------------------------------------------------------------------------------
# Seconds at one thread beside one other job, as (low, high); the warm-up's alone on two threads (--jobs 2).
# arith: measured in the first experiment (README, "Results on CPU": warm-up 10.7 min for 32 steps at one thread
# beside the base model's evaluation, so 10-20 s a step alone on two, GRPO 6.3-8.6 min per 12-step run,
# evaluations of 500 problems 4.5-5.3 min per trained model, trigger 7.1, base 6.6, the warm-up's four methods
# 29). sums: measured in the two full sums runs (640-example warm-up, 288 tokens; README, "The sums experiment"):
# warm-up 32.5-33 min alone at two threads (25 s a step); GRPO runs of 8 steps 9.8-17.8 min (70-130 s a step
# after a 45 s start: the more the rollouts refine, the longer); evaluations of 500 problems 4.2-6.4 min per
# trained model that rarely refines, but 33.3 min for a PASR model that refines nearly everywhere (~200 tokens an
# answer), trigger 28.8 (it refines on every problem), base 6.6-10.8, the warm-up's four methods 27.3-28.1 in all
# (split here by their answers' lengths: vanilla and pasr 31 tokens, self-refine 61 over three turns, the oracle
# 42). Every evaluation above predates the eval backend's prefix cache and grouped-query attention (2026-12-03,
# bench/bench_prefix_cache.py), which leave the answers unchanged and take less time: upper bounds.
COSTS = {
    "arith": {"warmup_step": (10, 20), "grpo_step": (28, 40), "startup": (30, 30),
              "eval": {"vanilla": (270, 270), "pasr": (265, 320), "pasr@warmup": (300, 300),
                       "pasr@trigger": (426, 426), "pasr@base": (396, 396), "self-refine": (660, 660),
                       "self-refine-oracle": (510, 510)}},
    "sums": {"warmup_step": (25, 25), "grpo_step": (70, 130), "startup": (45, 45),
             "eval": {"vanilla": (145, 145), "pasr": (250, 385), "pasr@pasr": (358, 2000), "pasr@warmup": (145, 145),
                      "pasr@trigger": (1728, 1728), "pasr@base": (396, 646), "self-refine": (800, 800),
                      "self-refine-oracle": (550, 550)}},
}
OWN_ERROR_COSTS = {"own-errors": (210, 210), "warmup": (980, 980)}
"""The own-error lever's chain (README: 29 min in all, with the clean warm-up's 9.2)."""
FP32_FACTOR = {"warmup": (2.23, 2.23), "train": (1.76, 1.78), "eval": (3.26, 3.26)}
"""How many times longer a job takes on a CPU without native bf16, where pasr trains and decodes in fp32 (low,
high). Measured on 2026-12-02 on an AMD EPYC (AVX2, no AVX-512, 2 cores) in the sums run with ``--mask-slips
--warmup-examples 640`` (README, "The sums experiment, second run"): the warm-up took 76.2 min alone at two
threads, 2.23x the 34.1 min COSTS give; the GRPO runs of seed 0, 8 steps at one thread beside each other, took
29.4 min (control) and 31.6 min (PASR) against 16.7 and 17.8 min for the same arms with native bf16 (1.76x and
1.78x); the control's seed-0 evaluation (500 problems, 31 tokens an answer) 20.9 min against 6.4 (3.26x: with
native bf16 the evaluations decode with bf16 weights, 3x faster than fp32)."""


def recipe_value(recipe: str, key: str):
    import yaml

    return yaml.safe_load((ROOT / "src" / "pasr" / "recipes" / recipe).read_text(encoding="utf-8")).get(key)


def job_seconds(job: Job, opts: argparse.Namespace, native_bf16: bool = True) -> tuple[float, float]:
    """(low, high) seconds ``job`` is expected to take: COSTS, times FP32_FACTOR where the CPU has no native bf16
    (``native_bf16`` False: pasr then trains and decodes in fp32, :func:`pasr.models.emulated_bf16`)."""
    low, high = _native_seconds(job, opts)
    if native_bf16:
        return (low, high)
    kind = ("warmup" if job.name in ("warmup", "warmup-clean") else "train" if job.name.startswith("train-")
            else "none" if job.name == "test-data" else "eval")  # eval-*, and own-errors (decoding too)
    factor = FP32_FACTOR.get(kind, (1.0, 1.0))
    return (low * factor[0], high * factor[1])


def _native_seconds(job: Job, opts: argparse.Namespace) -> tuple[float, float]:
    costs = COSTS[opts.family]
    start = costs["startup"]
    if job.name == "test-data":
        return (5.0, 5.0)
    if opts.own_error_warmup and job.name in OWN_ERROR_COSTS:
        return OWN_ERROR_COSTS[job.name]
    if job.name in ("warmup", "warmup-clean"):
        examples = opts.warmup_examples or recipe_value("cpu-evidence-warmup.yaml", "warmup_examples")
        steps = -(-examples // 8)
        return tuple(start[k] + steps * costs["warmup_step"][k] for k in (0, 1))
    if job.name.startswith("train-"):
        steps = grpo_steps(opts) or recipe_value("cpu-evidence.yaml", "max_steps")
        return tuple(start[k] + steps * costs["grpo_step"][k] for k in (0, 1))
    if job.name.startswith("eval-"):
        who = job.name.removeprefix("eval-").rsplit("-s", 1)[0]
        methods = job.args[job.args.index("--methods") + 1].split(",") if "--methods" in job.args else ["pasr"]
        per = [costs["eval"].get(f"{m}@{who}", costs["eval"].get(m, costs["eval"]["pasr"])) for m in methods]
        scale = opts.limit / 500
        return tuple(start[k] + scale * sum(p[k] for p in per) for k in (0, 1))
    return (start[0], start[1])


def simulate(jobs: list[Job], seconds: dict[str, float], slots: int) -> float:
    """Wall seconds of ``jobs`` scheduled as :func:`run_jobs` does (plan order, ``slots`` threads)."""
    clock, pending, running, finished = 0.0, list(jobs), {}, set()
    while pending or running:
        for job in list(pending):
            busy = sum(j.threads for j, _ in running.values())
            if busy + job.threads <= max(slots, job.threads) and all(a in finished for a in job.after):
                running[job.name] = (job, clock + seconds[job.name])
                pending.remove(job)
        if not running:
            raise ValueError(f"jobs {[j.name for j in pending]} wait on jobs not in the plan")
        name, (job, clock) = min(running.items(), key=lambda item: item[1][1])
        del running[name]
        finished.add(name)
    return clock


def estimate(jobs: list[Job], opts: argparse.Namespace, native_bf16: bool = True) -> dict:
    """Expected seconds per job not yet done, and the wall time they take on ``--jobs`` slots (low, high);
    ``native_bf16`` False scales them by FP32_FACTOR (:func:`job_seconds`)."""
    done = {j.name for j in jobs if j.done.exists()}
    # a prerequisite already done takes no time now
    todo = [replace(j, after=[a for a in j.after if a not in done]) for j in jobs if j.name not in done]
    per_job = {j.name: job_seconds(j, opts, native_bf16) for j in todo}
    return {
        "jobs": {name: [round(v) for v in pair] for name, pair in per_job.items()},
        "cpu_s": [round(sum(p[k] for p in per_job.values())) for k in (0, 1)],
        "wall_s": [round(simulate(todo, {n: p[k] for n, p in per_job.items()}, opts.jobs)) for k in (0, 1)],
        "done": sorted(done),
    }


def print_estimate(est: dict) -> None:
    low, high = (s / 60 for s in est["wall_s"])
    cpu_low, cpu_high = (s / 60 for s in est["cpu_s"])
    left = f" ({len(est['done'])} jobs already done)" if est["done"] else ""
    print(f"estimate: {len(est['jobs'])} jobs{left}, {cpu_low:.0f}-{cpu_high:.0f} CPU-minutes, about "
          f"{low:.0f}-{high:.0f} min of wall time with the built-in 135M model (COSTS in {Path(__file__).name})",
          flush=True)


def run_jobs(jobs: list[Job], opts: argparse.Namespace) -> dict[str, float]:
    """Run jobs whose prerequisites are done, ``--jobs`` at a time, in plan order; returns seconds per job.

    A job's seconds include those of earlier invocations that were stopped while it ran (Ctrl-C or SIGTERM:
    the running jobs are terminated and their seconds so far kept in OUT/timing.json's ``partial_s``), so a
    job resumed across invocations is timed in full."""
    logs = Path(opts.out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pending = [j for j in jobs if not j.done.exists()]
    finished = {j.name for j in jobs if j.done.exists()}
    running: dict[str, tuple[subprocess.Popen, float, Job]] = {}
    seconds: dict[str, float] = {}
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _run_loop(pending, finished, running, seconds, logs, opts, len(jobs))
    except KeyboardInterrupt:
        now = time.perf_counter()
        for proc, _, _ in running.values():
            proc.terminate()
        for proc, _, _ in running.values():
            proc.wait()
        partial = read_timing(Path(opts.out)).get("partial_s", {})
        for name, (_, started, _) in running.items():
            partial[name] = round(partial.get(name, 0.0) + now - started, 1)
        record_timing(Path(opts.out), {"partial_s": partial})
        raise SystemExit(f"stopped; {', '.join(running) or 'no job'} in flight, its time so far kept in "
                         f"{Path(opts.out) / 'timing.json'} (partial_s); rerun the same command to continue"
                         ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    return seconds


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _run_loop(pending: list[Job], finished: set[str], running: dict, seconds: dict[str, float], logs: Path,
              opts: argparse.Namespace, total: int) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} jobs"),
                  TimeElapsedColumn()) as progress:
        task = progress.add_task("evidence", total=total, completed=len(finished))
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
                earlier = read_timing(Path(opts.out)).get("partial_s", {})
                seconds[name] = time.perf_counter() - started + earlier.get(name, 0.0)
                if proc.returncode != 0 or (not job.name.startswith("eval-") and not job.done.exists()):
                    for other, _, _ in running.values():
                        other.terminate()
                    raise SystemExit(f"{name} failed (exit {proc.returncode}); see {logs / (name + '.log')}")
                if job.name.startswith("eval-"):
                    job.done.parent.mkdir(parents=True, exist_ok=True)
                    job.done.write_text(f"{seconds[name]:.1f}\n", encoding="utf-8")
                if not job.name.startswith("eval-") and not opts.keep_checkpoints:
                    prune_checkpoints(job.done)
                entries = {name: round(seconds[name], 1)}
                if name in earlier:
                    del earlier[name]
                    entries["partial_s"] = earlier
                record_timing(Path(opts.out), entries)
                finished.add(name)
                progress.advance(task)
                progress.console.print(f"done   {name} in {seconds[name] / 60:.1f} min", highlight=False)


def prune_checkpoints(done: Path) -> None:
    """Delete a finished training run's ``checkpoint-*`` folders: with optimizer state each is about 3x the model
    (1.6 GB here), 17 GB over the experiment, and a finished run (its ``done`` file exists) never resumes."""
    run = done.parent.parent if done.parent.name == "final" else done.parent
    for checkpoint in run.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)


def read_timing(out: Path) -> dict:
    """OUT/timing.json: seconds per finished job, ``partial_s`` (stopped jobs' seconds so far) and the
    invocations' wall seconds; {} before the first job ends."""
    timing = out / "timing.json"
    return json.loads(timing.read_text(encoding="utf-8")) if timing.exists() else {}


def record_wall(out: Path, seconds: float) -> None:
    """Append one invocation's wall seconds to OUT/timing.json's ``invocation_wall_s``."""
    record_timing(out, {"invocation_wall_s": [*read_timing(out).get("invocation_wall_s", []), round(seconds, 1)]})


def record_timing(out: Path, entries: dict) -> None:
    """Merge ``entries`` into OUT/timing.json at once, so a killed or resumed run keeps every job's seconds
    (written to a temporary file, then renamed: a stop mid-write leaves the old file whole)."""
    temporary = out / "timing.json.tmp"
    temporary.write_text(json.dumps({**read_timing(out), **entries}, indent=2), encoding="utf-8")
    os.replace(temporary, out / "timing.json")


def evidence(opts: argparse.Namespace) -> dict:
    """Arm-against-arm comparisons and the targets, written to OUT/evidence.{md,json}."""
    from pasr.report.evidence import (
        Arm,
        arms_markdown,
        arms_plot,
        check_targets,
        compare,
        comparisons_markdown,
        difficulty_evidence,
        difficulty_markdown,
        load_arm,
        read_difficulties,
        refine_claims,
        refine_vs_standard,
        refines_by_phase,
        require_same_generation,
        targets_markdown,
        training_markdown,
        training_refine_vs_baseline,
    )

    out = Path(opts.out)
    ev = out / "eval"
    bench = benchmark_of(opts)

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
    for spec in arm_specs:
        spec.benchmark = bench
    warmup_methods = opts.warmup_methods.split(",")
    arm_specs = [a for a in arm_specs if a.runs and (a.runs != [ev / "warmup"] or a.method in warmup_methods)
                 and (a.runs != [ev / "base"] or opts.base_eval)]
    arms = {a.name: load_arm(a) for a in arm_specs}
    training = training_refine_vs_baseline(sorted((out / "train").glob("pasr-s*/rollouts.jsonl")))
    warmup_refines = (refine_vs_standard(arms["warmup"], arms["warmup-standard"])
                      if "warmup" in arms and "warmup-standard" in arms else {"pairs": 0})
    claims = {arm: refine_claims(sorted((out / "train").glob(f"{arm}-s*/rollouts.jsonl"))) for arm in TRAINED_ARMS}
    phases = {arm: refines_by_phase(sorted((out / "train").glob(f"{arm}-s*/rollouts.jsonl"))) for arm in TRAINED_ARMS}
    # problems labelled easy / hard (sums): refine rates, accuracy and tokens by difficulty, issue 12's targets
    difficulties = read_difficulties(out / "test.jsonl") if (out / "test.jsonl").exists() else {}
    detail = difficulty_evidence(arms, difficulties) if difficulties else None
    targets, comparisons = check_targets(arms, training=training, difficulty=detail)
    if "control" in arms:  # does the accuracy reward alone clear the bar PASR is held to?
        comparisons["control-vs-warmup"] = compare(arms["control"], arms["warmup"])
    versus = {}
    if opts.versus:  # the same arm in another experiment folder, e.g. the same recipe with fewer steps
        other = Path(opts.versus) / "eval"
        for name in ("pasr", "control"):
            if name in arms and seeds_of(name, other):
                theirs = load_arm(Arm(f"{name}@{opts.versus}", name, "pasr", seeds_of(name, other), bench))
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
    if detail is not None:
        result["difficulty"] = detail
    (out / "evidence.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    arms_plot(arms, out / "evidence-arms.png")
    n = len(next(iter(arms.values())).scores)
    if detail is None:
        title = f"# CPU evidence: {n} held-out level-3 problems, greedy, {opts.max_tokens} tokens"
    else:
        counts = ", ".join(f"{sum(1 for i in next(iter(arms.values())).scores if difficulties[i] == label)} {label}"
                           for label in detail["labels"])
        title = (f"# CPU evidence ({opts.family}): {n} held-out problems ({counts}), greedy, {opts.max_tokens} "
                 f"tokens, {grpo_steps(opts) or recipe_value('cpu-evidence.yaml', 'max_steps')} GRPO steps")
    text = [
        title,
        "", "## Arms", "", arms_markdown(arms), "", "![arms](evidence-arms.png)",
        "", "## PASR against each arm (seeds pooled per problem)", "", comparisons_markdown(comparisons, arms),
        "", "## Targets", "", targets_markdown(targets),
        *(["", "## Easy and hard problems", "", difficulty_markdown(detail, arms)] if detail is not None else []),
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
        text += [f"Control minus warm-up (PASR prompt): {c['delta_points']:+.1f} points "
                 f"(95% CI {c['ci_points'][0]:+.1f} to {c['ci_points'][1]:+.1f}), {c['token_ratio']:.2f}x tokens.", ""]
    if versus:
        text += [f"## Against the same arms in {opts.versus}", "", "| Arm | here minus there, points | 95% CI |",
                 "|---|---:|---|",
                 *(f"| {arm} | {c['delta_points']:+.1f} | {c['ci_points'][0]:+.1f} to {c['ci_points'][1]:+.1f} |"
                   for arm, c in versus.items()), ""]
    if warmup_refines["pairs"]:
        w = warmup_refines
        text += ["## Warm-up refines on held-out problems", "",
                 f"{w['pairs']} refining PASR-prompt answers of the warm-up: right {w['refining_accuracy']:.1%}, "
                 f"against {w['standard_accuracy']:.1%} for its standard-prompt answers to the same problems "
                 f"({w['delta_points']:+.1f} points, 95% CI {w['ci_points'][0]:+.1f} to {w['ci_points'][1]:+.1f}).", ""]
    (out / "evidence.md").write_text("\n".join(text), encoding="utf-8")
    return result


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None,
                        help="experiment folder (default runs/evidence, runs/evidence-sums for --family sums, "
                             "-mask-slips added for --mask-slips)")
    parser.add_argument("--family", default="arith", choices=["arith", "sums"],
                        help="built-in task: arith (level-3 word problems) or sums (40%% easy, 60%% hard sums)")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="base model of the warm-up")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ablation-seeds", type=int, default=1, help="seeds the single/trigger arms run with")
    parser.add_argument("--limit", type=int, default=500, help="held-out problems")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="eval tokens (default 128; 288 for --family sums, which GRPO's "
                             "max_completion_length then follows: a refining hard sum is 244-260 tokens)")
    parser.add_argument("--batch-size", type=int, default=16, help="eval batch size")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="override the recipe's GRPO steps (12; 8 by default for --family sums, for time)")
    parser.add_argument("--warmup-examples", type=int, default=None, help="override the warm-up recipe's size")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="lever: GRPO's learning rate in every arm (the recipe's 5e-6 otherwise)")
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
    parser.add_argument("--mask-slips", action="store_true",
                        help="lever: the warm-up leaves its planted slips out of the loss (warmup_mask_slips)")
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
    opts = parser.parse_args(argv)
    if opts.own_error_warmup and opts.family != "arith":
        parser.error("--own-error-warmup samples arith problems (pasr data own-errors); not with --family sums")
    if opts.own_error_warmup and opts.mask_slips:
        parser.error("--own-error-warmup and --mask-slips are two levers: one change at a time")
    if opts.out is None:
        opts.out = ("runs/evidence" + ("-sums" if opts.family == "sums" else "")
                    + ("-mask-slips" if opts.mask_slips else ""))
    if opts.max_tokens is None:
        opts.max_tokens = 288 if opts.family == "sums" else 128
    return opts


class ExperimentMismatch(ValueError):
    """OUT holds another experiment (:func:`check_experiment`); ``main`` says so in one line, exit code 2."""


def check_experiment(opts: argparse.Namespace) -> None:
    """One experiment per folder: refuse to continue OUT with another family, warm-up (masking, size) or GRPO
    learning rate, whose finished jobs (the warm-up above all) a rerun would otherwise take as its own, or on a CPU
    of the other kind (with or without native bf16: pasr trains and evaluates in bf16 on the one and in fp32 on
    the other, :func:`pasr.models.emulated_bf16`, and every arm must share one numeric setting). Recorded in
    OUT/experiment.json when not the default; a folder without one (every folder from before --family) holds the
    default, and a key missing from it (a folder from before that key) its default (native bf16: every earlier
    run had it)."""
    from pasr.models import cpu_supports_bf16

    out = Path(opts.out)
    mine = {"family": opts.family, "mask_slips": opts.mask_slips, "warmup_examples": opts.warmup_examples,
            "learning_rate": opts.learning_rate, "native_bf16": cpu_supports_bf16()}
    default = {"family": "arith", "mask_slips": False, "warmup_examples": None, "learning_rate": None,
               "native_bf16": True}
    path = out / "experiment.json"
    if path.exists():
        theirs = {**default, **json.loads(path.read_text(encoding="utf-8"))}
    elif (out / "test.jsonl").exists() or (out / "warmup").exists():
        theirs = default
    else:
        theirs = mine
    if theirs != mine:
        def say(s: dict) -> str:
            cpu = ("" if theirs["native_bf16"] == mine["native_bf16"] else " on a CPU with native bf16"
                   if s["native_bf16"] else " on a CPU without native bf16 (fp32)")
            return (f"--family {s['family']}" + (" --mask-slips" if s["mask_slips"] else "")
                    + (f" --warmup-examples {s['warmup_examples']}" if s["warmup_examples"] is not None else "")
                    + (f" --learning-rate {s['learning_rate']}" if s["learning_rate"] is not None else "") + cpu)

        raise ExperimentMismatch(f"{out} holds the experiment of {say(theirs)}, not {say(mine)}: choose another --out")
    if mine != default:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(mine) + "\n", encoding="utf-8")


def timing_markdown(jobs: list[Job], opts: argparse.Namespace) -> str:
    """Measured minutes per job (OUT/timing.json, every invocation) beside the estimate (COSTS)."""
    measured = read_timing(Path(opts.out))
    lines = ["| Job | measured min | estimated min |", "|---|---:|---:|"]
    for job in jobs:
        low, high = job_seconds(job, opts)
        guess = f"{low / 60:.1f}" if low == high else f"{low / 60:.1f}-{high / 60:.1f}"
        took = f"{measured[job.name] / 60:.1f}" if job.name in measured else "–"
        lines.append(f"| {job.name} | {took} | {guess} |")
    cpu = sum(measured.get(j.name, 0.0) for j in jobs)
    walls = measured.get("invocation_wall_s", [])
    lines += ["", f"Measured: {cpu / 60:.1f} CPU-minutes in jobs; wall time of the invocations so far "
                  f"{sum(walls) / 60:.1f} min ({', '.join(f'{w / 60:.1f}' for w in walls) or 'none finished'})."]
    return "\n".join(lines)


def main() -> None:
    opts = parse_options()
    started = time.perf_counter()
    try:
        check_experiment(opts)
    except ExperimentMismatch as error:
        print(f"cpu_evidence: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    jobs = plan(opts)
    if not opts.analyse_only:
        from pasr.models import cpu_supports_bf16

        native = cpu_supports_bf16()
        print_estimate(estimate(jobs, opts, native))
        if not native:
            print("note: this CPU has no native bf16, so pasr trains and evaluates in fp32 here; the estimate is "
                  f"COSTS times FP32_FACTOR (whole jobs measured on an AVX2 CPU; {Path(__file__).name})", flush=True)
        try:
            run_jobs(jobs, opts)
        except SystemExit:  # a failed or stopped job: the invocation's wall time is still part of the run's
            record_wall(Path(opts.out), time.perf_counter() - started)
            raise
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
    record_wall(out, wall)
    print((out / "evidence.md").read_text(encoding="utf-8"))
    print("## Job times\n")
    print(timing_markdown(jobs, opts) + "\n")
    met = sum(t["passed"] for t in result["targets"])
    print(f"{met}/{len(result['targets'])} targets met; wall time of this invocation {wall / 60:.1f} min")
    print(f"evidence: {out / 'evidence.md'}  report: {out / 'report' / 'report.html'}  logs: {out / 'logs'}")


if __name__ == "__main__":
    main()
