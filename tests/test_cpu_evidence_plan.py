"""The evidence experiment's job graph (bench/cpu_evidence.py): arms differ only where they should."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
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
    # every other job waits on the warm-up: it runs alone on all the threads, the base model's evaluation after it
    assert jobs["warmup"].threads == 2 and {j.threads for n, j in jobs.items() if n != "warmup"} == {1}
    ten = {n: 10.0 for n in jobs}  # test-data, then the warm-up alone, then the base model's evaluation
    assert bench.simulate([jobs["test-data"], jobs["warmup"], jobs["eval-base"]], ten, 2) == 30
    autocast = bench.plan(options(bench, "--out", str(tmp_path), "--eval-dtype", "auto"))
    assert {flag(j, "--dtype") for j in autocast if j.name.startswith("eval-")} == {"auto"}


def test_plan_order_puts_the_main_comparisons_first(bench, tmp_path):
    """A free slot takes the first ready job in plan order, so a run stopped part-way holds PASR and control at the
    first seed, each evaluated, then the warm-up's evaluation, before seeds 1-2, the ablations and the base model."""
    names = [j.name for j in bench.plan(options(bench, "--out", str(tmp_path), "--family", "sums"))]
    trains = [n for n in names if n.startswith("train-")]
    assert names[:2] == ["test-data", "warmup"] and names[-1] == "eval-base"
    assert trains == ["train-pasr-s0", "train-control-s0", "train-pasr-s1", "train-control-s1", "train-pasr-s2",
                      "train-control-s2", "train-single-s0", "train-trigger-s0"]
    evals_of_runs = [n for n in names if n.startswith("eval-") and n not in ("eval-warmup", "eval-base")]
    assert len(evals_of_runs) == 8 and max(map(names.index, evals_of_runs)) < names.index("train-pasr-s0")
    assert names.index("train-control-s0") < names.index("eval-warmup") < names.index("train-pasr-s1")
    # simulated: when the first two runs end, their evaluations take the slots before any other run starts
    jobs = {j.name: j for j in bench.plan(options(bench, "--out", str(tmp_path), "--family", "sums"))}
    ordered = [jobs[n] for n in names]
    secs = {n: 10.0 for n in names}
    first_wave = bench.simulate([j for j in ordered if j.name in
                                 ("test-data", "warmup", "train-pasr-s0", "train-control-s0", "eval-pasr-s0",
                                  "eval-control-s0")], secs, 2)
    assert first_wave == 40  # data, warm-up, the two runs side by side, their evaluations side by side
    with_second = bench.simulate([j for j in ordered if j.name in
                                  ("test-data", "warmup", "train-pasr-s0", "train-control-s0", "eval-pasr-s0",
                                   "eval-control-s0", "train-pasr-s1")], {**secs, "train-pasr-s1": 100.0}, 2)
    assert with_second == 140  # seed 1 starts at 40, behind both evaluations (at 30, before them, it would end at 130)


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


def plain(job, out):
    """A job's name, arguments, done file and prerequisites with the experiment folder written as OUT."""
    return (job.name, [a.replace(str(out), "OUT") for a in job.args], str(job.done).replace(str(out), "OUT"),
            job.after, job.threads)


def test_sums_plan_changes_the_family_and_nothing_else(bench, tmp_path):
    arith = {j.name: j for j in bench.plan(options(bench, "--out", str(tmp_path)))}
    opts = options(bench, "--out", str(tmp_path), "--family", "sums")
    assert opts.max_tokens == 288
    jobs = {j.name: j for j in bench.plan(opts)}
    assert list(jobs) == list(arith)  # the same arms, seeds, evaluations and order
    test = jobs["test-data"]
    assert test.args[:4] == ["data", "synthetic", "--family", "sums"] and "--difficulty" not in test.args
    assert flag(test, "--split") == "test" and flag(test, "--n") == "500"
    assert flag(test, "--output") == str(tmp_path / "test.jsonl") and test.done == tmp_path / "test.jsonl"
    warmup = jobs["warmup"]
    assert flag(warmup, "--synthetic_family") == "sums" and flag(warmup, "--synthetic_difficulty") == "None"
    assert "--warmup_mask_slips" not in warmup.args
    assert warmup.done == tmp_path / "warmup" / "final" / "config.json"
    for name, job in jobs.items():
        if name.startswith("train-"):
            arm, seed = name.removeprefix("train-").rsplit("-s", 1)
            assert flag(job, "--refine_reward_mode") == bench.TRAINED_ARMS[arm] and flag(job, "--seed") == seed
            assert flag(job, "--config") == "cpu-evidence.yaml" and "--resume" in job.args
            assert flag(job, "--synthetic_family") == "sums" and flag(job, "--synthetic_difficulty") == "None"
            assert flag(job, "--max_completion_length") == "288"  # a refining hard sum is 244-260 tokens
            assert flag(job, "--max_steps") == str(bench.SUMS_GRPO_STEPS) == "8"  # the time budget's reduction
            assert job.done == tmp_path / "train" / f"{arm}-s{seed}" / "train_summary.json"
        if name.startswith("eval-"):
            assert flag(job, "--benchmark") == "sums" and flag(job, "--max-tokens") == "288"
            assert flag(job, "--data-file") == str(tmp_path / "test.jsonl") and flag(job, "--dtype") == "bfloat16"
            assert job.done == tmp_path / "eval" / name.removeprefix("eval-") / ".done"
            # everything else as in the arith plan
            drop = {"--benchmark", "--max-tokens"}
            mine = [a for i, a in enumerate(job.args) if a not in drop and job.args[i - 1] not in drop]
            theirs = [a for i, a in enumerate(arith[name].args) if a not in drop and arith[name].args[i - 1] not in drop]
            assert mine == theirs and job.after == arith[name].after
    assert flag(jobs["eval-warmup"], "--methods") == "vanilla,pasr,self-refine,self-refine-oracle"
    # --max-steps and --max-tokens still override, GRPO's completion length following the eval's tokens
    jobs = {j.name: j for j in bench.plan(options(bench, "--out", str(tmp_path), "--family", "sums",
                                                  "--max-steps", "12", "--max-tokens", "288"))}
    assert flag(jobs["train-pasr-s0"], "--max_steps") == "12"
    assert flag(jobs["train-pasr-s0"], "--max_completion_length") == "288"
    assert flag(jobs["eval-pasr-s0"], "--max-tokens") == "288"


def test_default_folders_and_token_limits(bench):
    assert options(bench).out == "runs/evidence" and options(bench).max_tokens == 128
    assert options(bench, "--family", "sums").out == "runs/evidence-sums"
    assert options(bench, "--family", "sums", "--mask-slips").out == "runs/evidence-sums-mask-slips"
    assert options(bench, "--mask-slips").out == "runs/evidence-mask-slips"
    assert options(bench, "--family", "sums", "--out", "runs/x").out == "runs/x"


def test_mask_slips_lever_changes_the_warmup_only(bench, tmp_path):
    for family in ("sums", "arith"):
        base = bench.plan(options(bench, "--out", str(tmp_path / "a"), "--family", family))
        lever = bench.plan(options(bench, "--out", str(tmp_path / "b"), "--family", family, "--mask-slips"))
        assert len(base) == len(lever)
        for mine, theirs in zip(lever, base):
            mine, theirs = plain(mine, tmp_path / "b"), plain(theirs, tmp_path / "a")
            if mine[0] == "warmup":
                assert mine[1] == [*theirs[1], "--warmup_mask_slips", "true"]
                assert mine[2:] == theirs[2:]
            else:
                assert mine == theirs


@pytest.mark.parametrize("args", [["--family", "sums", "--own-error-warmup"], ["--own-error-warmup", "--mask-slips"]])
def test_levers_that_do_not_combine_are_refused(bench, args, capsys):
    with pytest.raises(SystemExit):
        options(bench, *args)
    assert "--own-error-warmup" in capsys.readouterr().err


def test_a_folder_holds_one_experiment(bench, tmp_path, monkeypatch):
    import pasr.models

    monkeypatch.setattr(pasr.models, "cpu_supports_bf16", lambda: True)  # a CPU like every earlier run's
    arith = tmp_path / "arith"
    (arith / "warmup").mkdir(parents=True)  # a folder from before --family: arith, unmasked
    bench.check_experiment(options(bench, "--out", str(arith)))
    assert not (arith / "experiment.json").exists()  # arith folders stay as they were
    with pytest.raises(bench.ExperimentMismatch, match="holds the experiment of --family arith, not --family sums"):
        bench.check_experiment(options(bench, "--out", str(arith), "--family", "sums"))
    sums = tmp_path / "sums"
    bench.check_experiment(options(bench, "--out", str(sums), "--family", "sums"))
    assert json.loads((sums / "experiment.json").read_text()) == {"family": "sums", "mask_slips": False,
                                                                  "warmup_examples": None, "learning_rate": None,
                                                                  "native_bf16": True}
    bench.check_experiment(options(bench, "--out", str(sums), "--family", "sums"))  # a rerun continues
    with pytest.raises(bench.ExperimentMismatch, match="not --family sums --mask-slips"):
        bench.check_experiment(options(bench, "--out", str(sums), "--family", "sums", "--mask-slips"))
    with pytest.raises(bench.ExperimentMismatch, match="--family sums, not --family arith"):
        bench.check_experiment(options(bench, "--out", str(sums)))
    # the warm-up's size and GRPO's learning rate are part of the experiment too
    with pytest.raises(bench.ExperimentMismatch, match="of --family sums, not --family sums --warmup-examples 640: choose"):
        bench.check_experiment(options(bench, "--out", str(sums), "--family", "sums", "--warmup-examples", "640"))
    with pytest.raises(bench.ExperimentMismatch, match="not --family sums --learning-rate 2e-05"):
        bench.check_experiment(options(bench, "--out", str(sums), "--family", "sums", "--learning-rate", "2e-5"))
    # a folder recorded before those keys existed holds their defaults
    older = tmp_path / "older"
    older.mkdir()
    (older / "experiment.json").write_text('{"family": "sums", "mask_slips": true}')
    bench.check_experiment(options(bench, "--out", str(older), "--family", "sums", "--mask-slips"))
    with pytest.raises(bench.ExperimentMismatch, match="holds the experiment of --family sums --mask-slips, not --family sums "
                                         "--mask-slips --warmup-examples 640"):
        bench.check_experiment(options(bench, "--out", str(older), "--family", "sums", "--mask-slips",
                                       "--warmup-examples", "640"))
    # a CPU without native bf16 trains and evaluates in fp32: it may not continue a bf16 experiment, nor the reverse
    monkeypatch.setattr(pasr.models, "cpu_supports_bf16", lambda: False)
    with pytest.raises(bench.ExperimentMismatch, match="holds the experiment of --family sums --mask-slips on a CPU "
                                                       "with native bf16, not --family sums --mask-slips on a CPU "
                                                       "without native bf16 \\(fp32\\)"):
        bench.check_experiment(options(bench, "--out", str(older), "--family", "sums", "--mask-slips"))
    with pytest.raises(bench.ExperimentMismatch, match="of --family arith on a CPU with native bf16, not"):
        bench.check_experiment(options(bench, "--out", str(arith)))
    fp32 = tmp_path / "fp32"
    bench.check_experiment(options(bench, "--out", str(fp32)))
    assert json.loads((fp32 / "experiment.json").read_text())["native_bf16"] is False
    monkeypatch.setattr(pasr.models, "cpu_supports_bf16", lambda: True)
    with pytest.raises(bench.ExperimentMismatch, match="without native bf16 \\(fp32\\), not --family arith on a"):
        bench.check_experiment(options(bench, "--out", str(fp32)))


def test_another_experiment_in_the_folder_is_a_one_line_usage_error(bench, tmp_path, monkeypatch, capsys):
    import pasr.models

    monkeypatch.setattr(pasr.models, "cpu_supports_bf16", lambda: True)
    out = tmp_path / "sums"
    (out).mkdir()
    (out / "experiment.json").write_text('{"family": "sums", "mask_slips": true}')
    monkeypatch.setattr(bench, "run_jobs", lambda *a: pytest.fail("ran jobs for a refused folder"))
    monkeypatch.setattr("sys.argv", ["cpu_evidence.py", "--out", str(out), "--family", "sums"])
    with pytest.raises(SystemExit) as exit_info:
        bench.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"cpu_evidence: {out} holds the experiment of --family sums "
                                                    "--mask-slips, not --family sums: choose another --out")


def test_learning_rate_lever_changes_grpo_only(bench, tmp_path):
    base = bench.plan(options(bench, "--out", str(tmp_path / "a"), "--family", "sums"))
    lever = bench.plan(options(bench, "--out", str(tmp_path / "b"), "--family", "sums", "--learning-rate", "2e-5"))
    assert [j.name for j in lever] == [j.name for j in base]
    for mine, theirs in zip(lever, base):
        mine, theirs = plain(mine, tmp_path / "b"), plain(theirs, tmp_path / "a")
        if mine[0].startswith("train-"):
            assert mine[1] == [*theirs[1], "--learning_rate", "2e-05"]
            assert mine[2:] == theirs[2:]
        else:
            assert mine == theirs


def test_time_estimate_simulates_the_schedule_and_skips_done_jobs(bench, tmp_path, capsys):
    Job = bench.Job
    jobs = [Job("w", [], tmp_path / "w"), Job("a", [], tmp_path / "a", after=["w"]),
            Job("b", [], tmp_path / "b", after=["w"]), Job("c", [], tmp_path / "c")]
    # two slots: w and c start; c ends at 3; w at 10; a and b run side by side to 15
    assert bench.simulate(jobs, {"w": 10, "a": 5, "b": 5, "c": 3}, 2) == 15
    assert bench.simulate(jobs, {"w": 10, "a": 5, "b": 5, "c": 3}, 1) == 23

    opts = options(bench, "--out", str(tmp_path), "--family", "sums")
    plan = bench.plan(opts)
    est = bench.estimate(plan, opts)
    low, high = est["wall_s"]
    # measured sums costs: the 256-example warm-up, then 1.7-3.2 h (high: every PASR seed refining everywhere)
    assert 100 * 60 < low < 120 * 60 < 190 * 60 < high < 210 * 60
    assert est["jobs"]["train-pasr-s0"] == [45 + 8 * 70, 45 + 8 * 130]  # startup + 8 steps of 70-130 s
    assert est["jobs"]["warmup"] == [45 + 32 * 25] * 2  # 256 examples, batch 8, alone on both threads
    assert est["jobs"]["eval-pasr-s0"][1] > 4 * est["jobs"]["eval-control-s0"][1]  # a PASR model may refine
    (tmp_path / "test.jsonl").write_text("")
    (tmp_path / "warmup" / "final").mkdir(parents=True)
    (tmp_path / "warmup" / "final" / "config.json").write_text("{}")
    rest = bench.estimate(plan, opts)
    assert rest["done"] == ["test-data", "warmup"] and "warmup" not in rest["jobs"]
    assert rest["wall_s"][0] < low - 10 * 60  # the warm-up's 19 min, less the base model's eval beside it
    assert all(j.after == ["warmup"] for j in plan if j.name.startswith("train-"))  # the plan is left as it was
    bench.print_estimate(rest)
    assert "(2 jobs already done)" in capsys.readouterr().out
    arith = options(bench, "--out", str(tmp_path / "arith"))
    low, high = bench.estimate(bench.plan(arith), arith)["wall_s"]
    # the measured run took 78 min (plan order then: every training before any evaluation, 70-89 min simulated)
    assert 65 * 60 < low <= 78 * 60 <= high <= 91 * 60


def test_estimate_on_a_cpu_without_native_bf16_scales_by_the_measured_fp32_factors(bench, tmp_path):
    opts = options(bench, "--out", str(tmp_path), "--family", "sums", "--mask-slips", "--warmup-examples", "640")
    plan = bench.plan(opts)
    native, fp32 = bench.estimate(plan, opts), bench.estimate(plan, opts, native_bf16=False)
    assert fp32["jobs"]["test-data"] == native["jobs"]["test-data"]
    for name, kind in (("warmup", "warmup"), ("train-pasr-s0", "train"), ("eval-pasr-s0", "eval"),
                       ("eval-warmup", "eval")):
        for k in (0, 1):
            assert abs(fp32["jobs"][name][k] - native["jobs"][name][k] * bench.FP32_FACTOR[kind][k]) <= 1
    assert fp32["jobs"]["warmup"][0] == pytest.approx(76.2 * 60, rel=0.02)  # the measured fp32 warm-up
    assert all(f[0] > 1.5 for f in bench.FP32_FACTOR.values())
    assert fp32["wall_s"][0] > 1.5 * native["wall_s"][0]


def test_jobs_run_once_across_invocations_and_their_times_are_kept(bench, tmp_path, monkeypatch):
    record = tmp_path / "started.txt"
    fake = ("import sys, pathlib; pathlib.Path(sys.argv[1]).write_text('x'); "
            f"open({str(record)!r}, 'a').write(sys.argv[1] + '\\n')")
    monkeypatch.setattr(bench, "pasr_cli", lambda: [sys.executable, "-c", fake])
    out = tmp_path / "out"
    opts = options(bench, "--out", str(out), "--jobs", "2")
    Job = bench.Job
    jobs = [Job("a", [str(tmp_path / "a")], tmp_path / "a"),
            Job("b", [str(tmp_path / "b")], tmp_path / "b", after=["a"]),
            Job("eval-c", [str(tmp_path / "c")], out / "eval" / "c" / ".done", after=["b"])]
    (tmp_path / "a").write_text("done before")  # finished in an earlier invocation
    seconds = bench.run_jobs(jobs, opts)
    assert sorted(seconds) == ["b", "eval-c"]
    assert record.read_text().splitlines() == [str(tmp_path / "b"), str(tmp_path / "c")]
    assert (out / "eval" / "c" / ".done").exists()  # an eval's done file is written when it ends
    timing = json.loads((out / "timing.json").read_text())
    assert set(timing) == {"b", "eval-c"}
    assert bench.run_jobs(jobs, opts) == {}  # a rerun starts nothing
    assert len(record.read_text().splitlines()) == 2
    text = bench.timing_markdown(jobs, opts)
    assert f"| b | {timing['b'] / 60:.1f} |" in text and "| a | – |" in text


def test_a_stopped_job_is_timed_in_full_when_it_ends_in_a_later_invocation(bench, tmp_path, monkeypatch):
    import os
    import signal
    import threading

    # the fake job sleeps, then writes its done file; the first invocation is stopped (SIGTERM) while it runs
    fake = "import sys, time, pathlib; time.sleep(float(sys.argv[2])); pathlib.Path(sys.argv[1]).write_text('x')"
    monkeypatch.setattr(bench, "pasr_cli", lambda: [sys.executable, "-c", fake])
    out = tmp_path / "out"
    opts = options(bench, "--out", str(out), "--jobs", "1")
    slow = [bench.Job("train-x", [str(tmp_path / "x"), "60"], tmp_path / "x")]
    timer = threading.Timer(4.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.perf_counter()
    with pytest.raises(SystemExit, match="stopped; train-x in flight"):
        bench.run_jobs(slow, opts)
    assert time.perf_counter() - started < 30  # the child was terminated, not waited for
    assert signal.getsignal(signal.SIGTERM) is not bench._interrupt  # the handler is put back
    partial = json.loads((out / "timing.json").read_text())["partial_s"]["train-x"]
    assert 3.5 <= partial < 30 and not (tmp_path / "x").exists()
    quick = [bench.Job("train-x", [str(tmp_path / "x"), "0"], tmp_path / "x")]
    seconds = bench.run_jobs(quick, opts)  # the rerun finishes it
    timing = json.loads((out / "timing.json").read_text())
    assert seconds["train-x"] >= partial and timing["train-x"] == round(seconds["train-x"], 1)
    assert timing["partial_s"] == {}  # taken into the job's time, once


def fake_experiment(out: Path, family: str) -> None:
    """A finished experiment's held-out records and eval folders, two seeds of PASR and control, one of trigger."""
    bench_name = "sums" if family == "sums" else "synthetic"
    ids = [f"p{i}" for i in range(10)]
    labels = {p: ("easy" if i < 4 else "hard") if family == "sums" else 3 for i, p in enumerate(ids)}
    out.mkdir(parents=True)
    (out / "test.jsonl").write_text("".join(
        json.dumps({"id": p, "question": f"q{p}", "reference": "1", "task": "arith", "meta": {"difficulty": d}}) + "\n"
        for p, d in labels.items()))

    def run(name: str, method: str, refined: set[str], right: set[str], tokens: float = 40.0) -> None:
        folder = out / "eval" / name
        (folder / bench_name).mkdir(parents=True, exist_ok=True)
        (folder / ".done").write_text("1\n")
        (folder / bench_name / f"{method}.jsonl").write_text("".join(
            json.dumps({"id": p, "score": float(p in right), "tokens": 160.0 if p in refined else tokens,
                        "refined": p in refined, "format_valid": True, "task": "arith"}) + "\n" for p in ids))

    run("pasr-s0", "pasr", {"p4", "p5", "p6"}, {"p0", "p1", "p2", "p3", "p4", "p5", "p6"})
    run("pasr-s1", "pasr", {"p4", "p5", "p0"}, {"p0", "p1", "p2", "p3", "p4", "p5"})
    run("control-s0", "pasr", set(), {"p0", "p1", "p2", "p3", "p9"})
    run("control-s1", "pasr", set(), {"p0", "p1", "p2", "p3"})
    run("trigger-s0", "pasr", set(ids), {"p0", "p1", "p2", "p3", "p4"})
    run("warmup", "pasr", {"p0", "p5"}, {"p0", "p1", "p2", "p3"})
    run("warmup", "vanilla", set(), {"p0", "p1", "p2", "p3", "p7"}, tokens=30.0)


def evidence_options(bench, out, *extra):
    return options(bench, "--out", str(out), "--seeds", "0", "1", "--arms", "pasr,control,trigger",
                   "--warmup-methods", "vanilla,pasr", "--no-base-eval", *extra)


def test_sums_evidence_reports_difficulty_and_issue_12_targets(bench, tmp_path):
    out = tmp_path / "sums"
    fake_experiment(out, "sums")
    result = bench.evidence(evidence_options(bench, out, "--family", "sums"))
    detail = result["difficulty"]
    assert detail["labels"] == ["easy", "hard"]
    pasr = detail["arms"]["pasr"]["hard_vs_easy"]
    assert pasr["easy"] == pytest.approx(1 / 8) and pasr["hard"] == pytest.approx(5 / 12)  # p0 once; p4, p5 twice, p6 once
    assert detail["arms"]["pasr"]["by_difficulty"]["hard"]["refining"]["accuracy"] == pytest.approx(1.0)
    assert detail["refining_vs_reference"]["pasr"]["all"]["pairs"] == 6
    assert detail["pasr_vs_trigger"]["token_ratio"] < 0.8
    names = [t["name"] for t in result["targets"]]
    assert "PASR is not worse than the plain-GRPO control" in names
    assert "PASR refines more on hard problems" in names and "PASR needs fewer tokens than the trigger reward" in names
    text = (out / "evidence.md").read_text()
    assert text.startswith("# CPU evidence (sums): 10 held-out problems (4 easy, 6 hard), greedy, 288 tokens, 8 GRPO")
    assert "## Easy and hard problems" in text and "### Hard against easy" in text
    assert json.loads((out / "evidence.json").read_text())["difficulty"]["labels"] == ["easy", "hard"]


def test_arith_evidence_has_no_difficulty_section(bench, tmp_path):
    out = tmp_path / "arith"
    fake_experiment(out, "arith")
    result = bench.evidence(evidence_options(bench, out))
    assert "difficulty" not in result
    assert [t["name"] for t in result["targets"]][:2] == ["PASR beats warm-up only", "PASR beats plain-GRPO control"]
    text = (out / "evidence.md").read_text()
    assert text.startswith("# CPU evidence: 10 held-out level-3 problems, greedy, 128 tokens")
    assert "Easy and hard" not in text
