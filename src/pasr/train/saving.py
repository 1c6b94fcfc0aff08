"""Saving what a training run produced in the form `pasr eval --model DIR` loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_final_model(trainer: Any, output_dir: str | Path) -> Path:
    """Save the trained model and tokenizer to ``OUTPUT_DIR/final`` (LoRA adapters merged in)."""
    final_dir = Path(output_dir) / "final"
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    if trainer.accelerator.is_main_process:
        model.save_pretrained(final_dir)
        trainer.processing_class.save_pretrained(final_dir)
    trainer.accelerator.wait_for_everyone()
    return final_dir
