"""Multiple choice (ARC, CommonsenseQA, MMLU, GPQA): which option label did the model pick?

Labels are letters ``A``-``E`` (more when the question lists more options) and, for the few
ARC items labelled ``1``-``4``, digits. A digit reference matches the same digit or the
letter at that position (``2`` == ``B``); a letter reference matches only that letter.

The answer is cleaned first: ``\\boxed{}``/``\\text{}``-style wrappers unwrapped, markdown
marks (``*``, backticks, ``_``, ``$``) dropped, every whitespace run squeezed to one character.
Then, in order (the first rule that finds something decides):

1. the whole answer is a label: ``B``, ``(b)``, ``Option B``, ``\\boxed{B}`` (lower case allowed);
2. the whole answer is one option's text (question with its ``A: ...`` lines given): ``drought``.

Otherwise the answer's *mentions* are collected: explicit phrases ("the answer is (B)",
"Answer: B", "correct option is B"), a leading label ("B: change the height", "(B) ...",
"B. ..."), parenthesised labels "(B)", standalone capitals (digits for digit-labelled items),
and occurrences of option texts (an option's text found only inside a longer option's text
does not count for the shorter one; a text that several options share names none of them).
Labels inside an occurrence of an option's text are not read ("Vitamin C" is no label C).

3. Inside ``<answer>`` (tagged): the answer must commit to one option. When its mentions name
   exactly one option it is that option; when they name several different ones, by any mix of
   the kinds ("Answer: A. Answer: B.", "B or C", "(A) fog or (B) rain", "A/B", "A, B, C, D",
   "rain or drought", "B, or maybe C"), it is a hedge and gets no credit. The same option named
   several ways ("B. rain", "Answer: B (rain)") is one option. So an explanation inside the
   tag that names another option ("C, since no rain falls") is a hedge too: the reasoning
   belongs in ``<think>``.
4. Over a whole response (no ``<answer>``), which discusses several options, the first kind
   that occurs decides, in order of trust: explicit phrases, leading label, parenthesised
   labels, standalone labels; the last of that kind wins ("I first thought A, but the answer
   is B" is B). Option texts a response mentions do not pick (only rule 2 reads texts there);
   they do help spot a hedge. A final hedge gets no credit: when the deciding mention is joined
   to a mention of a different option by "or", "and", ",", "/" and the like ("the answer is B
   or C", "(B) rain, or maybe C", "Answer: C. Answer: D."), the response picks nothing.

The article rule: the word "A" (and, once there are ten options, the pronoun "I") is not a
label. A capital ``A`` that starts a sentence (start of the answer, or after ``.``, ``!``,
``?``, ``:``, ``;`` or a line break, so also "Answer: A perfect fit") and is followed by a
lower-case word is the article; a capital ``I`` followed by a lower-case word is the pronoun,
anywhere. Exception: a following word that cannot follow the article/pronoun ("A is
correct", "A because ...", "A or B"; for ``I`` only "is", "was", "because", "or", ...) makes it
the label. Articles are never used as a last resort: "A perfect answer cannot be found." picks
nothing. Labels with brackets or punctuation ("(A)", "A.", "A)", "A: fog") are always labels,
and "A fog" is option A when option A is "fog" (by the option's text).

Every pattern here is linear in the answer's length (whitespace squeezed first, every
repetition bounded or unambiguous; no possessive quantifiers, so Python 3.10 works too), and
the per-mention work is bounded (a tagged answer is read as sets of labels, a whole response
builds mentions only near its deciding one), so no answer can stall the reward: 100k
characters score in a few tens of milliseconds.
"""

from __future__ import annotations

import re
import string
import unicodedata
from bisect import bisect_left
from functools import lru_cache
from typing import Callable, Iterable, Iterator, NamedTuple, Tuple

from pasr.errors import PasrError
from pasr.scoring.extract import answer_text, exact_option, normalize_words

_OPTION_LINE = re.compile(r"^[ \t]*\(?([A-Z]|[1-9])[ \t]*[\).:][ \t]+(\S.*)$", re.MULTILINE)
_WORDLIKE = ("A", "I")  # labels that are also English words: "A cat", "I think"
_WRAPPERS = re.compile(r"\\(?:boxed|text|textbf|mathrm|mathbf)\{([^{}]*)\}")
_BLANKS = re.compile(r"[^\S\n]+")  # one character class, so a run is matched once, never re-tried
_BREAKS = re.compile(r" ?\n[\n ]*")
_NEXT_WORD = re.compile(r" ([a-z]+)")
# Words that never follow the article "a" (nor, the second set, the pronoun "I"): after them
# the capital is a label ("A is correct", "A because ...", "I is the answer").
_AFTER_LABEL_A = frozenset(
    "is was would should could seems appears fits matches remains because since and or but so as which nor "
    "vs versus to through thru till until".split()
)
_AFTER_LABEL_I = frozenset("is was seems appears fits matches remains because since or nor vs versus".split())

# Tokens allowed between two mentions of different options for them to be a hedge ("B or C").
_FILLER = frozenset(
    "option options choice choices answer answers the is it its s be maybe perhaps possibly probably likely "
    "even also either both could might alternatively final".split()
) | frozenset("()[]{}'\"`*=#:")
_CONNECT = frozenset(["or", "and", "nor", "vs", "versus", ",", "/", "&", "+", "|", "-"])
_STOPS = frozenset(".!?;")
_GAP_TOKEN = re.compile(r"[a-z]+|[^\sa-z\x00]")
_MAX_GAP = 80  # a longer stretch between two mentions never joins them
_MAX_UNIT = 4  # mentions of one option that form one unit: "Answer: (B) rain" is two
_MASK = "\x00"

# A place where an answer names an option: (start, end, label, kind), kind one of "explicit",
# "leading", "paren", "bare", "text". Plain tuples: an adversarial answer can hold ~10^5 of them.
Mention = Tuple[int, int, str, str]
# For each kind of label mention, in order of trust: (kind, finder); finder(lo, hi) yields the
# positions in [lo, hi) of the one-character labels of that kind.
Finders = Iterable[Tuple[str, "Finder | Positions"]]


def parse_options(question: str | None) -> dict[str, str]:
    """Option label -> text, read from ``A: ...`` / ``A. ...`` / ``(A) ...`` / ``1: ...`` lines of a question.

    When both letter- and digit-labelled lines exist (a numbered list in the stem), the
    labelled run that starts at ``A`` (else ``1``) and is longest wins.
    """
    return dict(_options(question)) if question else {}


@lru_cache(maxsize=4096)
def _options(question: str) -> tuple[tuple[str, str], ...]:
    """:func:`parse_options`, cached: a GRPO batch scores each question G times and more."""
    found: dict[str, str] = {}
    for m in _OPTION_LINE.finditer(question):
        found[m.group(1)] = fold_compatible(m.group(2).rstrip(" \t\r"))  # the last occurrence: options follow the stem
    letters = _run(found, string.ascii_uppercase)
    digits = _run(found, "123456789")
    best = letters if len(letters) >= len(digits) else digits
    return tuple(best.items()) if len(best) >= 2 else ()


def _run(found: dict[str, str], alphabet: str) -> dict[str, str]:
    out = {}
    for label in alphabet:
        if label not in found:
            break
        out[label] = found[label]
    return out


# --- helpers shared with the Winogrande scorer ---------------------------------------------


def squeeze(text: str) -> str:
    """Each whitespace run as one character (a line break when it holds one), ends stripped."""
    return _BREAKS.sub("\n", _BLANKS.sub(" ", text)).strip()


def fold_compatible(text: str) -> str:
    """Unicode compatibility forms folded (NFKC: ``Ｂ`` is ``B``, ``ﬁ`` is ``fi``), on answers and options alike."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def clean_answer(text: str, wrappers: re.Pattern = _WRAPPERS, marks: str = "*$`_") -> str:
    """Wrappers like ``\\boxed{B}`` unwrapped (nested ones too), markdown ``marks`` dropped, whitespace squeezed.

    Full-width forms read as their ASCII letters and digits (``Ｂ`` is ``B``).
    """
    text = fold_compatible(text)
    for _ in range(8):  # each pass is linear and peels one level of nesting
        unwrapped = wrappers.sub(r"\1", text)
        if unwrapped == text:
            break
        text = unwrapped
    return squeeze(text.translate({ord(c): None for c in marks}))


@lru_cache(maxsize=8192)
def _phrase(option: str) -> tuple[str, ...]:
    """An option's words, lower case and without punctuation (:func:`normalize_words`); () when it has none."""
    return tuple(normalize_words(option).split())


@lru_cache(maxsize=8192)
def _compiled(words: tuple[str, ...], any_case: bool) -> re.Pattern:
    """The words as a word-bounded, case- and punctuation-insensitive pattern, compiled once when first needed.

    The first word comes first, the check that no letter or digit precedes it after it, so the
    regex engine can search for the literal word quickly.
    """
    first, *rest = [re.escape(w) for w in words]
    source = rf"{first}(?<![^\W_]{first})" + "".join(rf"[\W_]+{w}" for w in rest) + r"(?![^\W_])"
    return re.compile(source, re.IGNORECASE if any_case else 0)


def option_mentions(
    text: str, options: dict[str, str] | None, phrases: list[tuple[int, int]] = ()
) -> tuple[str, list[Mention]]:
    """``(masked, mentions)``: ``text`` with every occurrence of an option's text blanked out, and
    the occurrences that name one option ("text" mentions), sorted.

    An occurrence inside an occurrence of a longer option ("bed" inside "bed sheet") does not
    count; an occurrence of a text that several options share names none of them. The
    ``phrases`` spans (the words of explicit phrases, "The answer is") are not searched, so an
    option whose text is "answer" is not named by "The answer is (A)".
    """
    if not options:
        return text, []
    searched = text
    if phrases:
        pieces, cursor = [], 0
        for start, end in sorted(phrases):
            start = max(start, cursor)
            pieces += [text[cursor:start], " " * max(0, end - start)]
            cursor = max(cursor, end)
        searched = "".join(pieces) + text[cursor:]
    hits: list[tuple[str, list[tuple[int, int]]]] = []
    lowered = searched.lower()
    same_length = len(lowered) == len(searched)  # lower-casing can lengthen a few characters
    for label, option in options.items():
        words = _phrase(option)
        if words and all(w in lowered for w in words):  # a fast pre-check before any regex
            found = _compiled(words, False).finditer(lowered) if same_length else _compiled(words, True).finditer(searched)
            spans = [m.span() for m in found]
            if spans:
                hits.append((label, spans))
    if not hits:
        return text, []
    if len(hits) == 1:  # one option's occurrences: sorted, apart, all count
        label, union = hits[0]
        mentions: list[Mention] = [(start, end, label, "text") for start, end in union]
    else:
        mentions, union = _merge(hits)
    pieces, cursor = [], 0
    for start, end in union:
        pieces.append(text[cursor:start])
        pieces.append(_MASK * (end - start))
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), mentions


def _merge(hits: list[tuple[str, list[tuple[int, int]]]]) -> tuple[list[Mention], list[tuple[int, int]]]:
    """The occurrences of several options that count (not inside a longer one, not shared), and
    the union of all occurrences as sorted disjoint spans."""
    spans = [(start, -end, label) for label, found in hits for start, end in found]
    spans.sort()  # by start, longest first
    mentions: list[Mention] = []
    union: list[tuple[int, int]] = []
    cursor, last = 0, len(spans) - 1  # cursor: the furthest end so far
    for i, (start, neg_end, label) in enumerate(spans):
        end = -neg_end
        if end <= cursor:
            continue  # inside an earlier (so longer, or identical) occurrence
        if i == last or spans[i + 1][0] != start or spans[i + 1][1] != neg_end:  # no other option's same text
            mentions.append((start, end, label, "text"))
        union.append((start if start > cursor else cursor, end))
        cursor = end
    return mentions, union


def _gap_tokens(gap: str) -> list[str] | None:
    if len(gap) > _MAX_GAP or "\n" in gap:
        return None
    return _GAP_TOKEN.findall(gap.lower())


def _tight(gap: str) -> bool:
    """Two mentions of the same option that form one unit: "(B) rain", "Answer: B (rain)", "B. rain"."""
    tokens = _gap_tokens(gap)
    if tokens is None:
        return False
    allowed = _FILLER | _CONNECT | ({"."} if len(gap.strip()) <= 1 else set())
    return all(t in allowed for t in tokens)


def _hedge_gap(gap: str, both_explicit: bool) -> bool:
    """Whether two mentions of different options with ``gap`` between them offer both ("B or C")."""
    tokens = _gap_tokens(gap)
    if tokens is None:
        return False
    allowed = _FILLER | _CONNECT | (_STOPS if both_explicit else set())  # "Answer: C. Answer: D."
    return all(t in allowed for t in tokens)


def final_hedge(masked: str, mentions: list[Mention], i: int, key: Callable[[str], str] = str) -> bool:
    """Whether the deciding mention ``mentions[i]`` (of a sorted list) is offered together with another option.

    From the mention, walk over (a few) adjacent mentions of the same option that form one unit
    with it, then look at the nearest mention of a different option on each side: "B or C",
    "(B) rain, or maybe C", "Answer: C. Answer: D." are hedges; "B, not C" and "A or B? The
    answer is B." are not.
    """
    own = key(mentions[i][2])
    for step in (-1, 1):
        j = i
        for _ in range(_MAX_UNIT + 1):
            k = j + step
            if not 0 <= k < len(mentions):
                break
            left, right = (mentions[k], mentions[j]) if step < 0 else (mentions[j], mentions[k])
            gap = masked[left[1] : right[0]].replace(_MASK, "")
            if key(mentions[k][2]) == own:
                if not _tight(gap):
                    break
                j = k
                continue
            if _hedge_gap(gap, left[3] == "explicit" and right[3] == "explicit"):
                return True
            break
    return False


def decide(
    t: str,
    masked: str,
    texts: list[Mention],
    finders: Finders,
    *,
    tagged: bool,
    order: tuple[str, ...],
    key: Callable[[str], str] = str,
) -> str | None:
    """The label an answer picks from its mentions (module docstring, rules 3 and 4).

    ``texts`` are the option-text mentions, ``finders`` find the one-character label mentions
    of ``t`` by kind. The work is linear in the answer: a tagged answer stops at its second
    option; a whole response builds mention tuples only near its deciding mention.
    """
    finders = dict(finders)
    if tagged:
        keys: dict[str, str] = {key(m[2]): m[2] for m in texts}
        if len(keys) > 1:
            return None  # "rain or drought"
        for find in finders.values():
            for label in find.labels():
                keys.setdefault(key(label), label)
            if len(keys) > 1:
                return None  # a hedge
        return next(iter(keys.values())) if keys else None
    for decider in order:
        if decider == "text":
            at = max(texts)[0] if texts else None
        else:
            at = _last(finders[decider], len(t))
        if at is not None:
            break
    else:
        return None
    # Every mention that the hedge check can reach lies within this window of the decider.
    reach = (_MAX_UNIT + 2) * (_MAX_GAP + 2 + max((m[1] - m[0] for m in texts), default=1))
    lo, hi = max(0, at - reach), at + reach
    near: dict[int, Mention] = {}
    for kind, find in finders.items():
        for pos in find(lo, hi):
            near.setdefault(pos, (pos, pos + 1, t[pos], kind))
    mentions = sorted([*near.values(), *(m for m in texts if m[1] > lo and m[0] < hi)])
    i = next(i for i, m in enumerate(mentions) if m[0] == at and (m[3] == "text") == (decider == "text"))
    return None if final_hedge(masked, mentions, i, key) else mentions[i][2]


class Finder:
    """Label mentions of one kind: the starts of ``pattern``'s (only) group in ``text``; for the
    labels in ``suspects`` only where ``keep(pos)`` holds (the article "A" is no label). ``narrow(label)``
    is ``pattern`` for that one label."""

    def __init__(
        self,
        pattern: re.Pattern,
        text: str,
        keep: Callable[[int], bool] | None = None,
        suspects: str = "",
        narrow: Callable[[str], re.Pattern] | None = None,
    ):
        self.pattern, self.text, self.keep, self.suspects, self.narrow = pattern, text, keep, suspects, narrow

    def __call__(self, lo: int, hi: int) -> Iterator[int]:
        """The positions in ``[lo, hi)``; patterns see a little around the window (look-arounds, a bracket)."""
        text, keep, suspects = self.text, self.keep, self.suspects
        for m in self.pattern.finditer(text, max(0, lo - 8), min(len(text), hi + 8)):
            pos = m.start(1)
            if pos >= hi:
                return
            if pos >= lo and (keep is None or text[pos] not in suspects or keep(pos)):
                yield pos

    def labels(self) -> set[str]:
        """Every label found anywhere (C-speed but for the suspects, which stop at their first kept place)."""
        found = set(self.pattern.findall(self.text))
        for label in found.intersection(self.suspects):
            places = (self.narrow(label) if self.narrow else self.pattern).finditer(self.text)
            if not any(m.group(1) == label and self.keep(m.start(1)) for m in places):
                found.discard(label)
        return found


class Positions:
    """A finder over known positions (sorted): the explicit phrases, the leading label."""

    def __init__(self, text: str, positions: list[int]):
        self.text, self.positions = text, positions

    def __call__(self, lo: int, hi: int) -> Iterator[int]:
        return iter(self.positions[bisect_left(self.positions, lo) : bisect_left(self.positions, hi)])

    def labels(self) -> set[str]:
        return {self.text[pos] for pos in self.positions}


def _last(find: Callable[[int, int], Iterator[int]], size: int, chunk: int = 4096) -> int | None:
    """The last position ``find`` yields in ``[0, size)``, searched backwards chunk by chunk."""
    hi = size
    while hi > 0:
        lo = max(0, hi - chunk)
        found = None
        for found in find(lo, hi):
            pass
        if found is not None:
            return found
        hi = lo
    return None


# --- choice labels -------------------------------------------------------------------------


class _Patterns(NamedTuple):
    whole: re.Pattern
    explicit: re.Pattern
    leading: re.Pattern
    paren: re.Pattern
    bare: re.Pattern


@lru_cache(maxsize=64)
def _patterns(letters: str, digits: str) -> _Patterns:
    cls = f"[{letters}{digits}]"
    cls_i = f"[{letters}{letters.lower()}{digits}]"
    return _Patterns(
        # the whole answer is a label, maybe after one explicit phrase ("The answer is (B)"): nothing else is named
        whole=re.compile(
            rf"(?:(?i:(?:so |thus |therefore |hence )?(?:the )?(?:final |correct |right |best )?"
            rf"(?:option|choice|answer)(?: is| would be| should be| will be| must be)? ?[:#=]? ?(?:option |choice )?))?"
            rf"[(\[]?({cls_i})[)\]]?"
        ),
        # whitespace is squeezed, so every optional piece below matches a bounded amount
        explicit=re.compile(
            rf"(?<![A-Za-z])(?i:answer|option|choice)(?: (?i:is|would be|should be|will be|must be))?"
            rf"(?: ?[:=\-])? ?(?:(?i:option|choice) ?)?([(\[])?({cls})(?![\w'])"
        ),
        leading=re.compile(rf"[(\[]?({cls}) ?[)\].:](?!\d)"),
        paren=re.compile(rf"[(\[]({cls})[)\]]"),
        bare=re.compile(rf"(?<![\w'\-])(?<!\d[.,])({cls})(?![\w'\-]|[.,]\d)"),
    )


def _whole_label(t: str, pattern: re.Pattern) -> str | None:
    core = t.lstrip(" \n([{'\"").rstrip(" \n)]}'\".:")
    m = pattern.fullmatch(core)
    return m.group(1).upper() if m else None


def _sentence_start(t: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and t[i] in " \"'([{":
        i -= 1
    return i < 0 or t[i] in ".!?:;\n"


def _is_word(t: str, pos: int, letters: str) -> bool:
    """The capital at ``pos`` is the article "A" or the pronoun "I", not a label (module docstring)."""
    label = t[pos]
    if label not in _WORDLIKE or label not in letters:
        return False
    m = _NEXT_WORD.match(t, pos + 1)
    if not m:
        return False
    if label == "I":
        return m.group(1) not in _AFTER_LABEL_I
    return m.group(1) not in _AFTER_LABEL_A and _sentence_start(t, pos)


def extract_label(
    text: str,
    *,
    tagged: bool = True,
    letters: str = "ABCDE",
    digits: str = "",
    options: dict[str, str] | None = None,
) -> str | None:
    """The option label ``text`` picks (upper-case letter or digit), or None. See the module docstring."""
    t = clean_answer(text)
    if not t:
        return None
    p = _patterns(letters, digits)
    whole = _whole_label(t, p.whole)
    if whole:
        return whole
    if options:
        exact = exact_option(t, options)
        if exact:
            return exact
    explicit = list(p.explicit.finditer(t))
    masked, texts = option_mentions(t, options, [(m.start(), m.start(2)) for m in explicit])
    # explicit labels not inside an option's text, and not the article ("Answer: A perfect fit")
    chosen = [
        m.start(2) for m in explicit if masked[m.start(2)] != _MASK and (m.group(1) or not _is_word(t, m.start(2), letters))
    ]
    leading = p.leading.match(masked)

    def not_word(pos: int) -> bool:
        return not _is_word(t, pos, letters)

    finders = [
        ("explicit", Positions(t, chosen)),
        ("leading", Positions(t, [leading.start(1)] if leading else [])),
        ("paren", Finder(p.paren, masked)),
        ("bare", Finder(p.bare, masked, not_word, "AI", lambda label: _patterns(label, "").bare)),
    ]

    def key(label: str) -> str:  # on digit-labelled items "B" and "2" are the same option
        if digits and label.isalpha():
            return str(string.ascii_uppercase.index(label) + 1)
        return label

    return decide(t, masked, texts, finders, tagged=tagged, order=("explicit", "leading", "paren", "bare"), key=key)


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
