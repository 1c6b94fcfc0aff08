"""DROP: token-bag F1 as in the official DROP metric, maximised over the reference's alternatives.

Follows ``drop_eval.py`` (AllenNLP / the DROP authors): lower-case; per token, strip
punctuation unless the token is a number, write numbers as floats (``5`` == ``5.0``), drop
articles, split on spaces and hyphens; exact match compares the normalised strings,
F1 the bags of tokens; when the gold answer has numbers, a prediction without one of
them scores 0. One deliberate difference: a number followed by sentence punctuation
("12.72.") is read as the number, where upstream strips the dots and reads ``1272``.
A reference may hold alternatives separated by ``|`` (the shared file's
``ref_text``); the best alternative counts. F1 is rounded to 2 decimals as upstream.
"""

from __future__ import annotations

import re
import string

from pasr.scoring.extract import answer_text

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token) and _is_number(token.rstrip(".,;:!?")):
        token = token.rstrip(".,;:!?")  # "12.72." ends a sentence; upstream would read 1272
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCT)
    if _is_number(token):
        token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalize_answer(text: str) -> str:
    """The DROP normal form of an answer span."""
    parts = [_normalize_token(tok) for tok in re.split(" |-", text)]
    return " ".join(p for p in parts if p.strip()).strip()


def _f1(pred_bag: set[str], gold_bag: set[str]) -> float:
    common = len(gold_bag & pred_bag)
    precision = 1.0 if not pred_bag else common / len(pred_bag)
    recall = 1.0 if not gold_bag else common / len(gold_bag)
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _numbers_match(gold_bag: set[str], pred_bag: set[str]) -> bool:
    gold_numbers = {w for w in gold_bag if _is_number(w)}
    return not gold_numbers or bool(gold_numbers & {w for w in pred_bag if _is_number(w)})


def drop_metrics(predicted: str, gold: str) -> tuple[float, float]:
    """``(exact_match, f1)`` of one predicted span against one gold span."""
    pred_norm, gold_norm = normalize_answer(predicted), normalize_answer(gold)
    pred_bag, gold_bag = set(pred_norm.split()), set(gold_norm.split())
    em = 1.0 if pred_norm == gold_norm else 0.0
    f1 = _f1(pred_bag, gold_bag) if _numbers_match(gold_bag, pred_bag) else 0.0
    return em, round(f1, 2)


def alternatives(reference: str | list[str]) -> list[str]:
    """The gold alternatives: a list as given, or a string split on ``|`` (blank ones dropped)."""
    items = reference if isinstance(reference, (list, tuple)) else str(reference).split("|")
    return [a.strip() for a in items if a.strip()] or [""]


def score_drop(response: str, reference: str | list[str]) -> float:
    """The best F1 of the answer against any reference alternative (1.0 also whenever EM is 1)."""
    text, _ = answer_text(response)
    best = 0.0
    for gold in alternatives(reference):
        em, f1 = drop_metrics(text, gold)
        best = max(best, f1, em)
    return best
