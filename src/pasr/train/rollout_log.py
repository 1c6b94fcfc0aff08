"""The rollout log: one JSONL line per training completion, append-only.

Each line holds the question, the completion, its parsed trace, accuracy, the baseline
samples' accuracies, every reward component and the step. It feeds later analysis and
the PASR(+IFT) baseline, so it is flushed after every batch and survives a killed run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


class RolloutLog:
    """Append-only JSONL writer for rollout rows."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, rows: Iterable[dict]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def truncate_after(self, step: int) -> int:
        """Move lines of steps after ``step`` (lost with a killed run) to a ``.discarded.jsonl`` file.

        A resumed run regenerates those steps; keeping the lost ones would count them twice.
        Returns the number of lines moved.
        """
        if not self.path.exists():
            return 0
        kept, dropped = [], []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row_step = json.loads(line).get("step")
            (dropped if row_step is not None and row_step > step else kept).append(line)
        if dropped:
            discarded = self.path.with_suffix(".discarded.jsonl")
            with discarded.open("a", encoding="utf-8") as f:
                f.write("\n".join(dropped) + "\n")
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            tmp.replace(self.path)
        return len(dropped)


def read_rollouts(path: str | Path) -> list[dict]:
    """All rows of a rollout log."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
