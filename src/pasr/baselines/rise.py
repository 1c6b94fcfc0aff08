"""RISE, Recursive IntroSpEction (Qu, Zhang, Garg and Kumar, 2024, "Recursive Introspection: Teaching Language Model
Agents How to Self-Improve", NeurIPS 2024, arXiv 2407.18219).

RISE turns a single-turn question into a multi-turn episode: the model answers, an answer marked wrong gets the
feedback "The answer is incorrect. Please try again." (:data:`~pasr.prompts.RISE_FEEDBACK`) and another turn, and
the model is fine-tuned to make each next turn better than the last. Here, on ``run_sft``:

1. **On-policy multi-turn rollouts.** The current model answers each training question under the standard prompt;
   at every turn it draws ``rise_best_of`` samples (``rise_temperature``) of the same conversation, each scored by
   the evaluation scorer. The first sample is the rollout's own attempt: right, the rollout stops (the oracle of
   the data collection); wrong, the conversation gains [assistant ATTEMPT, user RISE_FEEDBACK] and the next turn
   follows, up to ``rise_turns`` turns.
2. **Self-distillation.** The improved target of a turn is the best of its ``rise_best_of`` samples (the paper's
   "RISE (self)": best-of-N of the learner itself, no stronger model). One example per turn: prompt = the
   conversation so far (system, question, earlier attempts and feedback turns), completion = [assistant BEST],
   with ``weight`` from BEST's reward ``r`` (``rise_reward_weighting``):

   - ``exp``: the paper's reward-weighted regression, ``exp(r / tau)`` normalised by its largest value
     ``exp(1 / tau)``, i.e. ``exp((r - 1) / rise_tau)``: a full-marks turn weighs 1, a wrong one ``exp(-1/tau)``;
   - ``reward``: ``r`` itself (a turn with ``r = 0`` carries no loss and is left out);
   - ``none``: 1 for a right turn (:func:`pasr.baselines.common.correct`); the others are left out (filtered SFT).

   A turn whose own attempt was already right gives an example too (``rise_keep_right``, as the paper trains
   every state of the rollout); off, only turns whose attempt was wrong do.
3. **Reward-weighted SFT with earlier turns masked.** TRL's completion-only loss masks the prompt (every earlier
   turn and every feedback turn: label -100), and :func:`weighted_sft_trainer` multiplies each example's token
   losses by its ``weight``: the loss of a batch is ``sum_i w_i * sum_t nll_it / N`` (``N``: the trained tokens,
   as in plain SFT). The base model is fine-tuned on the data of every iteration so far.
4. **Iterations.** ``rise_iterations`` rounds of 1-3, each collecting on-policy data with the model of the round
   before (the paper runs RISE for two iterations).
5. **Held-out evaluation** over ``rise_eval_turns`` turns (the paper: 5), greedy, on held-out questions (the
   built-in task's test split or ``rise_heldout_benchmark``; never a training question), for the base and the
   trained model, read both ways the paper reports: with the oracle (``rise-oracle``: stop once right; accuracy
   after ``k`` turns = right within ``k`` attempts) and without it (``rise``: the feedback after every turn
   whatever the answer, the answer read by majority over the turns so far); tokens count every turn. This is
   ``pasr eval --methods rise,rise-oracle --rounds 4`` (:mod:`pasr.eval.methods`), read turn by turn
   (:func:`pasr.baselines.heldout.heldout_rounds`).

What follows the paper: the multi-turn MDP with the fixed "incorrect, try again" feedback, on-policy rollouts of
the learner, improved turns by best-of-N self-distillation scored by the outcome reward, the loss on the improved
turn only with the earlier turns in context, reward-weighted regression, iterating on the model's own rollouts,
and the evaluation over 5 turns with and without the oracle (majority voting over turns).

What is adapted, and why:

- *The rollout's attempt is one of the N samples* (the first), so every turn costs N generations, not N + 1.
- *Weights normalised by their largest value* (``exp``): ``exp(r / tau) / exp(1 / tau)`` keeps a right turn's loss
  on plain SFT's scale, so the SFT hyperparameters of the other trained baselines apply; ``rise_tau`` is ours
  (the paper's value is not reproduced here). ``reward`` and ``none`` are cheaper variants: they leave the
  zero-weight turns out instead of training on them with a small weight.
- *Each iteration fine-tunes the base model on the data of all iterations so far* (data aggregation, as in the
  DAgger-style online imitation RISE builds on; it also keeps every iteration on the same SFT footing as STaR
  here) rather than continuing from the previous iteration's weights.
- *A model that answers nothing right* (the random test model) has no right improved turn to learn (under the
  ``exp`` weighting its only examples would be wrong samples at a small weight). On the built-in task,
  ``rise_worked_fallback`` then takes the task's worked solutions as the improved turns of every state the
  rollouts visited -- the paper's distillation variant, with the task as the more capable model -- so the
  pipeline still trains; the data counts say ``improved_source: worked``. It never applies while any of the
  model's own best-of-N samples is right.
- *Ties*: among best-of-N samples with the same score, the improved turn is one whose answer differs from the
  rollout's attempt where there is one (:func:`best_sample`): the feedback said that answer was incorrect.
- *The answer format*: :data:`~pasr.prompts.RISE_FEEDBACK` adds one sentence asking for the answer in
  ``<answer> </answer>``, so the scorers read the same answers as for the other methods.

Layout: ``OUTPUT_DIR/rise_data.jsonl`` (the chat examples, as ``pasr sft --dataset file`` reads them, with
``weight``, ``turn``, ``reward``, ``attempt_reward``, ``iteration``, ``id``), ``OUTPUT_DIR/rise_data_counts.json``
(per iteration), ``OUTPUT_DIR/sft-K/`` (iteration K's fine-tuning run; its ``final`` is the model that collects
iteration K+1's data), ``OUTPUT_DIR/final`` (the last iteration's model), ``OUTPUT_DIR/rise_log.jsonl`` (one line
per evaluated model and reading) and ``OUTPUT_DIR/rise_summary.json``. A rerun resumes: each iteration's data,
the models and the logged evaluations are reused, not recomputed; ``OUTPUT_DIR/run_settings.json``
(:func:`settings`) ties the folder to the settings that made them, and a rerun with other settings is refused.
Under ``accelerate launch`` each process generates and scores its share and the results are gathered
(:mod:`pasr.generation.runtime`).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pasr.baselines import common
from pasr.baselines.common import correct
from pasr.baselines.heldout import heldout_rounds
from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.generation.runtime import BackendFactory, BackendSlot, backend_factory, sharded_generate, sharded_score
from pasr.jsonl import append_jsonl
from pasr.prompts import RISE_FEEDBACK, STANDARD_SYSTEM_PROMPT, chat
from pasr.run_folder import RunLock, write_text_atomic
from pasr.train.config import JudgeArguments, ModelConfig, PasrSFTConfig
from pasr.train.saving import is_saved_model

logger = logging.getLogger("pasr.rise")

COMMAND = "pasr baseline rise"
"""The run folder's kind (:class:`pasr.run_folder.RunLock`)."""
RISE_BACKENDS = ("transformers", "vllm")
WEIGHTINGS = ("exp", "reward", "none")
"""How an improved turn's reward weights its loss (``rise_reward_weighting``; see the module docstring)."""
READINGS = (("rise-oracle", "oracle stop"), ("rise", "majority"))
"""The evaluation methods of the held-out evaluation and how the summary names them."""
DATA_FILE = "rise_data.jsonl"
COUNTS_FILE = "rise_data_counts.json"
LOG_FILE = "rise_log.jsonl"
SUMMARY_FILE = "rise_summary.json"
WEIGHT_KEY = "weight"
"""The example (and batch) key of the per-example loss weight."""


@dataclass
class RiseConfig(PasrSFTConfig, JudgeArguments):
    """SFTConfig (the reward-weighted fine-tuning) plus RISE's rollout, weighting and evaluation settings.

    Training questions come from ``dataset`` (``synthetic``: the built-in task's train split; or any dataset
    ``pasr train`` accepts). Held-out questions: the built-in task's test split, or ``rise_heldout_benchmark``.
    """

    training_questions: ClassVar[bool] = True
    """``dataset`` names training questions (:func:`pasr.train.checks.reads_training_questions`)."""

    dataset: str = field(
        default="synthetic",
        metadata={"help": "Training questions: 'synthetic' (built-in task), a benchmark name, 'wizardlm' or 'file'."},
    )
    rise_questions: int = field(default=64, metadata={"help": "Training questions rolled out per iteration."})
    rise_turns: int = field(
        default=3,
        metadata={"help": "Turns of a training rollout at most (>= 2): a wrong attempt gets the feedback and another "
                          "turn (the paper evaluates 5)."},
    )
    rise_best_of: int = field(
        default=4,
        metadata={"help": "Samples per turn (>= 2); the best is the improved turn (self-distillation), the first is "
                          "the rollout's own attempt."},
    )
    rise_temperature: float = field(default=0.8, metadata={"help": "Sampling temperature of the rollouts (> 0)."})
    rise_max_new_tokens: int = field(default=128, metadata={"help": "Generated tokens per turn."})
    rise_generation_batch_size: int = field(default=16, metadata={"help": "Batch size of generation."})
    rise_backend: str = field(default="transformers", metadata={"help": f"Generation backend: {RISE_BACKENDS}."})
    rise_generation_dtype: str = field(
        default="auto",
        metadata={"help": "Weights of the generation backend: auto, bfloat16 or float32 (on a CPU, bfloat16 decodes "
                          "about 3x faster than auto)."},
    )
    rise_iterations: int = field(
        default=1,
        metadata={"help": "Rounds of on-policy data collection and fine-tuning (the paper: 2); round K+1 rolls out "
                          "round K's model."},
    )
    rise_reward_weighting: str = field(
        default="exp",
        metadata={"help": "Loss weight of an improved turn with reward r: 'exp' = exp((r - 1) / rise_tau) (the "
                          "paper's reward-weighted regression, normalised so full marks weigh 1), 'reward' = r, "
                          "'none' = 1 for right turns only."},
    )
    rise_tau: float = field(default=0.5, metadata={"help": "Temperature tau of the 'exp' weighting (> 0)."})
    rise_worked_fallback: bool = field(
        default=True,
        metadata={"help": "When none of an iteration's own best-of-N samples is right (the model answers nothing "
                          "right), the built-in task's worked solutions are the improved turns (the "
                          "paper's distillation from a more capable model, played by the task; dataset synthetic "
                          "only) instead of stopping."},
    )
    rise_keep_right: bool = field(
        default=True,
        metadata={"help": "A turn whose own attempt was already right gives an example too (its best sample); "
                          "false: only turns after which the attempt was wrong."},
    )
    rise_eval_turns: int = field(
        default=5, metadata={"help": "Turns of the held-out evaluation (>= 2; the paper: 5)."}
    )
    rise_heldout_n: int = field(default=64, metadata={"help": "Held-out questions of the evaluation (0: none)."})
    rise_heldout_benchmark: str | None = field(
        default=None, metadata={"help": "Held-out benchmark name (default: the built-in task's test split)."}
    )
    rise_heldout_file: str | None = field(default=None, metadata={"help": "Local data file for that benchmark."})
    rise_eval_base: bool = field(default=True, metadata={"help": "Evaluate the base model over the turns too."})

    def __post_init__(self):
        check_rise_values(self)
        super().__post_init__()  # TRL's and pasr's value rules; `dataset` as training questions (the class says so)


def check_rise_values(config: Any) -> None:
    """RISE's own fields (and the SFT settings its weighted loss cannot honour), each problem a one-line
    :class:`PasrError` naming the field."""
    for name, low in (("rise_questions", 1), ("rise_turns", 2), ("rise_best_of", 2), ("rise_max_new_tokens", 1),
                      ("rise_generation_batch_size", 1), ("rise_iterations", 1), ("rise_eval_turns", 2),
                      ("rise_heldout_n", 0)):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            why = {"rise_turns": " (a wrong attempt gets the feedback and a next turn)",
                   "rise_best_of": " (the improved turn is the best of several samples)",
                   "rise_eval_turns": " (the first answer and at least one more turn)"}.get(name, "")
            raise PasrError(f"{name} must be an integer >= {low}{why}, got {value!r}")
    for name in ("rise_temperature", "rise_tau"):
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or math.isinf(value):
            raise PasrError(f"{name} must be a number > 0, got {value!r}")
    if config.rise_reward_weighting not in WEIGHTINGS:
        raise PasrError(f"rise_reward_weighting={config.rise_reward_weighting!r}: use one of {', '.join(WEIGHTINGS)}")
    for name in ("rise_keep_right", "rise_worked_fallback", "rise_eval_base"):
        if not isinstance(getattr(config, name), bool):
            raise PasrError(f"{name} must be true or false, got {getattr(config, name)!r}")
    common.check_sources(config, "rise", RISE_BACKENDS)
    # the per-example weights ride on unpacked, padded rows through TRL's token log-probabilities
    for name, bad, why in (("packing", bool(config.packing), "packing mixes examples in one row"),
                           ("padding_free", bool(config.padding_free), "padding-free batches are one row"),
                           ("label_smoothing_factor", bool(config.label_smoothing_factor),
                            "label smoothing takes another loss path"),
                           ("loss_type", config.loss_type != "nll", "only the plain nll loss is weighted"),
                           ("completion_only_loss", config.completion_only_loss is False,
                            "the earlier turns and the feedback would get loss too")):
        if bad:
            raise PasrError(f"{name}={getattr(config, name)!r} does not combine with RISE's per-example loss "
                            f"weights ({why}); leave it at its default")


# --- questions ------------------------------------------------------------------------------------


def training_records(config: RiseConfig) -> list[Record]:
    """``rise_questions`` training questions (train splits only)."""
    return common.training_records(config, config.rise_questions)


def heldout_records(config: RiseConfig, exclude: set[str] = frozenset()) -> list[Record]:
    """Held-out questions: the built-in task's test split (same family and difficulty), or a benchmark; any
    question in ``exclude`` (the training questions) is left out."""
    return common.heldout_records(config, config.rise_heldout_n, config.rise_heldout_benchmark,
                                  config.rise_heldout_file, exclude=exclude)


# --- the rollouts and their examples ----------------------------------------------------------------


def turn_weight(reward: float, right: bool, weighting: str, tau: float = 0.5) -> float:
    """The loss weight of an improved turn with reward ``reward`` in [0, 1] (``right``: it counts as right):
    ``exp`` -> ``exp((reward - 1) / tau)`` in (0, 1]; ``reward`` -> ``reward``; ``none`` -> 1 if ``right`` else 0.
    A weight of 0 means the turn gives no example. ValueError for another ``weighting``."""
    if weighting == "exp":
        return math.exp((float(reward) - 1.0) / float(tau))
    if weighting == "reward":
        return max(0.0, float(reward))
    if weighting == "none":
        return 1.0 if right else 0.0
    raise ValueError(f"unknown weighting {weighting!r}; use one of {', '.join(WEIGHTINGS)}")


def rise_example(conversation: list[dict], improved: str, *, record: Record, turn: int, reward: float,
                 attempt_reward: float, weight: float, iteration: int = 1) -> dict:
    """One SFT example: prompt = ``conversation`` (system, question, and per earlier turn [assistant attempt, user
    :data:`~pasr.prompts.RISE_FEEDBACK`]), completion = [assistant ``improved``] (the only tokens with loss), and
    its loss ``weight``. ``turn``: 1 for the first answer."""
    return {
        "prompt": copy.deepcopy(conversation),
        "completion": [{"role": "assistant", "content": improved}],
        WEIGHT_KEY: round(float(weight), 6),
        "turn": int(turn),
        "reward": round(float(reward), 4),
        "attempt_reward": round(float(attempt_reward), 4),
        "iteration": int(iteration),
        "id": record.id,
    }


@dataclass
class RolloutData:
    """The examples of one iteration and how they were found (``counts``); ``states``: every turn the rollouts
    visited, as ``(record index, conversation, turn, attempt score)``."""

    examples: list[dict]
    counts: dict[str, Any]
    states: list[tuple[int, list[dict], int, float]] = field(default_factory=list)


def best_sample(got: Sequence[tuple[str, float]]) -> tuple[str, float]:
    """The improved turn of ``got`` = [(text, score)], the rollout's own attempt first: the highest score; among
    equal scores the first whose answer differs from the attempt's (a retry the feedback asked for, not the
    attempt it called incorrect), else the first. ValueError for no samples."""
    from pasr.eval.methods import answer_key

    if not got:
        raise ValueError("best_sample of no samples")
    top = max(score for _, score in got)
    tied = [(text, score) for text, score in got if score == top]
    attempt = answer_key(got[0][0])
    return next(((t, sc) for t, sc in tied if answer_key(t) != attempt), tied[0])


Sample = Callable[[list[list[dict]], int], list[tuple[str, int]]]
"""``sample(conversations, turn) -> [(text, tokens)]``: one sampled reply per conversation, in order."""


def rollout(sample: Sample, records: Sequence[Record], scorer: Any, *, turns: int, best_of: int,
            weighting: str = "exp", tau: float = 0.5, keep_right: bool = True, iteration: int = 1,
            system: str = STANDARD_SYSTEM_PROMPT) -> RolloutData:
    """On-policy rollouts of ``records`` with best-of-``best_of`` improved turns (see the module docstring).

    At turn ``t`` every open conversation is sampled ``best_of`` times (one ``sample`` call for all of them) and
    scored (:func:`pasr.generation.runtime.sharded_score`); the first sample is the rollout's attempt, the best
    (:func:`best_sample`) the improved turn. An attempt that is right ends its rollout; a wrong one adds
    [assistant attempt, user RISE_FEEDBACK] to the conversation, until ``turns`` turns have run. Each turn gives
    one example (:func:`rise_example`) unless its weight (:func:`turn_weight`) is 0, its best sample is empty, or
    its attempt was right and not ``keep_right``. Counts per turn: ``states``, ``attempt_accuracy`` (the rollout's
    own attempts), ``best_accuracy`` (right within the ``best_of`` samples), ``examples``.
    """
    records = list(records)
    convs = {i: chat(system, r.question, r.task) for i, r in enumerate(records)}
    examples: list[dict] = []
    states: list[tuple[int, list[dict], int, float]] = []
    per_turn = []
    zero_weight = 0
    for t in range(1, turns + 1):
        open_ = list(convs)
        if not open_:
            break
        asked = [convs[i] for i in open_ for _ in range(best_of)]
        texts = [text for text, _ in sample(asked, t)]
        if len(texts) != len(asked):
            raise RuntimeError(f"sample returned {len(texts)} replies for {len(asked)} conversations")
        scores = sharded_score(scorer, [records[i] for i in open_ for _ in range(best_of)], texts)
        attempts_right = best_right = made = 0
        for j, i in enumerate(open_):
            record = records[i]
            got = list(zip(texts[j * best_of:(j + 1) * best_of], scores[j * best_of:(j + 1) * best_of]))
            attempt, attempt_score = got[0]
            best, best_score = best_sample(got)
            attempt_right, right = correct(attempt_score, record.task), correct(best_score, record.task)
            attempts_right += attempt_right
            best_right += right
            states.append((i, convs[i], t, float(attempt_score)))
            weight = turn_weight(best_score, right, weighting, tau)
            if best.strip() and (keep_right or not attempt_right):
                if weight > 0:
                    examples.append(rise_example(convs[i], best, record=record, turn=t, reward=best_score,
                                                 attempt_reward=attempt_score, weight=weight, iteration=iteration))
                    made += 1
                else:
                    zero_weight += 1
            if attempt_right or t == turns:
                del convs[i]  # the oracle of the data collection: a right attempt ends the rollout
            else:
                convs[i] = convs[i] + [{"role": "assistant", "content": attempt},
                                       {"role": "user", "content": RISE_FEEDBACK}]
        per_turn.append({"turn": t, "states": len(open_), "attempt_accuracy": round(attempts_right / len(open_), 4),
                         "best_accuracy": round(best_right / len(open_), 4), "examples": made})
    weights = [e[WEIGHT_KEY] for e in examples]
    counts = {
        "iteration": iteration,
        "questions": len(records),
        "turns": per_turn,
        "samples": sum(p["states"] for p in per_turn) * best_of,
        "examples": len(examples),
        "left_out_zero_weight": zero_weight,
        "weight_sum": round(sum(weights), 4),
        "weight_mean": round(sum(weights) / len(weights), 4) if weights else None,
        "right_examples": sum(e["reward"] >= 1.0 for e in examples),
    }
    return RolloutData(examples=examples, counts=counts, states=states)


def worked_examples(found: RolloutData, records: Sequence[Record], solutions: Sequence[str],
                    solution_scores: Sequence[float], *, weighting: str = "exp", tau: float = 0.5,
                    keep_right: bool = True, iteration: int = 1) -> RolloutData:
    """The fallback data: every state ``found`` visited, its improved turn the record's worked solution
    (``solutions[i]``, scored ``solution_scores[i]``) instead of its best sample, weighted the same way, ``source``
    ``worked``. For a model whose own samples give no improved turn at all (one that answers nothing right)."""
    examples = []
    for i, conv, turn, attempt_score in found.states:
        record, reward = records[i], float(solution_scores[i])
        weight = turn_weight(reward, correct(reward, record.task), weighting, tau)
        if weight > 0 and (keep_right or not correct(attempt_score, record.task)):
            example = rise_example(conv, solutions[i], record=record, turn=turn, reward=reward,
                                   attempt_reward=attempt_score, weight=weight, iteration=iteration)
            examples.append({**example, "source": "worked"})
    weights = [e[WEIGHT_KEY] for e in examples]
    counts = {**found.counts, "examples": len(examples), "improved_source": "worked", "left_out_zero_weight": None,
              "weight_sum": round(sum(weights), 4), "weight_mean": round(sum(weights) / len(weights), 4) if weights
              else None, "right_examples": sum(e["reward"] >= 1.0 for e in examples)}
    return RolloutData(examples=examples, counts=counts, states=found.states)


# --- the reward-weighted fine-tuning -----------------------------------------------------------------


class WeightCollator:
    """Wraps TRL's collator: the batch it builds plus ``weight``, a float tensor of the examples' weights (batch,).

    KeyError naming the key for an example without a weight."""

    def __init__(self, collator: Callable[[list[dict]], dict]):
        self.collator = collator

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        if any(WEIGHT_KEY not in e for e in examples):
            raise KeyError(f"RISE's weighted SFT needs a {WEIGHT_KEY!r} in every example (remove_unused_columns "
                           "must be false so it reaches the collator)")
        batch = self.collator(examples)
        batch[WEIGHT_KEY] = torch.tensor([float(e[WEIGHT_KEY]) for e in examples], dtype=torch.float32)
        return batch


class _WeightedModel:
    """The model, with each row's per-token log-probabilities of a fused-head forward (the tokens TRL's SFT loss
    sums) multiplied by that row's weight. Anything else is the model's own."""

    def __init__(self, model: Any, weights: Any):
        self._model, self._weights = model, weights

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self._model(*args, **kwargs)
        log_probs = getattr(out, "log_probs", None) if kwargs.get("fused_lm_head") else None
        if log_probs is not None:
            if log_probs.shape[0] != self._weights.shape[0]:
                raise RuntimeError(f"RISE's weighted loss: {self._weights.shape[0]} weights for a batch of "
                                   f"{log_probs.shape[0]} rows")
            weights = self._weights.to(log_probs.device).view(-1, *[1] * (log_probs.dim() - 1))
            out.log_probs = log_probs * weights
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@functools.cache
def weighted_sft_trainer() -> type:
    """TRL's ``SFTTrainer`` with a per-example loss weight (public API only: ``compute_loss``, ``data_collator``).

    The dataset keeps a ``weight`` column (``remove_unused_columns=False``: TRL's default collator reads only the
    token columns), :class:`WeightCollator` carries it into the batch, and ``compute_loss`` takes it out and runs
    SFTTrainer's own loss with every token log-probability of row ``i`` multiplied by ``w_i``: the loss is
    ``sum_i w_i * sum_t nll_it / N`` with ``N`` the trained tokens (TRL's normalisation, gradient accumulation and
    metrics unchanged). A batch without weights trains as plain SFT. Refuses (PasrError) settings whose loss would
    not see the weights: packing, padding-free batches, label smoothing, a custom ``compute_loss_func``, a
    ``loss_type`` other than ``nll``, or ``remove_unused_columns=True``.
    """
    from trl import SFTTrainer

    class RewardWeightedSFTTrainer(SFTTrainer):
        """SFTTrainer whose loss weights each example by its ``weight`` (:func:`weighted_sft_trainer`)."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            problems = [name for name, bad in (
                ("remove_unused_columns", self.args.remove_unused_columns),
                ("packing", self.args.packing), ("padding_free", self.args.padding_free),
                ("label_smoothing_factor", bool(self.args.label_smoothing_factor)),
                ("loss_type", self.args.loss_type != "nll"),
                ("completion_only_loss", self.args.completion_only_loss is False),
                ("compute_loss_func", self.compute_loss_func is not None)) if bad]
            if problems:
                raise PasrError(f"RISE's weighted SFT cannot weight the loss with {', '.join(problems)} set; "
                                "use remove_unused_columns false and the defaults of the others")
            self.data_collator = WeightCollator(self.data_collator)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weights = inputs.pop(WEIGHT_KEY, None)
            if weights is not None:
                model = _WeightedModel(model, weights)
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return RewardWeightedSFTTrainer


def sft_rows(examples: Sequence[dict]) -> list[dict]:
    """What the fine-tuning reads of each example: ``prompt``, ``completion`` and ``weight``."""
    return [{"prompt": e["prompt"], "completion": e["completion"], WEIGHT_KEY: float(e[WEIGHT_KEY])}
            for e in examples]


# --- the run ----------------------------------------------------------------------------------------


@dataclass
class RiseResult:
    """Where the model and the log are; ``rows``: the summary table (one row per evaluated model and reading)."""

    model_dir: str
    log_path: str
    seconds: float
    rows: list[dict[str, str]]
    evaluations: list[dict] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def summary_rows(evaluations: Sequence[dict]) -> list[dict[str, str]]:
    """Per evaluated model and reading (oracle stop, majority): held-out accuracy after the first and after the last
    turn, mean tokens with every turn counted, and answers fixed / broken between them."""
    rows = []
    for ev in evaluations:
        turns = ev.get("rounds") or []
        if not turns:
            continue
        rows.append({
            "model": ev["model"],
            "reading": dict(READINGS).get(ev["method"], ev["method"]),
            "turn 1 acc": f"{turns[0]['accuracy']:.3f}",
            "last turn": str(len(turns)),
            "last turn acc": f"{turns[-1]['accuracy']:.3f}",
            "tokens": f"{turns[-1]['tokens_mean']:.0f}",
            "fixed / broken": f"{ev.get('fixed')} / {ev.get('broken')}",
        })
    return rows


def default_backend_factory(config: RiseConfig) -> BackendFactory:
    return backend_factory(config.rise_backend, batch_size=config.rise_generation_batch_size, seed=config.seed,
                           dtype=config.rise_generation_dtype)


RUNTIME_FIELDS = ("rise_generation_batch_size", "rise_backend", "rise_generation_dtype", "rise_eval_base")
"""RISE fields that change how a run goes, not what it makes (a rerun may change them)."""


def settings(config: RiseConfig, model_config: ModelConfig) -> dict[str, Any]:
    """What shapes a RISE run's data, models and evaluation (:func:`pasr.baselines.common.hold_settings`): the base
    model, the training questions, every ``rise_*`` field but :data:`RUNTIME_FIELDS`, the SFT hyperparameters."""
    from dataclasses import fields

    rise_fields = [f.name for f in fields(config) if f.name.startswith("rise_") and f.name not in RUNTIME_FIELDS]
    return common.run_settings(config, model_config, [*common.DATA_FIELDS, *rise_fields, *common.SFT_FIELDS])


def _log_key(model: str, method: str) -> str:
    return f"{model} {method}"


def _read_log(path: Path) -> dict[str, dict]:
    """Logged evaluations by ``key`` (``base rise-oracle``, ``trained rise``, ...)."""
    return common.read_run_log(path, "key", common.text, "text")


def _read_data(path: Path) -> list[dict]:
    """The examples of an earlier run's ``rise_data.jsonl``; one-line :class:`PasrError` naming the line when one
    is not an example."""
    from pasr.data.records import read_objects

    examples = []
    for lineno, row in read_objects(path):
        ok = (isinstance(row.get("prompt"), list) and isinstance(row.get("completion"), list)
              and isinstance(row.get(WEIGHT_KEY), (int, float)) and isinstance(row.get("iteration"), int))
        if not ok:
            raise PasrError(f"{path}, line {lineno}: not a RISE example (needs prompt, completion, {WEIGHT_KEY} and "
                            "iteration); delete the file to rebuild the data, or use a new --output_dir")
        examples.append(row)
    return examples


def _read_counts(path: Path) -> dict[str, Any]:
    """``rise_data_counts.json`` of an earlier run; one-line :class:`PasrError` naming the file when it is corrupt."""
    try:
        counts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PasrError(f"{path}: unreadable data counts of an earlier run ({err}); delete it (and {DATA_FILE}) "
                        "to rebuild the data, or use a new --output_dir") from None
    if not isinstance(counts, dict) or not isinstance(counts.get("iterations", []), list):
        raise PasrError(f"{path}: not RISE data counts; delete it (and {DATA_FILE}) to rebuild the data, or use a "
                        "new --output_dir")
    return counts


def sft_folder(output: Path, iteration: int) -> Path:
    """Iteration ``iteration``'s fine-tuning run (``OUTPUT_DIR/sft-K``)."""
    return output / f"sft-{iteration}"


def run_rise(
    config: RiseConfig,
    model_config: ModelConfig,
    *,
    backend_factory: BackendFactory | None = None,
    scorer: Any = None,
    console: Any = None,
) -> RiseResult:
    """Roll out, self-distil, fine-tune with reward weights (``rise_iterations`` times), evaluate over turns.

    Holds OUTPUT_DIR as its only writer (:class:`pasr.run_folder.RunLock`); a rerun resumes (each iteration's data,
    the models and the logged evaluations are reused). PasrError (one line) when an iteration has no example.
    """
    with RunLock(config.output_dir, COMMAND, option="output_dir", distributed=True):
        return _run_rise(config, model_config, backend_factory, scorer, console)


def _run_rise(config: RiseConfig, model_config: ModelConfig, factory, scorer, console) -> RiseResult:
    from pasr.train import sft

    run = common.start_run(config, model_config, console)
    state, main, say, base, output = run.state, run.main, run.say, run.base, run.output
    data_path, counts_path, log_path = output / DATA_FILE, output / COUNTS_FILE, output / LOG_FILE
    final = output / "final"
    iterations = config.rise_iterations

    records = training_records(config)
    heldout = heldout_records(config, exclude={r.question for r in records})
    common.check_records(config, records, heldout, config.rise_heldout_benchmark)
    common.hold_settings(output, settings(config, model_config), main=main)
    say(f"RISE: {len(records)} training questions, rollouts of up to {config.rise_turns} turns x best of "
        f"{config.rise_best_of}, {iterations} iteration(s), weighting {config.rise_reward_weighting}; "
        f"{len(heldout)} held-out over {config.rise_eval_turns} turns, from {base}", highlight=False)

    done = _read_log(log_path)
    evaluations = [done[k] for m in ("base", "trained") for k in (_log_key(m, method) for method, _ in READINGS)
                   if k in done]
    examples = _read_data(data_path) if data_path.is_file() else []
    counts = _read_counts(counts_path) if counts_path.is_file() else {"iterations": []}
    have = {e["iteration"] for e in examples}
    counts["iterations"] = [c for c in counts.get("iterations", []) if c.get("iteration") in have]

    def log(row: dict) -> None:
        evaluations.append(row)
        if main:
            append_jsonl(log_path, [row])

    def evaluate(name: str, path: str, extra: dict | None = None) -> None:
        for method, reading in READINGS:
            key = _log_key(name, method)
            if key in done:
                continue
            t0 = time.perf_counter()
            found = heldout_rounds(slot.get(path), heldout, scorer, method=method, rounds=config.rise_eval_turns - 1,
                                   max_tokens=config.rise_max_new_tokens,
                                   batch_size=config.rise_generation_batch_size, progress=progress,
                                   label=f"held-out, {name} model, {reading}")
            log({"key": key, "model": name, "path": path, **found, **(extra or {}),
                 "seconds": round(time.perf_counter() - t0, 1)})
            accs = " -> ".join(f"{r['accuracy']:.3f}" for r in found["rounds"])
            say(f"{name} model, {reading}: held-out accuracy by turn {accs}", highlight=False)

    def save_data() -> None:
        if main:
            counts["examples"] = len(examples)
            write_text_atomic(counts_path, json.dumps(counts, indent=2) + "\n")
            write_text_atomic(data_path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))

    with common.run_scorer(config, scorer) as scorer, \
            BackendSlot(factory or default_backend_factory(config)) as slot, run.progress() as progress:
        if config.rise_eval_base and heldout:
            evaluate("base", base)
        for it in range(1, iterations + 1):
            last = it == iterations
            model_out = final if last else sft_folder(output, it) / "final"
            if is_saved_model(model_out) or is_saved_model(final):
                continue
            if it in have:
                say(f"iteration {it}: {sum(e['iteration'] == it for e in examples)} examples from before "
                    f"({data_path})", highlight=False)
            else:
                policy = base if it == 1 else str(sft_folder(output, it - 1) / "final")
                backend = slot.get(policy)

                def sample(conversations: list[list[dict]], turn: int, backend=backend, it=it) -> list:
                    return sharded_generate(backend, conversations, max_tokens=config.rise_max_new_tokens,
                                            temperature=config.rise_temperature,
                                            batch_size=config.rise_generation_batch_size, progress=progress,
                                            description=f"iteration {it}, rollout turn {turn}")

                found = rollout(sample, records, scorer, turns=config.rise_turns, best_of=config.rise_best_of,
                                weighting=config.rise_reward_weighting, tau=config.rise_tau,
                                keep_right=config.rise_keep_right, iteration=it)
                never_right = all(p["best_accuracy"] == 0 for p in found.counts["turns"])
                if never_right and config.rise_worked_fallback and config.dataset == "synthetic":
                    solutions = [common.worked_solution(r, config.synthetic_family) for r in records]
                    found = worked_examples(found, records, solutions, sharded_score(scorer, records, solutions),
                                            weighting=config.rise_reward_weighting, tau=config.rise_tau,
                                            keep_right=config.rise_keep_right, iteration=it)
                    say(f"[yellow]warning:[/yellow] {policy}'s own samples give no right improved turn; the built-in "
                        "task's worked solutions are the improved turns instead (rise_worked_fallback)",
                        highlight=False)
                found.counts.setdefault("improved_source", "own samples")
                by_turn = ", ".join(f"turn {p['turn']}: {p['attempt_accuracy']:.2f} / {p['best_accuracy']:.2f}"
                                    for p in found.counts["turns"])
                say(f"iteration {it}: {found.counts['examples']} improved turns (weight sum "
                    f"{found.counts['weight_sum']}); attempt / best-of-{config.rise_best_of} accuracy {by_turn}",
                    highlight=False)
                if not found.examples:
                    raise PasrError(
                        f"RISE iteration {it} found no improved turn to learn: no best-of-{config.rise_best_of} "
                        f"sample of {len(records)} questions from {policy} has a weight above 0 "
                        f"(rise_reward_weighting {config.rise_reward_weighting}). Use a stronger or warmed-up model, "
                        "more rise_best_of or rise_questions, a higher rise_temperature or an easier task; on the "
                        "built-in task, rise_worked_fallback uses its worked solutions instead."
                    )
                examples.extend(found.examples)
                counts["iterations"].append(found.counts)
                have.add(it)
                save_data()
            slot.close()
            sft_dir = sft_folder(output, it)
            if not is_saved_model(sft_dir / "final"):
                trained = [e for e in examples if e["iteration"] <= it]
                say(f"iteration {it}: fine-tuning {base} on {len(trained)} reward-weighted examples (loss on the "
                    f"improved turn only) -> {model_out}", highlight=False)
                sft_config = copy.deepcopy(config)
                sft_config.output_dir = str(sft_dir)
                sft_config.remove_unused_columns = False  # the weight column must reach the collator
                sft.run_sft(sft_config, model_config, examples=sft_rows(trained),
                            trainer_class=weighted_sft_trainer())
            if last and main:
                os.replace(sft_dir / "final", final)
            state.wait_for_everyone()
        if heldout:
            sft_summary = sft_folder(output, iterations) / "sft_summary.json"
            sft_info = json.loads(sft_summary.read_text()) if sft_summary.is_file() else {}
            evaluate("trained", str(final), {"examples": counts.get("examples", len(examples)),
                                             "sft_steps": sft_info.get("steps"),
                                             "sft_last_loss": sft_info.get("last_loss")})

    seconds = run.seconds()
    rows = summary_rows(evaluations)
    if main:
        summary = {"model_dir": str(final), "base": base, "turns": config.rise_eval_turns, "data": counts,
                   "evaluations": evaluations, "rows": rows}
        common.write_summary(output / SUMMARY_FILE, summary, seconds)
    state.wait_for_everyone()
    return RiseResult(model_dir=str(final), log_path=str(log_path), seconds=seconds, rows=rows,
                      evaluations=evaluations, data=counts)


Config = RiseConfig
"""The registry protocol (:mod:`pasr.baselines.registry`): the config dataclass of ``pasr baseline rise``."""
run = run_rise
"""The registry protocol: ``run(config, model_config, *, backend_factory=None, scorer=None, console=None)``."""
