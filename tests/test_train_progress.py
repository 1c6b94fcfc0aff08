"""What `pasr train` / `pasr sft` print while they run (pasr.train.progress)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from train_helpers import LengthScorer, tiny_config, tiny_records

from pasr.train.config import ModelConfig
from pasr.train.progress import GRPO_METRICS, SFT_METRICS, Phase, PhaseProgress, clock, step_line, train_header


def test_clock():
    assert [clock(s) for s in (0, 59.4, 61, 3600, 3725, -3)] == ["0:00", "0:59", "1:01", "1:00:00", "1:02:05", "0:00"]


def test_step_line_shows_the_phase_metrics_and_time_left():
    phase = Phase(2, 2, "PASR GRPO", GRPO_METRICS)
    logs = {"reward": 1.5234, "rewards/accuracy_reward/mean": 0.375, "pasr/refine_rate": 0.125,
            "pasr/format_valid_rate": 0.9375, "completions/mean_length": 86.6, "kl": 0.1, "loss": 0.01}
    line = step_line(phase, 3, 12, logs, 41.0)
    assert line == ("[PASR GRPO 2/2]  step  3/12  reward 1.52  acc 0.38  refine 12%  valid 94%  length 87  "
                    "41.0 s/step  left 6:09")
    assert "kl" not in line and "{" not in line
    warm = Phase(1, 2, "warm-up SFT", SFT_METRICS, later=("PASR GRPO",))
    line = step_line(warm, 8, 32, {"loss": 1.2345, "learning_rate": 0.00019}, None)
    assert line == "[warm-up SFT 1/2]  step  8/32  loss 1.234  lr 1.9e-04"  # no step time yet, no token accuracy
    assert step_line(warm, 8, 32, {"loss": 1.0}, 2.0).endswith("left 0:48 (then PASR GRPO)")


def test_phase_progress_counts_only_steps_this_process_ran(monkeypatch):
    printed = []
    now = iter([100.0, 130.0])
    monkeypatch.setattr("pasr.train.progress.time.perf_counter", lambda: next(now))
    callback = PhaseProgress(Phase(1, 1, "SFT", SFT_METRICS), print_fn=printed.append)
    state = SimpleNamespace(global_step=10, max_steps=20, is_world_process_zero=True)
    callback.on_train_begin(None, state, None)
    state.global_step = 13
    callback.on_step_end(None, state, None)
    callback.on_log(None, state, None, logs={"loss": 0.5})
    callback.on_log(None, state, None, logs={"train_runtime": 3.0, "train_loss": 0.5})  # the end-of-run log
    assert printed[0] == "[SFT 1/1] 20 steps, resuming at step 10"
    assert printed[1] == "[SFT 1/1]  step 13/20  loss 0.500  10.0 s/step  left 1:10"
    assert len(printed) == 2
    state.is_world_process_zero = False
    callback.on_log(None, state, None, logs={"loss": 0.5})
    assert len(printed) == 2


def test_header_names_model_data_phases_and_folders(tmp_path):
    config = tiny_config(tmp_path / "run", warmup_examples=20, warmup_batch_size=8, max_steps=12)
    log = tmp_path / "run" / "rollouts.jsonl"
    lines = train_header(config, "tiny-random", 8, rollout_log=log)
    assert lines[0] == f"pasr train: tiny-random on synthetic (8 questions) -> {tmp_path / 'run'}"
    assert lines[1] == f"  phase 1/2  warm-up SFT  20 worked solutions, 3 steps  -> {tmp_path / 'run/warmup/final'}"
    assert lines[2].startswith("  phase 2/2  PASR GRPO  12 steps x 2 questions x G=4, refine reward comparison")
    assert lines[3].startswith(f"  rollout log {log};")
    control = train_header(tiny_config(tmp_path / "c", refine_reward_mode="none"), "m", 8, rollout_log=log)
    assert len(control) == 3 and control[1].startswith("  phase 1/1  plain GRPO") and "no refine reward" in control[1]
    final = tmp_path / "run" / "warmup" / "final"
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")  # a finished warm-up: reused
    assert "already done, reused" in train_header(config, "m", 8, rollout_log=log)[1]


def test_a_run_prints_header_step_lines_and_no_raw_metric_dicts(tmp_path, capsys):
    from pasr.train.grpo import train_pasr

    config = tiny_config(tmp_path / "run", warmup_examples=8, warmup_batch_size=4)
    train_pasr(config, ModelConfig(model_name_or_path="tiny-random"), scorer=LengthScorer(), records=tiny_records())
    out = capsys.readouterr().out
    assert out.startswith("pasr train: tiny-random on synthetic (8 questions)")
    assert re.search(r"^\[warm-up SFT 1/2\]  step 2/2  loss \d", out, re.M)
    steps = re.findall(r"^\[PASR GRPO 2/2\]  step (\d)/2  reward -?\d\.\d\d  acc \d\.\d\d  refine \d+%", out, re.M)
    assert steps == ["1", "2"]
    assert "[PASR GRPO 2/2] done: 2 steps in" in out
    assert "{'loss'" not in out and "'reward':" not in out  # transformers' raw log dicts are gone


@pytest.mark.parametrize("bad", [0, -5])
def test_clock_never_negative(bad):
    assert clock(bad) == "0:00"
