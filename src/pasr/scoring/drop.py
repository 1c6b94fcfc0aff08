"""DROP: the official DROP F1, spans aligned one to one, maximised over the reference's alternative answers.

The metric follows ``drop_eval.py`` of the DROP authors (allenai/allennlp-reading-comprehension,
``allennlp_rc/eval/drop_eval.py``, tested by ``tests/eval/drop_eval_test.py``; allennlp-models carries
the same file):

* an answer is a list of spans (``_answer_to_bags``); each span is normalised per token: lower-case,
  punctuation stripped unless the token is a number, numbers written as floats (``5`` == ``5.0``),
  articles dropped, split on spaces and hyphens; its token *set* is its bag;
* every (gold span, predicted span) pair scores the F1 of their bags, or 0 when the gold span has
  numbers and the predicted span has none of them (``_match_numbers_if_present``);
* the spans are aligned one to one to maximise the total (``_align_bags``, scipy's
  ``linear_sum_assignment``); the F1 is the mean over ``max(#gold, #predicted)`` spans, so missing and
  extra spans both count as 0, rounded to 2 decimals (``get_metrics``);
* the score of a question is the best F1 over its alternative answers (``evaluate_json``).

One deliberate difference: a number followed by sentence punctuation ("12.72.") is read as the number,
where upstream strips the dots and reads ``1272``.

Reference encoding (``Record.reference`` is one string):

* **plain form**: alternatives separated by ``|``, each alternative ONE answer of ONE span:
  ``"Washington|Redskins"`` (the authors' ``ref_text``; every such string means what it always meant);
* **JSON form**: a JSON list of alternatives, each a string (an answer of one span) or a list of
  strings (the spans of one multi-span answer): ``[["Smith", "Jones"], "Smith and Jones"]`` is one
  answer with the two spans Smith and Jones, or the single span "Smith and Jones". A reference is read
  as JSON only when it starts with ``[`` and parses to exactly that shape; anything else is the plain
  form. :func:`format_reference` writes the plain form whenever it can say the answers (every answer
  one span, no span containing ``|``), else the JSON form.

Reading the model's answer as spans. A multi-span answer is usually written as a list: one item per
line (bullets and ``1.`` markers dropped), or separated by ``;`` or ``|``, by commas (not the comma of
``1,000``; an Oxford ``, and`` counts as a comma), or by `` and ``/`` & ``. Each way of splitting at a
subset of these three kinds of separator (lines/``;``/``|``, commas, and/&) is a *reading* of the
answer, the unsplit answer included (at most 8 readings). The score is the best official F1 over
readings and alternatives. Because the metric is length-aware (every extra or missing span counts 0),
splitting an answer only pays off against a gold answer with that many spans; against a single gold
span the unsplit reading is the one that counts, so "Smith and Wesson" and "Washington, D.C." still
match their single spans. One restriction: bags are sets, so a span that repeats an item ("td, td")
would hide the repetition that the official metric penalises (``get_metrics(["td", "td"], "td")`` is
0.5); a reading may keep a separator inside a span only if the items it joins are all different, or
the span is exactly (normalised) one of the gold spans. "or" is not a separator: a hedge such as
"Smith or Jones" (or "either ...") commits to no answer and scores 0 (the official metric would give
its bag F1, 0.5). A *list* of candidates is scored as the official metric scores it: "Smith, Jones"
against the single span Smith is 0.67, and k listed candidates earn at most 2 / (k + 1), less than
naming the right one (1.0) -- the price of following drop_eval's multi-span alignment.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import string
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from pasr.scoring.extract import answer_text

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_TOKEN_SPLIT = re.compile(" |-")

# The separators a model writes between the spans of a multi-span answer, by kind: 0 a line break,
# ";" or "|"; 1 a comma (not the comma of 1,000; ", and" is one comma); 2 " and " or " & ".
_SEPARATOR = re.compile(  # each starts only where a blank run starts (?<!...), so a run is tried once: linear time
    r"((?<![^\S\n])[^\S\n]*(?:\n|;|\|)\s*)"
    r"|((?<![ \t])[ \t]*,(?!(?<=\d,)\d{3}(?!\d))[ \t]*(?:(?:and|&)[ \t]+)?)"
    r"|((?<![ \t])[ \t]+(?:and|&)[ \t]+)",
    re.IGNORECASE,
)
_MARKER = re.compile(r"^(?:[-*\u2022\u00b7]|\(?\d{1,2}[.)])\s+(?=\S)")  # a list item's "- ", "* ", "1. ", "2) "


# --- normalisation (drop_eval.py: _normalize_answer, _is_number, _normalize_number) -------------


_NUMBER_LIKE = re.compile(r"[\s\d.+\-_eE]*|\s*[+-]?(?:nan|inf|infinity)\s*", re.IGNORECASE)
"""Every string ``float`` accepts matches this; the rest are told apart without raising (fast on long words)."""


@functools.lru_cache(maxsize=1 << 16)
def _is_number(text: str) -> bool:
    if not _NUMBER_LIKE.fullmatch(text):
        return False
    try:
        float(text)
        return True
    except (ValueError, OverflowError):
        return False


@functools.lru_cache(maxsize=1 << 16)
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
    """The DROP normal form of one span (``_normalize_answer`` in drop_eval.py, plus "12.72." = 12.72)."""
    parts = [_normalize_token(tok) for tok in _TOKEN_SPLIT.split(str(text))]
    return " ".join(p for p in parts if p.strip()).strip()


# --- the metric (drop_eval.py: _answer_to_bags, _compute_f1, _match_numbers_if_present, _align_bags) ----


class _Bag:
    """One normalised span: its normal form, its token set and the numbers in it."""

    __slots__ = ("norm", "tokens", "numbers")

    def __init__(self, span: str) -> None:
        self.norm = normalize_answer(span)
        self.tokens = frozenset(self.norm.split())
        self.numbers = frozenset(t for t in self.tokens if _is_number(t))


def _f1(pred: _Bag, gold: _Bag) -> float:
    if gold.numbers and not gold.numbers & pred.numbers:
        return 0.0
    common = len(gold.tokens & pred.tokens)
    precision = 1.0 if not pred.tokens else common / len(pred.tokens)
    recall = 1.0 if not gold.tokens else common / len(gold.tokens)
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _aligned_f1(pred: Sequence[_Bag], gold: Sequence[_Bag]) -> float:
    """The mean F1 of the best one-to-one alignment, over ``max(len(gold), len(pred))`` spans, 2 decimals.

    The same number as ``_align_bags`` + ``get_metrics`` upstream, computed on fewer columns: a predicted
    span that scores 0 against every gold span is left out (it could only be aligned for 0), and a span
    repeated n times enters min(n, #gold) times (no alignment can use more copies).
    """
    if len(pred) == 1 and len(gold) == 1:  # the common case: no alignment to search
        return float(round(np.float64(_f1(pred[0], gold[0])), 2))
    counts: dict[str, int] = {}
    first: dict[str, _Bag] = {}
    for bag in pred:
        counts[bag.norm] = counts.get(bag.norm, 0) + 1
        first.setdefault(bag.norm, bag)
    columns = []
    for norm, count in counts.items():
        column = [_f1(first[norm], g) for g in gold]
        if any(column):
            columns += [column] * min(count, len(gold))
    per_span = np.zeros(max(len(gold), len(pred)))
    if columns:
        scores = np.array(columns, dtype=float).T  # gold x predicted, as upstream
        rows, cols = linear_sum_assignment(-scores)
        per_span[rows] = scores[rows, cols]
    return float(round(np.mean(per_span), 2)) if per_span.size else 0.0  # numpy's rounding, as upstream


def _spans(answer: str | Sequence[str] | None) -> list[str]:
    if isinstance(answer, (list, tuple)):
        return [str(span) for span in answer] or [""]
    return ["" if answer is None else str(answer)]


def get_metrics(predicted: str | Sequence[str], gold: str | Sequence[str]) -> tuple[float, float]:
    """``(exact_match, f1)`` of a predicted answer against one gold answer, as drop_eval.py's ``get_metrics``.

    Each side is one span (a string) or the spans of one answer (a list of strings). Exact match: the
    same normalised spans, as sets, and as many of them. F1: see the module docstring.
    """
    pred = [_Bag(s) for s in _spans(predicted)]
    gold_bags = [_Bag(s) for s in _spans(gold)]
    pred_norms, gold_norms = [b.norm for b in pred], [b.norm for b in gold_bags]
    exact = 1.0 if set(pred_norms) == set(gold_norms) and len(pred_norms) == len(gold_norms) else 0.0
    return exact, _aligned_f1(pred, gold_bags)


# --- the reference: alternatives, each the spans of one answer ------------------------------------


def _json_answers(text: str) -> list[Any] | None:
    """The alternatives of a JSON-form reference, or None when ``text`` is not one."""
    if not text.startswith("[") or not text.endswith("]"):
        return None
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(items, list) or not items:
        return None
    for item in items:
        if isinstance(item, list):
            if not all(isinstance(span, str) for span in item):
                return None
        elif not isinstance(item, str):
            return None
    return items


def parse_reference(reference: Any) -> list[tuple[str, ...]]:
    """The alternative answers of a reference, each a tuple of its spans (blank ones and repeats dropped).

    ``reference``: the plain or the JSON form (module docstring), or a list of alternatives (each a
    string, one span, or a list of strings, the spans of one answer). Never raises; no alternatives
    is an empty list.
    """
    if reference is None:
        return []
    if isinstance(reference, (list, tuple)):
        items: list[Any] = list(reference)
    else:
        text = str(reference).strip()
        parsed = _json_answers(text)
        items = parsed if parsed is not None else text.split("|")
    answers: list[tuple[str, ...]] = []
    for item in items:
        raw = list(item) if isinstance(item, (list, tuple)) else [item]
        spans = tuple(s for s in ("" if span is None else str(span).strip() for span in raw) if s)
        if spans and spans not in answers:
            answers.append(spans)
    return answers


def format_reference(answers: Iterable[str | Sequence[str]]) -> str:
    """A reference string for these alternative answers (each a span or the spans of one answer).

    The plain ``|`` form when every answer has one span and no span holds ``|``, else the JSON form;
    :func:`parse_reference` reads either back to the same answers.
    """
    parsed = parse_reference(list(answers))
    if not parsed:
        return ""
    plain = "|".join(spans[0] for spans in parsed)
    if all(len(spans) == 1 and "|" not in spans[0] for spans in parsed) and _json_answers(plain) is None:
        return plain
    return json.dumps([spans[0] if len(spans) == 1 else list(spans) for spans in parsed], ensure_ascii=False)


# --- the prediction: its readings as spans ---------------------------------------------------------


class _Prediction:
    """A model answer, cut at its separators once; its readings are built when first needed.

    Item i (the text between separator i - 1 and separator i) is ``text[starts[i]:ends[i]]``;
    ``kinds[i]`` is the kind of separator i. A reading is named by the kinds it splits at; built, it is
    ``(spans, ranges)``: its spans, and the first and last item each span covers.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts, self.ends, self.kinds = [0], [], []
        for match in _SEPARATOR.finditer(text):
            self.ends.append(match.start())
            self.starts.append(match.end())
            self.kinds.append(match.lastindex - 1)
        self.ends.append(len(text))
        self.present = frozenset(self.kinds)
        self.readings = [frozenset(split_at) for size in range(len(self.present) + 1)
                         for split_at in itertools.combinations(sorted(self.present), size)]
        self._at = {kind: [i for i, k in enumerate(self.kinds) if k == kind] for kind in self.present}
        self._blank_items = sum(not text[a:b].strip() for a, b in zip(self.starts, self.ends))
        self._bags: dict[str, _Bag] = {}
        self._item_norms: dict[int, str | None] = {}
        self._built: dict[frozenset[int], tuple[list[str], list[tuple[int, int]]]] = {}

    def count(self, split_at: frozenset[int]) -> tuple[int, int]:
        """The least and the most spans the reading can have, known without building it.

        One more span per separator split at, less the spans that hold only blank items (at most one per
        blank item); exact once the reading is built.
        """
        if split_at in self._built:
            return len(self._built[split_at][0]), len(self._built[split_at][0])
        most = 1 + sum(len(self._at[kind]) for kind in split_at)
        return max(1, most - self._blank_items), most

    def reading(self, split_at: frozenset[int]) -> tuple[list[str], list[tuple[int, int]]]:
        if split_at not in self._built:
            self._built[split_at] = self._pieces(split_at)
        return self._built[split_at]

    def _pieces(self, split_at: frozenset[int]) -> tuple[list[str], list[tuple[int, int]]]:
        cuts = sorted(itertools.chain.from_iterable(self._at[kind] for kind in split_at))
        last_item = len(self.starts) - 1
        spans, ranges = [], []
        first, line_start, markers = 0, True, 0 in split_at
        for cut in [*cuts, None]:
            last = last_item if cut is None else cut  # separator i follows item i
            span = self.text[self.starts[first]:self.ends[last]].strip()
            if markers and line_start:
                span = _MARKER.sub("", span)
            if span:
                spans.append(span)
                ranges.append((first, last))
            if cut is not None:
                first, line_start = cut + 1, self.kinds[cut] == 0
        return (spans, ranges) if spans else ([""], [(0, last_item)])

    def bag(self, span: str) -> _Bag:
        bag = self._bags.get(span)
        if bag is None:
            bag = self._bags[span] = _Bag(span)
        return bag

    def _item(self, i: int) -> str:
        """Item i as a span of its own: stripped, without its list marker at the start of a line."""
        item = self.text[self.starts[i]:self.ends[i]].strip()
        return _MARKER.sub("", item) if i == 0 or self.kinds[i - 1] == 0 else item

    def _item_norm(self, i: int) -> str | None:
        """The normal form of item i as a span of its own (None for a blank item)."""
        if i not in self._item_norms:
            item = self._item(i)
            self._item_norms[i] = self.bag(item).norm if item else None
        return self._item_norms[i]

    def repeats_an_item(self, start: int, end: int) -> bool:
        """Whether two of the items from ``start`` to ``end`` have one normal form ("td, td")."""
        norms = [n for n in (self._item_norm(i) for i in range(start, end + 1)) if n is not None]
        return len(norms) != len(set(norms))


def _best_f1(pred: _Prediction, gold: list[_Bag]) -> float:
    """The best official F1 over the admissible readings of the answer against one gold answer.

    Readings are tried nearest the gold's span count first and skipped when even a perfect alignment
    (``min(#pred, #gold) / max(#pred, #gold)``) could not beat the best so far or would round to 0.00,
    which keeps long answers cheap; the result is the same as trying them all.
    """
    size = len(gold)

    def bound(split_at: frozenset[int]) -> float:
        least, most = pred.count(split_at)
        count = min(max(size, least), most)  # the count nearest the gold's
        return min(count, size) / max(count, size)

    best = 0.0
    gold_norms = {b.norm for b in gold}
    for split_at in sorted(pred.readings, key=lambda split_at: (-bound(split_at), len(split_at))):
        if best >= 1.0:
            break
        if bound(split_at) <= best or bound(split_at) < 0.005:  # could not beat the best; would round to 0.00
            continue
        spans, ranges = pred.reading(split_at)
        if bound(split_at) <= best:
            continue
        bags = [pred.bag(s) for s in spans]
        if split_at != pred.present and any(
            b.norm not in gold_norms and end > start and pred.repeats_an_item(start, end)
            for b, (start, end) in zip(bags, ranges)
        ):
            continue  # a span would hide a repeated item
        best = max(best, _aligned_f1(bags, gold))
    return best


_HEDGE = re.compile(r"(?i)\b(?:or|either|and/or)\b")
MAX_ANSWER_CHARS = 4000


def score_drop(response: Any, reference: Any) -> float:
    """The official DROP F1 of the answer: best over the answer's readings and the reference's alternatives.

    ``response``: a model response (the last ``<answer>`` block, else the whole text); ``reference``:
    the plain or JSON form (module docstring). A reference without alternatives scores 0, and so
    does an answer that hedges between candidates with "or" / "either" (unless a gold span says "or")
    and an answer longer than :data:`MAX_ANSWER_CHARS` (no DROP answer is; its F1 would round to
    about 0 and reading it would stall a GRPO batch).
    """
    if response is not None and not isinstance(response, str):
        response = str(response)
    text, _ = answer_text(response)
    golds = parse_reference(reference)
    if not golds or len(text) > MAX_ANSWER_CHARS:
        return 0.0
    if _HEDGE.search(text) and not any(_HEDGE.search(s) for spans in golds for s in spans):
        return 0.0  # "Smith or Jones": commits to no answer (a gold span that itself says "or" is exempt)
    pred = _Prediction(text)
    best = 0.0
    for spans in golds:
        best = max(best, _best_f1(pred, [_Bag(s) for s in spans]))
        if best >= 1.0:
            break
    return best
