"""Numbers in answers (``gsm8k``, ``arith``, and the plain-number path of ``math``): read, then compare.

GSM8K references are worked solutions ending ``#### 18``; the synthetic ``arith`` task
stores the bare integer. Models write ``$18``, ``18.0``, ``1,000``, ``1 000``, ``18 m^2``,
``1 1/4``, ``\\boxed{18}`` or ``**18**``. Because this score is a GRPO reward, reading is
strict about *which* number the answer commits to, and lenient about how it is spelled.

Spelling (:func:`normalize`): Unicode compatibility forms (full-width digits, ``½``), the
minus signs ``−`` (U+2212) and relatives read as ``-``, markdown emphasis and code marks
dropped, LaTeX number spellings undone (``{,}``, thin spaces, ``\\frac{a}{b}``, ``\\text``,
``\\$``, ``\\%``), ``1.8 \\times 10^4`` read as ``1.8e4``.

Tokens (:func:`number_tokens`): signed integers and decimals, thousands groups with commas
or (narrow) spaces (``1,000``, ``1 000``), a decimal comma before one or two digits
(``2,18`` is 2.18, never 18), fractions ``3/4``, mixed numbers ``1 1/4``, scientific
notation ``18e3`` (18000: the reference inside another notation is not the reference),
and powers of a number ``10^3``. A number glued after a letter (``m2``) or written as the
exponent of a unit (``m^2``) is part of a unit, not a number. Digit strings longer than
:data:`MAX_DIGITS` or exponents beyond :data:`MAX_EXPONENT` are not numbers (no crash on
Python's int-string limit, no 10**10**9 computation).

What an answer commits to (:func:`answer_number`), for an ``<answer>`` block:
trailing parentheticals are set aside, then the text after the last ``=`` is read, and it
must hold exactly one value (repeats allowed). Two different values ("18 or 19 or 20",
"3+2", "20, not 18") name no single answer: no credit. A parenthetical after the number is
fine when it names no other value: a unit or word ("18 (rounded)"), a check that ends in the
same value ("18 (9 * 2 = 18)"), or a derivation ("18 (16 - 3 - 4 = 9 eggs, 9 * $2)"); one
that hedges ("18 (or 19)") or names other values ("18 (19, 20)", "20 (9 * 2 = 18)") voids it. For a whole
response without ``<answer>``: the last ``\\boxed{}``, else the line after the last ``####``,
else the last "answer is ..." statement, each read the same strict way; else the last
number in the text, unless it ends a hedge ("18 or 19").

Comparing (:func:`numbers_equal`): exact values are compared exactly (``0.5`` == ``1/2``;
``11111111101`` != ``11111111100``; ``2^{-98}`` != ``2^{-99}``). A written decimal is an
approximation to its last written place: it equals another value that rounds to it at
that place, if they also agree to a relative 1e-5 (``0.0666668`` == ``0.066666793``,
``0.33`` != ``1/3``). One rule for every numeric family and every path.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from typing import NamedTuple

from pasr.errors import PasrError
from pasr.scoring.extract import answer_text, last_boxed, strip_markdown, unwrap, unwrap_boxed

MAX_DIGITS = 300
"""Longest digit string read as a number (longer ones are not numbers; Python refuses > 4300)."""

MAX_EXPONENT = 400
"""Largest |exponent| of scientific notation or a power read as a number."""

MAX_CANDIDATES = 32
"""More numbers than this in an answer statement is not one committed answer (and is not read further)."""

TAIL_CHARS = 2000
"""How much of a whole response's end is searched for its last number."""

REL_TOLERANCE = Fraction(1, 10**5)
"""Relative agreement a written decimal needs with the value it stands for (see :func:`numbers_equal`)."""


class Number(NamedTuple):
    """A number read from text: its exact ``value`` and, for a written decimal, the decimal ``places``.

    ``places`` is None for exact spellings (integers, fractions); for ``1.25`` it is 2, for
    ``1.2e4`` it is -3 (the last written digit is the hundreds).
    """

    value: Fraction
    places: int | None = None


_MINUS_SIGNS = dict.fromkeys(map(ord, "\u2212\u2012\u2013\u2014\u2015\ufe63\uff0d\u2796"), "-")
_SPACES = "\u00a0\u202f\u2009\u2007\u200a"
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_LATEX_DELIMS = re.compile(r"\\[()\[\]]|\\(?:left|right|big|Big)(?![a-zA-Z])\s*[()\[\].|]?")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_TIMES_TEN = re.compile(r"(\d(?:\.\d+)?)\s*(?:\\times|\\cdot|[x×·*])\s*10\s*\^\s*\{?\s*([-+]?\d{1,4})\s*\}?")

_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>-(?=[\d.]))?"
    r"(?:(?P<mixed>\d{1,9})[ \t]+(?P<mnum>\d{1,9})[ \t]*/[ \t]*(?P<mden>\d{1,9})(?![\d/])"  # 1 1/4
    r"|(?P<num>\d+)[ \t]*/[ \t]*(?P<den>\d+)(?![\d/])"  # 3/4
    r"|(?P<int>\d{1,3}(?:,\d{3})+(?![,\d])|\d{1,3}(?:[ " + _SPACES + r"]\d{3})+(?!\d)|\d+)"
    r"(?:(?P<frac>\.\d+)|,(?P<dcomma>\d{1,2})(?![\d,]))?"
    r"(?:[eE](?P<exp>[-+]?\d{1,6}))?"
    r"|(?P<bare>\.\d+))"
    r"(?!\d|!|π|i(?![a-zA-Z])|\\pi(?![a-zA-Z]))"  # 18!, 18π, 18i are not 18
)
_SIMPLE = re.compile(r"\s*(-?)(\d{1,30})(?:\.(\d{1,30}))?\s*")
_EXPONENT_BEFORE = re.compile(r"(?:\^\s*\{?|\*\*)\s*$")
_HEDGE_GAP = re.compile(r"^[\s,;]*(?:or|and/or|/|\\text\{\s*or\s*\})[\s,;]*$", re.IGNORECASE)
_HEDGE_WORD = re.compile(r"(?i)\b(?:or|either)\b|±|∓|\\[mp]m\b|\\lor\b|\\vee\b")
_NOT_A_NUMBER = re.compile(
    r"\\(?:[dt]?frac|sqrt|log|ln|sin|cos|tan|exp|pi|infty)(?![a-zA-Z])|(?i:\b(?:log|ln|sqrt|sin|cos|tan|exp)\b)"
)
_EQUALS = re.compile(r"[=:]?=+>?|\\approx|≈|\\equiv|⇒|→|\\(?:Rightarrow|rightarrow|implies|to)(?![a-zA-Z])")
_ARITHMETIC = re.compile(r"\d\s*(?:[-+*/×÷^·x]|\\times|\\cdot)\s*[$\d(]")
_ANSWER_IS = re.compile(r"(?i)\b(?:final answer|answer)\b\s*(?:is|:|=)")
_SENTENCE_END = re.compile(r"(?<![\d\\])\.(?!\d)|\.\s")


def fold_unicode(text: str) -> str:
    """Compatibility forms folded (NFKC: full-width digits, ``½``), minus signs (U+2212, ...) as ``-``."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_MINUS_SIGNS).replace("\u2044", "/")


def normalize(text: str) -> str:
    """The text with numbers spelled one way (see the module docstring); never raises."""
    text = fold_unicode(text or "")
    if "*" in text or "_" in text or "`" in text:
        text = strip_markdown(text)
    if "\\" in text or "{" in text:
        text = text.replace("{,}", ",").replace("\\!", "").replace("\\$", "$").replace("\\%", "%")
        text = re.sub(r"(?<=\d)\\[,;: ](?=\d)", " ", text)  # thin spaces inside numbers
        text = _LATEX_TEXT.sub(r"\1", text)
        text = _LATEX_FRAC.sub(_fraction, text)
        text = _LATEX_DELIMS.sub(" ", text)  # \\(18\\), \\left(18\\right): delimiters, not a remark
    if "10" in text:
        text = _TIMES_TEN.sub(lambda m: f"{m.group(1)}e{m.group(2)}", text)
    return text


def _fraction(m: re.Match) -> str:
    """``\\frac{a}{b}`` as ``a/b``; after a digit as `` a/b``, since ``1\\frac{1}{4}`` is the mixed number 1 1/4."""
    glued = m.start() > 0 and m.string[m.start() - 1].isdigit()
    return f"{' ' if glued else ''}{m.group(1)}/{m.group(2)}"


def _digits_ok(*parts: str | None) -> bool:
    return sum(len(p) for p in parts if p) <= MAX_DIGITS


def _token_value(m: re.Match) -> Number | None:
    g = m.groupdict()
    if g["mixed"] is not None:
        den = int(g["mden"])
        if den == 0:
            return None
        value, places = int(g["mixed"]) + Fraction(int(g["mnum"]), den), None
    elif g["num"] is not None:
        if not _digits_ok(g["num"], g["den"]) or int(g["den"]) == 0:
            return None
        value, places = Fraction(int(g["num"]), int(g["den"])), None
    else:
        whole = g["int"] if g["int"] is not None else "0"
        decimals = (g["frac"] or "")[1:] or g["dcomma"] or (g["bare"] or "")[1:]
        whole = re.sub(r"[^\d]", "", whole)
        if not _digits_ok(whole, decimals):
            return None
        value = Fraction(int(whole + decimals), 10 ** len(decimals))
        places = len(decimals) if decimals else None
        if g["exp"] is not None:
            exp = int(g["exp"])
            if abs(exp) > MAX_EXPONENT:
                return None
            value *= Fraction(10) ** exp
            places = (len(decimals) - exp) if places is not None or exp < 0 else None
    return Number(-value if g["sign"] else value, places)


def number_tokens(text: str, limit: int | None = None) -> list[tuple[Number | None, int, int]]:
    """``(number, start, end)`` of every number in already-normalised ``text``, in order.

    ``number`` is None for a number too long or too large to read (it still counts as a candidate).

    With ``limit``, reading stops once more than ``limit`` numbers are found (callers that
    want one number need not read a hundred thousand).
    A number right after ``^`` (or ``**``) is an exponent: of the number before it, the two
    read as one power (``10^3`` -> 1000), or of a unit (``m^2``), then it is skipped.
    """
    out: list[tuple[Number | None, int, int]] = []
    for seen, m in enumerate(_NUMBER.finditer(text)):
        if limit is not None and seen > 2 * limit + 1:
            break  # more numbers (exponents included) than any committed answer has
        number = _token_value(m)
        if number is None:
            out.append((None, m.start(), m.end()))  # unreadable: still a candidate
            continue
        before = text[max(0, m.start() - 8) : m.start()]
        if _EXPONENT_BEFORE.search(before):
            if out and text[out[-1][2] : m.start()].strip().lstrip("^{*").strip() == "" and out[-1][0] is not None:
                base, start, _ = out.pop()
                exp = number.value
                if exp.denominator == 1 and abs(exp) <= MAX_EXPONENT and base.value != 0 and abs(base.value) < 10**6:
                    out.append((Number(base.value ** int(exp), None), start, m.end()))
                else:
                    out.append((None, start, m.end()))
            continue  # a unit's exponent (m^2)
        out.append((number, m.start(), m.end()))
        if limit is not None and len(out) > limit:
            break
    return out


def find_numbers(text: str) -> list[Fraction]:
    """All number values in ``text``, in order, as exact fractions (unreadable ones left out)."""
    return [n.value for n, _, _ in number_tokens(normalize(text)) if n is not None]


def _single(tokens: list[tuple[Number | None, int, int]]) -> Number | None:
    """The one value the tokens name (repeats allowed), else None."""
    if not tokens or len(tokens) > MAX_CANDIDATES or any(n is None for n, _, _ in tokens):
        return None
    first = tokens[0][0]
    return first if all(numbers_equal(n, first) for n, _, _ in tokens[1:]) else None


def _trailing_parentheticals(text: str) -> tuple[str, list[str]]:
    """Split off balanced ``(...)`` / ``[...]`` groups that end the text: ``(body, [groups])``."""
    groups: list[str] = []
    body = text.rstrip(" \t\n.;:!")
    while body.endswith((")", "]")):
        close = body[-1]
        open_ = "(" if close == ")" else "["
        depth, i = 0, len(body) - 1
        while i >= 0:
            depth += (body[i] == close) - (body[i] == open_)
            if depth == 0:
                break
            i -= 1
        if i <= 0 or not body[:i].strip():
            break  # unbalanced, or the whole text is one group ("(18)"): not a trailing remark
        groups.append(body[i + 1 : -1])
        body = body[:i].rstrip(" \t\n.;:!,")
    return body, groups


def _names_other(statement: str, value: Number) -> bool:
    """Whether a statement beside the answer (an equation's other side, a remark) names another candidate.

    One value: it must equal ``value``. Several values: a list of candidates ("19, 20") names
    others, an expression ("16 - 3 - 4", "9 * $2") names none of its own.
    """
    tokens = number_tokens(statement, MAX_CANDIDATES)
    if not tokens:
        return False
    other = _single(tokens)
    if other is not None:
        return not numbers_equal(other, value)
    return not _ARITHMETIC.search(statement)


def read_committed(text: str) -> Number | None:
    """The one number an answer text commits to, or None (see the module docstring).

    ``text`` is raw answer text (it is normalised here).
    """
    simple = _SIMPLE.fullmatch(text)
    if simple:  # the common case, "18" or "-3.5": no clean-up needed
        sign, whole, decimals = simple.group(1), simple.group(2), simple.group(3) or ""
        value = Fraction(int(whole + decimals), 10 ** len(decimals))
        return Number(-value if sign else value, len(decimals) or None)
    t = unwrap_boxed(normalize(text))
    if _HEDGE_WORD.search(t) or _NOT_A_NUMBER.search(t):
        return None  # "x = 19 or x = 20", "19 ± 1", "log 18", "\\frac{18}{x}"
    body, remarks = _trailing_parentheticals(t)
    *before, last = _EQUALS.split(body)
    value = _single(number_tokens(last, MAX_CANDIDATES))
    if value is None:
        return None
    if any(_names_other(part, value) for part in before):
        return None  # "19 = 20", "[18, 20] = 20": the chain does not settle on one value
    for remark in remarks:
        if any(_names_other(part, value) for part in _EQUALS.split(remark)):
            return None  # "18 (19)", "18 (19, 20)", "20 (9 * 2 = 18)"
    return value  # remarks that are words, checks ending in the value, or derivations


def final_statement(text: str) -> str | None:
    """What a text's last "answer is ..." / "Answer: ..." statement says, to the end of its sentence or line.

    None when the text has no such statement. Used for whole responses without ``<answer>``.
    """
    anchors = [m.end() for m in _ANSWER_IS.finditer(text)]
    if not anchors:
        return None
    line = text[anchors[-1] :].strip().split("\n", 1)[0]
    return _SENTENCE_END.split(line, maxsplit=1)[0].strip()


def answer_number(response: str) -> Number | None:
    """The number a response answers with (see the module docstring), or None."""
    text, tagged = answer_text(response)
    if tagged:
        return read_committed(text)
    t = normalize(text)
    boxed = last_boxed(t)
    if boxed is not None:
        return read_committed(boxed)
    final = t.rfind("####")
    if final >= 0:
        return read_committed(t[final + 4 :].strip().split("\n", 1)[0])
    statement = final_statement(t)
    if statement:
        found = read_committed(statement)
        if found is not None:
            return found
    if len(t) > TAIL_CHARS:
        cut = t.find(" ", len(t) - TAIL_CHARS, len(t) - TAIL_CHARS + 64)
        t = t[cut if cut >= 0 else len(t) - TAIL_CHARS :]
    tokens = [tok for tok in number_tokens(t) if tok[0] is not None]
    if not tokens:
        return None
    if len(tokens) >= 2 and _HEDGE_GAP.match(t[tokens[-2][2] : tokens[-1][1]]):
        return None  # "... 18 or 19": a hedge, not an answer
    return tokens[-1][0]


def read_plain(text: str) -> Number | None:
    """The number a text is, when it is only a number (``18``, ``$18``, ``-3``, ``1 1/4``, ``\\boxed{18}``), else None.

    Units, percent signs, words or a second number make it not plain.
    """
    t = unwrap(normalize(text))
    if t.startswith("$"):
        t = t[1:].lstrip()
    tokens = number_tokens(t, 1)
    if len(tokens) != 1 or tokens[0][0] is None:
        return None
    number, start, end = tokens[0]
    return number if start == 0 and end == len(t) else None


def plain_number(text: str) -> Fraction | None:
    """The value of :func:`read_plain`, or None."""
    found = read_plain(text)
    return None if found is None else found.value


def reference_number(task: str, reference: str) -> Fraction:
    """The gold value (see :func:`read_reference`)."""
    return read_reference(task, reference).value


def read_reference(task: str, reference: str) -> Number:
    """The gold number: the number after the last ``####`` (gsm8k worked solutions), else the last number.

    Raises :class:`~pasr.errors.PasrError` when there is none.
    """
    ref = str(reference)
    final = ref.rfind("####")
    tail = normalize(ref[final + 4 :] if final >= 0 else ref)
    boxed = last_boxed(tail)
    tokens = [tok for tok in number_tokens(boxed if boxed is not None else tail) if tok[0] is not None]
    if not tokens:
        raise PasrError(
            f"{task} reference has no number (expected '#### <number>' or a bare number): {str(reference)[-80:]!r}; "
            "fix the record's reference field"
        )
    return tokens[-1][0]


def numbers_equal(a: Number | Fraction | int, b: Number | Fraction | int) -> bool:
    """The one equality rule for numbers (see the module docstring).

    Exact values compare exactly. When one side is a written decimal with ``k`` places, the
    two are equal when their difference is at most half a unit of the ``k``-th place (of the
    coarser decimal, if both are) and at most :data:`REL_TOLERANCE` of the larger magnitude.
    """
    a = a if isinstance(a, Number) else Number(Fraction(a))
    b = b if isinstance(b, Number) else Number(Fraction(b))
    if a.value == b.value:
        return True
    places = [p for p in (a.places, b.places) if p is not None]
    if not places:
        return False
    diff = abs(a.value - b.value)
    return 2 * diff <= Fraction(10) ** -min(places) and diff <= REL_TOLERANCE * max(abs(a.value), abs(b.value))


def score_numeric(task: str, response: str, reference: str) -> float:
    """1.0 when the number the response commits to equals the reference's, else 0.0.

    Raises :class:`~pasr.errors.PasrError` when the reference has no number.
    """
    gold = read_reference(task, reference)
    pred = answer_number(response)
    return 1.0 if pred is not None and numbers_equal(pred, gold) else 0.0
