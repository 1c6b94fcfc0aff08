"""The built-in arithmetic task: correct answers, disjoint splits, varied wording, valid warm-up solutions."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from pasr.data import synthetic
from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.format import parse
from pasr.prompts import PASR_SYSTEM_PROMPT, STANDARD_SYSTEM_PROMPT, chat


def _evaluate(record: Record) -> int:
    """Recompute the answer from the meta, independently of the generator's bookkeeping."""
    value = record.meta["start"]
    for step in record.meta["steps"]:
        value = {"+": value + step["operand"], "-": value - step["operand"], "*": value * step["operand"]}[step["op"]]
    return value


@pytest.mark.parametrize("difficulty", synthetic.LEVELS)
def test_answers_are_right_and_levels_differ(difficulty):
    records = synthetic.generate(200, seed=3, difficulty=difficulty)
    assert len(records) == 200
    assert len({r.id for r in records}) == 200 and len({r.question for r in records}) == 200
    for record in records:
        assert record.task == "arith" and record.meta["difficulty"] == difficulty
        assert record.reference == str(_evaluate(record))
        assert int(record.reference) >= 0
        # every number of the arithmetic appears in the question text
        numbers = [record.meta["start"]] + [s["operand"] for s in record.meta["steps"] if s["op"] != "*"]
        for number in numbers:
            assert re.search(rf"\b{number}\b", record.question), (number, record.question)
        assert all(s["result"] >= 0 for s in record.meta["steps"])
    steps = Counter(len(r.meta["steps"]) for r in records)
    expected_steps = {1: {1}, 2: {1, 2}, 3: {2}, 4: {3}, 5: {3}}[difficulty]
    assert set(steps) == expected_steps
    if difficulty == 2:  # the mixed level: about half one-step, half two-step problems
        assert 70 < steps[1] < 130
    multiplies = sum(any(s["op"] == "*" for s in r.meta["steps"]) for r in records)
    assert (multiplies == 200) if difficulty == 5 else (multiplies == 0)
    biggest = max(max([r.meta["start"]] + [s["operand"] for s in r.meta["steps"]]) for r in records)
    assert biggest <= {1: 20, 2: 30, 3: 30, 4: 80, 5: 30}[difficulty]


def test_reproducible_and_seed_dependent():
    first = synthetic.generate(50, seed=7, difficulty=3)
    assert first == synthetic.generate(50, seed=7, difficulty=3)
    assert [r.id for r in first] != [r.id for r in synthetic.generate(50, seed=8, difficulty=3)]


def test_splits_never_overlap_across_seeds():
    """Train and test share no question text nor calculation, over thousands of problems and many seeds."""
    for difficulty in synthetic.LEVELS:
        train, test = [], []
        for seed in range(3):
            train += synthetic.generate(600, seed=seed, split="train", difficulty=difficulty)
            test += synthetic.generate(200, seed=seed + 100, split="test", difficulty=difficulty)
        assert not {r.question for r in train} & {r.question for r in test}
        assert not {r.meta["expression"] for r in train} & {r.meta["expression"] for r in test}
        assert all(r.meta["split"] == "train" for r in train) and all(r.meta["split"] == "test" for r in test)


def test_split_is_a_function_of_content_with_a_fifth_held_out():
    shares = Counter(synthetic.split_of(a, [("+", b), ("-", c)]) for a in range(5, 40) for b in range(2, 16)
                     for c in range(2, 12))
    total = sum(shares.values())
    assert 0.17 < shares["test"] / total < 0.23
    assert synthetic.split_of(9, [("+", 8), ("-", 4)]) == synthetic.split_of(9, [("+", 8), ("-", 4)])


def test_wording_varies():
    records = synthetic.generate(300, seed=0, difficulty=2)
    names = Counter(r.meta["name"] for r in records)
    objects = Counter(r.meta["object"] for r in records)
    openings = Counter(r.question.split(" ")[0] for r in records)
    assert len(names) >= 20 and len(objects) >= 15
    assert max(names.values()) < 0.1 * len(records)
    assert len(openings) > 10
    # no single sentence skeleton (numbers and names removed) dominates
    skeletons = Counter(re.sub(r"\d+", "N", r.question.replace(r.meta["name"], "X")) for r in records)
    assert max(skeletons.values()) < 0.05 * len(records)


def test_bad_arguments():
    with pytest.raises(PasrError, match="split"):
        synthetic.generate(3, split="dev")
    with pytest.raises(PasrError, match="difficulty"):
        synthetic.generate(3, difficulty=9)
    assert synthetic.generate(0) == []


def test_default_difficulty_is_a_level():
    assert synthetic.DEFAULT_DIFFICULTY in synthetic.LEVELS


# --- warm-up examples ---------------------------------------------------------------

_EQUATION = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)")


def _records(n=120):
    return [r for d in synthetic.LEVELS for r in synthetic.generate(n // len(synthetic.LEVELS), seed=5, difficulty=d)]


def test_warmup_mix_and_prompts():
    records = _records(120)
    examples = synthetic.warmup_examples(records, refine_share=0.5, seed=0, standard_share=0.25)
    assert len(examples) == len(records)
    kinds = Counter(e["kind"] for e in examples)
    assert kinds == {"standard": 30, "refine": 45, "clean": 45}
    for example, record in zip(examples, records):
        system = STANDARD_SYSTEM_PROMPT if example["kind"] == "standard" else PASR_SYSTEM_PROMPT
        assert example["prompt"] == chat(system, record.question, "arith")
        assert example["id"] == record.id
        [message] = example["completion"]
        assert message["role"] == "assistant"
    assert examples == synthetic.warmup_examples(records, refine_share=0.5, seed=0, standard_share=0.25)
    other = synthetic.warmup_examples(records, refine_share=0.5, seed=1, standard_share=0.25)
    assert [e["kind"] for e in other] != [e["kind"] for e in examples]


def test_warmup_solutions_are_valid_and_right():
    records = _records(200)
    examples = synthetic.warmup_examples(records, refine_share=0.6, seed=2)
    for example, record in zip(examples, records):
        text = example["completion"][0]["content"]
        trace = parse(text)
        assert trace.valid, (trace.violations, text)
        assert trace.answer == record.reference
        assert trace.refined == (example["kind"] == "refine")
        outside = re.sub(r"<refine>.*?</refine>", "", trace.think)
        equations = _EQUATION.findall(outside)
        expected = [(str(t["before"]), t["op"], str(t["operand"]), str(t["result"])) for t in record.meta["steps"]]
        if example["kind"] == "refine":
            assert len(trace.refines) == 1
            # every right step is (re)stated outside the refine, plus at least one slipped equation:
            # a false one or one with the wrong operation
            assert all(e in equations for e in expected), text
            slips = [e for e in equations if e not in expected]
            assert slips, text
            slipped = [t for t in record.meta["steps"] if (str(t["before"]), str(t["operand"])) in
                       {(e[0], e[2]) for e in slips}]
            # ... and the refine states the right value of the slipped step
            assert any(str(t["result"]) in trace.refines[0].text for t in slipped), text
        else:
            assert equations == expected, text
        # the final equation before the answer gives the reference
        assert equations[-1][3] == record.reference


def test_slips_cover_several_kinds():
    records = synthetic.generate(300, seed=9, difficulty=3)
    texts = [e["completion"][0]["content"] for e in synthetic.warmup_examples(records, refine_share=1.0,
                                                                               standard_share=0.0)]
    assert sum("operation" in t or "must use" in t for t in texts) > 10  # wrong operation
    late = sum(", and then" in t for t in texts)  # noticed one step later, both steps redone
    assert 30 < late < 150


def test_warmup_shares_are_checked():
    with pytest.raises(PasrError, match="refine_share"):
        synthetic.warmup_examples(_records(8), refine_share=1.5)
    with pytest.raises(PasrError, match="warm-up needs records"):
        synthetic.warmup_examples([Record("x", "q?", "1", "arith")])


# --- `pasr data synthetic` / `pasr data warmup` ------------------------------------------------


def test_cli_synthetic_and_warmup(tmp_path):
    import json

    from typer.testing import CliRunner

    from pasr.cli import app
    from pasr.data.records import read_records

    runner = CliRunner()
    out = tmp_path / "test.jsonl"
    result = runner.invoke(app, ["data", "synthetic", "-o", str(out), "--n", "30", "--split", "test", "--seed", "4",
                                 "--difficulty", "3"])
    assert result.exit_code == 0, result.output
    assert f"wrote 30 test problems (difficulty 3, seed 4) to {out}" in " ".join(result.output.split())
    records = read_records(out)
    assert records == synthetic.generate(30, seed=4, split="test", difficulty=3)

    sft = tmp_path / "sft" / "warmup.jsonl"
    result = runner.invoke(app, ["data", "warmup", "-o", str(sft), "--n", "40", "--refine-share", "0.5"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in sft.read_text().splitlines()]
    assert len(lines) == 40 and {"prompt", "completion"} <= set(lines[0])
    assert "20 with a refine" not in result.output  # 10 standard, 15 refine, 15 clean
    assert "15 with a refine" in result.output

    result = runner.invoke(app, ["data", "warmup", "-o", str(tmp_path / "w2.jsonl"), "--records", str(out)])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "w2.jsonl").read_text().splitlines()) == 30

    result = runner.invoke(app, ["data", "synthetic", "-o", str(out), "--split", "dev"])
    assert result.exit_code == 2 and "split must be one of" in result.output
