"""DROP scoring: the official drop_eval.py test cases, multi-span answers, the reference encoding, the loaders.

The OFFICIAL_* tables restate, as data, the cases of the DROP authors' tests (``tests/eval/drop_eval_test.py``
in allenai/allennlp-reading-comprehension; ``tests/rc/evaluations/drop_eval_test.py`` in allennlp-models):
each is checked against :func:`get_metrics` (the official function's shape: a span or a list of spans per
side) and, written as a model would write it, through ``score("drop", ...)``.
"""

from __future__ import annotations

import json
import time

import pytest

from pasr.data.benchmarks import BENCHMARKS, load_benchmark
from pasr.data.records import Record
from pasr.scoring import drop, score
from pasr.scoring.drop import format_reference, get_metrics, normalize_answer, parse_reference, score_drop


def _tag(text: str) -> str:
    return f"<answer>{text}</answer>"


# --- the official cases -------------------------------------------------------------------------

OFFICIAL_NORMALIZE_SAME = [("12.0", "12.0  "), ("12.0", "12.000"), ("12.0", "12"), ("12.0", "  1.2e1  ")]
OFFICIAL_NORMALIZE = [("12.0 persons", "12.0 persons"), ("S.K. Singh", "sk singh")]

# (predicted, gold, exact_match, f1); a list is the spans of one answer, a string one span.
OFFICIAL_SINGLE = [
    (["78"], ["78.0"], 1.0, 1.0),
    (["td"], ["the td"], 1.0, 1.0),
    (["the a NOT an ARTICLE the an a"], ["NOT ARTICLE"], 1.0, 1.0),
    (["John Elton"], ["Elton John"], 0.0, 1.0),
    (["50 yard"], ["yard 50"], 0.0, 1.0),
    (["order word right"], ["right word order"], 0.0, 1.0),
    (["Per.i.o.d...."], [".P....e.r,,i;;;o...d,,"], 1.0, 1.0),
    (["Spa     c  e   s     "], ["    Spa c     e s"], 1.0, 1.0),
    (["78-yard"], ["78 yard"], 1.0, 1.0),
    (["78 yard"], ["78-yard"], 1.0, 1.0),
    (["78"], ["78-yard"], 0.0, 0.67),
    (["78-yard"], ["78"], 0.0, 0.67),
    (["This was a triumph"], ["tHIS Was A TRIUMPH"], 1.0, 1.0),
    (["Green bay packers"], ["Green bay packers"], 1.0, 1.0),
    ([""], ["army"], 0.0, 0.0),
    (["packers"], ["Green bay packers"], 0.0, 0.5),
    (["packers"], ["Green bay"], 0.0, 0.0),
    (["yard"], ["36 yard td"], 0.0, 0.0),
    (["23 yards"], ["43 yards"], 0.0, 0.0),
    (["56 yards"], ["56 yd"], 0.0, 0.5),
    (["26"], ["26 yard td"], 0.0, 0.5),
]

OFFICIAL_MULTI = [
    (["td"], ["td", "td"], 0.0, 0.5),
    ("td", ["td", "td"], 0.0, 0.5),
    (["td", "td"], ["td"], 0.0, 0.5),
    (["td", "td"], "td", 0.0, 0.5),
    (["the", "fat", "cat", "the fat", "fat cat", "the fat cat"], ["cat"], 0.0, 0.17),
    (["cat"], ["the", "fat", "cat", "the fat", "fat cat", "the fat cat"], 0.0, 0.17),
    (["the", "fat", "cat", "the fat", "fat cat", "the fat cat"], ["cat", "cat dog"], 0.0, 0.25),
    (["Green bay", "packers"], ["Green bay", "packers"], 1.0, 1.0),
    (["Green", "bay", "packers"], ["Green", "bay", "packers"], 1.0, 1.0),
    (["78-yard", "56", "28", "40", "44", "touchdown"], ["78-yard", "56 yard", "1 yard touchdown"], 0.0, 0.28),
    (["23", "23 yard"], ["23-yard", "56 yards"], 0.0, 0.5),
    (["John Karman", "Joe Hardy"], ["Joe Karman", "John Hardy"], 0.0, 0.5),
    (["ottoman", "Kantakouzenous"], ["ottoman", "army of Kantakouzenous"], 0.0, 0.75),
    (["a"], ["a", "b"], 0.0, 0.5),
    (["b"], ["a", "b"], 0.0, 0.5),
    (["b"], ["b", "a"], 0.0, 0.5),
]


def _answer_strings(answer: dict) -> list[str]:
    """A DROP release answer (number, spans or date) as its spans, as the official evaluation reads it."""
    if answer.get("number"):
        return [str(answer["number"])]
    if answer.get("spans"):
        return list(answer["spans"])
    date = answer["date"]
    return [f"{date['day']} {date['month']} {date['year']}"]


# (answer, validated_answers, prediction, official best F1 over the answers; None: no prediction).
OFFICIAL_JSON = [
    ({"number": "1"}, [{"number": "0"}], "1", 1.0),
    ({"spans": ["2"]}, [{"number": "2"}], "2", 1.0),
    ({"spans": ["0"]}, [{"number": "1"}, {"number": "2"}], "1", 1.0),
    ({"date": {"day": "17", "month": "August", "year": ""}}, [{"spans": ["August"]}, {"number": "17"}],
     "17 August", 1.0),
    ({"spans": ["span1", "span2"]}, [{"spans": ["span2"]}], "span1", 0.5),
    ({"spans": ["1"]}, [{"number": "0"}], None, 0.0),
    ({"spans": ["answer1"]}, [{"spans": ["answer2"]}], "answer", 0.0),
    ({"spans": ["answer1"]}, [], "answer", 0.0),  # the two-question case: 0.0 and 1.0, mean 0.5
    ({"spans": ["answer2"]}, [], "answer2", 1.0),
    # test_type_partition_output asserts only which answer type a score is filed under; F1 as computed
    ({"number": "5"}, [{"spans": ["7-meters"]}], "5-yard", 0.67),
    ({"spans": ["7-meters"]}, [{"number": "5"}], "5-yard", 0.67),
]


def _written(predicted: str | list[str]) -> str:
    """A predicted answer as a model writes it: one span as is, several one per line."""
    return predicted if isinstance(predicted, str) else "\n".join(predicted)


def _reference(gold: str | list[str]) -> str:
    return format_reference([[gold] if isinstance(gold, str) else gold])


@pytest.mark.parametrize("a, b", OFFICIAL_NORMALIZE_SAME)
def test_official_number_parse(a, b):
    assert normalize_answer(a) == normalize_answer(b)


@pytest.mark.parametrize("text, expected", OFFICIAL_NORMALIZE)
def test_official_punctuation(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize("predicted, gold, em, f1", OFFICIAL_SINGLE + OFFICIAL_MULTI)
def test_official_get_metrics(predicted, gold, em, f1):
    assert get_metrics(predicted, gold) == (em, f1)


@pytest.mark.parametrize("predicted, gold, em, f1", OFFICIAL_SINGLE + OFFICIAL_MULTI)
def test_official_cases_through_score(predicted, gold, em, f1):
    assert score("drop", _tag(_written(predicted)), _reference(gold)) == f1


@pytest.mark.parametrize("answer, validated, prediction, f1", OFFICIAL_JSON)
def test_official_evaluate_json_cases(answer, validated, prediction, f1):
    reference = format_reference([_answer_strings(a) for a in [answer, *validated]])
    response = "" if prediction is None else _tag(prediction)
    assert score("drop", response, reference) == f1


def test_official_case_count():
    single = len(OFFICIAL_NORMALIZE_SAME) + len(OFFICIAL_NORMALIZE) + len(OFFICIAL_SINGLE)
    multi = len(OFFICIAL_MULTI)
    json_cases = len(OFFICIAL_JSON)
    assert (single, multi, json_cases) == (27, 16, 11)


# --- the instances and variants -----------------------------------------------------------

SMITH_JONES = format_reference([["Smith", "Jones"]])


@pytest.mark.parametrize("answer, expected", [
    ("Smith", 0.5),  # half of a two-span answer (was 1.0)
    ("Smith, Jones", 1.0),  # the complete answer (was 0.67)
    ("Jones, Smith", 1.0),  # any order
    ("Smith and Jones", 1.0),
    ("Smith & Jones", 1.0),
    ("Smith; Jones", 1.0),
    ("Smith | Jones", 1.0),
    ("Smith\nJones", 1.0),
    ("- Smith\n- Jones", 1.0),
    ("1. Smith\n2. Jones", 1.0),
    ("the Smith, Jones.", 1.0),
    ("Smith, Smith", 0.5),  # a repeated span counts once
    ("Smith, Jones, Smith", 0.67),  # extra spans count 0
    ("Smith, Jones, Brown", 0.67),
    ("Smith Jones", 0.33),  # one span holding both: aligned to one gold span only
    ("Smith or Jones", 0.0),  # a hedge: no credit in any family,
    ("Brown", 0.0),
])
def test_two_span_answer(answer, expected):
    assert score("drop", _tag(answer), SMITH_JONES) == expected


@pytest.mark.parametrize("answer, reference, expected", [
    ("td, td", "td", 0.5),  # official get_metrics(["td", "td"], "td")
    ("td and td", "td", 0.5),
    ("td\ntd", "td", 0.5),
    ("td", "td", 1.0),
    # hedging on a single span gets no full credit
    ("Smith or Jones", "Smith", 0.0),  # a hedge: no credit in any family,
    ("Smith, Jones", "Smith", 0.67),
    ("Smith and Jones", "Smith", 0.5),
    ("Smith, Jones, Brown", "Smith", 0.5),
    # single spans that hold separators still match themselves
    ("Washington, D.C.", "Washington, D.C.", 1.0),
    ("Smith and Wesson", "Smith and Wesson", 1.0),
    ("Smith & Wesson", "Smith and Wesson", 0.8),
    ("22.80% from 25 to 44, 25.40% from 45 to 64", "22.80% from 25 to 44, 25.40% from 45 to 64", 1.0),
    ("irish and united states and english and Danish and swedish and english",
     "irish and united states and english and Danish and swedish and english", 1.0),
    ("ruins, vegetation, vineyards and market gardens", "ruins and vegetation and vineyards and market gardens",
     1.0),
    # a plain '|' reference is alternatives, each one span, as before
    ("Washington", "Washington|Redskins", 1.0),
    ("Washington, Redskins", "Washington|Redskins", 0.67),
    ("The Washington Redskins", "Washington|Redskins", 0.67),
])
def test_single_span_answers(answer, reference, expected):
    assert score("drop", _tag(answer), reference) == expected


@pytest.mark.parametrize("answer, reference, expected", [
    ("1,000", "1000", 1.0),  # the comma of a number is no separator
    ("1,000 and 2,500", '[["1000", "2500"]]', 1.0),
    ("2,500, 1,000", '[["1000", "2500"]]', 1.0),
    ("12, 15", '[["12", "15"]]', 1.0),
    ("12,15", '[["12", "15"]]', 1.0),
    ("15 and 12", '[["12", "15"]]', 1.0),
    ("13, 15", '[["12", "15"]]', 0.5),  # a wrong number scores 0 for its span
    ("12, 15", "12", 0.67),  # as the official metric reads the string "12, 15"
    ("23-yard and 56-yard", '[["23-yard", "56-yard"]]', 1.0),
    ("23 yards, 56", '[["23-yard", "56-yard"]]', 0.58),
    ("12.72.", "12.72", 1.0),  # pasr's one difference: sentence punctuation after a number
    ("5.0", "5", 1.0),
    ("6 yards", "5 yards", 0.0),
])
def test_numbers_in_spans(answer, reference, expected):
    assert score("drop", _tag(answer), reference) == expected


@pytest.mark.parametrize("answer, expected", [
    ("Brown, Green", 1.0),
    ("Green and Brown", 1.0),
    ("Smith, Jones", 1.0),
    ("Smith, Green", 0.67),  # bag F1 against the span Smith; spans of different answers do not add up
    ("Smith", 1.0),  # the third alternative is the single span Smith
    ("Brown", 0.5),
])
def test_alternatives_that_are_multi_span(answer, expected):
    reference = format_reference([["Smith", "Jones"], ["Brown", "Green"], "Smith"])
    assert reference == '[["Smith", "Jones"], ["Brown", "Green"], "Smith"]'
    assert score("drop", _tag(answer), reference) == expected


@pytest.mark.parametrize("answer", [
    "Smith, Jones, and Brown", "Smith, Jones and Brown", "Brown; Jones; Smith", "* Smith\n* Jones\n* Brown",
    "(1) Smith\n(2) Jones\n(3) Brown", "Smith\n\nJones\n\nBrown\n",
])
def test_three_span_answer_in_list_forms(answer):
    assert score("drop", _tag(answer), format_reference([["Smith", "Jones", "Brown"]])) == 1.0


def test_untagged_response_and_list_reference():
    assert score_drop("Smith, Jones", [["Smith", "Jones"]]) == 1.0
    assert score_drop("Smith", ["Smith", "Jones"]) == 1.0  # a list of strings: alternatives
    assert score_drop("Smith", [("Smith", "Jones")]) == 0.5


# --- the reference encoding ------------------------------------------------------------------------


@pytest.mark.parametrize("reference, answers", [
    ("Washington|Redskins", [("Washington",), ("Redskins",)]),
    (" 21 | 21 points ||21", [("21",), ("21 points",)]),
    ("Paris", [("Paris",)]),
    ("", []),
    ("  |  ", []),
    ('[["Smith", "Jones"], "Smith"]', [("Smith", "Jones"), ("Smith",)]),
    ('  [["Smith", " ", "Jones"], ["Smith", "Jones"]]', [("Smith", "Jones")]),
    ('["a|b", "c"]', [("a|b",), ("c",)]),
    # not the JSON shape: the plain form
    ("[1]", [("[1]",)]),
    ("[]", [("[]",)]),
    ('[["Smith", 2]]', [('[["Smith", 2]]',)]),
    ("[not json]|x", [("[not json]",), ("x",)]),
    ('["unclosed"', [('["unclosed"',)]),
    (None, []),
    (21, [("21",)]),
    (["Smith", ["Smith", "Jones"], None, ""], [("Smith",), ("Smith", "Jones")]),
])
def test_parse_reference(reference, answers):
    assert parse_reference(reference) == answers


@pytest.mark.parametrize("answers, text", [
    (["Washington", "Redskins"], "Washington|Redskins"),
    ([["21"], " 21 ", "21 points"], "21|21 points"),
    ([["Smith", "Jones"]], '[["Smith", "Jones"]]'),
    (["a|b", "c"], '["a|b", "c"]'),
    (['["x"]'], '["[\\"x\\"]"]'),  # a lone span that would read as JSON is written as JSON
    ([["Mönch", "Zoë"], "Zoë"], '[["Mönch", "Zoë"], "Zoë"]'),
    ([], ""),
    ([" ", [""]], ""),
])
def test_format_reference(answers, text):
    assert format_reference(answers) == text
    assert parse_reference(text) == parse_reference(answers)


# --- never raises, stays fast ------------------------------------------------------------------------


@pytest.mark.parametrize("response", [
    None, "", "<answer></answer>", "<answer>", 17, 3.5, "nan", "inf", "1e999", "-", ",,,;;;|||\n\n", "and",
    "and and &", "1,", ",1", "\u00a0\u3000", "\x00\x1f", "(1) (2) 3)", "- \n- ", "[[", "<answer>" * 50,
    "٣, ٤", "🙂, 🙂", "a" * 5000, "1" * 5000, "1," * 2500,
])
@pytest.mark.parametrize("reference", [
    None, "", "|", "nan", "1e999", "Smith", '[["Smith", "Jones"], "td"]', '[["the", "a"]]', "[[[]]]", 5,
    ["x", None, 3, ["y", 4]], {"spans": ["x"]},
])
def test_odd_input_never_raises(response, reference):
    value = score_drop(response, reference)
    assert isinstance(value, float) and 0.0 <= value <= 1.0


def test_empty_reference_scores_zero():
    assert score_drop("<answer></answer>", "") == 0.0
    assert score_drop("<answer>anything</answer>", " | ") == 0.0


def _cold_ms(response: str, reference: str) -> float:
    drop._normalize_token.cache_clear()
    drop._is_number.cache_clear()
    start = time.perf_counter()
    score_drop(response, reference)
    return (time.perf_counter() - start) * 1000


@pytest.mark.parametrize("response", [
    # prose with commas, "and"s, numbers and lines
    ("The Ravens scored 1,000 points, and the Lions, 12.5; then Smith and Jones ran 23-yard plays.\n" * 60)[:5000],
    ("Smith, " * 800)[:5000],
    ("a, b and c; " * 500)[:5000],
    ("1," * 2500),
])
def test_a_long_answer_is_fast(response):
    for reference in ("Smith", '[["Smith", "Jones", "1000"], "td"]', '[["a", "b", "c", "d", "e", "f", "g"]]'):
        assert min(_cold_ms(_tag(response), reference) for _ in range(5)) < 10.0


# --- loaders: the hub row and the local file --------------------------------------------------------


def _row(spans: list[str], types: list[str] | None = None) -> dict:
    answers = {"spans": spans} if types is None else {"spans": spans, "types": types}
    return {"section_id": "nfl_1", "query_id": "q7", "passage": "Passage. ", "question": "Who? ",
            "answers_spans": answers}


@pytest.mark.parametrize("spans, types, reference", [
    # validation rows hold every validated answer in turn
    (["Chaz Schilens", "JaMarcus Russell"], ["span", "span"], "Chaz Schilens|JaMarcus Russell"),  # disagree
    ([" Chaz Schilens", "Chaz Schilens "], ["span", "span"], "Chaz Schilens"),  # agree
    (["Smith", "Jones", "Smith", "Jones"], ["span"] * 4, '[["Smith", "Jones"]]'),  # agree on two spans
    (["Smith", "Jones", "Jones", "the Smith"], ["span"] * 4, '[["Smith", "Jones"]]'),  # in another order
    (["Smith", "Jones", "Brown"] * 3, ["span"] * 9, '[["Smith", "Jones", "Brown"]]'),
    (["Smith", "Jones", "Smith"], ["span"] * 3, "Smith|Jones"),  # not copies of one block: alternatives
    ([" 21", "21", "21 points"], ["number", "number", "span"], "21|21 points"),
    (["2", "Smith", "Jones", "Smith", "Jones"], ["number"] + ["span"] * 4, '["2", ["Smith", "Jones"]]'),
    (["17 August 1752", "17 August 1752"], ["date", "date"], "17 August 1752"),
    (["A", "B", "A", "B"], None, '[["A", "B"]]'),  # no types: all spans
    (["a | b", "a | b"], ["span", "span"], '["a | b"]'),
    (["", " "], ["span", "span"], ""),
])
def test_hub_reference(spans, types, reference):
    from pasr.data.benchmarks import _drop_reference

    assert _drop_reference(_row(spans, types)) == reference


def test_hub_row_becomes_a_scorable_record():
    record = BENCHMARKS["drop"].record_from_row(_row(["Smith", "Jones", "Jones", "Smith"], ["span"] * 4), 3)
    assert (record.id, record.question, record.task) == ("q7", "Passage.\nHere is the question: Who?", "drop")
    assert record.reference == '[["Smith", "Jones"]]'
    assert score("drop", _tag("Smith"), record.reference) == 0.5
    assert score("drop", _tag("Jones and Smith"), record.reference) == 1.0


def test_local_file_references(tmp_path):
    rows = [
        {"question": "Q1", "answer": " 21", "ref_text": "21| 21 points |21||"},  # the authors' plain form
        {"question": "Q2", "answer": " Paris"},  # no ref_text: the answer
        {"question": "Q3", "answer": " Smith", "ref_text": '[["Smith", "Jones"], "Smith and Jones"]'},
        {"question": "Q4", "answer": " Smith", "ref_text": [["Jones", "Smith"], "Brown"]},  # a JSON list in the file
        {"question": "Q5", "answer": " diabetes and hypertension", "ref_text": "diabetes and hypertension|diabetes"},
    ]
    (tmp_path / "drop.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = load_benchmark("drop", data_dir=tmp_path)
    assert [r.reference for r in records] == [
        "21|21 points",
        "Paris",
        '[["Smith", "Jones"], "Smith and Jones"]',
        '[["Jones", "Smith"], "Brown"]',
        "diabetes and hypertension|diabetes",  # " and " inside an alternative stays one span
    ]
    assert score("drop", _tag("Smith"), records[2].reference) == 0.5  # half of either answer
    assert score("drop", _tag("Smith, Jones"), records[3].reference) == 1.0
    assert score("drop", _tag("diabetes"), records[4].reference) == 1.0


def test_local_transform_keeps_the_answer_without_alternatives():
    record = Record(id="d", question="Q", reference=" 5 ", task="drop", meta={"ref_text": " | "})
    assert BENCHMARKS["drop"].transform(record).reference == "5"
