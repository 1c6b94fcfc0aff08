"""Summary metrics over per-example result lines (pure functions; ``pasr report`` reuses them).

A result line is one JSON object of ``RUN_DIR/<benchmark>/<method>.jsonl`` (see the results layout in
the README): it carries ``id``, ``score``, ``tokens``, ``refines``, ``refined`` and ``format_valid``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RIGHT_AT = 0.5
"""A response counts as right in the transition analysis when its score is at least this."""

TRANSITIONS = ("right->right", "wrong->right", "right->wrong", "wrong->wrong")


def read_lines(path: str | Path) -> list[dict[str, Any]]:
    """Result lines of a JSONL file; a torn last line (an interrupted write) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    lines = []
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
    return lines


def mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def bootstrap_ci(
    values: Sequence[float], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> list[float] | None:
    """Percentile bootstrap confidence interval of the mean (resampling examples with replacement)."""
    import numpy as np

    if not len(values):
        return None
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(n_boot, len(data)))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return [float(lo), float(hi)]


def paired_bootstrap_ci(
    a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, Any] | None:
    """Mean difference ``a - b`` over paired examples with a bootstrap CI (the same resample for both)."""
    import numpy as np

    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    if not len(a):
        return None
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return {"n": len(diff), "delta": float(diff.mean()), "ci": [float(lo), float(hi)]}


def paired(lines: Iterable[dict], reference: Iterable[dict]) -> list[tuple[dict, dict]]:
    """Pairs (line, reference line) with the same id, in the order of ``lines``."""
    by_id = {r["id"]: r for r in reference}
    return [(line, by_id[line["id"]]) for line in lines if line["id"] in by_id]


def transitions(lines: Iterable[dict], vanilla: Iterable[dict]) -> dict[str, float] | None:
    """Shares of right->right, wrong->right, right->wrong, wrong->wrong from vanilla to this method.

    Paired by id; "right" means score >= :data:`RIGHT_AT`. None when no id pairs up.
    """
    pairs = paired(lines, vanilla)
    if not pairs:
        return None
    counts = dict.fromkeys(TRANSITIONS, 0)
    for line, ref in pairs:
        before = "right" if ref["score"] >= RIGHT_AT else "wrong"
        after = "right" if line["score"] >= RIGHT_AT else "wrong"
        counts[f"{before}->{after}"] += 1
    return {k: v / len(pairs) for k, v in counts.items()}


def refine_rate(lines: Sequence[dict]) -> float | None:
    """Share of responses that refined (a ``<refine>`` segment or a self-refine revision)."""
    return mean([1.0 if line.get("refined") else 0.0 for line in lines])


def refines_per_response(lines: Sequence[dict]) -> float | None:
    """Mean number of refinements per response, over all responses."""
    return mean([float(line.get("refines", 0)) for line in lines])


def summarize(
    lines: Sequence[dict],
    *,
    benchmark: str,
    method: str,
    model: str,
    label: str,
    metric: str,
    vanilla: Sequence[dict] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The summary object of one benchmark x method (the ``<method>.summary.json`` layout).

    ``vanilla``: the vanilla lines of the same run and benchmark, for the transition shares and the
    paired difference (``delta_vs_vanilla``); both are null for the vanilla method itself.
    """
    scores = [float(line["score"]) for line in lines]
    compare = vanilla if (vanilla and method != "vanilla") else None
    delta = None
    if compare:
        pairs = paired(lines, compare)
        if pairs:
            delta = paired_bootstrap_ci(
                [a["score"] for a, _ in pairs], [b["score"] for _, b in pairs], seed=seed
            )
    return {
        "benchmark": benchmark,
        "method": method,
        "model": model,
        "label": label,
        "metric": metric,
        "n": len(lines),
        "score": mean(scores),
        "score_ci": bootstrap_ci(scores, seed=seed),
        "tokens_mean": mean([float(line["tokens"]) for line in lines]),
        "refine_rate": refine_rate(lines),
        "refines_per_response": refines_per_response(lines),
        "format_valid_rate": mean([1.0 if line.get("format_valid") else 0.0 for line in lines]),
        "transitions": transitions(lines, compare) if compare else None,
        "delta_vs_vanilla": delta,
    }
