"""PNG figures of a report, drawn with matplotlib's object API on the Agg canvas.

Using ``matplotlib.figure.Figure`` directly (not pyplot) needs no GUI backend and leaves no global state behind,
so building a report inside another program or a test never touches its plotting setup.
Each ``draw_*`` function returns the figure (None when the runs hold nothing to draw); the function of the same
name without ``draw_`` saves it and returns the path it wrote, or None.

Layout rules every figure follows, so that nothing is cut off whatever the labels and the number of categories:
legends sit outside the axes, below them, in as many columns as fit the figure's width (the figure widens when
even one column does not fit); long titles wrap; and figures are saved with a tight bounding box as a last
guard. Axes get readable ranges even when the data has no spread (all points at one x or y, a single point):
at least a minimum span around the data, integer ticks for token counts and never an offset (``+5.4e1``).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from pasr.report import stats
from pasr.report.loading import Run
from pasr.report.tables import METRIC_LABEL, Cell, Table, TransitionRow

METHOD_COLORS = {"vanilla": "#7f7f7f", "pasr": "#d62728", "self-refine": "#1f77b4", "self-refine-oracle": "#2ca02c",
                 "ptr": "#e6ab02", "score": "#66a61e", "rise": "#7570b3", "rise-oracle": "#a6761d"}
_EXTRA_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e")
TRANSITION_COLORS = {"right->right": "#4caf50", "wrong->right": "#2196f3", "right->wrong": "#f44336",
                     "wrong->wrong": "#9e9e9e"}
_MARKERS = "osD^vP*Xh<>"
DPI = 110
MIN_TOKEN_SPAN = 10.0  # an axis of mean tokens spans at least this many tokens
MIN_SCORE_SPAN = 10.0  # an axis of scores spans at least this many percentage points
LEGEND_FONTSIZE = 8
_TITLE_WIDTH = 34  # characters per line of a subplot title


def method_color(method: str, methods: list[str]) -> str:
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    extra = [m for m in methods if m not in METHOD_COLORS]
    return _EXTRA_COLORS[extra.index(method) % len(_EXTRA_COLORS)] if method in extra else "#000000"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # a renderer to measure legends with, and the canvas savefig uses
    return fig


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` as PNG; the tight bounding box takes in anything that still reaches past the figure's edge."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.1)
    return path


def _save(fig, path: Path) -> Path | None:
    return None if fig is None else save_figure(fig, path)


def _wrap(text: str, width: int = _TITLE_WIDTH) -> str:
    """Each line of ``text`` wrapped at ``width`` characters (long words, e.g. model labels, broken too)."""
    return "\n".join(textwrap.fill(line, width, break_long_words=True, break_on_hyphens=True) or line
                     for line in text.split("\n"))


def figure_legend(fig, handles, *, fontsize: float = LEGEND_FONTSIZE):
    """A legend below the axes (constrained layout makes room for it) in as many columns as fit the figure's
    width; when even one column is too wide for the figure, the figure is widened to hold it."""
    renderer = fig.canvas.get_renderer()
    margin = 0.2 * fig.dpi  # pixels kept free on each side
    ncols = len(handles)
    while True:
        legend = fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize=fontsize)
        width = legend.get_window_extent(renderer).width
        if width + 2 * margin <= fig.bbox.width or ncols == 1:
            break
        legend.remove()
        ncols -= 1
    if width + 2 * margin > fig.bbox.width:
        fig.set_figwidth((width + 2 * margin) / fig.dpi)
    return legend


def padded_range(lo: float, hi: float, min_span: float, floor: float | None = None,
                 ceil: float | None = None) -> tuple[float, float]:
    """Axis limits for data in [lo, hi]: at least ``min_span`` wide around the data's middle (shifted to stay
    within [floor, ceil] where the data allows), plus a 6% margin on each side so markers are not cut."""
    if hi - lo < min_span:
        mid = (lo + hi) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
        if floor is not None and lo < floor:
            lo, hi = floor, max(hi, floor + min_span)
        if ceil is not None and hi > ceil:
            lo, hi = min(lo, ceil - min_span), ceil
    pad = 0.06 * (hi - lo)
    return lo - pad, hi + pad


def _plain_ticks(ax, *, integer_x: bool = False, integer_y: bool = False) -> None:
    """No offset or scientific notation on either axis; integer ticks where asked (token counts)."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    for axis, integer in ((ax.xaxis, integer_x), (ax.yaxis, integer_y)):
        if integer:
            axis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        formatter = ScalarFormatter(useOffset=False)
        formatter.set_scientific(False)
        axis.set_major_formatter(formatter)


def score_ci(cell: Cell) -> tuple[float, float] | None:
    """The cell's 95% confidence interval in percent: the bootstrap interval of the tables, metrics.csv and the
    summaries' ``score_ci`` (``tables.cell``). None when there is none or it says nothing (fewer than 2 examples)."""
    if cell.n < 2 or not (math.isfinite(cell.ci_low) and math.isfinite(cell.ci_high)):
        return None
    return 100 * cell.ci_low, 100 * cell.ci_high


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels."""
    ncols = 1 if n == 1 else 2 if n <= 4 else 3
    return math.ceil(n / ncols), ncols


def _dodge(xs: list[float], span: float, step: float = 7.0) -> list[float]:
    """Horizontal display offsets in points for markers at (nearly) the same x, so that their error bars stand
    side by side instead of on top of each other: points within 1.5% of the axis span of their neighbour form a
    group, spread ``step`` points apart around the group's x. Returns one offset per x (0 for lone points)."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    offsets = [0.0] * len(xs)
    group: list[int] = []
    for i in [*order, None]:
        if i is not None and group and xs[i] - xs[group[-1]] <= 0.015 * span:
            group.append(i)
            continue
        for k, j in enumerate(group):
            offsets[j] = (k - (len(group) - 1) / 2) * step
        group = [] if i is None else [i]
    return offsets


def draw_accuracy_vs_tokens(table: Table):
    """Score against mean tokens per example, one point per (run, method). With several benchmarks, a first
    panel shows the macro averages (no interval: the tables give none) and one panel per benchmark follows; a
    benchmark's points carry their 95% confidence interval (``score_ci``) as error bars."""
    rows = [r for r in table.rows if r.cells]
    if not rows:
        return None
    methods = list(dict.fromkeys(r.method for r in rows))
    runs = list(dict.fromkeys(r.run for r in rows))
    panels: list[tuple[str, list[tuple[str, str, float, float, tuple[float, float] | None]]]] = []

    def add(title, points):  # a point needs finite coordinates (a "nan" tokens field reads as NaN)
        points = [p for p in points if math.isfinite(p[2]) and math.isfinite(p[3])]
        if points:
            panels.append((title, points))

    if len(table.benchmarks) > 1:
        add("average over benchmarks", [(r.run, r.method, r.avg_tokens, 100 * r.avg_score, None) for r in rows])
    for b in table.benchmarks:
        metric = METRIC_LABEL.get(table.metrics.get(b, ""), table.metrics.get(b, ""))
        add(f"{b} ({metric})" if metric else b,
            [(r.run, r.method, c.tokens, 100 * c.score, score_ci(c)) for r in rows if (c := r.cells.get(b))])
    if not panels:
        return None
    nrows, ncols = _grid(len(panels))
    width, height = (6.4, 4.6) if len(panels) == 1 else (4.3 * ncols, 3.4 * nrows + 0.8)
    fig = _figure(width, height)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    from matplotlib.transforms import ScaledTranslation

    any_ci = False
    for k, (ax, (title, points)) in enumerate(zip(axes, panels)):
        xs = [p[2] for p in points]
        ys = [v for p in points for v in (p[3], *(p[4] or ()))]
        xlim = padded_range(min(xs), max(xs), max(MIN_TOKEN_SPAN, 0.1 * max(xs)), floor=0)
        ax.set_xlim(*xlim)
        ax.set_ylim(*padded_range(min(ys), max(ys), MIN_SCORE_SPAN, floor=0, ceil=100))
        offsets = _dodge(xs, xlim[1] - xlim[0])
        names: dict[tuple[float, float], list[tuple[str, float]]] = {}  # labels joined where points coincide
        for (run, method, x, y, ci), dx in zip(points, offsets):
            color = method_color(method, methods)
            shifted = ax.transData + ScaledTranslation(dx / 72, 0, fig.dpi_scale_trans)
            if ci is not None:
                any_ci = True
                ax.errorbar([x], [y], yerr=[[max(0.0, y - ci[0])], [max(0.0, ci[1] - y)]], fmt="none",
                            ecolor=color, elinewidth=1.3, capsize=4, capthick=1.3, zorder=2, transform=shifted)
            ax.scatter([x], [y], s=60, color=color, marker=_MARKERS[runs.index(run) % len(_MARKERS)],
                       edgecolor="black", linewidth=0.6, zorder=3, transform=shifted)
            names.setdefault((round(x, 6), round(y, 6)), []).append((method, dx))
        if k == 0:  # labels on the first panel; the others rely on the legend's colours
            for (x, y), found in names.items():
                # labels point away from dodged neighbours, else inwards, so they stay inside the axes
                shift = sum(dx for _, dx in found)
                right = shift < 0 if shift else x > (xlim[0] + xlim[1]) / 2
                ax.annotate(", ".join(dict.fromkeys(m for m, _ in found)), (x, y), textcoords="offset points",
                            xytext=(min(dx for _, dx in found) - 6 if right else max(dx for _, dx in found) + 6, 4),
                            ha="right" if right else "left", fontsize=7)
        _plain_ticks(ax, integer_x=True)
        ax.tick_params(labelsize=8)
        ax.set_title(_wrap(title, 48), fontsize=9)
        ax.set_xlabel("mean tokens / example", fontsize=8)
        if k % ncols == 0:
            ax.set_ylabel("score %" if len(panels) == 1 or k else "score % (average)", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.axis("off")
    fig.suptitle("Accuracy vs. tokens" + ("\nerror bars: 95% bootstrap confidence interval of the mean score"
                                          if any_ci else ""), fontsize=10)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], linestyle="", marker="o", color=method_color(m, methods), label=m) for m in methods]
    if len(runs) > 1:
        handles += [Line2D([], [], linestyle="", marker=_MARKERS[i % len(_MARKERS)], color="black", label=run,
                           markerfacecolor="white") for i, run in enumerate(runs)]
    figure_legend(fig, handles)
    return fig


def accuracy_vs_tokens(table: Table, path: Path) -> Path | None:
    return _save(draw_accuracy_vs_tokens(table), path)


def draw_tokens_per_benchmark(table: Table):
    """Grouped bars (Figure 3 style): mean tokens per benchmark, one bar per method; one panel per run."""
    runs = list(dict.fromkeys(r.run for r in table.rows if r.cells))
    if not runs or not table.benchmarks:
        return None
    methods = list(dict.fromkeys(r.method for r in table.rows if r.cells))
    fig = _figure(max(6.4, 1.3 * len(table.benchmarks) + 2), 3.0 * len(runs) + 0.6)
    axes = fig.subplots(len(runs), 1, squeeze=False)[:, 0]
    for ax, run in zip(axes, runs):
        rows = [r for r in table.rows if r.run == run and r.cells]
        width = 0.8 / max(1, len(rows))
        top = 0.0
        for i, row in enumerate(rows):
            xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(table.benchmarks))]
            heights = [row.cells[b].tokens if b in row.cells else math.nan for b in table.benchmarks]  # no bar
            ax.bar(xs, heights, width=width, color=method_color(row.method, methods), edgecolor="black",
                   linewidth=0.4)
            top = max([top, *(h for h in heights if math.isfinite(h))])
        ax.set_ylim(0, max(top, MIN_TOKEN_SPAN) * 1.08)
        _plain_ticks(ax, integer_y=True)
        ax.set_xticks(range(len(table.benchmarks)), table.benchmarks)
        ax.set_ylabel("tokens / example")
        ax.set_title(_wrap(f"Generated tokens per benchmark: {run}", 90), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    from matplotlib.patches import Patch

    figure_legend(fig, [Patch(facecolor=method_color(m, methods), edgecolor="black", linewidth=0.4, label=m)
                        for m in methods])
    return fig


def tokens_per_benchmark(table: Table, path: Path) -> Path | None:
    return _save(draw_tokens_per_benchmark(table), path)


def draw_transition_pies(rows: list[TransitionRow]):
    """Figure 4 style: how answers move from vanilla to each other method (pooled over benchmarks)."""
    pooled = [r for r in rows if r.benchmark == "all" and r.n]
    if not pooled:
        return None
    runs = list(dict.fromkeys(r.run for r in pooled))
    methods = list(dict.fromkeys(r.method for r in pooled))
    fig = _figure(2.9 * len(methods) + 0.5, 3.0 * len(runs) + 0.6)
    axes = fig.subplots(len(runs), len(methods), squeeze=False)
    for i, run in enumerate(runs):
        for j, method in enumerate(methods):
            ax = axes[i][j]
            found = [r for r in pooled if r.run == run and r.method == method]
            if not found:
                ax.axis("off")
                continue
            r = found[0]
            keys = [t for t in stats.TRANSITIONS if r.counts[t]]
            ax.pie([r.counts[t] for t in keys], colors=[TRANSITION_COLORS[t] for t in keys],
                   autopct=lambda p: f"{p:.0f}%" if p >= 4 else "", startangle=90, counterclock=False,
                   wedgeprops={"edgecolor": "white"}, textprops={"fontsize": 8})
            ax.set_title(_wrap(f"{method} vs vanilla\n{run} (n={r.n})"), fontsize=9)
    from matplotlib.patches import Patch

    shown = [t for t in stats.TRANSITIONS if any(r.counts[t] for r in pooled)]
    figure_legend(fig, [Patch(color=TRANSITION_COLORS[t], label=t) for t in shown])
    return fig


def transition_pies(rows: list[TransitionRow], path: Path) -> Path | None:
    return _save(draw_transition_pies(rows), path)


def draw_refine_positions(runs: list[Run], method: str = "pasr"):
    """Histogram of where in the reasoning the ``method``'s refinements happen (0 = start of think, 1 = end)."""
    data = {}
    for run in runs:
        examples = [e for b in run.benchmarks if (res := run.get(b, method)) for e in res.examples]
        if examples:
            data[run.label] = stats.refine_positions(examples)
    if not data:
        return None
    fig = _figure(6.4, 3.8)
    ax = fig.add_subplot()
    bins = [i / 10 for i in range(11)]
    labels = list(data)
    values = [data[k] for k in labels]
    if any(values):
        import numpy as np

        ax.hist(values, bins=bins, edgecolor="black", linewidth=0.4,
                label=[f"{k} ({len(v)} refine{'' if len(v) == 1 else 's'})" for k, v in data.items()])
        top = max(int(np.histogram(v, bins=bins)[0].max()) for v in values if v)
        ax.set_ylim(0, max(top, 1) * 1.1)
        _plain_ticks(ax, integer_y=True)
        figure_legend(fig, ax.get_legend_handles_labels()[0])
    else:
        ax.text(0.5, 0.5, f"no refinements in the {method} responses", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_xlabel("relative position of <refine> within <think>")
    ax.set_ylabel("refinements")
    ax.set_title(f"Where refinements happen ({method})")
    ax.grid(axis="y", alpha=0.3)
    return fig


def refine_positions(runs: list[Run], path: Path, method: str = "pasr") -> Path | None:
    return _save(draw_refine_positions(runs, method), path)


def make_plots(runs: list[Run], table: Table, transitions: list[TransitionRow], out_dir: Path) -> dict[str, Path]:
    """Draw every plot that has data; returns name -> PNG path."""
    made = {
        "accuracy_vs_tokens": accuracy_vs_tokens(table, out_dir / "accuracy_vs_tokens.png"),
        "tokens_per_benchmark": tokens_per_benchmark(table, out_dir / "tokens_per_benchmark.png"),
        "transitions": transition_pies(transitions, out_dir / "transitions.png"),
        "refine_positions": refine_positions(runs, out_dir / "refine_positions.png"),
    }
    return {k: v for k, v in made.items() if v is not None}
