"""The built-in ``sums`` family: sums of two whole numbers, where checking is easier than answering at once.

Why this family exists (issue 12): on the ``arith`` word problems the 135M built-in model's refines were no more
reliable than its first attempt (a refine restates a calculation the model gets right about half the time), so no
reward on refining could make refining pay. PASR's effect needs a task where a check is *more reliable* than the
answer it checks. Here it is by construction:

- a **direct answer** writes the sum at once, ``<think>4738 + 2965 = 7703.</think><answer>7703</answer>``: fast,
  and for a small model often wrong on long sums with carries;
- a **check**, written inside ``<refine>``, splits both numbers into named columns and then adds column by
  column right to left, one two-number addition of the column's digits and another of the carry per step, with
  the digits written so far, e.g. ``Check by columns: 4738 is thousands 4, hundreds 7, tens 3, ones 8; 2965 is
  thousands 2, hundreds 9, tens 6, ones 5. ones 8 + 5 = 13, + 0 = 13, write 3, carry 1, so far 3. tens 3 + 6 =
  9, + 1 = 10, ... thousands 4 + 2 = 6, + 1 = 7, write 7, so far 7703. So 4738 + 2965 = 7703.``
  (:func:`column_check`).
  Every step is local and small, so it is slower but reliable. The refine **computes** the answer from the
  digits: nothing in it is copied from the direct answer or anywhere else; only its last words compare the
  result with the direct answer (``..., not 7603.`` after a slip, ``..., which matches.`` after a right one).

Instances (``meta["difficulty"]``):

- **easy**: two 2-digit numbers (10-99) whose column addition never carries (``23 + 41``): a direct answer is
  nearly as reliable as a check, so refining is mostly wasted tokens. (Until issue 12's first experiment easy
  addends were 1-99; sums of a 1-digit and a 2-digit number, ``46 + 1``, then were where the warm-up's direct
  answers went wrong, 33 of 61 held-out ones against 11 of 136 two-digit ones, so a check paid on "easy"
  problems too and refining everywhere was the accuracy-optimal policy);
- **hard**: two 4-digit numbers whose addition carries at least twice (``4738 + 2965``: 3 carries): the direct
  answer is where a small model slips, so refining can pay.

A known share of each set is easy (``easy_share``, default 0.4, exact up to rounding). Whether to refine is
meant to be learnt by RL: the warm-up (:func:`warmup_examples`) refines on a random share of problems whatever
their difficulty. ``meta`` holds ``family`` ("sums"), ``difficulty``, ``addends`` ``[a, b]``, ``carries`` (the
number of columns that carry, the last column's included), ``split`` and ``expression`` (``"a+b"``). Answers
are scored by the ``arith`` answer family (``task="arith"``).

Held-out split: whether a problem is ``test`` is a fixed function of its two addends, in either order (a
stable hash, about 20% test; :func:`split_of`), so the splits never share a calculation, whatever the seeds.
Within one set calculations are distinct while the split has enough of them (the easy pool is small: about
790 train and 210 test calculations); past that an easy calculation comes back in other words, never as the
same question text.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache

from pasr.data.records import Record
from pasr.errors import PasrError

FAMILY = "sums"
TASK = "arith"
SPLITS = ("train", "test")
DIFFICULTIES = ("easy", "hard")
DEFAULT_EASY_SHARE = 0.4
EASY_MIN, EASY_MAX = 10, 99
"""Easy addends are 10 to 99 (two digits)."""
HARD_DIGITS = 4
"""Hard addends have this many digits."""
MIN_HARD_CARRIES = 2
TEST_SHARE_TENTHS = 2
"""Calculations whose hash ends in 0 or 1 (mod 10) are test problems: 20%."""

_TEMPLATES = (
    "What is {a} + {b}?",
    "Compute {a} + {b}.",
    "Add {a} and {b}.",
    "What is the sum of {a} and {b}?",
    "Calculate {a} + {b}.",
    "Find the sum {a} + {b}.",
)


# --- arithmetic -----------------------------------------------------------------


def _columns(a: int, b: int) -> list[tuple[int, int, int, int]]:
    """Column addition right to left: ``(digit of a, digit of b, carry in, column total)`` per column.

    The shorter number is padded with zeros on the left, so both have a digit in every column.
    """
    if a < 0 or b < 0:
        raise PasrError(f"sums are of whole numbers, got {a} + {b}")
    width = max(len(str(a)), len(str(b)))
    columns, carry = [], 0
    for place in range(width):
        da, db = a // 10**place % 10, b // 10**place % 10
        total = da + db + carry
        columns.append((da, db, carry, total))
        carry = 1 if total > 9 else 0
    return columns


def carries(a: int, b: int) -> int:
    """How many columns of ``a + b`` carry (the leftmost column's carry, which makes a new digit, included)."""
    return sum(total > 9 for *_, total in _columns(a, b))


def difficulty_of(a: int, b: int) -> str | None:
    """"easy", "hard" or None (neither definition fits: such a pair is never generated)."""
    if EASY_MIN <= a <= EASY_MAX and EASY_MIN <= b <= EASY_MAX and carries(a, b) == 0:
        return "easy"
    low, high = 10 ** (HARD_DIGITS - 1), 10**HARD_DIGITS - 1
    if low <= a <= high and low <= b <= high and carries(a, b) >= MIN_HARD_CARRIES:
        return "hard"
    return None


def content_key(a: int, b: int) -> str:
    """The calculation, the same in either order (``"2965+4738"``): what the split is a function of."""
    return f"{min(a, b)}+{max(a, b)}"


def split_of(a: int, b: int) -> str:
    """"test" for about 20% of calculations, "train" for the rest, by a stable hash of the two addends.

    ``a + b`` and ``b + a`` are one calculation and always share a split, so a test calculation never appears in
    training, whatever the wording, order or seed.
    """
    digest = hashlib.sha256(f"pasr-sums:{content_key(a, b)}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 10 < TEST_SHARE_TENTHS else "train"


@lru_cache(maxsize=None)
def _easy_pool(split: str) -> tuple[tuple[int, int], ...]:
    """Every easy calculation of ``split``, as ``(smaller, larger)``, in a fixed order."""
    return tuple((a, b) for a in range(EASY_MIN, EASY_MAX + 1) for b in range(a, EASY_MAX + 1)
                 if carries(a, b) == 0 and split_of(a, b) == split)


def _draw_hard(rng: random.Random) -> tuple[int, int]:
    low, high = 10 ** (HARD_DIGITS - 1), 10**HARD_DIGITS - 1
    while True:
        a, b = rng.randint(low, high), rng.randint(low, high)
        if carries(a, b) >= MIN_HARD_CARRIES:
            return a, b


# --- problems -------------------------------------------------------------------


def generate(n: int, *, seed: int = 0, split: str = "train", easy_share: float = DEFAULT_EASY_SHARE) -> list[Record]:
    """``n`` distinct sums problems of one split, ``round(easy_share * n)`` of them easy, reproducible from ``seed``.

    Easy and hard problems come in a seeded mixed order. Record ids are derived from the question text
    (``sums-<hash>``), so the same problem always has the same id.
    """
    if split not in SPLITS:
        raise PasrError(f"split must be one of {SPLITS}, got {split!r}")
    if not (isinstance(easy_share, (int, float)) and 0.0 <= easy_share <= 1.0):
        raise PasrError(f"easy_share must be between 0 and 1, got {easy_share!r}")
    if n < 0:
        raise PasrError(f"n must be >= 0, got {n}")
    rng = random.Random(f"pasr-sums:{seed}:{split}:{easy_share}")
    n_easy = round(easy_share * n)
    plan = ["easy"] * n_easy + ["hard"] * (n - n_easy)
    rng.shuffle(plan)
    pool = list(_easy_pool(split))
    rng.shuffle(pool)
    next_easy, easy_rounds = 0, 0
    calculations: set[str] = set()
    questions: set[str] = set()
    records: list[Record] = []
    for difficulty in plan:
        for _attempt in range(10_000):
            if difficulty == "easy":
                if next_easy == len(pool):  # every easy calculation used: again, in other words
                    easy_rounds += 1
                    if easy_rounds > 2 * len(_TEMPLATES) or not pool:
                        raise PasrError(f"could only make {len(records)} distinct {split} sums problems with "
                                        f"easy_share {easy_share}; ask for fewer or a lower easy_share")
                    rng.shuffle(pool)
                    next_easy = 0
                a, b = pool[next_easy]
                next_easy += 1
                if rng.random() < 0.5:
                    a, b = b, a
            else:
                a, b = _draw_hard(rng)
                if split_of(a, b) != split or content_key(a, b) in calculations:
                    continue
            question = rng.choice(_TEMPLATES).format(a=a, b=b)
            if question in questions:
                continue
            break
        else:
            raise PasrError(f"could only make {len(records)} distinct {split} sums problems; ask for fewer")
        questions.add(question)
        calculations.add(content_key(a, b))
        digest = hashlib.sha256(question.encode()).hexdigest()[:12]
        records.append(Record(
            id=f"{FAMILY}-{digest}",
            question=question,
            reference=str(a + b),
            task=TASK,
            meta={"family": FAMILY, "difficulty": difficulty, "split": split, "addends": [a, b],
                  "carries": carries(a, b), "expression": f"{a}+{b}"},
        ))
    return records


# --- the check and worked solutions ---------------------------------------------------


PLACES = ("ones", "tens", "hundreds", "thousands", "ten-thousands", "hundred-thousands")
"""Column names, right to left: the check names each column so that its digits can be looked up by name."""


def _place_digits(n: int, width: int) -> str:
    """``4738`` -> ``"thousands 4, hundreds 7, tens 3, ones 8"`` (zero-padded on the left to ``width`` columns)."""
    return ", ".join(f"{PLACES[place]} {n // 10**place % 10}" for place in reversed(range(width)))


def column_check(a: int, b: int) -> str:
    """The check a refine holds: both numbers split into named columns, then column addition right to left.

    ``column_check(4738, 2965)`` is ``"Check by columns: 4738 is thousands 4, hundreds 7, tens 3, ones 8; 2965
    is thousands 2, hundreds 9, tens 6, ones 5. ones 8 + 5 = 13, + 0 = 13, write 3, carry 1, so far 3. tens 3 +
    6 = 9, + 1 = 10, write 0, carry 1, so far 03. hundreds 7 + 9 = 16, + 1 = 17, write 7, carry 1, so far 703.
    thousands 4 + 2 = 6, + 1 = 7, write 7, so far 7703. So 4738 + 2965 = 7703."``.

    First each number is restated column by column, left to right, right after the number itself (the shorter
    one padded with zeros), so each step can look its two digits up by the column's name instead of counting
    digits from the right of a number, which the built-in model got wrong (``bench/measure_checking.py``).
    Then each step adds the column's two digits, then the carry into it as a second addition (``+ 0`` or ``+ 1``,
    always written: the built-in model's three-number additions such as ``8 + 0 + 1`` were where its checks went
    wrong, ``bench/measure_checking.py``),
    writes the last digit, states the carry out (the leftmost column writes its whole total instead) and
    restates the digits written so far. The result after "So" is the last "so far": computed step by step, never
    copied from the answer it checks (without "so far" the built-in model's checks computed the columns and then
    copied the direct answer into the conclusion).
    """
    columns = _columns(a, b)
    width = len(columns)
    if width > len(PLACES):
        raise PasrError(f"the column check names {len(PLACES)} columns at most, got {a} + {b}")
    steps, written = [], []
    for place, (da, db, carry, total) in enumerate(columns):
        last = place == width - 1
        digits = str(total) if last else str(total % 10)
        step = f"{PLACES[place]} {da} + {db} = {da + db}, + {carry} = {total}, write {digits}"
        if not last:
            step += f", carry {1 if total > 9 else 0}"
        written.append(digits)
        steps.append(f"{step}, so far {''.join(reversed(written))}.")
    result = "".join(reversed(written))
    split = f"{a} is {_place_digits(a, width)}; {b} is {_place_digits(b, width)}."
    return f"Check by columns: {split} {' '.join(steps)} So {a} + {b} = {result}."


def slip(a: int, b: int, rng: random.Random) -> tuple[int, str]:
    """A plausible wrong direct answer to ``a + b``: ``(value, kind)``.

    Kinds: ``"dropped_carry"`` (one column's carry forgotten: the sum less 10^k, where column k received the
    carry; only where the sum carries, and then chosen 70% of the time) and ``"digit_off_by_one"`` (one digit of
    the sum one too high or too low, without wrapping and without a leading zero). Either way the wrong value
    differs from the sum by a power of ten.
    """
    right = a + b
    received = [place + 1 for place, (*_, total) in enumerate(_columns(a, b)) if total > 9]
    if received and rng.random() < 0.7:
        return right - 10 ** rng.choice(received), "dropped_carry"
    digits = str(right)
    while True:
        place = rng.randrange(len(digits))
        digit = int(digits[len(digits) - 1 - place])
        delta = rng.choice((-1, 1))
        leading = place == len(digits) - 1 and len(digits) > 1
        if 0 <= digit + delta <= 9 and not (leading and digit + delta == 0):
            return right + delta * 10**place, "digit_off_by_one"


SOLUTION_KINDS = ("direct", "slip", "confirm")


def _addends(record: Record) -> tuple[int, int]:
    addends = record.meta.get("addends")
    if not (isinstance(addends, (list, tuple)) and len(addends) == 2):
        raise PasrError(f"record {record.id}: no addends in meta; needs records from pasr.data.sums.generate")
    a, b = (int(x) for x in addends)
    if str(a + b) != str(record.reference).strip():
        raise PasrError(f"record {record.id}: reference {record.reference!r} is not {a} + {b}")
    return a, b


def solution_with_slips(
    record: Record, *, kind: str, rng: random.Random | None = None
) -> tuple[str, list[list[int]]]:
    """:func:`solution` and the ``[start, end]`` character spans of its planted error (the wrong direct answer).

    ``text[start:end]`` is the wrong number; the spans are empty unless ``kind`` is "slip". The refine's closing
    "not N" names the wrong number as wrong and is not an error span.
    """
    if kind not in SOLUTION_KINDS:
        raise PasrError(f"kind must be one of {SOLUTION_KINDS}, got {kind!r}")
    a, b = _addends(record)
    right = a + b
    head = f"<think>{a} + {b} = "
    if kind == "direct":
        return f"{head}{right}.</think><answer>{right}</answer>", []
    check = column_check(a, b)[:-1]  # without its final full stop
    if kind == "confirm":
        return (f"{head}{right}. <refine>{check}, which matches.</refine> The answer is {right}.</think>"
                f"<answer>{right}</answer>"), []
    wrong, _how = slip(a, b, rng or random.Random(record.id))
    text = (f"{head}{wrong}. <refine>{check}, not {wrong}.</refine> The answer is {right}.</think>"
            f"<answer>{right}</answer>")
    return text, [[len(head), len(head) + len(str(wrong))]]


def solution(record: Record, *, kind: str = "direct", rng: random.Random | None = None) -> str:
    """A worked solution of a sums record in the PASR format.

    ``kind``: "direct" (``<think>a + b = S.</think><answer>S</answer>``, no refine), "slip" (a plausible wrong
    direct answer, :func:`slip`, then a refine whose column check computes the sum and ends "..., not W.") or
    "confirm" (the right direct answer, then the column check ending "..., which matches."). After a refine:
    ``The answer is S.``; the final answer is always right.
    """
    return solution_with_slips(record, kind=kind, rng=rng)[0]


def warmup_examples(
    records: list[Record],
    *,
    refine_share: float = 0.5,
    slip_share_of_refines: float = 0.5,
    standard_share: float = 0.25,
    seed: int = 0,
) -> list[dict]:
    """Prompt-completion chat examples for the supervised warm-up on sums records.

    A ``standard_share`` of the examples use the standard system prompt and answer directly (the standard prompt
    teaches no check). Of the PASR-prompt examples a random ``refine_share`` refine, **whatever the problem's
    difficulty** (when to refine is left for RL to learn): ``slip_share_of_refines`` of those fix a slipped direct
    answer ("slip"), the rest confirm a right one ("confirm"); the other PASR-prompt examples answer directly
    ("clean"). Each example: ``{"prompt": [system, user], "completion": [assistant], "id", "kind"}``, where
    ``kind`` is "standard", "clean", "slip" or "confirm"; a "slip" example also has ``"mask_spans"``, the
    character spans of the wrong direct answer in the completion's content. Every completion is format-valid
    (checked with :func:`pasr.format.parse`) and ends in the right answer.
    """
    from pasr.data.synthetic import warmup_example
    from pasr.format import parse

    for name, share in (("refine_share", refine_share), ("slip_share_of_refines", slip_share_of_refines),
                        ("standard_share", standard_share)):
        if not 0.0 <= share <= 1.0:
            raise PasrError(f"{name} must be between 0 and 1, got {share}")
    rng = random.Random(f"pasr-sums-warmup:{seed}")
    order = list(range(len(records)))
    rng.shuffle(order)
    n_standard = round(standard_share * len(records))
    n_refine = round(refine_share * (len(records) - n_standard))
    n_slip = round(slip_share_of_refines * n_refine)
    kinds: dict[int, str] = {}
    for rank, index in enumerate(order):
        if rank < n_standard:
            kinds[index] = "standard"
        elif rank < n_standard + n_slip:
            kinds[index] = "slip"
        elif rank < n_standard + n_refine:
            kinds[index] = "confirm"
        else:
            kinds[index] = "clean"
    solution_kind = {"standard": "direct", "clean": "direct", "slip": "slip", "confirm": "confirm"}
    examples = []
    for index, record in enumerate(records):
        kind = kinds[index]
        text, spans = solution_with_slips(record, kind=solution_kind[kind], rng=random.Random(f"{seed}:{record.id}"))
        trace = parse(text)
        if not trace.valid or trace.refined != (kind in ("slip", "confirm")) or trace.answer != record.reference:
            raise AssertionError(f"warm-up solution for {record.id} breaks the PASR format: {trace.violations}")
        examples.append(warmup_example(record, kind, text, spans))
    return examples
