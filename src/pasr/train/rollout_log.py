"""The rollout log: one JSONL line per training completion, append-only.

Each line holds the question, the completion, its parsed trace, accuracy, the baseline
samples' accuracies, every reward component and the ``step`` it was generated for
(``global_step + 1``). It feeds later analysis and the PASR(+IFT) baseline, so each batch
is flushed and fsynced (:func:`pasr.jsonl.append_jsonl`) and survives a killed run. Reading
and repairing follow :mod:`pasr.jsonl`'s rule (torn tail dropped, corrupt lines warned about).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from pasr.jsonl import append_jsonl, read_jsonl, repair_tail, rewrite_jsonl, set_aside_corrupt

logger = logging.getLogger("pasr.train")


class RolloutLog:
    """Append-only JSONL writer for rollout rows."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, rows: Iterable[dict]) -> None:
        append_jsonl(self.path, rows)

    def truncate_after(self, step: int, window: int = 1) -> int:
        """Make the log end at ``step`` (the checkpoint a resumed run starts from; 0 when it starts over).

        A resumed run generates anew from step ``step + 1``, so the lines of every generation whose
        ``window`` of steps (:func:`pasr.train.saving.generation_window`; 1 with TRL's defaults)
        reaches past ``step`` move to ``<log>.discarded.jsonl``: keeping them would count those
        steps twice. A torn last line is cut and corrupt lines go to ``<log>.corrupt``
        (:mod:`pasr.jsonl`). Returns the number of lines moved to the discarded file.
        """
        if not self.path.exists():
            return 0
        if repair_tail(self.path):
            logger.warning("%s: cut a torn last line (the run was killed mid-write)", self.path)
        found = read_jsonl(self.path)
        for problem in found.problems:
            logger.warning(problem)
        aside = set_aside_corrupt(self.path, found.bad_lines)
        if aside is not None:
            logger.warning("%s: %d corrupt line(s) moved to %s", self.path, len(found.bad_lines), aside)
        def unfinished(row: dict) -> bool:
            return isinstance(row.get("step"), int) and row["step"] + window - 1 > step

        kept = [r for r in found.rows if not unfinished(r)]
        dropped = [r for r in found.rows if unfinished(r)]
        if dropped:
            append_jsonl(self.path.with_suffix(".discarded.jsonl"), dropped)
            rewrite_jsonl(self.path, kept)
        return len(dropped)


def read_rollouts(path: str | Path) -> list[dict]:
    """All rows of a rollout log (:mod:`pasr.jsonl` rule: problems are logged as warnings and skipped)."""
    found = read_jsonl(path)
    for problem in found.problems:
        logger.warning(problem)
    return found.rows
