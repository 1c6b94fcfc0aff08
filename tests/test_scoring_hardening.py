"""The reward's scorers cannot be gamed, crashed or stalled (numeric, math, DROP, summary; dispatch; refine ties).

Each fault kind has the instance it was reported with and variants of our own. The
multiple-choice families have their own file (test_scoring_choice_hardening.py); the
property test and the reward-hacking suite here cover every family.
"""

from __future__ import annotations

import json
import random
import time
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pasr.errors import PasrError
from pasr.rewards import refine_reward
from pasr.scoring import Scorer, family, metric_of, score
from pasr.scoring.numeric import numbers_equal, read_plain

WG = "Sarah gave Maria a gift because _ was kind.\nOption1: Sarah\nOption2: Maria"
ARC = "What forms near the ground on cool mornings?\nA: fog\nB: rain\nC: drought\nD: tornado"


def tag(text: str) -> str:
    return f"<answer>{text}</answer>"


# --- 1. crashes: one long number, exponent bombs; a batch keeps its other scores -----------


@pytest.mark.parametrize(
    "answer",
    [
        "9" * 4301,
        "9" * 100_000,
        "-" + "1" * 5000,
        "1." + "5" * 5000,
        "1" * 5000 + "/" + "7" * 5000,
        "1e999999999",
        "1e-999999",
        "10^{99999999}",
        "9^9^9^9^9",
        "1 000" * 2000,
        "1,000" * 3000,
        "\\frac{" + "9" * 5000 + "}{3}",
    ],
)
@pytest.mark.parametrize("task,reference", [("gsm8k", "#### 18"), ("arith", "18"), ("math", "18")])
def test_huge_numbers_score_zero_without_raising(task, reference, answer):
    for response in (tag(answer), answer, f"\\boxed{{{answer}}}"):
        start = time.thread_time()
        assert score(task, response, reference) == 0.0
        assert time.thread_time() - start < 0.5


@pytest.mark.parametrize("task,reference", [("gsm8k", "#### 18"), ("arith", "18"), ("math", "18")])
def test_one_bad_completion_does_not_sink_the_batch(task, reference):
    with Scorer() as scorer:
        scores, errors = scorer.score_many_with_errors(
            [task] * 3, [tag("18"), tag("9" * 4301), tag("18")], [reference] * 3
        )
    assert scores == [1.0, 0.0, 1.0] and errors == {}


def test_a_scorer_that_raises_on_one_item_scores_it_zero_and_names_it(monkeypatch):
    from pasr.scoring import scorer as scorer_module

    def boom(response, reference, question):
        if "boom" in response:
            raise RuntimeError("odd completion")
        return 1.0

    monkeypatch.setitem(scorer_module._RULES, "gsm8k", boom)
    with Scorer() as scorer:
        scores, errors = scorer.score_many_with_errors(["gsm8k"] * 3, ["a", "boom", "c"], ["#### 1"] * 3)
        assert scores == [1.0, 0.0, 1.0]
        assert list(errors) == [1] and "odd completion" in errors[1]
        assert scorer.errors == 1
        assert scorer.score_many(["gsm8k"], ["boom"], ["#### 1"]) == [0.0]
        assert scorer.errors == 2


def test_bad_reference_is_still_a_data_error():
    with pytest.raises(PasrError, match="item 1 .*reference"):
        Scorer().score_many(["gsm8k", "gsm8k"], ["1", "2"], ["#### 1", "no number"])


# --- 3. hedging: several candidates earn nothing ----------------------------------------------

NUMERIC_HEDGES = [
    "18 or 19 or 20",
    "19 or 20",
    "20 or 19",
    "20, 21",
    "19/20",
    "between 19 and 21",
    "20 (or 21)",
    "20, not 18",
    "18 to 20",
    "\\boxed{19} or \\boxed{20}",
    "19 = 20",  # a chain that does not settle on 20
    "20 and 21",
    "18 or 20",
    "x = 19 or x = 20",
    "18 or 19 = 20",
    "18 = 19 = 20",
    "18 \\approx 20",
    "19 => 20",
    "19 == 20",
    "19 := 20",
    "19 ± 1 = 20",
    "19 \\pm 1",
    "[18, 20]= 20",
    "19=\n20",
    "eighteen or 20",
]


@pytest.mark.parametrize("hedge", NUMERIC_HEDGES)
@pytest.mark.parametrize("task,reference", [("gsm8k", "#### 20"), ("arith", "20")])
def test_numeric_hedges_get_nothing(task, reference, hedge):
    assert score(task, tag(hedge), reference) == 0.0
    assert score(task, tag("20"), reference) == 1.0


@pytest.mark.parametrize("hedge", ["18 or 19 or 20", "19 \\text{ or } 20", "either 20 or 21", "20 \\lor 21",
                                   "\\boxed{20}, \\boxed{21}", "\\boxed{21} \\boxed{20}", "20 or -20",
                                   "19 \\vee 20", "19 \\\\ 20", "19 | 20", "19\n20", "19 \\to 20", "19 \\implies 20",
                                   "\\begin{cases} 19 \\\\ 20 \\end{cases}", "19 \\& 20", "19~20", "\\boxed{19 = 20}",
                                   "x = 19 \\quad x = 20"])
def test_math_hedges_get_nothing(hedge):
    assert score("math", tag(hedge), "20") == 0.0
    assert score("math", tag("20"), "20") == 1.0


def test_math_answers_with_several_values_are_not_hedges_when_the_reference_has_several():
    assert score("math", tag("x = 2 or x = 3"), "2, 3") == 1.0
    assert score("math", tag("3, 2"), "2, 3") == 1.0


def test_math_untagged_final_statement_is_the_answer():
    assert score("math", "The answer is 19 or 20.", "20") == 0.0
    assert score("math", "Final answer: 19, 20", "19") == 0.0
    assert score("math", "The final answer is $20$. I hope it is correct.", "20") == 1.0
    assert score("math", "so the answer is \\$20", "20") == 1.0


@pytest.mark.parametrize("answer", ["20 dollars", "20 \\text{ dollars}", "20^\\circ", "20°", "\\boxed{20°}",
                                    "\\(20\\)", "x = 20", "20 \\text{ cm}^2"])
def test_math_units_and_delimiters_like_numeric_families(answer):
    assert score("math", tag(answer), "20") == 1.0
    assert score("math", tag(answer), "21") == 0.0


@pytest.mark.parametrize("answer", ["\\(18\\)", "\\[18\\]", "\\left(18\\right)", "(18)", "18 in total"])
def test_numeric_delimiters_are_not_remarks(answer):
    assert score("gsm8k", tag(answer), "#### 18") == 1.0
    assert score("arith", tag(answer), "18") == 1.0


@pytest.mark.parametrize("answer", ["18π", "18\\pi", "18i", "log 18", "\\frac{18}{x}", "\\sqrt{18}", "ln 18"])
def test_numeric_symbols_glued_to_the_number_are_not_the_number(answer):
    assert score("gsm8k", tag(answer), "#### 18") == 0.0


def test_untagged_hedge_at_the_end_gets_nothing_but_reasoning_may_say_or():
    assert score("gsm8k", "So the total is 18 or 20", "#### 20") == 0.0
    assert score("gsm8k", "We add or subtract? Add: 9 + 11 = 20", "#### 20") == 1.0
    assert score("math", "Either we add or we subtract. Adding gives $\\boxed{20}$.", "20") == 1.0


# --- 4. units and a check after the number ------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    ["18 m^2", "18 m²", "18 cm^{3}", "18 km/h", "18 m/s^2", "$18", "18 dollars", "18%", "18 (9 * 2 = 18)",
     "18 (rounded)", "18 [check: 20 - 2 = 18]", "x = 18", "The answer is 18.", "9 * 2 = 18 apples", "18.",
     "\\boxed{18}", "\\text{18 cm}", "18\\,\\text{m}^2", "18 units (3 rows of 6)"],
)
def test_units_and_remarks_after_the_number(answer):
    if answer == "18 units (3 rows of 6)":  # the remark names other values: not one answer
        assert score("gsm8k", tag(answer), "#### 18") == 0.0
        return
    assert score("gsm8k", tag(answer), "#### 18") == 1.0
    assert score("arith", tag(answer), "18") == 1.0


def test_a_remark_that_disagrees_voids_the_answer():
    assert score("gsm8k", tag("20 (9 * 2 = 18)"), "#### 20") == 0.0
    assert score("gsm8k", tag("18 (not 20)"), "#### 18") == 0.0
    assert score("gsm8k", tag("18 (19, 20)"), "#### 18") == 0.0
    assert score("gsm8k", tag("18 (or 19)"), "#### 18") == 0.0
    assert score("gsm8k", tag("18 (either way)"), "#### 18") == 0.0


def test_a_derivation_after_the_number_is_not_a_candidate():
    assert score("gsm8k", tag("18 (16 - 3 - 4 = 9 eggs, 9 * $2)"), "#### 18") == 1.0
    assert score("gsm8k", tag("18 (3 x 6)"), "#### 18") == 1.0
    assert score("gsm8k", tag("18 (16 - 3 - 4 = 9 eggs, 9 * $2)"), "#### 9") == 0.0


# --- 5. signs ------------------------------------------------------------------------------------

MINUS_SIGNS = ["\u2212", "\u2012", "\u2013", "\ufe63", "\uff0d"]


@pytest.mark.parametrize("minus", MINUS_SIGNS)
@pytest.mark.parametrize("task,positive,negative", [("gsm8k", "#### 3", "#### -3"), ("arith", "3", "-3"),
                                                    ("math", "3", "-3")])
def test_unicode_minus_is_a_minus(task, positive, negative, minus):
    assert score(task, tag(f"{minus}3"), positive) == 0.0
    assert score(task, tag(f"{minus}3"), negative) == 1.0
    assert score(task, f"The result is \\boxed{{{minus}3}}", negative) == 1.0


def test_minus_between_numbers_is_not_a_sign():
    assert score("gsm8k", tag("16-3"), "#### -3") == 0.0
    assert score("gsm8k", tag("16 - 3 = 13"), "#### 13") == 1.0


# --- 6. markdown ----------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["**73**", "*73*", "__73__", "`73`", "**The answer is 73**", "``73``",
                                    "$**73**$", "**\\boxed{73}**"])
@pytest.mark.parametrize("task,reference", [("math", "73"), ("gsm8k", "#### 73"), ("arith", "73")])
def test_markdown_marks_are_not_part_of_the_answer(task, reference, answer):
    assert score(task, tag(answer), reference) == 1.0


def test_markdown_removal_keeps_products():
    assert score("math", tag("2*3"), "6") == 1.0
    from pasr.scoring.extract import strip_markdown

    assert strip_markdown("2**3 and x_1 and a*b") == "2**3 and x_1 and a*b"
    assert score("gsm8k", tag("**2*9 = 18**"), "#### 18") == 1.0


# --- 7. the last answer of a self-correcting response --------------------------------------------


def test_self_correction_last_box_counts():
    text = "First attempt gives \\boxed{5}. That is wrong; correcting, the answer is \\boxed{7}."
    assert score("math", text, "7") == 1.0
    assert score("math", text, "5") == 0.0
    assert score("math", text, "\\{5, 7\\}") == 0.0
    assert score("gsm8k", text, "#### 7") == 1.0
    nested = "I had \\boxed{\\frac{1}{2}} but recomputing: \\boxed{\\frac{3}{4}}"
    assert score("math", nested, "\\frac{3}{4}") == 1.0
    assert score("math", nested, "\\frac{1}{2}") == 0.0


# --- 8. one rule for numbers, tiny values not equal ----------------------------------------------


@pytest.mark.parametrize(
    "pred,gold,expected",
    [
        ("\\frac{1}{2^{98}}", "\\frac{1}{2^{99}}", 0.0),
        ("2^{-100}", "2^{-101}", 0.0),
        ("\\frac{1}{10^{9}}", "\\frac{2}{10^{9}}", 0.0),
        ("0.0000001", "0.0000002", 0.0),
        ("1e-10", "2e-10", 0.0),
        ("\\frac{\\sqrt{2}}{2^{80}}", "\\frac{\\sqrt{2}}{2^{81}}", 0.0),
        ("\\frac{1}{2^{99}}", "2^{-99}", 1.0),
        ("\\frac{\\sqrt{2}}{2^{80}}", "\\frac{1}{\\sqrt{2} \\cdot 2^{79}}", 1.0),
        ("0.0666668", "0.066666793", 1.0),
        ("0.066667", "0.066666793", 1.0),
        ("0.0666", "0.066666793", 0.0),
        ("0.33", "\\frac{1}{3}", 0.0),
        ("0.333333", "\\frac{1}{3}", 1.0),
        ("1000000.4", "1000000.1", 0.0),
        ("0.5", "\\frac{1}{2}", 1.0),
        ("11111111101", "11111111100", 0.0),
    ],
)
def test_numbers_one_rule_on_every_path(pred, gold, expected):
    forms = [tag(pred), tag(f"\\boxed{{{pred}}}"), f"Therefore the answer is $\\boxed{{{pred}}}$.", tag(f"${pred}$")]
    assert [score("math", f, gold) for f in forms] == [expected] * len(forms), pred


def test_numbers_equal_is_symmetric_and_exact_for_integers():
    rng = random.Random(7)
    for _ in range(300):
        a, b = rng.randrange(10**12), rng.randrange(10**12)
        assert numbers_equal(a, b) == (a == b)
        x, y = read_plain(f"{a / 10**6:.6f}"), read_plain(f"{b / 10**6:.7f}")
        assert numbers_equal(x, y) == numbers_equal(y, x)


# --- 9-10. LaTeX that math-verify misreads ------------------------------------------------------------


@pytest.mark.parametrize("pred,gold,expected", [
    ("5\\sqrt(2)", "5", 0.0),
    ("5\\sqrt(2)", "5\\sqrt{2}", 1.0),
    ("5sqrt(2)", "5\\sqrt{2}", 1.0),
    ("\\sqrt(x+1)", "\\sqrt{x+1}", 1.0),
    ("2\\sqrt(3)", "2", 0.0),
    ("\\sqrt(\\sqrt(16))", "2", 1.0),
    ("1 1/4", "\\frac{5}{4}", 1.0),
    ("1 \\frac{1}{4}", "\\frac{5}{4}", 1.0),
    ("1\\frac{1}{4}", "\\frac{5}{4}", 1.0),
    ("-2 1/2", "-\\frac{5}{2}", 1.0),
    ("-\\frac{5}{2}", "-2.5", 1.0),
    ("\\frac{-5}{2}", "-2.5", 1.0),
    ("3 3/4", "3.75", 1.0),
    ("1 1/4", "\\frac{1}{4}", 0.0),
])
def test_latex_math_verify_misreads(pred, gold, expected):
    assert score("math", tag(pred), gold) == expected
    assert score("math", f"So we get $\\boxed{{{pred}}}$", gold) == expected


def test_mixed_numbers_in_numeric_families():
    assert score("gsm8k", tag("1 1/4"), "#### 1.25") == 1.0
    assert score("gsm8k", tag("2 1/2 cups"), "#### 2.5") == 1.0
    assert score("gsm8k", tag("1/4"), "#### 1.25") == 0.0


# --- 11-12. separators, other notations, expressions --------------------------------------------------


@pytest.mark.parametrize("answer,reference,expected", [
    ("1 000", "#### 1000", 1.0),
    ("1\u00a0000", "#### 1000", 1.0),
    ("1\u202f000 000", "#### 1000000", 1.0),
    ("1{,}000", "#### 1000", 1.0),
    ("1\\,000", "#### 1000", 1.0),
    ("2,18", "#### 18", 0.0),
    ("2,18", "#### 2.18", 1.0),
    ("2, 18", "#### 18", 0.0),
    ("1,00", "#### 100", 0.0),
    ("18e3", "#### 18", 0.0),
    ("18e3", "#### 18000", 1.0),
    ("1.5e2", "#### 150", 1.0),  # one decimal place less two powers of ten: places -1, still a number
    ("1.5 \\times 10^2", "#### 150", 1.0),
    ("1.5e2", "#### 15", 0.0),
    ("1.8 \\times 10^4", "#### 18000", 1.0),
    ("1.8 \\times 10^4", "#### 18", 0.0),
    ("10^3", "#### 10", 0.0),
    ("10^3", "#### 1000", 1.0),
    ("3+2", "#### 2", 0.0),
    ("3+2", "#### 3", 0.0),
    ("18+0", "#### 18", 0.0),
    ("2*9", "#### 9", 0.0),
    ("218", "#### 18", 0.0),
    ("18.5", "#### 18", 0.0),
    ("0x18", "#### 18", 0.0),
    ("v18", "#### 18", 0.0),
    ("18/1", "#### 18", 1.0),
    ("#### 18", "#### 18", 1.0),
])
def test_separators_notation_and_expressions(answer, reference, expected):
    assert score("gsm8k", tag(answer), reference) == expected


def test_math_expressions_are_evaluated_not_split():
    assert score("math", tag("3+2"), "2") == 0.0
    assert score("math", tag("3+2"), "5") == 1.0
    assert score("math", tag("18e3"), "18") == 0.0


# --- 15. refine ties for non-binary scores ---------------------------------------------------------------


def test_refine_ties_with_non_binary_scores_are_ties():
    assert refine_reward(0.1, [0.1, 0.1, 0.1], refined=True) == -0.5
    rng = random.Random(0)
    for _ in range(500):
        x = rng.choice([rng.random(), round(rng.random(), 2), rng.randrange(1, 100) / 100])
        n = rng.randrange(1, 17)
        assert refine_reward(x, [x] * n, refined=True) == -0.5
        mixed = [x + 0.1, x - 0.1] * n  # mean x, up to rounding
        assert refine_reward(x, mixed, refined=True) == -0.5
        assert refine_reward(min(1.0, x + 0.01), [x] * n, refined=True) in (1.0, -0.5)
    assert refine_reward(0.67, [0.67] * 8, refined=True, zeta=0.0) == -0.5
    assert refine_reward(0.68, [0.67] * 8, refined=True) == 1.0
    assert refine_reward(0.66, [0.67] * 8, refined=True) == -1.0


# --- 18. benchmark names where a family is expected -------------------------------------------------------


@pytest.mark.parametrize("name,fam", [("arc", "choice"), ("commonsenseqa", "choice"), ("mmlu", "choice"),
                                      ("gpqa", "choice"), ("xsum", "summary"), ("math500", "math"),
                                      ("aime24", "math"), ("synthetic", "arith"), ("ARC", "choice"),
                                      ("GSM8K", "gsm8k"), ("Winogrande", "winogrande"), ("drop", "drop")])
def test_benchmark_names_resolve_to_their_family(name, fam):
    assert family(name) == fam


def test_benchmark_names_score_like_their_family():
    assert score("arc", tag("A"), "A", question=ARC) == 1.0
    assert score("mmlu", tag("B"), "A", question=ARC) == 0.0
    assert score("commonsenseqa", tag("fog"), "A", question=ARC) == 1.0
    assert score("aime24", tag("204"), "\\boxed{204}") == 1.0
    assert score("synthetic", tag("13"), "13") == 1.0
    assert metric_of("xsum") == "rouge_l" and metric_of("drop") == "f1" and metric_of("arc") == "accuracy"
    with Scorer() as scorer:
        assert scorer.score_many(["arc", "gsm8k"], [tag("A"), tag("2")], ["A", "#### 2"], [ARC, None]) == [1.0, 1.0]


def test_unknown_task_names_families_and_benchmarks():
    with pytest.raises(PasrError, match=r"unknown task 'arcc'.*choice.*commonsenseqa"):
        score("arcc", "x", "A")


# --- the training reward function survives a scorer error ------------------------------------------------------


class _FlakyScorer:
    judge = None

    def score_many(self, tasks, responses, references, questions=None):
        if any("boom" in r for r in responses):
            raise RuntimeError("scorer broke on this completion")
        return [1.0 for _ in responses]


@pytest.mark.parametrize("scorer", [_FlakyScorer(), None])
def test_reward_function_scores_a_failing_completion_zero_and_counts_it(tmp_path, scorer, monkeypatch):
    from pasr.train.reward_functions import PasrRewards
    from pasr.train.rollout_log import RolloutLog, read_rollouts

    if scorer is None:  # the real Scorer, with one family that raises on a response
        from pasr.scoring import scorer as scorer_module

        real = scorer_module._RULES["arith"]
        monkeypatch.setitem(scorer_module._RULES, "arith",
                            lambda r, ref, q: (_ for _ in ()).throw(OverflowError("x")) if "boom" in r else real(r, ref, q))
        scorer = Scorer()
    log = RolloutLog(tmp_path / "rollouts.jsonl")
    rewards = PasrRewards(scorer, mode="none", rollout_log=log)
    metrics: dict[str, float] = {}
    texts = ["<think>a</think><answer>1</answer>", "<think>b</think><answer>boom</answer>",
             "<think>c</think><answer>1</answer>"]
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    kwargs = dict(question=["q"] * 3, reference=["1"] * 3, task=["arith"] * 3, log_metric=metrics.__setitem__)
    rewards.format_reward(prompts=[None] * 3, completions=completions, **kwargs)
    accuracy = rewards.accuracy_reward(prompts=[None] * 3, completions=completions, **kwargs)
    assert accuracy == [1.0, 0.0, 1.0]
    assert metrics["scoring/errors"] == 1.0
    rows = read_rollouts(log.path)
    assert [r["completion"] for r in rows] == texts
    assert "scoring_error" in rows[1] and "scoring_error" not in rows[0]


class _OddScorer:
    """A custom scorer whose values are not all numbers in [0, 1]."""

    judge = None

    def __init__(self, values):
        self.values = values

    def score_many(self, tasks, responses, references, questions=None):
        return [self.values[int(r)] for r in responses]


def test_score_batch_scores_values_outside_0_1_zero_and_names_them():
    import numpy as np

    from pasr.train.reward_functions import score_batch

    values = [None, float("nan"), 1.5, -0.1, "1", True, np.float32(0.25), 1, 0.5, float("inf")]
    texts = [str(i) for i in range(len(values))]
    scores, errors = score_batch(_OddScorer(values), ["arith"] * len(texts), texts, ["1"] * len(texts),
                                 ["q"] * len(texts))
    assert scores == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 1.0, 0.5, 0.0]
    assert all(type(s) is float for s in scores)
    assert sorted(errors) == [0, 1, 2, 3, 4, 5, 9]
    assert "None" in errors[0] and "1.5" in errors[2]


def test_score_batch_a_batch_of_the_wrong_length_is_scored_item_by_item():
    from pasr.train.reward_functions import score_batch

    class Short:
        judge = None

        def score_many(self, tasks, responses, references, questions=None):
            return [1.0] if len(responses) > 1 else ([None] if responses[0] == "x" else [1.0])

    scores, errors = score_batch(Short(), ["arith"] * 3, ["a", "x", "b"], ["1"] * 3, ["q"] * 3)
    assert scores == [1.0, 0.0, 1.0] and list(errors) == [1]


def test_score_reward_survives_a_custom_scorer_returning_none():
    from pasr.baselines.score import ScoreRewards

    scorer = _OddScorer({0: None, 1: 1.0})
    rewards = ScoreRewards(scorer, stage=2, alpha=10.0)
    out = rewards.score_reward(prompts=[None] * 2, completions=[None] * 2, question=["q"] * 2, reference=["1"] * 2,
                               task=["arith"] * 2, score_first=["0", "0"], score_second=["1", "0"])
    assert out == [1.0 + 10.0, 0.0]  # r1 = 0 (None scored 0), r2 = 1 -> 0 + 1 + 10 * 1


# --- 19. one construction of the judge ----------------------------------------------------------------------------


def test_judge_from_args_carries_every_setting(tmp_path):
    from pasr.judge import judge_from_args

    args = SimpleNamespace(judge_url="http://127.0.0.1:9/v1", judge_model="m", judge_api_key_env="K",
                           judge_concurrency=3, judge_timeout=7.0, judge_retries=9,
                           judge_cache_dir=str(tmp_path / "c"), judge_fallback_score=0.25)
    judge = judge_from_args(args, check=False)
    c = judge.config
    assert (c.base_url, c.model, c.api_key_env, c.concurrency, c.timeout, c.retries, c.cache_dir, c.fallback_score) == (
        "http://127.0.0.1:9/v1", "m", "K", 3, 7.0, 9, str(tmp_path / "c"), 0.25)
    assert judge_from_args(SimpleNamespace(judge_url=None)) is None
    with pytest.raises(PasrError, match="judge_model"):
        judge_from_args(SimpleNamespace(judge_url="http://x/v1", judge_model=None), check=False)


def test_star_builds_its_judge_like_training(tmp_path, monkeypatch):
    from pasr.baselines.star import StarConfig
    from pasr.judge import Judge
    from pasr.scoring import build_scorer

    checked = []
    monkeypatch.setattr(Judge, "check", lambda self: checked.append(self.config.model) or ["m"])
    config = StarConfig(output_dir=str(tmp_path / "o"), use_cpu=True, bf16=False, judge_url="http://127.0.0.1:9/v1", judge_model="m",
                        judge_retries=7, judge_cache_dir=str(tmp_path / "cache"))
    scorer = build_scorer(config)
    assert scorer.judge.config.retries == 7 and scorer.judge.config.cache_dir == str(tmp_path / "cache")
    assert checked == ["m"]
    import inspect

    import pasr.baselines.star as star

    assert "JudgeConfig(" not in inspect.getsource(star)  # no second construction


# --- property test: no scorer raises or stalls ------------------------------------------------------------------------

_PIECES = [" ", "  " * 50, "\t", "\n" * 20, "9" * 60, "1,000", "1 000 ", "-", "\u2212", ".", ",", "/", "^", "e", "E",
           "=", "(", ")", "[", "]", "{", "}", "\\boxed{", "\\frac{", "\\sqrt(", "$", "**", "`", "_", "or ", "Option 1 ",
           "Option2: ", "answer ", "Answer: ", "A ", "(B) ", "D.", "Sarah ", "Maria ", "fog ", "the ", "<answer>",
           "</answer>", "<think>", "#### ", "%", "\u200b", "\u00a0", "x", "1e9", "10^{", "td, ", " and "]


@st.composite
def adversarial(draw):
    pieces = draw(st.lists(st.sampled_from(_PIECES), max_size=40))
    repeat = draw(st.sampled_from([1, 1, 1, 10, 200]))
    noise = draw(st.text(max_size=30))
    return ("".join(pieces) * repeat + noise)[:20_000]


_FAMILY_ARGS = [("gsm8k", "#### 18", None), ("arith", "18", None), ("choice", "D", ARC), ("winogrande", "2", WG),
                ("drop", json.dumps([["Smith", "Jones"], "td"]), None), ("summary", "Sarah gave Maria a gift.", None)]


@pytest.fixture(scope="module", autouse=True)
def _warm_imports():
    """Lazy imports (rouge-score, nltk) happen once per process; they are not a scorer's per-item cost."""
    score("summary", "a b", "a b")


LIMIT_S = 0.25
"""No rule scorer may spend more CPU time than this on one response of ~100k characters (the math pool has its own
timeout). It separates linear work from a stall: linear scoring takes 0.01-0.12 s on 2-core machines of this class
(the worst, Winogrande on 20k nested ``\\boxed{``, 0.12 s on an AVX2 AMD EPYC, under 0.1 s on an avx512 Intel
one), while super-linear work on 100k characters takes seconds to hours."""


def cpu_seconds(fn, *args) -> float:
    """Thread CPU seconds of ``fn(*args)``: the least of up to three runs, re-run only while over the limit.

    CPU time, not wall time, so other processes on a loaded CI machine do not count; the re-runs
    keep a stray cache miss or page fault from failing a bound that the code meets.
    """
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        fn(*args)
        best = min(best, time.thread_time() - start)
        if best < LIMIT_S:
            break
    return best


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=adversarial())
def test_no_rule_scorer_raises_or_takes_100ms(text):
    from pasr.scoring.mathexpr import prepare
    from pasr.scoring.scorer import _RULES

    for response in (text, tag(text)):
        for task, reference, question in _FAMILY_ARGS:
            assert 0.0 <= _RULES[task](response, reference, question) <= 1.0
            assert cpu_seconds(_RULES[task], response, reference, question) < LIMIT_S, (task, response[:80])
        # the parent side of math: everything outside the pool
        assert cpu_seconds(prepare, response, "\\frac{1}{2}") < LIMIT_S, ("math", response[:80])


@pytest.mark.parametrize("text", [
    "answer" + " " * 5000 + "x", "\\boxed{" * 20000 + "1" + "}" * 20000, "1 " * 20000, "1/" * 50000,
    "10^" * 30000 + "2", "\\sqrt(" * 20000, "(" * 50000 + "18" + ")" * 50000, "18 = " * 20000, "word " * 2000,
    "Option 1 " * 5000, "A " * 20000, "1,0001,000" * 5000,
])
def test_long_adversarial_inputs_are_fast(text):
    from pasr.scoring.mathexpr import prepare
    from pasr.scoring.scorer import _RULES

    for response in (text, tag(text)):
        for task, reference, question in _FAMILY_ARGS:
            assert cpu_seconds(_RULES[task], response, reference, question) < LIMIT_S, (task, response[:60])
        assert cpu_seconds(prepare, response, "18") < LIMIT_S, ("math", response[:60])


# --- reward-hacking suite: hedges and padding score 0 while the honest answer scores 1 ------------------------------

HACKS = {
    ("gsm8k", "#### 20", None): ("20", ["19 or 20", "20 or 21", "19, 20, 21", "between 19 and 21", "19/20/21",
                                       "2020", "20e1", "120", "20 (or 21)", "18+2", "20.5", "-20",
                                       " ".join(str(i) for i in range(100)), "\\boxed{19} \\boxed{20}"]),
    ("arith", "7", None): ("7", ["6 or 7", "7 or 8", "17", "7e0 or 8", "6, 7, 8", "0 1 2 3 4 5 6 7 8 9", "-7"]),
    ("math", "\\frac{1}{2}", None): ("\\frac{1}{2}", ["\\frac{1}{2} or \\frac{1}{3}", "either 0.5 or 1",
                                                       "\\boxed{\\frac{1}{3}}, \\boxed{\\frac{1}{2}}",
                                                       "\\frac{1}{2} \\lor 2", "0.4", "\\frac{1}{2^{1}} + 1"]),
    ("choice", "D", ARC): ("D", ["Answer: A. Answer: B. Answer: C. Answer: D.", "A, B, C, D", "C or D", "(C) or (D)",
                                 "A/B/C/D", "drought or tornado", "fog rain drought tornado"]),
    ("winogrande", "2", WG): ("2", ["Option 1 or Option 2", "1 or 2", "Sarah or Maria", "either 1 or 2", "1/2",
                                    "Option 1 (Sarah) or Option 2 (Maria)"]),
    ("drop", "Smith", None): ("Smith", ["Smith or Jones", "either Smith or Jones", "Jones or Smith"]),
}


@pytest.mark.parametrize("key", list(HACKS), ids=[k[0] for k in HACKS])
def test_reward_hacking_strategies_score_zero(key):
    task, reference, question = key
    honest, hacks = HACKS[key]
    assert score(task, tag(honest), reference, question=question) == 1.0
    paid = {h: score(task, tag(h), reference, question=question) for h in hacks}
    assert paid == dict.fromkeys(hacks, 0.0)


def test_summary_padding_never_raises_the_score():
    reference = "Sarah gave Maria a gift because Sarah was kind."
    honest = score("summary", tag(reference), reference)
    assert honest == 1.0
    for padded in [reference + " " + reference, reference + " and more words here", "x " * 50 + reference]:
        assert score("summary", tag(padded), reference) < honest


def test_rouge_l_equals_rouge_score_and_is_fast_on_long_answers():
    from rouge_score import rouge_scorer

    from pasr.scoring.summary import rouge_l

    reference_scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rng = random.Random(3)
    words = "the cat sat on a mat running dogs were jumping quickly over lazy foxes in park today it 12 x".split()
    for _ in range(1500):
        p = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 40)))
        r = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 30)))
        assert rouge_l(p, r) == reference_scorer.score(r, p)["rougeL"].fmeasure, (p, r)
    reference = "Sarah gave Maria a gift because Sarah was kind and the weather was cold in the town that day."
    for long in ["a " * 50_000, "1 " * 50_000, "man " * 25_000, "cat mat dog the " * 6_250]:
        assert cpu_seconds(rouge_l, long, reference) < LIMIT_S


@pytest.mark.parametrize("blank", ["\u2d7f", "\U00016fe4", "\U0001d159", "\ue000", "\U000f0000", "\ufffc",
                                   "\u200b\u0300", "\u0301\u0302", "\ufffd"])
def test_marks_placeholders_and_private_use_are_not_content(blank):
    from pasr.format import parse

    trace = parse(f"<think>reason<refine>{blank}</refine>more</think><answer>18</answer>")
    assert not trace.valid and not trace.refined
    assert not parse(f"<think>{blank}</think><answer>18</answer>").valid
    assert not parse(f"<think>r</think><answer>{blank}</answer>").valid
    assert parse(f"<think>r</think><answer>e\u0301 {blank}</answer>").valid  # a mark on a letter is content


@pytest.mark.parametrize("token", ["<|return|>", "<|call|>", "<|user|>", "<|observation|>"])
def test_more_end_of_turn_tokens(token):
    from pasr.format import parse

    assert parse("<think>r</think><answer>5</answer>" + token).valid


def test_full_width_labels_and_ranges_of_labels():
    assert score("choice", tag("\uff22"), "B", question=ARC) == 1.0
    assert score("winogrande", tag("\uff12"), "2", question=WG) == 1.0
    for hedge in ["A through D", "A to D", "A thru D"]:
        assert score("choice", tag(hedge), "D", question=ARC) == 0.0
        assert score("choice", tag(hedge), "A", question=ARC) == 0.0


def test_float32_ties_are_ties():
    np = pytest.importorskip("numpy")
    assert refine_reward(np.float32(0.1), [0.1] * 3, refined=True) == -0.5
    assert refine_reward(0.67, [np.float32(0.67)] * 8, refined=True) == -0.5


def test_benchmark_names_in_record_files_and_prompts(tmp_path):
    from pasr.data.records import read_records
    from pasr.prompts import TASK_INSTRUCTIONS, task_instruction

    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps({"id": "1", "question": "q", "reference": "A", "task": "ARC"}) + "\n")
    assert [r.task for r in read_records(path)] == ["choice"]
    assert task_instruction("mmlu") == TASK_INSTRUCTIONS["choice"]
    assert task_instruction("synthetic") == TASK_INSTRUCTIONS["arith"]
