"""PASR training on TRL's GRPOTrainer: data, scorer, rewards, trainer, warm-up, resume, summary.

The RL loop is TRL's. PASR adds reward functions (:mod:`pasr.train.reward_functions`),
the standard-sample baseline (:mod:`pasr.train.baseline`), a rollout log, a time split
per phase, and an optional supervised warm-up for models too small to follow the tag
format from the prompt alone.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trl import GRPOTrainer

from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.models import cpu_supports_bf16
from pasr.prompts import SYSTEM_PROMPTS
from pasr.rewards import RewardWeights
from pasr.run_folder import RunLock, is_writing_process, write_text_atomic
from pasr.scoring import build_scorer
from pasr.train.config import ModelConfig, PasrGRPOConfig
from pasr.train.data import check_records, load_training_records, records_to_dataset
from pasr.train.progress import (
    GRPO_METRICS,
    SFT_METRICS,
    Phase,
    grpo_phase_name,
    print_lines,
    train_header,
    use_phase_progress,
)
from pasr.train.reward_functions import PasrRewards
from pasr.train.rollout_log import RolloutLog
from pasr.train.saving import (
    checkpoint_step,
    generation_window,
    is_saved_model,
    last_complete_checkpoint,
    save_final_model,
)
from pasr.train.trl_adapter import GRPOHooks, log_metric

logger = logging.getLogger("pasr.train")


class PasrGRPOTrainer(GRPOHooks, GRPOTrainer):
    """GRPOTrainer with PASR's time split (policy generation, scoring/baseline, update), CPU bf16 generation,
    grouped-query SDPA on a CPU (:mod:`pasr.generation.attention`) and vLLM rollouts on vLLM's CPU build
    (:mod:`pasr.train.vllm_sync`). The hooks into TRL's generation are :class:`pasr.train.trl_adapter.GRPOHooks`."""

    def __init__(self, *args, cpu_bf16_generation: bool = False, **kwargs):
        from pasr.generation.attention import use_grouped_sdpa
        from pasr.train.vllm_sync import use_cpu_weight_sync

        with use_cpu_weight_sync(bool(getattr(kwargs.get("args"), "use_vllm", False))):  # vLLM's CPU build only
            super().__init__(*args, **kwargs)
        self.generation_autocast = (
            cpu_bf16_generation and self.accelerator.device.type == "cpu" and cpu_supports_bf16()
        )
        if self.accelerator.device.type == "cpu":
            use_grouped_sdpa(self.model)  # rollouts decode under a padding mask: no per-layer KV copies
        self.prepare_seconds = 0.0

    def training_step(self, model, inputs, num_items_in_batch):
        self.prepare_seconds = 0.0
        start = time.perf_counter()
        out = super().training_step(model, inputs, num_items_in_batch)
        log_metric(self, "time/update", time.perf_counter() - start - self.prepare_seconds, mode="train")
        return out


def system_prompt_text(name_or_text: str) -> str:
    """A named system prompt ('pasr', 'standard') or the literal text given."""
    return SYSTEM_PROMPTS.get(name_or_text, name_or_text)


@dataclass
class TrainResult:
    """What a training run produced."""

    output_dir: str
    model_dir: str
    rollout_log: str | None
    log_history: list[dict]
    warmup_dir: str | None = None
    seconds: float = 0.0


def resolve_resume(config: PasrGRPOConfig, resume: bool) -> str | None:
    """The checkpoint to resume from when ``resume`` is set (:func:`pasr.train.saving.last_complete_checkpoint`)."""
    if not resume:
        return None
    last = last_complete_checkpoint(config.output_dir)
    if last is None:
        logger.warning("--resume: no complete checkpoint in %s yet; starting from the beginning", config.output_dir)
    return last


def train_pasr(
    config: PasrGRPOConfig,
    model_config: ModelConfig,
    *,
    resume: bool = False,
    scorer: Any = None,
    records: list[Record] | None = None,
) -> TrainResult:
    """Run the PASR pipeline: optional warm-up SFT, then GRPO with the PASR rewards. Returns where things are."""
    started = time.perf_counter()
    if records is None:
        records = load_training_records(config)
    check_records(records, config)
    output_dir = Path(config.output_dir)
    log_path = Path(config.rollout_log) if config.rollout_log else output_dir / "rollouts.jsonl"
    with RunLock(output_dir, "pasr train", option="output_dir", distributed=True):
        if log_path.exists() and not resume:
            raise PasrError(
                f"{log_path} exists from an earlier run: pass --resume to continue it, or choose another --output_dir"
            )
        checkpoint = resolve_resume(config, resume)
        model_name = model_config.model_name_or_path or "smollm2-135m-instruct"
        print_lines(train_header(config, model_name, len(records), rollout_log=log_path))
        grpo_name = grpo_phase_name(config.refine_reward_mode)
        phases = 2 if config.warmup_examples > 0 else 1

        warmup_dir = None
        if config.warmup_examples > 0:
            from pasr.models import resolve
            from pasr.train.sft import warmup_model

            base = resolve(model_name)
            phase = Phase(1, 2, "warm-up SFT", SFT_METRICS, later=(grpo_name,))
            warmup_dir = warmup_model(base, config, model_config, phase=phase)
            model_config = replace(model_config, model_name_or_path=warmup_dir)

        rollout_log = RolloutLog(log_path)
        step = checkpoint_step(checkpoint) if checkpoint else 0
        if resume and is_writing_process():
            moved = rollout_log.truncate_after(step, generation_window(config))
            if moved:
                logger.warning(
                    "--resume: %d rollout lines of generations past %s (lost with the killed run) moved to %s",
                    moved, checkpoint or "the start", rollout_log.path.with_suffix(".discarded.jsonl"),
                )
        finished = checkpoint is not None and 0 < config.max_steps <= step
        if finished and is_saved_model(output_dir / "final"):
            logger.warning("--resume: %s already finished max_steps=%d; nothing to train", output_dir, config.max_steps)
            return _finished(checkpoint, config, output_dir, log_path, warmup_dir, started)

        own_scorer = scorer is None
        scorer = scorer or build_scorer(config)
        try:
            if finished:  # killed after the last checkpoint, before the final save: save that checkpoint's model
                model_config = replace(model_config, model_name_or_path=checkpoint, use_peft=False)
            trainer, _ = build_trainer(config, model_config, records, scorer, rollout_log)
            use_phase_progress(trainer, Phase(phases, phases, grpo_name, GRPO_METRICS))
            if not finished:
                trainer.train(resume_from_checkpoint=checkpoint)
        finally:
            if own_scorer:
                scorer.close()
        return _finish(trainer, config, output_dir, log_path, warmup_dir, started,
                       history=_checkpoint_history(checkpoint) if finished else None)


def _checkpoint_history(checkpoint: str) -> list[dict]:
    return list(json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8")).get("log_history", []))


def _finished(checkpoint: str, config: PasrGRPOConfig, output_dir: Path, log_path: Path, warmup_dir,
              started: float) -> TrainResult:
    """The result of a run that had already finished: its final model, and the history of its last checkpoint."""
    return TrainResult(
        output_dir=str(output_dir),
        model_dir=str(output_dir / "final"),
        rollout_log=str(log_path),
        log_history=_checkpoint_history(checkpoint),
        warmup_dir=str(warmup_dir) if warmup_dir else None,
        seconds=time.perf_counter() - started,
    )


def _finish(trainer, config: PasrGRPOConfig, output_dir: Path, log_path: Path, warmup_dir, started: float,
            history: list[dict] | None = None) -> TrainResult:
    """Save the final model and the run summary; the result of :func:`train_pasr`."""
    final_dir = save_final_model(trainer, output_dir)
    result = TrainResult(
        output_dir=str(output_dir),
        model_dir=str(final_dir),
        rollout_log=str(log_path),
        log_history=list(trainer.state.log_history) if history is None else history,
        warmup_dir=str(warmup_dir) if warmup_dir else None,
        seconds=time.perf_counter() - started,
    )
    if trainer.accelerator.is_main_process:
        write_summary(result, config)
    return result


def build_trainer(
    config: PasrGRPOConfig,
    model_config: ModelConfig,
    records: list[Record],
    scorer: Any,
    rollout_log: RolloutLog | None = None,
) -> tuple[PasrGRPOTrainer, PasrRewards]:
    """The GRPO trainer with PASR's reward functions bound to it (no training yet)."""
    from trl import get_peft_config

    from pasr.models import load_model, load_tokenizer, resolve

    model_path = resolve(model_config.model_name_or_path or "smollm2-135m-instruct")
    weights = list(config.reward_weights or [])
    rewards = PasrRewards(
        scorer,
        mode=config.refine_reward_mode,
        zeta=config.zeta,
        baseline_samples=config.baseline_samples,
        lazy=config.lazy_baseline,
        weights=RewardWeights(*(weights + [1.0, 1.0, 1.0])[:3]),
        rollout_log=rollout_log,
        completion_prefix=config.completion_prefix,
        judge_agreement=bool(getattr(config, "judge_agreement", False)),
    )
    if weights and len(weights) != len(rewards.functions()):
        raise PasrError(
            f"reward_weights has {len(weights)} values; this mode uses {len(rewards.functions())} rewards "
            f"({', '.join(f.__name__ for f in rewards.functions())})"
        )
    tokenizer = load_tokenizer(model_path)
    trainer = PasrGRPOTrainer(
        model=load_model(model_path, dtype=model_config.dtype),
        reward_funcs=rewards.functions(),
        args=config,
        train_dataset=records_to_dataset(records, system_prompt_text(config.system_prompt)),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_config),
        cpu_bf16_generation=config.cpu_bf16_generation,
    )
    rewards.bind(trainer)
    return trainer, rewards


def trend(history: list[dict], key: str) -> tuple[float, float] | None:
    """Mean of ``key`` over the first and the last third of the logged steps."""
    values = [h[key] for h in history if h.get(key) is not None]
    if not values:
        return None
    third = max(1, len(values) // 3)
    return sum(values[:third]) / third, sum(values[-third:]) / third


def write_summary(result: TrainResult, config: PasrGRPOConfig) -> dict:
    """Write train_summary.json beside the model and return it."""
    history = result.log_history
    summary = {
        "model_dir": result.model_dir,
        "warmup_dir": result.warmup_dir,
        "rollout_log": result.rollout_log,
        "steps": max((h.get("step", 0) for h in history), default=0),
        "seconds": round(result.seconds, 1),
        "refine_reward_mode": config.refine_reward_mode,
        "trends": {
            key: trend(history, key)
            for key in ("reward", "rewards/accuracy_reward/mean", "pasr/refine_rate", "pasr/format_valid_rate")
        },
    }
    write_text_atomic(Path(result.output_dir, "train_summary.json"), json.dumps(summary, indent=2))
    return summary


__all__ = ["PasrGRPOTrainer", "TrainResult", "build_trainer", "train_pasr"]
