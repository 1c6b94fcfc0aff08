"""Held-out evaluation of a trained baseline over its turns: the evaluation method it trains for, read turn by turn.

Every multi-turn baseline (PTR, SCoRe, RISE) ends its run by evaluating the base and the trained model on
held-out questions with the :mod:`pasr.eval.methods` chain it trains for (``ptr``, ``score``, ``rise``,
``rise-oracle``), greedy, and reads accuracy after each turn from that one chain:

- ``ptr`` / ``score``: the answer after ``k`` turns is turn ``k``'s reply (turn 0: the first answer);
- ``rise`` (no oracle): the majority over turns 0 .. k (:func:`pasr.eval.methods.majority_turn`);
- ``rise-oracle``: the chain stops once right, so the answer after ``k`` turns is the last turn up to ``k``
  (accuracy = right within ``k + 1`` attempts, the paper's oracle-stop reading).

Tokens after ``k`` turns count every turn up to ``k`` (the method's cost, as ``pasr report`` counts it).
Generation and scoring are shared out over the processes (:mod:`pasr.generation.runtime`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pasr.baselines.common import correct
from pasr.data.records import Record
from pasr.generation.runtime import sharded_generate, sharded_score

READINGS = ("ptr", "score", "rise", "rise-oracle")
"""The evaluation methods :func:`heldout_rounds` reads turn by turn."""


class _TurnName:
    """A :class:`pasr.eval.progress.ChainProgress` that remembers which turn runs (for the progress bars)."""

    name = "answer"

    def turn(self, name: str, size: int, *, final: bool) -> None:
        self.name = name

    def generated(self, finished: int, tokens: int) -> None:
        pass

    def examples_done(self, count: int) -> None:
        pass

    def end(self) -> None:
        pass


class _ShardedBackend:
    """A backend for :func:`pasr.eval.methods.run_method` whose every turn is shared out over the processes."""

    def __init__(self, backend: Any, batch_size: int, progress: Any, label: str, turn: _TurnName):
        self.backend, self.batch_size, self.progress, self.label, self.turn = backend, batch_size, progress, label, turn

    def generate(self, conversations, max_tokens, temperature=0.0):
        return sharded_generate(self.backend, conversations, max_tokens=max_tokens, temperature=temperature,
                                batch_size=self.batch_size, progress=self.progress,
                                description=f"{self.label}: {self.turn.name}")


def answer_after(method: str, turns: Sequence[dict], k: int) -> str:
    """The text ``method`` answers with after ``k`` turns beyond the first answer (see the module docstring)."""
    from pasr.eval.methods import majority_turn

    upto = [t["text"] for t in turns[:k + 1]]
    if method == "rise":
        return upto[majority_turn(upto)]
    return upto[-1]


def heldout_rounds(backend: Any, records: Sequence[Record], scorer: Any, *, rounds: int, max_tokens: int,
                   method: str = "ptr", batch_size: int = 8, progress: Any = None,
                   label: str = "held-out") -> dict[str, Any]:
    """Evaluation method ``method`` (one of :data:`READINGS`) on ``records`` (greedy), scored after every turn.

    Returns ``method``, ``heldout_n``, ``rounds`` (per turn ``k`` = 0 .. ``rounds``: ``accuracy``, the mean score
    of the answer after ``k`` turns, and ``tokens_mean``, the generated tokens of turns 0 .. k, every turn
    counted), and ``fixed`` / ``broken``: answers wrong after turn 0 and right after the last turn, and the
    reverse. ValueError for an unknown ``method``.
    """
    from pasr.eval.methods import ChainConfig, run_method

    if method not in READINGS:
        raise ValueError(f"heldout_rounds: method {method!r} is not one of {', '.join(READINGS)}")
    records = list(records)
    if not records:
        return {"method": method, "heldout_n": 0, "rounds": [], "fixed": None, "broken": None}
    turn = _TurnName()

    def score(recs: Sequence[Record], texts: Sequence[str]) -> list[float]:
        return sharded_score(scorer, list(recs), list(texts))

    cfg = ChainConfig(backend=_ShardedBackend(backend, batch_size, progress, label, turn), max_tokens=max_tokens,
                      temperature=0.0, rounds=rounds, progress=turn, score=score)
    outcomes = run_method(method, records, cfg)
    per_round, first_right, last_right = [], [], []
    for k in range(rounds + 1):
        if method == "rise-oracle":  # the scores the chain stopped on (a second reading could contradict the stop)
            scores = [o.turns[min(k, len(o.turns) - 1)]["score"] for o in outcomes]
        else:
            scores = score(records, [answer_after(method, o.turns, k) for o in outcomes])
        right = [correct(s, r.task) for s, r in zip(scores, records)]
        if k == 0:
            first_right = right
        last_right = right
        per_round.append({
            "round": k,
            "accuracy": round(sum(scores) / len(scores), 4),
            "tokens_mean": round(sum(sum(t["tokens"] for t in o.turns[:k + 1]) for o in outcomes) / len(outcomes), 1),
        })
    return {
        "method": method,
        "heldout_n": len(records),
        "rounds": per_round,
        "fixed": sum(not a and b for a, b in zip(first_right, last_right)),
        "broken": sum(a and not b for a, b in zip(first_right, last_right)),
    }


__all__ = ["READINGS", "answer_after", "heldout_rounds"]
