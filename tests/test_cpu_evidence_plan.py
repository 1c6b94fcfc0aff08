"""The evidence experiment's job graph (bench/cpu_evidence.py): arms differ only where they should."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "cpu_evidence.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cpu_evidence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cpu_evidence"] = module
    spec.loader.exec_module(module)
    return module


def options(bench, *args):
    return bench.parse_options(list(args))


def flag(job, name):
    return job.args[job.args.index(name) + 1]


def test_default_plan_has_every_arm_and_seed(bench, tmp_path):
    jobs = {j.name: j for j in bench.plan(options(bench, "--out", str(tmp_path)))}
    trains = sorted(n for n in jobs if n.startswith("train-"))
    assert trains == sorted([f"train-{a}-s{s}" for a in ("pasr", "control") for s in (0, 1, 2)]
                            + ["train-single-s0", "train-trigger-s0"])
    for name in trains:
        job = jobs[name]
        arm, seed = name.removeprefix("train-").rsplit("-s", 1)
        assert flag(job, "--refine_reward_mode") == bench.TRAINED_ARMS[arm]
        assert flag(job, "--seed") == seed and job.after == ["warmup"]
        # nothing else differs between arms: same recipe, same warm-up
        assert flag(job, "--config") == "cpu-evidence.yaml"
        assert flag(job, "--model_name_or_path") == str(tmp_path / "warmup" / "final")
        assert f"eval-{arm}-s{seed}" in jobs and f"train-{arm}-s{seed}" in jobs[f"eval-{arm}-s{seed}"].after
    for job in jobs.values():
        assert all(a in jobs for a in job.after), job
        if job.name.startswith("eval-"):
            assert flag(job, "--data-file") == str(tmp_path / "test.jsonl") and "test-data" in job.after
            assert flag(job, "--dtype") == "bfloat16"  # one numeric path for every arm
    assert flag(jobs["test-data"], "--n") == "500" and flag(jobs["test-data"], "--split") == "test"
    assert flag(jobs["eval-warmup"], "--methods") == "vanilla,pasr,self-refine,self-refine-oracle"
    assert flag(jobs["eval-base"], "--model") == "smollm2-135m-instruct"
    autocast = bench.plan(options(bench, "--out", str(tmp_path), "--eval-dtype", "auto"))
    assert {flag(j, "--dtype") for j in autocast if j.name.startswith("eval-")} == {"auto"}


def test_own_error_lever_plan(bench, tmp_path):
    opts = options(bench, "--out", str(tmp_path), "--own-error-warmup", "--seeds", "0", "--arms", "pasr,control",
                   "--warmup-methods", "pasr", "--no-base-eval")
    jobs = {j.name: j for j in bench.plan(opts)}
    assert sorted(n for n in jobs if n.startswith("train-")) == ["train-control-s0", "train-pasr-s0"]
    assert "eval-base" not in jobs and flag(jobs["eval-warmup"], "--methods") == "pasr"
    assert flag(jobs["warmup-clean"], "--warmup_refine_share") == "0"
    assert jobs["own-errors"].after == ["warmup-clean"] and jobs["warmup"].after == ["own-errors"]
    assert flag(jobs["warmup"], "--data_file") == str(tmp_path / "own-errors.jsonl")
    assert flag(jobs["warmup"], "--model_name_or_path") == str(tmp_path / "warmup-clean" / "final")
    # the chain nothing can run beside takes every thread; the arms one each
    assert {jobs[n].threads for n in ("warmup-clean", "own-errors", "warmup")} == {opts.jobs}
    assert jobs["train-pasr-s0"].threads == 1


def test_timing_is_merged_per_job_so_a_killed_run_keeps_it(bench, tmp_path):
    bench.record_timing(tmp_path, {"warmup": 644.5})
    bench.record_timing(tmp_path, {"eval-base": 840.0, "invocation_wall_s": [12.0]})
    bench.record_timing(tmp_path, {"eval-base": 2.0})
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing == {"warmup": 644.5, "eval-base": 2.0, "invocation_wall_s": [12.0]}


def test_finished_runs_lose_checkpoints_but_keep_the_model(bench, tmp_path):
    train, sft = tmp_path / "train" / "pasr-s0", tmp_path / "warmup"
    for run in (train, sft):
        (run / "checkpoint-8" / "optimizer.pt").parent.mkdir(parents=True)
        (run / "checkpoint-8" / "optimizer.pt").write_bytes(b"x")
        (run / "checkpoint-12").mkdir()
        (run / "final").mkdir()
        (run / "final" / "config.json").write_text("{}")
    (train / "train_summary.json").write_text("{}")
    bench.prune_checkpoints(train / "train_summary.json")  # a train job's done file
    bench.prune_checkpoints(sft / "final" / "config.json")  # an SFT job's done file
    for run in (train, sft):
        assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["final"]
        assert (run / "final" / "config.json").exists()
    assert not options(bench).keep_checkpoints and options(bench, "--keep-checkpoints").keep_checkpoints
