"""A stopped ``pasr sft`` run continues from its last complete checkpoint (the evidence warm-up checkpoints every 16
steps: 33-75 min on 2 cores is too long to lose)."""

from __future__ import annotations

import trl
import yaml
from transformers import TrainerCallback

from pasr.generation.attention import NAME
from pasr.train.command import DEFAULT_SFT_RECIPE, RECIPES, parse_config
from pasr.train.sft import run_sft

SFT_TRAINER = trl.SFTTrainer


class Stop(Exception):
    pass


def sft_run(tmp_path, monkeypatch, *, stop_after: int | None):
    """One tiny-random ``pasr sft`` run of 4 steps, checkpoints every 2; raises :class:`Stop` after ``stop_after``
    steps. Returns the ``resume_from_checkpoint`` each ``train`` call got, the steps each trainer ran and the
    attention implementation each trained with."""
    calls, steps, attention = [], [], []

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps.append(state.global_step)
            if stop_after is not None and state.global_step == stop_after:
                raise Stop

    class Spy(SFT_TRAINER):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(StopAt())

        def train(self, resume_from_checkpoint=None, **kwargs):
            calls.append(resume_from_checkpoint)
            attention.append(self.model.config._attn_implementation)
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    monkeypatch.setattr(trl, "SFTTrainer", Spy)
    args = ["--model_name_or_path", "tiny-random", "--output_dir", str(tmp_path / "out"), "--warmup_examples", "16",
            "--max_steps", "4", "--per_device_train_batch_size", "4", "--save_strategy", "steps", "--save_steps", "2",
            "--save_total_limit", "1", "--logging_steps", "1", "--bf16", "false"]
    config, model_config = parse_config("sft", args, DEFAULT_SFT_RECIPE)
    try:
        run_sft(config, model_config)
    except Stop:
        pass
    return calls, steps, attention


def test_stopped_sft_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    calls, steps, attention = sft_run(tmp_path, monkeypatch, stop_after=3)
    assert calls == [None] and steps == [1, 2, 3]
    assert attention == [NAME]  # on a CPU: grouped-query SDPA (pasr.generation.attention)
    assert not (tmp_path / "out" / "final").exists()
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-2"]

    calls, steps, _ = sft_run(tmp_path, monkeypatch, stop_after=None)
    assert [c and c.rsplit("/", 1)[-1] for c in calls] == ["checkpoint-2"]
    assert steps == [3, 4]  # steps 1-2 came from the checkpoint, step 3 is redone once
    assert (tmp_path / "out" / "final" / "config.json").is_file()


def test_the_evidence_warmup_recipe_checkpoints():
    values = yaml.safe_load((RECIPES / "cpu-evidence-warmup.yaml").read_text(encoding="utf-8"))
    assert values["save_strategy"] == "steps" and values["save_total_limit"] == 1
    assert 0 < values["save_steps"] <= 16
