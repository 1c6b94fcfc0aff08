"""SCoRe (`pasr baseline score`): its rewards per stage, the two-attempt rollout, the attempt-1 KL in the loss, the
masked instruction, both stages end to end on the tiny model, and its config's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import AlwaysRight, LengthScorer, tiny_records
from typer.testing import CliRunner

from pasr.baselines import score
from pasr.cli import app
from pasr.errors import PasrError
from pasr.prompts import SCORE_CORRECTION_INSTRUCTION
from pasr.train.config import ModelConfig


def tiny_score_config(output_dir, **overrides):
    values = dict(output_dir=str(output_dir), max_steps=1, num_generations=4, per_device_train_batch_size=8,
                  max_completion_length=6, use_cpu=True, logging_steps=1, report_to="none", save_strategy="no",
                  learning_rate=1e-4, beta=0.01, seed=0, bf16=False, cpu_bf16_generation=False,
                  dataloader_num_workers=0, score_heldout_n=0, loss_type="grpo")
    values.update(overrides)
    return score.ScoreConfig(**values)


@pytest.fixture(scope="module")
def tiny_path():
    from pasr.models import resolve

    return resolve("tiny-random")


def trainer_for(tmp_path, tiny_path, stage=1, scorer=None, **overrides):
    config = tiny_score_config(tmp_path / "out", **overrides)
    staged = score.stage_config(config, stage, tmp_path / "out" / f"stage{stage}")
    return score.build_trainer(staged, ModelConfig(), stage, tiny_records(4), scorer or LengthScorer(), tiny_path,
                               tiny_path)


def rows_of(trainer, groups=(0, 1)):
    """Two questions x G=4, as TRL's sampler hands them over."""
    return [dict(trainer.train_dataset[i]) for i in groups for _ in range(trainer.num_generations)]


# --- rewards ------------------------------------------------------------------------------------------------


def test_stage_rewards_for_planted_scores():
    r1, r2 = [0.0, 1.0, 0.0, 1.0, 0.5], [1.0, 0.0, 0.0, 1.0, 0.25]
    assert score.stage_rewards(r1, r2, stage=1, alpha=10) == r2
    assert score.stage_rewards(r1, r2, stage=2, alpha=10) == [a + b + 10 * (b - a) for a, b in zip(r1, r2)]
    assert score.stage_rewards(r1, r2, stage=2, alpha=10)[:4] == [11.0, -9.0, 0.0, 2.0]


class Planted:
    """Scores a text by lookup (both attempts of a batch arrive in one call)."""

    judge = None

    def __init__(self, table):
        self.table, self.calls = table, 0

    def score_many(self, tasks, responses, references, questions=None):
        self.calls += 1
        return [self.table[r] for r in responses]


@pytest.mark.parametrize("stage", [1, 2])
def test_reward_function_scores_both_attempts_and_logs(stage):
    scorer = Planted({"w": 0.0, "r": 1.0})
    logged: dict[str, float] = {}
    rewards = score.ScoreRewards(scorer, stage=stage, alpha=10.0)
    got = rewards.score_reward(prompts=[None] * 4, completions=[None] * 4, question=["q"] * 4,
                               reference=["1"] * 4, task=["arith"] * 4, score_first=["w", "r", "w", "r"],
                               score_second=["r", "w", "w", "r"], log_metric=lambda k, v: logged.update({k: v}))
    assert scorer.calls == 1
    assert got == ([1.0, 0.0, 0.0, 1.0] if stage == 1 else [11.0, -9.0, 0.0, 2.0])
    assert logged["score/r1"] == logged["score/r2"] == 0.5
    assert logged["score/fixed"] == logged["score/broken"] == 0.25
    assert ("score/bonus" in logged) == (stage == 2) and logged.get("score/bonus", 0.0) == 0.0


# --- rollout --------------------------------------------------------------------------------------------------


def test_join_attempts_drops_the_end_of_turn_a_finished_answer_has():
    assert score.join_attempts([5, 6, 2], [2, 9, 9]) == [9, 9]
    assert score.join_attempts([5, 6, 7], [2, 9, 9]) == [2, 9, 9]  # truncated: the template's end of turn first
    assert score.join_attempts([], [2, 9]) == [2, 9]


def test_bridge_is_the_templates_instruction_turn(tiny_path):
    from pasr.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_path)
    text = tokenizer.decode(score.bridge_ids(tokenizer))
    assert text == f"<|im_end|>\n<|im_start|>user\n{SCORE_CORRECTION_INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"


def test_rollout_generates_attempt_two_after_attempt_one_and_masks_the_bridge(tmp_path, tiny_path, monkeypatch):
    trainer = trainer_for(tmp_path, tiny_path)
    calls = []
    original = score.generate_single_turn

    def recording(tr, prompt_ids, images, fields, num_generations):
        out = original(tr, prompt_ids, images, fields, num_generations)
        calls.append(([list(p) for p in prompt_ids], num_generations, [list(c) for c in out[0]]))
        return out

    monkeypatch.setattr(score, "generate_single_turn", recording)
    trainer.model.train()
    prompts = [row["prompt"] for row in rows_of(trainer)]
    out = score.score_rollout(prompts, trainer)
    (prompt_ids, g1, first), (second_prompts, g2, second) = calls
    assert (g1, g2) == (4, 1) and out["prompt_ids"] == prompt_ids and out["logprobs"] is None
    tokenizer = trainer.processing_class
    for i, completion in enumerate(out["completion_ids"]):
        bridge = score.join_attempts(first[i], trainer.score_bridge)
        assert second_prompts[i] == prompt_ids[i] + first[i] + bridge
        assert completion == first[i] + bridge + second[i]
        assert out["env_mask"][i] == [1] * len(first[i]) + [0] * len(bridge) + [1] * len(second[i])
        assert SCORE_CORRECTION_INSTRUCTION in tokenizer.decode(bridge)
        assert out["score_first"][i] == tokenizer.decode(first[i], skip_special_tokens=True)
        assert out["score_second"][i] == tokenizer.decode(second[i], skip_special_tokens=True)
        assert out["score_first_tokens"][i] == len(first[i])


# --- the loss -------------------------------------------------------------------------------------------------


def own_logps(model, batch, temperature):
    """Per-token log-probs of the completion tokens, computed here from the model's logits."""
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    t = batch["completion_ids"].size(1)
    logps = torch.log_softmax(logits[:, -t - 1:-1] / temperature, dim=-1)
    return logps.gather(-1, batch["completion_ids"].unsqueeze(-1)).squeeze(-1)


@pytest.fixture(scope="module")
def loss_setup(tmp_path_factory, tiny_path):
    """A stage-I trainer whose policy moved away from its reference, and one generated batch."""
    from pasr.models import load_model

    torch.manual_seed(0)
    trainer = trainer_for(tmp_path_factory.mktemp("loss"), tiny_path)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trainer.model.train()
    batch = trainer._generate_and_score_completions(rows_of(trainer))
    trainer.model.eval()  # the loss without gradient-accumulation scaling
    reference = load_model(tiny_path, dtype=torch.float32).eval()
    ref = own_logps(reference, batch, trainer.temperature)
    policy = own_logps(trainer.model, batch, trainer.temperature)
    return trainer, batch, ref, policy


def test_generation_batch_carries_the_attempt_one_mask_and_the_bridge_mask(loss_setup):
    trainer, batch, _, _ = loss_setup
    first = batch[score.FIRST_MASK]
    bridge = [len(score.join_attempts(ids[:n].tolist(), trainer.score_bridge))
              for ids, n in zip(batch["completion_ids"], first.sum(-1).tolist())]
    for row, (n1, nb) in enumerate(zip(first.sum(-1).tolist(), bridge)):
        assert first[row, :n1].all() and not first[row, n1:].any()
        tool = batch["tool_mask"][row]
        assert tool[:n1].all() and not tool[n1:n1 + nb].any() and tool[n1 + nb:].all()


def test_first_attempt_kl_enters_the_loss_with_its_weight(loss_setup):
    trainer, batch, ref, policy = loss_setup
    mask = batch["completion_mask"] * batch["tool_mask"]
    first = batch[score.FIRST_MASK] * mask
    kl = torch.exp(ref - policy) - (ref - policy) - 1
    per_completion = (kl * first).sum(-1) / mask.sum(-1).clamp(min=1)  # TRL's grpo normalisation of a per-token term
    expected = per_completion.mean().item()
    assert expected > 1e-4  # the policy moved: there is a KL to weigh
    losses = {}
    for w in (0.5, 0.1, 0.01):  # 0.01 = beta: TRL's own loss, nothing added
        trainer.first_kl_weight = w
        with torch.no_grad():
            losses[w] = trainer.compute_loss(trainer.model, batch).item()
    assert losses[0.5] - losses[0.01] == pytest.approx(0.49 * expected, rel=2e-3)
    assert losses[0.1] - losses[0.01] == pytest.approx(0.09 * expected, rel=2e-3)
    logged = trainer._metrics["eval"]["score/first_kl"][-1]
    assert logged == pytest.approx(((kl * first).sum() / first.sum()).item(), rel=2e-3)


def test_the_instruction_tokens_carry_no_loss(loss_setup):
    """Garbage reference and old log-probs on the bridge leave the loss as it is; on attempt 2 they change it."""
    trainer, batch, ref, policy = loss_setup
    trainer.first_kl_weight = 0.1
    n1 = batch[score.FIRST_MASK].sum(-1)
    bridge = (batch["tool_mask"] == 0) & (batch["completion_mask"] == 1)
    assert bridge.any(-1).all()
    second = torch.zeros_like(bridge)
    for row in range(bridge.size(0)):
        end = int(bridge[row].nonzero().max()) + 1
        assert int(bridge[row].nonzero().min()) == int(n1[row])
        second[row, end] = batch["completion_mask"][row, end] == 1

    def loss_with(where):
        changed = dict(batch, ref_per_token_logps=batch["ref_per_token_logps"].masked_fill(where, -3.0),
                       old_per_token_logps=policy.masked_fill(where, 2.0))
        with torch.no_grad():
            return trainer.compute_loss(trainer.model, changed).item()

    plain = loss_with(torch.zeros_like(bridge))
    assert loss_with(bridge) == pytest.approx(plain, abs=1e-6)
    assert abs(loss_with(second) - plain) > 1e-3


# --- both stages, end to end ------------------------------------------------------------------------------------


def test_both_stages_run_resume_and_refuse_other_settings(tmp_path, monkeypatch):
    import pasr.scoring

    monkeypatch.setattr(pasr.scoring, "build_scorer", lambda config: AlwaysRight())
    out = tmp_path / "score"
    args = ["baseline", "score", "--config", "cpu-score.yaml", "--model_name_or_path", "tiny-random",
            "--output_dir", str(out), "--max_steps", "1", "--bf16", "false", "--max_completion_length", "4",
            "--score_heldout_n", "2", "--score_max_new_tokens", "3", "--score_generation_dtype", "float32"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "final" / "config.json").is_file() and (out / "stage1" / "final" / "config.json").is_file()
    stages = [json.loads((out / f"stage{k}" / "stage_summary.json").read_text()) for k in (1, 2)]
    assert [s["steps"] for s in stages] == [1, 1]
    assert [s["first_kl_weight"] for s in stages] == [0.1, 0.01] and stages[1]["alpha"] == 10.0
    logs = [{k for h in s["log_history"] for k in h} for s in stages]
    assert "score/first_kl" in logs[0] and "score/bonus" not in logs[0] and "score/bonus" in logs[1]
    first_step = [h for h in stages[0]["log_history"] if "reward" in h][0]
    assert first_step["reward"] == pytest.approx(1.0)  # stage I: r2 (every answer right)
    assert [h for h in stages[1]["log_history"] if "reward" in h][0]["reward"] == pytest.approx(2.0)  # 1 + 1 + 0
    summary = json.loads((out / "score_summary.json").read_text())
    assert [r["model"] for r in summary["rows"]] == ["base", "trained"]
    assert summary["rows"][1]["accuracy@t1"] == summary["rows"][1]["accuracy@t2"] == "1.000"
    assert "SCoRe stage I:" in result.output and "SCoRe stage II:" in result.output

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "score_summary.json"}
    again = CliRunner().invoke(app, args)  # finished: nothing trained or evaluated again
    assert again.exit_code == 0, again.output
    assert "SCoRe stage" not in again.output and "trained" in again.output
    assert len((out / "score_log.jsonl").read_text().splitlines()) == 2
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    changed = CliRunner().invoke(app, args + ["--score_alpha", "5"])
    assert isinstance(changed.exception, PasrError) and "score_alpha 10.0 -> 5.0" in str(changed.exception)


# --- the config -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, field", [
    (dict(beta=0.0), "score_stage1_first_kl"),
    (dict(beta=0.0, score_stage1_first_kl=0.0, score_first_kl=0.05), "score_first_kl"),
    (dict(score_alpha=-1.0), "score_alpha"),
    (dict(score_stage2_steps=0), "score_stage2_steps"),
    (dict(score_heldout_file="x.jsonl"), "score_heldout_file"),
    (dict(score_backend="sglang"), "score_backend"),
])
def test_bad_values_are_one_line_errors_naming_the_field(tmp_path, overrides, field):
    with pytest.raises(PasrError) as err:
        tiny_score_config(tmp_path, **overrides)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_defaults_and_stage_steps(tmp_path):
    config = tiny_score_config(tmp_path, max_steps=-1, score_stage1_steps=3, score_stage2_steps=5)
    assert (config.score_alpha, config.score_stage1_first_kl, config.score_first_kl) == (10.0, 0.1, 0.01)
    assert (config.stage_steps(1), config.stage_steps(2)) == (3, 5)
    assert tiny_score_config(tmp_path, max_steps=4, score_stage1_steps=3, score_stage2_steps=5).stage_steps(2) == 4
    assert tiny_score_config(tmp_path, beta=0.0, score_stage1_first_kl=0.0).first_kl(2) == 0.0


def test_lora_is_refused_before_any_work(tmp_path):
    """With LoRA, TRL's reference in stage II would be stage I's merged model, not the base."""
    config = tiny_score_config(tmp_path / "run")
    with pytest.raises(PasrError, match="use_peft") as err:
        score.run_score(config, ModelConfig(model_name_or_path="tiny-random", use_peft=True))
    assert "\n" not in str(err.value) and not Path(config.output_dir).exists()


def test_settings_that_change_the_loss_are_fingerprinted(tmp_path):
    config = tiny_score_config(tmp_path)
    held = score.settings(config, ModelConfig(model_name_or_path="tiny-random"))
    for name in ("use_bias_correction_kl", "vllm_importance_sampling_correction", "beta", "score_alpha",
                 "score_stage1_first_kl"):
        assert name in json.dumps(held), name


class Recording:
    """A scorer that gives each response a planted score by its length's parity and records what it scored."""

    judge = None

    def __init__(self):
        self.calls: list[tuple[list[str], list[float]]] = []

    def score_many(self, tasks, responses, references, questions=None):
        scores = [float(len(r) % 2) for r in responses]
        self.calls.append((list(responses), scores))
        return scores


@pytest.mark.parametrize("stage", [1, 2])
def test_the_shaping_bonus_reaches_the_advantages_the_loss_uses(tmp_path, tiny_path, stage):
    """The loss weighs each completion by its advantage: GRPO's group-normalised stage reward, r2 in stage I and
    r1 + r2 + alpha (r2 - r1) in stage II, from the scores of the completion's own two attempts."""
    torch.manual_seed(0)
    scorer = Recording()
    trainer = trainer_for(tmp_path, tiny_path, stage=stage, scorer=scorer, temperature=1.0, max_completion_length=8)
    rows = rows_of(trainer)
    batch = trainer._generate_and_score_completions(rows)
    [(responses, scores)] = scorer.calls
    n = len(rows)
    r1, r2 = torch.tensor(scores[:n]), torch.tensor(scores[n:])
    reward = r2 if stage == 1 else r1 + r2 + 10.0 * (r2 - r1)
    groups = reward.view(-1, trainer.num_generations)
    expected = (groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + 1e-4)
    assert expected.abs().sum() > 0.5  # the planted scores differ within a group: the check can fail
    assert batch["advantages"].view(-1).tolist() == pytest.approx(expected.view(-1).tolist(), abs=1e-4)
