"""Winogrande: two options, reference ``1`` or ``2``; the model may answer by number or by the option's words.

The question inlines the options as ``Option1: Sarah`` / ``Option2: Maria`` lines. The answer
is cleaned like a choice answer (wrappers unwrapped, markdown marks dropped, whitespace
squeezed); then, first rule that finds something decides:

1. the whole answer is the number: ``2``, ``(2)``, ``Option 2``, ``option2.``;
2. the whole answer is one option's text (question given): ``Maria``, ``maria.``.

Otherwise the answer's mentions are collected: explicit phrases ("Option 2", "the answer is 2",
"Answer: 2"), a leading number ("2: Maria", "2. Maria"), standalone ``1``/``2`` (not part of a
number such as ``1.5``), and occurrences of the options' words (an option found only inside
the other, longer one does not count: "bed" in "bed sheet"; digits inside an option's words
are not read as numbers).

3. Inside ``<answer>``: the answer must commit to one option. Mentions of exactly one option
   pick it ("Option 2 (Maria)", "2: Maria"); mentions of both, by any mix of the kinds, are a
   hedge and earn nothing ("Option 1 or Option 2", "Sarah or Maria", "either 1 or 2",
   "1 and 2", "Option 1 (Sarah) or Option 2").
4. Over a whole response (no ``<answer>``) the first kind that occurs decides, in order:
   explicit phrases (the last one wins: "Option 1 looks plausible, but the answer is 2" is 2),
   the leading number, the options' words (the option mentioned last), standalone numbers
   (the last). A final hedge ("the answer is 1 or 2", "... so Sarah or Maria") picks nothing:
   see :func:`pasr.scoring.choice.final_hedge`.

Every pattern is linear in the answer's length, so no answer can stall the reward.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pasr.errors import PasrError
from pasr.scoring.choice import Finder, Positions, clean_answer, decide, fold_compatible, option_mentions
from pasr.scoring.extract import answer_text, exact_option

_OPTION_LINE = re.compile(r"^[ \t]*Option[ \t]*([12])[ \t]*:(.*)$", re.MULTILINE | re.IGNORECASE)
_WRAPPERS = re.compile(r"\\(?:boxed|text|textbf|mathrm|mathbf)\{([^{}]*)\}")
_REFERENCE = re.compile(r"[\s(]*(?:(?i:option)\s*)?([12])[\s).]*")
_WHOLE = re.compile(r"(?:(?i:option|answer) ?[:#]? ?)?[(\[]?([12])[)\]]?")
# whitespace is squeezed, so every optional piece matches a bounded amount
_EXPLICIT = re.compile(
    r"(?<![A-Za-z])(?i:option|choice|answer(?: is)?(?: ?[:=])?(?: ?option)?) ?[:#]? ?[(\[]?([12])(?![\d.,]\d|\w)"
)
_LEADING = re.compile(r"[(\[]?([12]) ?[)\].:](?!\d)")
_BARE = re.compile(r"(?<![\w.,])([12])(?![\w]|[.,]\d)")


def parse_options(question: str | None) -> dict[str, str]:
    """``{"1": text, "2": text}`` from the ``Option1:``/``Option2:`` lines of a question ({} when absent)."""
    return dict(_options(question)) if question else {}


@lru_cache(maxsize=4096)
def _options(question: str) -> tuple[tuple[str, str], ...]:
    """:func:`parse_options`, cached: a GRPO batch scores each question G times and more."""
    found = ((m.group(1), fold_compatible(m.group(2).strip(" \t\r"))) for m in _OPTION_LINE.finditer(question))
    return tuple((label, text) for label, text in found if text)


def _whole_option(t: str) -> str | None:
    """The option number when the whole (cleaned) answer is one: ``2``, ``(2)``, ``Option 2``."""
    m = _WHOLE.fullmatch(t.lstrip(" \n([{'\"").rstrip(" \n)]}'\".:"))
    return m.group(1) if m else None


def extract_option(text: str, *, tagged: bool = True, options: dict[str, str] | None = None) -> str | None:
    """``"1"``, ``"2"`` or None. See the module docstring for the rules."""
    t = clean_answer(text, _WRAPPERS, "*$`")
    if not t:
        return None
    whole = _whole_option(t)
    if whole:
        return whole
    if options:
        exact = exact_option(t, options)
        if exact:
            return exact
    explicit = list(_EXPLICIT.finditer(t))
    masked, texts = option_mentions(t, options, [(m.start(), m.start(1)) for m in explicit])
    chosen = [m.start(1) for m in explicit if masked[m.start(1)] == t[m.start(1)]]  # not inside an option's words

    leading = _LEADING.match(masked)
    finders = [
        ("explicit", Positions(t, chosen)),
        ("leading", Positions(t, [leading.start(1)] if leading else [])),
        ("bare", Finder(_BARE, masked)),
    ]
    return decide(t, masked, texts, finders, tagged=tagged, order=("explicit", "leading", "text", "bare"))


def reference_option(reference: str, options: dict[str, str] | None = None) -> str:
    """The gold option number ``"1"``/``"2"``; an option's text is accepted when the options are known."""
    ref = str(reference).strip()
    m = _REFERENCE.fullmatch(ref)
    if m:
        return m.group(1)
    if options:
        by_text = exact_option(ref, options)
        if by_text:
            return by_text
    raise PasrError(f"winogrande reference must be 1 or 2, got {ref[:80]!r}; fix the record's reference field")


def score_winogrande(response: str, reference: str, question: str | None = None) -> float:
    """1.0 when the response picks the reference option, else 0.0."""
    text, tagged = answer_text(response)
    plain_gold = _REFERENCE.fullmatch(str(reference).strip())
    if plain_gold:  # the common case needs no option texts: "<answer>2</answer>" against "2"
        whole = _whole_option(clean_answer(text, _WRAPPERS, "*$`"))
        if whole:
            return 1.0 if whole == plain_gold.group(1) else 0.0
    options = parse_options(question)
    gold = reference_option(reference, options)
    return 1.0 if extract_option(text, tagged=tagged, options=options) == gold else 0.0
