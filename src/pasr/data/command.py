"""`pasr data ...`: write the built-in task's records and warm-up examples, look at benchmarks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

data_app = typer.Typer(help="Built-in task data and benchmark files.", no_args_is_help=True)
console = Console()


def _fail(error: Exception) -> None:
    """One line ``error: ...`` on stderr and exit code 2, as `pasr` prints every bad-input error."""
    from pasr.cli import print_error

    print_error(error)
    raise typer.Exit(2) from None


def _check_options(*, n: int | None = None, difficulty: int | None = None, split: str | None = None,
                   shares: dict[str, tuple[float, bool, bool]] | None = None, at_least_one: dict | None = None) -> None:
    """The shared option checks of the data commands (a PasrError naming the option), before any work."""
    from pasr.data import synthetic
    from pasr.errors import PasrError

    if n is not None and n < 1:
        raise PasrError(f"--n {n}: must be >= 1")
    if difficulty is not None and difficulty not in synthetic.LEVELS:
        raise PasrError(f"--difficulty {difficulty}: must be one of {', '.join(map(str, synthetic.LEVELS))}")
    if split is not None and split not in synthetic.SPLITS:
        raise PasrError(f"--split {split}: split must be one of {', '.join(synthetic.SPLITS)}")
    for option, (value, low_open, high_open) in (shares or {}).items():
        if not ((value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)):
            span = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
            raise PasrError(f"{option} {value}: must be in {span}")
    for option, value in (at_least_one or {}).items():
        if value < 1:
            raise PasrError(f"{option} {value}: must be >= 1")


def _check_family(family: str, difficulty: int | None, easy_share: float | None) -> None:
    """``--family`` is known, and ``--difficulty`` (arith) or ``--easy-share`` (sums) fits it."""
    from pasr.data import synthetic
    from pasr.errors import PasrError

    synthetic.check_family(family, "--family")
    if family != "arith" and difficulty is not None:
        raise PasrError(f"--difficulty applies to --family arith only; {family} has --easy-share")
    if family != "sums" and easy_share is not None:
        raise PasrError(f"--easy-share applies to --family sums only; {family} has --difficulty")
    if easy_share is not None and not 0 <= easy_share <= 1:
        raise PasrError(f"--easy-share {easy_share}: must be in [0, 1]")


@data_app.command("synthetic")
def synthetic_command(
    output: Path = typer.Option(..., "--output", "-o", help="JSONL file to write the records to."),
    n: int = typer.Option(1000, "--n", "-n", help="Number of problems."),
    split: str = typer.Option("train", "--split", help="train or test (the splits never share a problem)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same problems."),
    family: str = typer.Option("arith", "--family", help="arith (word problems) or sums (two-number sums, "
                                                          "easy or hard: checking is easier than answering)."),
    difficulty: Optional[int] = typer.Option(None, "--difficulty", help="arith only: 1-5; default: the built-in "
                                                                         "default."),
    easy_share: Optional[float] = typer.Option(None, "--easy-share", help="sums only: share of easy problems "
                                                                          "(default 0.4)."),
) -> None:
    """Generate built-in problems (task 'arith': word problems, or --family sums) as records JSONL."""
    from pasr.data import synthetic
    from pasr.data.records import write_records
    from pasr.errors import PasrError
    from pasr.train.checks import check_output_file

    level = synthetic.DEFAULT_DIFFICULTY if difficulty is None else difficulty
    try:
        _check_family(family, difficulty, easy_share)
        _check_options(n=n, difficulty=difficulty, split=split)
        check_output_file(output, "--output")
        if family == "sums":
            from pasr.data import sums

            share = sums.DEFAULT_EASY_SHARE if easy_share is None else easy_share
            what, done = f"sums {split} problems", f"easy share {share:g}"
        else:
            what, done = f"level-{level} {split} problems", f"difficulty {level}"
        with console.status(f"generating {n} {what}"):
            records = synthetic.generate_family(family, n, seed=seed, split=split, difficulty=difficulty,
                                                easy_share=easy_share)
        write_records(output, records)
    except (PasrError, OSError) as error:
        _fail(error)
    kind = "sums " if family == "sums" else ""
    console.print(f"wrote {len(records)} {kind}{split} problems ({done}, seed {seed}) to {output}", highlight=False)


@data_app.command("warmup")
def warmup_command(
    output: Path = typer.Option(..., "--output", "-o", help="JSONL file to write the SFT examples to."),
    n: int = typer.Option(800, "--n", "-n", help="Number of examples (ignored with --records)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the problems and the choice of refine/standard examples."),
    family: Optional[str] = typer.Option(None, "--family", help="arith or sums; default: the family of --records, "
                                                                 "else arith."),
    difficulty: Optional[int] = typer.Option(None, "--difficulty", help="arith only: 1-5; default: the built-in "
                                                                         "default."),
    easy_share: Optional[float] = typer.Option(None, "--easy-share", help="sums only: share of easy problems "
                                                                          "(default 0.4)."),
    refine_share: float = typer.Option(0.5, "--refine-share", help="Share of PASR examples with a refine (arith: a "
                                                                   "fixed slip; sums: half fix a slip, half confirm)."),
    standard_share: float = typer.Option(0.25, "--standard-share", help="Share of standard-prompt examples."),
    records_file: Optional[Path] = typer.Option(None, "--records", help="Build from these synthetic records "
                                                "(from `pasr data synthetic`) instead of new train problems."),
) -> None:
    """Worked PASR-format solutions for a short supervised warm-up (prompt-completion chat JSONL)."""
    from pasr.data import synthetic
    from pasr.data.records import read_records
    from pasr.errors import PasrError
    from pasr.train.checks import check_input_file, check_output_file

    level = synthetic.DEFAULT_DIFFICULTY if difficulty is None else difficulty
    try:
        if family is not None or records_file is None:
            _check_family(family or "arith", difficulty, easy_share)
        _check_options(n=None if records_file is not None else n, difficulty=difficulty,
                       shares={"--refine-share": (refine_share, False, False),
                               "--standard-share": (standard_share, False, False)})
        if records_file is not None:
            check_input_file(records_file, "--records")
        check_output_file(output, "--output")
        with console.status("writing worked solutions"):
            if records_file is not None:
                records = read_records(records_file)
                family = family or synthetic.family_of(records)
            else:
                family = family or "arith"
                records = synthetic.generate_family(family, n, seed=seed, split="train", difficulty=difficulty,
                                                    easy_share=easy_share)
            examples = synthetic.family_warmup_examples(family, records, refine_share=refine_share, seed=seed,
                                                        standard_share=standard_share)
            output.parent.mkdir(parents=True, exist_ok=True)
            with output.open("w", encoding="utf-8") as handle:
                for example in examples:
                    handle.write(json.dumps(example, ensure_ascii=False) + "\n")
    except (PasrError, OSError) as error:
        _fail(error)
    kinds = Counter(e["kind"] for e in examples)
    if family == "sums":
        source = str(records_file) if records_file else f"{len(records)} new sums train problems"
        mix = (f"{kinds['slip']} fixing a slip, {kinds['confirm']} confirming, {kinds['clean']} direct, "
               f"{kinds['standard']} standard-prompt")
    else:
        source = str(records_file) if records_file else f"{len(records)} new level-{level} train problems"
        mix = f"{kinds['refine']} with a refine, {kinds['clean']} clean, {kinds['standard']} standard-prompt"
    console.print(f"wrote {len(examples)} warm-up examples ({mix}) from {source} to {output}", highlight=False)


@data_app.command("own-errors")
def own_errors_command(
    model: str = typer.Option(..., "--model", "-m", help="A model that writes the format (e.g. a warm-up "
                                                           "without refines) whose mistakes the refines fix."),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL file to write the SFT examples to."),
    n: int = typer.Option(160, "--n", help="Training problems to sample one solution for."),
    seed: int = typer.Option(1, "--seed", help="Seeds the problems, the sampling and the mix."),
    difficulty: Optional[int] = typer.Option(None, "--difficulty", help="1-5; default: the built-in default."),
    refine_share: float = typer.Option(0.3, "--refine-share", help="Share of PASR examples with a refine."),
    standard_share: float = typer.Option(0.25, "--standard-share", help="Share of standard-prompt examples."),
    temperature: float = typer.Option(0.9, "--temperature", help="Sampling temperature (the rollouts' 0.9)."),
    max_tokens: int = typer.Option(128, "--max-tokens"),
    batch_size: int = typer.Option(16, "--batch-size"),
) -> None:
    """Warm-up examples whose refines fix the model's own sampled mistakes (for `pasr sft --dataset file`)."""
    from pasr.data import synthetic
    from pasr.data.own_errors import own_error_examples, sample_solutions
    from pasr.errors import PasrError
    from pasr.train.checks import check_output_file

    level = synthetic.DEFAULT_DIFFICULTY if difficulty is None else difficulty
    try:
        _check_options(n=n, difficulty=difficulty,
                       shares={"--refine-share": (refine_share, True, False),
                               "--standard-share": (standard_share, False, True)},
                       at_least_one={"--max-tokens": max_tokens, "--batch-size": batch_size})
        if temperature < 0:
            raise PasrError(f"--temperature {temperature}: must be >= 0")
        check_output_file(output, "--output")
        check_output_file(output.with_suffix(".stats.json"), "--output (its .stats.json)")
        # the first n are sampled; the rest supply clean solutions to reach the refine share
        records = synthetic.generate(5 * n, seed=seed, split="train", difficulty=level)
        records, fill = records[:n], records[n:]
        with console.status(f"sampling {n} solutions from {model}"):
            texts = sample_solutions(model, records, temperature=temperature, max_tokens=max_tokens,
                                     batch_size=batch_size, seed=seed)
        examples, stats = own_error_examples(records, texts, refine_share=refine_share,
                                             standard_share=standard_share, seed=seed, fill=fill)
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", encoding="utf-8") as handle:
            for example in examples:
                handle.write(json.dumps(example, ensure_ascii=False) + "\n")
        output.with_suffix(".stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    except (PasrError, OSError) as error:
        _fail(error)
    console.print(f"{n} sampled solutions: {stats['sample_accuracy']:.0%} right, "
                  f"{stats['spliced']} with a located wrong equation; wrote {len(examples)} examples "
                  f"({stats.get('refine_examples', 0)} refine, {stats.get('clean_examples', 0)} clean, "
                  f"{stats.get('standard_examples', 0)} standard-prompt) to {output}", highlight=False)


@data_app.command("show")
def show_command(
    benchmark: str = typer.Argument(..., help="Benchmark name (see `pasr data list`)."),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Read this JSON/JSONL file."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the benchmark's local file."),
    limit: int = typer.Option(3, "--limit", help="Records to print (a seeded random subset)."),
    seed: int = typer.Option(0, "--seed"),
    split: Optional[str] = typer.Option(None, "--split", help="Hub/synthetic split (default: the spec's)."),
    width: int = typer.Option(600, "--width", help="Truncate questions to this many characters."),
) -> None:
    """Print a few records of a benchmark, as pasr reads them."""
    from pasr.data.benchmarks import get_spec, load_benchmark, pick_subset
    from pasr.errors import PasrError

    try:
        spec = get_spec(benchmark)
        with console.status(f"loading {benchmark}"):
            total = load_benchmark(benchmark, data_file=data_file, data_dir=data_dir, split=split)
            records = pick_subset(total, limit, seed=seed, name=benchmark)
    except PasrError as error:
        _fail(error)
    for record in records:
        question = record.question if len(record.question) <= width else record.question[:width] + " ..."
        console.rule(f"[bold]{record.id}[/bold]  task {record.task}")
        console.print(question, highlight=False, markup=False)
        console.print(f"[green]reference:[/green] {record.reference}", highlight=False)
    source = data_file or (data_dir / spec.local_file if data_dir and spec.local_file else
                           ("generated" if spec.generated else f"hub {spec.hub_id}"))
    console.print(f"{len(records)} of {len(total)} {benchmark} records (task {spec.task}) from {source}",
                  highlight=False)


def _hub_text(spec) -> str:
    return "generated" if spec.generated else " ".join(filter(None, [spec.hub_id, spec.hub_config, spec.split]))


@data_app.command("list")
def list_command(
    long: bool = typer.Option(False, "--long", "-l", help="One block per benchmark with its full description."),
) -> None:
    """The benchmarks pasr knows, with where each comes from: one line each (--long: full descriptions)."""
    from rich import box
    from rich.cells import cell_len
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from pasr.data.benchmarks import BENCHMARKS

    if long:
        for spec in BENCHMARKS.values():
            rows = f", {spec.size} rows" if spec.size else ""
            console.print(Text.assemble((spec.name, "bold"), f"  task {spec.task}{rows}"))
            console.print(Padding(Text(f"hub: {_hub_text(spec)}\nlocal file: {spec.local_file or '-'}\n"
                                       f"{spec.description}"), (0, 0, 1, 2)))
        return
    # One line per benchmark whatever the terminal's width: no column wraps. The fixed columns come first; the hub
    # dataset gets the rest of the line (cut with an ellipsis when it has to be), and the description joins only
    # where at least 20 of its characters fit after it (--long prints it whole).
    specs = list(BENCHMARKS.values())
    cells = [[spec.name, spec.task, str(spec.size) if spec.size else "-", spec.local_file or "-", _hub_text(spec),
              spec.description] for spec in specs]
    heads = ["name", "task", "rows", "local file", "hub dataset", "about"]
    widths = [max(cell_len(head), *(cell_len(row[i]) for row in cells)) for i, head in enumerate(heads)]
    gap = 2  # a blank separator plus one of padding between columns
    rest = console.width - sum(widths[:4]) - 4 * gap
    show_about = rest >= widths[4] + gap + 20
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for head in heads[:4]:
        table.add_column(head, no_wrap=True, justify="right" if head == "rows" else "left")
    table.add_column("hub dataset", no_wrap=True, overflow="ellipsis",
                     max_width=None if show_about else max(8, rest))
    if show_about:
        table.add_column("about", no_wrap=True, overflow="ellipsis", max_width=rest - widths[4] - gap)
    for row in cells:
        table.add_row(*(Text(cell) for cell in row[:6 if show_about else 5]))  # Text: no markup in descriptions
    console.print(table)
    console.print("pasr data list --long: full descriptions; pasr data show NAME: a few records.", highlight=False)
