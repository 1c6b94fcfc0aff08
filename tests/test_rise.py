"""RISE: multi-turn rollouts with "incorrect, try again" feedback, best-of-N improved turns, SFT with earlier turns
masked and the loss weighted by the improved turn's reward; held-out evaluation over turns with and without the
oracle; the run resumes, refuses changed settings and saves a loadable model."""

from __future__ import annotations

import copy
import json
import math

import pytest
from train_helpers import generate_with

from pasr.baselines import rise
from pasr.baselines.rise import (
    RiseConfig,
    heldout_records,
    rise_example,
    rollout,
    run_rise,
    training_records,
    turn_weight,
)
from pasr.errors import PasrError
from pasr.prompts import RISE_FEEDBACK, STANDARD_SYSTEM_PROMPT, chat
from pasr.scoring import Scorer
from pasr.train.config import ModelConfig


def rise_config(tmp_path, **overrides) -> RiseConfig:
    values = dict(
        output_dir=str(tmp_path / "rise"), dataset="synthetic", rise_questions=4, rise_turns=3, rise_best_of=3,
        rise_heldout_n=3, rise_eval_turns=3, rise_max_new_tokens=8, rise_generation_batch_size=4,
        rise_reward_weighting="reward", max_steps=1, per_device_train_batch_size=2, learning_rate=1e-4,
        logging_steps=1, save_strategy="no", use_cpu=True, bf16=False, report_to="none", seed=0, max_length=512,
        dataloader_num_workers=0,
    )
    values.update(overrides)
    return RiseConfig(**values)


def right(record, j=0) -> str:
    return f"<think>I work it out ({j}).</think><answer>{record.reference}</answer>"


def wrong(j=0) -> str:
    return f"<think>I guess ({j}).</think><answer>-{j + 1}</answer>"


def question_of(conv) -> str:
    return conv[1]["content"].split("\n\n")[0]


class ScriptedModel:
    """A backend. Sampling (temperature > 0): training question ``i`` follows ``PLAN[i]``, per turn (the number of
    feedback turns so far) the list of which of the samples of that turn are right (the first sample is the
    rollout's attempt). Greedy (held-out): a ``trained`` model answers wrong first and right after the feedback, the
    base model always wrong. Records conversations and temperatures."""

    name = "scripted"
    chunk_size = 5

    def __init__(self, model, records, heldout, plan=None, trained=False):
        self.model, self.trained = model, trained
        self.by_question = {r.question: r for r in list(records) + list(heldout)}
        self.plan = {r.question: (plan or PLAN)[i % len(plan or PLAN)] for i, r in enumerate(records)}
        self.asked: dict[tuple[str, int], int] = {}
        self.conversations: list[list[dict]] = []
        self.temperatures: list[float] = []
        self.closed = False

    def generate(self, conversations, max_tokens, temperature=0.0):
        out = []
        for conv in conversations:
            self.conversations.append(copy.deepcopy(conv))
            self.temperatures.append(temperature)
            record = self.by_question[question_of(conv)]
            turn = sum(1 for m in conv if m["role"] == "user") - 1  # feedback turns so far
            if temperature > 0:
                j = self.asked.get((record.question, turn), 0)
                self.asked[(record.question, turn)] = j + 1
                rights = self.plan[record.question][turn]
                text = right(record, 10 * turn + j) if j in rights else wrong(10 * turn + j)
            else:
                text = right(record, 9) if self.trained and turn > 0 else wrong(turn)
            out.append((text, len(text.split())))
        return out

    def close(self):
        self.closed = True


PLAN = [
    [(), (), ()],          # never right: 3 turns, no example under `reward`
    [(0,), (), ()],        # the first attempt right: the rollout stops after turn 1 (an example: keep_right)
    [(2,), (0, 1), ()],    # turn 1 wrong attempt, sample 2 right (improved); turn 2 attempt right: stops
    [(), (1,), (2,)],      # turn 1 nothing right; turn 2 sample 1 right; turn 3 sample 2 right
]


def sampler(model):
    return lambda conversations, turn: model.generate(conversations, 8, 0.8)


# --- the rollouts and their examples -------------------------------------------------------------------


def test_rollout_feedback_turns_best_of_n_and_the_oracle_stop(tmp_path):
    records = training_records(rise_config(tmp_path))
    model = ScriptedModel("base", records, [])
    found = rollout(sampler(model), records, Scorer(), turns=3, best_of=3, weighting="reward")
    # samples per question: 3 per turn while the rollout is open (a right attempt stops it)
    per_question = {r.question: sum(1 for c in model.conversations if question_of(c) == r.question) for r in records}
    assert [per_question[r.question] for r in records] == [9, 3, 6, 9]
    for conv in model.conversations:  # [system, question] + [assistant ATTEMPT, user RISE_FEEDBACK] per wrong turn
        record = next(r for r in records if r.question == question_of(conv))
        assert conv[:2] == chat(STANDARD_SYSTEM_PROMPT, record.question, record.task)
        for attempt, feedback in zip(conv[2::2], conv[3::2]):
            assert attempt["role"] == "assistant" and attempt["content"].startswith("<think>I guess")
            assert feedback == {"role": "user", "content": RISE_FEEDBACK}
        assert len(conv) % 2 == 0
    # the rollout continues with its own attempt (the first sample), not with the improved turn
    fourth = [c for c in model.conversations if question_of(c) == records[3].question and len(c) == 6]
    assert fourth and all(c[2]["content"] == wrong(0) and c[4]["content"] == wrong(10) for c in fourth)

    by_id = {r.id: r for r in records}
    got = sorted((e["id"], e["turn"]) for e in found.examples)
    assert got == sorted([(records[1].id, 1), (records[2].id, 1), (records[2].id, 2), (records[3].id, 2),
                          (records[3].id, 3)])
    for example in found.examples:
        record = by_id[example["id"]]
        [improved] = example["completion"]
        assert improved["role"] == "assistant" and improved["content"].startswith("<think>I work it out")
        assert improved["content"].endswith(f"<answer>{record.reference}</answer>")
        assert len(example["prompt"]) == 2 * example["turn"]  # the conversation up to that turn
        assert example["prompt"][-1]["role"] == "user"
        assert example["weight"] == example["reward"] == 1.0 and example["iteration"] == 1
    # the improved turn is the best sample: at turn 1 of question 2, sample 2 (the attempt, sample 0, was wrong)
    [e2] = [e for e in found.examples if e["id"] == records[2].id and e["turn"] == 1]
    assert e2["completion"][0]["content"] == right(records[2], 2) and e2["attempt_reward"] == 0.0
    turns = found.counts["turns"]
    assert [t["states"] for t in turns] == [4, 3, 2]
    assert [t["attempt_accuracy"] for t in turns] == [0.25, round(1 / 3, 4), 0.0]
    assert [t["best_accuracy"] for t in turns] == [0.5, round(2 / 3, 4), 0.5]
    assert found.counts["examples"] == 5 and found.counts["samples"] == 27
    assert found.counts["left_out_zero_weight"] == 4


def test_keep_right_false_keeps_only_turns_whose_attempt_was_wrong(tmp_path):
    records = training_records(rise_config(tmp_path))
    found = rollout(sampler(ScriptedModel("b", records, [])), records, Scorer(), turns=3, best_of=3,
                    weighting="reward", keep_right=False)
    assert sorted((e["id"], e["turn"]) for e in found.examples) == sorted(
        [(records[2].id, 1), (records[3].id, 2), (records[3].id, 3)])
    assert all(e["attempt_reward"] == 0.0 for e in found.examples)


@pytest.mark.parametrize("weighting, tau", [("exp", 0.5), ("exp", 2.0), ("none", 0.5)])
def test_the_weight_of_an_example_is_the_configured_weighting_of_its_reward(tmp_path, weighting, tau):
    records = training_records(rise_config(tmp_path))
    found = rollout(sampler(ScriptedModel("b", records, [])), records, Scorer(), turns=3, best_of=3,
                    weighting=weighting, tau=tau)
    for example in found.examples:
        if weighting == "exp":  # the paper's exp(r / tau), normalised by its largest value exp(1 / tau)
            expected = math.exp(example["reward"] / tau) / math.exp(1 / tau)
        else:
            expected = 1.0 if example["reward"] == 1.0 else 0.0
        assert example["weight"] == pytest.approx(expected, abs=1e-6)
    if weighting == "exp":  # every turn weighs > 0: the wrong improved turns too, with a small weight
        assert len(found.examples) == 9 and found.counts["left_out_zero_weight"] == 0
        assert all(e["weight"] == pytest.approx(math.exp(-1 / tau), abs=1e-6) for e in found.examples if e["reward"] == 0)
    else:
        assert len(found.examples) == 5


def test_turn_weight():
    assert turn_weight(1.0, True, "exp", 0.5) == 1.0 and turn_weight(0.0, False, "exp", 0.5) == math.exp(-2)
    assert turn_weight(0.3, False, "reward") == 0.3 and turn_weight(0.3, False, "none") == 0.0
    assert turn_weight(0.6, True, "none") == 1.0
    with pytest.raises(ValueError, match="weighting"):
        turn_weight(1.0, True, "rank")


def test_heldout_questions_are_never_training_questions(tmp_path):
    config = rise_config(tmp_path, rise_questions=200, rise_heldout_n=200)
    train = {r.question for r in training_records(config)}
    held = heldout_records(config, exclude=train)
    assert len(held) == 200 and not train & {r.question for r in held}
    assert heldout_records(config, exclude={held[0].question})[0].question != held[0].question


# --- the loss: earlier turns masked, weighted by reward ------------------------------------------------------


def _trainer(tmp_path, examples):
    from pasr.models import load_model, load_tokenizer, resolve
    from pasr.train.masking import sft_dataset

    config = rise_config(tmp_path)
    config.remove_unused_columns = False
    path = resolve("tiny-random")
    tokenizer = load_tokenizer(path)
    args, dataset = sft_dataset(config, rise.sft_rows(examples), tokenizer)
    trainer = rise.weighted_sft_trainer()(model=load_model(path, dtype="float32"), args=args, train_dataset=dataset,
                                          processing_class=tokenizer)
    return trainer, tokenizer


def _three_turn_example(tmp_path, weight=0.25):
    record = training_records(rise_config(tmp_path))[0]
    conv = chat(STANDARD_SYSTEM_PROMPT, record.question, record.task) + [
        {"role": "assistant", "content": wrong(0)}, {"role": "user", "content": RISE_FEEDBACK},
        {"role": "assistant", "content": wrong(1)}, {"role": "user", "content": RISE_FEEDBACK},
    ]
    return rise_example(conv, right(record, 7), record=record, turn=3, reward=1.0, attempt_reward=0.0, weight=weight)


def test_labels_mask_every_earlier_turn_and_feedback_and_the_weight_reaches_the_batch(tmp_path):
    """Through TRL's SFTTrainer and its collator: labels -100 on the system prompt, the question, both earlier
    attempts and both feedback turns; the improved turn carries the loss; the weight rides along."""
    example = _three_turn_example(tmp_path)
    trainer, tokenizer = _trainer(tmp_path, [example])
    row = trainer.train_dataset[0]
    assert row["weight"] == 0.25  # kept through TRL's dataset preparation (remove_unused_columns false)
    batch = trainer.data_collator([row])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    assert batch["weight"].tolist() == [0.25]
    prompt_ids = tokenizer.apply_chat_template(example["prompt"], tokenize=True, return_dict=True,
                                               add_generation_prompt=True)["input_ids"]
    assert ids[:len(prompt_ids)] == list(prompt_ids)
    assert all(label == -100 for label in labels[:len(prompt_ids)])  # every earlier turn and feedback
    assert all(label != -100 for label in labels[len(prompt_ids):])  # the improved turn (and its end of turn)
    learned = tokenizer.decode([i for i, label in zip(ids, labels) if label != -100])
    assert learned.strip().startswith(right(training_records(rise_config(tmp_path))[0], 7))
    for masked in (wrong(0), wrong(1), RISE_FEEDBACK, STANDARD_SYSTEM_PROMPT[:40]):
        assert masked not in learned
    text = tokenizer.decode(ids)
    assert text.count(RISE_FEEDBACK) == 2 and wrong(0) in text and wrong(1) in text  # in context, not learned


def test_the_loss_of_a_weighted_batch_is_the_reward_weighted_token_loss(tmp_path):
    """sum_i w_i * sum_t nll_it / N: a batch of weight 0.25 has a quarter of the unweighted loss; mixed weights
    give the weighted sum of each example's own token losses; a batch without weights is plain SFT."""
    import torch

    records = training_records(rise_config(tmp_path))
    examples = [rise_example(chat(STANDARD_SYSTEM_PROMPT, r.question, r.task), right(r, k), record=r, turn=1,
                             reward=1.0, attempt_reward=0.0, weight=w)
                for k, (r, w) in enumerate(zip(records[:2], (0.25, 1.5)))]
    trainer, _ = _trainer(tmp_path, examples)
    trainer.model.eval()
    rows = [trainer.train_dataset[i] for i in range(2)]

    def loss(batch_rows, weights=None):
        batch = trainer.data_collator(batch_rows)
        if weights is None:
            batch.pop("weight")
        else:
            batch["weight"] = torch.tensor(weights)
        with torch.no_grad():
            return float(trainer.compute_loss(trainer.model, batch))

    plain = loss(rows)
    assert loss(rows, [0.25, 0.25]) == pytest.approx(0.25 * plain, rel=1e-4)
    assert loss(rows, [1.0, 1.0]) == pytest.approx(plain, rel=1e-4)
    # per example: its summed token loss = its mean loss x its trained tokens
    tokens = [sum(label != -100 for label in r["labels"][1:]) for r in rows]
    sums = [loss([r]) * n for r, n in zip(rows, tokens)]
    assert plain == pytest.approx(sum(sums) / sum(tokens), rel=1e-4)
    batch = trainer.data_collator(rows)  # the collator's own weights: 0.25 and 1.5
    assert batch["weight"].tolist() == [0.25, 1.5]
    with torch.no_grad():
        mixed = float(trainer.compute_loss(trainer.model, batch))
    assert mixed == pytest.approx((0.25 * sums[0] + 1.5 * sums[1]) / sum(tokens), rel=1e-4)
    assert loss(rows, [0.0, 0.0]) == 0.0


def test_weighted_trainer_refuses_settings_that_would_drop_the_weights(tmp_path):
    from pasr.models import load_model, load_tokenizer, resolve
    from pasr.train.masking import sft_dataset

    config = rise_config(tmp_path)  # remove_unused_columns left true
    path = resolve("tiny-random")
    tokenizer = load_tokenizer(path)
    args, dataset = sft_dataset(config, rise.sft_rows([_three_turn_example(tmp_path)]), tokenizer)
    with pytest.raises(PasrError, match="remove_unused_columns"):
        rise.weighted_sft_trainer()(model=load_model(path), args=args, train_dataset=dataset,
                                    processing_class=tokenizer)


# --- the run ----------------------------------------------------------------------------------------------


def test_run_rolls_out_trains_weighted_evaluates_both_readings_and_resumes(tmp_path, monkeypatch):
    """Scripted generation, real weighted SFT of the tiny model: data, log per model and reading, which model did
    what, resume, a changed rerun refused."""
    import pasr.train.sft as sft

    config = rise_config(tmp_path)
    records = training_records(config)
    heldout = heldout_records(config)
    backends: list[ScriptedModel] = []
    out = tmp_path / "rise"

    def factory(path):
        backends.append(ScriptedModel(path, records, heldout, trained=path == str(out / "final")))
        return backends[-1]

    trained_on = []
    real_run_sft = sft.run_sft

    def spy(cfg, model_config, *, examples=None, **kwargs):
        trained_on.append((model_config.model_name_or_path, cfg.output_dir, examples, kwargs))
        assert cfg.remove_unused_columns is False
        return real_run_sft(cfg, model_config, examples=examples, **kwargs)

    monkeypatch.setattr(sft, "run_sft", spy)
    result = run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory,
                      scorer=Scorer())

    assert [b.model for b in backends] == ["tiny-random", str(out / "final")] and all(b.closed for b in backends)
    [(base, sft_dir, examples, kwargs)] = trained_on
    assert base == "tiny-random" and sft_dir == str(out / "sft-1")
    assert kwargs["trainer_class"] is rise.weighted_sft_trainer()
    data = [json.loads(line) for line in (out / "rise_data.jsonl").read_text().splitlines()]
    assert [{"prompt": e["prompt"], "completion": e["completion"], "weight": e["weight"]} for e in data] == examples
    assert len(data) == 5 and all(e["weight"] == 1.0 and e["iteration"] == 1 for e in data)
    counts = json.loads((out / "rise_data_counts.json").read_text())
    assert counts["examples"] == 5 and counts["iterations"][0]["samples"] == 27
    # sampled: training questions only; greedy: held-out only, both readings
    base_model, trained_model = backends
    train_q, held_q = {r.question for r in records}, {r.question for r in heldout}
    assert {question_of(c) for c, t in zip(base_model.conversations, base_model.temperatures) if t > 0} == train_q
    for model in backends:
        evaluated = [c for c, t in zip(model.conversations, model.temperatures) if t == 0]
        assert {question_of(c) for c in evaluated} == held_q
    assert not train_q & held_q

    rows = [json.loads(line) for line in (out / "rise_log.jsonl").read_text().splitlines()]
    assert [(r["model"], r["method"]) for r in rows] == [("base", "rise-oracle"), ("base", "rise"),
                                                         ("trained", "rise-oracle"), ("trained", "rise")]
    by = {(r["model"], r["method"]): r for r in rows}
    assert [t["accuracy"] for t in by["base", "rise-oracle"]["rounds"]] == [0.0, 0.0, 0.0]
    # trained: wrong, then right after the feedback; the oracle stops there, majority needs the answer twice
    assert [t["accuracy"] for t in by["trained", "rise-oracle"]["rounds"]] == [0.0, 1.0, 1.0]
    assert [t["accuracy"] for t in by["trained", "rise"]["rounds"]] == [0.0, 1.0, 1.0]
    oracle_tokens = [t["tokens_mean"] for t in by["trained", "rise-oracle"]["rounds"]]
    majority_tokens = [t["tokens_mean"] for t in by["trained", "rise"]["rounds"]]
    assert oracle_tokens[1] == oracle_tokens[2] < majority_tokens[2]  # the oracle stopped: no third turn
    assert by["trained", "rise"]["sft_steps"] == 1 and by["trained", "rise"]["examples"] == 5
    assert result.model_dir == str(out / "final") and (out / "final" / "config.json").is_file()
    assert [(r["model"], r["reading"]) for r in result.rows] == [("base", "oracle stop"), ("base", "majority"),
                                                                 ("trained", "oracle stop"), ("trained", "majority")]
    trained_oracle = result.rows[2]
    assert (trained_oracle["turn 1 acc"], trained_oracle["last turn"], trained_oracle["last turn acc"]) == (
        "0.000", "3", "1.000")
    summary = json.loads((out / "rise_summary.json").read_text())
    assert summary["rows"] == result.rows and summary["data"]["examples"] == 5

    # a rerun resumes: nothing is generated or trained again
    backends.clear()
    trained_on.clear()
    again = run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory, scorer=Scorer())
    assert backends == [] and trained_on == [] and again.rows == result.rows
    # without the log: evaluated again (greedy only), nothing sampled or trained
    (out / "rise_log.jsonl").unlink()
    run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory, scorer=Scorer())
    assert trained_on == [] and all(t == 0 for b in backends for t in b.temperatures)
    # other settings would reuse data and model made with the old ones: refused in one line, nothing runs
    backends.clear()
    for changed, name in ((dict(rise_best_of=4), "rise_best_of 3 -> 4"),
                          (dict(rise_reward_weighting="exp"), "rise_reward_weighting"),
                          (dict(learning_rate=1e-3), "learning_rate")):
        with pytest.raises(PasrError, match=name) as err:
            run_rise(rise_config(tmp_path, **changed), ModelConfig(model_name_or_path="tiny-random"),
                     backend_factory=factory, scorer=Scorer())
        assert "\n" not in str(err.value) and "--output_dir" in str(err.value)
    assert backends == [] and trained_on == []
    # what only changes how the run goes may change
    run_rise(rise_config(tmp_path, rise_generation_batch_size=2), ModelConfig(model_name_or_path="tiny-random"),
             backend_factory=factory, scorer=Scorer())
    assert backends == [] and trained_on == []


def test_two_iterations_roll_out_the_first_iterations_model_and_aggregate(tmp_path, monkeypatch):
    import pasr.train.sft as sft

    config = rise_config(tmp_path, rise_iterations=2, rise_heldout_n=0, rise_turns=2)
    records = training_records(config)
    out = tmp_path / "rise"
    loaded, trained_on = [], []

    def factory(path):
        loaded.append(path)
        return ScriptedModel(path, records, [])

    real_run_sft = sft.run_sft

    def spy(cfg, model_config, *, examples=None, **kwargs):
        trained_on.append((model_config.model_name_or_path, cfg.output_dir, len(examples)))
        return real_run_sft(cfg, model_config, examples=examples, **kwargs)

    monkeypatch.setattr(sft, "run_sft", spy)
    result = run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory, scorer=Scorer())
    assert loaded == ["tiny-random", str(out / "sft-1" / "final")]  # iteration 2 rolls out iteration 1's model
    data = [json.loads(line) for line in (out / "rise_data.jsonl").read_text().splitlines()]
    first = sum(e["iteration"] == 1 for e in data)
    assert first and len(data) == 2 * first  # the scripted model samples the same way in both iterations
    # each iteration fine-tunes the base model, the second on both iterations' data
    assert trained_on == [("tiny-random", str(out / "sft-1"), first), ("tiny-random", str(out / "sft-2"), len(data))]
    assert (out / "final" / "config.json").is_file() and not (out / "sft-2" / "final").exists()
    assert [c["iteration"] for c in json.loads((out / "rise_data_counts.json").read_text())["iterations"]] == [1, 2]
    assert result.rows == []
    loaded.clear()
    run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=factory, scorer=Scorer())
    assert loaded == [] and len(trained_on) == 2


def test_no_improved_turn_is_a_clear_error(tmp_path):
    config = rise_config(tmp_path, rise_heldout_n=0, rise_worked_fallback=False)
    records = training_records(config)
    model = ScriptedModel("base", records, [], plan=[[(), (), ()]])  # never right: every weight 0 under `reward`
    with pytest.raises(PasrError, match="no improved turn") as err:
        run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=lambda path: model,
                 scorer=Scorer())
    assert "\n" not in str(err.value) and not (tmp_path / "rise" / "rise_data.jsonl").exists()


def test_worked_fallback_when_the_model_answers_nothing_right(tmp_path):
    """No own improved turn at all: every visited state gets the built-in task's worked solution as its improved
    turn (the paper's distillation from a more capable model, played by the task)."""
    config = rise_config(tmp_path, rise_heldout_n=0)
    records = training_records(config)
    model = ScriptedModel("base", records, [], plan=[[(), (), ()]])
    result = run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=lambda path: model,
                      scorer=Scorer())
    data = [json.loads(line) for line in (tmp_path / "rise" / "rise_data.jsonl").read_text().splitlines()]
    assert result.data["iterations"][0]["improved_source"] == "worked" and len(data) == 4 * 3  # every state
    by_id = {r.id: r for r in records}
    for example in data:
        assert example["source"] == "worked" and example["weight"] == example["reward"] == 1.0
        assert example["completion"][0]["content"] == rise.common.worked_solution(by_id[example["id"]], "arith")
        assert len(example["prompt"]) == 2 * example["turn"] and example["attempt_reward"] == 0.0
    assert (tmp_path / "rise" / "final" / "config.json").is_file()


def no_model(path):
    raise AssertionError(f"a model was loaded ({path}) before the records were checked")


def test_records_are_checked_before_any_model_loads(tmp_path):
    config = rise_config(tmp_path, judge_all=True)
    with pytest.raises(PasrError, match="judge_all needs a judge") as err:
        run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=no_model, scorer=Scorer())
    assert "\n" not in str(err.value)


def test_corrupt_data_and_counts_are_one_line_naming_the_file(tmp_path):
    config = rise_config(tmp_path, rise_heldout_n=0)
    out = tmp_path / "rise"
    out.mkdir()
    (out / "rise_data.jsonl").write_text(json.dumps({"prompt": [], "completion": []}) + "\n")  # no weight
    with pytest.raises(PasrError, match=r"rise_data.jsonl, line 1") as err:
        run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=no_model, scorer=Scorer())
    assert "\n" not in str(err.value)
    (out / "rise_data.jsonl").unlink()
    (out / "rise_data_counts.json").write_text('{"examples": 1,')
    with pytest.raises(PasrError, match="rise_data_counts.json") as err:
        run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=no_model, scorer=Scorer())
    assert "\n" not in str(err.value)


# --- config ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("rise_questions", 0), ("rise_turns", 1), ("rise_best_of", 1), ("rise_temperature", 0.0), ("rise_tau", 0),
    ("rise_max_new_tokens", 0), ("rise_generation_batch_size", 0), ("rise_iterations", 0), ("rise_eval_turns", 1),
    ("rise_heldout_n", -1), ("rise_reward_weighting", "rank"), ("rise_backend", "openai"),
    ("rise_generation_dtype", "fp8"), ("rise_keep_right", "yes"), ("rise_worked_fallback", "no"), ("rise_eval_base", 1), ("dataset", "nope"),
    ("rise_heldout_benchmark", "nope"), ("packing", True), ("padding_free", True), ("label_smoothing_factor", 0.1),
    ("completion_only_loss", False),
])
def test_bad_values_name_the_field(tmp_path, field, value):
    with pytest.raises(PasrError, match=field) as err:
        rise_config(tmp_path, **{field: value})
    assert "\n" not in str(err.value)


def test_config_defaults_and_registry_protocol(tmp_path):
    from pasr.baselines import registry

    config = RiseConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False)
    assert (config.dataset, config.rise_best_of, config.rise_eval_turns, config.rise_reward_weighting,
            config.rise_iterations) == ("synthetic", 4, 5, "exp", 1)
    assert rise.Config is RiseConfig and rise.run is run_rise
    entry = registry.get("rise")
    assert entry.heading == "RISE" and entry.config_class() is RiseConfig and entry.recipe_path.is_file()
    with pytest.raises(PasrError, match="rise_heldout_benchmark"):
        rise_config(tmp_path, dataset="gsm8k")
    with pytest.raises(PasrError, match="rise_heldout_file.*rise_heldout_benchmark"):
        rise_config(tmp_path, rise_heldout_file=str(tmp_path / "gsm8k.jsonl"))


def test_settings_leave_out_runtime_fields(tmp_path):
    first = rise.settings(rise_config(tmp_path), ModelConfig(model_name_or_path="tiny-random"))
    assert first["rise_best_of"] == 3 and first["base_model"] == "tiny-random" and "rise_backend" not in first
    assert "rise_generation_batch_size" not in first and first["rise_reward_weighting"] == "reward"


# --- end to end -----------------------------------------------------------------------------------------


class ParityScorer:
    """Scores a text 1 when its length is even: a random model's samples differ, so improved turns exist."""

    def score_many(self, tasks, responses, references, questions=None):
        return [float(len(r) % 2 == 0) for r in responses]

    def close(self):
        pass


def test_end_to_end_with_the_real_backend_writes_a_loadable_model(tmp_path):
    """`pasr baseline rise`'s path on the tiny model: real multi-turn sampling, weighted SFT (1 step), evaluation
    over 2 turns both ways."""
    config = rise_config(tmp_path, rise_questions=3, rise_best_of=2, rise_turns=2, rise_heldout_n=2,
                         rise_eval_turns=2, rise_max_new_tokens=6, rise_reward_weighting="exp")
    result = run_rise(config, ModelConfig(model_name_or_path="tiny-random"), scorer=ParityScorer())
    out = tmp_path / "rise"
    assert result.model_dir == str(out / "final") and result.data["examples"] >= 1
    assert [(r["model"], r["reading"], r["last turn"]) for r in result.rows] == [
        ("base", "oracle stop", "2"), ("base", "majority", "2"), ("trained", "oracle stop", "2"),
        ("trained", "majority", "2")]
    generate_with(out / "final")


def test_smoke_from_the_cli_writes_a_loadable_model(tmp_path):
    """The issue's smoke run, fewer questions: `pasr baseline rise --config recipes/cpu-rise.yaml
    --model_name_or_path tiny-random --max_steps 1 --output_dir DIR` ends with a loadable DIR/final and RISE's
    table (the random model answers nothing right: the worked fallback gives the improved turns)."""
    from pathlib import Path

    from typer.testing import CliRunner

    from pasr.cli import app

    out = tmp_path / "rise"
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "cpu-rise.yaml"
    result = CliRunner().invoke(app, ["baseline", "rise", "--config", str(recipe), "--model_name_or_path",
                                      "tiny-random", "--max_steps", "1", "--output_dir", str(out),
                                      "--rise_questions", "4", "--rise_heldout_n", "2", "--rise_max_new_tokens", "8"])
    assert result.exit_code == 0, result.output
    assert (out / "final" / "config.json").is_file() and (out / "rise_data.jsonl").is_file()
    logged = [json.loads(line)["key"] for line in (out / "rise_log.jsonl").read_text().splitlines()]
    assert logged == ["base rise-oracle", "base rise", "trained rise-oracle", "trained rise"]
    assert "RISE" in result.output and "majority" in result.output and "wall time" in result.output
    generate_with(out / "final")


@pytest.mark.parametrize("got, expected", [
    ([("<answer>3</answer>", 0.0), ("<answer>3</answer>", 0.0), ("<answer>5</answer>", 0.0)], 2),  # retry differs
    ([("<answer>3</answer>", 0.0), ("<answer> 3 </answer>", 0.0)], 0),  # only the attempt's answer: the attempt
    ([("<answer>3</answer>", 0.0), ("<answer>4</answer>", 1.0), ("<answer>5</answer>", 1.0)], 1),  # best score first
    ([("<answer>4</answer>", 1.0), ("<answer>4</answer>", 1.0), ("<answer>6</answer>", 1.0)], 2),
    ([("<answer>4</answer>", 1.0)], 0),
])
def test_best_sample_prefers_a_retry_that_differs_from_the_attempt_among_ties(got, expected):
    assert rise.best_sample(got) == got[expected]


def test_best_sample_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        rise.best_sample([])


def test_worked_fallback_under_exp_weighting_too(tmp_path):
    """Under `exp` every sample has a weight above 0, so a never-right model would train on its own wrong attempts:
    the fallback applies whenever no best-of-N sample is right, whatever the weighting."""
    config = rise_config(tmp_path, rise_heldout_n=0, rise_reward_weighting="exp")
    records = training_records(config)
    model = ScriptedModel("base", records, [], plan=[[(), (), ()]])
    result = run_rise(config, ModelConfig(model_name_or_path="tiny-random"), backend_factory=lambda path: model,
                      scorer=Scorer())
    data = [json.loads(line) for line in (tmp_path / "rise" / "rise_data.jsonl").read_text().splitlines()]
    assert result.data["iterations"][0]["improved_source"] == "worked"
    assert data and all(example["source"] == "worked" and example["reward"] == 1.0 for example in data)
