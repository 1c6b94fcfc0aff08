"""The field catalog behind `pasr train|sft|star --fields` and the fast check of field names."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from pasr.errors import PasrError
from pasr.train import fields
from pasr.train.checks import check_field_names
from pasr.train.command import DEFAULT_TRAIN_RECIPE

PASR = Path(sys.executable).parent / "pasr"
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", fields.COMMANDS)
def test_packaged_catalog_is_the_dataclasses(command):
    """fields.json must describe the configs as they are: rebuild it with `python -m pasr.train.fields --write`."""
    packaged = json.loads(fields.CATALOG.read_text())
    assert packaged["versions"] == fields.installed_versions()
    live = [dataclasses.asdict(f) for f in fields.build(fields.config_types(command))]
    assert packaged["commands"][command] == live, "stale fields.json: run python -m pasr.train.fields --write"
    names = [f["name"] for f in live]
    assert len(names) == len(set(names))
    expected = {dataclasses.fields(t)[0].name for t in fields.config_types(command)}
    assert expected <= set(names)


def test_catalog_is_built_live_when_the_installed_versions_differ(monkeypatch, tmp_path):
    path = tmp_path / "fields.json"
    path.write_text(json.dumps({"versions": {"trl": "0.0.1", "transformers": "0.0.1"},
                                "commands": {"train": [dataclasses.asdict(fields.FieldInfo("only", "int", "1", "", "g"))]}}))
    rows = fields.catalog("train", path)
    assert "refine_reward_mode" in {f.name for f in rows} and "only" not in {f.name for f in rows}
    path.write_text("{not json")
    assert "learning_rate" in {f.name for f in fields.catalog("train", path)}


def test_groups_put_pasr_first_then_model_then_trl_then_transformers():
    rows = fields.catalog("train")
    groups = list(dict.fromkeys(f.group for f in rows))
    assert groups[0].startswith("PASR")
    assert groups.index("Model and LoRA (TRL ModelConfig)") < groups.index("GRPO (TRL GRPOConfig)")
    assert groups[-1] == "Trainer (transformers TrainingArguments)"
    by_name = {f.name: f for f in rows}
    assert by_name["refine_reward_mode"].group.startswith("PASR")
    assert by_name["beta"].group.startswith("PASR") and by_name["beta"].default == "0.04"  # the paper's default
    assert by_name["lora_r"].group.startswith("Model")
    assert by_name["lazy_baseline"].flag and not by_name["zeta"].flag
    star_groups = list(dict.fromkeys(f.group for f in fields.catalog("star")))
    assert star_groups[0] == "STaR baseline"


def test_render_shows_each_field_once_without_argparse_noise():
    text = fields.render("train", fields.catalog("train"), width=100)
    assert "usage:" not in text and "(default: None)" not in text and "). (default: " not in text
    assert text.index("--refine_reward_mode") < text.index("--learning_rate") < text.index("--logging_steps")
    assert all(len(line) <= 100 for line in text.splitlines())
    for name in ("zeta", "lora_r", "max_steps"):
        assert text.count(f"  --{name}  ") == 1


def test_render_filters_by_word():
    text = fields.render("train", fields.catalog("train"), ["lora"], width=100)
    assert "--lora_r " in text and "--lora_dropout " in text
    assert "--entropy_coef" not in text  # "exploration" holds "lora" but no word starts with it
    assert "--learning_rate" not in text
    assert "no field matching 'nosuchthing'" in fields.render("train", fields.catalog("train"), ["nosuchthing"])


ROWS = fields.catalog("train")


@pytest.mark.parametrize("args", [
    ["--max_steps", "2"], ["--max-steps", "2"], ["--max_steps=2"], ["--no_lazy_baseline"], ["--no-lazy-baseline"],
    ["--lazy_baseline", "false"], ["--learning_rate", "-1e-5"], ["--max_step", "2"], ["--config", "x.yaml"],
])
def test_known_spellings_pass_the_fast_check(args):
    check_field_names(ROWS, {}, "r.yaml", args, command="train")


@pytest.mark.parametrize(("args", "needle"), [
    (["--max_stpes", "3"], "--max_stpes (did you mean --max_steps?)"),
    (["--max-stpes=3"], "--max-stpes (did you mean --max_steps?)"),
    (["--lerning_rate", "1"], "--lerning_rate (did you mean --learning_rate?)"),
    (["--no_zeta"], "--no_zeta"),  # --no_ exists only for bool fields
    (["--refine_mode", "single", "--zetta", "1"], "unknown fields --refine_mode"),
])
def test_unknown_flags_are_refused_by_the_fast_check(args, needle):
    with pytest.raises(PasrError, match="command line: unknown") as info:
        check_field_names(ROWS, {}, "r.yaml", args, command="train")
    assert needle in str(info.value) and "`pasr train --fields` lists them" in str(info.value)


def test_unknown_recipe_key_names_the_file_and_line():
    with pytest.raises(PasrError, match=r"recipe r.yaml, line 7: unknown field max_stpes \(did you mean max_steps\?\)"):
        check_field_names(ROWS, {"learning_rate": 2, "max_stpes": 7}, "r.yaml", [], command="train")
    check_field_names(ROWS, {"env": 1, "max_steps": 2}, "r.yaml", [], command="train")


def _run(*args, timeout=120):
    start = time.monotonic()
    done = subprocess.run([str(PASR), *args], capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "OMP_NUM_THREADS": "1"})
    return done, time.monotonic() - start


@pytest.mark.parametrize(("command", "typo", "fix"), [
    ("train", "--max_stpes", "--max_steps"), ("sft", "--lerning_rate", "--learning_rate"),
    ("star", "--star_iteratons", "--star_iterations"),
])
def test_a_typo_is_answered_in_seconds_with_a_suggestion(command, typo, fix):
    done, seconds = _run(command, typo, "3")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: command line: unknown field {typo} (did you mean {fix}?); "
        f"`pasr {fields.command_line(command)} --fields` lists them"]
    assert seconds < 10, seconds  # importing TRL alone takes 6-40 s on this machine class


def test_a_typo_does_not_import_trl():
    code = ("import sys\nfrom pasr.train.command import parse_config, DEFAULT_TRAIN_RECIPE\n"
            "try:\n    parse_config('train', ['--max_stpes', '3'], DEFAULT_TRAIN_RECIPE)\n"
            "except Exception as e:\n    print(type(e).__name__)\n"
            "print(sorted(m for m in ('trl', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["PasrError", "[]"]


def test_fields_lists_pasr_first_fast():
    done, seconds = _run("train", "--fields")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("pasr train: ")
    first = lines.index("") + 1
    assert lines[first].startswith("PASR") and lines[first + 1].startswith("  --system_prompt")
    assert seconds < 10, seconds
    done, _ = _run("sft", "--fields", "warmup")
    assert "--warmup_examples" in done.stdout and "--learning_rate" not in done.stdout


def test_version_option_and_license_metadata():
    import pasr

    done, _ = _run("--version")
    assert done.returncode == 0 and done.stdout.startswith(f"pasr {pasr.__version__} (torch ")
    assert "trl 1.16.0" in done.stdout
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # An SPDX string, not the TOML table setuptools warns about on every install.
    assert project["license"] == "Apache-2.0" and (ROOT / project["license-files"][0]).is_file()


def test_default_recipe_passes_the_fast_check():
    from pasr.train.checks import load_recipe

    _, lines = load_recipe(DEFAULT_TRAIN_RECIPE)
    check_field_names(ROWS, lines, DEFAULT_TRAIN_RECIPE, [], command="train")
