"""Answer scoring: one rule-based scorer per answer family, a dispatcher, and batch scoring.

``score(task, response, reference, question=..., judge=...)`` gives a float in [0, 1];
``task`` is an answer family or a benchmark name (``arc``, ``mmlu``, ``xsum``, ...: its
family). The answer is the last ``<answer>`` block when the response has one, else the
whole response. Because the score is the GRPO reward, every family gives no credit to an
answer that commits to several candidates ("18 or 19", "A, B, C, D"), never raises on a
response, and stays fast on adversarial text (math-verify runs in a pool under a timeout).

==========  ======================================================  =========
family      how                                                     metric
==========  ======================================================  =========
math        math-verify equivalence (LaTeX, last ``\\boxed{}``), pool  accuracy
gsm8k       the one number the answer commits to vs ``#### N``        accuracy
arith       the one number the answer commits to vs the integer       accuracy
choice      option label (letters, ARC digits, option text)         accuracy
winogrande  option 1/2 by number or by the option's words           accuracy
drop        official DROP F1 with span alignment, best alternative  f1
summary     ROUGE-L F1 (stemmed)                                    rouge_l
open        LLM judge (required)                                    accuracy
==========  ======================================================  =========

:func:`score_records` scores texts against their records; :class:`Scorer` scores batches (training rewards, evaluation) with math-verify in a
process pool under a per-item timeout; see :mod:`pasr.scoring.scorer` for why. Numbers
follow one rule in every family (:func:`pasr.scoring.numeric.numbers_equal`).
"""

from pasr.scoring.scorer import (
    FAMILIES,
    METRIC,
    Scorer,
    build_scorer,
    default_scorer,
    family,
    judge_metric_of,
    metric_of,
    score,
    score_records,
)

__all__ = [
    "FAMILIES", "METRIC", "Scorer", "build_scorer", "default_scorer", "family", "judge_metric_of", "metric_of", "score",
    "score_records",
]
