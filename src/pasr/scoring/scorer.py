"""Dispatch by answer family, and :class:`Scorer`: batch scoring with math in a process pool.

Why a process pool for math: math-verify bounds sympy with ``signal.alarm``, which only
works on the main thread and otherwise makes ``parse`` return nothing, i.e. a silent score
of 0 (GRPO reward functions and async evaluators run off the main thread). Workers run
math-verify on their own main thread under a per-item interval timer; a worker that does
not come back within a hard deadline (stuck in C code) is killed and the pool recreated,
and the item scores 0. Families that need no sympy are scored inline.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import math
import multiprocessing
import sys
import threading
import time
import types
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from pasr.errors import PasrError
from pasr.format import as_text
from pasr.scoring import mathexpr
from pasr.scoring.choice import score_choice
from pasr.scoring.drop import parse_reference, score_drop
from pasr.scoring.extract import answer_text
from pasr.scoring.numeric import score_numeric
from pasr.scoring.summary import score_summary
from pasr.scoring.winogrande import score_winogrande

log = logging.getLogger(__name__)

FAMILIES = ("math", "gsm8k", "arith", "choice", "winogrande", "drop", "summary", "open")
"""Answer families (a record's ``task``)."""

METRIC = {
    "math": "accuracy",
    "gsm8k": "accuracy",
    "arith": "accuracy",
    "choice": "accuracy",
    "winogrande": "accuracy",
    "drop": "f1",
    "summary": "rouge_l",
    "open": "accuracy",
}
"""The metric a family's score is (what a summary's ``metric`` field says)."""

_RULES: dict[str, Callable[[str, str, str | None], float]] = {
    "gsm8k": lambda resp, ref, q: score_numeric("gsm8k", resp, ref),
    "arith": lambda resp, ref, q: score_numeric("arith", resp, ref),
    "choice": score_choice,
    "winogrande": score_winogrande,
    "drop": lambda resp, ref, q: score_drop(resp, ref),
    "summary": lambda resp, ref, q: score_summary(resp, ref),
}

_NO_JUDGE = (
    "task 'open' is scored by an LLM judge, and none is configured: pass --judge-url and "
    "--judge-model (or give Scorer/score a pasr.judge.Judge)"
)


JUDGE_METRIC = {"general": "judge_accuracy", "choice": "judge_accuracy", "summary": "judge_similarity",
                "open": "judge_score"}
"""What a judge-scored summary's ``metric`` is, by judge prompt kind (:func:`pasr.prompts.judge_kind`)."""


def judge_metric_of(task: str) -> str:
    """The metric of ``task`` scored by the judge: ``judge_accuracy`` (0/1 verdicts), ``judge_similarity``
    (XSum's 0-1 similarity) or ``judge_score`` (graded open answers)."""
    from pasr.prompts import judge_kind

    return JUDGE_METRIC[judge_kind(task)]


def metric_of(task: str) -> str:
    """The metric a family or benchmark reports (accuracy, f1 or rouge_l); unknown names report accuracy."""
    try:
        return METRIC[family(task)]
    except PasrError:
        return "accuracy"


@functools.lru_cache(maxsize=512)
def family(task: str) -> str:
    """The answer family of ``task``: an answer family (``gsm8k``, ``choice``, ...) or a benchmark name.

    Benchmark names (``arc``, ``mmlu``, ``commonsenseqa``, ``xsum``, ``math500``, ``synthetic``,
    ...; see ``pasr data list``) resolve to their spec's family; case does not matter.
    Raises :class:`~pasr.errors.PasrError` for anything else.
    """
    if task in FAMILIES:
        return task
    name = str(task).strip().lower()
    if name in FAMILIES:
        return name
    from pasr.data.benchmarks import BENCHMARKS, benchmark_family  # imported on first miss only

    found = benchmark_family(name)
    if found is not None:
        return found
    raise PasrError(
        f"unknown task {task!r}: give an answer family ({', '.join(FAMILIES)}) "
        f"or a benchmark name ({', '.join(sorted(BENCHMARKS))})"
    )


@dataclass
class Sides:
    """A batch's scores by each scorer (:meth:`Scorer.score_sides`), one entry per item.

    ``rule[i]``: the family's rule-based score in [0, 1], None where not asked for or the family has
    no rule (``open``). ``judge[i]``: the judge's score in [0, 1], None where not asked for or the judge
    never answered; ``judge_status[i]`` says which (:class:`pasr.judge.Verdict`: ``scored``,
    ``fallback``, ``unavailable``; None where not asked). ``errors``: ``{index: message}`` of rule
    scorings that raised (scored 0).
    """

    rule: list[float | None]
    judge: list[float | None]
    judge_status: list[str | None]
    errors: dict[int, str] = field(default_factory=dict)


def judge_reference(fam: str, reference: Any) -> str:
    """The reference as the judge reads it: a DROP reference as its accepted answers, the others as they are.

    A DROP reference lists alternatives (``A|B``, or JSON with multi-span answers, ``pasr.scoring.drop``);
    one answer is given as its spans joined by ``, ``; several as ``any of: "A"; "B, C"``.
    """
    if fam != "drop":
        return str(reference)
    answers = [", ".join(spans) for spans in parse_reference(reference)]
    if len(answers) > 1:
        return "any of: " + "; ".join(f'"{answer}"' for answer in answers)
    return answers[0] if answers else str(reference)


def _verdicts(judge: Any, items: list[dict[str, Any]]) -> list[tuple[float | None, str]]:
    """``(score, status)`` per item from :meth:`pasr.judge.Judge.verdicts`, or from ``score_many`` for
    judges without it (every score then counts as ``scored``)."""
    if hasattr(judge, "verdicts"):
        return [(v.score, v.status) for v in judge.verdicts(items)]
    return [(float(value), "scored") for value in judge.score_many(items)]


def _clamp(x: Any) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if x != x else min(1.0, max(0.0, x))  # NaN -> 0


class Scorer:
    """Scores batches of responses; owns the math process pool (created on first math item).

    ``judge``: anything with ``score_many(list[dict]) -> list[float]`` (see :mod:`pasr.judge`);
    needed for task ``open``, and for everything when ``judge_all`` is set. ``timeout``: seconds
    of math-verify per item (a cut item scores 0 and counts in :attr:`timeouts`). ``workers``:
    math processes. ``math_fn``: the picklable ``fn(text, tagged, reference) -> float`` the
    workers run (default :func:`pasr.scoring.mathexpr.verify_math`; tests swap in slow ones).

    Use as a context manager or call :meth:`close`. Workers are spawned without the caller's
    ``__main__`` (see :func:`_without_main`), so ``math_fn`` must live in an importable module.
    """

    def __init__(
        self,
        judge=None,
        judge_all: bool = False,
        timeout: float = 5.0,
        workers: int = 1,
        *,
        math_fn: Callable[[str, bool, str], float] | None = None,
        startup_timeout: float = 120.0,
    ):
        if workers < 1:
            raise PasrError(f"Scorer workers must be >= 1, got {workers}")
        if timeout is not None and timeout <= 0:
            raise PasrError(f"Scorer timeout must be > 0 seconds (or None for no limit), got {timeout}")
        self.judge = judge
        self.judge_all = judge_all
        self.timeout = timeout
        self.workers = workers
        self.math_fn = math_fn or mathexpr.verify_math
        self.startup_timeout = startup_timeout
        self.timeouts = 0  # items cut by the timeout (scored 0)
        self.restarts = 0  # pools killed because a worker did not come back
        self.errors = 0  # responses whose scoring raised (scored 0)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.RLock()

    # --- public API ---------------------------------------------------------------------

    def score_many(
        self,
        tasks: Sequence[str],
        responses: Sequence[str],
        references: Sequence[str],
        questions: Sequence[str | None] | None = None,
    ) -> list[float]:
        """One score in [0, 1] per item, in order (see :meth:`score_many_with_errors`)."""
        return self.score_many_with_errors(tasks, responses, references, questions)[0]

    def score_many_with_errors(
        self,
        tasks: Sequence[str],
        responses: Sequence[str],
        references: Sequence[str],
        questions: Sequence[str | None] | None = None,
    ) -> tuple[list[float], dict[int, str]]:
        """``(scores, errors)``: one score in [0, 1] per item, and ``{index: message}`` for items that failed.

        ``tasks`` are answer families or benchmark names (:func:`family`). The score is the judge's for
        task ``open`` and, with ``judge_all``, for every item (a judge that fails gives its
        ``fallback_score``); the family's rule otherwise. A response whose rule scoring raises scores 0,
        is counted in :attr:`errors` and logged: one odd completion never ends a batch (or a training
        run). A bad *reference* is a data error and raises :class:`~pasr.errors.PasrError` naming the
        item, as does a missing judge.
        """
        sides = self.score_sides(tasks, responses, references, questions, rule=not self.judge_all,
                                 judge=self.judge_all)
        return self.primary(sides), sides.errors

    def primary(self, sides: Sides) -> list[float]:
        """The score this scorer gives each item of ``sides``: the judge's with ``judge_all`` and where there is
        no rule (its ``fallback_score`` where it gave none), the rule's otherwise."""
        fallback = getattr(getattr(self.judge, "config", None), "fallback_score", 0.0)
        return [
            _clamp(fallback if j is None else j) if (self.judge_all or r is None) else r
            for r, j in zip(sides.rule, sides.judge)
        ]

    def score_sides(
        self,
        tasks: Sequence[str],
        responses: Sequence[str],
        references: Sequence[str],
        questions: Sequence[str | None] | None = None,
        *,
        rule: bool = True,
        judge: bool = False,
    ) -> Sides:
        """The rule's and the judge's scores of a batch, each where asked for (:class:`Sides`).

        ``rule``: score every item whose family has a rule (all but ``open``). ``judge``: ask the judge
        about every item; items of task ``open`` are always judged (they have no rule). The judge sees
        the question, the reference (a DROP reference as its readable alternatives) and the response's
        answer (its last ``<answer>`` block, else the whole response), with the prompt of the task
        (:func:`pasr.prompts.judge_template`: a benchmark name gets the PASR authors' kind for it).
        Errors as :meth:`score_many_with_errors`.
        """
        n = len(tasks)
        if questions is None:
            questions = [None] * n
        if not (len(responses) == len(references) == len(questions) == n):
            raise PasrError(
                f"score_many needs equally long lists: {n} tasks, {len(responses)} responses, "
                f"{len(references)} references, {len(questions)} questions"
            )
        fams = [family(t) for t in tasks]
        to_judge = [i for i in range(n) if judge or fams[i] == "open"]
        if to_judge and self.judge is None:
            raise PasrError(_NO_JUDGE)
        sides = Sides(rule=[None] * n, judge=[None] * n, judge_status=[None] * n)
        math_jobs: list[tuple[int, str, bool, str]] = []
        for i in range(n):
            if not rule or fams[i] == "open":
                continue
            response, reference = as_text(responses[i]), str(references[i])
            try:
                if fams[i] == "math":
                    job = mathexpr.prepare(response, reference)
                    if isinstance(job, float):
                        sides.rule[i] = job
                    else:
                        math_jobs.append((i, *job, reference))
                else:
                    sides.rule[i] = _clamp(_RULES[fams[i]](response, reference, questions[i]))
            except PasrError as exc:
                raise PasrError(f"item {i} of the batch (task {tasks[i]!r}): {exc}") from exc
            except Exception as exc:  # noqa: BLE001 - one response must not end the batch
                sides.rule[i] = 0.0
                sides.errors[i] = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("scoring item %d (task %r) failed, scoring 0: %s", i, tasks[i], sides.errors[i])
        if math_jobs:
            for i, value in self._run_math(math_jobs).items():
                sides.rule[i] = _clamp(value)
        if to_judge:
            items = [
                {
                    "question": questions[i] or "",
                    "reference": judge_reference(fams[i], references[i]),
                    "answer": answer_text(as_text(responses[i]))[0],
                    "task": tasks[i],
                }
                for i in to_judge
            ]
            verdicts = _verdicts(self.judge, items)
            if len(verdicts) != len(items):
                raise PasrError(f"the judge returned {len(verdicts)} scores for {len(items)} items")
            for i, (value, status) in zip(to_judge, verdicts):
                sides.judge[i] = None if value is None else _clamp(value)
                sides.judge_status[i] = status
        self.errors += len(sides.errors)
        return sides

    def score(self, task: str, response: str, reference: str, question: str | None = None) -> float:
        """One item (see :meth:`score_many`)."""
        return self.score_many([task], [response], [reference], [question])[0]

    def close(self) -> None:
        """Stop the math workers (idempotent)."""
        with self._lock:
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Scorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # best effort; close() is the real API
        try:
            self._kill_pool()
        except Exception:  # noqa: BLE001
            pass

    # --- the math pool ------------------------------------------------------------------

    @property
    def hard_deadline(self) -> float:
        """Seconds after which a worker that has not answered is killed (the timer inside should fire first)."""
        return math.inf if self.timeout is None else self.timeout * 1.5 + 1.0

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            return self._pool
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=mathexpr.init_worker,
        )
        # Start every worker before any item's clock runs: spawning and importing sympy
        # take seconds and must not count against an item's timeout.
        seen: set[int] = set()
        deadline = time.monotonic() + self.startup_timeout
        try:
            while len(seen) < self.workers:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(seen)} of {self.workers} started")
                with _without_main():  # processes start inside submit()
                    futures = [pool.submit(mathexpr.ping) for _ in range(self.workers)]
                for fut in futures:
                    seen.add(fut.result(timeout=max(1.0, deadline - time.monotonic())))
        except Exception as exc:
            _kill(pool)
            raise PasrError(f"could not start the math scoring workers: {exc}") from exc
        self._pool = pool
        return pool

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _kill(pool)

    def _run_math(self, jobs: list[tuple[int, str, bool, str]]) -> dict[int, float]:
        """Score math jobs through the pool, at most ``workers`` in flight so each clock starts when its item does."""
        results: dict[int, float] = {}
        pending = deque(jobs)
        with self._lock:
            inflight: dict[Any, tuple[tuple[int, str, bool, str], float]] = {}
            while pending or inflight:
                pool = self._ensure_pool()
                while pending and len(inflight) < self.workers:
                    job = pending.popleft()
                    fut = pool.submit(mathexpr.run_item, self.math_fn, job[1], job[2], job[3], self.timeout)
                    inflight[fut] = (job, time.monotonic())
                first_deadline = min(start for _, start in inflight.values()) + self.hard_deadline
                left = None if math.isinf(first_deadline) else max(0.0, first_deadline - time.monotonic())
                done, _ = wait(list(inflight), timeout=left, return_when=FIRST_COMPLETED)
                broken = False
                for fut in done:
                    job, _ = inflight.pop(fut)
                    try:
                        value, timed_out = fut.result()
                    except mathexpr.ItemTimeout:  # the timer fired just as the item finished
                        value, timed_out = 0.0, True
                    except Exception as exc:  # noqa: BLE001 - a dead worker (OOM, crash): score 0, restart
                        log.warning("math scoring worker failed on item %d (%s); scoring 0", job[0], exc)
                        value, timed_out, broken = 0.0, False, True
                    results[job[0]] = value
                    self.timeouts += int(timed_out)
                now = time.monotonic()
                stuck = [f for f, (_, start) in inflight.items() if now - start >= self.hard_deadline]
                if stuck or broken:
                    for fut in stuck:
                        job, _ = inflight.pop(fut)
                        results[job[0]] = 0.0
                        self.timeouts += 1
                        log.warning("math scoring of item %d passed %.1fs; scoring 0 and restarting the "
                                    "worker pool", job[0], self.hard_deadline)
                    # the others in flight die with the pool: run them again on the new one
                    pending.extendleft(reversed([job for job, _ in inflight.values()]))
                    inflight.clear()
                    self._kill_pool()
                    self.restarts += 1
        return results


@contextlib.contextmanager
def _without_main():
    """Hide the caller's ``__main__`` while workers start, so spawned children do not re-run it.

    A spawned child normally re-imports the parent's main script: a training script
    without an ``if __name__ == "__main__":`` guard would run again in every worker (and
    one with heavy imports would pay them per worker). The workers only need
    :mod:`pasr.scoring.mathexpr`, so they are started with a bare ``__main__``; the swap
    lasts only for the ``submit`` calls that start processes.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now, stuck workers included (the executor has no public way to kill a busy worker)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for proc in processes:
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.join(timeout=2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=2.0)


# --- one-item API ---------------------------------------------------------------------

_default: Scorer | None = None
_default_lock = threading.Lock()


def default_scorer() -> Scorer:
    """The module's shared :class:`Scorer` (no judge), created on first use and closed at exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Scorer()
            atexit.register(_default.close)
        return _default


def score(task: str, response: str, reference: str, *, question: str | None = None, judge=None) -> float:
    """Score one response in [0, 1] for answer family ``task``.

    ``judge`` is used for task ``open`` (required there); other families are rule-based
    (use ``Scorer(judge=..., judge_all=True)`` to send everything to a judge).
    """
    if family(task) == "open":
        if judge is None:
            raise PasrError(_NO_JUDGE)
        return Scorer(judge=judge).score_many([task], [response], [reference], [question])[0]
    return default_scorer().score_many([task], [response], [reference], [question])[0]


def build_scorer(config):
    """The accuracy scorer of a training or baseline command: rule-based families, plus the LLM judge when configured.

    ``config`` has the ``judge_*`` fields (:class:`pasr.train.config.JudgeArguments`) and
    optionally ``scoring_timeout``; the judge is built by :func:`pasr.judge.judge_from_args`
    and checked against its server now, not as a run of fallback scores later.
    """
    from pasr.judge import judge_from_args

    return Scorer(
        judge=judge_from_args(config),
        judge_all=config.judge_all,
        timeout=getattr(config, "scoring_timeout", 5.0),
    )


def score_records(scorer: Any, records: Sequence[Any], texts: Sequence[str]) -> list[float]:
    """One score in [0, 1] per text, each against its record's ``task``, ``reference`` and ``question``.

    ``scorer``: a :class:`Scorer` (or anything with its ``score_many``); ``records`` and ``texts`` pair up
    in order (:class:`pasr.data.records.Record` or anything with those three attributes). Raises ValueError
    when their lengths differ; scoring errors are the scorer's.
    """
    records, texts = list(records), list(texts)
    if len(records) != len(texts):
        raise ValueError(f"score_records needs one text per record: {len(records)} records, {len(texts)} texts")
    if not records:
        return []
    return [float(s) for s in scorer.score_many([r.task for r in records], texts, [r.reference for r in records],
                                                [r.question for r in records])]
