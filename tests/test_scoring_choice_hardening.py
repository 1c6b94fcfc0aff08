"""The multiple-choice rule scorers (choice, winogrande) as a GRPO reward: no input stalls them,
hedging does not pay, the article "A" is no answer.

Whatever these scorers pay for, the policy learns; whatever hangs them stalls a training run.
Times are CPU times of this thread (``time.thread_time``), so a loaded machine does not fail them.
"""

from __future__ import annotations

import itertools
import re
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pasr.scoring import score
from pasr.scoring.choice import extract_label
from pasr.scoring.winogrande import extract_option

WG = "Sarah was a much better surgeon than Maria so _ always got the easier cases.\nOption1: Sarah\nOption2: Maria"
ARC = "High-pressure systems stop air from rising. What will most likely result?\nA: fog\nB: rain\nC: drought\nD: tornado"
ARC_TEXT = {"A": "fog", "B": "rain", "C": "drought", "D": "tornado"}
DIGITS = (
    "In this equation, the total mass of the reactants is\n1: greater than the products\n2: equal to the products\n"
    "3: equal to the mass of AgCl\n4: less than the mass of AgCl"
)
BED = "The wine spilled on the _ but the blanket stayed dry.\nOption1: bed\nOption2: bed sheet"
TEN = "Which one?\n" + "\n".join(f"{c}: item {c.lower()}{c.lower()}" for c in "ABCDEFGHIJ")
VITAMINS = "Which one?\nA: Vitamin C\nB: Vitamin D\nC: Iron\nD: Type A blood"

LIMIT_S = 0.25
"""The bound of test_scoring_hardening.LIMIT_S (see there: linear work, not a stall)."""


def tag(text: str) -> str:
    return f"<answer>{text}</answer>"


def choice(response: str, reference: str, question: str | None = ARC) -> float:
    return score("choice", response, reference, question=question)


def wino(response: str, reference: str, question: str | None = WG) -> float:
    return score("winogrande", response, reference, question=question)


def cpu_seconds(task: str, response: str, reference: str, question: str | None, tries: int = 1) -> float:
    """The CPU time of one scoring, re-measured up to ``tries`` times while over the limit (a stray
    pause is no stall); also checks the score is 0 or 1."""
    best = float("inf")
    for _ in range(tries):
        start = time.thread_time()
        got = score(task, response, reference, question=question)
        best = min(best, time.thread_time() - start)
        assert got in (0.0, 1.0)
        if best < LIMIT_S:
            break
    return best


# --- 1. stalls ------------------------------------------------------------------------------


@pytest.mark.parametrize("spaces", [1000, 2000, 20000])
@pytest.mark.parametrize("task,reference,question", [("winogrande", "1", WG), ("choice", "A", ARC)])
def test_the_reported_stall_is_gone(task, reference, question, spaces):
    response = tag("answer" + " " * spaces + "x")
    assert score(task, response, reference, question=question) == 0.0
    assert cpu_seconds(task, response, reference, question, tries=3) < LIMIT_S


UNITS = [
    " ", "\t", "\n", " \t\n", "answer", "answer ", "Answer: ", "answer is ", "answer  :  ", "option", "option ",
    "Option 1 ", "option\t#\t(", "choice ", "(", "[", "((", "'", '"', "( ", "A ", "A", "I ", "A cat ", "A.", "(A) ",
    "B or ", "Answer: A. ", "1 ", "2 ", "12", "1.", "1,", "\\boxed{", "\\boxed{B}", "}", "\\text{", "*", "**B** ", "`",
    "$", "_", "-", ":", "x", "a ", "fog ", "fog", "bed ", "bed sheet ", "Sarah ", "Maria or ", "é", "\x00", "İ",
]


@pytest.mark.parametrize("unit", UNITS, ids=[repr(u) for u in UNITS])
def test_long_runs_score_fast(unit):
    """100k characters of one repeated piece, with a few prefixes/suffixes, tagged and not."""
    body = unit * (100_000 // len(unit))
    worst = 0.0
    for prefix, suffix in [("", "x"), ("Answer: ", "B")]:
        text = prefix + body + suffix
        for task, reference, question in [("choice", "A", ARC), ("winogrande", "2", BED), ("choice", "J", TEN)]:
            for response in (tag(text), text):
                worst = max(worst, cpu_seconds(task, response, reference, question, tries=3))
    assert worst < LIMIT_S


def test_nested_wrappers_score_fast():
    deep = "\\boxed{" * 5000 + "B" + "}" * 5000
    assert cpu_seconds("choice", tag(deep), "B", ARC, tries=3) < LIMIT_S
    assert choice(tag("\\boxed{\\boxed{\\text{(B)}}}"), "B") == 1.0


# --- 2. hedging -----------------------------------------------------------------------------


def test_the_reported_hedges_get_nothing():
    assert choice(tag("Answer: A. Answer: B. Answer: C. Answer: D."), "D") == 0.0
    assert wino(tag("Option 1 or Option 2"), "2") == 0.0


CHOICE_HEDGES = [
    "Answer: A. Answer: B. Answer: C. Answer: D.", "Answer: C. Answer: D.", "The answer is C. The answer is D.",
    "C or D", "D or C", "either C or D", "C and D", "C & D", "C/D", "A/B/C/D", "C|D", "C D", "C\nD", "C, D",
    "A, B, C, D", "A B C D", "ABCD", "D, or maybe C", "C, or maybe D", "D (or C)", "The answer is D (or C)",
    "D? C?", "[C] [D]", "(C) (D)", "(A) fog or (D) tornado", "D (tornado) or C (drought)", "tornado (D) or drought (C)",
    "D: tornado or C", "D: tornado\nC: drought", "Option C or Option D", "Answer: D or C", "**C** or **D**",
    "\\boxed{C} \\boxed{D}", "\\boxed{C} or \\boxed{D}", "tornado or drought", "drought or tornado", "tornado/drought",
    "fog, rain, drought, tornado", "Answer: tornado or drought", "either D or drought", "D tornado, C drought",
    "D. tornado. Also possible: C. drought", "Option A: fog, Option B: rain, Option C: drought, Option D: tornado",
]


@pytest.mark.parametrize("hedge", CHOICE_HEDGES)
def test_choice_hedges_get_nothing(hedge):
    assert choice(tag(hedge), "D") == 0.0
    assert choice(tag(hedge), "C") == 0.0


CHOICE_HONEST = [
    "D", "(D)", "D)", "[D]", "D.", "d", "Option D", "D: tornado", "D. tornado", "(D) tornado", "Answer: D", "Answer: **D**",
    "Answer: D (tornado)", "Answer: D. tornado", "The answer is D.", "The answer is (D)", "The correct option is D.",
    "tornado", "Tornado", "tornado.", "**D**", "`D`", "\\boxed{D}", "$\\boxed{D}$", "\\text{(D)}", "\\boxed{\\text{D}}",
    "A tornado", "A tornado is the result", "The answer is D because tornadoes form", "D D", "D (tornado)", "D, tornado",
]


@pytest.mark.parametrize("honest", CHOICE_HONEST)
def test_choice_honest_answers_still_score(honest):
    assert choice(tag(honest), "D") == 1.0
    assert choice(tag(honest), "C") == 0.0


WINO_HEDGES = [
    "Option 1 or Option 2", "Option 1 or 2", "1 or 2", "2 or 1", "either 1 or 2", "1 and 2", "1/2", "1, 2", "1 2",
    "Sarah or Maria", "Maria or Sarah", "Sarah/Maria", "Maria (or Sarah)", "Maria, or maybe Sarah", "Sarah and Maria",
    "Option 1 (Sarah) or Option 2", "Option 2: Maria or Option 1: Sarah", "Option1: Sarah\nOption2: Maria",
    "Answer: 1. Answer: 2.", "The answer is 1. The answer is 2.", "\\boxed{1} \\boxed{2}", "(1) (2)",
]


@pytest.mark.parametrize("hedge", WINO_HEDGES)
def test_winogrande_hedges_get_nothing(hedge):
    assert wino(tag(hedge), "1") == 0.0
    assert wino(tag(hedge), "2") == 0.0


WINO_HONEST = [
    "2", "(2)", "Option 2", "option2.", "Option2: Maria", "Option 2 (Maria)", "2: Maria", "2. Maria", "Answer: 2",
    "the answer is 2", "Maria", "maria.", "**Maria**", "\\boxed{2}", "Maria always got the easier cases",
]


@pytest.mark.parametrize("honest", WINO_HONEST)
def test_winogrande_honest_answers_still_score(honest):
    assert wino(tag(honest), "2") == 1.0
    assert wino(tag(honest), "1") == 0.0


def test_contained_option_texts_are_not_a_hedge():
    assert wino(tag("the bed sheet"), "2", BED) == 1.0
    assert wino(tag("Option 2: bed sheet"), "2", BED) == 1.0
    assert wino(tag("the bed"), "1", BED) == 1.0
    assert wino(tag("the bed, or the bed sheet"), "2", BED) == 0.0


def test_labels_inside_option_texts_are_not_read():
    assert choice(tag("B: Vitamin D"), "B", VITAMINS) == 1.0
    assert choice(tag("D: Type A blood"), "D", VITAMINS) == 1.0
    assert choice(tag("Type A blood"), "D", VITAMINS) == 1.0
    assert choice(tag("The answer is Vitamin C"), "A", VITAMINS) == 1.0
    assert choice(tag("Vitamin C or Vitamin D"), "A", VITAMINS) == 0.0


def test_answer_words_that_are_option_texts():
    question = "Why?\nA: initiate\nB: ignore\nC: question\nD: answer\nE: ask"  # CommonsenseQA has such options
    assert choice(tag("The answer is (A)"), "A", question) == 1.0
    assert choice(tag("answer"), "D", question) == 1.0


def test_whole_responses_the_last_explicit_answer_wins_but_not_a_final_hedge():
    assert choice("I first thought A, but the answer is B", "B") == 1.0
    assert choice("Option A (fog) needs rising air. Option B needs it too. So the answer is C.", "C") == 1.0
    assert choice("A or B? The answer is B.", "B") == 1.0
    assert choice("The answer is B, not C", "B") == 1.0
    for hedge in ["the answer is B or C", "The answer is (B) rain, or maybe C", "Answer: A. Answer: B. Answer: C. Answer: D.",
                  "so the answer is either B or C.", "B or C"]:
        assert choice(hedge, "B") == 0.0 and choice(hedge, "C") == 0.0 and choice(hedge, "D") == 0.0, hedge
    assert wino("Option 1 looks plausible, but the answer is 2.", "2") == 1.0
    assert wino("Sarah is the better surgeon, so the easier cases go to Maria.", "2") == 1.0
    for hedge in ["the answer is 1 or 2", "So it is Sarah or Maria.", "Option 1 or Option 2"]:
        assert wino(hedge, "1") == 0.0 and wino(hedge, "2") == 0.0, hedge


@given(st.permutations("ABCD"), st.sampled_from([", ", " or ", "/", " and ", " ", "\n", ", or maybe ", " | "]),
       st.integers(2, 4), st.booleans())
@settings(max_examples=60, deadline=None)
def test_naming_several_choice_options_never_pays(order, joiner, count, by_text):
    picked = order[:count]
    parts = [ARC_TEXT[label] if by_text and i % 2 else f"({label})" if i % 3 == 2 else label for i, label in enumerate(picked)]
    assume(not re.search(r"(?:^|\n)A [a-z]", joiner.join(parts)))  # "A rain" is the article + rain: it names B only
    answer = tag(joiner.join(parts))
    assert all(choice(answer, label) == 0.0 for label in "ABCD"), answer


@given(st.sampled_from(["1", "2", "Option 1", "Option 2", "Sarah", "Maria", "(1)", "(2)", "Option 1 (Sarah)", "Option 2: Maria"]),
       st.sampled_from(["1", "2", "Option 1", "Option 2", "Sarah", "Maria", "(1)", "(2)"]),
       st.sampled_from([" or ", ", ", " and ", "/", " ", ", or maybe ", " or possibly "]))
@settings(max_examples=60, deadline=None)
def test_naming_both_winogrande_options_never_pays(first, second, joiner):
    def option(s: str) -> str:
        return "1" if "1" in s or "Sarah" in s else "2"

    answer = tag(first + joiner + second)
    if option(first) == option(second):
        assert wino(answer, option(first)) == 1.0, answer
    else:
        assert wino(answer, "1") == 0.0 and wino(answer, "2") == 0.0, answer


# --- 3. the article "A" (and the pronoun "I") -----------------------------------------------


def test_the_reported_article_answer_gets_nothing():
    assert choice(tag("A perfect answer cannot be found."), "A") == 0.0


@pytest.mark.parametrize(
    "answer,reference,expected",
    [
        ("A perfect answer cannot be found.", "A", 0.0),
        ("Answer: A perfect answer cannot be found.", "A", 0.0),
        ("A good guess. Really.", "A", 0.0),
        ("Hmm. A good guess", "A", 0.0),
        ("A cat", "A", 0.0),
        ("A good choice is tornado", "D", 1.0),
        ("A good choice is tornado", "A", 0.0),
        ("A drought", "C", 1.0),
        ("A dry spell, so C", "C", 1.0),
        ("A", "A", 1.0),
        ("a", "A", 1.0),
        ("A.", "A", 1.0),
        ("A)", "A", 1.0),
        ("(A)", "A", 1.0),
        ("A: fog", "A", 1.0),
        ("A fog", "A", 1.0),  # the article, then option A's text
        ("A fog forms", "A", 1.0),
        ("A is correct", "A", 1.0),  # "is" never follows the article
        ("A is right", "A", 1.0),
        ("A because fog needs no rising air", "A", 1.0),
        ("Answer: A", "A", 1.0),
        ("Answer: (A) perfect", "A", 1.0),  # bracketed: always a label
        ("The answer is A because fog forms", "A", 1.0),  # a capital A inside a sentence is a label
        ("Answer: A because fog forms", "A", 1.0),
    ],
)
def test_article_rule(answer, reference, expected):
    assert choice(tag(answer), reference) == expected


def test_articles_are_no_last_resort_over_a_whole_response():
    assert choice("A perfect answer cannot be found.", "A") == 0.0
    assert choice("A careful look: the answer is C.", "C") == 1.0


def test_the_pronoun_i_with_ten_options():
    assert choice(tag("I think the answer is J"), "J", TEN) == 1.0
    assert choice(tag("I think J"), "J", TEN) == 1.0
    assert choice(tag("I am not sure"), "I", TEN) == 0.0
    for answer in ["I", "I.", "(I)", "Answer: I", "I is correct"]:
        assert choice(tag(answer), "I", TEN) == 1.0, answer
    assert extract_label("I think E") == "E"  # with five options I is no label at all


# --- other behaviour that must survive -------------------------------------------------------


def test_option_texts_do_not_pay_when_merely_contained():
    every = "fog rain drought tornado"
    assert all(choice(tag(every), label) == 0.0 for label in "ABCD")
    assert all(choice(every, label) == 0.0 for label in "ABCD")
    assert wino(tag("Sarah Maria"), "1") == 0.0 and wino(tag("Sarah Maria"), "2") == 0.0


def test_digit_labelled_items():
    assert choice(tag("2"), "2", DIGITS) == 1.0
    assert choice(tag("B"), "2", DIGITS) == 1.0
    assert choice(tag("B (2)"), "2", DIGITS) == 1.0  # the same option twice
    assert choice(tag("2: equal to the products"), "2", DIGITS) == 1.0
    assert choice(tag("equal to the products"), "2", DIGITS) == 1.0
    assert choice(tag("Answer: 2"), "2", DIGITS) == 1.0
    assert choice(tag("2 or 3"), "2", DIGITS) == 0.0
    assert choice(tag("C"), "2", DIGITS) == 0.0
    assert choice(tag("1.5"), "1", DIGITS) == 0.0  # a number is no label


def test_markup_and_case():
    for answer in ["**B**", "`B`", "\\boxed{B}", "\\text{(B)}", "$B$", "b", "(b)", "*B*", "__B__"]:
        assert choice(tag(answer), "B") == 1.0, answer
    assert choice(tag("B"), "b") == 1.0
    assert extract_option("**Maria**", options={"1": "Sarah", "2": "Maria"}) == "2"


# --- fuzz -----------------------------------------------------------------------------------

PIECES = [
    " ", "  ", "\t", "\n", "answer", "Answer: ", "the answer is ", "option", "Option ", "choice", "(", ")", "[", "]",
    "{", "}", "'", '"', ":", ".", ",", "-", "=", "#", "/", "or ", "and ", "maybe ", "A", "B", "C", "D", "E", "I", "J",
    "1", "2", "3", "a", "b", "A cat ", "I think ", "fog", "rain", "drought", "tornado", "Sarah", "Maria", "bed",
    "sheet", "\\boxed{", "\\text{", "*", "**", "`", "$", "_", "x", "é", "İ", "\x00", "<answer>", "</answer>",
]
ADVERSARIAL = st.lists(st.sampled_from(PIECES), max_size=300).map("".join)
RESPONSES = st.one_of(ADVERSARIAL, st.text(max_size=400), ADVERSARIAL.map(tag), st.text(max_size=200).map(tag))
QUESTIONS = st.sampled_from([ARC, DIGITS, TEN, VITAMINS, None])


@given(RESPONSES, QUESTIONS, st.sampled_from(["A", "B", "C", "D", "J", "1", "2", "4"]))
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_choice_never_raises_or_stalls(response, question, reference):
    if question in (ARC, VITAMINS) and reference in "J4":
        reference = "A"
    assert cpu_seconds("choice", response, reference, question) < LIMIT_S


@given(RESPONSES, st.sampled_from([WG, BED, None]), st.sampled_from(["1", "2"]))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_winogrande_never_raises_or_stalls(response, question, reference):
    assert cpu_seconds("winogrande", response, reference, question) < LIMIT_S


@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8), st.integers(500, 5000))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_repeated_adversarial_blocks(block, times):
    """A short random block repeated up to thousands of times (up to ~100k characters)."""
    text = "".join(block) * times
    text = text[:100_000]
    for task, reference, question in [("choice", "B", ARC), ("winogrande", "2", WG)]:
        for response in (tag(text), text):
            assert cpu_seconds(task, response, reference, question, tries=3) < LIMIT_S


def test_hedge_padding_is_never_worth_more_than_the_honest_answer():
    """For every gold option, an honest answer pays and every padding with other options does not."""
    for gold, other in itertools.permutations("ABCD", 2):
        assert choice(tag(gold), gold) == 1.0
        assert choice(tag(f"{gold}: {ARC_TEXT[gold]}"), gold) == 1.0
        for padded in [f"{gold} or {other}", f"{other}, {gold}", f"Answer: {other}. Answer: {gold}.",
                       f"{ARC_TEXT[gold]} or {ARC_TEXT[other]}", f"({gold}) {ARC_TEXT[gold]} or ({other}) {ARC_TEXT[other]}",
                       f"{gold}/{other}", f"either {other} or {gold}", f"{gold}, or maybe {other}"]:
            assert choice(tag(padded), gold) == 0.0, padded
