"""`pasr eval` through the Typer app, on the tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pasr.cli import app

SHARED = Path(__file__).resolve().parents[2] / "shared"
runner = CliRunner()


def test_cli_run_produces_layout_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    args = ["eval", "--model", "tiny-random", "--benchmark", "synthetic", "--limit", "4", "--max-tokens", "8",
            "--methods", "vanilla,self-refine", "--output", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.output and "self-refine" in result.output and str(out) in result.output
    assert (out / "run.json").exists()
    for method in ("vanilla", "self-refine"):
        lines = [json.loads(x) for x in (out / "synthetic" / f"{method}.jsonl").read_text().splitlines()]
        assert len(lines) == 4
        assert all(line["model"] == "tiny-random" and line["tokens"] <= 8 * len(line["turns"]) for line in lines)
        summary = json.loads((out / "synthetic" / f"{method}.summary.json").read_text())
        assert summary["n"] == 4 and summary["method"] == method
    sr = [json.loads(x) for x in (out / "synthetic" / "self-refine.jsonl").read_text().splitlines()]
    assert all(len(line["turns"]) == 2 and line["tokens"] == sum(t["tokens"] for t in line["turns"]) for line in sr)
    # the same command again: nothing left to do, nothing appended
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len((out / "synthetic" / "vanilla.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    "flag,value,expected",
    [
        ("--benchmark", "gsm9k", "unknown benchmark 'gsm9k'; known:"),
        ("--methods", "vanilla,reflexion", "unknown method 'reflexion'; known: vanilla, pasr, self-refine"),
    ],
)
def test_cli_unknown_names(tmp_path, flag, value, expected):
    args = {"--benchmark": "synthetic", "--methods": "vanilla"}
    args[flag] = value
    result = runner.invoke(app, ["eval", "--model", "no-such-model-anywhere", "--output", str(tmp_path / "r"),
                                 *[x for kv in args.items() for x in kv]])
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())
    assert not (tmp_path / "r").exists()  # refused before any model or data was loaded


@pytest.mark.slow
def test_cli_real_model_on_gsm8k(tmp_path):
    """The built-in SmolLM2 on two real GSM8K questions (needs /work/shared)."""
    data = SHARED / "benchmarks" / "gsm8k.jsonl"
    if not data.exists():
        pytest.skip("shared benchmark files not present")
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--benchmark", "gsm8k", "--data-file", str(data), "--limit", "2",
                                 "--max-tokens", "64", "--methods", "vanilla,pasr", "--output", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "gsm8k" / "vanilla.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(line["final"] and 0 < line["tokens"] <= 64 for line in lines)
