"""`pasr train` and `pasr sft`: TRL-style configs from a YAML recipe plus ``--field value`` overrides."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
DEFAULT_TRAIN_RECIPE = RECIPES / "cpu-default.yaml"
DEFAULT_SFT_RECIPE = RECIPES / "cpu-warmup-sft.yaml"

console = Console()


def recipe_path(value: str) -> str:
    """A recipe path as given, or a packaged recipe by file name (``cpu-default.yaml``)."""
    from pasr.errors import PasrError

    if not value or value.startswith("--"):
        raise PasrError("--config needs a YAML recipe path")
    path = Path(value).expanduser()
    if path.exists():
        return str(path)
    packaged = RECIPES / value
    if packaged.is_file():
        return str(packaged)
    packaged = RECIPES / path.name
    if packaged.is_file():
        return str(packaged)
    known = sorted(str(p.relative_to(RECIPES)) for p in RECIPES.rglob("*.yaml") if "accelerate" not in p.parts)
    raise PasrError(f"recipe {value} not found; packaged recipes: {', '.join(known)}")


def split_config(args: list[str], default_recipe: Path) -> tuple[str, list[str]]:
    """The recipe path (``--config PATH`` or ``--config=PATH``; default ``default_recipe``) and the other args."""
    from pasr.errors import PasrError

    args = list(args)
    found = [i for i, a in enumerate(args) if a == "--config" or a.startswith("--config=")]
    if len(found) > 1:
        raise PasrError("--config given twice; give one recipe and override its fields with --field value")
    if not found:
        return str(default_recipe), args
    i = found[0]
    if args[i] == "--config":
        if i + 1 >= len(args):
            raise PasrError("--config needs a YAML recipe path")
        value = args[i + 1]
        del args[i:i + 2]
    else:
        value = args[i].split("=", 1)[1]
        del args[i]
    return recipe_path(value), args


def parse_config(command: str, args: list[str], default_recipe: Path, dataclass_types=None):
    """Parse ``--config`` (default: ``default_recipe``) and ``--field value`` flags of ``pasr COMMAND``, every value checked.

    Field names are checked first against the packaged field catalog (:mod:`pasr.train.fields`), so a typo is
    refused in about a second, before TRL is imported. ``dataclass_types`` default to the command's
    (:func:`pasr.train.fields.config_types`). A malformed recipe, an unknown field, a value of the wrong type
    or out of range ends in a one-line :class:`~pasr.errors.PasrError` before any dataclass is built (see
    :mod:`pasr.train.checks`). Nothing is written; the commands check their paths next with
    :func:`pasr.train.checks.check_paths`.
    """
    from pasr.train import fields
    from pasr.train.checks import check_field_names, load_recipe, parse_checked

    recipe, rest = split_config(args, default_recipe)
    data, lines = load_recipe(recipe)
    check_field_names(fields.catalog(command), lines, recipe, rest, command=command)
    types = tuple(dataclass_types or fields.config_types(command))
    return parse_checked(types, recipe, rest, command=command, loaded=(data, lines))


def print_fields(command: str, terms: list[str]) -> None:
    """``pasr COMMAND --fields [WORD ...]``: the command's fields, PASR's first, grouped (from the catalog: fast)."""
    from pasr.train import fields

    print(fields.render(command, fields.catalog(command), [t for t in terms if not t.startswith("-")]))


def train_command(
    ctx: typer.Context,
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in --output_dir."),
    fields: bool = typer.Option(
        False, "--fields", help="List every config field, PASR's first (`--fields WORD` lists those about WORD)."
    ),
) -> None:
    """PASR GRPO training. No arguments: the CPU default (built-in model, warm-up, then PASR GRPO, ~19 min on 2 cores).

    Everything else: `pasr train --config recipes/X.yaml [--field value ...]` with TRL's field names
    (`--max_steps 2 --output_dir DIR --learning_rate 1e-6 ...`); see `pasr train --fields`.
    """
    if fields:
        print_fields("train", ctx.args)
        return
    config, model_config = parse_config("train", ctx.args, DEFAULT_TRAIN_RECIPE)
    from pasr.train.checks import check_paths

    check_paths(config)
    from pasr.train.grpo import train_pasr

    quiet_dataset_bars()
    print_train_summary(train_pasr(config, model_config, resume=resume))


def quiet_dataset_bars() -> None:
    """Hide `datasets`' per-map progress bars ("Truncating train dataset"); the phases print their own lines."""
    import datasets

    datasets.disable_progress_bars()


def print_train_summary(result) -> None:
    from pasr.train.grpo import trend

    table = Table(title="PASR training", show_header=True)
    table.add_column("metric")
    table.add_column("first third", justify="right")
    table.add_column("last third", justify="right")
    for key in ("reward", "rewards/accuracy_reward/mean", "rewards/refine_reward/mean", "pasr/refine_rate",
                "pasr/format_valid_rate", "completions/mean_length"):
        t = trend(result.log_history, key)
        if t is not None:
            table.add_row(key, f"{t[0]:.3f}", f"{t[1]:.3f}")
    console.print(table)
    console.print(f"model:       {result.model_dir}   (pasr eval --model {result.model_dir} ...)")
    if result.warmup_dir:
        console.print(f"warm-up:     {result.warmup_dir}")
    console.print(f"rollout log: {result.rollout_log}")
    console.print(f"wall time:   {result.seconds / 60:.1f} min")


def sft_command(
    ctx: typer.Context,
    fields: bool = typer.Option(
        False, "--fields", help="List every config field, PASR's first (`--fields WORD` lists those about WORD)."
    ),
) -> None:
    """Supervised fine-tuning on TRL's SFTTrainer (warm-up on built-in worked solutions, or a chat JSONL file).

    `pasr sft --config recipes/X.yaml [--field value ...]`; default: the CPU warm-up recipe.
    """
    if fields:
        print_fields("sft", ctx.args)
        return
    config, model_config = parse_config("sft", ctx.args, DEFAULT_SFT_RECIPE)
    from pasr.train.checks import check_paths

    check_paths(config)
    from pasr.train.sft import run_sft

    quiet_dataset_bars()
    final_dir = run_sft(config, model_config)
    console.print(f"model: {final_dir}   (pasr eval --model {final_dir} ...)")
