"""`pasr train` and `pasr sft` (placeholder)."""

import typer


def train_command(ctx: typer.Context) -> None:
    """PASR GRPO training."""
    raise NotImplementedError


def sft_command(ctx: typer.Context) -> None:
    """Supervised fine-tuning (warm-up, PASR(+IFT), STaR)."""
    raise NotImplementedError
