"""Per question, pooled over option orders: benchmarks that ask each question several times (GPQA).

Computed from the result lines with :func:`pasr.eval.pooling.per_question` (see there for the
definitions): the pooled score resamples questions for its interval, and the shares say how stable a
model's verdict is across the orders of one question.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from html import escape

from pasr.eval.pooling import per_question
from pasr.report.loading import Run


@dataclass
class QuestionRow:
    """:func:`pasr.eval.pooling.per_question` of one (run, method, benchmark)."""

    run: str
    method: str
    benchmark: str
    stats: dict

    @property
    def orders(self) -> str:
        lo, hi = self.stats["orders_min"], self.stats["orders_max"]
        return str(lo) if lo == hi else f"{lo}–{hi}"


def question_rows(runs: list[Run]) -> list[QuestionRow]:
    """A row for every (run, method, benchmark) with some question asked more than once; else none."""
    rows = []
    for run in runs:
        for method in run.methods:
            for b in run.benchmarks:
                res = run.get(b, method)
                stats = per_question(res.examples) if res is not None else None
                if stats is not None:
                    rows.append(QuestionRow(run.label, method, b, stats))
    return rows


def _pct(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def _ci(stats: dict) -> str:
    ci = stats.get("score_ci")
    return f"{_pct(ci[0])}–{_pct(ci[1])}" if ci else "–"


def _round(x: float | None) -> float | str:
    return "" if x is None else round(100 * x, 4)


HEAD = ["Model", "Method", "Benchmark", "questions", "orders", "pooled score %", "95% CI", "all orders right %",
        "any order right %", "consistent %"]

NOTE = ("One row per run, method and benchmark whose questions are asked in several option orders. Pooled score: "
        "mean over questions of each question's mean over its orders, with a 95% bootstrap interval over questions; "
        "all / any orders right: share of questions right in every / some order; consistent: share whose orders "
        "all get the same verdict.")


def _cells(r: QuestionRow) -> list[str]:
    s = r.stats
    return [str(s["questions"]), r.orders, _pct(s["score"]), _ci(s), _pct(s["all_right"]), _pct(s["any_right"]),
            _pct(s["consistent"])]


def questions_markdown(rows: list[QuestionRow]) -> str:
    md = lambda t: t.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(HEAD) + " |", "|---|---|---|" + "---:|" * (len(HEAD) - 3)]
    for r in rows:
        lines.append("| " + " | ".join([md(r.run), md(r.method), md(r.benchmark), *_cells(r)]) + " |")
    return "\n".join(lines) + "\n\n" + NOTE + "\n"


def questions_csv(rows: list[QuestionRow]) -> str:
    """One line per row; scores and shares in percent."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "method", "benchmark", "questions", "lines", "orders_min", "orders_max", "score",
                     "ci_low", "ci_high", "all_right", "any_right", "consistent"])
    for r in rows:
        s = r.stats
        ci = s.get("score_ci") or [None, None]
        writer.writerow([r.run, r.method, r.benchmark, s["questions"], s["lines"], s["orders_min"], s["orders_max"],
                         _round(s["score"]), _round(ci[0]), _round(ci[1]), _round(s["all_right"]),
                         _round(s["any_right"]), _round(s["consistent"])])
    return out.getvalue()


def questions_html(rows: list[QuestionRow]) -> str:
    body = "".join(
        f"<tr><td>{escape(r.run)}</td><td>{escape(r.method)}</td><td>{escape(r.benchmark)}</td>"
        + "".join(f'<td class="num">{escape(c)}</td>' for c in _cells(r)) + "</tr>" for r in rows)
    return ('<table id="per-question"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in HEAD)
            + f'</tr></thead><tbody>{body}</tbody></table><p class="note">{escape(NOTE)}</p>')
