"""STaR: rationalisation hints never reach the training text; iterations restart from the base model."""

from __future__ import annotations

import copy
import json
import re

import pytest
from train_helpers import AlwaysRight, generate_with

from pasr.baselines.star import (
    STAR_HINT,
    StarConfig,
    collect_rationales,
    fewshot_examples,
    generation_prompt,
    heldout_records,
    run_star,
    training_records,
)
from pasr.data import synthetic
from pasr.errors import PasrError
from pasr.format import parse
from pasr.prompts import STANDARD_SYSTEM_PROMPT, chat
from pasr.scoring import Scorer
from pasr.train.config import ModelConfig

HINT = re.compile(r"Hint: the correct answer is (\S+?)\.")
HINT_PREFIX = STAR_HINT.split("{")[0]


class ScriptedStudent:
    """A backend that is wrong without a hint and follows the hint when it gets one.

    ``knows``: questions it answers right unaided. ``blurts``: questions whose rationalisation says
    "the hint", which must be dropped. Records every conversation and the model it stands for.
    """

    name = "scripted"
    chunk_size = 3

    def __init__(self, model: str = "base", knows=(), blurts=(), answers=None):
        self.model = model
        self.knows, self.blurts = set(knows), set(blurts)
        self.answers = answers or {}
        self.conversations: list[list[dict]] = []
        self.closed = False

    def generate(self, conversations, max_tokens, temperature=0.0):
        out = []
        for conv in conversations:
            self.conversations.append(copy.deepcopy(conv))
            question = conv[-1]["content"].split("\n\n")[0]
            hint = HINT.search(conv[-1]["content"])
            if hint:
                answer = hint.group(1)
                think = "As the hint says" if question in self.blurts else f"Counting step by step gives {answer}"
                text = f"<think>{think}.</think><answer>{answer}</answer>"
            elif question in self.knows:
                text = f"<think>I work it out.</think><answer>{self.answers[question]}</answer>"
            else:
                text = "<think>I guess.</think><answer>-1</answer>"
            out.append((text, len(text.split())))
        return out

    def close(self):
        self.closed = True


def star_config(tmp_path, **overrides) -> StarConfig:
    values = dict(
        output_dir=str(tmp_path / "star"), dataset="synthetic", star_iterations=1, star_questions=6,
        star_fewshot=2, star_heldout=4, star_max_new_tokens=8, star_generation_batch_size=4,
        max_steps=1, per_device_train_batch_size=2, learning_rate=1e-4, logging_steps=1, save_strategy="no",
        use_cpu=True, bf16=False, report_to="none", seed=0, max_length=256, dataloader_num_workers=0,
    )
    values.update(overrides)
    return StarConfig(**values)


def all_text(example: dict) -> str:
    return "\n".join(m["content"] for m in example["prompt"] + example["completion"])


def test_rationalisation_hint_never_leaks_into_training_text(tmp_path):
    config = star_config(tmp_path)
    records = training_records(config)
    shots = fewshot_examples(config, exclude={r.question for r in records})
    answers = {r.question: r.reference for r in records}
    knows, blurts = {records[0].question, records[1].question}, {records[2].question}
    student = ScriptedStudent(knows=knows, blurts=blurts, answers=answers)
    found = collect_rationales(lambda convs: student.generate(convs, 8), records, shots, Scorer(),
                               system=STANDARD_SYSTEM_PROMPT)

    assert (found.direct, found.rationalized, found.wrong, found.hint_mentions) == (2, 3, 4, 1)
    hinted = [c for c in student.conversations if HINT.search(c[-1]["content"])]
    assert len(hinted) == 4  # the backend was really given the hint, for the four wrong questions
    assert all(HINT_PREFIX in m["content"] for c in hinted for m in c if m["role"] == "user")  # shots too
    for example in found.examples:
        record = next(r for r in records if r.id == example["id"])
        assert example["prompt"] == chat(STANDARD_SYSTEM_PROMPT, record.question, record.task)
        text = all_text(example)
        assert HINT_PREFIX not in text and "hint" not in text.lower()
        assert parse(example["completion"][0]["content"]).answer == record.reference
    assert {e["kind"] for e in found.examples} == {"direct", "rationalized"}
    assert records[2].id not in {e["id"] for e in found.examples}  # blurted the hint: dropped


def test_no_rationalisation_keeps_only_direct(tmp_path):
    config = star_config(tmp_path)
    records = training_records(config)
    student = ScriptedStudent(knows={records[0].question}, answers={r.question: r.reference for r in records})
    found = collect_rationales(lambda convs: student.generate(convs, 8), records, [], Scorer(),
                               system=STANDARD_SYSTEM_PROMPT, rationalize=False)
    assert [e["id"] for e in found.examples] == [records[0].id]
    assert not any(HINT.search(c[-1]["content"]) for c in student.conversations)


def test_fewshot_are_worked_train_split_solutions_apart_from_training_and_heldout(tmp_path):
    config = star_config(tmp_path, star_fewshot=4, star_questions=20, star_heldout=20)
    records, heldout = training_records(config), heldout_records(config)
    used = {r.question for r in records} | {r.question for r in heldout}
    shots = fewshot_examples(config, exclude=used)
    assert len(shots) == 4 and not used & {s.question for s in shots}
    test_split = {r.question for r in synthetic.generate(300, seed=config.seed, split="test")}
    assert not test_split & {s.question for s in shots}
    for shot in shots:
        trace = parse(shot.solution)
        assert trace.valid and not trace.refined and trace.answer == shot.reference
    prompt = generation_prompt(records[0], shots, STANDARD_SYSTEM_PROMPT)
    assert [m["role"] for m in prompt] == ["system"] + ["user", "assistant"] * 4 + ["user"]
    assert all(HINT_PREFIX not in m["content"] for m in prompt)


def test_config_errors():
    with pytest.raises(PasrError, match="star_iterations"):
        StarConfig(output_dir="x", star_iterations=0, use_cpu=True, bf16=False)
    with pytest.raises(PasrError, match="star_backend"):
        StarConfig(output_dir="x", star_backend="openai", use_cpu=True, bf16=False)
    with pytest.raises(PasrError, match="star_fewshot_file"):
        fewshot_examples(StarConfig(output_dir="x", dataset="gsm8k", star_heldout=0, use_cpu=True, bf16=False), set())
    # non-built-in training data needs a held-out benchmark, refused when the config is made (before any work)
    with pytest.raises(PasrError, match="star_heldout_benchmark: name a held-out benchmark"):
        StarConfig(output_dir="x", dataset="gsm8k", use_cpu=True, bf16=False)
    assert StarConfig(output_dir="x", dataset="gsm8k", star_heldout_benchmark="gsm8k", use_cpu=True,
                      bf16=False).star_heldout == 64


def test_heldout_file_without_a_heldout_benchmark_is_refused(tmp_path):
    with pytest.raises(PasrError, match="star_heldout_file.*star_heldout_benchmark") as err:
        star_config(tmp_path, star_heldout_file=str(tmp_path / "gsm8k.jsonl"))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("task, overrides, match", [
    (None, dict(judge_all=True), "judge_all needs a judge"),
    ("open", dict(), "open-ended questions"),
    ("poetry", dict(), "poetry"),
])
def test_records_are_checked_before_any_model_loads(tmp_path, task, overrides, match):
    """As `pasr train`'s check_records, before generation (the backend factory is never called)."""
    if task:
        path = tmp_path / "train.jsonl"
        path.write_text("".join(json.dumps({"question": f"q{i}?", "reference": "1"}) + "\n" for i in range(2)))
        shots = tmp_path / "shots.jsonl"
        shots.write_text(json.dumps({"question": "1+1?", "solution": "<answer>2</answer>", "task": "arith"}) + "\n")
        overrides = dict(overrides, dataset="file", data_file=str(path), data_task=task, star_heldout=0,
                         star_fewshot_file=str(shots), star_fewshot=1)

    def no_model(path):
        raise AssertionError(f"a model was loaded ({path}) before the records were checked")

    config = star_config(tmp_path, **overrides)
    with pytest.raises(PasrError, match=match) as err:
        run_star(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=no_model, scorer=Scorer())
    assert "\n" not in str(err.value)


def test_two_iterations_restart_from_base_and_generate_with_latest(tmp_path, monkeypatch):
    """Scripted generation, real SFT of the tiny model: log, data files, models and which model did what."""
    import pasr.train.sft as sft

    config = star_config(tmp_path, star_iterations=2)
    records = training_records(config)
    answers = {r.question: r.reference for r in records}
    backends: list[ScriptedStudent] = []

    def factory(path):
        backends.append(ScriptedStudent(path, knows={records[0].question}, answers=answers))
        return backends[-1]

    bases = []
    real_run_sft = sft.run_sft

    def spy(cfg, model_config, *, examples=None):
        bases.append(model_config.model_name_or_path)
        assert all(set(e) == {"prompt", "completion"} and HINT_PREFIX not in all_text(e) for e in examples)
        return real_run_sft(cfg, model_config, examples=examples)

    monkeypatch.setattr(sft, "run_sft", spy)
    result = run_star(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory, scorer=Scorer())

    out = tmp_path / "star"
    assert bases == ["tiny-random", "tiny-random"]  # every iteration fine-tunes the base model
    assert [b.model for b in backends] == ["tiny-random", str(out / "iter_1" / "final"), str(out / "iter_2" / "final")]
    assert all(b.closed for b in backends)
    rows = [json.loads(line) for line in (out / "star_log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    for row in rows[1:]:
        assert (row["questions"], row["direct"], row["rationalized"], row["kept"]) == (6, 1, 5, 6)
        assert row["heldout_n"] == 4 and row["heldout_accuracy"] == 0.0  # the student guesses -1 on held-out
    data = [json.loads(line) for line in (out / "iter_2" / "star_data.jsonl").read_text().splitlines()]
    assert len(data) == 6 and not any(HINT_PREFIX in all_text(e) for e in data)
    assert result.model_dir == str(out / "final")
    from pasr.models import load_model

    assert sum(p.numel() for p in load_model(result.model_dir).parameters()) > 0

    # a rerun resumes: nothing is generated or trained again
    backends.clear()
    bases.clear()
    again = run_star(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory, scorer=Scorer())
    assert backends == [] and bases == [] and [r["iteration"] for r in again.iterations] == [0, 1, 2]


def test_one_iteration_with_the_real_backend_saves_a_loadable_model(tmp_path):
    """`pasr star`'s path end to end on the tiny model: real generation, SFT, held-out eval, saved models."""
    config = star_config(tmp_path, star_questions=4, star_heldout=2, star_require_answer_tag=False,
                         star_eval_base=False)
    result = run_star(config, ModelConfig(model_name_or_path="tiny-random"), scorer=AlwaysRight())
    out = tmp_path / "star"
    [row] = result.iterations
    assert row["kept"] == row["direct"] == 4 and row["rationalized"] == 0
    assert row["heldout_accuracy"] == 1.0 and 1 <= row["heldout_tokens_mean"] <= 8
    generate_with(out / "final")
    summary = json.loads((out / "star_summary.json").read_text())
    assert summary["model_dir"] == str(out / "final") and len(summary["iterations"]) == 1


def test_star_cli_nothing_kept_is_a_clear_error(tmp_path):
    """The tiny random model answers nothing right: the command says so instead of training on nothing."""
    from typer.testing import CliRunner

    from pasr.cli import app

    result = CliRunner().invoke(app, [
        "star", "--config", "cpu-star.yaml", "--model_name_or_path", "tiny-random", "--output_dir",
        str(tmp_path / "star"), "--star_questions", "2", "--star_fewshot", "1", "--star_heldout", "0",
        "--star_max_new_tokens", "4", "--bf16", "false",
    ])
    assert isinstance(result.exception, PasrError), result.output
    assert "kept no rationale" in str(result.exception)
