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
from collections.abc import Callable, Iterable, Iterator
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


def question_key(question: str) -> str:
    """A question's text with blanks collapsed and case folded: two questions with the same key are the same
    question to the held-out exclusion (a copy with other line breaks or capitals is still a training question)."""
    return " ".join(str(question).split()).casefold()


def heldout_records(config: Any, n: int, benchmark: str | None = None, data_file: str | None = None,
                    exclude: Iterable[str] = ()) -> list[Record]:
    """``n`` held-out questions: the built-in task's test split (same family and difficulty), or ``benchmark``
    (read from ``data_file`` when given). Empty when ``n`` is 0.

    ``exclude``: the training questions; a held-out question with the same :func:`question_key` is left out
    (logged), so a baseline is never evaluated on a question it trained on, whatever the two sources are (a
    benchmark file given for training and for evaluation, a training file copied from a test set).
    """
    if n == 0:
        return []
    if benchmark is None:
        from pasr.data import synthetic

        records = synthetic.generate_family(config.synthetic_family, n, seed=config.seed, split="test",
                                            difficulty=config.synthetic_difficulty)
    else:
        from pasr.data.benchmarks import load_benchmark

        records = load_benchmark(benchmark, data_file=data_file, limit=n, seed=config.seed)
    seen = {question_key(q) for q in exclude}
    kept = [r for r in records if question_key(r.question) not in seen]
    if len(kept) < len(records):
        logger.warning("%d held-out question(s) are also training questions; left out", len(records) - len(kept))
    return kept


def check_heldout_source(config: Any, benchmark_field: str, file_field: str) -> None:
    """Refuse a held-out data file (``file_field``) without the held-out benchmark it is for (``benchmark_field``):
    it would be ignored and the built-in test split used instead."""
    if getattr(config, file_field) and getattr(config, benchmark_field) is None:
        raise PasrError(f"{file_field} is a local file of the held-out benchmark: set {benchmark_field} too "
                        f"(e.g. gsm8k), or drop {file_field}")


def check_sources(config: Any, prefix: str, backends: tuple[str, ...], *, heldout_n: str = "heldout_n") -> None:
    """The checks every question-driven baseline shares, each problem a one-line :class:`PasrError` naming the
    field: ``dataset`` (and ``data_file``), ``<prefix>_heldout_benchmark`` / ``<prefix>_heldout_file`` (with
    ``<prefix>_<heldout_n>`` held-out questions, a non-built-in ``dataset`` needs a held-out benchmark),
    ``<prefix>_generation_dtype`` and ``<prefix>_backend`` (one of ``backends``) where the config has them, and
    ``judge_url`` / ``judge_model`` together."""
    from pasr.data.benchmarks import BENCHMARKS
    from pasr.generation.backends import DTYPES

    if config.dataset not in ("synthetic", "wizardlm", "file") and config.dataset not in BENCHMARKS:
        raise PasrError(f"dataset={config.dataset!r}: use 'synthetic', 'wizardlm', 'file' (with data_file) "
                        "or a benchmark name")
    if config.dataset == "file" and not config.data_file:
        raise PasrError("dataset 'file' needs data_file (a JSON/JSONL file of training records)")
    benchmark = getattr(config, f"{prefix}_heldout_benchmark")
    if benchmark is not None and benchmark not in BENCHMARKS:
        raise PasrError(f"{prefix}_heldout_benchmark={benchmark!r}: unknown benchmark; known: {', '.join(BENCHMARKS)}")
    if getattr(config, f"{prefix}_{heldout_n}") and config.dataset != "synthetic" and benchmark is None:
        raise PasrError(f"{prefix}_heldout_benchmark: name a held-out benchmark for non-built-in training data "
                        f"(e.g. gsm8k), or set {prefix}_{heldout_n} 0")
    check_heldout_source(config, f"{prefix}_heldout_benchmark", f"{prefix}_heldout_file")
    dtype = getattr(config, f"{prefix}_generation_dtype", None)
    if dtype is not None and dtype not in DTYPES:
        raise PasrError(f"{prefix}_generation_dtype={dtype!r}: use one of {', '.join(DTYPES)}")
    backend = getattr(config, f"{prefix}_backend")
    if backend not in backends:
        raise PasrError(f"{prefix}_backend={backend!r}: use one of {', '.join(backends)}")
    if bool(config.judge_url) != bool(config.judge_model):
        raise PasrError("judge_url and judge_model go together: set both or neither")


def check_records(config: Any, records: list[Record], heldout: list[Record] = (), heldout_name: str | None = None,
                  ) -> None:
    """The run's training and held-out records can be scored (:func:`pasr.train.data.check_records`, as in ``pasr
    train``): call right after loading them, before any model loads. One-line :class:`PasrError` otherwise."""
    from pasr.train.data import check_records as check

    check(records, config)
    if heldout:
        check(list(heldout), config, what=f"the held-out data ({heldout_name or 'built-in test split'})")


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


# --- the settings a run folder was made with ------------------------------------------------------------

SETTINGS_FILE = "run_settings.json"
"""The settings that shaped what OUTPUT_DIR holds (:func:`hold_settings`), written at the first run."""

DATA_FIELDS = ("dataset", "data_file", "data_task", "data_fields", "train_size", "synthetic_family",
               "synthetic_difficulty", "data_seed_offset", "seed", "judge_model", "judge_all")
"""The fields that choose the training questions and how they are scored."""

SFT_FIELDS = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
              "gradient_accumulation_steps", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps",
              "weight_decay", "max_grad_norm", "optim", "max_length", "packing", "completion_only_loss",
              "assistant_only_loss", "seed")
"""The fine-tuning hyperparameters that shape the trained model."""

MODEL_FIELDS = ("model_revision", "dtype", "use_peft", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules",
                "lora_target_parameters", "lora_modules_to_save", "use_rslora", "use_dora", "load_in_8bit",
                "load_in_4bit")
"""The :class:`~pasr.train.config.ModelConfig` fields that shape the trained model (besides the base model)."""


def _plain(value: Any) -> Any:
    """``value`` as JSON reads it back (enums by value, paths and other objects as text)."""
    import json

    return json.loads(json.dumps(value, default=lambda o: getattr(o, "value", str(o))))


def run_settings(config: Any, model_config: Any, fields: tuple[str, ...] | list[str], **extra: Any) -> dict[str, Any]:
    """The settings that shape a run's results: the base model, ``fields`` of ``config`` (those it has), the
    shaping :data:`MODEL_FIELDS` of ``model_config`` and ``extra`` (e.g. a data file's digest)."""
    found: dict[str, Any] = {"base_model": model_config.model_name_or_path or DEFAULT_BASE}
    for name in dict.fromkeys(fields):
        if hasattr(config, name):
            found[name] = getattr(config, name)
    for name in MODEL_FIELDS:
        if hasattr(model_config, name):
            found[f"model.{name}"] = getattr(model_config, name)
    found.update(extra)
    return {k: _plain(v) for k, v in found.items()}


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (a data file's part of :func:`run_settings`)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def produced(output: Path) -> list[Path]:
    """What a run in ``output`` has made: everything but the folder's bookkeeping (its settings, kind and lock)."""
    from pasr.run_folder import HOLDER_FILE, KIND_FILE, LOCK_FILE

    bookkeeping = {SETTINGS_FILE, KIND_FILE, LOCK_FILE, HOLDER_FILE}
    try:
        return sorted(p for p in Path(output).iterdir() if p.name not in bookkeeping)
    except FileNotFoundError:
        return []


def hold_settings(output: Path, settings: dict[str, Any], *, main: bool = True) -> bool:
    """Tie OUTPUT_DIR to ``settings`` (:func:`run_settings`): the first run writes them to ``SETTINGS_FILE``
    (atomically, main process only); a rerun with other settings is refused (one line naming what differs),
    since it would silently reuse stages made with the old ones, unless the folder holds nothing else
    (:func:`produced`: an earlier start failed before making anything, e.g. on a mistyped model), whose settings
    are then replaced. True when the folder already had them (a rerun with the same settings), False otherwise.
    Call before any stage runs."""
    import json

    from pasr.run_folder import write_text_atomic

    path = Path(output) / SETTINGS_FILE
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        before = None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise PasrError(f"{path}: unreadable settings of an earlier run ({err}); use a new --output_dir") from None
    if before is not None and not isinstance(before, dict):
        raise PasrError(f"{path}: not a JSON object; use a new --output_dir")
    if before is None:
        if main:
            write_text_atomic(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")
        return False
    missing = object()
    changed = [k for k in sorted(set(before) | set(settings)) if before.get(k, missing) != settings.get(k, missing)]
    if changed and not produced(output):  # an earlier start failed before making anything: nothing to protect
        if main:
            write_text_atomic(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")
        return False
    if changed:
        def shown(v: Any) -> str:
            return "unset" if v is missing else json.dumps(v)

        what = ", ".join(f"{k} {shown(before.get(k, missing))} -> {shown(settings.get(k, missing))}"
                         for k in changed)
        raise PasrError(f"{output} holds a run made with other settings ({what}); its stages would be reused as "
                        "they are: rerun with the earlier settings to resume, or give a new --output_dir")
    return True


def write_summary(path: Path, summary: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Write a run's summary (JSON, atomically) with its wall time over every invocation that reached the end:
    ``invocation_seconds`` lists them (an earlier summary's list, then this one's ``seconds``) and ``seconds`` is
    their sum, so a rerun that only resumes (or finds everything done) adds its few seconds instead of replacing
    the run's time. An unreadable earlier summary counts as none. Returns what was written."""
    import json

    from pasr.run_folder import write_text_atomic

    try:
        before = json.loads(Path(path).read_text(encoding="utf-8"))
        earlier = [float(x) for x in before.get("invocation_seconds", [before["seconds"]])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        earlier = []
    spans = [*earlier, round(float(seconds), 1)]
    summary = {**summary, "seconds": round(sum(spans), 1), "invocation_seconds": spans}
    write_text_atomic(Path(path), json.dumps(summary, indent=2) + "\n")
    return summary


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


__all__ = ["DATA_FIELDS", "DEFAULT_BASE", "MODEL_FIELDS", "RunStart", "SETTINGS_FILE", "SFT_FIELDS",
           "check_heldout_source", "check_records", "correct", "file_digest", "heldout_records", "hold_settings",
           "run_settings", "read_run_log", "run_scorer", "start_run",
           "text", "training_records", "worked_solution"]
