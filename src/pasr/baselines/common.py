"""What the trained baselines share beyond generation and scoring: their questions, the cut for a right answer,
the run log, the start of a run (console, progress bar, run folder) and the scorer a run owns.

Generation lives in :mod:`pasr.generation.runtime`, scoring in :func:`pasr.scoring.score_records`, fine-tuning
in :func:`pasr.train.sft.run_sft`; this module holds the pieces the baselines' run functions would otherwise
each write again (STaR, PTR, ...).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.jsonl import read_jsonl, repair_tail

logger = logging.getLogger("pasr.baselines")

DEFAULT_BASE = "smollm2-135m-instruct"
"""The base model when ``model_name_or_path`` is unset (the built-in one)."""


# --- questions --------------------------------------------------------------------------------------


def training_records(config: Any, n: int) -> list[Record]:
    """``n`` training questions of ``config.dataset`` (train splits only): the built-in task for ``synthetic``,
    else what :func:`pasr.train.data.load_training_records` reads."""
    from pasr.data import synthetic
    from pasr.train.data import load_training_records

    if config.dataset == "synthetic":
        return synthetic.generate_family(config.synthetic_family, n, seed=config.seed + config.data_seed_offset,
                                         split="train", difficulty=config.synthetic_difficulty)
    shim = copy.copy(config)
    shim.train_size = n
    return load_training_records(shim)


def heldout_records(config: Any, n: int, benchmark: str | None = None, data_file: str | None = None) -> list[Record]:
    """``n`` held-out questions: the built-in task's test split (same family and difficulty), or ``benchmark``
    (read from ``data_file`` when given). None when ``n`` is 0."""
    if n == 0:
        return []
    if benchmark is None:
        from pasr.data import synthetic

        return synthetic.generate_family(config.synthetic_family, n, seed=config.seed, split="test",
                                         difficulty=config.synthetic_difficulty)
    from pasr.data.benchmarks import load_benchmark

    return load_benchmark(benchmark, data_file=data_file, limit=n, seed=config.seed)


def worked_solution(record: Record, family: str) -> str:
    """The built-in task's worked solution of ``record`` (think/answer form, no refine)."""
    from pasr.data import synthetic

    if family == "sums":
        from pasr.data import sums

        return sums.solution(record, kind="direct")
    return synthetic.solution(record, refine=False)


def correct(score: float, task: str) -> bool:
    """Right, by the cut the evaluation uses (full marks for accuracy families, >= 0.5 for F1 / ROUGE-L)."""
    from pasr.eval.methods import is_wrong
    from pasr.scoring import METRIC

    return not is_wrong(score, METRIC.get(task, "accuracy"))


# --- the run ----------------------------------------------------------------------------------------


def read_run_log(path: Path, key: str, convert: Callable[[Any], Any], kind: str) -> dict[Any, dict]:
    """A run log's rows by ``convert(row[key])``, the last one of a key winning (:mod:`pasr.jsonl` rule: a torn
    last line is cut, corrupt ones skipped with a warning). :class:`PasrError` naming the line when a row has no
    ``key`` or ``convert`` refuses it (``kind``: what it must be, e.g. ``a number``)."""
    repair_tail(path)
    found = read_jsonl(path)
    for problem in found.problems:
        logger.warning(problem)
    rows = {}
    for lineno, row in zip(found.numbers, found.rows):
        try:
            rows[convert(row[key])] = row
        except (KeyError, TypeError, ValueError):
            raise PasrError(f"{path}, line {lineno}: field {key!r} missing or not {kind}") from None
    return rows


def text(value: Any) -> str:
    """``value`` when it is a string (a :func:`read_run_log` ``convert``); TypeError otherwise."""
    if not isinstance(value, str):
        raise TypeError(value)
    return value


@dataclass
class RunStart:
    """What every baseline run sets up first: the accelerate state, a console that only the main process
    prints to (``say``), the start time, the base model and the output folder (created)."""

    state: Any
    console: Any
    started: float
    base: str
    output: Path

    @property
    def main(self) -> bool:
        return self.state.is_main_process

    def say(self, *args: Any, **kwargs: Any) -> None:
        if self.main:
            self.console.print(*args, **kwargs)

    def progress(self) -> Any:
        """A rich progress bar (description, bar, done / total, elapsed) on the console, silent off the main process."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=self.console, disable=not self.main)

    def seconds(self) -> float:
        return time.perf_counter() - self.started


def start_run(config: Any, model_config: Any, console: Any = None) -> RunStart:
    """The :class:`RunStart` of a run of ``config`` (its ``output_dir``) from ``model_config``'s model;
    ``console``: a rich console (None: one on stderr)."""
    from accelerate import PartialState
    from rich.console import Console

    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    return RunStart(state=PartialState(), console=console or Console(stderr=True), started=time.perf_counter(),
                    base=model_config.model_name_or_path or DEFAULT_BASE, output=output)


@contextlib.contextmanager
def run_scorer(config: Any, scorer: Any = None) -> Iterator[Any]:
    """``scorer`` as it is (the caller's, not closed here), or the run's own (:func:`pasr.scoring.build_scorer`
    of ``config``), closed at the end."""
    if scorer is not None:
        yield scorer
        return
    from pasr.scoring import build_scorer

    own = build_scorer(config)
    try:
        yield own
    finally:
        own.close()


__all__ = ["DEFAULT_BASE", "RunStart", "correct", "heldout_records", "read_run_log", "run_scorer", "start_run",
           "text", "training_records", "worked_solution"]
