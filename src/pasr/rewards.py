"""PASR rewards as plain callables: R = r_format + r_acc + r_refine, optionally weighted.

r_format comes from :func:`pasr.format.format_reward` and r_acc from :mod:`pasr.scoring`.
This module adds the refine reward, which decides whether a refinement *paid off*: the
accuracy of a refined completion is compared with the mean accuracy ``b`` of ``n``
standard (non-refining) samples for the same prompt. Refining that beats them earns +1,
refining that hurts earns -1, and refining that changes nothing costs -0.5, so the policy
learns to refine when it helps rather than out of habit. Completions that did not refine
get 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pasr.errors import PasrError

REFINE_MODES = ("comparison", "single", "trigger")
"""``comparison``: the method (mean of the standard samples). ``single``: the paper's
"w/o multi-answer" ablation (one standard sample). ``trigger``: the "w/o comparison"
ablation (+1 for refining at all)."""

REWARD_GAIN, REWARD_LOSS, REWARD_NO_CHANGE = 1.0, -1.0, -0.5

TIE_TOLERANCE = 1e-6
"""Accuracy differences this small are floating-point noise, not a difference: the mean of n
equal scores is not always exactly that score (``(0.1 + 0.1 + 0.1) / 3 != 0.1``)."""


def refine_reward(
    acc: float,
    baseline: Sequence[float],
    refined: bool,
    zeta: float = 0.0,
    mode: str = "comparison",
) -> float:
    """The refine reward r_refine of one completion.

    ``acc`` is the completion's accuracy, ``baseline`` the accuracies of the standard samples
    for its prompt, ``refined`` whether it contains a refine segment. Returns 0.0 when not
    refined. Otherwise, with ``b`` the reference accuracy (``mean(baseline)`` in mode
    ``comparison``, ``baseline[0]`` in mode ``single``):
    +1.0 if ``acc > b + zeta``, -1.0 if ``acc < b - zeta``, -0.5 otherwise (both comparisons
    strict). Mode ``trigger`` returns +1.0 for any refined completion and ignores ``baseline``.

    With the default ``zeta=0.0`` a tie (``acc == b``) gets -0.5, which reproduces the
    reference implementation. Differences within :data:`TIE_TOLERANCE` (1e-6, accuracies
    are in [0, 1]) count as ties, so non-binary scores (DROP F1, ROUGE-L) whose mean differs
    from them only by rounding are ties too.

    Raises :class:`~pasr.errors.PasrError` (a ``ValueError``) for an unknown ``mode``, a
    negative or NaN ``zeta``, a NaN accuracy, or, when the completion refined and the mode
    needs it, an empty ``baseline``. The baseline is not required for completions that did
    not refine, so a trainer may skip standard samples for a group without refinements.
    """
    if mode not in REFINE_MODES:
        raise PasrError(f"unknown refine reward mode {mode!r}; choose one of {', '.join(REFINE_MODES)}")
    if not zeta >= 0.0:
        raise PasrError(f"refine reward zeta must be a number >= 0, got {zeta!r}")
    if not refined:
        return 0.0
    if mode == "trigger":
        return REWARD_GAIN
    if len(baseline) == 0:
        raise PasrError(
            f"refine reward mode {mode!r} needs the accuracies of at least one standard sample (baseline is empty)"
        )
    acc = float(acc)
    scores = [float(baseline[0])] if mode == "single" else [float(x) for x in baseline]
    if math.isnan(acc) or any(math.isnan(x) for x in scores):
        raise PasrError(f"refine reward got a NaN accuracy (acc={acc!r}, baseline={list(baseline)!r})")
    b = math.fsum(scores) / len(scores)
    if acc > b + zeta + TIE_TOLERANCE:
        return REWARD_GAIN
    if acc < b - zeta - TIE_TOLERANCE:
        return REWARD_LOSS
    return REWARD_NO_CHANGE


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the three reward terms in :func:`total_reward` (the paper uses 1, 1, 1)."""

    format: float = 1.0
    accuracy: float = 1.0
    refine: float = 1.0


def total_reward(
    format_r: float,
    acc_r: float,
    refine_r: float,
    weights: RewardWeights = RewardWeights(),
) -> float:
    """The weighted sum ``w.format * format_r + w.accuracy * acc_r + w.refine * refine_r``."""
    return weights.format * format_r + weights.accuracy * acc_r + weights.refine * refine_r
