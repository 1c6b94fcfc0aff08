"""`pasr ift-data` and `pasr star`: the trained baselines' commands (training itself is `pasr sft`)."""

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

    Then fine-tune the base model on them: `pasr sft --config cpu-ift.yaml --data_file DATA.jsonl`.
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
    console.print(f"next:     pasr sft --config cpu-ift.yaml --data_file {path}", highlight=False)


def star_command(
    ctx: typer.Context,
    fields: bool = typer.Option(
        False, "--fields", help="List every config field, STaR's first (`--fields WORD` lists those about WORD)."
    ),
) -> None:
    """STaR baseline: K rounds of few-shot rationales (+ rationalisation), each fine-tuning the base model.

    `pasr star --config recipes/X.yaml [--field value ...]`; default: the CPU recipe (built-in model and task).
    Per-iteration counts and held-out accuracy go to OUTPUT_DIR/star_log.jsonl; the last model to OUTPUT_DIR/final.
    """
    from pasr.train.command import parse_config, print_fields

    if fields:
        print_fields("star", ctx.args)
        return
    config, model_config = parse_config("star", ctx.args, DEFAULT_STAR_RECIPE)
    from pasr.train.checks import check_paths

    check_paths(config)
    from pasr.baselines.star import run_star

    result = run_star(config, model_config, console=console)
    print_star_summary(result)


def print_star_summary(result) -> None:
    table = Table(title="STaR", title_justify="left")
    for name in ("iteration", "kept", "direct", "rationalised", "held-out acc", "tokens", "min"):
        table.add_column(name, justify="right")

    def cell(value, fmt="{}"):
        return "-" if value is None else fmt.format(value)

    for row in result.iterations:
        table.add_row(
            "base" if row["iteration"] == 0 else str(row["iteration"]),
            cell(row.get("kept")),
            cell(row.get("direct")),
            cell(row.get("rationalized")),
            cell(row.get("heldout_accuracy"), "{:.3f}"),
            cell(row.get("heldout_tokens_mean"), "{:.0f}"),
            cell(row.get("seconds") and row["seconds"] / 60, "{:.1f}"),
        )
    console.print(table)
    console.print(f"model:     {result.model_dir}   (pasr eval --model {result.model_dir} --methods vanilla ...)",
                  highlight=False)
    console.print(f"log:       {result.log_path}", highlight=False)
    console.print(f"wall time: {result.seconds / 60:.1f} min", highlight=False)
