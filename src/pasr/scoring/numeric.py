"""Numeric answers (``gsm8k``, ``arith``): read one number from each side and compare values.

GSM8K references are worked solutions ending ``#### 18``; the synthetic ``arith``
task stores the bare integer. Models write ``$18``, ``18.0``, ``1,000``, ``18 dollars``
or ``\\boxed{18}``, so the number is read leniently (currency, thousands separators,
units, LaTeX spacing, percent) and compared as a value, not as a string.
"""

from __future__ import annotations

import re
from fractions import Fraction

from pasr.errors import PasrError
from pasr.scoring.extract import answer_text

# A number not glued to a word or to another number: "-5", "1,000", "18.50", ".5", "3/4".
# The minus sign counts only when it does not follow a word character ("16-3" is 16 and 3).
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>-)?"
    r"(?:(?P<num>\d+)\s*/\s*(?P<den>\d+)(?![\d/])"  # plain fraction 3/4
    r"|(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"  # 1,000 / 18 / 18.50
    r"|(?P<bare>\.\d+))"  # .5
    r"(?!\d)"
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{\s*(-?\d+)\s*\}\{\s*(\d+)\s*\}")
_BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


def _clean(text: str) -> str:
    """Undo LaTeX number spellings so the plain regex sees ``1000`` / ``3/4``."""
    text = text.replace("{,}", ",").replace("\\!", "").replace("\\$", "$").replace("\\%", "%")
    text = re.sub(r"(?<=\d)\\[,;: ](?=\d)", "", text)  # thin spaces inside numbers
    text = _LATEX_FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
    return text


def find_numbers(text: str) -> list[Fraction]:
    """All numbers in ``text``, in order, as exact fractions (no float rounding on big integers)."""
    values: list[Fraction] = []
    for m in _NUMBER.finditer(_clean(text or "")):
        if m.group("num") is not None:
            den = int(m.group("den"))
            if den == 0:
                continue
            value = Fraction(int(m.group("num")), den)
        elif m.group("int") is not None:
            value = Fraction(m.group("int").replace(",", "") + (m.group("frac") or ""))
        else:
            value = Fraction(m.group("bare"))
        values.append(-value if m.group("sign") else value)
    return values


def last_number(text: str) -> Fraction | None:
    """The last number in ``text`` (a ``\\boxed{}`` number wins when present), or None."""
    boxed = _BOXED.findall(text or "")
    for content in reversed(boxed):
        found = find_numbers(content)
        if found:
            return found[-1]
    found = find_numbers(text)
    return found[-1] if found else None


def response_number(response: str) -> Fraction | None:
    """The number a response answers with: from ``<answer>`` when present, else the response's last number.

    Inside ``<answer>`` the last number is taken too ("9 * 2 = 18" -> 18). An ``<answer>``
    without any number yields None: the model answered, but not with a number.
    """
    text, _ = answer_text(response)
    return last_number(text)


def reference_number(task: str, reference: str) -> Fraction:
    """The gold value: the number after ``####`` (gsm8k worked solutions) or the bare number."""
    ref = str(reference)
    final = _GSM8K_FINAL.search(ref)
    value = last_number(final.group(1)) if final else last_number(ref)
    if value is None:
        raise PasrError(
            f"{task} reference has no number (expected '#### <number>' or a bare number): {ref[-80:]!r}; "
            "fix the record's reference field"
        )
    return value


def same_number(a: Fraction | int, b: Fraction | int) -> bool:
    """Exactly equal values (``18.0`` == ``18``, ``0.5`` == ``1/2``; ``11111111101`` != ``11111111100``).

    Values are exact fractions read from the text, so no tolerance is needed, and none is
    wanted: a float tolerance would call large neighbouring integers equal.
    """
    return Fraction(a) == Fraction(b)


def score_numeric(task: str, response: str, reference: str) -> float:
    """1.0 when the response's number equals the reference's, else 0.0."""
    gold = reference_number(task, reference)
    pred = response_number(response)
    return 1.0 if pred is not None and same_number(pred, gold) else 0.0
