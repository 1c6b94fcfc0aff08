"""Report plots: nothing cut off (legends, titles, labels), readable axes for data without spread, and the 95%
confidence intervals of the tables drawn as error bars (issue 16).

Figures are checked through matplotlib's renderer (``fig.canvas.draw()`` then window extents against
``fig.bbox``) and through the saved PNG, whose tight bounding box grows past the figure when anything sticks out.
"""

from __future__ import annotations

import itertools

import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import ErrorbarContainer
from PIL import Image
from test_report import _row, runs, table  # noqa: F401  (module fixtures of the report tests)

from pasr.report import plots, stats, tables
from pasr.report.tables import Cell, Row, Table, TransitionRow

LONG_RUN = "qwen2.5-1.5b-instruct-grpo-pasr-with-a-very-long-run-label (runs/2025-01-01)"
LONG_METHOD = "my-own-very-long-custom-refinement-method"


def _outside(fig, tolerance: float = 0.5) -> list[str]:
    """What of ``fig`` reaches past the figure's edge after a draw: each legend, each axes with everything drawn
    around it (tick labels, axis labels, title, annotations) and each figure text (suptitle)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    parts = [("legend", legend) for legend in fig.legends]
    parts += [(f"axes {ax.get_title()!r}", ax) for ax in fig.axes if ax.get_visible() and ax.axison]
    parts += [(f"text {t.get_text()!r}", t) for t in fig.texts if t.get_text().strip()]
    bad = []
    for name, artist in parts:
        ext = artist.get_tightbbox(renderer) if hasattr(artist, "get_tightbbox") else None
        ext = ext if ext is not None else artist.get_window_extent(renderer)
        if (ext.x0 < box.x0 - tolerance or ext.y0 < box.y0 - tolerance or ext.x1 > box.x1 + tolerance
                or ext.y1 > box.y1 + tolerance):
            bad.append(f"{name}: {ext.bounds} outside {box.bounds}")
    return bad


def _check_saved(fig, path) -> None:
    """The saved PNG is no larger than the figure plus the save padding: nothing needed room past its edge."""
    plots.save_figure(fig, path)
    pad = 2 * 0.1 * fig.dpi + 2
    with Image.open(path) as im:
        width, height = im.size
    assert width <= fig.bbox.width + pad and height <= fig.bbox.height + pad, (im.size, fig.bbox.size)


def _transitions(labels: list[str], methods: list[str], categories: int) -> list[TransitionRow]:
    rows = []
    for run in labels:
        for method in methods:
            counts = dict.fromkeys(stats.TRANSITIONS, 0)
            for i, key in enumerate(stats.TRANSITIONS[:categories]):
                counts[key] = 3 + i
            rows.append(TransitionRow(run, method, "all", counts))
    return rows


@pytest.mark.parametrize("categories", [1, 2, 3, 4])
@pytest.mark.parametrize(("runs_", "methods"), [
    (["tiny"], ["pasr"]),  # the issue: one pie, the legend was wider than the figure
    ([LONG_RUN], [LONG_METHOD]),
    (["a", LONG_RUN], ["pasr", "self-refine", "self-refine-oracle", LONG_METHOD, "x"]),
])
def test_transition_legend_and_titles_stay_inside(tmp_path, categories, runs_, methods):
    fig = plots.draw_transition_pies(_transitions(runs_, methods, categories))
    [legend] = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == list(stats.TRANSITIONS[:categories])
    assert _outside(fig) == []
    _check_saved(fig, tmp_path / "transitions.png")


def _cell(run, method, benchmark, score, tokens, n=20, ci=None):
    lo, hi = ci if ci is not None else (float("nan"), float("nan"))
    return Cell(run=run, method=method, benchmark=benchmark, metric="accuracy", n=n, score=score, ci_low=lo,
                ci_high=hi, tokens=tokens, refine_rate=0.0, refines_per_response=0.0, format_valid_rate=1.0)


def _table(cells: list[Cell]) -> Table:
    """A Table as ``tables.table1`` builds it, from cells (averages are macro averages)."""
    benchmarks = list(dict.fromkeys(c.benchmark for c in cells))
    made = Table(benchmarks=benchmarks, metrics=dict.fromkeys(benchmarks, "accuracy"))
    for run, method in dict.fromkeys((c.run, c.method) for c in cells):
        mine = {c.benchmark: c for c in cells if (c.run, c.method) == (run, method)}
        made.rows.append(Row(run, method, mine, avg_score=stats.mean(c.score for c in mine.values()),
                             avg_tokens=stats.mean(c.tokens for c in mine.values())))
    return made


def test_every_plot_keeps_legends_and_labels_inside(tmp_path, runs, table):  # noqa: F811
    figures = {
        "accuracy": plots.draw_accuracy_vs_tokens(table),
        "tokens": plots.draw_tokens_per_benchmark(table),
        "transitions": plots.draw_transition_pies(tables.transitions(runs)),
        "refines": plots.draw_refine_positions(runs),
    }
    wide = _table([_cell(run, method, b, 0.3 + 0.05 * i, 400 + 37 * i + 11 * j, ci=(0.2, 0.6))
                   for run in ("a", LONG_RUN) for i, method in enumerate(["vanilla", "pasr", LONG_METHOD])
                   for j, b in enumerate(["gsm8k", "math500", "arc", "winogrande", "drop"])])
    figures["accuracy wide"] = plots.draw_accuracy_vs_tokens(wide)
    figures["tokens wide"] = plots.draw_tokens_per_benchmark(wide)
    for name, fig in figures.items():
        assert fig.legends, name  # every legend is a figure legend below the axes
        assert _outside(fig) == [], name
        _check_saved(fig, tmp_path / f"{name}.png")


def _no_offset(ax) -> bool:
    return ax.xaxis.get_offset_text().get_text() == "" and ax.yaxis.get_offset_text().get_text() == ""


@pytest.mark.parametrize("cells", [
    [_cell("r", "vanilla", "gsm8k", 0.544, 54.0, n=1), _cell("r", "pasr", "gsm8k", 0.546, 54.0, n=1)],  # the issue
    [_cell("r", "vanilla", "gsm8k", 0.5, 54.0), _cell("r", "pasr", "gsm8k", 0.5, 54.0 + 1e-9)],  # float noise
    [_cell("r", "pasr", "gsm8k", 1.0, 7.5, n=1)],  # a single point at the top of the scale
    [_cell("r", "pasr", "gsm8k", 0.0, 0.0, n=1), _cell("r", "pasr", "drop", 0.0, 0.0, n=1)],  # all zero
])
def test_degenerate_axes_get_a_readable_range(cells):
    fig = plots.draw_accuracy_vs_tokens(_table(cells))
    fig.canvas.draw()
    for ax in fig.axes:
        if not ax.collections:
            continue
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        assert x1 - x0 >= plots.MIN_TOKEN_SPAN and y1 - y0 >= plots.MIN_SCORE_SPAN
        assert x0 >= -1 and y0 >= -1 and y1 <= 101  # tokens and scores are never negative, scores <= 100 %
        assert _no_offset(ax)
        ticks = [t for t in ax.get_xticks() if x0 <= t <= x1]
        assert len(ticks) >= 3 and all(t == int(t) for t in ticks)  # integer token ticks
        assert all(len(label.get_text()) <= 4 for label in ax.get_yticklabels())  # "54.400"-style labels
    bars = plots.draw_tokens_per_benchmark(_table(cells))
    bars.canvas.draw()
    for ax in bars.axes:
        assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= plots.MIN_TOKEN_SPAN and _no_offset(ax)


def _errorbars(ax) -> list[tuple[float, float]]:
    """(low, high) of each error bar in ``ax``."""
    found = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            [segments] = [c.get_segments() for c in container.lines[2]]
            found += [(float(s[:, 1].min()), float(s[:, 1].max())) for s in segments]
    return found


def _flat(pairs) -> list[float]:
    return [v for pair in sorted(pairs) for v in pair]


def test_error_bars_are_the_tables_confidence_intervals(table):  # noqa: F811
    fig = plots.draw_accuracy_vs_tokens(table)
    average, *panels = fig.axes[: 1 + len(table.benchmarks)]
    assert _errorbars(average) == []  # the tables give no interval for a macro average
    for ax, benchmark in zip(panels, table.benchmarks):
        assert ax.get_title().startswith(benchmark)
        cells = [r.cells[benchmark] for r in table.rows if benchmark in r.cells]
        expected = sorted((100 * c.ci_low, 100 * c.ci_high) for c in cells if c.n >= 2)
        assert _flat(_errorbars(ax)) == pytest.approx(_flat(expected))
        assert len(expected) >= 2
    # the one the report tests computed by hand: pasr on gsm8k, scores 1,1,1,0 -> [25, 100]
    c = _row(table, "smollm2-pasr", "pasr").cells["gsm8k"]
    assert any(e == pytest.approx((25, 100)) for e in _errorbars(panels[0]))
    assert (100 * c.ci_low, 100 * c.ci_high) == pytest.approx((25, 100))
    assert "95%" in fig._suptitle.get_text()


@pytest.mark.parametrize("cells", [
    [_cell("r", "vanilla", "gsm8k", 0.5, 40, n=1, ci=(0.5, 0.5)), _cell("r", "pasr", "gsm8k", 1.0, 50, n=1)],
    [_cell("r", "vanilla", "gsm8k", 0.5, 40, n=30), _cell("r", "pasr", "gsm8k", 0.6, 50, n=30)],  # CI missing
])
def test_points_without_an_interval_have_no_error_bars(tmp_path, cells):
    fig = plots.draw_accuracy_vs_tokens(_table(cells))
    [ax] = fig.axes
    assert _errorbars(ax) == [] and len(ax.collections) == 2
    assert "95%" not in fig._suptitle.get_text()
    _check_saved(fig, tmp_path / "a.png")


def test_mixed_intervals_and_coinciding_points(tmp_path):
    """Two methods at the same tokens (the issue's 54): both intervals drawn, side by side, not on top."""
    cells = [_cell("r", "vanilla", "gsm8k", 0.42, 54.0, n=50, ci=(0.28, 0.56)),
             _cell("r", "pasr", "gsm8k", 0.46, 54.0, n=50, ci=(0.32, 0.60)),
             _cell("r", "self-refine", "gsm8k", 0.5, 60.0, n=1)]
    fig = plots.draw_accuracy_vs_tokens(_table(cells))
    [ax] = fig.axes
    assert _flat(_errorbars(ax)) == pytest.approx([28, 56, 32, 60])
    fig.canvas.draw()
    xs = [c.get_offset_transform().transform(c.get_offsets())[0][0] for c in ax.collections
          if isinstance(c, PathCollection)]
    assert len(xs) == 3 and min(abs(a - b) for a, b in itertools.combinations(xs, 2)) >= 5  # dodged apart
    assert _outside(fig) == []
    _check_saved(fig, tmp_path / "a.png")
