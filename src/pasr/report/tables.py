"""Table 1 (methods x benchmarks: score and tokens) and the transition table, as data, markdown and CSV.

Rows are (run label, method); a benchmark column holds the mean score in percent under the benchmark's metric
and the mean generated tokens per example. Averages are macro averages over the benchmarks a row has.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

from pasr.report import stats
from pasr.report.loading import BENCHMARK_ORDER, METHOD_ORDER, Run, ordered

METRIC_LABEL = {"accuracy": "Acc", "f1": "F1", "rouge_l": "ROUGE-L", "judge_accuracy": "judge Acc",
                "judge_similarity": "judge sim", "judge_score": "judge score"}


@dataclass
class Cell:
    """One (run, method, benchmark): what Table 1 and metrics.csv show. Shares are in [0, 1]."""

    run: str
    method: str
    benchmark: str
    metric: str
    n: int
    score: float
    ci_low: float
    ci_high: float
    tokens: float
    refine_rate: float
    refines_per_response: float
    format_valid_rate: float


@dataclass
class Row:
    run: str
    method: str
    cells: dict[str, Cell]
    avg_score: float = float("nan")
    avg_tokens: float = float("nan")

    @property
    def n_benchmarks(self) -> int:
        return len(self.cells)


@dataclass
class Table:
    benchmarks: list[str]
    metrics: dict[str, str]  # benchmark -> metric
    rows: list[Row] = field(default_factory=list)

    @property
    def incomplete(self) -> bool:
        """True when some row lacks a benchmark, so its averages cover fewer benchmarks."""
        return any(row.n_benchmarks < len(self.benchmarks) for row in self.rows)


@dataclass
class TransitionRow:
    run: str
    method: str
    benchmark: str  # "all" pools the pairs of every benchmark
    counts: dict[str, int]

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def shares(self) -> dict[str, float]:
        return stats.shares(self.counts)


def cell(run: Run, benchmark: str, method: str) -> Cell | None:
    results = run.get(benchmark, method)
    if results is None:
        return None
    ex = results.examples
    score, lo, hi = stats.mean_ci([e["score"] for e in ex])
    return Cell(
        run=run.label, method=method, benchmark=benchmark, metric=results.metric, n=len(ex), score=score,
        ci_low=lo, ci_high=hi, tokens=stats.mean(e["tokens"] for e in ex), refine_rate=stats.refine_rate(ex),
        refines_per_response=stats.refines_per_response(ex), format_valid_rate=stats.format_valid_rate(ex),
    )


def table1(runs: list[Run]) -> Table:
    benchmarks = ordered({b for run in runs for b in run.results}, BENCHMARK_ORDER)
    metrics: dict[str, str] = {}
    for run in runs:
        for b, by_method in run.results.items():
            for results in by_method.values():
                metrics.setdefault(b, results.metric)
    table = Table(benchmarks=benchmarks, metrics=metrics)
    for run in runs:
        for method in ordered(run.methods, METHOD_ORDER):
            cells = {b: c for b in benchmarks if (c := cell(run, b, method)) is not None}
            row = Row(run=run.label, method=method, cells=cells)
            row.avg_score = stats.mean(c.score for c in cells.values())
            row.avg_tokens = stats.mean(c.tokens for c in cells.values())
            table.rows.append(row)
    return table


def transitions(runs: list[Run]) -> list[TransitionRow]:
    """Per benchmark and pooled ("all") transitions of every non-vanilla method vs vanilla, per run."""
    rows = []
    for run in runs:
        for method in run.methods:
            if method == "vanilla":
                continue
            pooled = dict.fromkeys(stats.TRANSITIONS, 0)
            per_benchmark = []
            for b in run.benchmarks:
                vanilla, other = run.get(b, "vanilla"), run.get(b, method)
                if vanilla is None or other is None:
                    continue
                counts = stats.transition_counts(vanilla.examples, other.examples)
                if not sum(counts.values()):
                    continue
                per_benchmark.append(TransitionRow(run.label, method, b, counts))
                for k, v in counts.items():
                    pooled[k] += v
            if per_benchmark:
                rows.extend(per_benchmark)
                rows.append(TransitionRow(run.label, method, "all", pooled))
    return rows


# ---- text renderings -------------------------------------------------------------------------------------

def _pct(x: float, digits: int = 1) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.{digits}f}"


def _tok(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.0f}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def metric_header(benchmark: str, metric: str) -> str:
    return f"{benchmark} {METRIC_LABEL.get(metric, metric)} %"


def table1_markdown(table: Table) -> str:
    head = ["Model", "Method"]
    for b in table.benchmarks:
        head += [metric_header(b, table.metrics[b]), f"{b} tokens"]
    head += ["Average %", "Average tokens"]
    lines = ["| " + " | ".join(map(_md_escape, head)) + " |", "|" + "---|---|" + "---:|" * (len(head) - 2)]
    dagger = False
    for row in table.rows:
        cells = [_md_escape(row.run), _md_escape(row.method)]
        for b in table.benchmarks:
            c = row.cells.get(b)
            cells += [_pct(c.score), _tok(c.tokens)] if c else ["–", "–"]
        mark = ""
        if row.n_benchmarks < len(table.benchmarks):
            mark, dagger = "†", True
        cells += [_pct(row.avg_score) + mark, _tok(row.avg_tokens) + mark]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    text += ("\nScores are means over examples in percent (Acc: accuracy, F1: token F1, ROUGE-L: ROUGE-L F; "
             "judge Acc / judge sim: the LLM judge's 0/1 verdicts / 0-1 similarity, `pasr eval --scorer judge|both`); ")
    text += "tokens are mean generated tokens per example, summed over all turns of a method.\n"
    if dagger:
        text += "† averaged over only the benchmarks this row has results for.\n"
    return text


def _round(x: float, digits: int) -> float | str:
    return "" if math.isnan(x) else round(x, digits)


def table1_csv(table: Table) -> str:
    """Wide CSV: one line per (run, method); scores in percent, as in the markdown."""
    head = ["run", "method"]
    for b in table.benchmarks:
        head += [f"{b}_score", f"{b}_tokens", f"{b}_n", f"{b}_metric"]
    head += ["avg_score", "avg_tokens", "avg_n_benchmarks"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    for row in table.rows:
        line: list = [row.run, row.method]
        for b in table.benchmarks:
            c = row.cells.get(b)
            line += [_round(100 * c.score, 4), _round(c.tokens, 4), c.n, c.metric] if c else ["", "", "", ""]
        line += [_round(100 * row.avg_score, 4), _round(row.avg_tokens, 4), row.n_benchmarks]
        writer.writerow(line)
    return out.getvalue()


def metrics_csv(table: Table) -> str:
    """Long CSV: one line per (run, method, benchmark) with every statistic (shares in percent)."""
    head = ["run", "method", "benchmark", "metric", "n", "score", "ci_low", "ci_high", "tokens_mean",
            "refine_rate", "refines_per_response", "format_valid_rate"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    for row in table.rows:
        for b in table.benchmarks:
            c = row.cells.get(b)
            if c is None:
                continue
            writer.writerow([
                c.run, c.method, c.benchmark, c.metric, c.n, _round(100 * c.score, 4), _round(100 * c.ci_low, 4),
                _round(100 * c.ci_high, 4), _round(c.tokens, 4), _round(100 * c.refine_rate, 4),
                _round(c.refines_per_response, 4), _round(100 * c.format_valid_rate, 4),
            ])
    return out.getvalue()


def transitions_markdown(rows: list[TransitionRow]) -> str:
    head = ["Model", "Method", "Benchmark", "pairs", *(f"{t} %" for t in stats.TRANSITIONS)]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for r in rows:
        bench = "**all**" if r.benchmark == "all" else _md_escape(r.benchmark)
        lines.append("| " + " | ".join(
            [_md_escape(r.run), _md_escape(r.method), bench, str(r.n), *(_pct(r.shares[t]) for t in stats.TRANSITIONS)]
        ) + " |")
    return ("\n".join(lines) + "\n\nAnswers paired by example id with the vanilla answers of the same run; "
            f"right means score >= {stats.RIGHT_THRESHOLD}.\n")


def transitions_csv(rows: list[TransitionRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = [t.replace("->", "_to_") for t in stats.TRANSITIONS]
    writer.writerow(["run", "method", "benchmark", "pairs", *keys, *(f"{k}_pct" for k in keys)])
    for r in rows:
        writer.writerow([r.run, r.method, r.benchmark, r.n, *(r.counts[t] for t in stats.TRANSITIONS),
                         *(_round(100 * r.shares[t], 4) for t in stats.TRANSITIONS)])
    return out.getvalue()
