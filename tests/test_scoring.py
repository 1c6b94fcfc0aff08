"""Rule-based answer scoring: hand-written cases per family, the dispatcher's errors, the judge path."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from pasr.errors import PasrError
from pasr.scoring import FAMILIES, METRIC, Scorer, score
from pasr.scoring.choice import extract_label, parse_options
from pasr.scoring.drop import get_metrics, normalize_answer
from pasr.scoring.extract import answer_text
from pasr.scoring.mathexpr import fast_path
from pasr.scoring.numeric import plain_number
from pasr.scoring.numeric import find_numbers, reference_number
from pasr.scoring.winogrande import parse_options as winogrande_options

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "fixtures" / "scoring" / "cases.jsonl").read_text().splitlines()
    if line.strip()
]


@pytest.fixture(scope="module")
def scorer():
    with Scorer(timeout=10.0) as s:
        yield s


def _case_id(case):
    return f"{case['task']}:{case['response'][:40]}->{case['reference'][:15]}"


def test_fixture_cases_cover_every_rule_family():
    assert {c["task"] for c in CASES} == set(FAMILIES) - {"open"}


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_fixture_case(case):
    got = score(case["task"], case["response"], case["reference"], question=case.get("question"))
    assert 0.0 <= got <= 1.0
    if "expected" in case:
        assert got == pytest.approx(case["expected"], abs=0.005), case.get("note", "")
    if "max" in case:
        assert got < case["max"], case.get("note", "")


def test_batch_matches_single_item_scores(scorer):
    got = scorer.score_many(
        [c["task"] for c in CASES],
        [c["response"] for c in CASES],
        [c["reference"] for c in CASES],
        [c.get("question") for c in CASES],
    )
    single = [score(c["task"], c["response"], c["reference"], question=c.get("question")) for c in CASES]
    assert got == pytest.approx(single)
    assert scorer.timeouts == 0


def test_families_and_metrics():
    assert FAMILIES == ("math", "gsm8k", "arith", "choice", "winogrande", "drop", "summary", "open")
    assert set(METRIC) == set(FAMILIES)
    assert METRIC["drop"] == "f1" and METRIC["summary"] == "rouge_l"
    assert {METRIC[f] for f in FAMILIES if f not in ("drop", "summary")} == {"accuracy"}


def test_unknown_task_lists_families():
    with pytest.raises(PasrError, match="winogrande") as err:
        score("trivia", "<answer>x</answer>", "x")
    assert all(f in str(err.value) for f in FAMILIES)


def test_open_without_judge_says_how_to_configure_one():
    with pytest.raises(PasrError, match="--judge-url"):
        score("open", "<answer>Paris</answer>", "Paris")
    with pytest.raises(PasrError, match="--judge-model"):
        Scorer().score_many(["gsm8k", "open"], ["1", "x"], ["1", "x"])


class FakeJudge:
    """Scores 1.0 when the answer equals the reference, and records what it was asked."""

    def __init__(self):
        self.calls: list[list[dict]] = []

    def score_many(self, items):
        self.calls.append(items)
        return [1.0 if it["answer"] == it["reference"] else 0.25 for it in items]


def test_open_goes_to_the_judge_in_one_batch():
    judge = FakeJudge()
    with Scorer(judge=judge) as s:
        got = s.score_many(
            ["open", "gsm8k", "open"],
            ["<think>hm</think><answer>Paris</answer>", "<answer>3</answer>", "Lyon"],
            ["Paris", "#### 3", "Paris"],
            ["Capital of France?", "1+2?", None],
        )
    assert got == [1.0, 1.0, 0.25]
    assert len(judge.calls) == 1
    assert judge.calls[0] == [
        {"question": "Capital of France?", "reference": "Paris", "answer": "Paris", "task": "open"},
        {"question": "", "reference": "Paris", "answer": "Lyon", "task": "open"},
    ]
    assert score("open", "<answer>Paris</answer>", "Paris", judge=judge) == 1.0


def test_judge_all_sends_every_family_to_the_judge_and_clamps():
    class Wild:
        def score_many(self, items):
            return [7.0, -1.0, float("nan")][: len(items)]

    with Scorer(judge=Wild(), judge_all=True) as s:
        assert s.score_many(["math", "choice", "gsm8k"], ["a", "b", "c"], ["1", "A", "#### 1"]) == [1.0, 0.0, 0.0]


def test_judge_returning_too_few_scores_is_an_error():
    class Short:
        def score_many(self, items):
            return []

    with pytest.raises(PasrError, match="0 scores for 1 items"):
        Scorer(judge=Short()).score_many(["open"], ["x"], ["y"])


def test_bad_reference_names_the_batch_item():
    with pytest.raises(PasrError, match="item 1 of the batch"):
        Scorer().score_many(["gsm8k", "gsm8k"], ["1", "2"], ["#### 1", "no number"])


def test_length_mismatch_is_reported():
    with pytest.raises(PasrError, match="equally long"):
        Scorer().score_many(["gsm8k"], ["1", "2"], ["1"])


@pytest.mark.parametrize("task,reference", [("gsm8k", "no final number"), ("choice", "maybe"), ("winogrande", "3")])
def test_bad_references_raise(task, reference):
    with pytest.raises(PasrError, match="reference"):
        score(task, "<answer>1</answer>", reference)


def test_answer_text_prefers_the_last_answer_block():
    assert answer_text("<answer>1</answer> then <answer> 2 </answer>") == ("2", True)
    assert answer_text("  just text ") == ("just text", False)
    assert answer_text(None) == ("", False)


def test_numbers_are_read_exactly():
    assert find_numbers("$1,000.50 and -3, 16-4, 3/4, \\frac{1}{2}") == [
        Fraction("1000.5"), Fraction(-3), Fraction(16), Fraction(4), Fraction(3, 4), Fraction(1, 2)
    ]
    assert reference_number("gsm8k", "work\n#### 1,234") == 1234
    assert plain_number("\\boxed{18}") == 18 and plain_number("18 cents") is None


def test_math_fast_path_decides_plain_numbers_only():
    assert fast_path("$18.00", True, "\\boxed{18}") == 1.0
    assert fast_path("19", True, "18") == 0.0
    assert fast_path("\\frac{1}{2}", True, "0.5") == 1.0  # a LaTeX fraction of two integers is a plain number
    assert fast_path("\\sqrt{2}", True, "1.414") is None  # needs math-verify
    assert fast_path("18", False, "18") is None  # a whole response needs extraction


def test_option_parsing():
    assert parse_options("Q?\nA: fog\nB: rain") == {"A": "fog", "B": "rain"}
    assert parse_options("Q?\nA. (1, 6)\nB. (3, 2)") == {"A": "(1, 6)", "B": "(3, 2)"}
    assert parse_options("Steps:\n1. mix\n2. bake\nWhich?\nA: x\nB: y\nC: z") == {"A": "x", "B": "y", "C": "z"}
    assert winogrande_options("S _ .\nOption1: Sarah\nOption2: Maria") == {"1": "Sarah", "2": "Maria"}


def test_choice_label_heuristics():
    assert extract_label("A cat would not, so B") == "B"
    assert extract_label("A cat") is None  # the article is never a label, not even as a last resort
    assert extract_label("I think E") == "E"
    assert extract_label("I think J", letters="ABCDEFGHIJ") == "J"  # the pronoun I is not option I
    assert extract_label("I", letters="ABCDEFGHIJ") == "I"
    assert extract_label("B or C") is None
    assert extract_label("B or C", tagged=False) is None  # a final hedge picks nothing
    assert extract_label("I thought B, but C", tagged=False) == "C"


def test_drop_metric_matches_the_official_normalisation():
    assert normalize_answer("The  5.0 Yards!") == "5.0 yards"
    assert get_metrics("5", "5.0") == (1.0, 1.0)
    assert get_metrics("the cat sat", "a cat") == (0.0, 0.67)
    assert get_metrics("7 cats", "8 cats") == (0.0, 0.0)
