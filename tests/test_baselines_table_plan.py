"""The baselines table's job graph (bench/baselines_table.py): every arm trained by its recipe, evaluated one way."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def table():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("baselines_table", BENCH / "baselines_table.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def flag(job, name):
    return job.args[job.args.index(name) + 1]


def test_every_registered_baseline_is_an_arm(table):
    from pasr.baselines.registry import names

    assert set(names()) <= set(table.ARMS)
    assert set(table.ARMS) == set(table.EVAL_METHODS) == set(table.TITLES)


def test_every_arm_is_evaluated_the_same_way_on_the_same_problems(table, tmp_path):
    opts = table.parse_options(["--out", str(tmp_path), "--limit", "200"])
    jobs = {j.name: j for j in table.plan(opts)}
    evals = [j for n, j in jobs.items() if n.startswith("eval-")]
    assert sorted(j.name.removeprefix("eval-") for j in evals) == sorted(table.ARMS)
    for option in ("--data-file", "--max-tokens", "--dtype", "--batch-size", "--benchmark"):
        assert len({flag(j, option) for j in evals}) == 1, option
    assert flag(evals[0], "--data-file") == str(tmp_path / "test.jsonl")
    assert flag(jobs["test-data"], "--split") == "test" and flag(jobs["test-data"], "--n") == "200"
    for job in evals:
        arm = job.name.removeprefix("eval-")
        methods, rounds = table.EVAL_METHODS[arm]
        assert flag(job, "--methods") == methods and flag(job, "--rounds") == str(rounds)
        assert "test-data" in job.after and (arm == "base" or f"train-{arm}" in job.after)
        model = flag(job, "--model")
        assert model == "smollm2-135m-instruct" if arm == "base" else model.endswith("final")


def test_baselines_start_from_the_base_model_and_skip_their_own_heldout(table, tmp_path):
    from pasr.baselines.registry import get

    opts = table.parse_options(["--out", str(tmp_path)])
    jobs = {j.name: j for j in table.plan(opts)}
    for arm, overrides in table.NO_OWN_HELDOUT.items():
        job = jobs[f"train-{arm}"]
        assert job.args[:2] == ["baseline", arm] and flag(job, "--model_name_or_path") == "smollm2-135m-instruct"
        fields = {f.name for f in dataclasses.fields(get(arm).config_class())}
        for name in overrides[::2]:
            assert name.removeprefix("--") in fields, (arm, name)  # a real field of that baseline
            assert flag(job, name) in ("0", "false")
    assert flag(jobs["train-ift"], "--ift_rollout_log") == str(tmp_path / "train" / "pasr" / "rollouts.jsonl")
    assert "train-pasr" in jobs["train-ift"].after
    assert "--max_steps" not in sum((j.args for j in jobs.values()), [])  # recipes' own sizes unless --smoke


def test_ift_pulls_in_pasr_and_smoke_drops_star(table, tmp_path):
    opts = table.parse_options(["--out", str(tmp_path), "--arms", "ift,star", "--smoke"])
    assert "pasr" in opts.arms and "star" not in opts.arms and opts.model == "tiny-random"
    jobs = {j.name: j for j in table.plan(opts)}
    assert {"train-pasr", "train-ift", "eval-ift", "eval-pasr"} <= set(jobs) and "train-star" not in jobs
    assert all(flag(j, "--max_steps") == "1" for n, j in jobs.items() if n.startswith("train-"))


def test_unknown_arm_is_refused(table, capsys):
    with pytest.raises(SystemExit) as info:
        table.parse_options(["--arms", "base,sft"])
    assert info.value.code == 2 and "unknown sft" in capsys.readouterr().err


def test_table_compares_every_arm_with_the_base_model_and_with_pasr(table, tmp_path):
    from test_evidence import write_run

    n = 40
    for arm, method, right in [("base", "vanilla", 8), ("base", "pasr", 8), ("pasr", "pasr", 30),
                               ("star", "vanilla", 30), ("ptr", "ptr", 8)]:
        folder = write_run(tmp_path / "eval" / arm, method, [1.0] * right + [0.0] * (n - right),
                           refined=[method == "ptr"] * n)
        (folder / ".done").write_text("1\n")
    opts = table.parse_options(["--out", str(tmp_path), "--arms", "base,pasr,star,ptr,score", "--limit", str(n)])
    found = {(r["arm"], r["method"]): r for r in table.table(opts)["rows"]}
    assert set(found) == {("base", "vanilla"), ("base", "pasr"), ("pasr", "pasr"), ("star", "vanilla"),
                          ("ptr", "ptr")}  # score has no finished evaluation: no row
    assert found[("pasr", "pasr")]["vs_base"]["delta_points"] == pytest.approx(55.0)
    assert found[("pasr", "pasr")]["pasr_vs"] is None and found[("base", "vanilla")]["vs_base"] is None
    assert found[("star", "vanilla")]["pasr_vs"]["delta_points"] == pytest.approx(0.0)
    assert not found[("star", "vanilla")]["pasr_vs"]["significant"]
    assert found[("ptr", "ptr")]["pasr_vs"]["delta_points"] == pytest.approx(55.0)
    assert found[("ptr", "ptr")]["pasr_vs"]["significant"] and found[("ptr", "ptr")]["refine_rate"] == 1.0
    markdown = (tmp_path / "table.md").read_text()
    assert "| PTR | ptr | 20.0 [" in markdown and "| +55.0 [" in markdown
