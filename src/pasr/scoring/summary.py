"""Summaries (XSum): ROUGE-L F1 between the answer and the reference summary.

ROUGE-L with the Porter stemmer, as the usual XSum reports (``rouge_score`` package);
an empty answer scores 0.
"""

from __future__ import annotations

import functools

from pasr.scoring.extract import answer_text


@functools.lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer  # imported lazily: pool workers and `pasr --help` never need it

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of ``prediction`` against ``reference`` (0.0 when either is blank)."""
    if not prediction.strip() or not str(reference).strip():
        return 0.0
    return float(_rouge().score(str(reference), prediction)["rougeL"].fmeasure)


def score_summary(response: str, reference: str) -> float:
    """ROUGE-L F1 of the response's answer against the reference summary."""
    text, _ = answer_text(response)
    return rouge_l(text, reference)
