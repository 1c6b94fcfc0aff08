"""Where a response's answer is: the last ``<answer>`` block, else the whole response.

Every family reads the answer the same way, so a model is graded on what it
put in ``<answer>`` when it used the tag, and is still graded (on its whole
text) when it forgot it. Whether the tag was present matters to some families:
inside the tag a short answer is expected and ambiguous answers get no credit;
over a whole response the last candidate wins.
"""

from __future__ import annotations

import re
import string

from pasr.format import extract_answer

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def answer_text(response: str | None) -> tuple[str, bool]:
    """``(text, tagged)``: the content of the last ``<answer>`` (tagged=True), else the stripped response."""
    response = response or ""
    found = extract_answer(response)
    if found is not None:
        return found, True
    return response.strip(), False


def normalize_words(text: str) -> str:
    """Lower-case, punctuation to spaces, single spaces: for comparing option texts."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def contains_phrase(haystack: str, phrase: str) -> list[int]:
    """Word-bounded start offsets of normalised ``phrase`` in normalised ``haystack``."""
    if not phrase:
        return []
    return [m.start() for m in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", haystack)]


def exact_option(text: str, options: dict[str, str]) -> str | None:
    """The label whose option text the answer is, or None.

    Compared as written first (case and signs matter: ARC's ``Cc or cc`` vs ``CC or Cc``,
    MMLU's ``-14`` vs ``14``), then case- and punctuation-free. Duplicate option texts
    (CommonsenseQA has a few) name no single option.
    """

    def as_written(s: str) -> str:
        return " ".join(s.split()).rstrip(".").strip()

    for norm in (as_written, normalize_words):
        target = norm(text)
        same = [label for label, option in options.items() if norm(option) and norm(option) == target]
        if len(same) == 1:
            return same[0]
        if same:
            return None
    return None


def named_options(text: str, options: dict[str, str]) -> dict[str, list[int]]:
    """Labels whose option text occurs (word-bounded, normalised) in ``text``, with the offsets.

    An occurrence inside an occurrence of a longer option ("bed" inside "bed sheet") does
    not count for the shorter one.
    """
    norm = normalize_words(text)
    texts = {label: normalize_words(option) for label, option in options.items()}
    hits = {label: contains_phrase(norm, t) for label, t in texts.items() if t}
    spans = [(p, p + len(texts[label])) for label, starts in hits.items() for p in starts]
    out = {}
    for label, starts in hits.items():
        size = len(texts[label])
        alone = [p for p in starts if not any(a <= p and p + size <= b and b - a > size for a, b in spans)]
        if alone:
            out[label] = alone
    return out
