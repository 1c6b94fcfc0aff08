"""Multiple choice (ARC, CommonsenseQA, MMLU, GPQA): which option label did the model pick?

Labels are letters ``A``-``E`` (more when the question lists more options) and, for the few
ARC items labelled ``1``-``4``, digits. A digit reference matches the same digit or the
letter at that position (``2`` == ``B``); a letter reference matches only that letter.

Reading the label, in order of trust (the first rule that finds something decides):

1. the whole answer is a label: ``B``, ``(b)``, ``Option B``, ``\\boxed{B}``;
2. an explicit phrase: "the answer is (B)", "Answer: B", "correct option is B" (last one wins);
3. a leading label: "B: change the height", "(B) ...", "B. ...";
4. the option's text, when the question (with its ``A: ...`` lines) is given: the answer equals
   one option's text, or (inside ``<answer>``) names exactly one option;
5. a parenthesised label "(B)" anywhere;
6. a standalone capital letter (or digit, for digit-labelled items).

The article problem: "A cat sat" starts with the letter ``A`` (and "I think" with ``I`` once
there are ten options). Such a capital followed by a lower-case word is treated as a word by
rules 2 and 6 and used only as a last resort, when no other candidate exists. Inside ``<answer>``, rules 5 and 6 give no credit when
several different labels appear ("B or C"), so naming every option does not pay.
"""

from __future__ import annotations

import re
import string

from pasr.errors import PasrError
from pasr.scoring.extract import answer_text, exact_option, named_options

_OPTION_LINE = re.compile(r"^[ \t]*\(?([A-Z]|[1-9])[ \t]*[\).:][ \t]+(\S.*?)[ \t]*$", re.MULTILINE)
_WORDLIKE = ("A", "I")  # labels that are also English words: "A cat", "I think"
_WRAPPERS = re.compile(r"\\(?:boxed|text|textbf|mathrm|mathbf)\{([^{}]*)\}")


def parse_options(question: str | None) -> dict[str, str]:
    """Option label -> text, read from ``A: ...`` / ``A. ...`` / ``(A) ...`` / ``1: ...`` lines of a question.

    When both letter- and digit-labelled lines exist (a numbered list in the stem), the
    labelled run that starts at ``A`` (else ``1``) and is longest wins.
    """
    if not question:
        return {}
    found: dict[str, str] = {}
    for m in _OPTION_LINE.finditer(question):
        found[m.group(1)] = m.group(2)  # the last occurrence: options follow the stem
    letters = _run(found, string.ascii_uppercase)
    digits = _run(found, "123456789")
    best = letters if len(letters) >= len(digits) else digits
    return best if len(best) >= 2 else {}


def _run(found: dict[str, str], alphabet: str) -> dict[str, str]:
    out = {}
    for label in alphabet:
        if label not in found:
            break
        out[label] = found[label]
    return out


def _clean(text: str) -> str:
    for _ in range(2):
        text = _WRAPPERS.sub(r"\1", text)
    return re.sub(r"[*$`_]", "", text).strip()


def _is_article(text: str, end: int) -> bool:
    """``A`` (or the pronoun ``I``, for ten-option items) followed by a lower-case word is a word, not a label."""
    return bool(re.match(r"\s+[a-z]", text[end:]))


def extract_label(
    text: str,
    *,
    tagged: bool = True,
    letters: str = "ABCDE",
    digits: str = "",
    options: dict[str, str] | None = None,
) -> str | None:
    """The option label ``text`` picks (upper-case letter or digit), or None. See the module docstring."""
    t = _clean(text)
    if not t:
        return None
    cls = f"[{letters}{digits}]"
    cls_i = f"[{letters}{letters.lower()}{digits}]"
    articles: str | None = None  # a word-like label seen (used only when nothing else is found)

    # 1. the whole answer is a label
    m = re.fullmatch(
        rf"[\s(\[{{'\"]*(?:(?i:option|choice|answer)\s*[:#]?\s*)?[(\[]?({cls_i})[)\]]?[\s)\]}}'\".:]*", t
    )
    if m:
        return m.group(1).upper()

    # 2. explicit phrase; the last one wins
    explicit = None
    for m in re.finditer(
        rf"(?i:answer|option|choice)(?:\s+(?i:is|would\s+be|should\s+be|will\s+be))?\s*[:=\-]?\s*"
        rf"(?:(?i:option|choice)\s*)?([(\[])?({cls})(?![\w'])",
        t,
    ):
        if m.group(2) in _WORDLIKE and not m.group(1) and _is_article(t, m.end()):
            articles = articles or m.group(2)
            continue
        explicit = m.group(2)
    if explicit:
        return explicit

    # 3. leading label: "B: text", "(B) text", "B. text"
    m = re.match(rf"\s*[(\[]?({cls})\s*[)\].:](?!\d)", t)
    if m:
        return m.group(1)

    # 4. the option's own text
    if options:
        by_text = _label_by_text(t, options, tagged)
        if by_text:
            return by_text

    # 5. a parenthesised label anywhere
    found = re.findall(rf"[(\[]({cls})[)\]]", t)
    if found:
        return _pick(found, tagged)

    # 6. standalone labels (not the article "A")
    found = []
    for m in re.finditer(rf"(?<![\w'\-])({cls})(?![\w'\-])", t):
        if m.group(1) in _WORDLIKE and _is_article(t, m.end()):
            articles = articles or m.group(1)
            continue
        found.append(m.group(1))
    if found:
        return _pick(found, tagged)
    return articles if articles else None


def _pick(found: list[str], tagged: bool) -> str | None:
    """Inside ``<answer>`` several different labels are ambiguous (None); over a whole response the last wins."""
    if tagged:
        return found[0] if len(set(found)) == 1 else None
    return found[-1]


def _label_by_text(text: str, options: dict[str, str], tagged: bool) -> str | None:
    exact = exact_option(text, options)
    if exact or not tagged:
        return exact  # a whole response discusses several options; naming one does not pick it
    named = named_options(text, options)
    return next(iter(named)) if len(named) == 1 else None


def reference_label(reference: str, options: dict[str, str] | None = None) -> str:
    """The gold label: ``B``, ``(B)``, ``b`` or ``2``; or an option's text when the options are known."""
    ref = str(reference).strip()
    m = re.fullmatch(r"[\s(\[]*([A-Za-z]|[1-9])[\s)\].:]*", ref)
    if m:
        return m.group(1).upper()
    if options:
        by_text = exact_option(ref, options)
        if by_text:
            return by_text
    raise PasrError(
        f"choice reference must be an option label (a letter A-E or a digit 1-9), got {ref[:80]!r}; "
        "fix the record's reference field"
    )


def _label_sets(gold: str, options: dict[str, str]) -> tuple[str, str]:
    """Letters ``A``..max(E, last option letter, gold); digits only for digit-labelled items."""
    upper = string.ascii_uppercase
    last_letter = max([k for k in options if k.isalpha()] + [gold if gold.isalpha() else "E", "E"])
    letters = upper[: upper.index(last_letter) + 1]
    digit_labels = [int(k) for k in options if k.isdigit()] + ([int(gold)] if gold.isdigit() else [])
    digits = "123456789"[: max(4, *digit_labels)] if digit_labels else ""
    return letters, digits


def score_choice(response: str, reference: str, question: str | None = None) -> float:
    """1.0 when the response picks the reference option, else 0.0."""
    options = parse_options(question)
    gold = reference_label(reference, options)
    letters, digits = _label_sets(gold, options)
    text, tagged = answer_text(response)
    picked = extract_label(text, tagged=tagged, letters=letters, digits=digits, options=options)
    if picked is None:
        return 0.0
    if picked == gold:
        return 1.0
    if gold.isdigit() and picked.isalpha():
        return 1.0 if string.ascii_uppercase.index(picked) + 1 == int(gold) else 0.0
    return 0.0
