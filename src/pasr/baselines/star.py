"""STaR, the Self-Taught Reasoner (Zelikman et al., 2022), on ``run_sft``.

Each iteration: the latest model answers every training question under few-shot prompting; the
rationales that reach the reference answer are kept (scored by the evaluation scorer). For the
questions it got wrong, it is asked again with the reference answer given as a hint
(*rationalisation*), and the rationales that now reach it are kept too. The hint is only in the
generation prompt: every kept rationale is stored as the answer to the plain question prompt, and
rationales that mention the hint are dropped. The base model is then fine-tuned on this
iteration's rationales (each iteration restarts from the base model, as in STaR, to avoid
overfitting), and the new model generates the next iteration's rationales.

Layout: ``OUTPUT_DIR/iter_k/{star_data.jsonl, final/, sft_summary.json}``, one line per iteration
in ``OUTPUT_DIR/star_log.jsonl`` (iteration 0 = the base model), the last model copied to
``OUTPUT_DIR/final`` and a summary in ``OUTPUT_DIR/star_summary.json``. A rerun resumes after the
last iteration logged. Under ``accelerate launch`` each process generates its share of the
questions and the results are gathered, so generation and SFT both use every GPU.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pasr.baselines import common
from pasr.baselines.common import correct
from pasr.data.records import Record, read_objects
from pasr.errors import PasrError
from pasr.format import extract_answer
from pasr.generation.runtime import BackendFactory, BackendSlot, backend_factory, generator, sharded_score
from pasr.jsonl import append_jsonl
from pasr.prompts import STAR_HINT, SYSTEM_PROMPTS, chat, user_message
from pasr.run_folder import RunLock
from pasr.train.config import JudgeArguments, ModelConfig, PasrSFTConfig

HINT_MENTION = re.compile(r"\bhint", re.IGNORECASE)
"""A rationalised rationale that matches this refers to the hint and is not kept."""

STAR_BACKENDS = ("transformers", "vllm")
FEWSHOT_SEED_OFFSET = 7919
"""Few-shot problems are drawn with their own seed, apart from the training questions."""


@dataclass
class StarConfig(PasrSFTConfig, JudgeArguments):
    """SFTConfig (per-iteration fine-tuning) plus STaR's loop settings.

    Training questions come from ``dataset`` (``synthetic``: the built-in task's train split; or any
    dataset ``pasr train`` accepts). Few-shot worked solutions: built-in ones for ``synthetic``,
    else ``star_fewshot_file`` (JSONL of ``question``, ``solution`` and optional ``task``).
    Held-out accuracy: the built-in task's test split, or ``star_heldout_benchmark``.
    """

    training_questions: ClassVar[bool] = True
    """``dataset`` names training questions (:func:`pasr.train.checks.reads_training_questions`)."""

    dataset: str = field(
        default="synthetic",
        metadata={"help": "Training questions: 'synthetic' (built-in task), a benchmark name, 'wizardlm' or 'file'."},
    )
    star_iterations: int = field(default=2, metadata={"help": "STaR iterations K (each fine-tunes the base model)."})
    star_questions: int = field(default=64, metadata={"help": "Training questions answered in every iteration."})
    star_fewshot: int = field(default=4, metadata={"help": "Worked examples in the generation prompt."})
    star_fewshot_file: str | None = field(
        default=None, metadata={"help": "JSONL of few-shot examples (question, solution, task) for non-built-in data."}
    )
    star_heldout: int = field(default=64, metadata={"help": "Held-out questions scored after every iteration."})
    star_heldout_benchmark: str | None = field(
        default=None, metadata={"help": "Held-out benchmark name (default: the built-in task's test split)."}
    )
    star_heldout_file: str | None = field(default=None, metadata={"help": "Local data file for that benchmark."})
    star_max_new_tokens: int = field(default=128, metadata={"help": "Generated tokens per rationale and answer."})
    star_generation_batch_size: int = field(default=16, metadata={"help": "Batch size of rationale generation."})
    star_temperature: float = field(default=0.0, metadata={"help": "Generation temperature (STaR: greedy, 0)."})
    star_rationalize: bool = field(
        default=True, metadata={"help": "Retry wrong answers with the reference as a hint (STaR's rationalisation)."}
    )
    star_require_answer_tag: bool = field(
        default=True, metadata={"help": "Keep only rationales that put their answer in <answer> </answer>."}
    )
    star_system_prompt: str = field(
        default="standard", metadata={"help": "'standard' (evaluate with method vanilla), 'pasr' or a literal prompt."}
    )
    star_backend: str = field(default="transformers", metadata={"help": f"Generation backend: {STAR_BACKENDS}."})
    star_eval_base: bool = field(default=True, metadata={"help": "Score the base model on the held-out set first."})

    def __post_init__(self):
        super().__post_init__()
        for name, low in (("star_iterations", 1), ("star_questions", 1), ("star_fewshot", 0), ("star_heldout", 0),
                          ("star_max_new_tokens", 1), ("star_generation_batch_size", 1)):
            if getattr(self, name) < low:
                raise PasrError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if self.star_temperature < 0:
            raise PasrError(f"star_temperature must be >= 0, got {self.star_temperature}")
        common.check_sources(self, "star", STAR_BACKENDS, heldout_n="heldout")

    @property
    def system_prompt(self) -> str:
        return SYSTEM_PROMPTS.get(self.star_system_prompt, self.star_system_prompt)


@dataclass(frozen=True)
class Shot:
    """A few-shot worked example: question, reference answer, worked solution in think/answer form."""

    question: str
    task: str
    reference: str
    solution: str


# --- prompts and the SFT set ------------------------------------------------------------------


def hinted(text: str, answer: str | None) -> str:
    return text if answer is None else f"{text}\n\n{STAR_HINT.format(answer=answer)}"


def generation_prompt(record: Record, shots: Sequence[Shot], system: str, *, hint: bool = False) -> list[dict]:
    """System prompt, the worked examples as earlier turns, then the question (with the hint if asked)."""
    messages = [{"role": "system", "content": system}]
    for shot in shots:
        messages.append({"role": "user", "content": hinted(user_message(shot.question, shot.task),
                                                          shot.reference if hint else None)})
        messages.append({"role": "assistant", "content": shot.solution})
    messages.append({"role": "user", "content": hinted(user_message(record.question, record.task),
                                                       record.reference if hint else None)})
    return messages


def training_example(record: Record, rationale: str, system: str, kind: str) -> dict:
    """The SFT example: the *plain* question prompt (no few-shot, no hint) and the kept rationale."""
    return {
        "prompt": chat(system, record.question, record.task),
        "completion": [{"role": "assistant", "content": rationale}],
        "id": record.id,
        "kind": kind,
    }


@dataclass
class Rationales:
    """One iteration's kept rationales and the counts of how they were found."""

    examples: list[dict]
    questions: int
    direct: int
    rationalized: int
    wrong: int
    hint_mentions: int
    fewshot_accuracy: float

    def counts(self) -> dict[str, Any]:
        return {
            "questions": self.questions,
            "kept": len(self.examples),
            "direct": self.direct,
            "rationalized": self.rationalized,
            "wrong_first": self.wrong,
            "dropped_hint_mention": self.hint_mentions,
            "fewshot_accuracy": round(self.fewshot_accuracy, 4),
        }


def collect_rationales(
    generate: Callable[[list[list[dict]]], list[tuple[str, int]]],
    records: Sequence[Record],
    shots: Sequence[Shot],
    scorer: Any,
    *,
    system: str,
    rationalize: bool = True,
    require_answer_tag: bool = True,
) -> Rationales:
    """Generate, score and keep rationales for ``records`` (one STaR data pass)."""

    def keep(text: str, score: float, record: Record) -> bool:
        return correct(score, record.task) and (not require_answer_tag or extract_answer(text) is not None)

    records = list(records)
    texts = [t for t, _ in generate([generation_prompt(r, shots, system) for r in records])]
    scores = sharded_score(scorer, records, texts)
    examples, wrong = [], []
    right = 0
    for record, text, s in zip(records, texts, scores):
        right += correct(s, record.task)
        if keep(text, s, record):
            examples.append(training_example(record, text, system, "direct"))
        else:
            wrong.append(record)
    direct = len(examples)
    mentions = 0
    if rationalize and wrong:
        texts = [t for t, _ in generate([generation_prompt(r, shots, system, hint=True) for r in wrong])]
        for record, text, s in zip(wrong, texts, sharded_score(scorer, wrong, texts)):
            if not keep(text, s, record):
                continue
            if HINT_MENTION.search(text):
                mentions += 1
                continue
            examples.append(training_example(record, text, system, "rationalized"))
    return Rationales(
        examples=examples,
        questions=len(records),
        direct=direct,
        rationalized=len(examples) - direct,
        wrong=len(wrong),
        hint_mentions=mentions,
        fewshot_accuracy=right / len(records) if records else 0.0,
    )


# --- data ---------------------------------------------------------------------------------------


def training_records(config: StarConfig) -> list[Record]:
    """``star_questions`` training questions (train splits only)."""
    return common.training_records(config, config.star_questions)


def heldout_records(config: StarConfig, exclude: Iterable[str] = ()) -> list[Record]:
    """Held-out questions: the built-in task's test split (same difficulty), or a benchmark; a question in ``exclude``
    (the training questions) is left out."""
    if config.star_heldout and config.star_heldout_benchmark is None and config.dataset != "synthetic":
        raise PasrError("star_heldout_benchmark: name a held-out benchmark for non-built-in training data "
                        "(e.g. gsm8k), or set star_heldout 0")
    return common.heldout_records(config, config.star_heldout, config.star_heldout_benchmark,
                                  config.star_heldout_file, exclude=exclude)


def fewshot_examples(config: StarConfig, exclude: set[str]) -> list[Shot]:
    """Worked examples for the generation prompt, never from the held-out split nor the training questions."""
    if config.star_fewshot == 0:
        return []
    if config.star_fewshot_file:
        return _read_shots(config.star_fewshot_file, config.star_fewshot, exclude)
    if config.dataset != "synthetic":
        raise PasrError(f"dataset {config.dataset!r} has no built-in worked solutions: give --star_fewshot_file "
                        "(JSONL with question, solution, task) or --star_fewshot 0")
    from pasr.data import synthetic

    pool = synthetic.generate_family(config.synthetic_family, config.star_fewshot + len(exclude),
                                     seed=config.seed + FEWSHOT_SEED_OFFSET, split="train",
                                     difficulty=config.synthetic_difficulty)
    shots = [Shot(r.question, r.task, r.reference, common.worked_solution(r, config.synthetic_family))
             for r in pool if r.question not in exclude]
    return shots[: config.star_fewshot]


def _read_shots(path: str, n: int, exclude: set[str]) -> list[Shot]:
    shots = []
    for lineno, row in read_objects(path):
        missing = [k for k in ("question", "solution") if k not in row]
        if missing:
            raise PasrError(f"{path}, line {lineno}: few-shot example needs field(s) {', '.join(missing)}")
        if row["question"] in exclude:
            raise PasrError(f"{path}, line {lineno}: this few-shot question is also a training or held-out question")
        reference = row.get("reference") or extract_answer(row["solution"]) or ""
        shots.append(Shot(row["question"], row.get("task", "open"), str(reference), row["solution"]))
    if len(shots) < n:
        raise PasrError(f"{path}: {len(shots)} few-shot examples, star_fewshot asks for {n}")
    return shots[:n]


# --- the loop -----------------------------------------------------------------------------------


@dataclass
class StarResult:
    """Where the last model and the per-iteration log are; ``rows``: the summary table (one row per iteration)."""

    model_dir: str
    log_path: str
    iterations: list[dict]
    seconds: float

    @property
    def rows(self) -> list[dict[str, str]]:
        """Per iteration (``base`` = iteration 0): kept, direct and rationalised rationales, held-out accuracy,
        mean held-out tokens, minutes; ``-`` where a value is missing."""

        def cell(value, fmt="{}"):
            return "-" if value is None else fmt.format(value)

        return [
            {
                "iteration": "base" if row["iteration"] == 0 else str(row["iteration"]),
                "kept": cell(row.get("kept")),
                "direct": cell(row.get("direct")),
                "rationalised": cell(row.get("rationalized")),
                "held-out acc": cell(row.get("heldout_accuracy"), "{:.3f}"),
                "tokens": cell(row.get("heldout_tokens_mean"), "{:.0f}"),
                "min": cell(row.get("seconds") and row["seconds"] / 60, "{:.1f}"),
            }
            for row in self.iterations
        ]


def default_backend_factory(config: StarConfig) -> BackendFactory:
    """The generation backends of a STaR run (``star_backend``, ``star_generation_batch_size``, ``seed``)."""
    return backend_factory(config.star_backend, batch_size=config.star_generation_batch_size, seed=config.seed)


def heldout_eval(generate, records: Sequence[Record], scorer: Any, system: str) -> dict[str, Any]:
    """Accuracy and mean generated tokens on the held-out questions, plain prompt (as `pasr eval`)."""
    if not records:
        return {"heldout_n": 0, "heldout_accuracy": None, "heldout_tokens_mean": None}
    outs = generate([chat(system, r.question, r.task) for r in records])
    scores = sharded_score(scorer, records, [t for t, _ in outs])
    return {
        "heldout_n": len(records),
        "heldout_accuracy": round(sum(scores) / len(scores), 4),
        "heldout_tokens_mean": round(sum(k for _, k in outs) / len(outs), 1),
    }


def _read_log(path: Path) -> dict[int, dict]:
    """Finished iterations by number (:func:`pasr.baselines.common.read_run_log`)."""
    return common.read_run_log(path, "iteration", int, "a number")


def run_star(
    config: StarConfig,
    model_config: ModelConfig,
    *,
    backend_factory: BackendFactory | None = None,
    scorer: Any = None,
    console: Any = None,
) -> StarResult:
    """K STaR iterations; returns where the last model and the per-iteration log are.

    Holds OUTPUT_DIR as its only writer (:class:`pasr.run_folder.RunLock`); a rerun resumes after
    the last finished iteration.
    """
    with RunLock(config.output_dir, "pasr star", option="output_dir", distributed=True):
        return _run_star(config, model_config, backend_factory, scorer, console)


def _run_star(config: StarConfig, model_config: ModelConfig, backend_factory, scorer, console) -> StarResult:
    """The iterations of :func:`run_star`, once its run folder is held."""
    from pasr.train.sft import run_sft

    run = common.start_run(config, model_config, console)
    state, main, say, base, output = run.state, run.main, run.say, run.base, run.output
    system = config.system_prompt
    log_path = output / "star_log.jsonl"

    records = training_records(config)
    heldout = heldout_records(config, exclude=[r.question for r in records])
    common.check_records(config, records, heldout, config.star_heldout_benchmark)
    shots = fewshot_examples(config, exclude={r.question for r in records} | {r.question for r in heldout})
    say(f"STaR: {len(records)} training questions, {len(shots)} few-shot examples, {len(heldout)} held-out, "
        f"{config.star_iterations} iterations from {base}", highlight=False)

    def sharded(model: str, description: str):
        return generator(models.get(model), max_tokens=config.star_max_new_tokens,
                         temperature=config.star_temperature, batch_size=config.star_generation_batch_size,
                         progress=progress, description=description)

    done = _read_log(log_path)
    rows = [done[k] for k in sorted(done)]
    current = base
    for k in sorted(done):
        if k > 0:
            current = done[k]["model"]

    def log(row: dict) -> None:
        rows.append(row)
        if main:
            append_jsonl(log_path, [row])

    with common.run_scorer(config, scorer) as scorer, \
            BackendSlot(backend_factory or default_backend_factory(config)) as models, run.progress() as progress:
        if config.star_eval_base and heldout and 0 not in done:
            t0 = time.perf_counter()
            gen = sharded(base, "held-out, base model")
            row = {"iteration": 0, "model": base, **heldout_eval(gen, heldout, scorer, system),
                   "seconds": round(time.perf_counter() - t0, 1)}
            log(row)
            say(f"iteration 0 (base): held-out accuracy {row['heldout_accuracy']:.3f}", highlight=False)
        for k in range(1, config.star_iterations + 1):
            if k in done:
                say(f"iteration {k}: done before ({done[k]['model']})", highlight=False)
                continue
            t0 = time.perf_counter()
            gen = sharded(current, f"iteration {k}: rationales")
            found = collect_rationales(gen, records, shots, scorer, system=system,
                                       rationalize=config.star_rationalize,
                                       require_answer_tag=config.star_require_answer_tag)
            counts = found.counts()
            say(f"iteration {k}: kept {counts['kept']}/{counts['questions']} rationales "
                f"({counts['direct']} direct, {counts['rationalized']} rationalised)", highlight=False)
            if not found.examples:
                if k == 1:
                    raise PasrError(
                        f"STaR iteration 1 kept no rationale from {base}: the model answers none of "
                        f"{len(records)} questions right, even with the hint. Use a stronger or warmed-up "
                        "model, more star_max_new_tokens, or an easier task (synthetic_difficulty)."
                    )
                say(f"iteration {k}: nothing to fine-tune on; stopping", highlight=False)
                break
            iter_dir = output / f"iter_{k}"
            iter_dir.mkdir(parents=True, exist_ok=True)
            if main:
                with (iter_dir / "star_data.jsonl").open("w", encoding="utf-8") as f:
                    for ex in found.examples:
                        f.write(json.dumps(ex, ensure_ascii=False) + "\n")
            models.close()
            say(f"iteration {k}: fine-tuning {base} on {len(found.examples)} rationales -> {iter_dir}/final",
                highlight=False)
            sft_config = copy.deepcopy(config)
            sft_config.output_dir = str(iter_dir)
            examples = [{"prompt": ex["prompt"], "completion": ex["completion"]} for ex in found.examples]
            current = run_sft(sft_config, model_config, examples=examples)
            sft = json.loads((iter_dir / "sft_summary.json").read_text()) if main else {}
            gen = sharded(current, f"iteration {k}: held-out")
            row = {"iteration": k, "model": current, **counts, **heldout_eval(gen, heldout, scorer, system),
                   "sft_steps": sft.get("steps"), "sft_last_loss": sft.get("last_loss"),
                   "seconds": round(time.perf_counter() - t0, 1)}
            log(row)
            acc = row["heldout_accuracy"]
            say(f"iteration {k}: held-out accuracy {'-' if acc is None else f'{acc:.3f}'}", highlight=False)

    trained = [r for r in rows if r["iteration"] > 0]
    if not trained:
        raise PasrError(f"{output}: no STaR iteration finished")
    final = output / "final"
    if main:
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(trained[-1]["model"], final)
        common.write_summary(output / "star_summary.json", {"model_dir": str(final), "base": base, "iterations": rows},
                             run.seconds())
    state.wait_for_everyone()
    return StarResult(model_dir=str(final), log_path=str(log_path), iterations=rows,
                      seconds=run.seconds())
