"""Per-example statistics the report tables and plots are made of.

The score mean and confidence interval, refine rates and the id pairing for transitions come from
``pasr.eval.metrics``, the functions that write the ``<method>.summary.json`` files, so the report and the
summaries agree by construction. Added here is only what the report needs beyond a summary: transition
*counts* (to pool benchmarks), refine positions, and NaN instead of None for empty inputs (tables print "–").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pasr.eval import metrics

RIGHT_THRESHOLD = metrics.RIGHT_AT  # a score >= this counts as "right" in transitions
TRANSITIONS = metrics.TRANSITIONS  # right->right, wrong->right, right->wrong, wrong->wrong


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def mean(values: Iterable[float]) -> float:
    return _nan(metrics.mean(list(values)))


def mean_ci(scores: Sequence[float]) -> tuple[float, float, float]:
    """Mean score and its 95% percentile-bootstrap interval (seed 0, as in the summary files)."""
    ci = metrics.bootstrap_ci(list(scores))
    lo, hi = ci if ci else (None, None)
    return _nan(metrics.mean(list(scores))), _nan(lo), _nan(hi)


def refine_rate(examples: Sequence[dict]) -> float:
    """Share of responses that refined (a ``<refine>`` segment, or a self-refine revision)."""
    return _nan(metrics.refine_rate(examples))


def refines_per_response(examples: Sequence[dict]) -> float:
    return _nan(metrics.refines_per_response(examples))


def format_valid_rate(examples: Sequence[dict]) -> float:
    """Share of well-formed responses (the ``format_valid`` field, as in the summary files)."""
    return mean(1.0 if e.get("format_valid") else 0.0 for e in examples)


def refine_count(example: dict) -> int:
    """Refine segments of one response, for display: ``refines``, else the parsed trace's refines."""
    value = example.get("refines")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    return len((example.get("trace") or {}).get("refines") or [])


def refine_positions(examples: Sequence[dict]) -> list[float]:
    """Relative positions in [0, 1] of every refine segment (``trace.refines[*].position``)."""
    positions = []
    for e in examples:
        for r in (e.get("trace") or {}).get("refines") or []:
            pos = r.get("position") if isinstance(r, dict) else None
            if isinstance(pos, (int, float)) and not isinstance(pos, bool) and math.isfinite(pos):
                positions.append(min(1.0, max(0.0, float(pos))))
    return positions


def transition_counts(vanilla: Sequence[dict], other: Sequence[dict]) -> dict[str, int]:
    """How answers move from vanilla to another method: counts over the id pairs (``metrics.paired``)."""
    counts = dict.fromkeys(TRANSITIONS, 0)
    for after, before in metrics.paired(other, vanilla):
        a = "right" if before["score"] >= RIGHT_THRESHOLD else "wrong"
        b = "right" if after["score"] >= RIGHT_THRESHOLD else "wrong"
        counts[f"{a}->{b}"] += 1
    return counts


def shares(counts: dict[str, int]) -> dict[str, float]:
    """Counts as shares of their total (all NaN when there are no pairs)."""
    total = sum(counts.values())
    return {k: (v / total if total else float("nan")) for k, v in counts.items()}
