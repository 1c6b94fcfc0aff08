"""GPQA in the PASR authors' local layout: chat prompts, four option orders per question, a shared question id.

The fixtures under fixtures/data/gpqa hold invented science questions (not GPQA's): gpqa.jsonl (chat prompts
with a system message, ``answer`` and ``question_id`` fields), assistant_letter.jsonl (no answer or id field:
the letter is the final assistant message) and plain.jsonl (pasr's own ``question`` layout, per-line ids).
"""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import pytest

from pasr.data import gpqa
from pasr.data.benchmarks import BENCHMARKS, load_benchmark
from pasr.errors import PasrError

FIXTURES = Path(__file__).parent / "fixtures" / "data" / "gpqa"
LETTERS_BY_ORDER = ["B", "C", "A", "D"]  # where the fixtures' four orders put the correct option
CORRECT = {"flask": "It doubles", "carts": "Linear momentum", "enzyme": "One half"}


def topic(question: str) -> str:
    return next(word for word in CORRECT if word in question)


def options_of(question: str) -> dict[str, str]:
    return dict(re.findall(r"^\(?([A-D])[).:] (.*)$", question, flags=re.MULTILINE))


# --- reading the layout ---------------------------------------------------------------------


def test_data_dir_reads_gpqa_jsonl_and_orders_share_the_question_id():
    records = load_benchmark("gpqa", data_dir=FIXTURES)
    assert len(records) == 10
    assert [r.meta["question_id"] for r in records] == ["inv-001"] * 4 + ["inv-002"] * 4 + ["inv-003"] * 2
    assert [r.meta["option_order"] for r in records] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert len({r.id for r in records}) == len(records)
    assert records[0].id == "inv-001#0" and records[9].id == "inv-003#1"  # no per-line id field: derived ids
    for record in records:
        assert record.task == "choice"
        assert record.reference == LETTERS_BY_ORDER[record.meta["option_order"]]
        assert options_of(record.question)[record.reference] == CORRECT[topic(record.question)]
        assert record.meta["benchmark"] == "gpqa" and record.meta["source"] == str(FIXTURES / "gpqa.jsonl")
        assert record.meta["system"].startswith("You are a careful scientist")
        assert "careful scientist" not in record.question  # the system message is not part of the question
        assert record.meta["domain"] == "invented"  # other fields are kept in meta
    # the four orders of one question hold the same options, in four different orders
    first = [options_of(r.question) for r in records[:4]]
    assert len({tuple(o.values()) for o in first}) == 4 and len({frozenset(o.values()) for o in first}) == 1


def test_options_are_the_ones_the_choice_scorer_reads():
    from pasr.scoring.choice import parse_options

    for name in ("gpqa.jsonl", "assistant_letter.jsonl", "plain.jsonl"):
        for record in load_benchmark("gpqa", data_file=FIXTURES / name):
            stem, options = gpqa.question_parts(record.question)
            assert options == parse_options(record.question) and sorted(options) == ["A", "B", "C", "D"]
            assert stem.strip() and not re.search(r"^\(?A[).:]", stem, flags=re.MULTILINE)


def test_letter_from_the_final_assistant_message_and_derived_question_id():
    records = load_benchmark("gpqa", data_file=FIXTURES / "assistant_letter.jsonl")
    assert [r.reference for r in records] == LETTERS_BY_ORDER * 2  # "B", "(C)", "A.", "The answer is D"
    ids = [r.meta["question_id"] for r in records]
    assert len(set(ids[:4])) == 1 and len(set(ids[4:])) == 1 and ids[0] != ids[4]
    stem, _ = gpqa.question_parts(records[0].question)
    assert ids[0] == gpqa.derived_question_id(stem) and re.fullmatch(r"q-[0-9a-f]{12}", ids[0])
    assert [r.id for r in records[:2]] == [f"{ids[0]}#0", f"{ids[0]}#1"]
    assert "system" not in records[0].meta and all("Answer" not in r.question for r in records)


def test_derived_question_id_ignores_case_and_whitespace():
    a = gpqa.derived_question_id("Which  gas is\nlighter than air?\n\n")
    assert a == gpqa.derived_question_id("which gas is lighter THAN air?")
    assert a != gpqa.derived_question_id("Which gas is heavier than air?")


def test_plain_question_layout_keeps_the_files_ids():
    records = load_benchmark("gpqa", data_file=FIXTURES / "plain.jsonl")
    assert [r.id for r in records] == [f"inv-00{q}-v{k}" for q in (2, 3) for k in range(4)]
    assert [r.meta["question_id"] for r in records] == ["inv-002"] * 4 + ["inv-003"] * 4
    assert [r.reference for r in records] == LETTERS_BY_ORDER * 2
    assert all("id" not in r.meta and "qid" not in r.meta and "reference" not in r.meta for r in records)


def test_data_file_wins_over_data_dir_and_limit_still_works(tmp_path):
    records = load_benchmark("gpqa", data_file=FIXTURES / "plain.jsonl", data_dir=FIXTURES)
    assert records[0].meta["source"].endswith("plain.jsonl")
    subset = load_benchmark("gpqa", data_dir=FIXTURES, limit=3, seed=2)
    full = [r.id for r in load_benchmark("gpqa", data_dir=FIXTURES)]
    assert 0 < len(subset) <= 3 and [r.id for r in subset] == sorted((r.id for r in subset), key=full.index)
    assert [r.id for r in subset] == [r.id for r in load_benchmark("gpqa", data_dir=FIXTURES, limit=3, seed=2)]
    with pytest.raises(PasrError, match=r"gpqa\.jsonl not found"):
        load_benchmark("gpqa", data_dir=tmp_path)


@pytest.mark.parametrize("limit", [2, 4, 6, 7, 9])
@pytest.mark.parametrize("seed", [0, 1, 5])
def test_limit_keeps_whole_questions(limit, seed):
    full = load_benchmark("gpqa", data_dir=FIXTURES)
    orders = {}
    for r in full:
        orders.setdefault(r.meta["question_id"], []).append(r.id)
    subset = load_benchmark("gpqa", data_dir=FIXTURES, limit=limit, seed=seed)
    assert 0 < len(subset) <= limit
    kept = {}
    for r in subset:
        kept.setdefault(r.meta["question_id"], []).append(r.id)
    assert all(ids == orders[qid] for qid, ids in kept.items())  # every question with all its orders
    assert [r.id for r in subset] == [r.id for r in full if r.id in {s.id for s in subset}]  # file order


def test_limit_smaller_than_any_question_takes_part_of_one():
    subset = load_benchmark("gpqa", data_file=FIXTURES / "plain.jsonl", limit=3)
    assert len(subset) == 3 and len({r.meta["question_id"] for r in subset}) == 1


def _prompt(stem="Which planet in the invented system is warmest?", options=("Alpha", "Beta", "Gamma", "Delta"),
            style="{L}) {T}"):
    return stem + "\n" + "\n".join(style.format(L="ABCD"[i], T=t) for i, t in enumerate(options))


def _chat(answer="A", user=None, **fields):
    row = {"messages": [{"role": "user", "content": user or _prompt()}], **fields}
    if answer is not None:
        row["answer"] = answer
    return row


def _write(tmp_path, *rows, name="gpqa.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("answer_field", gpqa.ANSWER_FIELDS)
@pytest.mark.parametrize("id_field", gpqa.QUESTION_ID_FIELDS)
def test_answer_and_question_id_field_names(tmp_path, answer_field, id_field):
    path = _write(tmp_path, {"question": _prompt(), answer_field: "C", id_field: 17},
                  {"question": _prompt(options=("Beta", "Alpha", "Delta", "Gamma")), answer_field: "D", id_field: 17})
    records = gpqa.read_gpqa(path)
    assert [(r.id, r.reference, r.meta["question_id"]) for r in records] == [("17#0", "C", "17"), ("17#1", "D", "17")]


def test_first_answer_field_wins_and_decorations_are_read(tmp_path):
    path = _write(tmp_path, _chat(answer="(B)", gold="D", std="C"),
                  _chat(answer=None, std="C.", user=_prompt(options=("Gamma", "Beta", "Alpha", "Delta"))))
    assert [r.reference for r in gpqa.read_gpqa(path)] == ["B", "C"]


@pytest.mark.parametrize("text, letter", [("C", "C"), ("(C)", "C"), ("[C]", "C"), ("C.", "C"), ("C)", "C"),
                                          (" C ", "C"), ("Answer: D", "D"), ("The answer is (A).", "A"),
                                          ("the correct answer is B", "B"), ("E", None), ("AB", None),
                                          ("c", None), ("A or B", None), ("answerC", None), ("", None), (3, None)])
def test_answer_letter(text, letter):
    assert gpqa.answer_letter(text) == letter


def test_several_user_messages_and_system_messages(tmp_path):
    row = {"messages": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Read the question below."},
                        {"role": "user", "content": _prompt()},
                        {"role": "assistant", "content": "B"}]}
    (record,) = gpqa.read_gpqa(_write(tmp_path, row))
    assert record.question == "Read the question below.\n\n" + _prompt()
    assert record.meta["system"] == "Be brief." and record.reference == "B"


def test_option_line_styles(tmp_path):
    rows = [{"question": _prompt(options=options, style=style), "answer": "B", "qid": "x"}
            for style, options in [("{L}) {T}", "pqrs"), ("{L}. {T}", "qprs"), ("{L}: {T}", "rqps"),
                                   ("({L}) {T}", "sqrp")]]
    records = gpqa.read_gpqa(_write(tmp_path, *rows))
    assert [r.meta["option_order"] for r in records] == [0, 1, 2, 3]


# --- the hub path ---------------------------------------------------------------------------


def test_hub_row_sets_question_id():
    row = {"Record ID": "recInvented7", "Question": "Which invented particle is lightest?",
           "Correct Answer": "the zeta", "Incorrect Answer 1": "the eta", "Incorrect Answer 2": "the theta",
           "Incorrect Answer 3": "the iota"}
    record = BENCHMARKS["gpqa"].record_from_row(row, 3)
    assert record.id == "recInvented7" and record.task == "choice"
    assert record.meta == {"question_id": "recInvented7", "option_order": 0, "benchmark": "gpqa",
                           "source": "hub:Idavidrein/gpqa"}
    assert options_of(record.question)[record.reference] == "the zeta"
    with pytest.raises(PasrError, match=r"gpqa \(Idavidrein/gpqa\) row 3: missing field 'Record ID'"):
        BENCHMARKS["gpqa"].record_from_row({k: v for k, v in row.items() if k != "Record ID"}, 3)


def test_gpqa_spec_reads_the_local_layout():
    spec = BENCHMARKS["gpqa"]
    assert spec.local_file == "gpqa.jsonl" and spec.read_local is gpqa.read_gpqa
    assert "hub" in spec.description and "gpqa.jsonl" in spec.description


# --- bad input: one PasrError naming the file and the line ------------------------------------

OTHER = _prompt(options=("Beta", "Alpha", "Gamma", "Delta"))


@pytest.mark.parametrize("rows, message", [
    ([_chat(), '["not", "an", "object"]'], r"line 2: expected a JSON object, got list"),
    ([_chat(), _chat(user=OTHER), '"just text"'], r"line 3: expected a JSON object, got str"),
    ([_chat(), {"answer": "A", "qid": "x"}], r"line 2: no 'messages' \(the chat prompt\) or 'question' field"),
    ([{"question": 5, "answer": "A"}], r"line 1, field 'question': must be a string, got int"),
    ([{"messages": [], "answer": "A"}], r"line 1, field 'messages': expected a list .* got an empty list"),
    ([{"messages": "What?", "answer": "A"}], r"line 1, field 'messages': expected a list .* got str"),
    ([{"messages": [{"role": "user"}], "answer": "A"}], r"line 1, field 'messages': message 1 is not a"),
    ([{"messages": [["user", _prompt()]], "answer": "A"}], r"line 1, field 'messages': message 1 is not a"),
    ([{"messages": [{"role": "user", "content": _prompt()}, {"role": "tool", "content": "x"}], "answer": "A"}],
     r"line 1, field 'messages': message 2 has role 'tool'"),
    ([{"messages": [{"role": "system", "content": _prompt()}], "answer": "A"}],
     r"line 1, field 'messages': no user message"),
    ([{"messages": [{"role": "user", "content": _prompt()}, {"role": "assistant", "content": "A"},
                    {"role": "user", "content": "And?"}], "answer": "A"}],
     r"line 1, field 'messages': message 2 is an assistant message before the end"),
    ([_chat(answer=None)], r"line 1: no answer; expected one of the fields answer, std, reference"),
    ([{"messages": [{"role": "user", "content": _prompt()}, {"role": "assistant", "content": "I think B."}]}],
     r"line 1, final assistant message: 'I think B.' is not one letter A-D"),
    ([_chat(), _chat(answer="E", user=OTHER)], r"line 2, field 'answer': 'E' is not one letter A-D"),
    ([_chat(answer="AB")], r"line 1, field 'answer': 'AB' is not one letter A-D"),
    ([_chat(answer=3)], r"line 1, field 'answer': 3 is not one letter A-D"),
    ([_chat(answer=["A"])], r"line 1, field 'answer': list is not one letter A-D"),
    ([_chat(answer=None, std="")], r"line 1, field 'std': '' is not one letter A-D"),
    ([_chat(answer="D", user=_prompt(options=("Alpha", "Beta", "Gamma")))],
     r"line 1, field 'answer': answer D is not among the options found in the question \(A, B, C\)"),
    ([_chat(user="Which invented planet is warmest? Alpha or Beta?")], r"line 1: found 0 option lines"),
    ([_chat(user="Which invented planet is warmest?\nA) Alpha")], r"line 1: found 1 option lines"),
    ([_chat(user="A) Alpha\nB) Beta")], r"line 1: the question has no text before its options"),
    ([_chat(qid="q1"), _chat(qid="q1", user=_prompt(stem="Which invented moon is coldest?", options="wxyz"))],
     r"line 2: question id 'q1' is also given to line 1, a different question; the file gives one id"),
    ([_chat(qid="q1"), _chat(qid="q1", user=OTHER), _chat(qid="q1")],
     r"line 3: duplicate line: question 'q1' has the same option order on line 1"),
    ([_chat(), _chat(user=_prompt(style="({L})  {T}"))], r"line 2: duplicate line: question 'q-[0-9a-f]{12}'"),
    ([_chat(qid=True)], r"line 1, field 'qid': question id must be a non-empty string or an integer"),
    # one question under two ids: one order without the id field, or with another id
    ([_chat(qid="q1"), _chat(user=OTHER)], r"line 2: the same question \(text and options\) as line 1 under another"),
    ([_chat(qid="q1"), _chat(qid="q2", user=OTHER)], r"line 2: the same question .* \('q2', there 'q1'\)"),
    ([_chat(qid="q1"), _chat(qid="q1", user=OTHER), _chat(qid="q9", user=_prompt(style="({L}) {T}"))],
     r"line 3: the same question \(text and options\) as line 1"),
])
def test_bad_input_names_file_and_line(tmp_path, rows, message):
    path = _write(tmp_path, *rows)
    with pytest.raises(PasrError, match=re.escape(str(path)) + ", " + message):
        load_benchmark("gpqa", data_file=path)


def test_more_than_four_orders(tmp_path):
    orders = ["pqrs", "qprs", "rqps", "sqrp", "srqp"]
    rows = [_chat(user=_prompt(options=o), answer="B") for o in orders]
    path = _write(tmp_path, *rows[:2], {"question": "Another invented question?\nA: yes\nB: no", "answer": "A"},
                  *rows[2:])
    with pytest.raises(PasrError, match=r"line 6: question 'q-[0-9a-f]{12}' appears 5 times \(lines 1, 2, 4, 5, 6\); "
                                        r"a question has at most 4 option orders; lines with the same question text"):
        gpqa.read_gpqa(path)
    given = _write(tmp_path, *[dict(r, question_id="g") for r in rows], name="given.jsonl")
    with pytest.raises(PasrError, match=r"given\.jsonl, line 5: question 'g' appears 5 times .*option orders$"):
        gpqa.read_gpqa(given)


def test_malformed_json_and_empty_file(tmp_path):
    path = _write(tmp_path, _chat(), "{not json")
    with pytest.raises(PasrError, match=r"gpqa\.jsonl, line 2: malformed JSON"):
        gpqa.read_gpqa(path)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PasrError, match=r"empty\.jsonl: the file is empty"):
        gpqa.read_gpqa(tmp_path / "empty.jsonl")


def test_shared_id_field_falls_back_to_derived_record_ids(tmp_path):
    rows = [dict(_chat(answer="A"), id="same"), dict(_chat(answer="B", user=OTHER), id="same")]
    records = gpqa.read_gpqa(_write(tmp_path, *rows))
    qid = records[0].meta["question_id"]
    assert [r.id for r in records] == [f"{qid}#0", f"{qid}#1"] and records[0].meta["id"] == "same"


# --- through the eval runner ----------------------------------------------------------------


def test_eval_result_lines_carry_the_question_id(tmp_path):
    from rich.console import Console
    from test_eval_fakes import ScriptedBackend

    from pasr.eval.runner import EvalSettings, run_eval

    data = FIXTURES / "gpqa.jsonl"
    by_question = {r.question: r for r in gpqa.read_gpqa(data)}

    def reply(conversation):
        user = next(m["content"] for m in conversation if m["role"] == "user")  # the question, then instructions
        (record,) = [r for question, r in by_question.items() if user.startswith(question)]
        return f"<think>comparing the options</think><answer>{record.reference}</answer>"

    settings = EvalSettings(model="fake-model", benchmarks=["gpqa"], methods=["vanilla"], output=tmp_path / "run",
                            data_file=str(data), max_tokens=4)
    run_eval(settings, backend=ScriptedBackend(reply), console=Console(file=StringIO()))
    lines = [json.loads(x) for x in (tmp_path / "run" / "gpqa" / "vanilla.jsonl").read_text().splitlines()]
    records = {r.id: r for r in by_question.values()}
    assert sorted(line["id"] for line in lines) == sorted(records)
    assert all(line["score"] == 1.0 and line["task"] == "choice" for line in lines)
    assert all(line["question_id"] == records[line["id"]].meta["question_id"] for line in lines)
    summary = json.loads((tmp_path / "run" / "gpqa" / "vanilla.summary.json").read_text())
    pooled = summary["per_question"]  # the orders of each question pooled
    questions = {r.meta["question_id"] for r in records.values()}
    assert pooled["questions"] == len(questions) and pooled["lines"] == len(records)
    assert pooled["score"] == 1.0 and pooled["all_right"] == 1.0 and pooled["orders_max"] == 4
