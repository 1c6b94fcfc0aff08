"""`pasr report RUN_DIR... -o OUT_DIR`: tables, plots and an HTML page from `pasr eval` result folders."""

from __future__ import annotations

from pathlib import Path

import typer


def report_command(
    run_dirs: list[Path] = typer.Argument(..., metavar="RUN_DIR", help="Result folders written by `pasr eval`."),
    out: Path = typer.Option(..., "-o", "--out", help="Folder to write the report into (created if missing)."),
    max_examples: int = typer.Option(50, "--max-examples", min=0,
                                     help="Examples shown per run, benchmark and method in the HTML page."),
    title: str = typer.Option("PASR report", "--title", help="Title of the HTML page."),
) -> None:
    """Build Table 1 (markdown, CSV), a transition table, PNG plots and a self-contained HTML report."""
    from rich.console import Console
    from rich.table import Table

    from pasr.report.build import build_report
    from pasr.run_folder import check_output_folder

    check_output_folder(out, "--out")
    console = Console()
    with console.status("Building report..."):
        report = build_report(run_dirs, out, max_examples=max_examples, title=title)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(f"Report for {len(report.runs)} run(s) ({', '.join(r.label for r in report.runs)}) "
                  f"written to {out}:", highlight=False)
    summary = Table(show_header=True, box=None, padding=(0, 2))
    summary.add_column("file", overflow="fold")
    summary.add_column("size", justify="right", no_wrap=True)
    for path in report.files:
        summary.add_row(str(path.relative_to(out)), f"{path.stat().st_size / 1024:.1f} KiB")
    console.print(summary)
    console.print(f"Open {out / 'report.html'} in a browser.", highlight=False, soft_wrap=True)
