"""Supervised fine-tuning on TRL's SFTTrainer: the cold-start warm-up and the SFT-based baselines.

A 135M model does not follow the tag format from the prompt alone (0 of 48 well-formed
responses measured), so the CPU default first fine-tunes on worked PASR-format solutions
of the built-in task. The paper's recipes start RL from the base model; there
``warmup_examples`` stays 0.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from pasr.errors import PasrError
from pasr.run_folder import RunLock, write_text_atomic
from pasr.train.config import ModelConfig, PasrSFTConfig
from pasr.train.progress import SFT_METRICS, Phase, use_phase_progress
from pasr.train.saving import last_complete_checkpoint, save_final_model

logger = logging.getLogger("pasr.train")


def read_chat_examples(path: str) -> list[dict]:
    """Chat examples from JSONL: ``prompt``+``completion`` or ``messages`` per line (and ``mask_spans``, kept when
    present); errors name file and line."""
    from pasr.data.records import read_objects

    examples = []
    for lineno, row in read_objects(path):
        if "messages" in row:
            keys = ("messages",)
        elif "prompt" in row and "completion" in row:
            keys = ("prompt", "completion")
        else:
            raise PasrError(f"{path}, line {lineno}: needs field 'messages' or fields 'prompt' and 'completion'")
        for key in keys:
            value = row[key]
            if not (isinstance(value, list) and all(isinstance(m, dict) and "content" in m for m in value)):
                raise PasrError(f"{path}, line {lineno}: field '{key}' must be a list of chat messages")
        example = {key: row[key] for key in keys}
        if row.get("mask_spans"):  # the slips `pasr data warmup` marks, for warmup_mask_slips
            example["mask_spans"] = row["mask_spans"]
        examples.append(example)
    if not examples:
        raise PasrError(f"{path}: no examples")
    return examples


def sft_examples(config: PasrSFTConfig) -> list[dict]:
    """The examples a config names."""
    if config.dataset == "warmup":
        from pasr.data import synthetic

        family = synthetic.check_family(config.synthetic_family, "synthetic_family")
        records = synthetic.generate_family(family, config.warmup_examples, seed=config.seed, split="train",
                                            difficulty=config.synthetic_difficulty)
        return synthetic.family_warmup_examples(family, records, refine_share=config.warmup_refine_share,
                                                seed=config.seed)
    if config.dataset == "file":
        if not config.data_file:
            raise PasrError("dataset 'file' needs --data_file (JSONL of chat examples)")
        return read_chat_examples(config.data_file)
    raise PasrError(f"unknown SFT dataset {config.dataset!r}: use 'warmup' or 'file' with --data_file")


def run_sft(config: PasrSFTConfig, model_config: ModelConfig, *, examples: list[dict] | None = None,
            phase: Phase | None = None, held: bool = False, trainer_class: type | None = None) -> str:
    """Fine-tune and save to ``OUTPUT_DIR/final``; returns that path. Resumes from the last complete checkpoint.

    Holds ``OUTPUT_DIR`` as its only writer (:class:`pasr.run_folder.RunLock`), unless ``held``: the caller holds
    it already, with its own lock and run kind (``pasr baseline ift``); a second lock would refuse its own folder.
    Progress prints as ``phase`` (default: the one phase ``SFT``; see :mod:`pasr.train.progress`).
    ``trainer_class``: a subclass of TRL's ``SFTTrainer`` built with the same arguments (default: ``SFTTrainer``;
    ``pasr baseline rise``'s reward-weighted loss).
    """
    from pasr.models import resolve

    examples = examples if examples is not None else sft_examples(config)
    model_path = resolve(model_config.model_name_or_path or "smollm2-135m-instruct")
    output_dir = Path(config.output_dir)
    phase = phase or Phase(1, 1, "SFT", SFT_METRICS)
    if held:
        return _train_and_save(config, model_config, model_path, examples, phase, trainer_class)
    with RunLock(output_dir, "pasr sft", option="output_dir", distributed=True):
        return _train_and_save(config, model_config, model_path, examples, phase, trainer_class)


def _train_and_save(config: PasrSFTConfig, model_config: ModelConfig, model_path: str, examples: list[dict],
                    phase: Phase, trainer_class: type | None = None) -> str:
    from trl import SFTTrainer, get_peft_config

    from pasr.generation.attention import use_grouped_sdpa
    from pasr.models import load_model, load_tokenizer
    from pasr.train.masking import sft_dataset

    output_dir = Path(config.output_dir)
    tokenizer = load_tokenizer(model_path)
    args, train_dataset = sft_dataset(config, examples, tokenizer)  # pre-tokenized with warmup_mask_slips
    trainer = (trainer_class or SFTTrainer)(
        model=load_model(model_path, dtype=model_config.dtype),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_config),
    )
    if trainer.accelerator.device.type == "cpu":
        use_grouped_sdpa(trainer.model)  # the same logits and gradients, without per-layer KV copies under padding
    use_phase_progress(trainer, phase)
    last = last_complete_checkpoint(output_dir)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    final_dir = save_final_model(trainer, output_dir)
    if trainer.accelerator.is_main_process:
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        summary = {
            "model_dir": str(final_dir),
            "examples": len(examples),
            "steps": trainer.state.global_step,
            "seconds": round(time.perf_counter() - started, 1),
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
        }
        write_text_atomic(output_dir / "sft_summary.json", json.dumps(summary, indent=2))
    return str(final_dir)


def warmup_final_dir(output_dir: str | Path) -> Path:
    """Where a GRPO run in ``output_dir`` saves its warm-up model (``OUTPUT_DIR/warmup/final``)."""
    return Path(output_dir) / "warmup" / "final"


def warmup_done(output_dir: str | Path) -> bool:
    """Whether the GRPO run in ``output_dir`` has a finished warm-up model, which :func:`warmup_model` reuses."""
    from pasr.train.saving import is_saved_model

    return is_saved_model(warmup_final_dir(output_dir))


def warmup_model(model_path: str, grpo_config: Any, model_config: ModelConfig, phase: Phase | None = None) -> str:
    """The GRPO run's warm-up: SFT on built-in worked solutions into ``OUTPUT_DIR/warmup`` (reused when done)."""
    final_dir = warmup_final_dir(grpo_config.output_dir)
    warmup_dir = final_dir.parent
    if warmup_done(grpo_config.output_dir):
        logger.info("warm-up already done: %s", final_dir)
        return str(final_dir)
    sft_config = PasrSFTConfig(
        output_dir=str(warmup_dir),
        dataset="warmup",
        warmup_examples=grpo_config.warmup_examples,
        warmup_refine_share=grpo_config.warmup_refine_share,
        warmup_mask_slips=grpo_config.warmup_mask_slips,
        synthetic_difficulty=grpo_config.synthetic_difficulty,
        synthetic_family=grpo_config.synthetic_family,
        learning_rate=grpo_config.warmup_learning_rate,
        per_device_train_batch_size=grpo_config.warmup_batch_size,
        num_train_epochs=1,
        lr_scheduler_type="cosine",
        warmup_steps=0.1,
        logging_steps=max(1, grpo_config.logging_steps),
        save_strategy="no",
        bf16=grpo_config.bf16,
        seed=grpo_config.seed,
        report_to=grpo_config.report_to,
        max_length=512,
        use_cpu=grpo_config.use_cpu,
    )
    warm_model_config = ModelConfig(model_name_or_path=model_path)
    return run_sft(sft_config, warm_model_config, phase=phase)
