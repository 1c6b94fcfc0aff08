"""Winogrande: two options, reference ``1`` or ``2``; the model may answer by number or by the option's words.

The question inlines the options as ``Option1: Sarah`` / ``Option2: Maria`` lines. Reading the
choice, first rule that finds something decides:

1. the whole answer is the number: ``2``, ``(2)``, ``Option 2``, ``option2.``;
2. an explicit phrase: "Option 2", "the answer is 2", "Answer: 2" (last one wins);
3. a leading number: "2: Maria", "2. Maria";
4. the option's words (question given): the answer equals one option's text or, inside
   ``<answer>``, names exactly one of them (an option found only inside the other, longer
   one does not count); over a whole response the option mentioned last;
5. a standalone ``1`` or ``2`` (inside ``<answer>`` only when unambiguous).

Naming both options inside ``<answer>`` earns nothing.
"""

from __future__ import annotations

import re

from pasr.errors import PasrError
from pasr.scoring.extract import answer_text, exact_option, named_options

_OPTION_LINE = re.compile(r"^[ \t]*Option[ \t]*([12])[ \t]*:[ \t]*(.*?)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_WRAPPERS = re.compile(r"\\(?:boxed|text|textbf|mathrm)\{([^{}]*)\}")


def parse_options(question: str | None) -> dict[str, str]:
    """``{"1": text, "2": text}`` from the ``Option1:``/``Option2:`` lines of a question ({} when absent)."""
    if not question:
        return {}
    return {m.group(1): m.group(2) for m in _OPTION_LINE.finditer(question) if m.group(2)}


def extract_option(text: str, *, tagged: bool = True, options: dict[str, str] | None = None) -> str | None:
    """``"1"``, ``"2"`` or None. See the module docstring for the rules."""
    t = re.sub(r"[*$`]", "", _WRAPPERS.sub(r"\1", text)).strip()
    if not t:
        return None
    m = re.fullmatch(r"[\s(\['\"]*(?:(?i:option|answer)\s*[:#]?\s*)?[(\[]?([12])[)\]]?[\s)\]'\".:]*", t)
    if m:
        return m.group(1)
    explicit = re.findall(
        r"(?i:option\s*|answer(?:\s+is)?\s*[:=]?\s*(?:option\s*)?|choice\s*)[:#]?\s*[(\[]?([12])(?![\d.,]\d|\w)", t
    )
    if explicit:
        return explicit[-1]
    m = re.match(r"\s*[(\[]?([12])\s*[)\].:](?!\d)", t)
    if m:
        return m.group(1)
    if options:
        by_text = _option_by_text(t, options, tagged)
        if by_text:
            return by_text
    found = re.findall(r"(?<![\w.,])([12])(?![\w]|[.,]\d)", t)
    if found:
        if tagged:
            return found[0] if len(set(found)) == 1 else None
        return found[-1]
    return None


def _option_by_text(text: str, options: dict[str, str], tagged: bool) -> str | None:
    exact = exact_option(text, options)
    if exact:
        return exact
    named = named_options(text, options)
    if len(named) == 1:
        return next(iter(named))
    if len(named) == 2 and not tagged:
        return max(named, key=lambda k: named[k][-1])  # over a whole response: the option mentioned last
    return None


def reference_option(reference: str, options: dict[str, str] | None = None) -> str:
    """The gold option number ``"1"``/``"2"``; an option's text is accepted when the options are known."""
    ref = str(reference).strip()
    m = re.fullmatch(r"[\s(]*(?:(?i:option)\s*)?([12])[\s).]*", ref)
    if m:
        return m.group(1)
    if options:
        by_text = exact_option(ref, options)
        if by_text:
            return by_text
    raise PasrError(f"winogrande reference must be 1 or 2, got {ref[:80]!r}; fix the record's reference field")


def score_winogrande(response: str, reference: str, question: str | None = None) -> float:
    """1.0 when the response picks the reference option, else 0.0."""
    options = parse_options(question)
    gold = reference_option(reference, options)
    text, tagged = answer_text(response)
    return 1.0 if extract_option(text, tagged=tagged, options=options) == gold else 0.0
