"""PNG figures of a report, drawn with matplotlib's object API on the Agg canvas.

Using ``matplotlib.figure.Figure`` directly (not pyplot) needs no GUI backend and leaves no global state behind,
so building a report inside another program or a test never touches its plotting setup.
Each function returns the path it wrote, or None when the runs hold nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

from pasr.report import stats
from pasr.report.loading import Run
from pasr.report.tables import Table, TransitionRow

METHOD_COLORS = {"vanilla": "#7f7f7f", "pasr": "#d62728", "self-refine": "#1f77b4", "self-refine-oracle": "#2ca02c"}
_EXTRA_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e")
TRANSITION_COLORS = {"right->right": "#4caf50", "wrong->right": "#2196f3", "right->wrong": "#f44336",
                     "wrong->wrong": "#9e9e9e"}
_MARKERS = "osD^vP*Xh<>"


def method_color(method: str, methods: list[str]) -> str:
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    extra = [m for m in methods if m not in METHOD_COLORS]
    return _EXTRA_COLORS[extra.index(method) % len(_EXTRA_COLORS)] if method in extra else "#000000"


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def accuracy_vs_tokens(table: Table, path: Path) -> Path | None:
    """One point per (run, method): macro-average score against mean tokens per example."""
    rows = [r for r in table.rows if r.cells]
    if not rows:
        return None
    methods = list(dict.fromkeys(r.method for r in rows))
    runs = list(dict.fromkeys(r.run for r in rows))
    fig = _figure(6.4, 4.4)
    ax = fig.add_subplot()
    names: dict[tuple[float, float], list[str]] = {}  # one label per point, joined where points coincide
    for r in rows:
        ax.scatter(r.avg_tokens, 100 * r.avg_score, s=70, color=method_color(r.method, methods),
                   marker=_MARKERS[runs.index(r.run) % len(_MARKERS)], edgecolor="black", linewidth=0.6, zorder=3)
        names.setdefault((round(r.avg_tokens, 6), round(100 * r.avg_score, 6)), []).append(r.method)
    for (x, y), labels in names.items():
        ax.annotate(", ".join(dict.fromkeys(labels)), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], linestyle="", marker="o", color=method_color(m, methods), label=m) for m in methods]
    if len(runs) > 1:
        handles += [Line2D([], [], linestyle="", marker=_MARKERS[i % len(_MARKERS)], color="black", label=run,
                           markerfacecolor="white") for i, run in enumerate(runs)]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_xlabel("mean generated tokens per example (average over benchmarks)")
    ax.set_ylabel("score % (average over benchmarks)")
    ax.set_title("Accuracy vs. tokens")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def tokens_per_benchmark(table: Table, path: Path) -> Path | None:
    """Grouped bars (Figure 3 style): mean tokens per benchmark, one bar per method; one panel per run."""
    runs = list(dict.fromkeys(r.run for r in table.rows if r.cells))
    if not runs or not table.benchmarks:
        return None
    methods = list(dict.fromkeys(r.method for r in table.rows))
    fig = _figure(max(6.4, 1.3 * len(table.benchmarks) + 2), 3.2 * len(runs))
    axes = fig.subplots(len(runs), 1, squeeze=False)[:, 0]
    for ax, run in zip(axes, runs):
        rows = [r for r in table.rows if r.run == run]
        width = 0.8 / max(1, len(rows))
        for i, row in enumerate(rows):
            xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(table.benchmarks))]
            heights = [row.cells[b].tokens if b in row.cells else 0.0 for b in table.benchmarks]
            ax.bar(xs, heights, width=width, label=row.method, color=method_color(row.method, methods),
                   edgecolor="black", linewidth=0.4)
        ax.set_xticks(range(len(table.benchmarks)), table.benchmarks)
        ax.set_ylabel("tokens / example")
        ax.set_title(f"Generated tokens per benchmark: {run}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncols=min(4, len(rows)))
    return _save(fig, path)


def transition_pies(rows: list[TransitionRow], path: Path) -> Path | None:
    """Figure 4 style: how answers move from vanilla to each other method (pooled over benchmarks)."""
    pooled = [r for r in rows if r.benchmark == "all" and r.n]
    if not pooled:
        return None
    runs = list(dict.fromkeys(r.run for r in pooled))
    methods = list(dict.fromkeys(r.method for r in pooled))
    fig = _figure(2.9 * len(methods) + 0.5, 2.9 * len(runs) + 0.6)
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
            ax.set_title(f"{method} vs vanilla\n{run} (n={r.n})", fontsize=9)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=TRANSITION_COLORS[t], label=t) for t in stats.TRANSITIONS],
               loc="outside lower center", ncols=4, fontsize=8)
    return _save(fig, path)


def refine_positions(runs: list[Run], path: Path, method: str = "pasr") -> Path | None:
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
        from matplotlib.ticker import MaxNLocator

        ax.hist(values, bins=bins, edgecolor="black", linewidth=0.4,
                label=[f"{k} ({len(v)} refine{'' if len(v) == 1 else 's'})" for k, v in data.items()])
        top = max(int(np.histogram(v, bins=bins)[0].max()) for v in values if v)
        ax.set_ylim(0, top * 1.3 + 0.5)  # head room for the legend
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8, loc="upper center", ncols=min(3, len(labels)))
    else:
        ax.text(0.5, 0.5, f"no refinements in the {method} responses", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_xlabel("relative position of <refine> within <think>")
    ax.set_ylabel("refinements")
    ax.set_title(f"Where refinements happen ({method})")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def make_plots(runs: list[Run], table: Table, transitions: list[TransitionRow], out_dir: Path) -> dict[str, Path]:
    """Draw every plot that has data; returns name -> PNG path."""
    made = {
        "accuracy_vs_tokens": accuracy_vs_tokens(table, out_dir / "accuracy_vs_tokens.png"),
        "tokens_per_benchmark": tokens_per_benchmark(table, out_dir / "tokens_per_benchmark.png"),
        "transitions": transition_pies(transitions, out_dir / "transitions.png"),
        "refine_positions": refine_positions(runs, out_dir / "refine_positions.png"),
    }
    return {k: v for k, v in made.items() if v is not None}
