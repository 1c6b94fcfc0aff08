"""The label a run gets in reports when no --label is given: what the model is (issue 16, point C)."""

from __future__ import annotations

import json
import os
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from test_eval_fakes import ScriptedBackend, answer

from pasr.eval.runner import EvalSettings, default_label, run_eval
from pasr.report.loading import load_run


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A working folder with training outputs: runs/pasr-cpu/{final,checkpoint-12}, runs/star/iter_2/final,
    runs/grpo/warmup/final, runs/named/final (its run recorded a label), models/my-sft."""
    monkeypatch.chdir(tmp_path)
    for folder in ("runs/pasr-cpu/final", "runs/pasr-cpu/checkpoint-12", "runs/star/iter_2/final",
                   "runs/grpo/warmup/final", "runs/grpo/warmup/checkpoint-3", "runs/named/final", "models/my-sft"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "config.json").write_text("{}")
    (tmp_path / "runs/pasr-cpu/.pasr-run.json").write_text(json.dumps({"command": "pasr train"}))
    (tmp_path / "runs/named/train_summary.json").write_text(json.dumps({"label": "pasr-7b-seed1", "steps": 3}))
    return tmp_path


@pytest.mark.parametrize("model, label", [
    ("runs/pasr-cpu/final", "pasr-cpu"),
    ("runs/pasr-cpu/final/", "pasr-cpu"),
    ("./runs/pasr-cpu/final", "pasr-cpu"),
    ("runs/pasr-cpu/checkpoint-12", "pasr-cpu@checkpoint-12"),
    ("runs/pasr-cpu/checkpoint-12/", "pasr-cpu@checkpoint-12"),
    ("runs/star/iter_2/final", "star@iter_2"),
    ("runs/grpo/warmup/final", "grpo@warmup"),
    ("runs/grpo/warmup/checkpoint-3", "grpo@warmup/checkpoint-3"),
    ("runs/named/final", "pasr-7b-seed1"),  # the training run's own label wins over its folder name
    ("models/my-sft", "my-sft"),  # a plain model folder: its name
    ("models/my-sft/", "my-sft"),
    ("tiny-random", "tiny-random"),  # built-ins as they are
    ("SmolLM2-135M-Instruct", "smollm2-135m-instruct"),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"),  # hub ids as they are
    ("Qwen/Qwen2.5-7B-Instruct/", "Qwen/Qwen2.5-7B-Instruct"),
    ("/models/served/pasr-7b/final", "pasr-7b"),  # a path a server serves (not here): read from its text
])
def test_default_label(runs, model, label):
    assert default_label(model) == label


def test_absolute_paths_and_dot(runs, monkeypatch):
    assert default_label(str(runs / "runs/pasr-cpu/final")) == "pasr-cpu"
    assert default_label(str(runs / "runs/pasr-cpu/checkpoint-12") + os.sep) == "pasr-cpu@checkpoint-12"
    monkeypatch.chdir(runs / "runs/pasr-cpu/final")
    assert default_label(".") == "pasr-cpu"
    assert default_label("../checkpoint-12") == "pasr-cpu@checkpoint-12"


def test_a_recorded_label_must_be_a_name(runs):
    """HF's run_name defaults to the output path: a label with a '/' is not taken."""
    (runs / "runs/named/train_summary.json").write_text(json.dumps({"run_name": "runs/named"}))
    assert default_label("runs/named/final") == "named"


def test_folders_named_like_stages_alone_are_plain_folders(runs):
    (runs / "models/warmup").mkdir()
    assert default_label("models/warmup") == "warmup"
    (runs / "final").mkdir()
    assert default_label("final") == runs.name  # ./final: named by the folder that holds it


def settings(out: Path, model: str, **kw) -> EvalSettings:
    return EvalSettings(model=model, benchmarks=["synthetic"], methods=["vanilla"], output=out, limit=2,
                        max_tokens=8, **kw)


def run(s: EvalSettings):
    return run_eval(s, backend=ScriptedBackend(lambda c: answer(1)), console=Console(file=StringIO()))


def test_run_json_summary_and_report_use_the_label(runs):
    out = runs / "eval-out"
    summaries = run(settings(out, "runs/pasr-cpu/final"))
    assert json.loads((out / "run.json").read_text())["label"] == "pasr-cpu"
    assert summaries[0]["label"] == "pasr-cpu"
    assert json.loads((out / "synthetic" / "vanilla.summary.json").read_text())["label"] == "pasr-cpu"
    assert load_run(out).label == "pasr-cpu"


def test_label_option_wins_and_sticks(runs):
    out = runs / "eval-out"
    run(settings(out, "runs/pasr-cpu/final", label="my name"))
    assert json.loads((out / "run.json").read_text())["label"] == "my name"
    run(settings(out, "runs/pasr-cpu/final"))  # a rerun without --label keeps the folder's label
    assert json.loads((out / "run.json").read_text())["label"] == "my name"
    assert json.loads((out / "synthetic" / "vanilla.summary.json").read_text())["label"] == "my name"


def test_a_folder_labelled_by_the_old_default_gets_the_new_one(runs):
    out = runs / "eval-out"
    run(settings(out, "runs/pasr-cpu/final"))
    info = json.loads((out / "run.json").read_text())
    info["label"] = "final"  # as written before labels said what the model is
    (out / "run.json").write_text(json.dumps(info))
    run(settings(out, "runs/pasr-cpu/final"))
    assert json.loads((out / "run.json").read_text())["label"] == "pasr-cpu"
    assert load_run(out).label == "pasr-cpu"
