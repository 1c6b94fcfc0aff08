"""Answer scoring: one rule-based scorer per answer family, a dispatcher, and batch scoring.

``score(task, response, reference, question=..., judge=...)`` gives a float in [0, 1]. The
answer is the last ``<answer>`` block when the response has one, else the whole response.

==========  ====================================================  =========
family      how                                                   metric
==========  ====================================================  =========
math        math-verify equivalence (LaTeX, ``\\boxed{}``), pool    accuracy
gsm8k       number after ``####`` vs the answer's number          accuracy
arith       integer reference vs the answer's number              accuracy
choice      option label (letters, ARC digits, option text)       accuracy
winogrande  option 1/2 by number or by the option's words         accuracy
drop        DROP F1, best over ``|``-separated alternatives       f1
summary     ROUGE-L F1 (stemmed)                                  rouge_l
open        LLM judge (required)                                  accuracy
==========  ====================================================  =========

:class:`Scorer` scores batches (training rewards, evaluation) with math-verify in a
process pool under a per-item timeout; see :mod:`pasr.scoring.scorer` for why.
"""

from pasr.scoring.scorer import FAMILIES, METRIC, Scorer, default_scorer, family, metric_of, score

__all__ = ["FAMILIES", "METRIC", "Scorer", "default_scorer", "family", "metric_of", "score"]
