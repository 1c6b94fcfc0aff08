"""PTR, Progressive Thought Refinement (Du et al., 2024, "Think Thrice Before You Act", arXiv 2410.13413).

PTR teaches a model to improve its previous answer when asked to *think further and give a more precise
answer*, without being told whether that answer was right. Here, on ``run_sft``:

1. **Thought-refinement data.** The base model answers each training question ``ptr_samples`` times under
   the standard prompt (sampling, ``ptr_temperature``); every sample is scored by the evaluation scorer.
   A refinement example pairs a *weaker* and a *better* sample of the same question (better score strictly
   higher: on the built-in task, a wrong and a right one) as a conversation: prompt = [system, question,
   assistant WEAKER, user :data:`~pasr.prompts.PTR_REFINE_INSTRUCTION`], completion = [assistant BETTER].
   A ``ptr_keep_right_share`` of the examples are *right -> right* (a right first answer, another right
   sample as the refinement), so the model also learns not to break an answer that is right.
2. **Thought-mask fine-tuning.** SFT of the base model on these prompt-completion examples: TRL's
   completion-only loss masks the prompt, so the earlier turns (the question, the weaker "thought" and the
   instruction) carry no loss and only the refined answer is learned -> ``OUTPUT_DIR/final``.
3. **Evaluation over refinement rounds** on held-out questions (the built-in task's test split, or
   ``ptr_heldout_benchmark``; never a training question): the standard answer (round 0), then
   ``ptr_rounds`` turns of the refinement instruction, greedy; accuracy after each round and mean generated
   tokens with every turn counted, for the base and the trained model. This is ``pasr eval --methods ptr
   --rounds N`` (:func:`pasr.eval.methods.ptr`), read round by round.

What follows the paper: the two phases (thought data, thought-mask fine-tuning), the multi-turn layout with
the refinement instruction between the previous answer and the refined one, the loss on the refined answer
only, consistency filtering of the refined answers (here: a refined answer must state its answer in
``<answer> </answer>``, ``ptr_require_answer_tag``), and evaluation over three refinement rounds (the
paper reports PTR at iteration 3 and gains that level off after about three).

What is adapted, and why:

- *Weak and strong models.* The paper builds the data with a weak model writing the first thoughts and a
  stronger model the refined answers, from WizardLM queries. Here both come from the model being trained
  (the issue's "the model's own weaker and better samples"): its weaker and better samples of the same
  question, ranked by the scorer (rule-based, or the LLM judge for open-ended data). No second model is
  needed and the refined answers are in the model's own distribution.
- *One refinement step per example.* The paper's sequences can hold several successive thoughts; an example
  here holds one previous answer and one refinement, and evaluation chains the instruction ``ptr_rounds``
  times.
- *Loss.* The paper's weighted objective adds a consistency term (Sentence-BERT similarity of successive
  answers) and a confidence term to the masked answer likelihood; its own sensitivity analysis finds the
  answer term alone within about a point of the best weighting. Only that term is trained here (plain
  completion-only cross-entropy), which keeps PTR on the same SFT path as the other trained baselines.
- *Right -> right examples* (``ptr_keep_right_share``) are ours: a trained refiner that only ever sees
  wrong -> right pairs learns to change every answer, and breaks right ones.
- *A model that answers nothing right* (the random test model) has no better sample to learn from. On the
  built-in task, ``ptr_worked_fallback`` then takes the task's worked solutions as the better answers -- the
  paper's strong model, played by the task -- so the pipeline still trains; the data counts say
  ``better_source: worked``. It never applies while the model's own samples give at least one pair.

Layout: ``OUTPUT_DIR/ptr_data.jsonl`` (the chat examples, as ``pasr sft --dataset file`` reads them, with
``kind``, ``first_score`` and ``refined_score``), ``OUTPUT_DIR/ptr_data_counts.json``, ``OUTPUT_DIR/sft/``
(the fine-tuning run), ``OUTPUT_DIR/final`` (the model), ``OUTPUT_DIR/ptr_log.jsonl`` (one line per evaluated
model: ``base``, ``trained``) and ``OUTPUT_DIR/ptr_summary.json``. A rerun resumes: the data file, the
final model and logged evaluations are reused, not recomputed; ``OUTPUT_DIR/run_settings.json``
(:func:`settings`) ties the folder to the settings that made them, and a rerun with other settings is refused.
Under ``accelerate launch`` each process generates its share and the results are gathered
(:mod:`pasr.generation.runtime`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pasr.baselines import common
from pasr.baselines.common import correct, worked_solution
from pasr.baselines.heldout import heldout_rounds
from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.format import extract_answer
from pasr.generation.runtime import (
    BackendFactory,
    BackendSlot,
    backend_factory,
    generator,
    sharded_score,
)
from pasr.jsonl import append_jsonl
from pasr.prompts import PTR_REFINE_INSTRUCTION, STANDARD_SYSTEM_PROMPT, chat
from pasr.run_folder import RunLock, write_text_atomic
from pasr.train.config import JudgeArguments, ModelConfig, PasrSFTConfig
from pasr.train.saving import is_saved_model

logger = logging.getLogger("pasr.ptr")

COMMAND = "pasr baseline ptr"
"""The run folder's kind (:class:`pasr.run_folder.RunLock`)."""
PTR_BACKENDS = ("transformers", "vllm")
DATA_FILE = "ptr_data.jsonl"
COUNTS_FILE = "ptr_data_counts.json"
LOG_FILE = "ptr_log.jsonl"
SUMMARY_FILE = "ptr_summary.json"
SFT_FOLDER = "sft"
SEED_OFFSET = 4099
"""The data's shuffles (which right -> right examples are kept) use their own seed, apart from the SFT's."""


@dataclass
class PtrConfig(PasrSFTConfig, JudgeArguments):
    """SFTConfig (the thought-mask fine-tuning) plus PTR's data and evaluation settings.

    Training questions come from ``dataset`` (``synthetic``: the built-in task's train split; or any
    dataset ``pasr train`` accepts). Held-out questions: the built-in task's test split, or
    ``ptr_heldout_benchmark``.
    """

    training_questions: ClassVar[bool] = True
    """``dataset`` names training questions (:func:`pasr.train.checks.reads_training_questions`)."""

    dataset: str = field(
        default="synthetic",
        metadata={"help": "Training questions: 'synthetic' (built-in task), a benchmark name, 'wizardlm' or 'file'."},
    )
    ptr_questions: int = field(default=64, metadata={"help": "Training questions the base model answers."})
    ptr_samples: int = field(
        default=4, metadata={"help": "Sampled answers per training question (weaker and better ones are paired)."}
    )
    ptr_temperature: float = field(default=0.8, metadata={"help": "Sampling temperature of those answers (> 0)."})
    ptr_max_new_tokens: int = field(default=128, metadata={"help": "Generated tokens per answer and per turn."})
    ptr_generation_batch_size: int = field(default=16, metadata={"help": "Batch size of generation."})
    ptr_backend: str = field(default="transformers", metadata={"help": f"Generation backend: {PTR_BACKENDS}."})
    ptr_generation_dtype: str = field(
        default="auto",
        metadata={"help": "Weights of the generation backend: auto, bfloat16 or float32 (on a CPU, bfloat16 decodes "
                          "about 3x faster than auto)."},
    )
    ptr_keep_right_share: float = field(
        default=0.2,
        metadata={"help": "Share of training examples that are right -> right (a right first answer kept right), "
                          "in [0, 1)."},
    )
    ptr_require_answer_tag: bool = field(
        default=True,
        metadata={"help": "Consistency filter: a refined answer must state its answer in <answer> </answer>."},
    )
    ptr_worked_fallback: bool = field(
        default=True,
        metadata={"help": "When the model's own samples give no weaker -> better pair at all (it answers nothing "
                          "right), use the built-in task's worked solutions as the better answers (a stand-in for "
                          "the paper's strong model; dataset synthetic only) instead of stopping."},
    )
    ptr_rounds: int = field(default=3, metadata={"help": "Refinement rounds at evaluation (the paper: 3)."})
    ptr_heldout_n: int = field(default=64, metadata={"help": "Held-out questions of the evaluation (0: none)."})
    ptr_heldout_benchmark: str | None = field(
        default=None, metadata={"help": "Held-out benchmark name (default: the built-in task's test split)."}
    )
    ptr_heldout_file: str | None = field(default=None, metadata={"help": "Local data file for that benchmark."})
    ptr_eval_base: bool = field(default=True, metadata={"help": "Evaluate the base model over the rounds too."})

    def __post_init__(self):
        check_ptr_values(self)
        super().__post_init__()  # TRL's and pasr's value rules; `dataset` as training questions (the class says so)


def check_ptr_values(config: Any) -> None:
    """PTR's own fields, each problem a one-line :class:`PasrError` naming the field."""
    for name, low in (("ptr_questions", 1), ("ptr_samples", 2), ("ptr_max_new_tokens", 1),
                      ("ptr_generation_batch_size", 1), ("ptr_rounds", 1), ("ptr_heldout_n", 0)):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            why = " (a weaker and a better sample of a question are compared)" if name == "ptr_samples" else ""
            raise PasrError(f"{name} must be an integer >= {low}{why}, got {value!r}")
    for name in ("ptr_temperature", "ptr_keep_right_share"):
        if not isinstance(getattr(config, name), (int, float)) or isinstance(getattr(config, name), bool):
            raise PasrError(f"{name} must be a number, got {getattr(config, name)!r}")
    if not config.ptr_temperature > 0:
        raise PasrError(f"ptr_temperature must be > 0 (the samples of a question must differ), "
                        f"got {config.ptr_temperature}")
    if not 0 <= config.ptr_keep_right_share < 1:
        raise PasrError(f"ptr_keep_right_share must be in [0, 1), got {config.ptr_keep_right_share}")
    for name in ("ptr_require_answer_tag", "ptr_worked_fallback", "ptr_eval_base"):
        if not isinstance(getattr(config, name), bool):
            raise PasrError(f"{name} must be true or false, got {getattr(config, name)!r}")
    common.check_sources(config, "ptr", PTR_BACKENDS)


# --- questions ------------------------------------------------------------------------------------


def training_records(config: PtrConfig) -> list[Record]:
    """``ptr_questions`` training questions (train splits only)."""
    return common.training_records(config, config.ptr_questions)


def heldout_records(config: PtrConfig, exclude: set[str] = frozenset()) -> list[Record]:
    """Held-out questions: the built-in task's test split (same family and difficulty), or a benchmark;
    any question in ``exclude`` (the training questions) is left out (:func:`pasr.baselines.common.heldout_records`)."""
    return common.heldout_records(config, config.ptr_heldout_n, config.ptr_heldout_benchmark,
                                  config.ptr_heldout_file, exclude=exclude)


# --- the thought-refinement data --------------------------------------------------------------------


def refinement_example(record: Record, first: str, refined: str, *, kind: str, first_score: float,
                       refined_score: float, system: str = STANDARD_SYSTEM_PROMPT) -> dict:
    """One SFT example: prompt = [system, question, assistant ``first``, refinement instruction], completion =
    [assistant ``refined``]. Only the completion carries loss (TRL's completion-only loss: PTR's thought mask)."""
    return {
        "prompt": chat(system, record.question, record.task) + [
            {"role": "assistant", "content": first},
            {"role": "user", "content": PTR_REFINE_INSTRUCTION},
        ],
        "completion": [{"role": "assistant", "content": refined}],
        "id": record.id,
        "kind": kind,
        "first_score": round(float(first_score), 4),
        "refined_score": round(float(refined_score), 4),
    }


@dataclass
class RefinementData:
    """The examples and how they were found."""

    examples: list[dict]
    counts: dict[str, Any]


def build_examples(
    records: Sequence[Record],
    samples: Sequence[Sequence[tuple[str, float]]],
    *,
    keep_right_share: float = 0.2,
    require_answer_tag: bool = True,
    seed: int = 0,
    system: str = STANDARD_SYSTEM_PROMPT,
) -> RefinementData:
    """Refinement examples from each record's scored samples ``[(text, score), ...]`` (one list per record).

    Per question: the best score among the samples that can be a refined answer (an answer tag when
    ``require_answer_tag``); every distinct sample scoring strictly lower is a first answer, paired with a
    best one (distinct best samples in turn): kind ``refine``. Right -> right candidates (kind ``keep``): a
    right sample followed by another right sample of the same question (the same one if it is the only one);
    ``round(share / (1 - share) * refine pairs)`` of them are kept (fewer if there are not that many), so
    they make ``keep_right_share`` of all examples. Examples come shuffled (seeded).
    """
    if len(records) != len(samples):
        raise ValueError(f"build_examples needs one sample list per record: {len(records)} vs {len(samples)}")
    rng = random.Random(seed + SEED_OFFSET)
    refine: list[dict] = []
    keep: list[dict] = []
    drawn = right_samples = filtered = 0
    questions_improvable = questions_all_right = 0
    for record, scored in zip(records, samples):
        scored = [(str(t), float(s)) for t, s in scored]
        drawn += len(scored)
        right_samples += sum(correct(s, record.task) for _, s in scored)

        def usable(text: str) -> bool:
            return bool(text.strip()) and (not require_answer_tag or extract_answer(text) is not None)

        refinable = [(t, s) for t, s in scored if usable(t)]
        filtered += len(scored) - len(refinable)
        if refinable:
            best = max(s for _, s in refinable)
            better = list(dict.fromkeys(t for t, s in refinable if s == best))
            weaker: dict[str, float] = {}
            for t, s in sorted(scored, key=lambda ts: ts[1]):
                if s < best and t.strip() and t not in weaker:
                    weaker[t] = s
            questions_improvable += bool(weaker)
            for i, (first, s) in enumerate(weaker.items()):
                refine.append(refinement_example(record, first, better[i % len(better)], kind="refine",
                                                 first_score=s, refined_score=best, system=system))
        rights = list(dict.fromkeys(t for t, s in refinable if correct(s, record.task)))
        right_score = {t: s for t, s in refinable}
        questions_all_right += bool(scored) and all(correct(s, record.task) for _, s in scored)
        for i, first in enumerate(rights):
            second = rights[(i + 1) % len(rights)]
            keep.append(refinement_example(record, first, second, kind="keep", first_score=right_score[first],
                                           refined_score=right_score[second], system=system))
    share = float(keep_right_share)
    wanted = round(share / (1 - share) * len(refine)) if share > 0 else 0
    rng.shuffle(keep)
    kept = keep[:wanted]
    examples = refine + kept
    rng.shuffle(examples)
    counts = {
        "questions": len(records),
        "samples": drawn,
        "sample_accuracy": round(right_samples / drawn, 4) if drawn else None,
        "filtered_no_answer_tag": filtered,
        "questions_improvable": questions_improvable,
        "questions_all_right": questions_all_right,
        "refine": len(refine),
        "keep_right_candidates": len(keep),
        "keep_right_wanted": wanted,
        "keep_right": len(kept),
        "examples": len(examples),
        "keep_right_share": round(len(kept) / len(examples), 4) if examples else None,
    }
    return RefinementData(examples=examples, counts=counts)


def worked_examples(records: Sequence[Record], samples: Sequence[Sequence[tuple[str, float]]],
                    solutions: Sequence[str], solution_scores: Sequence[float], *,
                    system: str = STANDARD_SYSTEM_PROMPT) -> RefinementData:
    """The fallback data: each distinct sample scoring below its question's worked solution, refined by that solution
    (``source`` ``worked``). For a model whose own samples never differ in score (one that answers nothing right)."""
    examples = []
    for record, scored, solution, best in zip(records, samples, solutions, solution_scores):
        seen = set()
        for text, score in scored:
            if float(score) < float(best) and text.strip() and text not in seen:
                seen.add(text)
                example = refinement_example(record, text, solution, kind="refine", first_score=score,
                                             refined_score=best, system=system)
                examples.append({**example, "source": "worked"})
    counts = {"refine": len(examples), "keep_right": 0, "examples": len(examples), "better_source": "worked",
              "questions_improvable": len({e["id"] for e in examples})}
    return RefinementData(examples=examples, counts=counts)


def sample_answers(generate: Callable[[list[list[dict]]], list[tuple[str, int]]], records: Sequence[Record],
                   scorer: Any, samples: int, system: str = STANDARD_SYSTEM_PROMPT) -> list[list[tuple[str, float]]]:
    """``samples`` answers per record under the standard prompt, each scored: ``[[(text, score), ...], ...]``."""
    records = list(records)
    conversations = [chat(system, r.question, r.task) for r in records for _ in range(samples)]
    texts = [t for t, _ in generate(conversations)]
    scores = sharded_score(scorer, [r for r in records for _ in range(samples)], texts)
    return [list(zip(texts[i * samples:(i + 1) * samples], scores[i * samples:(i + 1) * samples]))
            for i in range(len(records))]


# --- the run ----------------------------------------------------------------------------------------


@dataclass
class PtrResult:
    """Where the model and the log are; ``rows``: the summary table (one row per evaluated model and round)."""

    model_dir: str
    log_path: str
    seconds: float
    rows: list[dict[str, str]]
    evaluations: list[dict] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def summary_rows(evaluations: Sequence[dict]) -> list[dict[str, str]]:
    """Per evaluated model and round: held-out accuracy and mean tokens (every turn so far counted)."""
    rows = []
    for ev in evaluations:
        for r in ev.get("rounds") or []:
            rows.append({
                "model": ev["model"],
                "round": str(r["round"]),
                "held-out acc": f"{r['accuracy']:.3f}",
                "tokens": f"{r['tokens_mean']:.0f}",
                "fixed / broken": (f"{ev.get('fixed')} / {ev.get('broken')}" if r["round"] == len(ev["rounds"]) - 1
                                   and r["round"] > 0 else "-"),
            })
    return rows


def default_backend_factory(config: PtrConfig) -> BackendFactory:
    return backend_factory(config.ptr_backend, batch_size=config.ptr_generation_batch_size, seed=config.seed,
                           dtype=config.ptr_generation_dtype)


def _read_log(path: Path) -> dict[str, dict]:
    """Logged evaluations by model (``base``, ``trained``) (:func:`pasr.baselines.common.read_run_log`)."""
    return common.read_run_log(path, "model", common.text, "text")


RUNTIME_FIELDS = ("ptr_generation_batch_size", "ptr_backend", "ptr_generation_dtype", "ptr_eval_base")
"""PTR fields that change how a run goes, not what it makes (a rerun may change them)."""


def settings(config: PtrConfig, model_config: ModelConfig) -> dict[str, Any]:
    """What shapes a PTR run's data, model and evaluation (:func:`pasr.baselines.common.hold_settings`): the base
    model, the training questions, every ``ptr_*`` field but :data:`RUNTIME_FIELDS`, the SFT hyperparameters."""
    from dataclasses import fields

    ptr_fields = [f.name for f in fields(config) if f.name.startswith("ptr_") and f.name not in RUNTIME_FIELDS]
    return common.run_settings(config, model_config, [*common.DATA_FIELDS, *ptr_fields, *common.SFT_FIELDS])


def _read_counts(path: Path) -> dict[str, Any]:
    """``ptr_data_counts.json`` of an earlier run; one-line :class:`PasrError` naming the file when it is corrupt."""
    try:
        counts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PasrError(f"{path}: unreadable data counts of an earlier run ({err}); delete it (and {DATA_FILE}) "
                        "to rebuild the data, or use a new --output_dir") from None
    if not isinstance(counts, dict):
        raise PasrError(f"{path}: not a JSON object; delete it (and {DATA_FILE}) to rebuild the data, or use a new "
                        "--output_dir")
    return counts


def run_ptr(
    config: PtrConfig,
    model_config: ModelConfig,
    *,
    backend_factory: BackendFactory | None = None,
    scorer: Any = None,
    console: Any = None,
) -> PtrResult:
    """Build the thought-refinement data, fine-tune the base model, evaluate over refinement rounds.

    Holds OUTPUT_DIR as its only writer (:class:`pasr.run_folder.RunLock`); a rerun resumes (the data file,
    the final model and the logged evaluations are reused).
    """
    with RunLock(config.output_dir, COMMAND, option="output_dir", distributed=True):
        return _run_ptr(config, model_config, backend_factory, scorer, console)


def _run_ptr(config: PtrConfig, model_config: ModelConfig, factory, scorer, console) -> PtrResult:
    from pasr.train import sft

    run = common.start_run(config, model_config, console)
    state, main, say, base, output = run.state, run.main, run.say, run.base, run.output
    data_path, counts_path, log_path = output / DATA_FILE, output / COUNTS_FILE, output / LOG_FILE
    final = output / "final"

    records = training_records(config)
    heldout = heldout_records(config, exclude={r.question for r in records})
    common.check_records(config, records, heldout, config.ptr_heldout_benchmark)
    common.hold_settings(output, settings(config, model_config), main=main)
    say(f"PTR: {len(records)} training questions x {config.ptr_samples} samples, {len(heldout)} held-out, "
        f"{config.ptr_rounds} refinement rounds, from {base}", highlight=False)

    done = _read_log(log_path)
    evaluations = [done[k] for k in ("base", "trained") if k in done]
    counts: dict[str, Any] = {}

    def log(row: dict) -> None:
        evaluations.append(row)
        if main:
            append_jsonl(log_path, [row])

    def evaluate(name: str, path: str, extra: dict | None = None) -> None:
        t0 = time.perf_counter()
        found = heldout_rounds(slot.get(path), heldout, scorer, rounds=config.ptr_rounds,
                               max_tokens=config.ptr_max_new_tokens, batch_size=config.ptr_generation_batch_size,
                               progress=progress, label=f"held-out, {name} model")
        row = {"model": name, "path": path, **found, **(extra or {}), "seconds": round(time.perf_counter() - t0, 1)}
        log(row)
        accs = " -> ".join(f"{r['accuracy']:.3f}" for r in row["rounds"])
        say(f"{name} model: held-out accuracy by round {accs}", highlight=False)

    with common.run_scorer(config, scorer) as scorer, \
            BackendSlot(factory or default_backend_factory(config)) as slot, run.progress() as progress:
        if config.ptr_eval_base and heldout and "base" not in done:
            evaluate("base", base)
        if data_path.is_file():
            examples = sft.read_chat_examples(str(data_path))
            counts = _read_counts(counts_path) if counts_path.is_file() else {"examples": len(examples)}
            say(f"data: {len(examples)} examples from before ({data_path})", highlight=False)
        elif is_saved_model(final):
            examples = []
            say(f"data: {data_path} is missing but {final} is done; not rebuilt", highlight=False)
        else:
            gen = generator(slot.get(base), max_tokens=config.ptr_max_new_tokens,
                            temperature=config.ptr_temperature, batch_size=config.ptr_generation_batch_size,
                            progress=progress, description="samples, base model")
            samples = sample_answers(gen, records, scorer, config.ptr_samples)
            found = build_examples(records, samples, keep_right_share=config.ptr_keep_right_share,
                                   require_answer_tag=config.ptr_require_answer_tag, seed=config.seed)
            if not found.counts["refine"] and config.ptr_worked_fallback and config.dataset == "synthetic":
                solutions = [worked_solution(r, config.synthetic_family) for r in records]
                fallback = worked_examples(records, samples, solutions, sharded_score(scorer, records, solutions))
                say(f"[yellow]warning:[/yellow] {base}'s own samples give no weaker -> better pair; the built-in "
                    "task's worked solutions are the better answers instead (ptr_worked_fallback)", highlight=False)
                found = RefinementData(fallback.examples, {**found.counts, **fallback.counts})
            found.counts.setdefault("better_source", "own samples")
            counts = found.counts
            say(f"data: {counts['refine']} weaker -> better pairs ({counts['better_source']}) from "
                f"{counts['questions_improvable']} of {counts['questions']} questions, {counts['keep_right']} "
                f"right -> right (sample accuracy {counts['sample_accuracy']})", highlight=False)
            if not counts["refine"]:
                raise PasrError(
                    f"PTR found no weaker -> better pair: the {config.ptr_samples} samples of each of "
                    f"{len(records)} questions from {base} never differ in score. Use a stronger or warmed-up "
                    "model, more ptr_samples or ptr_questions, a higher ptr_temperature, or an easier task "
                    "(on the built-in task, ptr_worked_fallback uses its worked solutions instead)."
                )
            examples = found.examples
            if main:
                write_text_atomic(counts_path, json.dumps(counts, indent=2) + "\n")
                write_text_atomic(data_path, "".join(json.dumps(e, ensure_ascii=False) + "\n"
                                                     for e in examples))
        if not is_saved_model(final):
            slot.close()
            sft_dir = output / SFT_FOLDER
            if not is_saved_model(sft_dir / "final"):
                say(f"fine-tuning {base} on {len(examples)} examples (loss on the refined answer only) -> "
                    f"{final}", highlight=False)
                sft_config = copy.deepcopy(config)
                sft_config.output_dir = str(sft_dir)
                sft.run_sft(sft_config, model_config,
                            examples=[{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
            if main:
                os.replace(sft_dir / "final", final)
            state.wait_for_everyone()
        if heldout and "trained" not in done:
            sft_summary = output / SFT_FOLDER / "sft_summary.json"
            sft_info = json.loads(sft_summary.read_text()) if sft_summary.is_file() else {}
            evaluate("trained", str(final), {"data": counts, "sft_steps": sft_info.get("steps"),
                                             "sft_last_loss": sft_info.get("last_loss")})

    if not counts and counts_path.is_file():
        counts = _read_counts(counts_path)
    seconds = run.seconds()
    rows = summary_rows(evaluations)
    if main:
        common.write_summary(output / SUMMARY_FILE, {"model_dir": str(final), "base": base, "rounds": config.ptr_rounds,
                                                     "data": counts, "evaluations": evaluations, "rows": rows},
                             seconds)
    state.wait_for_everyone()
    return PtrResult(model_dir=str(final), log_path=str(log_path), seconds=seconds, rows=rows,
                     evaluations=evaluations, data=counts)


Config = PtrConfig
"""The registry protocol (:mod:`pasr.baselines.registry`): the config dataclass of ``pasr baseline ptr``."""
run = run_ptr
"""The registry protocol: ``run(config, model_config, *, backend_factory=None, scorer=None, console=None)``."""
