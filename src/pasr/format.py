"""The PASR response grammar: parse a completion into a :class:`Trace` and judge its format.

A PASR completion reasons inside ``<think>``, may pause there to correct itself inside
``<refine>``, and ends with the final answer inside ``<answer>``::

    <think> reasoning ... <refine> what to fix </refine> ... more reasoning </think>
    <answer> final answer </answer>

The paper states the format constraints informally (C1: think then answer, C2: refine only
inside think, C3: tags well formed). This module makes them precise. A completion is
**valid** when all of the following hold:

1. Each of ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` occurs exactly once, in
   that order. Duplicates are invalid (a regex that matches the first pair would miss them).
2. ``<refine>`` and ``</refine>`` occur only between ``<think>`` and ``</think>``; every
   ``<refine>`` is closed by a ``</refine>`` before the next ``<refine>`` (no nesting), and
   every ``</refine>`` closes an open ``<refine>``.
3. Outside the tags there is only whitespace: before ``<think>``, between ``</think>`` and
   ``<answer>``, and after ``</answer>``, where trailing end-of-turn tokens
   (:data:`END_OF_TURN_TOKENS`, e.g. ``<|im_end|>``) are also allowed.
4. Nothing is empty: the think content has non-whitespace text outside its refine segments
   (refining nothing is not reasoning), each refine segment and the answer have
   non-whitespace text.

Tags are matched exactly (lowercase, no spaces or attributes); anything else, such as
``<Think>``, is plain text. Content may span lines. Whitespace means ``str.isspace``.

The parser is a small tokenizer over tag occurrences rather than one regular expression,
so each broken rule gets its own readable message in :attr:`Trace.violations` and the
segments are still extracted, best effort, from invalid text (for instance a completion cut
off at the token limit still reports the refine segments it finished). Text-outside-tags and
emptiness checks (rules 3-4) are reported only once the skeleton of rule 1 is right, and a
stretch outside the tags that holds a stray refine tag is reported once (under rule 2), so the
messages point at the first thing to fix rather than at its consequences.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
REFINE_OPEN, REFINE_CLOSE = "<refine>", "</refine>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, REFINE_OPEN, REFINE_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
"""Every tag of the grammar."""

END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end_of_text|>")
"""Special tokens a decoder may leave at the end of a completion; allowed after ``</answer>``."""

_TAG = re.compile(r"</?(?:think|refine|answer)>")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_SKELETON = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
_EXCERPT = 40


@dataclass(frozen=True)
class Refine:
    """One ``<refine>...</refine>`` segment: *what* was refined and *when*.

    ``offset`` is the character index of ``<refine>`` in the full text; ``position`` is the
    same place relative to the think content, in [0, 1] (0: at its start, 1: at its end).
    """

    text: str
    offset: int
    position: float


@dataclass
class Trace:
    """A completion split into its parts, with the verdict on its format.

    ``think`` is the content between ``<think>`` and ``</think>`` (refine markup included),
    ``refines`` its refine segments, ``answer`` the content of the last answer pair; all
    texts are stripped of surrounding whitespace. A part that is absent is ``None``.
    ``violations`` lists, readably, every rule the text breaks; ``valid`` is true when it
    is empty.
    """

    think: str | None
    refines: list[Refine]
    answer: str | None
    valid: bool
    violations: list[str] = field(default_factory=list)

    @property
    def refined(self) -> bool:
        """Whether any complete refine segment was found (even in an invalid completion)."""
        return bool(self.refines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: think, refines [{text, offset, position}], answer, valid, violations, refined."""
        return {
            "think": self.think,
            "refines": [asdict(r) for r in self.refines],
            "answer": self.answer,
            "valid": self.valid,
            "violations": list(self.violations),
            "refined": self.refined,
        }


def extract_answer(text: str) -> str | None:
    """Content of the last ``<answer>...</answer>`` in ``text`` (stripped), or None when absent.

    Deliberately lenient (it ignores validity), so accuracy can be scored for any completion
    that produced an answer; :func:`parse` reports the same answer in :attr:`Trace.answer`.
    """
    found = _ANSWER.findall(text or "")
    return found[-1].strip() if found else None


def format_reward(text: str) -> float:
    """The format reward r_format: +1.0 for a valid completion, -1.0 otherwise."""
    return 1.0 if parse(text).valid else -1.0


@dataclass(frozen=True)
class _Tag:
    name: str
    start: int
    end: int


def _excerpt(s: str) -> str:
    s = s.strip()
    return repr(s if len(s) <= _EXCERPT else s[: _EXCERPT - 1] + "…")


def _only_end_of_turn(s: str) -> bool:
    """Whether ``s`` is whitespace and end-of-turn tokens only."""
    s = s.lstrip()
    while s:
        for token in END_OF_TURN_TOKENS:
            if s.startswith(token):
                s = s[len(token) :].lstrip()
                break
        else:
            return False
    return True


def parse(text: str) -> Trace:
    """Split ``text`` into think, refine segments and answer, and check the grammar.

    Never raises. Extraction is best effort: the think content runs from the first
    ``<think>`` to the next ``</think>`` (or, when that is missing, to the next ``<answer>``
    or the end of the text); every ``<refine>`` closed by a ``</refine>`` is reported,
    wherever it is, with its position clamped to [0, 1] (relative to the whole text when
    there is no ``<think>``); the answer is :func:`extract_answer`'s.
    """
    text = text if isinstance(text, str) else ("" if text is None else str(text))
    tags = [_Tag(m.group(), m.start(), m.end()) for m in _TAG.finditer(text)]
    violations: list[str] = []

    # Rule 1: the skeleton, each tag once and in order.
    counts = {name: sum(t.name == name for t in tags) for name in _SKELETON}
    for name in _SKELETON:
        if counts[name] == 0:
            violations.append(f"missing {name}")
        elif counts[name] > 1:
            violations.append(f"duplicate {name}: found {counts[name]}, expected exactly one")
    skeleton = [t for t in tags if t.name in _SKELETON]
    skeleton_ok = not violations
    if skeleton_ok and [t.name for t in skeleton] != list(_SKELETON):
        skeleton_ok = False
        violations.append(
            "tags out of order: expected " + " ".join(_SKELETON) + ", found " + " ".join(t.name for t in skeleton)
        )

    # Best-effort think span: first <think> to the next </think> | <answer> | end of text.
    think_open = next((t for t in tags if t.name == THINK_OPEN), None)
    if think_open is not None:
        content_start = think_open.end
        after = [t for t in tags if t.start >= think_open.end]
        end_tag = next((t for t in after if t.name == THINK_CLOSE), None)
        if end_tag is None:
            end_tag = next((t for t in after if t.name == ANSWER_OPEN), None)
        content_end = end_tag.start if end_tag is not None else len(text)
        think = text[content_start:content_end]
    else:
        content_start, content_end, think = 0, len(text), None

    def inside_think(t: _Tag) -> bool:
        return think is not None and content_start <= t.start < content_end

    # Rule 2: refine segments, paired with a stack so nesting is seen, not guessed.
    pairs: list[tuple[_Tag, _Tag]] = []
    open_refines: list[_Tag] = []
    for t in tags:
        if t.name not in (REFINE_OPEN, REFINE_CLOSE):
            continue
        if not inside_think(t):
            violations.append(f"{t.name} at char {t.start} is outside <think>")
        if t.name == REFINE_OPEN:
            if open_refines:
                violations.append(
                    f"nested <refine> at char {t.start}: the <refine> at char {open_refines[-1].start} is still open"
                )
            open_refines.append(t)
        elif open_refines:
            pairs.append((open_refines.pop(), t))
        else:
            violations.append(f"</refine> at char {t.start} has no opening <refine>")
    for t in open_refines:
        violations.append(f"unclosed <refine> at char {t.start}")
    pairs.sort(key=lambda p: p[0].start)

    span = max(1, content_end - content_start)
    refines = [
        Refine(
            text=text[o.end : c.start].strip(),
            offset=o.start,
            position=min(1.0, max(0.0, (o.start - content_start) / span)),
        )
        for o, c in pairs
    ]

    if skeleton_ok:
        # Rule 3: only whitespace (and trailing end-of-turn tokens) outside the tags.
        t_open, t_close, a_open, a_close = skeleton
        # A region holding a stray refine tag was reported above; one message per mistake.
        before, between, after_answer = text[: t_open.start], text[t_close.end : a_open.start], text[a_close.end :]
        if before.strip() and not _TAG.search(before):
            violations.append(f"text before <think> at char 0: {_excerpt(before)}")
        if between.strip() and not _TAG.search(between):
            violations.append(f"text between </think> and <answer> at char {t_close.end}: {_excerpt(between)}")
        if not _only_end_of_turn(after_answer) and not _TAG.search(after_answer):
            violations.append(f"text after </answer> at char {a_close.end}: {_excerpt(after_answer)}")
        # Rule 4: nothing empty.
        reasoning, cursor, depth = [], t_open.end, 0
        for t in (t for t in tags if t_open.end <= t.start < t_close.start):
            if depth == 0:
                reasoning.append(text[cursor : t.start])
            depth = depth + 1 if t.name == REFINE_OPEN else max(0, depth - 1)
            cursor = t.end
        if depth == 0:
            reasoning.append(text[cursor : t_close.start])
        if not "".join(reasoning).strip():
            violations.append("empty <think>: it needs reasoning text outside <refine>")
        for r in refines:
            if not r.text:
                violations.append(f"empty <refine> at char {r.offset}")
        if not text[a_open.end : a_close.start].strip():
            violations.append("empty <answer>")

    return Trace(
        think=think.strip() if think is not None else None,
        refines=refines,
        answer=extract_answer(text),
        valid=not violations,
        violations=violations,
    )

