"""One self-contained HTML page: tables, plots (base64 data URIs), and browsable examples.

Everything is inline (CSS, JS, images) and a Content-Security-Policy forbids loading anything else, so the file
can be mailed or archived and opens the same offline. Every piece of model or dataset text goes through
``html.escape``; the tag highlighter splits the raw text on the PASR tags first and escapes each piece.
"""

from __future__ import annotations

import base64
import math
import re
from html import escape
from pathlib import Path

from pasr.report import stats
from pasr.report.agreement import AgreementRow, agreement_html
from pasr.report.loading import Run
from pasr.report.questions import QuestionRow, questions_html
from pasr.report.tables import METRIC_LABEL, Table, TransitionRow

_TAG = re.compile(r"</?(think|refine|answer)>")

CSS = """
:root { --think:#e8f0fe; --refine:#ffe0b2; --refine-b:#ef6c00; --answer:#e2f5e4; --answer-b:#2e7d32; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1rem 1.5rem 4rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .88rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.avg td { font-weight: 600; } td.best { background: #fff3c4; font-weight: 700; }
.note { color: #666; font-size: .85rem; } .warn { color: #8a4b00; }
.plots figure { margin: 1rem 0; } .plots img { max-width: 100%; border: 1px solid #eee; }
.filters { position: sticky; top: 0; background: #fafafa; border: 1px solid #ddd; padding: .5rem; z-index: 2;
           display: flex; flex-wrap: wrap; gap: .8rem; align-items: center; }
section.group { margin: 1rem 0; } section.group h3 { margin: .4rem 0; font-size: 1rem; }
details.example { border: 1px solid #ddd; border-radius: 4px; margin: .25rem 0; background: #fff; }
details.example > summary { cursor: pointer; padding: .3rem .5rem; font-family: ui-monospace, monospace;
                            font-size: .85rem; }
details.example[open] > summary { background: #f5f5f5; border-bottom: 1px solid #ddd; }
.body { padding: .4rem .8rem; } .label { font-weight: 600; font-size: .85rem; color: #555; margin-top: .4rem; }
.text { white-space: pre-wrap; word-wrap: break-word; font-family: ui-monospace, monospace; font-size: .82rem;
        background: #fcfcfc; border: 1px solid #eee; padding: .4rem; margin: .2rem 0; }
.seg-think { background: var(--think); }
.seg-refine { background: var(--refine); outline: 1px solid var(--refine-b); }
.seg-answer { background: var(--answer); outline: 1px solid var(--answer-b); }
.tag { color: #888; font-weight: 700; }
.ok { color: #2e7d32; } .bad { color: #c62828; }
.badge { display: inline-block; border-radius: 3px; padding: 0 .3rem; font-size: .75rem; margin-left: .3rem; }
.badge.refined { background: var(--refine); } .badge.invalid { background: #ffcdd2; }
.legend span { margin-right: .8rem; padding: 0 .3rem; }
table.disagreements td.text-cell { max-width: 28rem; word-wrap: break-word; font-family: ui-monospace, monospace;
                                   font-size: .8rem; }
.agreement-group h3 { margin: 1rem 0 .3rem; font-size: 1rem; }
"""

JS = """
(function () {
  var $ = function (id) { return document.getElementById(id); };
  function apply() {
    var run = $('f-run').value, bench = $('f-benchmark').value, method = $('f-method').value;
    var onlyRefined = $('f-refined').checked, onlyWrong = $('f-wrong').checked, shown = 0;
    document.querySelectorAll('section.group').forEach(function (g) {
      var ok = (!run || g.dataset.run === run) && (!bench || g.dataset.benchmark === bench) &&
               (!method || g.dataset.method === method);
      var visible = 0;
      g.querySelectorAll('details.example').forEach(function (d) {
        var v = ok && (!onlyRefined || d.dataset.refined === '1') && (!onlyWrong || d.dataset.right === '0');
        d.hidden = !v; if (v) { visible++; }
      });
      g.hidden = !ok || visible === 0; shown += visible;
    });
    $('f-count').textContent = shown + ' examples shown';
  }
  ['f-run', 'f-benchmark', 'f-method', 'f-refined', 'f-wrong'].forEach(function (id) {
    $(id).addEventListener('change', apply);
  });
  function setOpen(open) {
    document.querySelectorAll('details.example').forEach(function (d) { if (!d.hidden) { d.open = open; } });
  }
  $('expand-all').addEventListener('click', function () { setOpen(true); });
  $('collapse-all').addEventListener('click', function () { setOpen(false); });
  apply();
})();
"""

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'")


def highlight(text: str) -> str:
    """Escaped ``text`` with <think>, <refine> and <answer> segments wrapped in coloured spans.

    Tolerates malformed nesting: a closing tag closes its open segment (and any opened inside it), a closing tag
    with no open segment is shown as a plain tag, and segments still open at the end are closed.
    """
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    for m in _TAG.finditer(text or ""):
        out.append(escape(text[pos:m.start()]))
        name, closing = m.group(1), m.group(0).startswith("</")
        tag = f'<span class="tag">{escape(m.group(0))}</span>'
        if not closing:
            stack.append(name)
            out.append(f'<span class="seg-{name}">{tag}')
        elif name in stack:
            while stack:
                top = stack.pop()
                if top == name:
                    out.append(f"{tag}</span>")
                    break
                out.append("</span>")
        else:
            out.append(tag)
        pos = m.end()
    out.append(escape(text[pos:] if text else ""))
    out.extend("</span>" for _ in stack)
    return "".join(out)


def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def _tok(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.0f}"


def _runs_table(runs: list[Run]) -> str:
    keys = ["model", "backend", "max_tokens", "rounds", "temperature", "seed", "limit", "created", "pasr_version"]
    head = "".join(f"<th>{k}</th>" for k in ["label", "folder", "scorer", "judge model", *keys])
    body = []
    for run in runs:
        cells = [run.label, str(run.path), run.scorer, run.judge_model or "–",
                 *("" if run.info.get(k) is None else str(run.info[k]) for k in keys)]
        body.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _table1(table: Table) -> str:
    """Table 1 with a two-level header; the best score per benchmark within each run is highlighted."""
    top = '<tr><th rowspan="2">Model</th><th rowspan="2">Method</th>'
    sub = "<tr>"
    for b in table.benchmarks:
        top += f'<th colspan="2">{escape(b)}</th>'
        sub += f"<th>{escape(METRIC_LABEL.get(table.metrics[b], table.metrics[b]))} %</th><th>tokens</th>"
    top += '<th colspan="2">Average</th></tr>'
    sub += "<th>score %</th><th>tokens</th></tr>"
    best: dict[tuple[str, str], float] = {}
    for row in table.rows:
        for b, c in row.cells.items():
            best[(row.run, b)] = max(best.get((row.run, b), -1.0), c.score)
    body = []
    for row in table.rows:
        cells = [f"<td>{escape(row.run)}</td><td>{escape(row.method)}</td>"]
        for b in table.benchmarks:
            c = row.cells.get(b)
            if c is None:
                cells.append('<td class="num">–</td><td class="num">–</td>')
                continue
            cls = "num best" if c.score == best[(row.run, b)] else "num"
            title = f"n={c.n}, 95% CI {_pct(c.ci_low)}–{_pct(c.ci_high)}"
            cells.append(f'<td class="{cls}" title="{escape(title)}">{_pct(c.score)}</td>'
                         f'<td class="num">{_tok(c.tokens)}</td>')
        mark = "†" if row.n_benchmarks < len(table.benchmarks) else ""
        cells.append(f'<td class="num">{_pct(row.avg_score)}{mark}</td>'
                     f'<td class="num">{_tok(row.avg_tokens)}{mark}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = '<p class="note">Mean score in percent under each benchmark\'s metric (hover for n and 95% CI) and ' \
           "mean generated tokens per example, summed over a method's turns. Best score per run and benchmark " \
           "highlighted."
    if table.incomplete:
        note += " † averaged over only the benchmarks this row has."
    return f'<table id="table1"><thead>{top}{sub}</thead><tbody>{"".join(body)}</tbody></table>{note}</p>'


def _details_table(table: Table) -> str:
    head = ["Model", "Method", "Benchmark", "n", "score %", "95% CI", "tokens", "refine rate %", "refines / resp.",
            "format valid %"]
    body = []
    for row in table.rows:
        for b in table.benchmarks:
            c = row.cells.get(b)
            if c is None:
                continue
            vals = [escape(c.run), escape(c.method), escape(b)]
            nums = [str(c.n), _pct(c.score), f"{_pct(c.ci_low)}–{_pct(c.ci_high)}", _tok(c.tokens),
                    _pct(c.refine_rate), f"{c.refines_per_response:.2f}", _pct(c.format_valid_rate)]
            body.append("<tr>" + "".join(f"<td>{v}</td>" for v in vals)
                        + "".join(f'<td class="num">{v}</td>' for v in nums) + "</tr>")
    return ("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def _transitions_table(rows: list[TransitionRow]) -> str:
    head = ["Model", "Method", "Benchmark", "pairs", *stats.TRANSITIONS]
    body = []
    for r in rows:
        cls = ' class="avg"' if r.benchmark == "all" else ""
        body.append(f"<tr{cls}><td>{escape(r.run)}</td><td>{escape(r.method)}</td><td>{escape(r.benchmark)}</td>"
                    f'<td class="num">{r.n}</td>'
                    + "".join(f'<td class="num">{_pct(r.shares[t])}</td>' for t in stats.TRANSITIONS) + "</tr>")
    return ('<table id="transitions"><thead><tr>' + "".join(f"<th>{escape(h)} %</th>" if "->" in h else
            f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>"
            f'<p class="note">Answers paired by id with the vanilla answers of the same run and benchmark; right '
            f"means score &gt;= {stats.RIGHT_THRESHOLD}. Rows named all pool every benchmark.</p>")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _example(example: dict, metric: str, show_format: bool) -> str:
    """One example as a <details>; ``show_format``: flag invalid PASR format (off for methods never using it)."""
    score = float(example["score"])
    right = score >= stats.RIGHT_THRESHOLD
    n_ref = stats.refine_count(example)
    segments = len((example.get("trace") or {}).get("refines") or [])
    badges = ""
    if segments:
        badges += f'<span class="badge refined">{_plural(segments, "refine")}</span>'
    if n_ref > segments:  # refinements outside the text: self-refine revisions
        badges += f'<span class="badge refined">{_plural(n_ref - segments, "revision")}</span>'
    if show_format and not example.get("format_valid"):
        badges += '<span class="badge invalid">format invalid</span>'
    mark = '<span class="ok">✓</span>' if right else '<span class="bad">✗</span>'
    summary = (f"{escape(str(example['id']))} · {METRIC_LABEL.get(metric, metric)} {score:.2f} {mark} · "
               f"{_tok(example['tokens'])} tokens{badges}")
    parts = [f'<div class="label">Question</div><div class="text">{escape(str(example.get("question", "")))}</div>',
             f'<div class="label">Reference</div><div class="text">{escape(str(example.get("reference", "")))}</div>']
    turns = example.get("turns") or []
    texts = []
    for i, turn in enumerate(turns, start=1):
        text = str(turn.get("text") or "")
        texts.append(text)
        name = escape(str(turn.get("name", "turn")))
        label = f"Turn {i}: {name}"
        if turn.get("tokens") is not None:
            label += f" · {escape(str(turn['tokens']))} tokens"
        prompt = turn.get("prompt")
        if prompt:
            parts.append(f'<details class="prompt"><summary class="label">Turn {i} prompt ({name})</summary>'
                         f'<div class="text">{escape(str(prompt))}</div></details>')
        parts.append(f'<div class="label">{label}</div><div class="text">{highlight(text)}</div>')
    final = example.get("final")
    if isinstance(final, str) and final not in texts:
        parts.append(f'<div class="label">Scored text</div><div class="text">{highlight(final)}</div>')
    violations = (example.get("trace") or {}).get("violations") or []
    if show_format and violations:
        parts.append('<div class="label">Format violations</div><ul>'
                     + "".join(f"<li>{escape(str(v))}</li>" for v in violations) + "</ul>")
    return (f'<details class="example" data-refined="{int(n_ref > 0)}" data-right="{int(right)}">'
            f'<summary>{summary}</summary><div class="body">{"".join(parts)}</div></details>')


def _examples(runs: list[Run], max_examples: int) -> str:
    groups = []
    for run in runs:
        for b in run.benchmarks:
            for method in run.methods:
                res = run.get(b, method)
                if res is None:
                    continue
                shown = res.examples[:max_examples]
                show_format = any(e.get("format_valid") for e in res.examples)
                head = (f"{escape(run.label)} · {escape(b)} · {escape(method)} "
                        f'<span class="note">(showing {len(shown)} of {len(res.examples)})</span>')
                groups.append(
                    f'<section class="group" data-run="{escape(run.label)}" data-benchmark="{escape(b)}" '
                    f'data-method="{escape(method)}"><h3>{head}</h3>'
                    + "".join(_example(e, res.metric, show_format) for e in shown) + "</section>"
                )
    return "".join(groups)


def _select(id_: str, label: str, values: list[str]) -> str:
    options = '<option value="">all</option>' + "".join(
        f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)
    return f'<label>{label} <select id="{id_}">{options}</select></label>'


def data_uri(png: Path | bytes) -> str:
    data = png if isinstance(png, bytes) else Path(png).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


PLOT_CAPTIONS = {
    "accuracy_vs_tokens": "Score against generated tokens, one point per run and method: averages over benchmarks "
                          "first (when there are several), then one panel per benchmark whose error bars are the "
                          "95% bootstrap confidence intervals of metrics.csv (none under 2 examples).",
    "tokens_per_benchmark": "Mean generated tokens per example for each benchmark and method.",
    "transitions": "How each method changes the vanilla answers (pooled over benchmarks).",
    "refine_positions": "Where refinements happen: position of each &lt;refine&gt; within the reasoning of the "
                        "pasr responses (0 = start of &lt;think&gt;, 1 = end).",
}


def render(runs: list[Run], table: Table, transitions: list[TransitionRow], plots: dict[str, Path],
           *, max_examples: int = 50, title: str = "PASR report", agreement: list[AgreementRow] | None = None,
           questions: list[QuestionRow] | None = None, warnings: list[str] | None = None) -> str:
    """The whole report page as one HTML string.

    ``agreement`` / ``questions``: rows of the "Judge vs rule" and "Per question" sections (left out when
    empty); ``warnings``: shown after the runs' own warnings (report-wide ones, e.g. mixed scorers).
    """
    benchmarks = table.benchmarks
    methods = list(dict.fromkeys(m for run in runs for m in run.methods))
    warnings = [w for run in runs for w in run.warnings] + list(warnings or [])
    sections = [f"<h1>{escape(title)}</h1>",
                f'<p class="note">{len(runs)} run(s), {len(benchmarks)} benchmark(s), {len(methods)} method(s).</p>',
                "<h2>Runs</h2>", _runs_table(runs)]
    if warnings:
        sections.append('<ul class="warn">' + "".join(f"<li>{escape(w)}</li>" for w in warnings) + "</ul>")
    sections += ["<h2>Results</h2>", _table1(table)]
    if transitions:
        sections += ["<h2>Transitions from vanilla</h2>", _transitions_table(transitions)]
    if agreement:
        sections += ['<h2 id="judge-vs-rule">Judge vs rule</h2>', agreement_html(runs, agreement)]
    if questions:
        sections += ['<h2 id="per-question-pooled">Per question (pooled over option orders)</h2>',
                     questions_html(questions)]
    sections += ["<h2>Per benchmark details</h2>", _details_table(table)]
    if plots:
        sections.append('<h2>Plots</h2><div class="plots">' + "".join(
            f'<figure><img alt="{escape(name)}" src="{data_uri(path)}">'
            f"<figcaption class=\"note\">{PLOT_CAPTIONS.get(name, escape(name))}</figcaption></figure>"
            for name, path in plots.items()) + "</div>")
    sections += [
        "<h2>Examples</h2>",
        '<p class="legend note">Highlighting: <span class="seg-think">&lt;think&gt; reasoning</span>'
        '<span class="seg-refine">&lt;refine&gt; refinement</span><span class="seg-answer">&lt;answer&gt; answer'
        f"</span> Up to {max_examples} examples per run, benchmark and method.</p>",
        '<div class="filters">' + _select("f-run", "Run", [r.label for r in runs])
        + _select("f-benchmark", "Benchmark", benchmarks) + _select("f-method", "Method", methods)
        + '<label><input type="checkbox" id="f-refined"> refined only</label>'
        + '<label><input type="checkbox" id="f-wrong"> wrong only</label>'
        + '<button type="button" id="expand-all">expand all</button>'
        + '<button type="button" id="collapse-all">collapse all</button>'
        + '<span id="f-count" class="note"></span></div>',
        f'<div id="examples">{_examples(runs, max_examples)}</div>',
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(sections) + f"<script>{JS}</script></body></html>\n"
    )
