"""Reading and writing record files: formats, field mapping, ids, and errors that say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pasr.data.records import Record, read_records, read_rows, write_records
from pasr.errors import PasrError

DATA = Path(__file__).parent / "fixtures" / "data"


def test_jsonl_reads_defaults_ids_numbers_and_meta():
    records = read_records(DATA / "qa.jsonl", task="gsm8k")
    assert [r.id for r in records] == ["qa-0", "q-two", "qa-2"]  # index counts records, blank lines skipped
    assert [r.reference for r in records] == ["5", "6", "3"]  # numbers become text; 3.0 -> "3"
    assert all(r.task == "gsm8k" for r in records)  # the task argument wins over a row's task field
    assert records[0].meta == {"source": "hand"}  # unmapped fields are kept in meta
    assert records[0].question == "What is 2 + 3?"


def test_task_from_rows_when_not_given(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"question": "q", "reference": "r", "task": "math"}\n')
    assert read_records(path)[0].task == "math"
    path.write_text('{"question": "q", "reference": "r"}\n')
    with pytest.raises(PasrError, match=r"mixed.jsonl, line 1: missing field 'task'"):
        read_records(path)


def test_json_list_with_field_mapping_and_id_field():
    records = read_records(DATA / "qa.json", fields={"question": "problem", "reference": "solution"},
                           task="math", id_field="id")
    assert [(r.id, r.question, r.reference) for r in records] == [
        ("7", "What is 7 * 6?", "\\boxed{42}"),
        ("8", "What is 9 - 9?", "\\boxed{0}"),
    ]
    assert records[1].meta == {}


def test_json_list_items_know_their_line():
    assert [line for line, _ in read_rows(DATA / "qa.json")] == [2, 3]


def test_round_trip(tmp_path):
    records = [Record("a", "What is 1 + 1?", "2", "arith", {"difficulty": 1, "steps": [1, 2]}),
               Record("b", "Ünïcode question?", "ß", "open")]
    path = write_records(tmp_path / "out" / "records.jsonl", records)
    assert path.read_text(encoding="utf-8").count("\n") == 2
    assert "Ünïcode" in path.read_text(encoding="utf-8")  # not escaped
    assert read_records(path) == records


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("malformed.jsonl", r"malformed.jsonl, line 3: malformed JSON"),
        ("malformed.json", r"malformed.json, line 3: malformed JSON"),
        ("missing_field.jsonl", r"missing_field.jsonl, line 2: missing field 'reference' or 'answer'"),
        ("wrong_type.jsonl", r"wrong_type.jsonl, line 3, field 'question': question must be a string, got int"),
        ("wrong_type_reference.json", r"wrong_type_reference.json, line 3, field 'answer': reference must be a string"),
        ("not_objects.jsonl", r"not_objects.jsonl, line 2: expected a JSON object, got list"),
        ("empty.jsonl", r"empty.jsonl: the file is empty"),
        ("blank.jsonl", r"blank.jsonl: the file is empty"),
        ("empty_list.json", r"empty_list.json: the JSON list is empty"),
        ("no_such_file.jsonl", r"no_such_file.jsonl: no such file"),
    ],
)
def test_errors_name_file_line_and_field(name, pattern):
    with pytest.raises(PasrError, match=pattern):
        read_records(DATA / name, task="open")


def test_mapped_field_missing_names_it():
    with pytest.raises(PasrError, match=r"qa.jsonl, line 1: missing field 'problem'"):
        read_records(DATA / "qa.jsonl", fields={"question": "problem"}, task="open")
    with pytest.raises(PasrError, match=r"qa.jsonl, line 1: missing field 'uid'"):
        read_records(DATA / "qa.jsonl", task="open", id_field="uid")


def test_unknown_mapping_key_is_rejected():
    with pytest.raises(PasrError, match="not record fields"):
        read_records(DATA / "qa.jsonl", fields={"answer": "solution"}, task="open")


def test_boolean_reference_is_not_a_number(tmp_path):
    path = tmp_path / "bool.jsonl"
    path.write_text(json.dumps({"question": "True or false?", "answer": True}) + "\n")
    with pytest.raises(PasrError, match=r"line 1, field 'answer'"):
        read_records(path, task="open")
