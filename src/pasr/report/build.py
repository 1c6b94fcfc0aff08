"""Assemble a report folder from RUN_DIRs: tables (markdown, CSV), PNG plots and one HTML page."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pasr.errors import PasrError
from pasr.report import html, plots, tables
from pasr.report.agreement import AgreementRow, agreement_csv, agreement_markdown, agreement_rows
from pasr.report.loading import Run, load_runs, scorer_warnings
from pasr.report.questions import QuestionRow, question_rows, questions_csv, questions_markdown


@dataclass
class Report:
    """What a build produced: the loaded runs, the tables, the files written (in order) and any warnings."""

    runs: list[Run]
    table: tables.Table
    transitions: list[tables.TransitionRow]
    files: list[Path] = field(default_factory=list)
    agreement: list[AgreementRow] = field(default_factory=list)
    questions: list[QuestionRow] = field(default_factory=list)
    report_warnings: list[str] = field(default_factory=list)  # about the runs together (mixed scorers)

    @property
    def warnings(self) -> list[str]:
        return [w for run in self.runs for w in run.warnings] + self.report_warnings


def build_report(run_dirs, out_dir, *, max_examples: int = 50, title: str = "PASR report") -> Report:
    """Load ``run_dirs`` and write table1.{md,csv}, metrics.csv, transitions.{md,csv} (when vanilla and another
    method exist), agreement.{md,csv} (when some lines carry both a rule and a judge score), per_question.{md,csv}
    (when some benchmark asks a question in several option orders), plots/*.png and report.html into
    ``out_dir``."""
    if max_examples < 0:
        raise PasrError(f"--max-examples must be >= 0, got {max_examples}")
    runs = load_runs(run_dirs)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PasrError(f"{out}: exists and is not a folder; choose another output folder (-o)")
    out.mkdir(parents=True, exist_ok=True)
    table = tables.table1(runs)
    transitions = tables.transitions(runs)
    report = Report(runs=runs, table=table, transitions=transitions,
                    agreement=agreement_rows(runs, max_examples=max_examples), questions=question_rows(runs),
                    report_warnings=scorer_warnings(runs))

    def write(name: str, text: str) -> None:
        path = out / name
        path.write_text(text, encoding="utf-8")
        report.files.append(path)

    mixed = "".join(f"\nWarning: {w}.\n" for w in report.report_warnings)
    write("table1.md", tables.table1_markdown(table) + mixed)
    write("table1.csv", tables.table1_csv(table))
    write("metrics.csv", tables.metrics_csv(table))
    if transitions:
        write("transitions.md", tables.transitions_markdown(transitions))
        write("transitions.csv", tables.transitions_csv(transitions))
    if report.agreement:
        write("agreement.md", agreement_markdown(report.agreement))
        write("agreement.csv", agreement_csv(report.agreement))
    if report.questions:
        write("per_question.md", questions_markdown(report.questions))
        write("per_question.csv", questions_csv(report.questions))
    pngs = plots.make_plots(runs, table, transitions, out / "plots")
    report.files.extend(pngs.values())
    write("report.html", html.render(runs, table, transitions, pngs, max_examples=max_examples, title=title,
                                     agreement=report.agreement, questions=report.questions,
                                     warnings=report.report_warnings))
    return report
