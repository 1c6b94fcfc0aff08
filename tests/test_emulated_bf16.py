"""bf16 on a CPU is a speed choice: taken where the CPU has it natively, declined (fp32, one note) where torch
emulates it (bench/bench_cpu_bf16.py: a training step 23x, a decode step 2.7x slower than fp32 on an AVX2 CPU)."""

from __future__ import annotations

import pytest

import pasr.models
from pasr.errors import PasrError
from pasr.generation.backends import TransformersBackend
from pasr.train.checks import check_paths
from pasr.train.command import DEFAULT_SFT_RECIPE, DEFAULT_TRAIN_RECIPE, parse_config


@pytest.fixture
def cpu(monkeypatch):
    """Pretend a machine without a GPU whose CPU has (True) or lacks (False) native bf16."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def native(has: bool) -> None:
        monkeypatch.setattr(pasr.models, "cpu_supports_bf16", lambda: has)

    return native


@pytest.mark.parametrize("command, recipe", [("train", DEFAULT_TRAIN_RECIPE), ("sft", DEFAULT_SFT_RECIPE)])
def test_recipe_bf16_is_declined_on_a_cpu_that_emulates_it(cpu, capsys, command, recipe, tmp_path):
    cpu(False)
    config, _ = parse_config(command, ["--output_dir", str(tmp_path)], recipe)
    assert config.bf16 is False and config.use_cpu
    assert capsys.readouterr().err == ""  # said once every check has passed: a refused command says its error only
    check_paths(config)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    line = next(i for i, text in enumerate(recipe.read_text().splitlines(), 1) if text.startswith("bf16:"))
    assert err.startswith(f"note: recipe {recipe}, line {line}: bf16 true -> false: this CPU has no native bf16")
    assert "training in fp32" in err


def test_bf16_stays_where_the_cpu_has_it(cpu, capsys, tmp_path):
    cpu(True)
    config, _ = parse_config("train", ["--output_dir", str(tmp_path)], DEFAULT_TRAIN_RECIPE)
    check_paths(config)
    assert config.bf16 is True
    assert "bf16" not in capsys.readouterr().err


def test_bf16_from_the_command_line_is_declined_too_and_the_note_says_so(cpu, capsys, tmp_path):
    cpu(False)
    recipe = tmp_path / "fp32.yaml"
    recipe.write_text(DEFAULT_TRAIN_RECIPE.read_text().replace("bf16: true", "bf16: false"))
    config, _ = parse_config("train", ["--output_dir", str(tmp_path)], recipe)
    assert config.bf16 is False and capsys.readouterr().err == ""  # nothing to decline, nothing said
    config, _ = parse_config("train", ["--output_dir", str(tmp_path), "--bf16", "true"], recipe)
    assert config.bf16 is False
    check_paths(config)
    assert capsys.readouterr().err.startswith("note: command line: bf16 true -> false")
    (tmp_path / "afile").write_text("")
    config, _ = parse_config("train", ["--output_dir", str(tmp_path / "afile" / "o"), "--bf16", "true"], recipe)
    with pytest.raises(PasrError, match="is a file"):
        check_paths(config)
    assert capsys.readouterr().err == ""  # a refused command: its one-line error only, no note


@pytest.fixture(scope="module")
def tiny():
    from pasr.models import load_tokenizer, resolve

    path = resolve("tiny-random")
    return path, load_tokenizer(path)


def test_bf16_weights_are_fp32_on_a_cpu_that_emulates_bf16(cpu, capsys, tiny):
    import torch

    path, tok = tiny
    cpu(False)
    backend = TransformersBackend(path, batch_size=2, dtype="bfloat16", device="cpu")
    assert next(backend.model.parameters()).dtype == torch.float32 and not backend.autocast
    notes = [line for line in capsys.readouterr().err.splitlines() if "bf16" in line]  # (beside loading bars)
    assert len(notes) == 1 and notes[0].startswith("note: bf16 weights asked for: this CPU has no native bf16")
    assert all(0 < n <= 4 for _, n in backend.generate([[{"role": "user", "content": "hi"}]], max_tokens=4))
    cpu(True)
    backend = TransformersBackend(path, batch_size=2, dtype="bfloat16", device="cpu")
    assert next(backend.model.parameters()).dtype == torch.bfloat16 and "bf16" not in capsys.readouterr().err


def test_eval_records_the_dtype_it_decoded_in(cpu, capsys, tiny, tmp_path):
    """`pasr eval --dtype bfloat16` on a CPU that emulates bf16 decodes in fp32, and run.json says float32, so a
    resume from a machine with native bf16 is refused instead of mixing numerics in one folder."""
    import json

    from pasr.eval.runner import EvalSettings, run_eval

    def settings(limit: int):
        return EvalSettings(model="tiny-random", benchmarks=["synthetic"], methods=["vanilla"], output=tmp_path / "e",
                            limit=limit, max_tokens=4, dtype="bfloat16")

    cpu(False)
    run_eval(settings(2))
    assert json.loads((tmp_path / "e" / "run.json").read_text())["dtype"] == "float32"
    assert sum("note: bf16 weights asked for" in line for line in capsys.readouterr().err.splitlines()) == 1
    cpu(True)
    with pytest.raises(PasrError, match="dtype='float32', but this command has dtype='bfloat16'"):
        run_eval(settings(3))
