"""Seconds per GRPO step: PASR (paper-faithful and lazy baseline) vs plain GRPO, on the built-in model.

Same model, batch, G, completion length and seed in every arm; plain = format + accuracy rewards
only (``refine_reward_mode none``). Each arm runs in its own process so that peak memory (max RSS)
is its own. Prints seconds/step (first step excluded as warm-up), policy tokens/s, baseline share,
peak memory and the ratios against plain. Targets (issue 3): faithful <= 2.0x plain, lazy <= 1.3x.

    python bench/bench_train_step.py [--model PATH] [--steps 6] [--threads 2]

``--model`` defaults to the CPU default run's warm-up model (runs/pasr-cpu/warmup/final) when it
exists, because the base model never refines and lazy would then skip every baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ARMS = {
    "plain": dict(refine_reward_mode="none"),
    "pasr-faithful": dict(refine_reward_mode="comparison", lazy_baseline=False),
    "pasr-lazy": dict(refine_reward_mode="comparison", lazy_baseline=True),
}


def run_arm(arm: str, model: str, steps: int, out: str) -> dict:
    from pasr.data import synthetic
    from pasr.scoring import Scorer
    from pasr.train.config import ModelConfig, PasrGRPOConfig
    from pasr.train.grpo import train_pasr

    config = PasrGRPOConfig(
        output_dir=out,
        max_steps=steps,
        num_generations=4,
        per_device_train_batch_size=16,
        baseline_samples=4,
        max_completion_length=96,
        temperature=0.9,
        learning_rate=5e-6,
        beta=0.0,
        loss_type="grpo",
        use_cpu=True,
        bf16=True,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
        **ARMS[arm],
    )
    records = synthetic.generate(200, seed=0, split="train")
    with Scorer() as scorer:
        result = train_pasr(config, ModelConfig(model_name_or_path=model), scorer=scorer, records=records)
    logs = [h for h in result.log_history if "step_time" in h][1:]  # drop the warm-up step
    n = len(logs)

    def avg(key: str) -> float:
        return sum(h.get(key, 0.0) or 0.0 for h in logs) / n

    gen_tokens = sum(h["completions/mean_length"] * 16 for h in logs)
    gen_time = sum(h.get("time/policy_generation", 0.0) for h in logs)
    return {
        "arm": arm,
        "steps_timed": n,
        "sec_per_step": avg("step_time"),
        "policy_gen_sec": avg("time/policy_generation"),
        "baseline_gen_sec": sum(h.get("time/baseline_generation", 0.0) for h in logs) / n,
        "baseline_steps": sum(1 for h in logs if "time/baseline_generation" in h),
        "update_sec": avg("time/update"),
        "policy_tokens_per_sec": gen_tokens / gen_time if gen_time else None,
        "refine_rate": avg("pasr/refine_rate"),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arm", choices=sorted(ARMS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:  # child process
        print("RESULT " + json.dumps(run_arm(args.arm, args.model, args.steps, args.out)))
        return

    model = args.model
    if model is None:
        warm = Path("runs/pasr-cpu/warmup/final")
        model = str(warm) if (warm / "config.json").exists() else "smollm2-135m-instruct"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    results = {}
    for arm in ARMS:
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, __file__, "--arm", arm, "--model", model, "--steps", str(args.steps), "--out", out]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{arm} failed:\n{proc.stderr[-3000:]}")
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
            results[arm] = json.loads(line[len("RESULT "):])
    print(f"model: {model}; batch 16 = 4 questions x G 4, n = 4 baseline samples, 96 new tokens, "
          f"{args.threads} threads, {args.steps} steps (first excluded)")
    header = f"{'arm':15s} {'s/step':>7s} {'policy gen':>10s} {'baseline':>9s} {'bl steps':>8s} {'update':>7s} " \
             f"{'tok/s':>6s} {'refine':>6s} {'RSS GiB':>7s} {'x plain':>7s}"
    print(header)
    plain = results["plain"]["sec_per_step"]
    for arm, r in results.items():
        print(f"{arm:15s} {r['sec_per_step']:7.2f} {r['policy_gen_sec']:10.2f} {r['baseline_gen_sec']:9.2f} "
              f"{r['baseline_steps']:>8d} {r['update_sec']:7.2f} {r['policy_tokens_per_sec'] or 0:6.1f} "
              f"{r['refine_rate']:6.2f} {r['peak_rss_gib']:7.2f} {r['sec_per_step'] / plain:7.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
