"""Training never reads the split pasr evaluates on, and a baseline's held-out questions are never its training ones."""

from __future__ import annotations

import logging
import types

import pytest

from pasr.baselines import common
from pasr.data import benchmarks
from pasr.data.benchmarks import BENCHMARKS, training_split
from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.train.command import DEFAULT_TRAIN_RECIPE, parse_config
from pasr.train.data import load_training_records

WITHOUT_TRAINING_SPLIT = ("math500", "aime24", "gpqa")


@pytest.mark.parametrize("name", sorted(set(BENCHMARKS) - set(WITHOUT_TRAINING_SPLIT)))
def test_every_other_benchmark_trains_on_a_split_it_is_not_evaluated_on(name):
    spec = BENCHMARKS[name]
    assert training_split(name) == spec.train_split
    assert spec.train_split != spec.split


@pytest.mark.parametrize("name", WITHOUT_TRAINING_SPLIT)
def test_an_evaluation_only_benchmark_is_refused_for_training(name):
    with pytest.raises(PasrError) as info:
        training_split(name)
    message = str(info.value)
    assert "\n" not in message and name in message and "data_file" in message
    assert f"data_task {BENCHMARKS[name].task}" in message
    split = BENCHMARKS[name].split
    assert (f"its only split, '{split}', is the one pasr evaluates on" if split == "train"
            else f"apart from the '{split}' split pasr evaluates on") in message


def hub_rows(calls):
    def fake_hub(spec, split):
        calls.append((spec.name, split))
        return [Record(id=f"{split}-{i}", question=f"{split} question {i}", reference=str(i), task=spec.task)
                for i in range(5)]

    return fake_hub


def training_config(dataset, **kw):
    values = dict(dataset=dataset, data_file=None, data_fields=None, data_task=None, train_size=None, seed=0,
                  data_seed_offset=0, synthetic_family="arith", synthetic_difficulty=None)
    values.update(kw)
    return types.SimpleNamespace(**values)


@pytest.mark.parametrize("name", ["gsm8k", "arc", "mmlu", "drop"])
def test_training_on_a_benchmark_reads_its_training_split(monkeypatch, name):
    calls = []
    monkeypatch.setattr(benchmarks, "_hub", hub_rows(calls))
    records = load_training_records(training_config(name, train_size=3))
    assert calls == [(name, BENCHMARKS[name].train_split)]
    assert len(records) == 3 and all(r.id.startswith(BENCHMARKS[name].train_split) for r in records)


def test_evaluation_still_reads_the_evaluation_split(monkeypatch):
    calls = []
    monkeypatch.setattr(benchmarks, "_hub", hub_rows(calls))
    benchmarks.load_benchmark("gsm8k")
    assert calls == [("gsm8k", "test")]


@pytest.mark.parametrize("name", WITHOUT_TRAINING_SPLIT)
def test_loading_training_records_of_an_evaluation_only_benchmark_fails_before_the_hub(monkeypatch, name):
    calls = []
    monkeypatch.setattr(benchmarks, "_hub", hub_rows(calls))
    with pytest.raises(PasrError, match="no training split"):
        load_training_records(training_config(name))
    assert calls == []


@pytest.mark.parametrize("name", WITHOUT_TRAINING_SPLIT)
def test_pasr_train_refuses_it_while_parsing(name):
    with pytest.raises(PasrError) as info:
        parse_config("train", ["--dataset", name], DEFAULT_TRAIN_RECIPE)
    message = str(info.value)
    assert "\n" not in message and "dataset" in message and "no training split" in message


def test_a_file_for_an_evaluation_only_benchmark_is_the_users_choice(tmp_path):
    """`--dataset math500 --data_file F` trains on F (the user's records, not pasr's evaluation split)."""
    path = tmp_path / "math.jsonl"
    path.write_text('{"question": "1+1?", "answer": "2", "unique_id": "a"}\n', encoding="utf-8")
    parse_config("train", ["--dataset", "math500", "--data_file", str(path)], DEFAULT_TRAIN_RECIPE)


# --- held-out exclusion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", [
    lambda q: q,
    lambda q: q.upper(),
    lambda q: "  " + q.replace(" ", "\n") + "\t",
    lambda q: q.replace(" ", "   "),
])
def test_heldout_leaves_out_training_questions_in_any_spacing_or_case(caplog, variant):
    config = types.SimpleNamespace(synthetic_family="arith", synthetic_difficulty=None, seed=0)
    heldout = common.heldout_records(config, 12)
    train = [variant(heldout[3].question), variant(heldout[7].question)]
    with caplog.at_level(logging.WARNING, logger="pasr.baselines"):
        kept = common.heldout_records(config, 12, exclude=train)
    assert [r.question for r in kept] == [r.question for i, r in enumerate(heldout) if i not in (3, 7)]
    assert "2 held-out question(s) are also training questions" in caplog.text


def test_question_key():
    assert common.question_key("What is\n2 + 2?") == common.question_key("  what IS 2 + 2? ")
    assert common.question_key("2 + 2") != common.question_key("2 + 3")


def test_star_leaves_out_its_training_questions(tmp_path, monkeypatch):
    """STaR's held-out set excludes its training questions (it excluded nothing before)."""
    from pasr.baselines import star

    config = star.StarConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, star_heldout=10)
    heldout = star.heldout_records(config)
    kept = star.heldout_records(config, exclude=[heldout[0].question.upper()])
    assert [r.question for r in kept] == [r.question for r in heldout[1:]]
