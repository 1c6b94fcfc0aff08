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
3. Outside the tags there is only blank text (see below): before ``<think>``, between
   ``</think>`` and ``<answer>``, and after ``</answer>``, where end-of-turn tokens are also
   allowed, any number, in any order, with blank text between them: those of
   :data:`END_OF_TURN_TOKENS` (Qwen/ChatML, Llama 2/3/4, Mistral, Gemma, DeepSeek, Phi-3,
   Command-R, OpenChat, ...) and any the caller passes as ``end_tokens`` (e.g. its tokenizer's
   ``eos_token``). Anywhere else an end-of-turn token is plain text.
4. Nothing is empty: the think content has visible (non-blank) text outside its refine
   segments (refining nothing is not reasoning), and each refine segment and the answer have
   visible text. An empty refine segment is only a violation: it is not listed in
   :attr:`Trace.refines` and does not make a completion :attr:`Trace.refined`.

**Blank** text is whitespace (``str.isspace``, which covers non-ASCII spaces such as U+00A0
and U+3000) and invisible characters, which are not content: every control character
(category Cc) and format character (category Cf: zero-width space, non-joiner and joiner
U+200B-U+200D, bidi marks and embeddings U+200E/U+200F, U+202A-U+202E, U+2066-U+2069, word
joiner and invisible operators U+2060-U+2064, soft hyphen U+00AD, byte order mark U+FEFF, tag
characters, ...), the other default-ignorable code points of Unicode (Hangul fillers U+115F,
U+1160, U+3164, U+FFA0; variation selectors; combining grapheme joiner U+034F; ...), the
blank braille pattern U+2800, and anything that is not a letter, number, punctuation mark or
symbol (Unicode categories L, N, P, S): a combining mark with no base (U+0300, U+2D7F), private-use
and unassigned code points, and the placeholders U+FFFC, U+FFFD and U+1D159. In short, text is
content only if it has a character a reader can see. :func:`is_blank` and :func:`strip_blank`
apply this definition.
The texts of a :class:`Trace` (think, refine texts, answer) are stripped of blank characters at
both ends, like :func:`extract_answer`'s answer; blank characters inside a text are kept.

Tags are matched exactly (lowercase, no spaces or attributes); anything else, such as
``<Think>`` or a tag with a zero-width space inside, is plain text. Content may span lines.

**Continuations.** Chat templates that prefill the assistant turn (DeepSeek-R1 distills end
the generation prompt with ``<think>\\n``, so do some Qwen3 variants) produce completions
that start inside the think block. ``parse(completion, prefix="<think>\\n")`` judges
``prefix + completion`` as one response: the completion then must not open ``<think>`` again
(rule 1), and text in the prefix counts like text of the completion. Character offsets in a
:class:`Trace` (:attr:`Refine.offset`, ``at char N`` in violations) stay relative to the
completion, so ``completion.startswith("<refine>", refine.offset)`` holds; a tag inside the
prefix gets a negative offset (``-len(prefix)`` is the prefix's first character).
:attr:`Refine.position` is relative to the whole think content, prefix part included.

The parser is a small tokenizer over tag occurrences rather than one regular expression,
so each broken rule gets its own readable message in :attr:`Trace.violations` and the
segments are still extracted, best effort, from invalid text (for instance a completion cut
off at the token limit still reports the refine segments it finished). Text-outside-tags and
emptiness checks (rules 3-4) are reported only once the skeleton of rule 1 is right, and a
stretch outside the tags that holds a stray refine tag is reported once (under rule 2), so the
messages point at the first thing to fix rather than at its consequences. It never raises and
runs in time linear in the length of the text (no backtracking regular expressions).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
REFINE_OPEN, REFINE_CLOSE = "<refine>", "</refine>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, REFINE_OPEN, REFINE_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
"""Every tag of the grammar."""

END_OF_TURN_TOKENS = (
    # Qwen / ChatML (also SmolLM2, Yi, InternLM, Phi-4); <|endoftext|> also GPT-2, Phi-3, OLMo, Falcon.
    "<|im_end|>",
    "<|endoftext|>",
    # Llama 2, Mistral (every version), Zephyr, TinyLlama.
    "</s>",
    # Llama 3 (also Granite: <|end_of_text|>) and Llama 4.
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|eot|>",
    "<|eom|>",
    # Gemma 1-3.
    "<end_of_turn>",
    "<eos>",
    # DeepSeek V2/V3/R1 and R1 distills (full-width bars U+FF5C, U+2581 for the spaces), DeepSeek LLM and
    # Coder v1 (ASCII bars), the all-ASCII spelling some runtimes print, DeepSeek-Coder-Instruct.
    "<\uff5cend\u2581of\u2581sentence\uff5c>",
    "<|end\u2581of\u2581sentence|>",
    "<|end_of_sentence|>",
    "<|EOT|>",
    # Phi-3 / Phi-3.5 (and <|endoftext|> above).
    "<|end|>",
    # Command-R / R+, Command R7B / A.
    "<|END_OF_TURN_TOKEN|>",
    "<|END_RESPONSE|>",
    # OpenChat.
    "<|end_of_turn|>",
    # gpt-oss (harmony format): the end of a final answer, and of a tool call.
    "<|return|>",
    "<|call|>",
    # GLM-4 / ChatGLM: generation stops at the next turn's role token.
    "<|user|>",
    "<|observation|>",
)
"""Special tokens a decoder may leave at the end of a completion; allowed after ``</answer>`` (rule 3).

Checked against the model families' tokenizer configs and chat templates. Pass others (a tokenizer's
``eos_token``) to :func:`parse` as ``end_tokens``.
"""

_TAG = re.compile(r"</?(?:think|refine|answer)>")
_ANSWER_TAG = re.compile(r"</?answer>")
_SKELETON = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
_EXCERPT = 40

# -- blank text: whitespace and invisible characters ---------------------------------------------

_INVISIBLE_RANGES = (
    (0x0000, 0x001F), (0x007F, 0x009F),  # Cc: control characters (the whitespace among them too)
    # Cf: format characters, as of Unicode 15 (a newer Python's new ones are caught by _next_visible).
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
    # The other Default_Ignorable_Code_Point characters of Unicode (DerivedCoreProperties.txt).
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong / jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180D), (0x180F, 0x180F),  # Mongolian free variation selectors
    (0x2065, 0x2065),  # reserved, default ignorable
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # reserved, default ignorable
    (0xE0000, 0xE0FFF),  # tags (reserved part), variation selectors supplement
    # Visibly blank although not ignorable.
    (0x2800, 0x2800),  # braille pattern blank
)
# One character that is neither whitespace nor a known invisible one: a single class, so no backtracking.
_VISIBLE = re.compile(
    "[^\\s" + "".join(f"\\U{a:08x}-\\U{b:08x}" if a != b else f"\\U{a:08x}" for a, b in _INVISIBLE_RANGES) + "]"
)
_VISIBLE_CATEGORIES = frozenset("LNPS")  # letters, numbers, punctuation, symbols
_BLANK_SYMBOLS = frozenset("\ufffc\ufffd\U0001d159")  # object replacement, replacement char, null notehead


def _next_visible(s: str, pos: int = 0) -> int:
    """Index of the first visible character of ``s`` at or after ``pos``; ``len(s)`` when there is none.

    Visible: a letter, number, punctuation mark or symbol (Unicode categories L, N, P, S), not a
    placeholder such as U+FFFC. A combining mark alone (``\\u0300``, U+2D7F), a private-use or
    unassigned code point, or a format character is not content.
    """
    while True:
        m = _VISIBLE.search(s, pos)
        if m is None:
            return len(s)
        ch = m.group()
        if ch < "\x80" or (unicodedata.category(ch)[0] in _VISIBLE_CATEGORIES and ch not in _BLANK_SYMBOLS):
            return m.start()
        pos = m.end()


def is_blank(text: str) -> bool:
    """Whether ``text`` has no visible character: only whitespace and invisible characters (see the module doc)."""
    return _next_visible(text) == len(text)


def strip_blank(text: str) -> str:
    """``text`` without whitespace and invisible characters at either end (inside ones are kept)."""
    stripped = text.strip()
    if stripped and "!" <= stripped[0] <= "~" and "!" <= stripped[-1] <= "~":
        return stripped  # the common case: visible ASCII at both ends
    start = _next_visible(text)
    if start == len(text):
        return ""
    return text[start : len(text) - _next_visible(text[::-1])]


def _token_table(extra: Any = ()) -> dict[str, tuple[str, ...]]:
    """End tokens (the built-in ones plus ``extra``) by first character, longest first."""
    if extra is None:
        extra = ()
    elif isinstance(extra, str):
        extra = (extra,)
    try:
        extra = [t if isinstance(t, str) else str(t) for t in extra if t is not None]
    except TypeError:  # a single non-string value
        extra = [str(extra)]
    tokens = {strip_blank(t) for t in (*END_OF_TURN_TOKENS, *extra)} - {""}
    table: dict[str, list[str]] = {}
    for token in sorted(tokens, key=lambda t: (-len(t), t)):
        table.setdefault(token[0], []).append(token)
    return {first: tuple(group) for first, group in table.items()}


_END_TOKENS = _token_table()


@dataclass(frozen=True)
class Refine:
    """One ``<refine>...</refine>`` segment: *what* was refined and *when*.

    ``text`` is its content stripped of blank characters at both ends (never empty: an empty
    segment is only a violation). ``offset`` is the character index of ``<refine>`` in the
    completion (with a ``prefix``, a tag inside it has a negative offset); ``position`` is the
    same place relative to the think content, in [0, 1] (0: at its start, 1: at its end).
    """

    text: str
    offset: int
    position: float


@dataclass
class Trace:
    """A completion split into its parts, with the verdict on its format.

    ``think`` is the content between ``<think>`` and ``</think>`` (refine markup included),
    ``refines`` its non-empty refine segments, ``answer`` the content of the last answer pair; all
    texts are stripped of blank characters (whitespace, invisible characters) at both ends. A part
    that is absent is ``None``. ``violations`` lists, readably, every rule the text breaks;
    ``valid`` is true when it is empty.
    """

    think: str | None
    refines: list[Refine]
    answer: str | None
    valid: bool
    violations: list[str] = field(default_factory=list)

    @property
    def refined(self) -> bool:
        """Whether any complete refine segment with visible text was found (even in an invalid completion)."""
        return any(not is_blank(r.text) for r in self.refines)

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
    """Content of the last ``<answer>...</answer>`` in ``text`` (blank-stripped), or None when absent.

    Each ``<answer>`` pairs with the first ``</answer>`` after it, like a lazy regex scanning left
    to right, but in linear time. Deliberately lenient (it ignores validity), so accuracy can be
    scored for any completion that produced an answer; :func:`parse` reports the same answer in
    :attr:`Trace.answer`.
    """
    if not isinstance(text, str):
        return None
    found, open_end = None, None
    for m in _ANSWER_TAG.finditer(text):
        if m.group() == ANSWER_OPEN:
            if open_end is None:
                open_end = m.end()
        elif open_end is not None:
            found, open_end = (open_end, m.start()), None
    return strip_blank(text[found[0] : found[1]]) if found else None


def format_reward(text: str, *, prefix: str = "", end_tokens: Iterable[str] = ()) -> float:
    """The format reward r_format: +1.0 for a valid completion, -1.0 otherwise (options as :func:`parse`)."""
    return 1.0 if parse(text, prefix=prefix, end_tokens=end_tokens).valid else -1.0


@dataclass(frozen=True)
class _Tag:
    name: str
    start: int
    end: int


def _excerpt(s: str) -> str:
    s = strip_blank(s)
    return repr(s if len(s) <= _EXCERPT else s[: _EXCERPT - 1] + "…")


def _only_end_of_turn(s: str, table: dict[str, tuple[str, ...]]) -> bool:
    """Whether ``s`` is blank text and end-of-turn tokens only (longest token first at each place)."""
    i, n = 0, len(s)
    while True:
        i = _next_visible(s, i)
        if i >= n:
            return True
        for token in table.get(s[i], ()):
            if s.startswith(token, i):
                i += len(token)
                break
        else:
            return False


def as_text(value: Any) -> str:
    """A completion as text: None is "", anything else its ``str``."""
    return value if isinstance(value, str) else ("" if value is None else str(value))


def parse(text: str, *, prefix: str = "", end_tokens: Iterable[str] = ()) -> Trace:
    """Split ``text`` into think, refine segments and answer, and check the grammar.

    ``prefix`` is what the prompt already holds of the response (e.g. ``"<think>\\n"``): ``text``
    is judged as its continuation, with offsets still counted in ``text`` (see the module doc).
    ``end_tokens`` adds end-of-turn tokens to :data:`END_OF_TURN_TOKENS` (a string is one token).

    Never raises. Extraction is best effort: the think content runs from the first
    ``<think>`` to the next ``</think>`` (or, when that is missing, to the next ``<answer>``
    or the end of the text); every ``<refine>`` closed by a ``</refine>`` with visible text is
    reported, wherever it is, with its position clamped to [0, 1] (relative to the whole text
    when there is no ``<think>``); the answer is :func:`extract_answer`'s.
    """
    prefix = as_text(prefix)
    base = len(prefix)
    text = prefix + as_text(text)
    table = _END_TOKENS if not end_tokens else _token_table(end_tokens)
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
            violations.append(f"{t.name} at char {t.start - base} is outside <think>")
        if t.name == REFINE_OPEN:
            if open_refines:
                violations.append(
                    f"nested <refine> at char {t.start - base}: "
                    f"the <refine> at char {open_refines[-1].start - base} is still open"
                )
            open_refines.append(t)
        elif open_refines:
            pairs.append((open_refines.pop(), t))
        else:
            violations.append(f"</refine> at char {t.start - base} has no opening <refine>")
    for t in open_refines:
        violations.append(f"unclosed <refine> at char {t.start - base}")
    pairs.sort(key=lambda p: p[0].start)

    span = max(1, content_end - content_start)
    segments = [
        Refine(
            text=strip_blank(text[o.end : c.start]),
            offset=o.start - base,
            position=min(1.0, max(0.0, (o.start - content_start) / span)),
        )
        for o, c in pairs
    ]
    refines = [r for r in segments if r.text]

    if skeleton_ok:
        # Rule 3: only blank text (and trailing end-of-turn tokens) outside the tags.
        t_open, t_close, a_open, a_close = skeleton
        # A region holding a stray refine tag was reported above; one message per mistake.
        before, between, after_answer = text[: t_open.start], text[t_close.end : a_open.start], text[a_close.end :]
        if not is_blank(before) and not _TAG.search(before):
            violations.append(f"text before <think> at char {-base}: {_excerpt(before)}")
        if not is_blank(between) and not _TAG.search(between):
            violations.append(
                f"text between </think> and <answer> at char {t_close.end - base}: {_excerpt(between)}"
            )
        if not _only_end_of_turn(after_answer, table) and not _TAG.search(after_answer):
            violations.append(f"text after </answer> at char {a_close.end - base}: {_excerpt(after_answer)}")
        # Rule 4: nothing empty.
        reasoning, cursor, depth = [], t_open.end, 0
        for t in (t for t in tags if t_open.end <= t.start < t_close.start):
            if depth == 0:
                reasoning.append(text[cursor : t.start])
            depth = depth + 1 if t.name == REFINE_OPEN else max(0, depth - 1)
            cursor = t.end
        if depth == 0:
            reasoning.append(text[cursor : t_close.start])
        if all(is_blank(part) for part in reasoning):
            violations.append("empty <think>: it needs reasoning text outside <refine>")
        for r in segments:
            if not r.text:
                violations.append(f"empty <refine> at char {r.offset}")
        if is_blank(text[a_open.end : a_close.start]):
            violations.append("empty <answer>")

    return Trace(
        think=strip_blank(think) if think is not None else None,
        refines=refines,
        answer=extract_answer(text),
        valid=not violations,
        violations=violations,
    )
