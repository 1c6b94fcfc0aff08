"""Every row of the real benchmark files in ../shared/benchmarks: references in answer form score 1.0
against themselves, obviously wrong answers score 0.0 (xsum: an unrelated summary scores < 0.3).

Skipped when the shared folder (beside the repo) is absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pasr.scoring import Scorer
from pasr.scoring.choice import parse_options
from pasr.scoring.mathexpr import normalize_latex
from pasr.scoring.numeric import plain_number
from pasr.scoring.numeric import find_numbers, reference_number
from pasr.scoring.winogrande import parse_options as winogrande_options

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} not present")


def _rows(name: str) -> list[dict]:
    path = SHARED / name
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _num(x) -> str:
    return str(x.numerator) if x.denominator == 1 else str(float(x))


def _tag(text: str) -> str:
    return f"<answer>{text}</answer>"


# Each builder yields (row, task, question, reference, correct responses, wrong responses).


def _gsm8k():
    for i, r in enumerate(_rows("gsm8k.jsonl")):
        n = reference_number("gsm8k", r["answer"])
        correct = [_tag(_num(n)), _tag(f"${int(n):,}.00") if n.denominator == 1 else _tag(_num(n)), r["answer"]]
        yield i, "gsm8k", r["question"], r["answer"], correct, [_tag(_num(n + 1))]


def _math():
    rows = _rows("math.json")
    for i, r in enumerate(rows):
        ref = r["answer"]
        value = plain_number(ref)
        if value is not None:
            wrong = _num(value + 1)
        else:  # the next row's answer that is spelled differently
            j = (i + 1) % len(rows)
            while normalize_latex(rows[j]["answer"]) == normalize_latex(ref):
                j = (j + 1) % len(rows)
            wrong = rows[j]["answer"]
        correct = [_tag(ref), _tag(f"\\boxed{{{ref}}}"), r["solution"]]
        yield i, "math", r["question"], ref, correct, [_tag(wrong)]


def _aime():
    for i, r in enumerate(_rows("aime24.jsonl")):
        content = re.fullmatch(r"\\boxed\{(.*)\}", r["solution"]).group(1)
        correct = [_tag(content), _tag(r["solution"]), f"So $m+n={content}$. Final answer: $\\boxed{{{content}}}$"]
        yield i, "math", r["problem"], r["solution"], correct, [_tag(str(int(content) + 1))]


def _choice(name: str, qkey: str, akey: str, sep: str):
    def build():
        for i, r in enumerate(_rows(name)):
            gold = r[akey].strip()
            options = parse_options(r[qkey])
            assert gold in options, f"{name} row {i}: reference {gold!r} not among parsed options {sorted(options)}"
            labels = list(options)
            other = labels[(labels.index(gold) + 1) % len(labels)]
            unique = [t.lower() for t in options.values()]
            correct = [_tag(gold), _tag(f"{gold}{sep} {options[gold]}"), _tag(f"The answer is ({gold})")]
            wrong = [_tag(other), _tag(f"The answer is ({other})")]
            if unique.count(options[gold].lower()) == 1:  # CommonsenseQA repeats a few option texts
                correct.append(_tag(options[gold]))
            if unique.count(options[other].lower()) == 1:
                wrong.append(_tag(options[other]))
            yield i, "choice", r[qkey], gold, correct, wrong

    return build


def _winogrande():
    for i, r in enumerate(_rows("winogrande.jsonl")):
        gold = r["answer"].strip()
        other = "1" if gold == "2" else "2"
        options = winogrande_options(r["question"])
        correct = [_tag(gold), _tag(options[gold]), _tag(f"Option{gold}: {options[gold]}")]
        yield i, "winogrande", r["question"], gold, correct, [_tag(other), _tag(options[other])]


def _drop():
    for i, r in enumerate(_rows("drop.jsonl")):
        reference = r.get("ref_text") or r["answer"]
        alternatives = [a for a in reference.split("|") if a.strip()]
        correct = [_tag(r["answer"])] + [_tag(a) for a in alternatives]
        numbers = {n for a in alternatives for n in find_numbers(a)}
        first = find_numbers(r["answer"])
        if first and re.fullmatch(r"\s*[\d.,]+\s*", r["answer"]):
            wrong = first[0] + 1
            while wrong in numbers:
                wrong += 1
            wrong_text = _num(wrong)
        else:
            wrong_text = "zzz qqq"
        yield i, "drop", r["question"], reference, correct, [_tag(wrong_text)]


def _xsum():
    rows = _rows("xsum.jsonl")
    for i, r in enumerate(rows):
        unrelated = rows[(i + 1) % len(rows)]["answer"]
        yield i, "summary", r["question"], r["answer"], [_tag(r["answer"])], [_tag(unrelated)]


FILES = {
    "gsm8k.jsonl": (_gsm8k, 0.0),
    "math.json": (_math, 0.0),
    "aime24.jsonl": (_aime, 0.0),
    "arc.jsonl": (_choice("arc.jsonl", "question", "answer", ":"), 0.0),
    "winogrande.jsonl": (_winogrande, 0.0),
    "commonsenseqa.jsonl": (_choice("commonsenseqa.jsonl", "question", "answer", ":"), 0.0),
    "drop.jsonl": (_drop, 0.0),
    "mmlu.json": (_choice("mmlu.json", "Question", "Ground_truth", "."), 0.0),
    "xsum.jsonl": (_xsum, 0.3),
}


@pytest.fixture(scope="module")
def scorer():
    with Scorer(timeout=10.0) as s:
        yield s


@pytest.mark.parametrize("name", list(FILES))
def test_every_row_scores_right_and_wrong_answers(name, scorer):
    build, wrong_max = FILES[name]
    items = []  # (row, kind, task, question, reference, response)
    rows = 0
    for row, task, question, reference, correct, wrong in build():
        rows += 1
        items += [(row, "correct", task, question, reference, resp) for resp in correct]
        items += [(row, "wrong", task, question, reference, resp) for resp in wrong]
    got = scorer.score_many([it[2] for it in items], [it[5] for it in items], [it[4] for it in items],
                            [it[3] for it in items])
    failures = [
        f"row {it[0]} {it[1]}: reference {it[4][-60:]!r}, response {it[5][-80:]!r} -> {value:.3f}"
        for it, value in zip(items, got)
        if (value < 1.0 if it[1] == "correct" else (value > 0.0 if wrong_max == 0.0 else value >= wrong_max))
    ]
    assert rows >= 30
    assert not failures, f"{len(failures)} of {len(items)} items failed:\n" + "\n".join(failures[:30])
    assert scorer.timeouts == 0
