"""Judge vs rule: how often the LLM judge and the rule-based scorer agree, per run, method and benchmark.

Runs evaluated with ``pasr eval --scorer both`` (or ``judge`` on families with a rule) store both scores
of every response in ``scores``; the numbers here are recomputed from those lines with
:func:`pasr.scoring.agreement.agreement_from_lines`, like the rest of the report. A row named ``all``
pools every benchmark of a run and method. The HTML section also lists a few disagreements each way.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from html import escape

from pasr.report.loading import Run
from pasr.scoring.agreement import DIRECTIONS, agreement_from_lines
from pasr.scoring.extract import answer_text

EXAMPLES_CAP = 5
"""At most this many disagreements each way per run, benchmark and method in the HTML page."""

DIRECTION_LABEL = {"judge_right_rule_wrong": "judge right, rule wrong", "judge_wrong_rule_right":
                   "judge wrong, rule right"}


@dataclass
class AgreementRow:
    """:func:`pasr.scoring.agreement.agreement` of one (run, method, benchmark); benchmark ``all`` pools them."""

    run: str
    method: str
    benchmark: str
    stats: dict


def agreement_rows(runs: list[Run], *, max_examples: int = EXAMPLES_CAP) -> list[AgreementRow]:
    """Rows for every (run, method, benchmark) whose lines carry both scores, then a pooled ``all`` row per
    run and method; examples capped at ``min(max_examples, EXAMPLES_CAP)`` each way. Empty when no line has
    both scores."""
    cap = max(0, min(max_examples, EXAMPLES_CAP))
    rows = []
    for run in runs:
        for method in run.methods:
            pooled: list[dict] = []
            per_benchmark = []
            for b in run.benchmarks:
                res = run.get(b, method)
                if res is None:
                    continue
                stats = agreement_from_lines(res.examples, max_examples=cap)
                if stats is None:
                    continue
                per_benchmark.append(AgreementRow(run.label, method, b, stats))
                pooled.extend(res.examples)
            if per_benchmark:
                rows.extend(per_benchmark)
                rows.append(AgreementRow(run.label, method, "all", agreement_from_lines(pooled, max_examples=0)))
    return rows


# ---- text renderings -------------------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def _kappa(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _round(x: float | None, digits: int = 4) -> float | str:
    return "" if x is None or math.isnan(x) else round(x, digits)


HEAD = ["Model", "Method", "Benchmark", "n", "agree %", "kappa", "judge right, rule wrong",
        "judge wrong, rule right", "rule score %", "judge score %"]


def _cells(r: AgreementRow) -> list[str]:
    s = r.stats
    return [str(s["n"]), _pct(s["agree"]), _kappa(s["kappa"]), str(s["judge_right_rule_wrong"]),
            str(s["judge_wrong_rule_right"]), _pct(s["rule_score"]), _pct(s["judge_score"])]


def _note(rows: list[AgreementRow]) -> str:
    threshold = rows[0].stats["threshold"] if rows else 0.5
    return (f"Responses scored by both the rule and the judge; a score >= {threshold} counts as right. agree: share "
            "with the same verdict; kappa: Cohen's kappa of the verdicts (– when undefined: both give one same "
            "verdict to every response); scores are means over the same responses. Rows named all pool every "
            "benchmark.")


def agreement_markdown(rows: list[AgreementRow]) -> str:
    md = lambda t: t.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(HEAD) + " |", "|---|---|---|" + "---:|" * (len(HEAD) - 3)]
    for r in rows:
        bench = "**all**" if r.benchmark == "all" else md(r.benchmark)
        lines.append("| " + " | ".join([md(r.run), md(r.method), bench, *_cells(r)]) + " |")
    return "\n".join(lines) + "\n\n" + _note(rows) + "\n"


def agreement_csv(rows: list[AgreementRow]) -> str:
    """One line per row; shares and scores in percent, kappa and mean_abs_diff as they are."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "method", "benchmark", "n", "agree_pct", "kappa", "both_right", "both_wrong",
                     "judge_right_rule_wrong", "judge_wrong_rule_right", "rule_score_pct", "judge_score_pct",
                     "mean_abs_diff", "threshold"])
    for r in rows:
        s = r.stats
        writer.writerow([r.run, r.method, r.benchmark, s["n"], _round(100 * s["agree"]), _round(s["kappa"]),
                         s["both_right"], s["both_wrong"], s["judge_right_rule_wrong"], s["judge_wrong_rule_right"],
                         _round(100 * s["rule_score"]), _round(100 * s["judge_score"]), _round(s["mean_abs_diff"]),
                         s["threshold"]])
    return out.getvalue()


# ---- HTML ------------------------------------------------------------------------------------------------

def shorten(text: str, limit: int = 300) -> str:
    """``text`` with runs of whitespace collapsed, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def final_answer(line: dict) -> str:
    """What the scorers read of a response: its last <answer> block, else the whole scored text."""
    final = line.get("final")
    if not isinstance(final, str):
        turns = line.get("turns") or []
        final = str((turns[-1] or {}).get("text") or "") if turns and isinstance(turns[-1], dict) else ""
    return answer_text(final)[0]


def _score(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return "–"
    return f"{value:.2f}"


def _example_rows(lines: list[dict]) -> str:
    body = []
    for line in lines:
        scores = line.get("scores") or {}
        cells = [escape(str(line.get("id", ""))), escape(shorten(line.get("question", ""))),
                 escape(shorten(line.get("reference", ""), 120)), escape(shorten(final_answer(line), 200))]
        body.append("<tr>" + "".join(f'<td class="text-cell">{c}</td>' for c in cells)
                    + f'<td class="num">{_score(scores.get("rule"))}</td>'
                    f'<td class="num">{_score(scores.get("judge"))}</td></tr>')
    return ('<table class="disagreements"><thead><tr><th>id</th><th>question</th><th>reference</th><th>answer</th>'
            f"<th>rule</th><th>judge</th></tr></thead><tbody>{''.join(body)}</tbody></table>")


def _examples_html(runs: list[Run], rows: list[AgreementRow]) -> str:
    by_label = {run.label: run for run in runs}
    parts = []
    for r in rows:
        if r.benchmark == "all" or not any(r.stats["examples"][d] for d in DIRECTIONS):
            continue
        res = by_label[r.run].get(r.benchmark, r.method)
        by_id = {str(line["id"]): line for line in res.examples}
        group = [f"<h3>{escape(r.run)} · {escape(r.benchmark)} · {escape(r.method)}</h3>"]
        for d in DIRECTIONS:
            ids = r.stats["examples"][d]
            if not ids:
                continue
            group.append(f'<div class="label">{escape(DIRECTION_LABEL[d])} (showing {len(ids)} of '
                         f"{r.stats[d]})</div>" + _example_rows([by_id[str(i)] for i in ids if str(i) in by_id]))
        parts.append('<div class="agreement-group">' + "".join(group) + "</div>")
    return "".join(parts)


def agreement_html(runs: list[Run], rows: list[AgreementRow]) -> str:
    """The "Judge vs rule" section body: the table, its note, and the disagreement examples of each group."""
    body = []
    for r in rows:
        cls = ' class="avg"' if r.benchmark == "all" else ""
        body.append(f"<tr{cls}><td>{escape(r.run)}</td><td>{escape(r.method)}</td><td>{escape(r.benchmark)}</td>"
                    + "".join(f'<td class="num">{escape(c)}</td>' for c in _cells(r)) + "</tr>")
    table = ('<table id="agreement"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in HEAD)
             + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")
    examples = _examples_html(runs, rows)
    if examples:
        examples = ('<p class="note">Disagreements (first few each way, in file order): the question, the '
                    "reference, the answer the scorers read (the last &lt;answer&gt; block, else the whole "
                    f"response), and both scores.</p>{examples}")
    return f'{table}<p class="note">{escape(_note(rows))}</p>{examples}'
