"""Summary metrics over per-example result lines (pure functions; ``pasr report`` reuses them).

A result line is one JSON object of ``RUN_DIR/<benchmark>/<method>.jsonl`` (see the results layout in
the README): it carries ``id``, ``score``, ``tokens``, ``refines``, ``refined`` and ``format_valid``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasr.jsonl import read_jsonl

logger = logging.getLogger("pasr.eval")

RIGHT_AT = 0.5
"""A response counts as right in the transition analysis when its score is at least this."""

TRANSITIONS = ("right->right", "wrong->right", "right->wrong", "wrong->wrong")


def read_lines(path: str | Path) -> list[dict[str, Any]]:
    """The JSON-object lines of an append-only JSONL file (:mod:`pasr.jsonl`'s rule; problems logged)."""
    found = read_jsonl(path)
    for problem in found.problems:
        logger.warning(problem)
    return found.rows


@dataclass
class ResultRows:
    """A results file as every reader sees it (:func:`read_results`)."""

    examples: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)
    repeats: int = 0
    path: str = ""

    def messages(self) -> list[str]:
        """``problems`` plus one line about repeated ids, if any (what a reader shows the user)."""
        note = f"{self.path}: {self.repeats} line(s) repeat an id seen before; the first line per id counts"
        return self.problems + ([note] if self.repeats else [])


def read_results(path: str | Path) -> ResultRows:
    """The examples of one ``<benchmark>/<method>.jsonl`` results file: the one rule ``pasr eval`` and ``pasr report`` share.

    A torn last line is dropped silently (an interrupted write; ``pasr eval`` redoes it). A line
    that is not a JSON object, lacks ``id`` or ``score``, or has a ``score`` / ``tokens`` that is
    not a number is skipped with a message naming the file and line (``problems``; its number
    goes to ``bad_lines``). The first line per id counts; later ones are counted in ``repeats``
    (two writers before run folders were locked), named in one line of :meth:`ResultRows.messages`. ``tokens`` is made a
    float (the sum over ``turns`` when the field is absent) and ``score`` a float.
    """
    found = read_jsonl(path)
    out = ResultRows(problems=list(found.problems), bad_lines=list(found.bad_lines), path=str(path))
    seen: set[str] = set()
    for number, row in zip(found.numbers, found.rows):
        why = _result_problem(row)
        if why:
            out.problems.append(f"{path}, line {number}: {why}; skipped")
            out.bad_lines.append(number)
            continue
        key = str(row["id"])
        if key in seen:
            out.repeats += 1
            continue
        seen.add(key)
        out.examples.append(row)
    return out


def _result_problem(row: dict[str, Any]) -> str | None:
    """Why ``row`` is not a usable result line (None when it is); normalises score and tokens in place."""
    for key in ("id", "score"):
        if key not in row:
            return f"missing field {key!r} (is this a `pasr eval` results file?)"
    score = _number(row["score"])
    if score is None or not math.isfinite(score):
        return f"field 'score' is not a number: {row['score']!r}"
    row["score"] = score
    tokens = row.get("tokens")
    if tokens is None:
        turns = row.get("turns") or []
        tokens = sum((t.get("tokens") or 0) for t in turns if isinstance(t, dict)) if isinstance(turns, list) else None
    value = _number(tokens)
    if value is None:
        return f"field 'tokens' is not a number: {tokens!r}"
    row["tokens"] = value
    return None


def _number(value: Any) -> float | None:
    """``value`` as a float (numbers and numeric strings), None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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

    Lines scored by ``--scorer judge|both`` carry ``scores``: then ``score_rule`` / ``score_judge`` are
    the means of each side over the lines that have it, and ``judge_rule_agreement`` (lines with both)
    is :func:`pasr.scoring.agreement.agreement_from_lines`; ``judge_fallbacks`` counts lines whose judge
    reply held no score (scored ``fallback_score``). ``per_question`` pools questions asked in several
    orders (:func:`pasr.eval.pooling.per_question`). Each is null when it does not apply.
    """
    from pasr.eval.pooling import per_question
    from pasr.scoring.agreement import agreement_from_lines

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
        "score_rule": _side_mean(lines, "rule"),
        "score_judge": _side_mean(lines, "judge"),
        "judge_rule_agreement": agreement_from_lines(lines) if any("scores" in line for line in lines) else None,
        "judge_fallbacks": (
            sum(line.get("judge_status") == "fallback" for line in lines) if any("scores" in line for line in lines)
            else None
        ),
        "per_question": per_question(lines, seed=seed),
    }


def _side_mean(lines: Sequence[dict], side: str) -> float | None:
    """Mean of ``line["scores"][side]`` over the lines that have a score in [0, 1] there (None when none do)."""
    from pasr.scoring.agreement import score_value

    scores = [line["scores"].get(side) for line in lines if isinstance(line.get("scores"), dict)]
    return mean([v for v in map(score_value, scores) if v is not None])
