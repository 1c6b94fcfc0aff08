"""Benchmark specs: local files, the data-folder layout, subsets, and hub rows turned into records."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pasr.data import benchmarks
from pasr.data.benchmarks import BENCHMARKS, load_benchmark
from pasr.errors import PasrError

FIXTURES = Path(__file__).parent / "fixtures" / "data" / "benchmarks"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
FAMILIES = ("math", "gsm8k", "arith", "choice", "winogrande", "drop", "summary", "open")


def test_catalogue():
    assert set(BENCHMARKS) == {"gsm8k", "math500", "aime24", "arc", "gpqa", "winogrande", "commonsenseqa", "drop",
                               "mmlu", "xsum", "synthetic", "sums"}
    for name, spec in BENCHMARKS.items():
        assert spec.name == name and spec.task in FAMILIES and spec.description
        assert spec.generated or spec.hub_id
        assert spec.reference_transform in (None, *benchmarks.REFERENCE_TRANSFORMS)
    assert BENCHMARKS["gsm8k"].reference_transform is None  # the gsm8k scorer reads '#### N' itself


def test_unknown_benchmark_lists_known():
    with pytest.raises(PasrError, match=r"unknown benchmark 'gsm9k'.*gsm8k, math500, aime24"):
        load_benchmark("gsm9k")


# --- local files (own fixtures) ---------------------------------------------------------


def test_data_dir_layout():
    gsm8k = load_benchmark("gsm8k", data_dir=FIXTURES)
    assert [r.id for r in gsm8k] == [f"gsm8k-{i}" for i in range(5)]
    assert gsm8k[0].reference.endswith("#### 5") and gsm8k[0].task == "gsm8k"
    assert gsm8k[0].meta["benchmark"] == "gsm8k"

    mmlu = load_benchmark("mmlu", data_dir=FIXTURES)
    assert [r.reference for r in mmlu] == ["B", "C"]  # Ground_truth, stripped
    assert mmlu[0].question.startswith("Which planet") and "\nB. Jupiter" in mmlu[0].question

    aime = load_benchmark("aime24", data_dir=FIXTURES)
    assert (aime[0].id, aime[0].reference, aime[0].task) == ("60", "\\boxed{24}", "math")


def test_drop_alternatives():
    records = load_benchmark("drop", data_dir=FIXTURES)
    assert records[0].reference == "21|21 points"  # ref_text wins
    assert records[1].reference == "Paris"  # no ref_text: the answer, stripped
    assert records[0].task == "drop"


def test_data_file_overrides_and_missing_file_errors(tmp_path):
    records = load_benchmark("gsm8k", data_file=FIXTURES / "gsm8k.jsonl", data_dir=tmp_path)
    assert len(records) == 5
    with pytest.raises(PasrError, match=r"arc.jsonl not found"):
        load_benchmark("arc", data_dir=FIXTURES)
    bad = tmp_path / "mmlu.json"
    bad.write_text('[{"question": "no Question field", "answer": "A"}]')
    with pytest.raises(PasrError, match=r"mmlu.json, line 1: missing field 'Question'"):
        load_benchmark("mmlu", data_dir=tmp_path)


def test_limit_picks_a_reproducible_subset():
    full = [r.id for r in load_benchmark("gsm8k", data_dir=FIXTURES)]
    first = [r.id for r in load_benchmark("gsm8k", data_dir=FIXTURES, limit=3, seed=1)]
    assert first == [r.id for r in load_benchmark("gsm8k", data_dir=FIXTURES, limit=3, seed=1)]
    assert len(first) == 3 and first == sorted(first, key=full.index)  # file order kept
    subsets = {tuple(r.id for r in load_benchmark("gsm8k", data_dir=FIXTURES, limit=3, seed=s)) for s in range(8)}
    assert len(subsets) > 1
    assert len(load_benchmark("gsm8k", data_dir=FIXTURES, limit=50)) == 5
    with pytest.raises(PasrError, match="limit"):
        load_benchmark("gsm8k", data_dir=FIXTURES, limit=0)


def test_synthetic_is_generated():
    records = load_benchmark("synthetic", limit=20, seed=3)
    assert len(records) == 20 and all(r.task == "arith" and r.meta["split"] == "test" for r in records)
    assert [r.id for r in records] == [r.id for r in load_benchmark("synthetic", limit=20, seed=3)]
    assert len(load_benchmark("synthetic")) == BENCHMARKS["synthetic"].size
    assert all(r.meta["split"] == "train" for r in load_benchmark("synthetic", limit=5, split="train"))


def test_synthetic_reads_a_file_of_another_difficulty(tmp_path):
    """`pasr data synthetic --difficulty 3 --split test -o F` then `--benchmark synthetic --data-file F`."""
    import json

    from pasr.data import synthetic

    made = synthetic.generate(12, split="test", difficulty=3)
    path = tmp_path / "level3.jsonl"
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in made), encoding="utf-8")
    records = load_benchmark("synthetic", data_file=path, limit=10)
    assert len(records) == 10 and {r.meta["difficulty"] for r in records} == {3}
    assert {r.id for r in records} <= {r.id for r in made}
    assert all(r.task == "arith" and r.meta["benchmark"] == "synthetic" for r in records)


# --- the hub path, without the hub --------------------------------------------------------

HUB_ROWS = {
    "gsm8k": {"question": "Q?", "answer": "1 + 1 = 2\n#### 2"},
    "math500": {"problem": "Find $x$.", "solution": "... \\boxed{3}", "answer": "3", "subject": "Algebra",
                "level": 1, "unique_id": "test/algebra/1.json"},
    "aime24": {"id": 60, "problem": "Find N.", "solution": "long", "answer": "204", "url": "u", "year": "2024"},
    "arc": {"id": "Mercury_1", "question": "Which is a gas?",
            "choices": {"text": ["rock", "steam", "ice", "wood"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"},
    "commonsenseqa": {"id": "c1", "question": "Where is a bank?", "question_concept": "bank",
                      "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["city", "sea", "sky", "moon", "void"]},
                      "answerKey": "A"},
    "winogrande": {"sentence": "Sarah was better than Maria so _ won.", "option1": "Sarah", "option2": "Maria",
                   "answer": "1"},
    "mmlu": {"question": "2 + 2 = ?", "subject": "math", "choices": ["3", "4", "5", "22"], "answer": 1},
    "drop": {"section_id": "s", "query_id": "q1", "passage": "The team scored 21 points. ",
             "question": "How many points? ",
             "answers_spans": {"spans": [" 21", "21", "21 points"], "types": ["number", "number", "span"]}},
    "xsum": {"document": "A long article.", "summary": "A short summary.", "id": "29870980"},
}

EXPECTED = {
    "gsm8k": ("gsm8k-4", "Q?", "1 + 1 = 2\n#### 2"),
    "math500": ("test/algebra/1.json", "Find $x$.", "3"),
    "aime24": ("60", "Find N.", "204"),
    "arc": ("Mercury_1", "Which is a gas?\nA: rock\nB: steam\nC: ice\nD: wood", "B"),
    "commonsenseqa": ("c1", "Where is a bank?\nA: city\nB: sea\nC: sky\nD: moon\nE: void", "A"),
    "winogrande": ("winogrande-4", "Sarah was better than Maria so _ won.\nOption1: Sarah\nOption2: Maria", "1"),
    "mmlu": ("mmlu-4", "2 + 2 = ?\nA. 3\nB. 4\nC. 5\nD. 22", "B"),
    "drop": ("q1", "The team scored 21 points.\nHere is the question: How many points?", "21|21 points"),
    "xsum": ("29870980", "A long article.", "A short summary."),
}


@pytest.mark.parametrize("name", sorted(HUB_ROWS))
def test_hub_rows_become_records_like_the_local_files(name):
    record = BENCHMARKS[name].record_from_row(HUB_ROWS[name], 4)
    assert (record.id, record.question, record.reference) == EXPECTED[name]
    assert record.task == BENCHMARKS[name].task


def _gpqa_row(i: int) -> dict:
    return {"Record ID": f"rec{i}", "Question": f"Which particle number {i}?", "Correct Answer": f"right {i}",
            "Incorrect Answer 1": f"wrong a{i}", "Incorrect Answer 2": f"wrong b{i}",
            "Incorrect Answer 3": f"wrong c{i}"}


def test_gpqa_choices_are_shuffled_deterministically():
    spec = BENCHMARKS["gpqa"]
    letters = []
    for i in range(40):
        record = spec.record_from_row(_gpqa_row(i), i)
        assert record.id == f"rec{i}" and record.task == "choice"
        options = dict(re.findall(r"^([A-D]): (.*)$", record.question, flags=re.MULTILINE))
        assert sorted(options) == ["A", "B", "C", "D"]
        assert options[record.reference] == f"right {i}"  # the reference letter points at the correct answer
        assert record == spec.record_from_row(_gpqa_row(i), i)  # same row, same order
        letters.append(record.reference)
    assert len(set(letters)) == 4  # the right answer is not always first


def test_hub_row_missing_field():
    with pytest.raises(PasrError, match=r"arc \(allenai/ai2_arc\) row 0: missing field 'choices'"):
        BENCHMARKS["arc"].record_from_row({"id": "x", "question": "q", "answerKey": "A"}, 0)


def test_hub_load_uses_datasets_and_explains_failure(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return [HUB_ROWS["arc"], dict(HUB_ROWS["arc"], id="Mercury_2")]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    records = load_benchmark("arc")
    assert calls == [("allenai/ai2_arc", "ARC-Challenge", "test")]
    assert [r.id for r in records] == ["Mercury_1", "Mercury_2"] and records[0].meta["source"] == "hub:allenai/ai2_arc"
    load_benchmark("arc", split="validation")
    assert calls[-1][2] == "validation"

    def offline(*args, **kwargs):
        raise ConnectionError("no internet")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(PasrError, match=r"cannot load allenai/ai2_arc .*Offline\? Pass --data-file or --data-dir"):
        load_benchmark("arc")
    with pytest.raises(PasrError, match="gated"):
        load_benchmark("gpqa")


# --- the shared benchmark files (present on the development machine only) ---------------------

README_ROWS = {"gsm8k": 1319, "math500": 500, "aime24": 30, "arc": 299, "winogrande": 1267, "commonsenseqa": 1221,
               "drop": 313, "mmlu": 100, "xsum": 313}


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared benchmark folder not present")
@pytest.mark.parametrize("name", sorted(README_ROWS))
def test_shared_files_load(name):
    records = load_benchmark(name, data_dir=SHARED)
    assert len(records) == README_ROWS[name]
    assert len({r.id for r in records}) == len(records)
    assert all(r.question.strip() and r.reference.strip() and r.task == BENCHMARKS[name].task for r in records)
    refs = [r.reference for r in records]
    if name == "gsm8k":
        assert all(re.search(r"#### -?[\d,.]+$", ref) for ref in refs)
    elif name == "aime24":
        assert all(re.fullmatch(r"\\boxed\{\d+\}", ref) for ref in refs)
    elif name in ("arc", "commonsenseqa", "mmlu"):
        assert all(re.fullmatch(r"[A-E1-4]", ref) for ref in refs)
        sep = ". " if name == "mmlu" else ": "
        assert sum(f"\nA{sep}" in r.question for r in records) >= 0.95 * len(records)
    elif name == "winogrande":
        assert set(refs) == {"1", "2"} and all("Option1:" in r.question for r in records)
    elif name == "drop":
        assert all(ref == ref.strip() and "||" not in ref for ref in refs)
        assert sum("|" in ref for ref in refs) > 10
    subset = load_benchmark(name, data_dir=SHARED, limit=10, seed=5)
    assert [r.id for r in subset] == [r.id for r in load_benchmark(name, data_dir=SHARED, limit=10, seed=5)]


def test_cli_show_and_list():
    from typer.testing import CliRunner

    from pasr.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["data", "show", "gsm8k", "--data-dir", str(FIXTURES), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.count("reference:") == 2 and "####" in result.output
    assert "2 of 5 gsm8k records (task gsm8k)" in " ".join(result.output.split())
    result = runner.invoke(app, ["data", "show", "synthetic", "--limit", "1"])
    assert result.exit_code == 0 and "task arith" in result.output
    result = runner.invoke(app, ["data", "show", "nope"])
    assert result.exit_code == 2 and "known benchmarks" in result.output
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0
    assert all(name in result.output for name in ("gsm8k", "synthetic", "winogrande", "xsum"))
