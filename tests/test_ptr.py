"""PTR: refinement examples hold [system, question, weaker answer, instruction] -> better answer, the loss covers the
refined answer only, evaluation chains the instruction over rounds; the run resumes and saves a loadable model."""

from __future__ import annotations

import copy
import json

import pytest
from train_helpers import generate_with

from pasr.baselines import ptr
from pasr.baselines.ptr import (
    PtrConfig,
    build_examples,
    heldout_records,
    refinement_example,
    run_ptr,
    sample_answers,
    training_records,
)
from pasr.errors import PasrError
from pasr.eval.methods import METHODS, ChainConfig, changes_answer, run_method
from pasr.prompts import PTR_REFINE_INSTRUCTION, STANDARD_SYSTEM_PROMPT, chat
from pasr.scoring import Scorer
from pasr.train.config import ModelConfig


def ptr_config(tmp_path, **overrides) -> PtrConfig:
    values = dict(
        output_dir=str(tmp_path / "ptr"), dataset="synthetic", ptr_questions=6, ptr_samples=4, ptr_heldout_n=4,
        ptr_rounds=2, ptr_max_new_tokens=8, ptr_generation_batch_size=4, ptr_keep_right_share=0.25,
        max_steps=1, per_device_train_batch_size=2, learning_rate=1e-4, logging_steps=1, save_strategy="no",
        use_cpu=True, bf16=False, report_to="none", seed=0, max_length=256, dataloader_num_workers=0,
    )
    values.update(overrides)
    return PtrConfig(**values)


def right(record, j=0) -> str:
    return f"<think>I work it out ({j}).</think><answer>{record.reference}</answer>"


def wrong(j=0) -> str:
    return f"<think>I guess ({j}).</think><answer>-{j + 1}</answer>"


RIGHTS = [0, 1, 2, 3, 4, 1]
"""Right samples (of 4) per training question in the scripted runs: 0 (nothing better), 4 (all right), else mixed."""


class ScriptedModel:
    """A backend: training question ``i`` gets ``RIGHTS[i]`` right samples of 4 (the first ones asked), held-out
    questions a wrong first answer. Asked to refine, a ``trained`` model answers right, the base model repeats
    its previous answer. Records conversations and temperatures."""

    name = "scripted"
    chunk_size = 5

    def __init__(self, model: str, records, heldout, trained: bool = False):
        self.model, self.trained = model, trained
        self.by_question = {r.question: r for r in list(records) + list(heldout)}
        self.rights = {r.question: RIGHTS[i % len(RIGHTS)] for i, r in enumerate(records)}
        self.asked: dict[str, int] = {}
        self.conversations: list[list[dict]] = []
        self.temperatures: list[float] = []
        self.closed = False

    def generate(self, conversations, max_tokens, temperature=0.0):
        out = []
        for conv in conversations:
            self.conversations.append(copy.deepcopy(conv))
            self.temperatures.append(temperature)
            question = conv[1]["content"].split("\n\n")[0]
            record = self.by_question[question]
            if conv[-1]["content"] == PTR_REFINE_INSTRUCTION:
                text = right(record, 9) if self.trained else conv[-2]["content"]
            else:
                j = self.asked.get(question, 0)
                self.asked[question] = j + 1
                text = right(record, j) if j < self.rights.get(question, 0) else wrong(j)
            out.append((text, len(text.split())))
        return out

    def close(self):
        self.closed = True


# --- the data ---------------------------------------------------------------------------------------


def scripted_samples(records):
    model = ScriptedModel("base", records, [])
    return sample_answers(lambda convs: model.generate(convs, 8, 0.8), records, Scorer(), 4), model


class CountingScorer:
    """The real scorer, remembering which responses it was asked to score."""

    def __init__(self):
        self.real, self.asked = Scorer(), []

    def score_many(self, tasks, responses, references, questions=None):
        self.asked.extend(responses)
        return self.real.score_many(tasks, responses, references, questions)


def test_samples_are_scored_once_in_order_and_shared_out_over_processes(tmp_path, monkeypatch):
    """One process: the same scores, in the same order, as scoring everything at once. Under `accelerate launch`
    (simulated: 3 processes) each process scores only its share and the gathered scores are that same list, so
    every process builds the same examples."""
    import accelerate
    import accelerate.utils

    from pasr.generation import runtime
    from pasr.scoring import score_records

    records = training_records(ptr_config(tmp_path))
    samples, model = scripted_samples(records)
    texts = [t for row in samples for t, _ in row]
    every = [r for r in records for _ in range(4)]
    assert [s for row in samples for _, s in row] == score_records(Scorer(), every, texts)
    counting = CountingScorer()
    assert runtime.sharded_score(counting, every, texts) == score_records(Scorer(), every, texts)
    assert counting.asked == texts  # one process: everything, once, in order

    shares, world = [], 3

    class FakeState:
        num_processes = world

        def __init__(self):
            self.process_index = rank

    monkeypatch.setattr(accelerate, "PartialState", FakeState)
    monkeypatch.setattr(accelerate.utils, "gather_object", lambda mine: shares.append(mine) or mine)
    asked = []
    for rank in range(world):
        counting = CountingScorer()
        runtime.sharded_score(counting, every, texts)
        asked.append(counting.asked)
    assert asked == [texts[runtime.share(len(texts), world, r)] for r in range(world)]  # each its share only
    assert [s for share in shares for s in share] == score_records(Scorer(), every, texts)  # gathered in order
    with pytest.raises(ValueError, match="one text per record"):
        runtime.sharded_score(Scorer(), every, texts[:-1])


def test_examples_hold_question_weaker_answer_instruction_and_better_answer(tmp_path):
    records = training_records(ptr_config(tmp_path))
    samples, model = scripted_samples(records)
    by_question = {r.question: r for r in records}
    for conv in model.conversations:  # the standard prompt, nothing else
        record = by_question[conv[1]["content"].split("\n\n")[0]]
        assert conv == chat(STANDARD_SYSTEM_PROMPT, record.question, record.task)
    assert len(model.conversations) == 4 * len(records)
    assert [sum(s for _, s in row) for row in samples] == RIGHTS  # scored by the real scorer
    found = build_examples(records, samples, keep_right_share=0.25, seed=0)
    refine = [e for e in found.examples if e["kind"] == "refine"]
    assert len(refine) == 3 + 2 + 1 + 3  # per mixed question, each distinct wrong sample
    by_id = {r.id: r for r in records}
    for example in refine:
        record = by_id[example["id"]]
        system, question, first, instruction = example["prompt"]
        assert [system, question] == chat(STANDARD_SYSTEM_PROMPT, record.question, record.task)
        assert first["role"] == "assistant" and first["content"].startswith("<think>I guess")
        assert instruction == {"role": "user", "content": PTR_REFINE_INSTRUCTION}
        [completion] = example["completion"]
        assert completion["role"] == "assistant" and completion["content"].endswith(f"<answer>{record.reference}"
                                                                                   "</answer>")
        assert example["first_score"] < example["refined_score"]
    questions_with_pairs = {e["id"] for e in refine}
    assert records[0].id not in questions_with_pairs and records[4].id not in questions_with_pairs


def test_weaker_is_always_strictly_worse_with_partial_scores(tmp_path):
    """Graded scores (a judge's, F1): every sample below the best is a first answer; ties are never paired."""
    records = training_records(ptr_config(tmp_path))[:2]
    samples = [[("<answer>a</answer>", 0.5), ("<answer>b</answer>", 0.2), ("<answer>c</answer>", 0.5),
                ("<answer>d</answer>", 0.9)],
               [("<answer>e</answer>", 0.3), ("<answer>f</answer>", 0.3)]]
    found = build_examples(records, samples, keep_right_share=0.0)
    assert sorted(e["prompt"][2]["content"] for e in found.examples) == ["<answer>a</answer>", "<answer>b</answer>",
                                                                         "<answer>c</answer>"]
    assert all(e["completion"][0]["content"] == "<answer>d</answer>" for e in found.examples)
    assert all(e["first_score"] < e["refined_score"] for e in found.examples)


def test_consistency_filter_a_refined_answer_states_its_answer(tmp_path):
    records = training_records(ptr_config(tmp_path))[:1]
    ref = records[0].reference
    samples = [[(f"The answer is {ref}.", 1.0), (wrong(0), 0.0), (right(records[0]), 1.0)]]
    found = build_examples(records, samples, keep_right_share=0.0)
    assert [e["completion"][0]["content"] for e in found.examples] == [right(records[0])]
    assert found.counts["filtered_no_answer_tag"] == 1
    loose = build_examples(records, samples, keep_right_share=0.0, require_answer_tag=False)
    assert [e["completion"][0]["content"] for e in loose.examples] == [f"The answer is {ref}."]  # the first best


@pytest.mark.parametrize("share", [0.0, 0.2, 0.25, 0.5])
def test_keep_right_share(tmp_path, share):
    records = training_records(ptr_config(tmp_path, ptr_questions=12))
    samples = [[(right(r, 0), 1.0), (right(r, 1), 1.0), (wrong(0), 0.0), (wrong(1), 0.0)] for r in records]
    found = build_examples(records, samples, keep_right_share=share, seed=3)
    refine = [e for e in found.examples if e["kind"] == "refine"]
    keep = [e for e in found.examples if e["kind"] == "keep"]
    assert len(refine) == 24 and len(keep) == round(share / (1 - share) * 24)
    assert abs(len(keep) / len(found.examples) - share) < 0.02
    assert found.counts["keep_right"] == len(keep) and found.counts["keep_right_candidates"] == 24
    for example in keep:  # a right first answer, kept right by another right sample
        assert example["first_score"] == example["refined_score"] == 1.0
        assert example["prompt"][2]["content"] != example["completion"][0]["content"]
        assert example["prompt"][3]["content"] == PTR_REFINE_INSTRUCTION
    if 0 < len(keep) < 24:  # a random draw over the questions, not one question's pairs after another
        assert len({e["id"] for e in keep}) > len(keep) // 2


def test_keep_right_is_capped_by_the_right_answers_there_are(tmp_path):
    records = training_records(ptr_config(tmp_path))[:2]
    samples = [[(right(records[0]), 1.0), (wrong(0), 0.0), (wrong(1), 0.0), (wrong(2), 0.0)],
               [(wrong(0), 0.0), (wrong(1), 0.0)]]
    found = build_examples(records, samples, keep_right_share=0.9)
    assert found.counts["keep_right_wanted"] == 27 and found.counts["keep_right"] == 1  # the one right sample
    [keep] = [e for e in found.examples if e["kind"] == "keep"]
    assert keep["prompt"][2]["content"] == keep["completion"][0]["content"] == right(records[0])


def test_heldout_questions_are_never_training_questions(tmp_path):
    config = ptr_config(tmp_path, ptr_questions=200, ptr_heldout_n=200)
    train = {r.question for r in training_records(config)}
    held = heldout_records(config, exclude=train)
    assert len(held) == 200 and not train & {r.question for r in held}
    # a training question that were also held out is left out of the evaluation
    assert heldout_records(config, exclude={held[0].question})[0].question != held[0].question


# --- the loss mask ----------------------------------------------------------------------------------


def test_sft_loss_covers_only_the_refined_answer(tmp_path):
    """The example through `pasr sft`'s dataset and TRL's SFTTrainer and collator: labels only on the completion."""
    from trl import SFTTrainer

    from pasr.models import load_model, load_tokenizer, resolve
    from pasr.train.masking import sft_dataset, tokenize_with_masks

    config = ptr_config(tmp_path)
    record = training_records(config)[0]
    better = right(record, 7)
    example = refinement_example(record, wrong(3), better, kind="refine", first_score=0.0, refined_score=1.0)
    plain = {"prompt": example["prompt"], "completion": example["completion"]}
    path = resolve("tiny-random")
    tokenizer = load_tokenizer(path)
    args, dataset = sft_dataset(config, [plain], tokenizer)
    trainer = SFTTrainer(model=load_model(path), args=args, train_dataset=dataset, processing_class=tokenizer)
    row = trainer.train_dataset[0]  # TRL tokenizes and builds the labels (-100: no loss) when it prepares the data
    batch = trainer.data_collator([{k: row[k] for k in ("input_ids", "labels")}])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    assert (ids, labels) == (row["input_ids"], row["labels"])

    prompt_ids = tokenizer.apply_chat_template(example["prompt"], tokenize=True, return_dict=True,
                                               add_generation_prompt=True)["input_ids"]
    assert ids[:len(prompt_ids)] == list(prompt_ids)
    assert all(label == -100 for label in labels[:len(prompt_ids)])  # system, question, weaker answer, instruction
    assert all(label != -100 for label in labels[len(prompt_ids):])  # the refined answer (and its end of turn)
    learned = tokenizer.decode([i for i, label in zip(ids, labels) if label != -100])
    assert learned.strip().startswith(better) and wrong(3) not in learned and PTR_REFINE_INSTRUCTION not in learned
    # the same positions as pasr's own TRL-equivalent tokenization
    [mine] = tokenize_with_masks([plain], tokenizer)
    assert mine["input_ids"] == ids and mine["completion_mask"] == [int(label != -100) for label in labels]


# --- the evaluation method ----------------------------------------------------------------------------


def test_eval_method_ptr_runs_rounds_turns_and_counts_their_tokens(tmp_path):
    assert "ptr" in METHODS
    records = heldout_records(ptr_config(tmp_path, ptr_heldout_n=3))
    model = ScriptedModel("m", [], records, trained=True)
    outcomes = run_method("ptr", records, ChainConfig(backend=model, max_tokens=8, rounds=3))
    for record, outcome in zip(records, outcomes):
        # round 1 changes the answer; rounds 2 and 3 keep it (the same <answer>): no revision, as self-refine's
        assert [t["name"] for t in outcome.turns] == ["answer", "revision", "feedback", "feedback"]
        assert outcome.turns[0]["text"] == wrong(0) and outcome.final == right(record, 9) == outcome.turns[-1]["text"]
        assert outcome.tokens == sum(len(t["text"].split()) for t in outcome.turns) and outcome.revisions == 1
        assert all(t["prompt"] == PTR_REFINE_INSTRUCTION for t in outcome.turns[1:])
    last = model.conversations[-1]
    assert [m["role"] for m in last] == ["system", "user"] + ["assistant", "user"] * 3
    assert [m["content"] for m in last[3::2]] == [PTR_REFINE_INSTRUCTION] * 3
    assert len(model.conversations) == 4 * len(records)  # every example refines every round: no early stop


class EchoModel:
    """Asked to refine, repeats its previous answer (reworded outside <answer>), or changes it on ``change_on`` rounds."""

    def __init__(self, change_on=()):
        self.change_on = set(change_on)

    def generate(self, conversations, max_tokens, temperature=0.0):
        out = []
        for conv in conversations:
            k = sum(1 for m in conv if m["role"] == "user") - 1  # refinement round of this turn (0: first answer)
            answer = str(10 + sum(1 for c in self.change_on if c <= k))  # changed on those rounds, then kept
            out.append((f"<think>round {k}</think><answer> {answer} </answer>", 3))
        return out


@pytest.mark.parametrize("change_on, names", [
    ((), ["answer", "feedback", "feedback"]),
    ((1,), ["answer", "revision", "feedback"]),
    ((2,), ["answer", "feedback", "revision"]),
])
def test_eval_method_ptr_names_a_revision_only_when_the_answer_changes(tmp_path, change_on, names):
    """A round that keeps the extracted answer is ``feedback`` (not counted as refined); the final text is still
    the last reply, and the report's refine rate counts only changed answers."""
    from pasr.eval.metrics import refine_rate
    from pasr.eval.runner import result_line

    records = heldout_records(ptr_config(tmp_path, ptr_heldout_n=2))
    outcomes = run_method("ptr", records, ChainConfig(backend=EchoModel(change_on), max_tokens=8, rounds=2))
    for outcome in outcomes:
        assert [t["name"] for t in outcome.turns] == names
        assert outcome.final == outcome.turns[-1]["text"] and "round 2" in outcome.final
    lines = [result_line(r, "synthetic", "ptr", "m", o, 1.0) for r, o in zip(records, outcomes)]
    assert refine_rate(lines) == (1.0 if change_on else 0.0)


def test_report_knows_ptr():
    from pasr.report.loading import METHOD_ORDER
    from pasr.report.plots import METHOD_COLORS

    assert "ptr" in METHOD_ORDER and "ptr" in METHOD_COLORS
    assert METHOD_COLORS["ptr"] not in {c for m, c in METHOD_COLORS.items() if m != "ptr"}


def test_eval_cli_ptr_and_report_row(tmp_path):
    """`pasr eval --methods ptr --rounds 2` on the tiny model, then `pasr report` has a ptr row with its tokens."""
    from typer.testing import CliRunner

    from pasr.cli import app

    out, report = tmp_path / "eval", tmp_path / "report"
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--model", "tiny-random", "--benchmark", "synthetic", "--limit", "2",
                                 "--max-tokens", "4", "--methods", "ptr", "--rounds", "2", "--output", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "synthetic" / "ptr.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    for line in lines:
        turns = line["turns"]
        assert [t["name"] for t in turns[:1]] == ["answer"] and len(turns) == 3
        for before, turn in zip(turns, turns[1:]):  # a revision exactly where the answer changed
            assert turn["name"] == ("revision" if changes_answer(before["text"], turn["text"]) else "feedback")
        assert line["refined"] == any(t["name"] == "revision" for t in turns)
        assert line["tokens"] == sum(t["tokens"] for t in line["turns"]) and line["final"] == line["turns"][-1]["text"]
    summary = json.loads((out / "synthetic" / "ptr.summary.json").read_text())
    result = runner.invoke(app, ["report", str(out), "-o", str(report)])
    assert result.exit_code == 0, result.output
    table = (report / "table1.md").read_text()
    [row] = [r for r in table.splitlines() if r.startswith("| tiny-random | ptr |")]
    assert summary["tokens_mean"] == sum(line["tokens"] for line in lines) / 2
    assert f"| {summary['tokens_mean']:.0f} |" in row  # the cost counts every turn


# --- config ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("ptr_questions", 0), ("ptr_samples", 1), ("ptr_temperature", 0.0), ("ptr_max_new_tokens", 0),
    ("ptr_generation_batch_size", 0), ("ptr_backend", "openai"), ("ptr_generation_dtype", "fp8"), ("ptr_rounds", 0), ("ptr_keep_right_share", 1.0),
    ("ptr_keep_right_share", -0.1), ("ptr_heldout_n", -1), ("ptr_require_answer_tag", "yes"), ("dataset", "nope"),
    ("ptr_heldout_benchmark", "nope"),
])
def test_bad_values_name_the_field(tmp_path, field, value):
    with pytest.raises(PasrError, match=field) as err:
        ptr_config(tmp_path, **{field: value})
    assert "\n" not in str(err.value)


def test_config_defaults_and_registry_protocol(tmp_path):
    config = PtrConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False)
    assert (config.dataset, config.ptr_samples, config.ptr_temperature, config.ptr_rounds) == ("synthetic", 4, 0.8, 3)
    assert ptr.Config is PtrConfig and ptr.run is run_ptr
    with pytest.raises(PasrError, match="ptr_heldout_benchmark"):
        ptr_config(tmp_path, dataset="gsm8k")
    assert ptr_config(tmp_path, dataset="gsm8k", ptr_heldout_n=0).dataset == "gsm8k"


# --- the run ----------------------------------------------------------------------------------------------


def test_run_builds_data_trains_evaluates_rounds_and_resumes(tmp_path, monkeypatch):
    """Scripted generation, real SFT of the tiny model: data, log by round, which model did what, resume."""
    import pasr.train.sft as sft

    config = ptr_config(tmp_path)
    records = training_records(config)
    heldout = heldout_records(config)
    backends: list[ScriptedModel] = []
    out = tmp_path / "ptr"

    def factory(path):
        backends.append(ScriptedModel(path, records, heldout, trained=path == str(out / "final")))
        return backends[-1]

    trained_on = []
    real_run_sft = sft.run_sft

    def spy(cfg, model_config, *, examples=None):
        trained_on.append((model_config.model_name_or_path, cfg.output_dir, examples))
        return real_run_sft(cfg, model_config, examples=examples)

    monkeypatch.setattr(sft, "run_sft", spy)
    result = run_ptr(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory, scorer=Scorer())

    assert [b.model for b in backends] == ["tiny-random", str(out / "final")] and all(b.closed for b in backends)
    [(base, sft_dir, examples)] = trained_on
    assert base == "tiny-random" and sft_dir == str(out / "sft")
    assert all(set(e) == {"prompt", "completion"} for e in examples)
    data = [json.loads(line) for line in (out / "ptr_data.jsonl").read_text().splitlines()]
    assert [{"prompt": e["prompt"], "completion": e["completion"]} for e in data] == examples
    refine = [e for e in data if e["kind"] == "refine"]
    assert len(refine) == 9 and len(data) - len(refine) == 3  # keep share 0.25: 9 pairs, 3 right -> right
    # the base model sampled the training questions (temperature 0.8); evaluation was greedy, held-out only
    base_model, trained_model = backends
    train_q, held_q = {r.question for r in records}, {r.question for r in heldout}
    sampled = [c for c, t in zip(base_model.conversations, base_model.temperatures) if t > 0]
    assert len(sampled) == 6 * 4 and {c[1]["content"].split("\n\n")[0] for c in sampled} == train_q
    for model in backends:
        evaluated = [c for c, t in zip(model.conversations, model.temperatures) if t == 0]
        assert len(evaluated) == 4 * 3 and {c[1]["content"].split("\n\n")[0] for c in evaluated} == held_q
    assert not train_q & held_q

    rows = [json.loads(line) for line in (out / "ptr_log.jsonl").read_text().splitlines()]
    assert [r["model"] for r in rows] == ["base", "trained"]
    base_row, trained_row = rows
    assert [r["accuracy"] for r in base_row["rounds"]] == [0.0, 0.0, 0.0]  # repeats its wrong answer
    assert [r["accuracy"] for r in trained_row["rounds"]] == [0.0, 1.0, 1.0]  # refines to the right one
    assert (trained_row["fixed"], trained_row["broken"]) == (4, 0)
    tokens = [r["tokens_mean"] for r in trained_row["rounds"]]
    assert tokens[0] < tokens[1] < tokens[2] and tokens[2] == pytest.approx(len(wrong(0).split()) +
                                                                            2 * len(right(heldout[0], 9).split()))
    assert trained_row["data"]["refine"] == 9 and trained_row["sft_steps"] == 1
    assert result.model_dir == str(out / "final") and (out / "final" / "config.json").is_file()
    assert [(r["model"], r["round"]) for r in result.rows] == [(m, str(k)) for m in ("base", "trained")
                                                               for k in range(3)]
    summary = json.loads((out / "ptr_summary.json").read_text())
    assert summary["rows"] == result.rows and summary["data"]["examples"] == 12

    # a rerun resumes: nothing is generated or trained again
    backends.clear()
    trained_on.clear()
    again = run_ptr(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory, scorer=Scorer())
    assert backends == [] and trained_on == [] and again.rows == result.rows
    # without the log: evaluated again, but the data is not sampled again and nothing is trained
    (out / "ptr_log.jsonl").unlink()
    run_ptr(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory, scorer=Scorer())
    assert trained_on == [] and all(t == 0 for b in backends for t in b.temperatures)
    # a rerun with other settings would reuse data and model made with the old ones: refused, nothing runs
    backends.clear()
    for changed, name in ((dict(ptr_samples=3), "ptr_samples 4 -> 3"), (dict(learning_rate=1e-3), "learning_rate")):
        with pytest.raises(PasrError, match=name) as err:
            run_ptr(ptr_config(tmp_path, **changed), ModelConfig(model_name_or_path="tiny-random"),
                    backend_factory=factory, scorer=Scorer())
        assert "\n" not in str(err.value) and "--output_dir" in str(err.value)
    with pytest.raises(PasrError, match="base_model"):
        run_ptr(config, ModelConfig(model_name_or_path="smollm2-135m-instruct"), backend_factory=factory,
                scorer=Scorer())
    assert backends == [] and trained_on == []
    # what only changes how the run goes may change
    run_ptr(ptr_config(tmp_path, ptr_generation_batch_size=2), ModelConfig(model_name_or_path="tiny-random"),
            backend_factory=factory, scorer=Scorer())
    assert backends == [] and trained_on == []


def test_run_settings_are_written_once_and_a_different_rerun_is_refused(tmp_path):
    from pasr.baselines import common

    model = ModelConfig(model_name_or_path="tiny-random")
    first = ptr.settings(ptr_config(tmp_path), model)
    assert first["ptr_samples"] == 4 and first["base_model"] == "tiny-random" and "ptr_backend" not in first
    assert first["learning_rate"] == 1e-4 and first["dataset"] == "synthetic"
    out = tmp_path / "run"
    out.mkdir()
    assert common.hold_settings(out, first) is False
    assert json.loads((out / common.SETTINGS_FILE).read_text()) == first
    assert common.hold_settings(out, ptr.settings(ptr_config(tmp_path), model)) is True
    # a start that failed before making anything (a mistyped model): the corrected rerun replaces its settings
    other = ptr.settings(ptr_config(tmp_path), ModelConfig(model_name_or_path="nosuch/model"))
    (out / ".pasr-run.json").write_text("{}")
    assert common.hold_settings(out, other) is False and common.produced(out) == []
    assert json.loads((out / common.SETTINGS_FILE).read_text())["base_model"] == "nosuch/model"
    assert common.hold_settings(out, first) is False
    (out / "ptr_data.jsonl").write_text("")  # once the run has made something, other settings are refused
    with pytest.raises(PasrError, match=r"ptr_samples 4 -> 3, ptr_temperature 0.8 -> 0.5\)") as err:
        common.hold_settings(out, ptr.settings(ptr_config(tmp_path, ptr_samples=3, ptr_temperature=0.5), model))
    assert "\n" not in str(err.value)
    (out / common.SETTINGS_FILE).write_text("{")
    with pytest.raises(PasrError, match="run_settings.json"):
        common.hold_settings(out, first)


def test_no_pair_is_a_clear_error(tmp_path):
    config = ptr_config(tmp_path, ptr_heldout_n=0, ptr_worked_fallback=False)
    records = training_records(config)
    monkey = ScriptedModel("base", records, [])
    monkey.rights = {q: 0 for q in monkey.rights}  # every sample wrong: nothing to refine towards
    with pytest.raises(PasrError, match="no weaker -> better pair"):
        run_ptr(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=lambda path: monkey,
                scorer=Scorer())
    assert not (tmp_path / "ptr" / "ptr_data.jsonl").exists()


def test_worked_fallback_when_the_model_answers_nothing_right(tmp_path):
    """No own pair at all: the built-in task's worked solutions are the better answers (the paper's strong model)."""
    config = ptr_config(tmp_path, ptr_heldout_n=0)
    records = training_records(config)
    model = ScriptedModel("base", records, [])
    model.rights = {q: 0 for q in model.rights}
    result = run_ptr(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=lambda path: model,
                     scorer=Scorer())
    data = [json.loads(line) for line in (tmp_path / "ptr" / "ptr_data.jsonl").read_text().splitlines()]
    assert result.data["better_source"] == "worked" and len(data) == 6 * 4  # every distinct wrong sample
    by_id = {r.id: r for r in records}
    for example in data:
        record = by_id[example["id"]]
        assert example["source"] == "worked" and example["prompt"][2]["content"].startswith("<think>I guess")
        assert example["completion"][0]["content"] == ptr.worked_solution(record, "arith")
        assert example["first_score"] < example["refined_score"] == 1.0
    assert (tmp_path / "ptr" / "final" / "config.json").is_file() and result.rows == []


def no_model(path):
    raise AssertionError(f"a model was loaded ({path}) before the records were checked")


def write_records(path, n=2):
    path.write_text("".join(json.dumps({"question": f"q{i}?", "reference": "1"}) + "\n" for i in range(n)))
    return str(path)


@pytest.mark.parametrize("overrides, match", [
    (dict(judge_all=True), "judge_all needs a judge"),
    (dict(dataset="file", data_task="open", ptr_heldout_n=0), "open-ended questions"),
    (dict(dataset="file", data_task="poetry", ptr_heldout_n=0), "poetry"),
])
def test_records_are_checked_before_any_model_loads(tmp_path, overrides, match):
    """As `pasr train`'s check_records: open questions or judge_all without a judge, unknown tasks -- one line,
    before generation (the backend factory is never called) and before any data is written."""
    if overrides.get("dataset") == "file":
        overrides["data_file"] = write_records(tmp_path / "train.jsonl")
    config = ptr_config(tmp_path, **overrides)
    with pytest.raises(PasrError, match=match) as err:
        run_ptr(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=no_model, scorer=Scorer())
    assert "\n" not in str(err.value) and not (tmp_path / "ptr" / "ptr_data.jsonl").exists()


def test_heldout_records_are_checked_too(tmp_path, monkeypatch):
    config = ptr_config(tmp_path)
    open_ = [r.__class__(**{**r.__dict__, "task": "open"}) for r in heldout_records(config)]
    monkeypatch.setattr(ptr, "heldout_records", lambda config, exclude=(): open_)
    with pytest.raises(PasrError, match="held-out data .*open-ended"):
        run_ptr(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=no_model, scorer=Scorer())


def test_heldout_file_without_a_heldout_benchmark_is_refused(tmp_path):
    with pytest.raises(PasrError, match="ptr_heldout_file.*ptr_heldout_benchmark") as err:
        ptr_config(tmp_path, ptr_heldout_file=str(tmp_path / "gsm8k.jsonl"))
    assert "\n" not in str(err.value)


def test_corrupt_data_counts_is_one_line_naming_the_file(tmp_path):
    config = ptr_config(tmp_path, ptr_heldout_n=0)
    out = tmp_path / "ptr"
    out.mkdir()
    example = refinement_example(training_records(config)[0], wrong(), right(training_records(config)[0]),
                                 kind="refine", first_score=0.0, refined_score=1.0)
    (out / "ptr_data.jsonl").write_text(json.dumps(example) + "\n")
    (out / "ptr_data_counts.json").write_text('{"examples": 1,')  # torn
    with pytest.raises(PasrError, match="ptr_data_counts.json") as err:
        run_ptr(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=no_model, scorer=Scorer())
    assert "\n" not in str(err.value)


class ParityScorer:
    """Scores a text 1 when its length is even: differing samples of a random model, so pairs exist."""

    def score_many(self, tasks, responses, references, questions=None):
        return [float(len(r) % 2 == 0) for r in responses]

    def close(self):
        pass


def test_end_to_end_with_the_real_backend_writes_a_loadable_model(tmp_path):
    """`pasr baseline ptr`'s path on the tiny model: real sampling, SFT (1 step), evaluation over a round."""
    config = ptr_config(tmp_path, ptr_questions=4, ptr_samples=3, ptr_heldout_n=2, ptr_rounds=1,
                        ptr_max_new_tokens=6, ptr_require_answer_tag=False)
    result = run_ptr(config, ModelConfig(model_name_or_path="tiny-random"), scorer=ParityScorer())
    out = tmp_path / "ptr"
    assert result.model_dir == str(out / "final") and result.data["refine"] >= 1
    assert [(r["model"], r["round"]) for r in result.rows] == [("base", "0"), ("base", "1"), ("trained", "0"),
                                                               ("trained", "1")]
    generate_with(out / "final")
