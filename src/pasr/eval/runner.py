"""Run evaluation methods over benchmarks, append per-example results, write summaries.

Layout under the run folder (RUN_DIR)::

    run.json                              the model, backend and generation settings of the run
    <benchmark>/<method>.jsonl            one result line per example, appended chunk by chunk
    <benchmark>/<method>.summary.json     metrics over the lines (pasr.eval.metrics.summarize)
    <benchmark>/<method>.analysis.jsonl   optional LLM analyses of refining responses

Runs are safe to interrupt: examples are handled in chunks (the backend's ``chunk_size``), each
chunk's lines are appended and flushed once it is done, and a rerun of the same command skips ids
already present (a torn last line from a kill is dropped first). ``vanilla`` runs first so the other
methods' summaries can report transitions against it; summaries are recomputed at the end for every
method file in the run folder.

Inputs first: every check (names, options, data files, the model and its backend, the judge, the
folder's ``run.json`` and kind) runs before anything is created under RUN_DIR or any progress is
printed, so bad input leaves the folder as it was (or absent). The progress bar of each benchmark x
method moves per finished example and shows generated tokens/s (:mod:`pasr.eval.progress`).
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pasr import vllm_platform
from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.eval.methods import METHODS, ChainConfig, Outcome, run_method
from pasr.eval.metrics import read_lines, read_results, summarize
from pasr.eval.progress import MethodProgress, TokenRateColumn
from pasr.jsonl import append_jsonl, read_jsonl, repair_tail, rewrite_jsonl, set_aside_corrupt
from pasr.run_folder import KIND_FILE, RunLock, check_output_folder, write_text_atomic
from pasr.scoring import judge_metric_of, metric_of

RUN_FILE = "run.json"
RUN_KEYS_THAT_MUST_MATCH = (
    "model", "max_tokens", "temperature", "seed", "rounds", "dtype", "completion_prefix", "scorer",
)
"""Settings a rerun into the same RUN_DIR must share: otherwise its lines would mix with different ones."""
COMMAND = "pasr eval"
SCORERS = ("rule", "judge", "both")
"""``--scorer``: the answer family's rule (judge only for task ``open``), the LLM judge for every benchmark
(the PASR authors' protocol), or both on every example (the judge's is the score; the rule's is kept beside
it and their agreement summarised)."""
JUDGE_OPTIONS = {"base_url": "--judge-url", "model": "--judge-model", "timeout": "--judge-timeout",
                 "retries": "--judge-retries", "max_tokens": "--judge-max-tokens"}
"""How `pasr eval` spells the judge's settings (for messages about them)."""
UNJUDGED = "unjudged"
"""``<benchmark>/<method>.unjudged.jsonl``: examples generated while the judge did not answer; judged on a rerun."""

TRAINED_MODEL_FOLDER = re.compile(r"final|checkpoint-\d+")
"""Folders a training run saves its models in: ``OUTPUT_DIR/final`` and ``OUTPUT_DIR/checkpoint-N``."""
TRAINING_STAGE_FOLDER = re.compile(r"iter_\d+|warmup")
"""Folders of a training run that hold such model folders of a stage: STaR's ``iter_K``, GRPO's ``warmup``."""
RECORDED_LABEL_FILES = (KIND_FILE, "train_summary.json", "sft_summary.json", "star_summary.json")
RECORDED_LABEL_KEYS = ("label", "run_name", "name")


def default_label(model: str) -> str:
    """What a run is called in reports when no ``--label`` is given: what its model is.

    - a built-in name: the name (``tiny-random``);
    - a hub id or an OpenAI served model name: as given (``HuggingFaceTB/SmolLM2-135M-Instruct``);
    - a model folder that a training run (``pasr train`` / ``sft`` / ``star``) saved, ``final`` or
      ``checkpoint-N``: the training run's folder name, ``runs/pasr-cpu/final`` -> ``pasr-cpu``,
      ``runs/pasr-cpu/checkpoint-12`` -> ``pasr-cpu@checkpoint-12``; a stage inside the run is named too,
      ``runs/star/iter_2/final`` -> ``star@iter_2``, ``runs/pasr/warmup/final`` -> ``pasr@warmup``. When that
      run folder records a label of its own (``label``, ``run_name`` or ``name`` without a ``/`` in its
      ``.pasr-run.json`` or ``*_summary.json``), the label replaces the folder name;
    - any other folder: its name (``models/my-sft`` -> ``my-sft``; ``.`` is named by the absolute path).

    A trailing ``/`` changes nothing. Path-shaped names that do not exist here (a served path) are read the
    same way from their text.
    """
    from pasr.models import BUILTIN_MODELS

    text = str(model).strip()
    if text.lower() in BUILTIN_MODELS:
        return text.lower()
    path = Path(text).expanduser()
    local = path.is_dir()
    bare = text.rstrip("/") or text
    if not local and not (text.startswith((".", "/", "~")) or bare.count("/") > 1):
        return bare  # a hub id or served name
    parts = list(Path(os.path.abspath(path)).parts if local else Path(os.path.normpath(bare)).parts)
    inner: list[str] = []

    def has_parent() -> bool:  # a folder above the last part that can name the run (not just "/")
        return len(parts) > 2 or (len(parts) == 2 and not Path(parts[0]).anchor)

    if has_parent() and TRAINED_MODEL_FOLDER.fullmatch(parts[-1]):
        inner.append(parts.pop())
        if has_parent() and TRAINING_STAGE_FOLDER.fullmatch(parts[-1]):
            inner.insert(0, parts.pop())
    if not parts:
        return bare
    name = (_recorded_label(Path(*parts)) if inner and local else None) or parts[-1]
    stage = "/".join(inner[:-1] if inner and inner[-1] == "final" else inner)
    return f"{name}@{stage}" if stage else name


def _recorded_label(run_dir: Path) -> str | None:
    """A label the training run in ``run_dir`` wrote down for itself, if any (see :func:`default_label`)."""
    for file in RECORDED_LABEL_FILES:
        try:
            info = json.loads((run_dir / file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key in RECORDED_LABEL_KEYS:
            value = info.get(key) if isinstance(info, dict) else None
            if isinstance(value, str) and value.strip() and "/" not in value and "\n" not in value:
                return value.strip()
    return None


def _legacy_label(model: str) -> str:
    """The default label before :func:`default_label` (the model path's last component), for run.json upgrades."""
    return Path(str(model).rstrip("/")).name or str(model)


@dataclass
class EvalSettings:
    """Everything ``pasr eval`` is asked to do (the CLI options, parsed)."""

    model: str
    benchmarks: list[str]
    methods: list[str]
    output: Path
    data_file: str | None = None
    data_dir: str | None = None
    limit: int | None = None
    seed: int = 0
    max_tokens: int = 1500
    batch_size: int = 8
    rounds: int = 1
    backend: str = "transformers"
    base_url: str | None = None
    judge_url: str | None = None
    judge_model: str | None = None
    analyses: bool = False
    label: str | None = None
    temperature: float = 0.0
    dtype: str = "auto"
    chunk_size: int | None = None
    completion_prefix: str = ""  # what the chat template prefills (e.g. "<think>\n"); parsed as its continuation
    scorer: str = "rule"  # one of SCORERS
    judge_timeout: float = 60.0  # seconds per judge request
    judge_retries: int = 3  # retries per judge request
    judge_max_tokens: int = 16  # reply tokens per judge request

    @property
    def run_label(self) -> str:
        """``--label``, else :func:`default_label` of the model."""
        return self.label or default_label(self.model)


def split_names(value: str | Sequence[str]) -> list[str]:
    """``"a, b,a"`` -> ``["a", "b"]`` (order kept, duplicates and blanks dropped)."""
    items = value.split(",") if isinstance(value, str) else [v for part in value for v in part.split(",")]
    out: list[str] = []
    for item in (i.strip() for i in items):
        if item and item not in out:
            out.append(item)
    return out


def validate(settings: EvalSettings) -> None:
    """Reject bad names and option combinations before any data or model is loaded."""
    from pasr.data.benchmarks import BENCHMARKS
    from pasr.generation.backends import BACKENDS, DTYPES

    if not settings.benchmarks:
        raise PasrError(f"--benchmark: give at least one of {', '.join(BENCHMARKS)}")
    unknown = [b for b in settings.benchmarks if b not in BENCHMARKS]
    if unknown:
        raise PasrError(f"--benchmark: unknown benchmark {', '.join(map(repr, unknown))}; known: {', '.join(BENCHMARKS)}")
    if not settings.methods:
        raise PasrError(f"--methods: give at least one of {', '.join(METHODS)}")
    unknown = [m for m in settings.methods if m not in METHODS]
    if unknown:
        raise PasrError(f"--methods: unknown method {', '.join(map(repr, unknown))}; known: {', '.join(METHODS)}")
    if settings.backend not in BACKENDS:
        raise PasrError(f"--backend: unknown backend {settings.backend!r}; known: {', '.join(BACKENDS)}")
    if settings.backend == "openai" and not settings.base_url:
        raise PasrError("--backend openai needs --base-url (the server's OpenAI root, e.g. http://localhost:8000/v1)")
    if settings.data_file and len(settings.benchmarks) > 1:
        raise PasrError("--data-file holds one benchmark's data; give a single --benchmark, or use --data-dir")
    if settings.data_file and settings.data_dir:
        raise PasrError("give either --data-file or --data-dir, not both")
    if bool(settings.judge_url) != bool(settings.judge_model):
        raise PasrError("the judge needs both --judge-url and --judge-model")
    if settings.scorer not in SCORERS:
        raise PasrError(f"--scorer: unknown scorer {settings.scorer!r}; use {', '.join(SCORERS)}")
    if settings.scorer != "rule" and not settings.judge_url:
        raise PasrError(f"--scorer {settings.scorer} needs a judge: add --judge-url URL --judge-model NAME")
    if not (math.isfinite(settings.judge_timeout) and settings.judge_timeout > 0):
        raise PasrError(f"--judge-timeout must be a number of seconds > 0, got {settings.judge_timeout}")
    for name, low in (("judge_retries", 0), ("judge_max_tokens", 1)):
        if getattr(settings, name) < low:
            raise PasrError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(settings, name)}")
    if settings.analyses and not settings.judge_url:
        raise PasrError("--analyses needs a judge model: add --judge-url URL --judge-model NAME")
    for name, low in (("max_tokens", 1), ("batch_size", 1), ("rounds", 1)):
        if getattr(settings, name) < low:
            raise PasrError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(settings, name)}")
    if settings.limit is not None and settings.limit < 1:
        raise PasrError(f"--limit must be at least 1, got {settings.limit}")
    if not math.isfinite(settings.temperature) or settings.temperature < 0:
        raise PasrError(f"--temperature must be a number >= 0, got {settings.temperature}")
    if settings.seed < 0:
        raise PasrError(f"--seed must be >= 0, got {settings.seed}")
    if settings.dtype not in DTYPES:
        raise PasrError(f"--dtype: unknown dtype {settings.dtype!r}; use {', '.join(DTYPES)}")
    for option, url in (("--base-url", settings.base_url), ("--judge-url", settings.judge_url)):
        if url and not re.match(r"(?i)https?://[^/\s]+", url):
            raise PasrError(f"{option} {url!r}: give an http(s) URL, e.g. http://localhost:8000/v1")
    if settings.data_file and not Path(settings.data_file).is_file():
        what = "is a folder (use --data-dir for a folder of files)" if Path(settings.data_file).is_dir() else "no such file"
        raise PasrError(f"--data-file {settings.data_file}: {what}")
    if settings.data_dir and not Path(settings.data_dir).is_dir():
        what = "is a file (use --data-file for one file)" if Path(settings.data_dir).exists() else "no such folder"
        raise PasrError(f"--data-dir {settings.data_dir}: {what}")
    if settings.chunk_size is not None and settings.chunk_size < 1:
        raise PasrError(f"--chunk-size must be at least 1 (examples per flush to the results file), got {settings.chunk_size}")
    if settings.label is not None and (not settings.label.strip() or "\n" in settings.label):
        raise PasrError(f"--label {settings.label!r}: give a non-empty name on one line")
    needs = {"vllm": ("vllm", vllm_platform.INSTALL_HINT + "; or use --backend transformers"),
             "openai": ("openai", "pip install openai")}.get(settings.backend)
    if needs and importlib.util.find_spec(needs[0]) is None:
        raise PasrError(f"--backend {settings.backend} needs the {needs[0]} package, which is not installed: {needs[1]}")
    check_output_folder(settings.output, "--output")
    run_lock(settings).check()  # another kind of run, or a live writer: refused before any model loads


def run_lock(settings: EvalSettings) -> RunLock:
    """The lock that makes this command RUN_DIR's only writer."""
    return RunLock(settings.output, COMMAND, option="--output")


def check_model(settings: EvalSettings) -> None:
    """The model name resolves (transformers, vllm): a built-in, a local model folder or a hub id. Building the
    backend (:func:`build_backend`) then loads it; ``--backend openai`` asks the server in :func:`build_backend`."""
    if settings.backend in ("transformers", "vllm"):
        from pasr.models import resolve

        resolve(settings.model)


def order_methods(methods: Sequence[str]) -> list[str]:
    """Vanilla first (the others' transitions compare with it), then the given order."""
    return sorted(methods, key=lambda m: m != "vanilla")


def load_records(settings: EvalSettings) -> dict[str, list[Record]]:
    """Records per benchmark (pasr.data reports file, line and field problems)."""
    from pasr.data.benchmarks import load_benchmark

    out = {}
    for name in settings.benchmarks:
        records = load_benchmark(
            name, data_file=settings.data_file, data_dir=settings.data_dir, limit=settings.limit, seed=settings.seed
        )
        seen: set[str] = set()
        for r in records:
            if r.id in seen:
                raise PasrError(f"benchmark {name}: id {r.id!r} occurs twice; results are keyed by id, make ids unique")
            seen.add(r.id)
        out[name] = records
    return out


def holds_results(run_dir: Path) -> bool:
    """True when some ``<benchmark>/<method>.jsonl`` (or responses waiting for the judge,
    ``<method>.unjudged.jsonl``) of ``run_dir`` has a line (a start that failed leaves none)."""
    return any(
        f.stat().st_size > 0
        for f in run_dir.glob("*/*.jsonl")
        if f.is_file() and ("." not in f.name[: -len(".jsonl")] or f.name.endswith(f".{UNJUDGED}.jsonl"))
    )


def run_info(settings: EvalSettings) -> dict[str, Any]:
    """What ``run.json`` will hold, checked against the one already in RUN_DIR (writes nothing).

    A rerun with other generation settings is refused once the folder holds results (a ``run.json`` left
    by a start that failed before any example is simply replaced). Without ``--label`` a rerun keeps the
    label the folder has, unless that is the old default (the model path's last component, e.g. ``final``),
    which gives way to :func:`default_label`.
    """
    import pasr

    path = settings.output / RUN_FILE
    info = {
        "model": settings.model,
        "label": settings.run_label,
        "backend": settings.backend,
        "max_tokens": settings.max_tokens,
        "seed": settings.seed,
        "limit": settings.limit,
        "temperature": settings.temperature,
        "rounds": settings.rounds,
        "dtype": settings.dtype,
        "completion_prefix": settings.completion_prefix,
        "scorer": settings.scorer,
        "judge_model": settings.judge_model,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "pasr_version": pasr.__version__,
    }
    if path.exists() and holds_results(settings.output):
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise PasrError(f"{path}: unreadable ({err}); delete it or choose another --output") from err
        old.setdefault("dtype", "auto")  # folders written before dtype was recorded used the default
        old.setdefault("completion_prefix", "")  # likewise
        old.setdefault("scorer", "rule")  # likewise
        must_match = RUN_KEYS_THAT_MUST_MATCH + (("judge_model",) if settings.scorer != "rule" else ())
        for key in must_match:
            if key in old and old[key] != info[key]:
                raise PasrError(
                    f"{path}: this run folder holds results with {key}={old[key]!r}, but this command has "
                    f"{key}={info[key]!r}; rerun with the same settings to resume, or choose another --output"
                )
        info["created"] = old.get("created", info["created"])
        old_limit = old.get("limit")  # the folder covers the largest selection run into it (None: all)
        info["limit"] = None if old_limit is None or settings.limit is None else max(old_limit, settings.limit)
        if not settings.label and old.get("label") and old["label"] != _legacy_label(settings.model):
            info["label"] = old["label"]
    return info


def write_run_file(settings: EvalSettings) -> dict[str, Any]:
    """Check (:func:`run_info`) and write ``run.json``; returns what it holds."""
    info = run_info(settings)
    settings.output.mkdir(parents=True, exist_ok=True)
    write_text_atomic(settings.output / RUN_FILE, json.dumps(info, indent=2) + "\n")
    return info


def result_line(
    record: Record, benchmark: str, method: str, model: str, outcome: Outcome, score: "float | Scored",
    *, completion_prefix: str = "",
) -> dict[str, Any]:
    """The JSON object stored for one example (the results layout).

    ``score``: the score, or the :class:`Scored` of ``--scorer judge|both`` (the line then also holds
    ``scores`` = ``{"rule": float|None, "judge": float|None}`` and ``judge_status``; its ``score`` is None
    while the judge has not answered, which only a ``<method>.unjudged.jsonl`` line may be). A record
    asked in several forms (GPQA's option orders) passes its ``question_id`` on. ``completion_prefix``:
    what the prompt already holds of the response; the final text is parsed as its continuation
    (:func:`pasr.format.parse`'s ``prefix``).
    """
    from pasr.format import parse

    trace = parse(outcome.final, prefix=completion_prefix)
    refines = len(trace.refines) + outcome.revisions
    scored = score if isinstance(score, Scored) else None
    line = {
        "id": record.id,
        "benchmark": benchmark,
        "method": method,
        "model": model,
        "question": record.question,
        "reference": record.reference,
        "task": record.task,
        "turns": outcome.turns,
        "final": outcome.final,
        "trace": trace.to_dict(),
        "score": scored.score if scored else float(score),
        "tokens": outcome.tokens,
        "refines": refines,
        "refined": refines > 0,
        "format_valid": bool(trace.valid),
    }
    if scored is not None and scored.scores is not None:
        line["scores"] = dict(scored.scores)
        line["judge_status"] = scored.judge_status
    if record.meta.get("question_id") is not None:
        line["question_id"] = str(record.meta["question_id"])
    return line


@dataclass
class Scored:
    """One example's score under ``--scorer``: ``score`` the primary (None: the judge never answered),
    ``scores`` both sides (``{"rule", "judge"}``; None under ``--scorer rule``), ``judge_status`` the
    judge's :class:`pasr.judge.Verdict` status."""

    score: float | None
    scores: dict[str, float | None] | None = None
    judge_status: str | None = None


ScoreRows = Callable[[Sequence[Record], Sequence[str]], list[Scored]]
"""Scores texts against their records (in order): one :class:`Scored` each."""


def make_scoring(settings: EvalSettings, scorer: Any, benchmark: str) -> ScoreRows:
    """The scoring function of one benchmark under ``settings.scorer``: texts -> :class:`Scored` per record.

    The benchmark's name is the task (its family's rule; the judge's prompt of the PASR authors' kind for
    that benchmark, :func:`pasr.prompts.judge_template`). ``rule``: the rule, or the judge for task
    ``open`` (a failed judge gives its fallback, as before). ``judge``: the judge only; ``both``: both,
    the judge's is the score. Under ``judge``/``both`` a judge that never answered leaves ``score`` None.
    """
    mode = settings.scorer

    def score(recs: Sequence[Record], texts: Sequence[str]) -> list[Scored]:
        if not recs:
            return []
        args = ([benchmark] * len(recs), list(texts), [r.reference for r in recs], [r.question for r in recs])
        if mode == "rule":
            return [Scored(float(s)) for s in scorer.score_many(*args)]
        sides = scorer.score_sides(*args, rule=mode == "both", judge=True)
        return [
            Scored(j, {"rule": r, "judge": j}, status)
            for r, j, status in zip(sides.rule, sides.judge, sides.judge_status)
        ]

    return score


class _Lazy:
    """Builds the backend on first use, so a rerun with nothing left to do loads no model."""

    def __init__(self, factory: Callable[[], Any]):
        self.factory = factory
        self.value = None

    def get(self):
        if self.value is None:
            self.value = self.factory()
        return self.value


def default_backend_factory(settings: EvalSettings) -> Callable[[], Any]:
    return lambda: build_backend(settings)


def build_backend(settings: EvalSettings) -> Any:
    """The backend the settings describe, its model loaded (or, for openai, its server asked for the model).

    A model that does not load is a PasrError naming it; a name shaped like a hub id that is not a local
    folder says so, since ``runs/x`` is read as a hub id when no such folder exists.
    """
    from pasr.generation.backends import make_backend

    model = settings.model
    try:
        if settings.backend in ("transformers", "vllm"):
            from pasr.models import resolve

            model = resolve(model)
        backend = make_backend(
            settings.backend,
            model,
            batch_size=settings.batch_size,
            base_url=settings.base_url,
            seed=settings.seed,
            dtype=settings.dtype,
            chunk_size=settings.chunk_size,
        )
    except PasrError as err:
        hub_shaped = "/" in settings.model and not settings.model.startswith((".", "/", "~"))
        if settings.backend != "openai" and hub_shaped and not Path(settings.model).expanduser().exists():
            raise PasrError(f"{err} (there is no local folder {settings.model} either)") from None
        raise
    except Exception as err:  # a library's own error (a cut weights file, CUDA out of memory)
        raise PasrError(
            f"model {settings.model!r}: the {settings.backend} backend cannot load it ({type(err).__name__}: {err})"
        ) from err
    if hasattr(backend, "check"):
        try:
            backend.check()
        except BaseException:
            backend.close()
            raise
    return backend


def pending_work(settings: EvalSettings, records: dict[str, list[Record]], methods: Sequence[str]) -> int:
    """How many benchmark x method examples RUN_DIR does not hold yet (reads, writes nothing)."""
    left = 0
    for bench, recs in records.items():
        for method in methods:
            path = settings.output / bench / f"{method}.jsonl"
            done: set[str] = set()
            if path.is_file():
                try:
                    done = {str(line["id"]) for line in read_results(path).examples}
                except (OSError, ValueError):
                    done = set()
            left += sum(1 for r in recs if str(r.id) not in done)
    return left


def run_eval(
    settings: EvalSettings,
    *,
    backend: Any = None,
    judge: Any = None,
    console: Any = None,
) -> list[dict[str, Any]]:
    """Evaluate every benchmark x method of ``settings``; return the summaries of the methods asked for.

    ``backend``/``judge`` replace the ones the settings describe (tests, notebooks).
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    # Every check first, writing nothing: names and options, the model name, the data, the judge, run.json.
    validate(settings)
    if backend is None:
        check_model(settings)
    methods = order_methods(settings.methods)
    records = load_records(settings)
    needs_judge = sorted({r.task for rs in records.values() for r in rs if r.task == "open"})
    if judge is None:
        from pasr.judge import judge_from_args

        judge = judge_from_args(settings, check=bool(needs_judge) or settings.analyses or settings.scorer != "rule",
                                names=JUDGE_OPTIONS)
    if needs_judge and judge is None:
        raise PasrError("answers of task 'open' are graded by an LLM judge: add --judge-url URL --judge-model NAME")
    if backend is None and settings.backend == "transformers":  # bf16 declined where emulated; run.json says so
        import torch

        from pasr.models import decode_dtype

        settings = replace(settings, dtype=decode_dtype(settings.dtype, "cuda" if torch.cuda.is_available() else "cpu"))
    run_info(settings)
    own = backend is None
    if own and pending_work(settings, records, methods):
        # the model loads before RUN_DIR is touched: a model that does not load leaves nothing behind
        with console.status(f"loading {settings.model} ({settings.backend})", spinner="dots"):
            backend = build_backend(settings)
    try:
        with run_lock(settings):
            info = write_run_file(settings)
            return _evaluate(settings, records, methods, backend, judge, console, label=info["label"])
    finally:
        if own and backend is not None:
            backend.close()


def _evaluate(settings: EvalSettings, records, methods, backend, judge, console, *, label: str) -> list[dict[str, Any]]:
    """The work of :func:`run_eval` once inputs are checked and the run folder is held. ``backend``: None
    when :func:`run_eval` found nothing left to do (built here after all if that changed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pasr.scoring import Scorer

    lazy = _Lazy((lambda: backend) if backend is not None else default_backend_factory(settings))
    scorer = Scorer(judge=judge)

    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TokenRateColumn(),
            console=console,
            transient=False,
        ) as progress:
            stopped: dict[tuple[str, str], str] = {}
            for bench, recs in records.items():
                score = make_scoring(settings, scorer, bench)
                for method in methods:
                    why = _run_one(settings, bench, method, recs, lazy, score, progress)
                    if why:
                        stopped[(bench, method)] = why
        summaries = write_summaries(
            settings, records, judge=judge if settings.analyses else None, console=console, label=label,
            stopped=stopped,
        )
    finally:
        if hasattr(scorer, "close"):
            scorer.close()
        if lazy.value is not None and backend is None:
            lazy.value.close()
    return [s for s in summaries if s["method"] in settings.methods]


def unjudged_path(run_dir: Path, benchmark: str, method: str) -> Path:
    """Where examples wait whose response exists but whose judge score does not (see :data:`UNJUDGED`)."""
    return run_dir / benchmark / f"{method}.{UNJUDGED}.jsonl"


class JudgeOutage(PasrError):
    """The judge did not answer for a decision a method needs before it can go on (Self-Refine+'s "is this
    answer wrong?"): the method stops after its last saved chunk; the others run on."""


def read_waiting(waiting: Path, done: set[str], console) -> dict[str, dict[str, Any]]:
    """The responses waiting in ``waiting`` for the judge, by id: the first line per id, ids already in the
    results (``done``) left out. A torn last line is cut; an unusable line is named and set aside, as in
    results files."""
    if not waiting.is_file():
        return {}
    repair_tail(waiting)
    found = read_jsonl(waiting)
    bad = list(found.bad_lines)
    for number, row in zip(found.numbers, found.rows):
        if "id" not in row or not isinstance(row.get("final"), str):
            bad.append(number)
    for problem in found.problems:
        console.print(f"[yellow]warning:[/yellow] {problem}", highlight=False, soft_wrap=True)
    aside = set_aside_corrupt(waiting, bad)
    if aside is not None:
        console.print(f"[yellow]warning:[/yellow] {len(bad)} unusable line(s) of {waiting} moved to {aside}; "
                      "their examples run again", highlight=False, soft_wrap=True)
    rows: dict[str, dict[str, Any]] = {}
    for number, row in zip(found.numbers, found.rows):
        key = str(row.get("id"))
        if number not in bad and key not in done:
            rows.setdefault(key, row)
    return rows


def settle_waiting(rows: dict[str, dict[str, Any]], recs: list[Record], score, path: Path, waiting: Path,
                   done: set[str]) -> int:
    """Ask the judge about the waiting ``rows`` of this selection; move the ones it scores to the results file.

    The results file gets the judged lines first, then ``waiting`` is rewritten with what still waits (ids of
    other selections included), so a kill in between leaves a line in both, and the results file wins (its
    ids are ``done``). Updates ``rows`` and ``done``; returns how many were judged.
    """
    by_id = {str(r.id): r for r in recs}
    ours = [key for key in rows if key in by_id]
    if not ours:
        return 0
    judged = []
    for key, result in zip(ours, score([by_id[key] for key in ours], [rows[key]["final"] for key in ours])):
        rows[key].update(score=result.score, scores=result.scores, judge_status=result.judge_status)
        if result.score is not None:
            judged.append(rows.pop(key))
    append_jsonl(path, judged)
    done.update(str(row["id"]) for row in judged)
    if rows:
        rewrite_jsonl(waiting, rows.values())
    elif waiting.exists():
        waiting.unlink()
    return len(judged)


def _run_one(settings, bench: str, method: str, recs: list[Record], lazy: _Lazy, score, progress) -> str | None:
    """Run one benchmark x method to the end; returns why it stopped early (a judge outage), else None."""
    folder = settings.output / bench
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{method}.jsonl"
    waiting = unjudged_path(settings.output, bench, method)
    judged = settings.scorer != "rule"
    repair_tail(path)
    found = read_results(path)
    for problem in found.problems:
        progress.console.print(f"[yellow]warning:[/yellow] {problem}", highlight=False, soft_wrap=True)
    aside = set_aside_corrupt(path, found.bad_lines)
    if aside is not None:
        progress.console.print(
            f"[yellow]warning:[/yellow] {len(found.bad_lines)} unusable line(s) moved to {aside}; "
            "their examples run again", highlight=False, soft_wrap=True,
        )
    done = {str(line["id"]) for line in found.examples}
    title = f"{bench} / {method}"
    rows = read_waiting(waiting, done, progress.console)
    if rows:
        n = settle_waiting(rows, recs, score, path, waiting, done)
        if n:
            progress.console.print(f"{title}: judged {n} response(s) that waited in {waiting}",
                                   highlight=False, soft_wrap=True)
    pending = [r for r in recs if str(r.id) not in done and str(r.id) not in rows]
    task = progress.add_task(title, total=len(recs), completed=len(recs) - len(pending), tokens=0)
    if not pending:
        return None
    backend = lazy.get()
    chunk = max(1, int(getattr(backend, "chunk_size", 0) or settings.batch_size * 8))
    memo: dict[tuple[str, str], Scored] = {}

    def chain_score(part_recs: Sequence[Record], texts: Sequence[str]) -> list[float]:
        """What a chain (Self-Refine+) decides on: the primary score; a judge that never answered stops the method."""
        results = score(part_recs, texts)
        for record, text, result in zip(part_recs, texts, results):
            memo[(str(record.id), text)] = result
        missing = sum(result.score is None for result in results)
        if missing:
            raise JudgeOutage(f"the judge did not answer for {missing} of the answers {method} checks before "
                              "revising")
        return [float(result.score) for result in results]

    cfg = ChainConfig(
        backend=backend,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        rounds=settings.rounds,
        score=chain_score,
        metric_of=metric_of,
        progress=MethodProgress(progress, task, title),
    )
    finished = len(recs) - len(pending)
    for start in range(0, len(pending), chunk):
        part = pending[start : start + chunk]
        memo.clear()
        try:
            outcomes = run_method(method, part, cfg)
            results: list[Scored | None] = [memo.get((str(r.id), o.final)) for r, o in zip(part, outcomes)]
            if not judged:
                unscored = [i for i, result in enumerate(results) if result is None]
                texts = [outcomes[i].final for i in unscored]
                for i, result in zip(unscored, score([part[i] for i in unscored], texts)):
                    results[i] = result
        except JudgeOutage as outage:
            return f"{outage}; {finished} of {len(recs)} examples are saved"
        except PasrError:
            raise
        except Exception as err:  # noqa: BLE001 - any backend failure: keep what is done, say how to go on
            raise PasrError(
                f"{bench} / {method}: the {settings.backend} backend failed after {finished} of {len(recs)} "
                f"examples ({type(err).__name__}: {err}). The finished examples are saved in {path}; "
                "rerun the same command to resume from there."
            ) from err
        lines = [
            result_line(record, bench, method, settings.model, outcome, result or Scored(None),
                        completion_prefix=settings.completion_prefix)
            for record, outcome, result in zip(part, outcomes, results)
        ]
        append_jsonl(path, [line for line in lines if line["score"] is not None])
        done.update(str(line["id"]) for line in lines if line["score"] is not None)
        new = {str(line["id"]): line for line in lines if line["score"] is None}
        if new:  # generated, not judged yet: saved first, so that a kill while judging keeps them
            append_jsonl(waiting, new.values())
            rows.update(new)
            progress.update(task, description=f"{title} · judging {len(new)}")
            settle_waiting(rows, part, score, path, waiting, done)
            progress.update(task, description=title)
        finished += len(part)
        progress.update(task, completed=finished)  # exact again: the bar counted examples as they finished
    return None


def write_summaries(
    settings: EvalSettings, records: dict[str, list[Record]], *, judge: Any = None, console: Any = None,
    label: str | None = None, stopped: dict[tuple[str, str], str] | None = None,
) -> list[dict[str, Any]]:
    """Recompute ``<method>.summary.json`` for every method file of the run's benchmarks (analyses too when
    a judge is given, for the methods asked for). Lines are read by :func:`pasr.eval.metrics.read_results`,
    as ``pasr report`` reads them: each id counts once; its problems are printed on ``console``.
    ``label``: the run's label as ``run.json`` holds it (default: ``settings.run_label``). ``stopped``: why a
    benchmark x method stopped early (its summary's ``stopped``; None otherwise). ``unjudged`` counts the
    examples of this selection whose response waits for the judge."""
    from pasr.eval.analysis import aggregate, analyse

    def results(path: Path) -> list[dict[str, Any]]:
        found = read_results(path)
        if console is not None:
            for problem in found.messages():
                console.print(f"[yellow]warning:[/yellow] {problem}", highlight=False, soft_wrap=True)
        return found.examples

    out = []
    for bench, recs in records.items():
        folder = settings.output / bench
        vanilla = read_results(folder / "vanilla.jsonl").examples
        metric = metric_of(recs[0].task) if recs else "accuracy"
        selection = {str(r.id) for r in recs}
        for method in METHODS:
            path = folder / f"{method}.jsonl"
            waiting = unjudged_path(settings.output, bench, method)
            note = (stopped or {}).get((bench, method))
            if not path.exists() and not waiting.exists() and note is None:
                continue
            lines = results(path) if path.exists() else []
            summary = summarize(
                lines,
                benchmark=bench,
                method=method,
                model=settings.model,
                label=label or settings.run_label,
                metric=judge_metric_of(bench) if settings.scorer != "rule" else (
                    metric_of(lines[0]["task"]) if lines else metric),
                vanilla=vanilla,
                seed=settings.seed,
            )
            summary["scorer"] = settings.scorer
            summary["judge_model"] = settings.judge_model if settings.scorer != "rule" else None
            judged_ids = {str(line["id"]) for line in lines}
            summary["unjudged"] = len(
                {str(r.get("id")) for r in read_jsonl(waiting).rows} & selection - judged_ids
            ) if waiting.is_file() else 0
            summary["stopped"] = note
            analysis_path = folder / f"{method}.analysis.jsonl"
            if judge is not None and method in settings.methods:
                summary["analysis"] = analyse(lines, judge, analysis_path, method)
            elif analysis_path.exists():
                refined = {line["id"] for line in lines if line.get("refined")}
                summary["analysis"] = aggregate([a for a in read_lines(analysis_path) if a["id"] in refined])
            write_text_atomic(folder / f"{method}.summary.json", json.dumps(summary, indent=2) + "\n")
            out.append(summary)
    return out
