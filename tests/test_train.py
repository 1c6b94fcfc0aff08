"""PASR GRPO wiring on TRL: baseline grouping (the TRL contract: test_trl_adapter.py), a short run, lazy baselines."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import LengthScorer, tiny_config, tiny_records

from pasr.errors import PasrError
from pasr.train.baseline import group_baselines, samples_per_slot
from pasr.train.config import ModelConfig
from pasr.train.grpo import build_trainer, check_records, train_pasr
from pasr.train.rollout_log import RolloutLog, read_rollouts


def test_samples_per_slot():
    assert samples_per_slot(8, 8) == 1
    assert samples_per_slot(4, 8) == 1
    assert samples_per_slot(16, 8) == 2
    assert samples_per_slot(9, 8) == 2


def test_group_baselines_pools_each_question_and_cuts_to_n():
    # 2 questions x G=2 slots, each slot generated 2 samples; n=3 keeps the first three of each question
    slots = [[0.0, 1.0], [1.0, 1.0], [0.5, 0.5], [0.0, 0.0]]
    assert group_baselines(slots, group_size=2, baseline_samples=3) == [
        [0.0, 1.0, 1.0],
        [0.0, 1.0, 1.0],
        [0.5, 0.5, 0.0],
        [0.5, 0.5, 0.0],
    ]
    with pytest.raises(ValueError):
        group_baselines(slots[:3], group_size=2, baseline_samples=2)


def test_check_records_errors_before_model_load(tmp_path):
    config = tiny_config(tmp_path)
    with pytest.raises(PasrError, match="empty"):
        check_records([], config)
    bad = tiny_records(2)
    bad[0].task = "poetry"
    with pytest.raises(PasrError, match="unknown task"):
        check_records(bad, config)
    by_benchmark = tiny_records(2)
    by_benchmark[0].task = "synthetic"  # a benchmark name is accepted where a family is expected
    check_records(by_benchmark, config)
    open_ended = tiny_records(2)
    open_ended[1].task = "open"
    with pytest.raises(PasrError, match="judge"):
        check_records(open_ended, config)


def test_rollout_log_truncate_after_sets_lost_steps_aside(tmp_path):
    log = RolloutLog(tmp_path / "r.jsonl")
    log.append([{"step": 1}, {"step": 2}, {"step": 3}, {"step": 3}])
    assert log.truncate_after(2) == 2
    assert [r["step"] for r in read_rollouts(log.path)] == [1, 2]
    assert [r["step"] for r in read_rollouts(tmp_path / "r.discarded.jsonl")] == [3, 3]


def test_short_run_all_rewards_and_baseline(tmp_path):
    """Two GRPO steps on the tiny model: three rewards, baselines generated every step, model saved."""
    scorer = LengthScorer()
    config = tiny_config(tmp_path / "run")
    result = train_pasr(config, ModelConfig(model_name_or_path="tiny-random"), scorer=scorer, records=tiny_records())
    rows = read_rollouts(result.rollout_log)
    assert len(rows) == 2 * 8  # 2 steps x 8 completions
    assert {r["step"] for r in rows} == {1, 2}
    for row in rows:
        assert set(row["rewards"]) == {"format", "accuracy", "refine"}
        assert row["rewards"]["format"] in (-1.0, 1.0)
        assert row["accuracy"] == (len(row["completion"]) % 7) / 6
        assert len(row["baseline"]) == 4  # n standard samples per question, generated even though none refine
        assert row["total"] == pytest.approx(sum(row["rewards"].values()))
    logged = [h for h in result.log_history if "pasr/refine_rate" in h]
    assert logged and all(0.0 <= h["pasr/refine_rate"] <= 1.0 for h in logged)
    assert any("time/baseline_generation" in h for h in result.log_history)
    assert any("time/policy_generation" in h for h in result.log_history)
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["model_dir"] == result.model_dir
    from pasr.models import load_model

    reloaded = load_model(result.model_dir)
    assert sum(p.numel() for p in reloaded.parameters()) > 0


def test_existing_rollout_log_needs_resume(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "rollouts.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(PasrError, match="--resume"):
        train_pasr(tiny_config(tmp_path / "run"), ModelConfig(model_name_or_path="tiny-random"),
                   scorer=LengthScorer(), records=tiny_records())


@pytest.fixture(scope="module")
def bound_rewards(tmp_path_factory):
    """A trainer (not trained) with PASR rewards bound, to call the reward functions directly."""
    config = tiny_config(tmp_path_factory.mktemp("bound"), lazy_baseline=True, zeta=0.0)
    trainer, rewards = build_trainer(config, ModelConfig(model_name_or_path="tiny-random"), tiny_records(), LengthScorer())
    return trainer, rewards


def test_a_cpu_grpo_trainer_uses_grouped_sdpa(bound_rewards):
    """Rollouts decode under a padding mask; on a CPU the trainer's model skips the per-layer KV copies."""
    from pasr.generation.attention import NAME

    trainer, _ = bound_rewards
    assert trainer.accelerator.device.type == "cpu" and trainer.model.config._attn_implementation == NAME


def _batch(texts):
    n = len(texts)
    questions = [f"What is {i // 4} + 1?" for i in range(n)]
    return dict(
        prompts=[[{"role": "user", "content": q}] for q in questions],
        completions=[[{"role": "assistant", "content": t}] for t in texts],
        question=questions,
        reference=["1"] * n,
        task=["arith"] * n,
    )


def _call_refine(rewards, texts, lazy, seed=0):
    rewards.lazy = lazy
    before = rewards.baseline_generations
    torch.manual_seed(seed)
    out = rewards.refine_reward(**_batch(texts))
    return out, rewards.baseline_generations - before


def test_lazy_skips_baseline_without_refines_and_rewards_match(bound_rewards):
    _, rewards = bound_rewards
    plain = [f"<think>step {i}</think><answer>{i}</answer>" for i in range(8)]
    lazy_out, lazy_generated = _call_refine(rewards, plain, lazy=True)
    eager_out, eager_generated = _call_refine(rewards, plain, lazy=False)
    assert lazy_generated == 0 and eager_generated == 1
    assert lazy_out == eager_out == [0.0] * 8


def test_lazy_generates_when_something_refines_and_rewards_match(bound_rewards):
    _, rewards = bound_rewards
    texts = [f"<think>step {i}</think><answer>{i}</answer>" for i in range(8)]
    texts[2] = "<think>a <refine>fix it</refine> b</think><answer>2</answer>"
    lazy_out, lazy_generated = _call_refine(rewards, texts, lazy=True, seed=3)
    eager_out, eager_generated = _call_refine(rewards, texts, lazy=False, seed=3)
    assert lazy_generated == eager_generated == 1
    assert lazy_out == eager_out
    assert lazy_out[2] in (1.0, -1.0, -0.5)
    assert [r for i, r in enumerate(lazy_out) if i != 2] == [0.0] * 7


def test_control_mode_has_no_refine_reward(tmp_path):
    config = tiny_config(tmp_path / "ctl", refine_reward_mode="none")
    trainer, rewards = build_trainer(config, ModelConfig(model_name_or_path="tiny-random"), tiny_records(), LengthScorer())
    assert [f.__name__ for f in rewards.functions()] == ["format_reward", "accuracy_reward"]


def test_unknown_refine_mode_is_a_clear_error(tmp_path):
    with pytest.raises(PasrError, match="refine_reward_mode"):
        tiny_config(tmp_path, refine_reward_mode="sometimes")


def test_judge_garbage_mid_run_falls_back_and_counts(tmp_path):
    """Open-ended questions scored by a judge that answers once, then only garbage: the run completes."""
    from fake_openai_server import FakeOpenAIServer, Reply, sequence

    from pasr.scoring import build_scorer

    garbage = Reply(body=b"<html>502 upstream</html>", content_type="text/html")
    with FakeOpenAIServer(sequence("0.9", garbage), models=["judge"]) as server:
        config = tiny_config(
            tmp_path / "judged",
            max_steps=1,
            judge_url=server.base_url,
            judge_model="judge",
            judge_timeout=2.0,
            judge_fallback_score=0.25,
            judge_retries=0,
            judge_cache_dir=str(tmp_path / "judge-cache"),
        )
        scorer = build_scorer(config)
        records = tiny_records()
        for r in records:
            r.task = "open"
        try:
            result = train_pasr(config, ModelConfig(model_name_or_path="tiny-random"), scorer=scorer, records=records)
        finally:
            scorer.close()
    rows = read_rollouts(result.rollout_log)
    assert len(rows) == 8
    assert scorer.judge.failures >= 1
    assert {r["accuracy"] for r in rows} <= {0.9, 0.25}
    assert 0.25 in {r["accuracy"] for r in rows}
    assert any(h.get("judge/failures", 0) >= 1 for h in result.log_history)


def test_unreachable_judge_fails_before_training(tmp_path):
    from pasr.scoring import build_scorer

    config = tiny_config(tmp_path, judge_url="http://127.0.0.1:9/v1", judge_model="judge", judge_timeout=1.0)
    with pytest.raises(PasrError, match="did not answer"):
        build_scorer(config)
