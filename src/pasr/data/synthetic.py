"""The built-in task: seeded multi-step arithmetic word problems with a checkable integer answer.

Why a synthetic task: pasr must train and evaluate end to end with no dataset hub, and the reward needs an
answer a rule can verify. Problems are chains of whole-number steps over one quantity ("Mia has 9 shells.
She wins 8 more. Then she loses 4. How many shells does Mia have now?"), written with varied names, objects,
verbs and sentence forms so a model cannot learn one sentence by heart.

These word problems are the built-in task's default family, ``arith``. The second family, ``sums``
(:mod:`pasr.data.sums`: two-number sums, easy or hard, where a column-by-column check is more reliable than a
direct answer), is chosen with ``pasr data synthetic --family sums``, the ``sums`` benchmark or the config field
``synthetic_family``; :func:`generate_family` and :func:`family_warmup_examples` pick the family's functions.

Difficulty levels (``meta["difficulty"]``):

1. one addition or subtraction, numbers up to 20;
2. (the default) a mix: half level 1, half level 3;
3. two additions/subtractions, numbers up to 30;
4. three additions/subtractions with larger numbers (up to about 100);
5. three steps of which one multiplies (x2 to x4), numbers up to about 50.

Held-out split: whether a problem is ``test`` is a fixed function of its arithmetic (start value and steps),
so the two splits never share a question text, nor even the same calculation in other words, whatever seeds
are used (:func:`split_of`).

How hard, for the built-in model (SmolLM2-135M-Instruct; standard system prompt, greedy, 160 new tokens,
48 test-split problems per level, scored by ``pasr.scoring.score("arith", ...)``; ``bench/measure_builtin_task.py``;
a 95% interval at n=48 is about +-13 points)::

    level                          1     2     3     4     5
    untrained                     27%   12%    4%    2%    0%
    after a 256-example warm-up   75%   52%   54%    0%    8%

The untrained model never uses the think/answer tags and often subtracts where it should add; after the
warm-up (64 worked solutions per level of 1, 3, 4, 5; lr 2e-4, batch 8, one epoch) every answer is
format-valid and the remaining errors are arithmetic slips ("43 - 9 = 32"). An earlier run on other samples
gave 31% / 2% untrained and 75% / 31% after the warm-up for levels 1 and 3.

Default: level 2, the even mix of levels 1 and 3. It is the one level that is neither solved nor hopeless at
both ends of the pipeline: the untrained model gets 12-16% of it (level 1 alone: 27-31%), and after a short
warm-up it still errs on about 40-50% (level 1 alone: 25%), which leaves GRPO groups with reward spread.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from pasr.data.records import Record
from pasr.errors import PasrError

LEVELS = (1, 2, 3, 4, 5)
DEFAULT_DIFFICULTY = 2
TASK = "arith"
SPLITS = ("train", "test")
TEST_SHARE_TENTHS = 2
"""Problems whose content hash ends in 0 or 1 (mod 10) are test problems: 20%."""
FAMILIES = ("arith", "sums")
"""The built-in task's families: ``arith`` (this module's word problems, the default) and ``sums`` (sums of two
numbers, easy or hard, where a column check is more reliable than a direct answer: :mod:`pasr.data.sums`)."""
DEFAULT_FAMILY = "arith"


@dataclass(frozen=True)
class _Level:
    steps: int = 0
    start: tuple[int, int] = (0, 0)
    operand: tuple[int, int] = (0, 0)
    multiply: bool = False
    mix: tuple[int, ...] = ()
    """A mixed level draws each problem from one of these levels, with equal chance."""


_LEVELS = {
    1: _Level(steps=1, start=(4, 20), operand=(2, 9)),
    2: _Level(mix=(1, 3)),
    3: _Level(steps=2, start=(5, 30), operand=(2, 15)),
    4: _Level(steps=3, start=(15, 80), operand=(6, 45)),
    5: _Level(steps=3, start=(4, 25), operand=(3, 30), multiply=True),
}

# --- surface vocabulary ---------------------------------------------------------

_PEOPLE = [
    ("Mia", "she", "her"), ("Liam", "he", "his"), ("Ava", "she", "her"), ("Noah", "he", "his"),
    ("Zoe", "she", "her"), ("Omar", "he", "his"), ("Lena", "she", "her"), ("Kai", "he", "his"),
    ("Sofia", "she", "her"), ("Ravi", "he", "his"), ("Elena", "she", "her"), ("Jonas", "he", "his"),
    ("Priya", "she", "her"), ("Mateo", "he", "his"), ("Hana", "she", "her"), ("Felix", "he", "his"),
    ("Amara", "she", "her"), ("Diego", "he", "his"), ("Nora", "she", "her"), ("Tariq", "he", "his"),
    ("Ines", "she", "her"), ("Sam", "he", "his"), ("Yuki", "she", "her"), ("Ben", "he", "his"),
    ("Chloe", "she", "her"), ("Ivan", "he", "his"), ("Leila", "she", "her"), ("Tom", "he", "his"),
    ("Grace", "she", "her"), ("Hugo", "he", "his"), ("Maya", "she", "her"), ("Emil", "he", "his"),
]
# (plural noun, kind): fruit can be picked, baked goods baked, and any food eaten or shared.
_OBJECTS = [
    ("shells", "thing"), ("marbles", "thing"), ("stickers", "thing"), ("stamps", "thing"), ("coins", "thing"),
    ("pencils", "thing"), ("cards", "thing"), ("books", "thing"), ("balloons", "thing"), ("buttons", "thing"),
    ("beads", "thing"), ("toy cars", "thing"), ("crayons", "thing"), ("postcards", "thing"), ("rocks", "thing"),
    ("apples", "fruit"), ("grapes", "fruit"), ("cherries", "fruit"), ("plums", "fruit"), ("oranges", "fruit"),
    ("cookies", "baked"), ("muffins", "baked"), ("cupcakes", "baked"), ("candies", "food"), ("eggs", "food"),
]
_FRIENDS = ["a friend", "{poss} brother", "{poss} sister", "a neighbour", "a classmate", "the teacher", "a cousin"]
# Clauses: {n} number, {obj} plural noun, {friend}. Each is a verb phrase after a subject.
_GAIN = [
    "finds {n} more", "buys {n} more {obj}", "gets {n} more {obj}", "is given {n} more {obj}",
    "wins {n} more", "picks up {n} more {obj}", "receives {n} {obj} as a gift", "collects {n} more",
    "gets {n} more from {friend}",
]
_GAIN_BY_KIND = {"fruit": ["picks {n} more {obj}"], "baked": ["bakes {n} more"]}
_LOSS = [
    "gives away {n}", "loses {n} of them", "sells {n} {obj}", "gives {n} to {friend}", "trades away {n}",
    "donates {n} {obj}", "loses {n}",
]
_LOSS_FOOD = ["eats {n} of them", "shares {n} with {friend}"]
_MULTIPLY = {
    2: ["doubles the number of {obj}", "ends up with twice as many {obj}"],
    3: ["triples the number of {obj}", "ends up with three times as many {obj}"],
    4: ["ends up with four times as many {obj}", "makes the number of {obj} four times as big"],
}
_OPENINGS = ["{Name} has {a} {obj}.", "{Name} starts with {a} {obj}.", "{Name} has a box with {a} {obj}.",
             "At first, {Name} has {a} {obj}."]
_CONNECTORS = ["Then", "After that,", "Later,", "Next,", "Then"]
_QUESTIONS = ["How many {obj} does {Name} have now?", "How many {obj} does {Name} have in the end?",
              "How many {obj} does {Name} end up with?", "What is the number of {obj} {Name} has now?"]
_QUESTIONS_AFTER_LOSS = ["How many {obj} are left?", "How many {obj} does {pron} have left?"]


# --- problems -------------------------------------------------------------------


def _apply(op: str, value: int, operand: int) -> int:
    return value + operand if op == "+" else value - operand if op == "-" else value * operand


def content_key(start: int, steps: list[tuple[str, int]]) -> str:
    """The arithmetic of a problem, e.g. ``"9+8-4"``: what the split is a function of."""
    return str(start) + "".join(f"{op}{operand}" for op, operand in steps)


def split_of(start: int, steps: list[tuple[str, int]]) -> str:
    """"test" for about 20% of calculations, "train" for the rest, decided by a stable hash of the content.

    Because the split depends on the arithmetic alone, a question text (which determines its arithmetic)
    can only ever be in one split, and a test calculation never appears in training in other words.
    """
    digest = hashlib.sha256(content_key(start, steps).encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 10 < TEST_SHARE_TENTHS else "train"


def _draw_arithmetic(rng: random.Random, level: _Level) -> tuple[int, list[tuple[str, int]]]:
    if level.mix:
        level = _LEVELS[rng.choice(level.mix)]
    start = rng.randint(*level.start)
    ops = [rng.choice("+-") for _ in range(level.steps)]
    if level.multiply:
        ops[rng.randrange(level.steps)] = "*"
    steps, value = [], start
    for op in ops:
        if op == "*":
            operand = rng.randint(2, 4)
        elif op == "-":
            high = min(level.operand[1], value - 1)
            if high < level.operand[0]:  # too little left to take away: add instead
                op, operand = "+", rng.randint(*level.operand)
            else:
                operand = rng.randint(level.operand[0], high)
        else:
            operand = rng.randint(*level.operand)
        steps.append((op, operand))
        value = _apply(op, value, operand)
    return start, steps


def _render(rng: random.Random, start: int, steps: list[tuple[str, int]]) -> tuple[str, dict]:
    name, pron, poss = rng.choice(_PEOPLE)
    obj, kind = rng.choice(_OBJECTS)
    gains = _GAIN + _GAIN_BY_KIND.get(kind, [])
    losses = _LOSS + (_LOSS_FOOD if kind != "thing" else [])
    friend = rng.choice(_FRIENDS).format(poss=poss)
    sentences = [rng.choice(_OPENINGS).format(Name=name, a=start, obj=obj)]
    clauses = []
    for index, (op, operand) in enumerate(steps):
        pool = gains if op == "+" else losses if op == "-" else _MULTIPLY[operand]
        clause = rng.choice(pool).format(n=operand, obj=obj, friend=friend)
        clauses.append(clause)
        subject = rng.choice([pron, name]) if index else rng.choice([pron.capitalize(), name])
        if index:
            connector = rng.choice(_CONNECTORS)
            sentences.append(f"{connector} {subject} {clause}.")
        else:
            sentences.append(f"{subject[0].upper()}{subject[1:]} {clause}.")
    questions = _QUESTIONS + (_QUESTIONS_AFTER_LOSS if steps[-1][0] == "-" else [])
    sentences.append(rng.choice(questions).format(obj=obj, Name=name, pron=pron))
    return " ".join(sentences), {"name": name, "pronoun": pron, "object": obj, "clauses": clauses}


def generate(n: int, *, seed: int = 0, split: str = "train", difficulty: int = DEFAULT_DIFFICULTY) -> list[Record]:
    """``n`` distinct problems of one split and difficulty, reproducible from ``seed``.

    Record ids are derived from the question text (``arith<d>-<hash>``), so the same problem always has
    the same id.
    """
    if split not in SPLITS:
        raise PasrError(f"split must be one of {SPLITS}, got {split!r}")
    if difficulty not in _LEVELS:
        raise PasrError(f"difficulty must be one of {LEVELS}, got {difficulty!r}")
    if n < 0:
        raise PasrError(f"n must be >= 0, got {n}")
    level = _LEVELS[difficulty]
    rng = random.Random(f"pasr-arith:{seed}:{split}:{difficulty}")
    records: list[Record] = []
    seen: set[str] = set()
    attempts, budget = 0, 200 * n + 1000
    while len(records) < n:
        attempts += 1
        if attempts > budget:
            raise PasrError(
                f"could only make {len(records)} distinct level-{difficulty} {split} problems; ask for fewer"
            )
        start, steps = _draw_arithmetic(rng, level)
        if split_of(start, steps) != split:
            continue
        question, surface = _render(rng, start, steps)
        if question in seen:
            continue
        seen.add(question)
        trail, value = [], start
        for (op, operand), clause in zip(steps, surface.pop("clauses")):
            result = _apply(op, value, operand)
            trail.append({"op": op, "operand": operand, "before": value, "result": result, "clause": clause})
            value = result
        digest = hashlib.sha256(question.encode()).hexdigest()[:12]
        records.append(
            Record(
                id=f"arith{difficulty}-{digest}",
                question=question,
                reference=str(value),
                task=TASK,
                meta={"difficulty": difficulty, "split": split, "start": start, "steps": trail,
                      "expression": content_key(start, steps), **surface},
            )
        )
    return records


# --- worked solutions for the supervised warm-up -------------------------------------

_SYMBOL = {"+": "+", "-": "-", "*": "*"}


def _equation(before: int, op: str, operand: int, result: int) -> str:
    return f"{before} {_SYMBOL[op]} {operand} = {result}"


def _step_sentence(step: dict, pron: str, first: bool, result: int | None = None, op: str | None = None) -> str:
    value = step["result"] if result is None else result
    equation = _equation(step["before"], op or step["op"], step["operand"], value)
    lead = pron.capitalize() if first else f"Then {pron}"
    return f"{lead} {step['clause']}, so {equation}."


def _slip(rng: random.Random, step: dict) -> tuple[int, str | None]:
    """A plausible wrong result for one step: (wrong value, wrong operator or None)."""
    right = step["result"]
    kinds = ["off_by_one", "off_by_ten", "wrong_op"]
    if right >= 10 and len(set(str(right))) > 1:
        kinds.append("swapped_digits")
    while True:
        kind = rng.choice(kinds)
        if kind == "off_by_one":
            wrong, op = right + rng.choice((-1, 1)), None
        elif kind == "off_by_ten":
            wrong, op = right + rng.choice((-10, 10)), None
        elif kind == "swapped_digits":
            digits = str(right)
            wrong, op = int(digits[::-1]) if len(digits) == 2 else int(digits[0] + digits[2] + digits[1]), None
        else:
            op = {"+": "-", "-": "+", "*": "+"}[step["op"]]
            wrong = _apply(op, step["before"], step["operand"])
        if wrong != right and wrong >= 0:
            return wrong, op


_FIX_VALUE = [
    "Check {eq_right_lhs}: it is {right}, not {wrong}.",
    "Wait, {eq_right_lhs} is {right}, not {wrong}.",
    "Let me recheck {eq_right_lhs}. It equals {right}, so {wrong} was wrong.",
]
_FIX_OP = [
    "Wait, {pron} {clause}, so I must use {word}, not {wrong_word}: {eq_right}.",
    "Check the operation: {pron} {clause}, which means {word}. So {eq_right}, not {wrong}.",
]
_WORD = {"+": "addition", "-": "subtraction", "*": "multiplication"}


def _refine_text(rng: random.Random, step: dict, pron: str, wrong: int, wrong_op: str | None) -> str:
    lhs = f"{step['before']} {_SYMBOL[step['op']]} {step['operand']}"
    eq_right = _equation(step["before"], step["op"], step["operand"], step["result"])
    if wrong_op is None:
        return rng.choice(_FIX_VALUE).format(eq_right_lhs=lhs, right=step["result"], wrong=wrong)
    return rng.choice(_FIX_OP).format(pron=pron, clause=step["clause"], word=_WORD[step["op"]],
                                      wrong_word=_WORD[wrong_op], eq_right=eq_right, wrong=wrong)


def solution(record: Record, *, refine: bool = False, rng: random.Random | None = None) -> str:
    """A worked solution in the PASR format: ``<think>one sentence per step</think><answer>N</answer>``.

    With ``refine=True`` one step gets a plausible slip (off by one or ten, swapped digits, wrong operation)
    that a ``<refine>`` segment catches and fixes, either at once or one step later (then the dependent step
    is redone); the final answer is always right.
    """
    return solution_with_slips(record, refine=refine, rng=rng)[0]


def solution_with_slips(
    record: Record, *, refine: bool = False, rng: random.Random | None = None
) -> tuple[str, list[list[int]]]:
    """:func:`solution` and the ``[start, end]`` character spans of its planted error in the text.

    The spans are what a warm-up should not teach: the slipped step's wrong result (and its wrong operator,
    for a wrong-operation slip) and, when the slip is carried one step further, that step's wrong result.
    Empty without ``refine``. ``text[start:end]`` is the wrong number (or operator) itself.
    """
    rng = rng or random.Random(record.id)
    meta = record.meta
    steps, pron = meta.get("steps"), meta.get("pronoun", "they")
    if not steps:
        raise PasrError(
            f"record {record.id}: no arithmetic steps in meta; warm-up needs records from synthetic.generate"
        )
    parts = [f"{meta.get('name', pron.capitalize())} starts with {meta['start']} {meta.get('object', 'items')}."]
    marks: list[tuple[int, int, int]] = []  # (part index, start, end) of each planted error
    slip_at = rng.randrange(len(steps)) if refine else -1
    index = 0
    while index < len(steps):
        step = steps[index]
        if index != slip_at:
            parts.append(_step_sentence(step, pron, first=index == 0))
            index += 1
            continue
        wrong, wrong_op = _slip(rng, step)
        sentence = _step_sentence(step, pron, first=index == 0, result=wrong, op=wrong_op)
        end = len(sentence) - 1  # the sentence ends "= <wrong>."
        if wrong_op is not None:  # "<before> <op> <operand> = <wrong>.": the operator is wrong too
            equation = _equation(step["before"], wrong_op, step["operand"], wrong)
            op_at = end - len(equation) + len(str(step["before"])) + 1
            marks.append((len(parts), op_at, op_at + 1))
        marks.append((len(parts), end - len(str(wrong)), end))
        parts.append(sentence)
        late = index + 1 < len(steps) and steps[index + 1]["op"] != "*" and rng.random() < 0.3
        if late:  # carry the wrong value one step further, then notice and redo both
            nxt = steps[index + 1]
            carried = _apply(nxt["op"], wrong, nxt["operand"])
            sentence = f"Then {pron} {nxt['clause']}, so {_equation(wrong, nxt['op'], nxt['operand'], carried)}."
            marks.append((len(parts), len(sentence) - 1 - len(str(carried)), len(sentence) - 1))
            parts.append(sentence)
        fix = _refine_text(rng, step, pron, wrong, wrong_op)
        parts.append(f"<refine>{fix}</refine>")
        if late:
            parts.append(f"So {_equation(step['before'], step['op'], step['operand'], step['result'])}, "
                         f"and then {_equation(nxt['before'], nxt['op'], nxt['operand'], nxt['result'])}.")
            index += 2
        else:
            parts.append(f"So {_equation(step['before'], step['op'], step['operand'], step['result'])}.")
            index += 1
    parts.append(f"The answer is {record.reference}.")
    starts, at = [], len("<think>")
    for part in parts:
        starts.append(at)
        at += len(part) + 1  # parts are joined by one space
    spans = [[starts[part] + start, starts[part] + end] for part, start, end in marks]
    return f"<think>{' '.join(parts)}</think><answer>{record.reference}</answer>", spans


_EQUATION = re.compile(r"(\d+)\s*([+*-])\s*(\d+)\s*=\s*(-?\d+)")


_CLAIM = re.compile(r"(\d+)\s*([+*-])\s*(\d+)\D{0,20}?(?:\bis\b|\bequals\b|=)\s*(-?\d+)")


def refine_claim_is_right(refine: str) -> bool | None:
    """Whether the first calculation a refine states ("Check 14 + 8: it is 22", "24 - 7 equals 15") is right.

    None when the refine states no calculation. Why: a refine can only fix a slip if its own arithmetic is
    right; this tells a model that checks its work from one that only writes the words of checking.
    """
    match = _CLAIM.search(refine)
    if match is None:
        return None
    a, op, b, claimed = int(match[1]), match[2], int(match[3]), int(match[4])
    return {"+": a + b, "-": a - b, "*": a * b}[op] == claimed


def splice_refine(record: Record, text: str, *, rng: random.Random | None = None) -> str | None:
    """The model's own solution cut after its first wrong step, a ``<refine>`` that fixes it, then the right rest.

    Warm-up refines built this way follow mistakes the model really makes (a wrong sum, a wrong operation,
    a wrong number carried over) instead of planted slips. The k-th equation ``a op b = c`` of the think part
    is checked against step k; the first that differs is the error. None when the text refines already, has
    no think part, or has no wrong equation among its first steps (a wrong answer with right equations has no
    place to splice a fix).
    """
    steps, pron = record.meta.get("steps"), record.meta.get("pronoun", "they")
    if not steps:
        raise PasrError(f"record {record.id}: no arithmetic steps in meta; needs records from synthetic.generate")
    if "<refine>" in text or "<think>" not in text:
        return None
    rng = rng or random.Random(record.id)
    body = text.split("<think>", 1)[1].split("</think>", 1)[0]
    for index, match in enumerate(_EQUATION.finditer(body)):
        if index >= len(steps):
            return None
        step = steps[index]
        a, op, b, c = int(match[1]), match[2], int(match[3]), int(match[4])
        if (a, op, b, c) == (step["before"], step["op"], step["operand"], step["result"]):
            continue
        if (a, b) == (step["before"], step["operand"]) and c != step["result"]:
            fix = _refine_text(rng, step, pron, c, None if op == step["op"] else op)
        else:  # a wrong number carried in, or the wrong operand read from the question
            fix = (f"Check this step: {pron} {step['clause']}, and {pron} had {step['before']}, so it is "
                   f"{_equation(step['before'], step['op'], step['operand'], step['result'])}, not {a} {op} {b}.")
        end = body.find(".", match.end())
        prefix = body[: match.end() if end < 0 else end + 1].strip()
        rest = [f"So {_equation(step['before'], step['op'], step['operand'], step['result'])}."]
        rest += [_step_sentence(later, pron, first=False) for later in steps[index + 1:]]
        rest.append(f"The answer is {record.reference}.")
        return f"<think>{prefix} <refine>{fix}</refine> {' '.join(rest)}</think><answer>{record.reference}</answer>"
    return None


def warmup_examples(
    records: list[Record], *, refine_share: float = 0.5, seed: int = 0, standard_share: float = 0.25
) -> list[dict]:
    """Prompt-completion chat examples for a short supervised warm-up (cold start) on the PASR format.

    A ``standard_share`` of the examples use the standard system prompt and a clean solution, so the model
    also answers the plain prompt in the think/answer form; of the PASR-prompt examples, a ``refine_share``
    show a slip fixed inside ``<refine>``, the rest a clean solution. Every completion is format-valid.
    Each example: ``{"prompt": [system, user], "completion": [assistant], "id", "kind"}``; an example with a
    planted slip also has ``"mask_spans"``: the ``[start, end]`` character spans of the slip's wrong numbers
    (and wrong operator) in the completion's content (:func:`solution_with_slips`), which the SFT loss can
    leave out so the warm-up teaches the fix, not the error.
    """
    from pasr.format import parse

    for name, share in (("refine_share", refine_share), ("standard_share", standard_share)):
        if not 0.0 <= share <= 1.0:
            raise PasrError(f"{name} must be between 0 and 1, got {share}")
    rng = random.Random(f"pasr-warmup:{seed}")
    order = list(range(len(records)))
    rng.shuffle(order)
    n_standard = round(standard_share * len(records))
    n_refine = round(refine_share * (len(records) - n_standard))
    kinds = {}
    for rank, index in enumerate(order):
        kinds[index] = "standard" if rank < n_standard else "refine" if rank < n_standard + n_refine else "clean"
    examples = []
    for index, record in enumerate(records):
        kind = kinds[index]
        text, spans = solution_with_slips(record, refine=kind == "refine", rng=random.Random(f"{seed}:{record.id}"))
        if kind != "standard":
            trace = parse(text)
            if not trace.valid or trace.refined != (kind == "refine"):
                raise AssertionError(f"warm-up solution for {record.id} breaks the PASR format: {trace.violations}")
        examples.append(warmup_example(record, kind, text, spans))
    return examples


def warmup_example(record: Record, kind: str, text: str, spans: list[list[int]]) -> dict:
    """One warm-up example of either family: the standard prompt for kind "standard", else the PASR prompt;
    ``text`` the assistant's completion, ``spans`` its planted slip's ``mask_spans`` (left out when empty)."""
    from pasr.prompts import PASR_SYSTEM_PROMPT, STANDARD_SYSTEM_PROMPT, chat

    system = STANDARD_SYSTEM_PROMPT if kind == "standard" else PASR_SYSTEM_PROMPT
    example = {
        "prompt": chat(system, record.question, record.task),
        "completion": [{"role": "assistant", "content": text}],
        "id": record.id,
        "kind": kind,
    }
    if spans:
        example["mask_spans"] = spans
    return example


# --- families ---------------------------------------------------------------------------------


def check_family(family: str, what: str = "family") -> str:
    """``family`` if it is one of :data:`FAMILIES`, else a PasrError naming ``what`` (an option or a field)."""
    if family not in FAMILIES:
        raise PasrError(f"{what} {family!r}: must be one of {', '.join(FAMILIES)}")
    return family


def generate_family(
    family: str, n: int, *, seed: int = 0, split: str = "train", difficulty: int | None = None,
    easy_share: float | None = None,
) -> list[Record]:
    """``n`` problems of the built-in task's ``family``: :func:`generate` for "arith", :func:`pasr.data.sums.generate`
    for "sums". ``difficulty`` applies to arith only and ``easy_share`` to sums only (None: the family's default);
    the other one given is an error.
    """
    check_family(family)
    if family == "sums":
        from pasr.data import sums

        if difficulty is not None:
            raise PasrError("difficulty applies to the arith family only, not to sums (sums has easy_share)")
        return sums.generate(n, seed=seed, split=split,
                             easy_share=sums.DEFAULT_EASY_SHARE if easy_share is None else easy_share)
    if easy_share is not None:
        raise PasrError("easy_share applies to the sums family only, not to arith (arith has difficulty)")
    return generate(n, seed=seed, split=split, difficulty=DEFAULT_DIFFICULTY if difficulty is None else difficulty)


def family_of(records: list[Record]) -> str:
    """The family of built-in records: "sums" when every record is a sums record (``meta["family"]``), else "arith"."""
    return "sums" if records and all(r.meta.get("family") == "sums" for r in records) else "arith"


def family_warmup_examples(
    family: str, records: list[Record], *, refine_share: float = 0.5, seed: int = 0, standard_share: float = 0.25
) -> list[dict]:
    """The warm-up examples of ``family``: :func:`warmup_examples` or :func:`pasr.data.sums.warmup_examples`
    (with its default split of refines into slips and confirmations)."""
    check_family(family)
    if family == "sums":
        from pasr.data import sums

        return sums.warmup_examples(records, refine_share=refine_share, seed=seed, standard_share=standard_share)
    return warmup_examples(records, refine_share=refine_share, seed=seed, standard_share=standard_share)
