"""Saving what a training run produced in the form `pasr eval --model DIR` loads."""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from pathlib import Path
from typing import Any

from pasr.run_folder import is_writing_process

logger = logging.getLogger("pasr.train")


def is_saved_model(folder: str | Path) -> bool:
    """Whether ``folder`` holds a whole saved model (its ``config.json``; :func:`save_final_model` renames a
    finished folder into place, so a half-written one never counts)."""
    return (Path(folder) / "config.json").is_file()


def save_final_model(trainer: Any, output_dir: str | Path) -> Path:
    """Save the trained model and tokenizer to ``OUTPUT_DIR/final`` (LoRA adapters merged in).

    The folder appears whole or not at all: it is written as ``final.partial`` and renamed, so a
    run killed while saving never leaves a ``final`` that looks done (the warm-up reuses one).
    """
    final_dir = Path(output_dir) / "final"
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    if trainer.accelerator.is_main_process:
        partial = final_dir.with_name("final.partial")
        if partial.exists():
            shutil.rmtree(partial)
        model.save_pretrained(partial)
        trainer.processing_class.save_pretrained(partial)
        if final_dir.exists():
            shutil.rmtree(final_dir)
        partial.rename(final_dir)
    trainer.accelerator.wait_for_everyone()
    return final_dir


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest *complete* ``checkpoint-N`` folder of ``output_dir`` (what a resumed run starts from), or None.

    A checkpoint is complete once its ``trainer_state.json`` exists and parses: transformers'
    ``Trainer`` writes it last, in place. A newer folder without it (or with it cut short) was cut
    short by a kill; the writing process moves
    it to ``incomplete-checkpoint-N`` (kept for inspection, invisible to the trainer) and the run
    resumes from the checkpoint before it. Unlike ``transformers.trainer_utils.get_last_checkpoint``,
    which would pick the cut one and fail to load it.
    """
    out = Path(output_dir)
    found = []
    for folder in out.iterdir() if out.is_dir() else ():
        match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
        if match and folder.is_dir():
            found.append((int(match.group(1)), folder))
    for _, folder in sorted(found, reverse=True):
        if _readable_state(folder):
            return str(folder)
        if not is_writing_process():
            continue  # the writing rank moves it; every rank skips it
        aside = folder.with_name(f"incomplete-{folder.name}")
        if aside.exists():
            shutil.rmtree(aside)
        folder.rename(aside)
        logger.warning("%s was cut short by a kill (no readable trainer_state.json); moved to %s", folder, aside)
    return None


def _readable_state(folder: Path) -> bool:
    try:
        return isinstance(json.loads((folder / "trainer_state.json").read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def checkpoint_step(checkpoint: str | Path) -> int:
    """The global step a checkpoint holds (its ``trainer_state.json``)."""
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])


def generation_window(config: Any) -> int:
    """Optimizer steps one TRL generation batch covers: ``ceil(steps_per_generation * num_iterations / grad_accum)``.

    GRPOTrainer generates once every ``steps_per_generation * num_iterations`` micro-batches and
    trains on slices of that batch; the PASR rollout rows of a generation carry the step it was
    made for (the first of its window).
    """
    micro = (getattr(config, "steps_per_generation", None) or config.gradient_accumulation_steps) * getattr(
        config, "num_iterations", 1
    )
    return max(1, math.ceil(micro / max(1, config.gradient_accumulation_steps)))
