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


def exact_option(text: str, options: dict[str, str]) -> str | None:
    """The label whose option text the answer is, or None.

    Compared as written first (case and signs matter: ARC's ``Cc or cc`` vs ``CC or Cc``,
    MMLU's ``-14`` vs ``14``), then case- and punctuation-free. Duplicate option texts
    (CommonsenseQA has a few) name no single option.
    """

    for norm in (_as_written, normalize_words):
        target = norm(text)
        if not target:
            continue
        same = [label for label, option in options.items() if norm(option) == target]
        if len(same) == 1:
            return same[0]
        if same:
            return None
    return None


def _as_written(s: str) -> str:
    return " ".join(s.split()).rstrip(".").strip()


# --- answer clean-up shared by the families ---------------------------------------------

_EMPHASIS = re.compile(r"(?<![\w)\]}*_])(?:\*\*|__|\*|_)(?=\S)|(?<=\S)(?:\*\*|__|\*|_)(?![\w(\[{*_])")
_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")


def strip_markdown(text: str) -> str:
    """Drop markdown emphasis and code marks (``**73**``, ``*73*``, ``__73__``, `` `73` ``).

    Emphasis marks are dropped only where they open or close a run (not between word
    characters), so ``2*3``, ``2**3`` and ``x_1`` keep their meaning.
    """
    return _EMPHASIS.sub("", text.replace("`", ""))


def boxes(text: str) -> list[tuple[int, int, int]]:
    """``(start, content_start, close)`` of every complete ``\\boxed{...}``, by position of its start; one pass."""
    opens = {m.end(): m.start() for m in _BOX_OPEN.finditer(text)}
    if not opens:
        return []
    found, stack = [], []
    for i, c in enumerate(text):
        if c == "{":
            stack.append(i + 1)
        elif c == "}" and stack:
            opened = stack.pop()
            if opened in opens:
                found.append((opens[opened], opened, i))
    return sorted(found)


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced; else None."""
    found = boxes(text)
    if not found:
        return None
    start, content, close = max(found, key=lambda b: b[0])
    return text[content:close].strip()


def unwrap_boxed(text: str) -> str:
    """``text`` with every complete ``\\boxed{X}`` replaced by ``X`` (an unclosed box is left as is)."""
    found = boxes(text)
    cuts = sorted([(s, c) for s, c, _ in found] + [(e, e + 1) for _, _, e in found])
    if not cuts:
        return text
    out, cursor = [], 0
    for a, b in cuts:
        out.append(text[cursor:a])
        cursor = b
    out.append(text[cursor:])
    return "".join(out)


def unwrap(text: str) -> str:
    """Strip layers of ``$...$`` / ``\\(...\\)`` / ``\\[...\\]`` / ``\\boxed{...}`` around the whole text, and a final period."""
    text = text.strip()
    for _ in range(4):
        before = text
        text = text.rstrip(".").strip()
        if len(text) >= 2 and text[0] == "$" and text[-1] == "$":
            text = text.strip("$").strip()
        if text.startswith(("\\(", "\\[")) and text.endswith(("\\)", "\\]")):
            text = text[2:-2].strip()
        found = boxes(text) if text.startswith("\\") else []
        if found and found[0][0] == 0 and found[0][2] == len(text) - 1:
            text = text[found[0][1] : -1].strip()
        if text == before:
            break
    return text
