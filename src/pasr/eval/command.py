"""`pasr eval`: evaluate a model on benchmarks with vanilla, PASR and self-refine methods.

The heavy work lives in :mod:`pasr.eval.runner`; this module parses options, prints the progress and a
short summary table. torch and transformers are imported only when a backend is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pasr.eval.methods import METHODS
from pasr.models import DEFAULT_MODEL


def eval_command(
    model: str = typer.Option(
        DEFAULT_MODEL, "--model", "-m",
        help="Built-in model name, local model folder (e.g. from `pasr train`), hub id, or the served model "
        "name with --backend openai.",
    ),
    benchmark: str = typer.Option(
        ..., "--benchmark", "-b", help="Benchmark name, or a comma list (e.g. gsm8k,math500). See `pasr data`."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder (RUN_DIR); rerun into it to resume."),
    methods: str = typer.Option(
        "vanilla,pasr", "--methods", help=f"Comma list of methods: {', '.join(METHODS)}."
    ),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Local data file for the one benchmark."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the benchmarks' files."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate at most N examples per benchmark."),
    seed: int = typer.Option(0, "--seed", help="Seed for subset selection and sampling."),
    max_tokens: int = typer.Option(1500, "--max-tokens", help="Generated tokens per turn (the paper: 1500)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Batch size (transformers) or requests in flight (openai)."),
    rounds: int = typer.Option(
        1, "--rounds", help="Turns after the first answer: self-refine (stops once the model confirms), "
        "self-refine-oracle, ptr, score (1: SCoRe's two attempts), rise (majority over all turns), rise-oracle "
        "(stops once right)."
    ),
    backend: str = typer.Option("transformers", "--backend", help="transformers, vllm or openai."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (--backend openai)."),
    scorer: str = typer.Option(
        "rule", "--scorer",
        help="rule: each answer family's rule-based scorer (the judge only for open tasks); judge: the LLM judge "
        "scores every benchmark, the PASR authors' protocol; both: the judge's score plus the rule's beside it, "
        "with their agreement (share, Cohen's kappa) in the summaries and `pasr report`. judge/both need --judge-url.",
    ),
    judge_url: Optional[str] = typer.Option(
        None, "--judge-url", help="Judge server URL (--scorer judge|both, open tasks, --analyses)."
    ),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", help="Judge model name on that server."),
    judge_timeout: float = typer.Option(60.0, "--judge-timeout", help="Seconds per judge request."),
    judge_retries: int = typer.Option(3, "--judge-retries", help="Retries per judge request (with backoff)."),
    judge_max_tokens: int = typer.Option(
        16, "--judge-max-tokens", help="Reply tokens per judge request; raise it for judges that reason first."
    ),
    analyses: bool = typer.Option(False, "--analyses", help="LLM analyses of refining responses (needs a judge)."),
    label: Optional[str] = typer.Option(
        None, "--label", help="Name of this run in reports (default: what the model is: the training run's folder "
        "for OUTPUT_DIR/final, RUN@checkpoint-N for a checkpoint, else the built-in name, hub id or folder name).",
    ),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy (default)."),
    dtype: str = typer.Option(
        "auto", "--dtype", help="transformers backend: auto (bf16 on GPU, bf16 autocast on CPUs with native bf16), "
        "float32 or bfloat16 (on a bf16 CPU the fastest: bf16 weights, eager attention; on a CPU that emulates "
        "bf16, float32 with a note, and run.json records float32)."
    ),
    chunk_size: Optional[int] = typer.Option(
        None, "--chunk-size", help="Examples per flush to the results file (default: 8 x batch size)."
    ),
    completion_prefix: str = typer.Option(
        "", "--completion-prefix",
        help="The text the chat template puts at the start of the assistant turn, e.g. '<think>\\n' for "
        "DeepSeek-R1 distills; completions are parsed as its continuation. Taken literally (in bash, $'<think>\\n' "
        "passes a newline; '<think>' alone judges the same).",
    ),
) -> None:
    """Evaluate a model on benchmarks with several methods; results go to RUN_DIR (resumable)."""
    from rich.console import Console

    from pasr.errors import PasrError
    from pasr.eval.runner import EvalSettings, run_eval, split_names

    console = Console()
    settings = EvalSettings(
        model=model,
        benchmarks=split_names(benchmark),
        methods=split_names(methods),
        output=Path(output),
        data_file=str(data_file) if data_file else None,
        data_dir=str(data_dir) if data_dir else None,
        limit=limit,
        seed=seed,
        max_tokens=max_tokens,
        batch_size=batch_size,
        rounds=rounds,
        backend=backend,
        base_url=base_url,
        judge_url=judge_url,
        judge_model=judge_model,
        analyses=analyses,
        label=label,
        temperature=temperature,
        dtype=dtype,
        chunk_size=chunk_size,
        completion_prefix=completion_prefix,
        scorer=scorer,
        judge_timeout=judge_timeout,
        judge_retries=judge_retries,
        judge_max_tokens=judge_max_tokens,
    )
    try:
        summaries = run_eval(settings, console=console)
    except PasrError as exc:
        from pasr.cli import print_error

        print_error(exc)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print(
            f"[yellow]interrupted.[/yellow] Finished examples are kept in {settings.output}; "
            "rerun the same command to resume.",
            highlight=False,
        )
        raise typer.Exit(130) from None
    print_summary(console, summaries, settings.output)
    if not report_judge_problems(console, summaries, settings.output):
        raise typer.Exit(1)


def report_judge_problems(console, summaries, run_dir: Path) -> bool:
    """Say what the judge left undone or could not score; False when the run is incomplete (exit code 1)."""
    for s in summaries:
        if s.get("judge_fallbacks"):
            console.print(
                f"[yellow]warning:[/yellow] {s['benchmark']} / {s['method']}: the judge's reply held no score for "
                f"{s['judge_fallbacks']} of {s['n']} responses, scored 0; if that is most of them, the judge's "
                "reply may be cut short (--judge-max-tokens) or the judge may not follow the prompt.",
                highlight=False, soft_wrap=True,
            )
    complete = True
    waiting = [s for s in summaries if s.get("unjudged")]
    if waiting:
        complete = False
        total = sum(s["unjudged"] for s in waiting)
        where = ", ".join(f"{s['benchmark']}/{s['method']} {s['unjudged']}" for s in waiting)
        console.print(
            f"[yellow]incomplete:[/yellow] the judge did not answer for {total} example(s) ({where}); their "
            f"responses are kept in <benchmark>/<method>.unjudged.jsonl under {run_dir} and are judged "
            "when you rerun the same command. The summaries above leave them out.",
            highlight=False, soft_wrap=True,
        )
    for s in summaries:
        if s.get("stopped"):
            complete = False
            console.print(f"[yellow]incomplete:[/yellow] {s['benchmark']} / {s['method']} stopped: {s['stopped']}; "
                          "rerun the same command once the judge answers to resume.", highlight=False, soft_wrap=True)
    return complete


def print_summary(console, summaries, run_dir: Path) -> None:
    """The short table at the end: benchmark, method, n, score (95% CI), mean tokens, refine rate."""
    from rich.table import Table

    judged = [s for s in summaries if s.get("scorer") in ("judge", "both")]
    title = f"pasr eval: scores by the judge ({judged[0].get('judge_model')})" if judged else "pasr eval"
    table = Table(title=title, title_justify="left")
    for name, justify in (("benchmark", "left"), ("method", "left"), ("n", "right"), ("score", "right"),
                          ("95% CI", "right"), ("tokens", "right"), ("refine rate", "right")):
        table.add_column(name, justify=justify)
    for s in summaries:
        ci = s.get("score_ci")
        table.add_row(
            s["benchmark"],
            s["method"],
            str(s["n"]),
            "-" if s["score"] is None else f"{100 * s['score']:.1f}",
            "-" if not ci else f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}",
            "-" if s["tokens_mean"] is None else f"{s['tokens_mean']:.0f}",
            "-" if s["refine_rate"] is None else f"{100 * s['refine_rate']:.0f}%",
        )
    console.print(table)
    for s in summaries:
        agreement = s.get("judge_rule_agreement")
        if agreement:
            kappa = "undefined" if agreement["kappa"] is None else f"{agreement['kappa']:.2f}"
            console.print(
                f"judge vs rule, {s['benchmark']} / {s['method']}: agree {100 * agreement['agree']:.0f}% "
                f"(kappa {kappa}, n={agreement['n']}); judge right where the rule says wrong "
                f"{agreement['judge_right_rule_wrong']}, the other way {agreement['judge_wrong_rule_right']}",
                highlight=False, soft_wrap=True,
            )
    console.print(f"results: {run_dir}", highlight=False, soft_wrap=True)
