"""`pasr baseline NAME`: the registry, the list, an unknown name, --fields, STaR, the two-step PASR(+IFT) and PTR."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from train_helpers import AlwaysRight, generate_with
from typer.testing import CliRunner

from pasr.baselines import registry
from pasr.cli import app
from pasr.errors import PasrError

PASR = Path(sys.executable).parent / "pasr"
LOG = Path(__file__).parent / "fixtures" / "ift" / "rollouts.jsonl"
DEFAULT_KEPT = ["keep-plus-one", "keep-duplicate", "keep-partial-f1"]  # what the default filters keep (test_ift.py)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_registry_entries_follow_the_protocol():
    from pasr.train.command import parse_config
    from pasr.train.config import ModelConfig, PasrGRPOConfig, PasrSFTConfig

    assert registry.names()[:3] == ["star", "ift", "ptr"]
    for baseline in registry.BASELINES:
        config_class = baseline.config_class()
        assert issubclass(config_class, (PasrSFTConfig, PasrGRPOConfig)), baseline.name
        run = baseline.run_function()
        params = inspect.signature(run).parameters
        assert list(params)[:2] == ["config", "model_config"] and params["console"].kind is inspect.Parameter.KEYWORD_ONLY
        assert baseline.recipe_path.is_file() and baseline.description and "\n" not in baseline.description
        config, model_config = parse_config(baseline.name, ["--use_cpu", "true"], baseline.recipe_path)
        assert type(config) is config_class and isinstance(model_config, ModelConfig)


def test_registering_by_module_names_its_attributes():
    entry = registry.Baseline("ptr", "pasr.baselines.ptr", "PTR", config="PtrConfig", run="run_ptr")
    assert entry.recipe_path.name == "cpu-ptr.yaml" and entry.heading == "ptr"
    plain = registry.Baseline("x", "pasr.baselines.star", "x")
    assert (plain.config, plain.run) == ("Config", "run")


def test_unknown_name_names_the_known_ones():
    with pytest.raises(PasrError, match="unknown baseline 'nope'; known baselines: star, ift"):
        registry.get("nope")


def test_unknown_name_is_one_line_and_rc_2():
    done = subprocess.run([str(PASR), "baseline", "nope"], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: unknown baseline 'nope'") and "star, ift" in line


@pytest.mark.parametrize("args", [["baseline"], ["baseline", "--list"]])
def test_list(args):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    for baseline in registry.BASELINES:
        assert baseline.name in result.output and baseline.recipe_path.name in result.output
    assert "STaR" in result.output and "PASR(+IFT)" in result.output and "PTR" in result.output


def test_fields_of_each_baseline():
    star = invoke("baseline", "star", "--fields", "star_iterations")
    assert star.exit_code == 0 and "pasr baseline star: 1 fields" in star.output and "--star_iterations" in star.output
    ift = invoke("baseline", "ift", "--fields")
    assert ift.exit_code == 0, ift.output
    assert ift.output.index("PASR(+IFT) baseline") < ift.output.index("--learning_rate")
    for name in ("ift_rollout_log", "ift_min_refine_reward", "data_file"):
        assert f"--{name} " in ift.output


def test_a_typo_points_at_the_baseline_fields():
    result = invoke("baseline", "ift", "--ift_dedpe", "true")
    assert isinstance(result.exception, PasrError)
    assert "did you mean --ift_dedupe?" in str(result.exception)
    assert "`pasr baseline ift --fields` lists them" in str(result.exception)


def test_star_nothing_kept_is_a_clear_error(tmp_path):
    """As `pasr star`'s test: the tiny random model answers nothing right, and the command says so."""
    result = invoke("baseline", "star", "--config", "cpu-star.yaml", "--model_name_or_path", "tiny-random",
                    "--output_dir", str(tmp_path / "star"), "--star_questions", "2", "--star_fewshot", "1",
                    "--star_heldout", "0", "--star_max_new_tokens", "4", "--bf16", "false")
    assert isinstance(result.exception, PasrError), result.output
    assert "kept no rationale" in str(result.exception)


def test_star_runs_and_prints_its_summary(tmp_path, monkeypatch):
    """Every answer scored right: the real pipeline runs, saves OUTPUT_DIR/final and prints STaR's table."""
    from rich.console import Console

    import pasr.baselines.command
    import pasr.scoring

    monkeypatch.setattr(pasr.scoring, "build_scorer", lambda config: AlwaysRight())
    monkeypatch.setattr(pasr.baselines.command, "console", Console(width=200))
    out = tmp_path / "star"
    result = invoke("baseline", "star", "--config", "cpu-star.yaml", "--model_name_or_path", "tiny-random",
                    "--output_dir", str(out), "--star_iterations", "1", "--star_questions", "2", "--star_fewshot",
                    "1", "--star_heldout", "1", "--star_max_new_tokens", "4", "--star_eval_base", "false",
                    "--star_require_answer_tag", "false", "--max_steps", "1", "--bf16", "false",
                    "--max_length", "256")
    assert result.exit_code == 0, result.output
    assert (out / "final" / "config.json").is_file()
    lines = result.output.splitlines()
    header = next(line for line in lines if "┃ iteration" in line)
    assert all(column in header for column in ("kept", "direct", "held-out acc", "tokens", "min")), result.output[-1500:]
    row = next(line for line in lines[lines.index(header) + 1:] if line.strip("│ ").startswith("1"))
    assert "1.000" in row  # held-out accuracy under the always-right scorer
    assert f"model:     {out / 'final'}" in result.output and "star_log.jsonl" in result.output


def test_ift_filters_the_log_and_fine_tunes_in_one_command(tmp_path):
    out = tmp_path / "ift"
    result = invoke("baseline", "ift", "--config", "cpu-ift.yaml", "--model_name_or_path", "tiny-random",
                    "--ift_rollout_log", str(LOG), "--output_dir", str(out), "--max_steps", "2", "--bf16", "false",
                    "--max_length", "256")
    assert result.exit_code == 0, result.output
    data = out / "ift-data.jsonl"
    assert [json.loads(line)["id"] for line in data.read_text().splitlines()] == DEFAULT_KEPT
    summary = json.loads((out / "sft_summary.json").read_text())
    assert summary["examples"] == 3 and summary["steps"] == 2
    assert (out / "final" / "config.json").is_file()
    assert "refine reward > 0" in result.output and "fine-tuning steps" in result.output
    assert f"log: {data}" in " ".join(result.output.split())


def test_ift_holds_its_folder_and_a_finished_rerun_does_not_retrain(tmp_path, monkeypatch):
    """The folder is locked before ift-data.jsonl is written; a rerun of a finished run (same data, same settings)
    skips the fine-tuning; other settings are refused, naming them."""
    import pasr.train.sft as sft
    from pasr.run_folder import RunLock

    out = tmp_path / "ift"
    args = ["baseline", "ift", "--config", "cpu-ift.yaml", "--model_name_or_path", "tiny-random", "--ift_rollout_log",
            str(LOG), "--output_dir", str(out), "--max_steps", "1", "--bf16", "false", "--max_length", "256"]
    with RunLock(out, "pasr baseline ift", option="output_dir"):  # another writer holds the folder
        busy = invoke(*args)
    assert isinstance(busy.exception, PasrError) and "in use" in str(busy.exception)
    assert not (out / "ift-data.jsonl").exists()

    trained = []
    real_run_sft = sft.run_sft

    def spy(*a, **k):
        trained.append(k)
        return real_run_sft(*a, **k)

    monkeypatch.setattr(sft, "run_sft", spy)
    assert invoke(*args).exit_code == 0 and len(trained) == 1
    stamp = (out / "final" / "config.json").stat().st_mtime_ns
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert len(trained) == 1 and (out / "final" / "config.json").stat().st_mtime_ns == stamp
    assert "fine-tuning steps" in again.output
    other = invoke(*args, "--learning_rate", "0.001")
    assert isinstance(other.exception, PasrError) and "learning_rate" in str(other.exception)
    assert "--output_dir" in str(other.exception) and len(trained) == 1


def test_ift_from_a_data_file_and_its_errors(tmp_path):
    from pasr.baselines.ift import build_ift_data

    data = build_ift_data(LOG, tmp_path / "data.jsonl").path
    out = tmp_path / "ift"
    result = invoke("baseline", "ift", "--config", "cpu-ift.yaml", "--model_name_or_path", "tiny-random",
                    "--data_file", str(data), "--output_dir", str(out), "--max_steps", "1", "--bf16", "false",
                    "--max_length", "256")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "sft_summary.json").read_text())["examples"] == 3
    assert not (out / "ift-data.jsonl").exists()

    strict = invoke("baseline", "ift", "--config", "cpu-ift.yaml", "--ift_rollout_log", str(LOG),
                    "--ift_min_refine_reward", "1", "--output_dir", str(tmp_path / "none"), "--bf16", "false")
    assert isinstance(strict.exception, PasrError) and "no rollout passed" in str(strict.exception)
    assert not (tmp_path / "none" / "final").exists()
    neither = invoke("baseline", "ift", "--config", "cpu-ift.yaml", "--dataset", "warmup",
                     "--output_dir", str(tmp_path / "x"), "--bf16", "false")
    assert isinstance(neither.exception, PasrError) and "--ift_rollout_log" in str(neither.exception)


def test_ptr_fields_and_a_bad_value():
    fields = invoke("baseline", "ptr", "--fields")
    assert fields.exit_code == 0, fields.output
    assert fields.output.index("PTR") < fields.output.index("--learning_rate")
    for name in ("ptr_questions", "ptr_samples", "ptr_rounds", "dataset"):
        assert f"--{name} " in fields.output
    done = subprocess.run([str(PASR), "baseline", "ptr", "--ptr_samples", "1"], capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2 and done.stdout == "", done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "ptr_samples must be an integer >= 2" in line


def test_ptr_records_checked_before_any_model_is_one_line_and_rc_2(tmp_path):
    done = subprocess.run([str(PASR), "baseline", "ptr", "--judge_all", "true", "--output_dir", str(tmp_path / "p"),
                           "--bf16", "false"], capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2 and done.stdout == "", done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line == "error: judge_all needs a judge: set --judge_url and --judge_model"


def test_ptr_takes_training_questions_from_the_cli():
    """`dataset` of PTR names training questions (as `pasr train`), not SFT chat examples: synthetic is fine,
    warmup is not."""
    from pasr.train.command import parse_config

    ptr = registry.get("ptr")
    config, _ = parse_config("ptr", ["--dataset", "synthetic", "--use_cpu", "true"], ptr.recipe_path)
    assert config.dataset == "synthetic"
    with pytest.raises(PasrError, match="dataset.*must be 'synthetic', 'wizardlm', 'file'"):
        parse_config("ptr", ["--dataset", "warmup"], ptr.recipe_path)


def test_ptr_smoke_from_the_cli_writes_a_loadable_model(tmp_path):
    """The issue's smoke run, fewer questions: `pasr baseline ptr --config recipes/cpu-ptr.yaml --model_name_or_path
    tiny-random --max_steps 1 --output_dir DIR` ends with a loadable DIR/final and PTR's table."""
    out = tmp_path / "ptr"
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "cpu-ptr.yaml"
    result = invoke("baseline", "ptr", "--config", str(recipe), "--model_name_or_path", "tiny-random",
                    "--max_steps", "1", "--output_dir", str(out), "--ptr_questions", "8", "--ptr_heldout_n", "4",
                    "--ptr_max_new_tokens", "16")
    assert result.exit_code == 0, result.output
    assert (out / "final" / "config.json").is_file() and (out / "ptr_data.jsonl").is_file()
    logged = [json.loads(line)["model"] for line in (out / "ptr_log.jsonl").read_text().splitlines()]
    assert logged == ["base", "trained"]
    assert "PTR" in result.output and "held-out acc" in result.output and "ptr_log.jsonl" in result.output
    generate_with(out / "final")


@pytest.mark.parametrize("name", ["ptr", "score", "rise"])
def test_ctrl_c_says_what_is_kept_and_how_to_resume(tmp_path, monkeypatch, name):
    """Ctrl-C during a run ends with one line and the conventional exit code 130, not silence."""
    from rich.console import Console

    import pasr.baselines.command
    import pasr.baselines.registry

    def interrupted(config, model_config, *, console=None):
        raise KeyboardInterrupt

    entry = pasr.baselines.registry.get(name)
    monkeypatch.setattr(type(entry), "run_function", lambda self: interrupted)
    monkeypatch.setattr(pasr.baselines.command, "console", Console(width=200))
    out = tmp_path / name
    result = invoke("baseline", name, "--model_name_or_path", "tiny-random", "--output_dir", str(out))
    assert result.exit_code == 130, result.output
    assert f"interrupted. What finished is kept in {out}; rerun the same command to resume." in result.output
