"""Every packaged recipe parses with the config it is for: a misspelt field fails here, not on a GPU cluster."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pasr.baselines import registry
from pasr.train.command import DEFAULT_TRAIN_RECIPE, RECIPES, parse_config
from pasr.train.config import PasrGRPOConfig

RECIPE_FILES = sorted(p for p in RECIPES.rglob("*.yaml") if "accelerate" not in p.parts)


def command_of(path: Path) -> str:
    """A baseline's recipe (``cpu-NAME.yaml``, ``MODEL/NAME.yaml``) parses as ``pasr baseline NAME``."""
    stem = path.stem.removeprefix("cpu-")
    if stem in registry.names():
        return stem
    if "sft" in path.name or "warmup" in path.name:
        return "sft"
    return "train"


def test_repo_recipes_folder_is_the_packaged_one():
    repo_recipes = Path(__file__).resolve().parents[1] / "recipes"
    assert (repo_recipes / "cpu-default.yaml").is_file()
    assert {p.name for p in repo_recipes.glob("*.yaml")} == {p.name for p in RECIPES.glob("*.yaml")}


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_parses(path):
    gpu = not path.name.startswith("cpu-")
    # GPU recipes ask for bf16 on CUDA; on this CPU-only machine parse them with use_cpu so the fields are checked.
    config, model_config = parse_config(
        command_of(path), ["--config", str(path), *(["--use_cpu", "true"] if gpu else [])],
        DEFAULT_TRAIN_RECIPE,
    )
    assert model_config.model_name_or_path
    if isinstance(config, PasrGRPOConfig) and gpu and command_of(path) == "train":  # the paper's settings (LoRA: higher lr)
        assert (config.beta, config.epsilon, config.num_generations, config.temperature) == (0.04, 0.2, 8, 0.9)
        assert config.max_completion_length == 1500
        assert config.learning_rate == (1e-5 if model_config.use_peft else 1e-6)


BASELINE_RECIPES = [p for p in RECIPE_FILES if p.stem.removeprefix("cpu-") in registry.names()]
_LEGACY_COMMAND = re.compile(r"\bpasr\)? (?:ift-data|sft|star)\b")


@pytest.mark.parametrize("path", BASELINE_RECIPES, ids=lambda p: str(p.relative_to(RECIPES)))
def test_baseline_recipe_comments_show_pasr_baseline_only(path):
    """A baseline's recipe shows the one documented way to run it, `pasr baseline NAME`, never the old
    `pasr ift-data` + `pasr sft` / `pasr star`."""
    comments = "\n".join(line for line in path.read_text().splitlines() if line.lstrip().startswith("#"))
    assert f"baseline {path.stem.removeprefix('cpu-')}" in comments
    assert not _LEGACY_COMMAND.search(comments), _LEGACY_COMMAND.search(comments).group()
