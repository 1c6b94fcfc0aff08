"""Results per question when a benchmark asks each question several times (GPQA's option orders).

The PASR authors' GPQA file holds every question four times, with its options in four orders; a result
line then carries the ``question_id`` its record was built from (``pasr.data.benchmarks``), and the
line's own ``id`` names the order. Accuracy per line counts each order as an example; pooled per
question, the score is the mean over questions of the mean over their orders (the same number when every
question has the same count of orders), and the interval resamples *questions*, since the orders of one
question are not independent examples. The shares below say how stable a model is across orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pasr.eval.metrics import RIGHT_AT, bootstrap_ci, mean


def question_groups(lines: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Lines grouped by ``question_id`` (first-seen order); lines without one are left out."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        qid = line.get("question_id")
        if qid is None or qid == "":
            continue
        groups.setdefault(str(qid), []).append(line)
    return groups


def per_question(lines: Sequence[dict[str, Any]], *, seed: int = 0) -> dict[str, Any] | None:
    """Pooled statistics over questions asked more than once, or None when no question is.

    Returns ``{"questions", "lines", "orders_min", "orders_max", "score", "score_ci", "all_right",
    "any_right", "consistent"}``: ``score`` the mean over questions of each question's mean score in
    [0, 1], ``score_ci`` its 95% percentile bootstrap over questions (seed ``seed``), ``all_right`` /
    ``any_right`` the share of questions right (score >= :data:`~pasr.eval.metrics.RIGHT_AT`) in every /
    some order, ``consistent`` the share whose orders all agree (all right or all wrong). Only lines with
    a ``question_id`` count.
    """
    groups = question_groups(lines)
    if not groups or max(len(g) for g in groups.values()) < 2:
        return None
    per = [[float(line["score"]) for line in group] for group in groups.values()]
    means = [sum(s) / len(s) for s in per]
    right = [[s >= RIGHT_AT for s in scores] for scores in per]
    return {
        "questions": len(per),
        "lines": sum(len(s) for s in per),
        "orders_min": min(len(s) for s in per),
        "orders_max": max(len(s) for s in per),
        "score": mean(means),
        "score_ci": bootstrap_ci(means, seed=seed),
        "all_right": mean([1.0 if all(r) else 0.0 for r in right]),
        "any_right": mean([1.0 if any(r) else 0.0 for r in right]),
        "consistent": mean([1.0 if all(r) or not any(r) else 0.0 for r in right]),
    }
