"""`pasr baseline NAME`: every trained baseline through its registry entry; `pasr star` and `pasr ift-data` too."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from pasr.train.command import RECIPES

DEFAULT_STAR_RECIPE = RECIPES / "cpu-star.yaml"

console = Console()


def ift_data_command(
    rollout_log: Path = typer.Argument(..., help="Rollout log of a `pasr train` run (OUTPUT_DIR/rollouts.jsonl)."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Chat JSONL to write (default: ift-data.jsonl beside the log)."
    ),
    require_valid: bool = typer.Option(True, "--require-valid/--no-require-valid", help="Keep only valid format."),
    require_refine: bool = typer.Option(
        True, "--require-refine/--no-require-refine", help="Keep only completions with a <refine> segment."
    ),
    min_refine_reward: float = typer.Option(
        0.0, "--min-refine-reward", help="Keep refine reward strictly greater than this (-inf: no refine-reward test)."
    ),
    min_accuracy: Optional[float] = typer.Option(None, "--min-accuracy", help="Keep accuracy >= this (default: off)."),
    dedupe: bool = typer.Option(False, "--dedupe/--no-dedupe", help="Keep one of identical (question, completion)."),
) -> None:
    """PASR(+IFT) data: keep the good refining rollouts of a PASR run as chat examples under the PASR prompt.

    The data step of `pasr baseline ift` alone; then `pasr baseline ift --config cpu-ift.yaml --data_file DATA.jsonl`.
    """
    from pasr.baselines.ift import IftFilter, default_output, filter_rollouts, read_rollout_log, write_ift_data
    from pasr.errors import PasrError
    from pasr.train.checks import check_input_file, check_output_file

    if rollout_log.exists():  # a missing one: read_rollout_log says where `pasr train` writes it
        check_input_file(rollout_log, "ROLLOUT_LOG")
    output = check_output_file(output or default_output(rollout_log), "--output")
    flt = IftFilter(require_valid=require_valid, require_refine=require_refine, min_refine_reward=min_refine_reward,
                    min_accuracy=min_accuracy, dedupe=dedupe)
    rows = read_rollout_log(rollout_log)
    kept, funnel = filter_rollouts(rows, flt)
    table = Table(title=f"PASR(+IFT) filters on {rollout_log}", title_justify="left")
    table.add_column("filter (cumulative)")
    table.add_column("kept", justify="right")
    table.add_column("share", justify="right")
    total = funnel[0][1]
    for label, n in funnel:
        table.add_row(label, str(n), f"{100 * n / total:.1f}%" if total else "-")
    console.print(table)
    if not kept:
        raise PasrError(f"{rollout_log}: no rollout passed the filters; loosen them "
                        "(e.g. --min-refine-reward -inf, --no-require-refine) or use a longer PASR run")
    path = write_ift_data(kept, output)
    console.print(f"examples: {len(kept)} -> {path}", highlight=False)
    console.print(f"next:     pasr baseline ift --config cpu-ift.yaml --data_file {path}", highlight=False)


def baseline_command(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, help="The baseline (`pasr baseline --list` names them)."),
    list_: bool = typer.Option(False, "--list", help="List the baselines and exit."),
    fields: bool = typer.Option(
        False, "--fields", help="List every config field, the baseline's first (`--fields WORD`: those about WORD)."
    ),
) -> None:
    """A trained baseline: `pasr baseline NAME --config RECIPE [--field value ...]` (default: its CPU recipe).

    The model goes to OUTPUT_DIR/final; a summary table and the run's log follow. No NAME: the list.
    """
    from pasr.baselines import registry

    if list_ or name is None:
        print_baselines()
        return
    run_baseline(registry.get(name), ctx.args, fields=fields)


def star_command(
    ctx: typer.Context,
    fields: bool = typer.Option(
        False, "--fields", help="List every config field, STaR's first (`--fields WORD` lists those about WORD)."
    ),
) -> None:
    """STaR baseline (alias of `pasr baseline star`): K rounds of few-shot rationales, each fine-tuning the base model.

    `pasr star --config recipes/X.yaml [--field value ...]`; default: the CPU recipe (built-in model and task).
    Per-iteration counts and held-out accuracy go to OUTPUT_DIR/star_log.jsonl; the last model to OUTPUT_DIR/final.
    """
    from pasr.baselines import registry

    run_baseline(registry.get("star"), ctx.args, fields=fields)


def run_baseline(baseline, args: list[str], *, fields: bool = False) -> None:
    """Parse ``--config`` and the field flags for ``baseline`` (a registry entry), check paths, run, print the summary.

    ``fields``: print the config fields instead (``args`` that are not flags filter them).
    """
    from pasr.train.command import parse_config, print_fields

    if fields:
        print_fields(baseline.name, args)
        return
    config, model_config = parse_config(baseline.name, args, baseline.recipe_path)
    from pasr.train.checks import check_paths

    check_paths(config)
    try:
        result = baseline.run_function()(config, model_config, console=console)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted.[/yellow] What finished is kept in {config.output_dir}; rerun the same "
                      "command to resume.", highlight=False)
        raise typer.Exit(130) from None
    print_summary(baseline.heading, result)


def print_baselines() -> None:
    """The registered baselines: name, default recipe, description."""
    from pasr.baselines.registry import BASELINES

    table = Table(title="pasr baseline NAME --config RECIPE [--field value ...]", title_justify="left")
    for column in ("name", "default recipe", "what"):
        table.add_column(column, overflow="fold")
    for baseline in BASELINES:
        table.add_row(baseline.name, baseline.recipe_path.name, baseline.description)
    console.print(table)


def print_summary(title: str, result) -> None:
    """A baseline's result: its ``rows`` as a table (columns: the first row's keys), then model, log, wall time."""
    table = Table(title=title, title_justify="left")
    rows = list(result.rows)
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(str(row.get(column, "-")) for column in columns))
    console.print(table)
    console.print(f"model:     {result.model_dir}   (pasr eval --model {result.model_dir} ...)", highlight=False)
    from pathlib import Path

    if Path(result.log_path).exists():  # no held-out questions: no log
        console.print(f"log:       {result.log_path}", highlight=False)
    console.print(f"wall time: {result.seconds / 60:.1f} min", highlight=False)
