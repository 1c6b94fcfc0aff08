"""How often an LLM judge and the rule-based scorer give an answer the same verdict.

In the PASR paper the judge is the accuracy reward: the policy is trained toward whatever the judge calls
right. Where a rule-based scorer exists for an answer family (``pasr.scoring``: numbers, option labels,
DROP F1, ROUGE-L), the two can be compared on the same responses, and every disagreement is either the
judge being more lenient or stricter than the rule, i.e. reward noise (or a rule that misreads answers).
Measuring it tells how far judge-scored numbers can be compared with rule-scored ones, and how noisy the
reward a judge gives is.

Each score in [0, 1] is read as a verdict, right when ``score >= threshold`` (0.5 by default, the same
cut as :data:`pasr.eval.metrics.RIGHT_AT`; graded families such as F1 or ROUGE-L are thresholded too,
and :func:`agreement` also gives their mean absolute difference). Over the responses both scored:

* **agreement**: the share of responses with the same verdict;
* **Cohen's kappa** (Cohen 1960, "A coefficient of agreement for nominal scales"): ``(p_o - p_e) /
  (1 - p_e)``, the observed agreement ``p_o`` corrected for the agreement ``p_e`` two raters with the
  same marginal rates of "right" would reach by chance. 1 is perfect agreement, 0 no better than chance,
  below 0 worse. A high raw agreement can hide a kappa near 0 when almost every answer is right (or
  wrong). Kappa is undefined (None here) when ``p_e = 1``: both raters give every response one and the
  same verdict;
* the two directions of disagreement, with example ids: judge right where the rule says wrong (a lenient
  judge, or a rule that misses an answer written another way) and judge wrong where the rule says right.

Pure functions; scikit-learn (``cohen_kappa_score``) is imported only when a kappa is computed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

DIRECTIONS = ("judge_right_rule_wrong", "judge_wrong_rule_right")
"""The two kinds of disagreement, as named in :func:`agreement`'s counts and examples."""


def _usable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def agreement(
    rule: Sequence[float | None],
    judge: Sequence[float | None],
    ids: Sequence[Any] | None = None,
    *,
    threshold: float = 0.5,
    max_examples: int = 5,
) -> dict[str, Any] | None:
    """Agreement of the judge's and the rule's verdicts over the positions where both scored.

    ``rule[i]`` and ``judge[i]`` are the two scores of response ``i`` (None, or NaN, where that scorer
    gave none; such positions are left out); ``ids[i]`` names it in the examples. A score is right when
    ``>= threshold``. Returns None when no position has both scores, else ``{"n", "threshold", "agree",
    "kappa", "both_right", "both_wrong", "judge_right_rule_wrong", "judge_wrong_rule_right", "rule_score",
    "judge_score", "mean_abs_diff", "examples"}``: ``agree`` the share of pairs with the same verdict,
    ``kappa`` Cohen's kappa of the verdicts (None when undefined: both give every pair one same verdict),
    the four counts (ints), the mean scores of each over the pairs, the mean ``|rule - judge|``, and
    ``examples`` = ``{"judge_right_rule_wrong": [...], "judge_wrong_rule_right": [...]}``: the ids of the
    first ``max_examples`` disagreements each way, in order (empty lists when ``ids`` is None).

    Raises ValueError when the sequences differ in length or ``max_examples`` is negative.
    """
    if len(rule) != len(judge):
        raise ValueError(f"rule and judge scores differ in length: {len(rule)} rule vs {len(judge)} judge scores")
    if ids is not None and len(ids) != len(rule):
        raise ValueError(f"ids and scores differ in length: {len(ids)} ids vs {len(rule)} score pairs")
    if max_examples < 0:
        raise ValueError(f"max_examples must be >= 0, got {max_examples}")
    pairs = [(i, float(r), float(j)) for i, (r, j) in enumerate(zip(rule, judge)) if _usable(r) and _usable(j)]
    if not pairs:
        return None
    n = len(pairs)
    rule_right = [r >= threshold for _, r, _ in pairs]
    judge_right = [j >= threshold for _, _, j in pairs]
    counts = {"both_right": 0, "both_wrong": 0, "judge_right_rule_wrong": 0, "judge_wrong_rule_right": 0}
    examples: dict[str, list[Any]] = {d: [] for d in DIRECTIONS}
    for (i, _, _), r_ok, j_ok in zip(pairs, rule_right, judge_right):
        if r_ok == j_ok:
            counts["both_right" if r_ok else "both_wrong"] += 1
            continue
        direction = "judge_right_rule_wrong" if j_ok else "judge_wrong_rule_right"
        counts[direction] += 1
        if ids is not None and len(examples[direction]) < max_examples:
            examples[direction].append(ids[i])
    return {
        "n": n,
        "threshold": threshold,
        "agree": (counts["both_right"] + counts["both_wrong"]) / n,
        "kappa": _kappa(rule_right, judge_right),
        **counts,
        "rule_score": sum(r for _, r, _ in pairs) / n,
        "judge_score": sum(j for _, _, j in pairs) / n,
        "mean_abs_diff": sum(abs(r - j) for _, r, j in pairs) / n,
        "examples": examples,
    }


def _kappa(a: list[bool], b: list[bool]) -> float | None:
    """Cohen's kappa of two verdict lists; None when undefined (both constant with the same verdict)."""
    if len(set(a) | set(b)) < 2:  # chance agreement 1: 0/0
        return None
    from sklearn.metrics import cohen_kappa_score

    value = float(cohen_kappa_score([int(x) for x in a], [int(x) for x in b], labels=[0, 1]))
    return None if math.isnan(value) else value


def score_value(value: Any) -> float | None:
    """A score (read from a file, or returned by a scorer): a finite real number in [0, 1] (numpy scalars
    included, bools not), else None (missing, malformed or out of range counts as not scored)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def agreement_from_lines(lines: Iterable[dict[str, Any]], **kw: Any) -> dict[str, Any] | None:
    """:func:`agreement` over result lines: ``line["scores"]["rule"]`` vs ``["judge"]``, ids ``line["id"]``.

    Lines without a ``scores`` object (rule-only runs, older files) are skipped, and a score that is not a
    finite number counts as missing; keywords go to :func:`agreement`.
    """
    rule, judge, ids = [], [], []
    for line in lines:
        scores = line.get("scores")
        if not isinstance(scores, dict):
            continue
        rule.append(score_value(scores.get("rule")))
        judge.append(score_value(scores.get("judge")))
        ids.append(line.get("id"))
    return agreement(rule, judge, ids, **kw)
