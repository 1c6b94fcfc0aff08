"""SCoRe, Self-Correction via Reinforcement Learning (Kumar et al., 2024, "Training Language Models to Self-Correct
via Reinforcement Learning", arXiv 2409.12917).

SCoRe trains a model to answer (attempt 1) and then, after an instruction to find and fix the mistakes in that
answer (:data:`~pasr.prompts.SCORE_CORRECTION_INSTRUCTION`), to answer again (attempt 2), with on-policy RL on
the two-attempt rollouts of the model itself. Here, on TRL's ``GRPOTrainer``:

1. **Two-attempt rollouts** (:func:`score_rollout`, TRL's ``rollout_func``). Attempt 1 is generated from the
   question under the standard prompt through the trainer's own generation path (transformers, vLLM colocate
   or server); attempt 2 from the token sequence prompt + attempt 1 + *bridge*, where the bridge is the chat
   template's tokens for [end of the assistant turn, user turn with the correction instruction, start of the
   next assistant turn] (:func:`bridge_ids`). The completion TRL trains on is attempt 1 + bridge + attempt 2,
   token for token as generated; its ``env_mask`` (TRL's tool mask) is 0 on the bridge, so the instruction
   carries no loss. One completion per prompt TRL hands over (its sampler already repeats each question
   ``num_generations`` times: the GRPO group).
2. **Rewards** (:class:`ScoreRewards`): both attempts are scored by the evaluation scorer
   (:func:`pasr.scoring.build_scorer`: rules, or the LLM judge), ``r1`` and ``r2`` in [0, 1].
   Stage I: ``R = r2``. Stage II: ``R = r1 + r2 + alpha * (r2 - r1)`` (the paper's reward shaping bonus
   ``b = alpha * (r2 - r1)`` on the second attempt). No format reward: the paper's reward is correctness only.
3. **Loss** (:class:`ScoreTrainer`): TRL's GRPO loss (advantage of ``R``, normalised per group, on every
   token of both attempts; KL to the reference model with weight ``beta`` on those tokens) plus
   ``(w - beta) * KL`` on the attempt-1 tokens, so attempt 1's KL weight is ``w`` and attempt 2's ``beta``.
   The KL is TRL's per-token estimator ``exp(ref - logp) - (ref - logp) - 1`` and the extra term is summed as
   TRL sums its per-token loss for the configured ``loss_type`` (:func:`pasr.train.trl_adapter.weighted_kl_loss`;
   for ``grpo``: per completion, the sum over attempt-1 tokens divided by the completion's loss tokens, then the
   batch mean). ``score/first_kl`` logs the plain token mean of that KL over attempt-1 tokens.
4. **Stages**. Stage I (``score_stage1_steps``) from the base model, reward ``r2``, attempt-1 KL weight
   ``score_stage1_first_kl`` (strong: attempt 1 stays near the base model while attempt 2 learns to correct it)
   -> ``OUTPUT_DIR/stage1/final``. Stage II (``score_stage2_steps``) from that model, reward with the bonus,
   attempt-1 KL weight ``score_first_kl`` (default ``beta``) -> ``OUTPUT_DIR/stage2/final``, moved to
   ``OUTPUT_DIR/final``. The reference model of both stages is the base model (stage II's policy starts from
   stage I's model, its reference stays the base). LoRA (``use_peft``) is refused: TRL's reference would be the
   adapter-free model, i.e. stage I's merged model in stage II.
5. **Held-out evaluation** (:func:`pasr.baselines.heldout.heldout_rounds`, method ``score``, one correction
   turn, greedy) of the base and the trained model on questions never trained on: accuracy after attempt 1 and
   attempt 2, their difference, answers fixed (wrong -> right) and broken (right -> wrong), tokens of both
   attempts. This is ``pasr eval --methods score --rounds 1``.

Values taken, and why: ``alpha = 10`` (the paper's MATH setting, kept by the public re-implementations);
attempt-1 KL weight 0.1 in stage I (the paper's large ``beta_2``) and ``beta = 0.01`` otherwise (its
``beta_1``, which public re-implementations use for both attempts in stage II and attempt 2 in stage I). The paper
states these for Gemma models and REINFORCE with a learned baseline; here they carry over to GRPO unchanged.

What is adapted, and why:

- *Policy optimiser.* The paper uses REINFORCE with a KL penalty; here GRPO (group-normalised advantages,
  clipped ratio), the RL loop of every trained method of this repository, so SCoRe differs from PASR and plain
  GRPO in its rollouts, rewards and KL only.
- *Credit assignment.* The paper's return of attempt 1 is ``r1 + r̂2`` (its reward plus the shaped one that
  follows) and of attempt 2 ``r̂2 = r2 + b``; with one scalar per rollout (GRPO's sequence-level advantage),
  both attempts get ``R``. In stage I, ``R = r2`` is the whole trajectory's return in both formulations. In
  stage II, ``R = r1 + r2 + alpha (r2 - r1) = (1 - alpha) r1 + (1 + alpha) r2``: with alpha 10, right -> right
  earns 2, wrong -> right 11, right -> wrong -9, wrong -> wrong 0, so within a group a right first attempt
  followed by a right second one ranks below a corrected wrong one, on attempt 1's tokens too (as in the paper's
  return of attempt 1). GRPO subtracts the group mean (no constant part of ``R`` matters) and, with
  ``scale_rewards`` group or batch, divides by the standard deviation, so alpha's overall scale cancels but its
  ratio of attempt-2 to attempt-1 credit stays; with ``scale_rewards: none`` stage II's advantages are about
  ten times stage I's.
- *Stage lengths.* The paper alternates the stages over several rounds on its larger runs; here stage I then
  stage II once (``score_stage1_steps``, ``score_stage2_steps``).

Layout: ``OUTPUT_DIR/stage1/``, ``OUTPUT_DIR/stage2/`` (TRL's output folders of the two stages, checkpoints
and ``stage_summary.json``), ``OUTPUT_DIR/final`` (the model), ``OUTPUT_DIR/score_log.jsonl`` (one line per
evaluated model: ``base``, ``trained``), ``OUTPUT_DIR/score_summary.json`` and ``OUTPUT_DIR/run_settings.json``.
A rerun resumes: a finished stage and logged evaluations are reused, a stage cut short continues from its last
complete checkpoint; a rerun with other settings is refused (:func:`settings`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pasr.baselines import common
from pasr.baselines.heldout import heldout_rounds
from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.generation.runtime import BackendFactory, BackendSlot, backend_factory
from pasr.jsonl import append_jsonl
from pasr.prompts import SCORE_CORRECTION_INSTRUCTION
from pasr.run_folder import RunLock, write_text_atomic
from pasr.train.config import ModelConfig, PasrGRPOConfig
from pasr.train.grpo import PasrGRPOTrainer
from pasr.train.saving import is_saved_model
from pasr.train.trl_adapter import (
    LossHooks,
    generate_single_turn,
    log_metric,
    reference_logps,
    reward_metric_logger,
    tokenize_prompts,
    weighted_kl_loss,
)

logger = logging.getLogger("pasr.score")

COMMAND = "pasr baseline score"
"""The run folder's kind (:class:`pasr.run_folder.RunLock`)."""
SCORE_BACKENDS = ("transformers", "vllm")
LOG_FILE = "score_log.jsonl"
SUMMARY_FILE = "score_summary.json"
STAGE_FOLDERS = {1: "stage1", 2: "stage2"}
STAGE_NAMES = {1: "SCoRe stage I", 2: "SCoRe stage II"}
FIRST_MASK = "score_first_mask"
"""The key of the attempt-1 token mask (completions x tokens) in TRL's training batches."""

SCORE_METRICS = (
    ("reward", "reward", "{:.2f}"),
    ("score/r1", "acc@1", "{:.2f}"),
    ("score/r2", "acc@2", "{:.2f}"),
    ("score/first_kl", "kl@1", "{:.1e}"),
    ("completions/mean_length", "length", "{:.0f}"),
)
"""What each training step's line shows (:class:`pasr.train.progress.Phase`)."""


@dataclass
class ScoreConfig(PasrGRPOConfig):
    """GRPOConfig (TRL's GRPO fields, ``pasr train``'s data and judge fields) plus SCoRe's stages and evaluation.

    Training questions come from ``dataset`` (``synthetic``: the built-in task's train split; or any dataset
    ``pasr train`` accepts). ``beta`` is the KL weight of attempt 2 (and of attempt 1 in stage II by default).
    Held-out questions: the built-in task's test split, or ``score_heldout_benchmark``.
    """

    training_questions: ClassVar[bool] = True
    """``dataset`` names training questions (:func:`pasr.train.checks.reads_training_questions`)."""

    system_prompt: str = field(
        default="standard",
        metadata={"help": "'standard' (the evaluation's prompt for a first answer), 'pasr' or a literal system prompt."},
    )
    beta: float = field(
        default=0.01,
        metadata={"help": "KL weight to the reference (base) model on attempt 2, and on attempt 1 in stage II unless "
                          "score_first_kl says otherwise (SCoRe's beta_1: 0.01)."},
    )
    score_stage1_steps: int = field(
        default=100, metadata={"help": "Optimizer steps of stage I (reward r2, strong attempt-1 KL); a positive "
                                       "max_steps caps each stage."})
    score_stage2_steps: int = field(
        default=200, metadata={"help": "Optimizer steps of stage II (reward r1 + r2 + alpha * (r2 - r1)); a positive "
                                       "max_steps caps each stage."})
    score_alpha: float = field(
        default=10.0, metadata={"help": "Stage II reward shaping: the bonus alpha * (r2 - r1) on the second attempt "
                                        "(the paper: 10)."})
    score_stage1_first_kl: float = field(
        default=0.1, metadata={"help": "Stage I KL weight on attempt-1 tokens (SCoRe's beta_2: keeps attempt 1 near "
                                       "the base model); > 0 needs beta > 0."})
    score_first_kl: float | None = field(
        default=None, metadata={"help": "Stage II KL weight on attempt-1 tokens (default: beta)."})
    score_max_new_tokens: int | None = field(
        default=None, metadata={"help": "Generated tokens per attempt at held-out evaluation "
                                        "(default: max_completion_length)."})
    score_generation_batch_size: int = field(default=16, metadata={"help": "Batch size of held-out generation."})
    score_backend: str = field(default="transformers",
                               metadata={"help": f"Held-out generation backend: {SCORE_BACKENDS}."})
    score_generation_dtype: str = field(
        default="auto",
        metadata={"help": "Weights of the held-out generation backend: auto, bfloat16 or float32 (on a CPU, bfloat16 "
                          "decodes about 3x faster than auto)."},
    )
    score_heldout_n: int = field(default=64, metadata={"help": "Held-out questions of the evaluation (0: none)."})
    score_heldout_benchmark: str | None = field(
        default=None, metadata={"help": "Held-out benchmark name (default: the built-in task's test split)."}
    )
    score_heldout_file: str | None = field(default=None, metadata={"help": "Local data file for that benchmark."})
    score_eval_base: bool = field(default=True, metadata={"help": "Evaluate the base model's two attempts too."})

    def __post_init__(self):
        check_score_values(self)
        super().__post_init__()  # TRL's and pasr's value rules; `dataset` as training questions (the class says so)
        if self.score_first_kl is None:
            self.score_first_kl = float(self.beta)

    def first_kl(self, stage: int) -> float:
        """The KL weight on attempt-1 tokens in ``stage`` (1 or 2)."""
        return float(self.score_stage1_first_kl if stage == 1 else
                     (self.beta if self.score_first_kl is None else self.score_first_kl))

    def stage_steps(self, stage: int) -> int:
        """Optimizer steps of ``stage``: its ``score_stage*_steps``, capped by a positive ``max_steps``."""
        steps = self.score_stage1_steps if stage == 1 else self.score_stage2_steps
        return min(steps, self.max_steps) if self.max_steps and self.max_steps > 0 else steps


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_score_values(config: Any) -> None:
    """SCoRe's own fields, each problem a one-line :class:`PasrError` naming the field."""
    for name, low in (("score_stage1_steps", 1), ("score_stage2_steps", 1), ("score_generation_batch_size", 1),
                      ("score_heldout_n", 0)):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise PasrError(f"{name} must be an integer >= {low}, got {value!r}")
    if config.score_max_new_tokens is not None and (not isinstance(config.score_max_new_tokens, int)
                                                    or isinstance(config.score_max_new_tokens, bool)
                                                    or config.score_max_new_tokens < 1):
        raise PasrError(f"score_max_new_tokens must be an integer >= 1 (or unset), got {config.score_max_new_tokens!r}")
    for name in ("score_alpha", "score_stage1_first_kl", "score_first_kl"):
        value = getattr(config, name)
        if value is None and name == "score_first_kl":
            continue
        if not _is_number(value) or value != value or value < 0:
            raise PasrError(f"{name} must be a number >= 0, got {value!r}")
    if not _is_number(config.beta) or config.beta < 0:
        raise PasrError(f"beta must be a number >= 0 for SCoRe (the KL weight of attempt 2), got {config.beta!r}")
    if config.beta == 0:
        for name in ("score_stage1_first_kl", "score_first_kl"):
            if getattr(config, name):
                raise PasrError(f"{name}={getattr(config, name)} needs beta > 0: TRL computes the reference model's "
                                f"log-probs only when beta != 0 (or set {name} 0)")
    if not isinstance(config.score_eval_base, bool):
        raise PasrError(f"score_eval_base must be true or false, got {config.score_eval_base!r}")
    if config.warmup_examples:
        raise PasrError("warmup_examples: SCoRe has no supervised warm-up; leave it 0")
    common.check_sources(config, "score", SCORE_BACKENDS)


# --- rollouts -------------------------------------------------------------------------------------------------

_MARKER = "PASR-SCORE-ATTEMPT-ONE"


def bridge_ids(tokenizer: Any, instruction: str = SCORE_CORRECTION_INSTRUCTION,
               chat_template_kwargs: dict | None = None) -> list[int]:
    """The chat template's tokens between an assistant turn's text and the next assistant turn's text when the user
    turn between them is ``instruction``: [end of turn, user turn, start of the assistant turn] (ChatML: ``<|im_end|>
    \\n<|im_start|>user\\n...<|im_end|>\\n<|im_start|>assistant\\n``). ``chat_template_kwargs`` as the trainer renders
    prompts with (e.g. ``enable_thinking``). PasrError when the template does not show an assistant turn's text."""
    messages = [{"role": "user", "content": "?"}, {"role": "assistant", "content": _MARKER},
                {"role": "user", "content": instruction}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                         **(chat_template_kwargs or {}))
    if _MARKER not in text:
        raise PasrError("SCoRe: the model's chat template drops earlier assistant turns; it cannot lay out a second "
                        "attempt after the first")
    tail = text[text.rindex(_MARKER) + len(_MARKER):]
    return list(tokenizer(tail, add_special_tokens=False)["input_ids"])


def join_attempts(first: Sequence[int], bridge: Sequence[int]) -> list[int]:
    """The bridge after attempt 1's tokens ``first``: without its leading end-of-turn token when attempt 1 already
    ends with it (a finished answer stops on it), whole otherwise (a truncated answer)."""
    bridge = list(bridge)
    if first and bridge and first[-1] == bridge[0]:
        return bridge[1:]
    return bridge


def score_rollout(prompts: list, trainer: Any) -> dict[str, Any]:
    """TRL's ``rollout_func``: one two-attempt rollout per prompt (``prompts``: the chat prompts of this process, each
    question already repeated ``num_generations`` times in a run by TRL's sampler).

    Returns ``prompt_ids``; ``completion_ids`` = attempt 1 + bridge + attempt 2 (token lists);
    ``logprobs`` (None on the transformers path; on vLLM the sampling log-probs, 0.0 on the bridge); ``env_mask``
    (1 on generated tokens, 0 on the bridge: TRL's tool mask, the loss skips it); and, for the reward function,
    ``score_first`` / ``score_second`` (the attempts' texts) and ``score_first_tokens`` (attempt 1's length).
    ``trainer.score_first_lengths`` keeps the attempt-1 lengths for the loss (:class:`ScoreTrainer`).
    """
    tokenizer = trainer.processing_class
    mode_generations = trainer.num_generations if trainer.model.training else trainer.num_generations_eval
    prompt_ids, images, multimodal = tokenize_prompts(trainer, prompts)
    prompt_ids = [list(ids) for ids in prompt_ids]
    first, first_lp = generate_single_turn(trainer, prompt_ids, images, multimodal, mode_generations)
    first = [list(ids) for ids in first]
    bridge = trainer.score_bridge
    bridges = [join_attempts(ids, bridge) for ids in first]
    second_prompts = [p + f + b for p, f, b in zip(prompt_ids, first, bridges)]
    second, second_lp = generate_single_turn(trainer, second_prompts, None, {}, 1)  # every prompt differs now
    second = [list(ids) for ids in second]
    completion_ids = [f + b + s for f, b, s in zip(first, bridges, second)]
    env_mask = [[1] * len(f) + [0] * len(b) + [1] * len(s) for f, b, s in zip(first, bridges, second)]
    logprobs = None
    if first_lp is not None and second_lp is not None:
        logprobs = [list(a) + [0.0] * len(b) + list(c) for a, b, c in zip(first_lp, bridges, second_lp)]
    trainer.score_first_lengths = [len(f) for f in first]
    return {
        "prompt_ids": prompt_ids,
        "completion_ids": completion_ids,
        "logprobs": logprobs,
        "env_mask": env_mask,
        "score_first": tokenizer.batch_decode(first, skip_special_tokens=True),
        "score_second": tokenizer.batch_decode(second, skip_special_tokens=True),
        "score_first_tokens": [len(f) for f in first],
    }


# --- rewards --------------------------------------------------------------------------------------------------


def stage_rewards(r1: Sequence[float], r2: Sequence[float], *, stage: int, alpha: float) -> list[float]:
    """SCoRe's reward per rollout from its attempts' scores: stage I ``r2``; stage II ``r1 + r2 + alpha * (r2 - r1)``."""
    if stage == 1:
        return [float(b) for b in r2]
    return [float(a) + float(b) + alpha * (float(b) - float(a)) for a, b in zip(r1, r2)]


class ScoreRewards:
    """The reward function of one SCoRe stage (``functions()`` for ``GRPOTrainer(reward_funcs=...)``)."""

    def __init__(self, scorer: Any, *, stage: int, alpha: float):
        if stage not in (1, 2):
            raise ValueError(f"SCoRe has stages 1 and 2, not {stage!r}")
        self.scorer, self.stage, self.alpha = scorer, stage, float(alpha)

    def functions(self) -> list:
        return [self.score_reward]

    def score_reward(self, prompts, completions, question, reference, task, score_first, score_second,
                     **kwargs) -> list[float]:
        """Both attempts scored in one pass (``r1``, ``r2`` in [0, 1]); the stage's reward (:func:`stage_rewards`).
        Logs ``score/r1``, ``score/r2``, ``score/bonus`` (stage II), ``score/fixed`` and ``score/broken`` (shares of
        rollouts wrong -> right and right -> wrong) and ``scoring/errors``."""
        from pasr.train.reward_functions import score_batch

        n = len(score_first)
        scores, errors = score_batch(self.scorer, list(task) * 2, list(score_first) + list(score_second),
                                     list(reference) * 2, list(question) * 2)
        r1, r2 = [float(s) for s in scores[:n]], [float(s) for s in scores[n:]]
        rewards = stage_rewards(r1, r2, stage=self.stage, alpha=self.alpha)
        log = reward_metric_logger(kwargs)
        if log is not None and n:
            right1 = [common.correct(s, t) for s, t in zip(r1, task)]
            right2 = [common.correct(s, t) for s, t in zip(r2, task)]
            log("score/r1", sum(r1) / n)
            log("score/r2", sum(r2) / n)
            if self.stage == 2:
                log("score/bonus", sum(self.alpha * (b - a) for a, b in zip(r1, r2)) / n)
            log("score/fixed", sum(not a and b for a, b in zip(right1, right2)) / n)
            log("score/broken", sum(a and not b for a, b in zip(right1, right2)) / n)
            log("scoring/errors", float(len(errors)))
        return rewards


# --- the trainer ----------------------------------------------------------------------------------------------


class ScoreTrainer(LossHooks, PasrGRPOTrainer):
    """PASR's GRPO trainer (timings, CPU bf16 generation, vLLM on CPU) with SCoRe's attempt-1 KL weight.

    ``first_kl_weight``: the KL weight on attempt-1 tokens (``w``); TRL's ``beta`` weighs every generated token,
    so ``(w - beta) * KL`` over attempt-1 tokens is added to TRL's loss (:func:`pasr.train.trl_adapter.weighted_kl_loss`).
    Pass ``rollout_func=score_rollout``.
    """

    def __init__(self, *args, first_kl_weight: float = 0.0, instruction: str = SCORE_CORRECTION_INSTRUCTION,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if first_kl_weight != self.beta and self.beta == 0.0:
            raise PasrError(f"an attempt-1 KL weight of {first_kl_weight} needs beta > 0 (TRL computes the reference "
                            "log-probs only when beta != 0)")
        self.first_kl_weight = float(first_kl_weight)
        self.score_bridge = bridge_ids(self.processing_class, instruction, self.chat_template_kwargs)
        self.score_first_lengths: list[int] = []

    def pasr_batch_tensors(self, batch: dict) -> dict:
        """The attempt-1 token mask (completions x completion tokens, 1 on attempt 1) of a generation batch."""
        import torch

        ids = batch["completion_ids"]
        lengths = torch.tensor(self.score_first_lengths, device=ids.device)
        if lengths.numel() != ids.size(0):
            raise RuntimeError(f"SCoRe: {lengths.numel()} attempt-1 lengths for {ids.size(0)} completions")
        positions = torch.arange(ids.size(1), device=ids.device).unsqueeze(0)
        return {FIRST_MASK: (positions < lengths.unsqueeze(1)).to(batch["completion_mask"].dtype)}

    def pasr_extra_loss(self, inputs: dict, per_token_logps: Any) -> Any:
        """``(w - beta) * KL`` over the attempt-1 tokens (None when there is no reference, or nothing to add);
        logs ``score/first_kl``, the token mean of the KL over attempt-1 tokens (averaged over the processes)."""
        if reference_logps(inputs) is None or FIRST_MASK not in inputs:
            return None
        extra = self.first_kl_weight - float(self.beta)
        term, kl_mean = weighted_kl_loss(self, inputs, per_token_logps, inputs[FIRST_MASK], extra)
        log_metric(self, "score/first_kl", float(self.accelerator.gather(kl_mean).nanmean()))  # over processes
        return term if extra != 0.0 else None


def build_trainer(config: ScoreConfig, model_config: ModelConfig, stage: int, records: list[Record], scorer: Any,
                  init_path: str, reference: str) -> ScoreTrainer:
    """The trainer of ``stage`` (``config`` is that stage's: output folder, steps), its policy loaded from
    ``init_path`` and its reference model from ``reference`` (no training yet)."""
    from trl import get_peft_config

    from pasr.models import load_model, load_tokenizer
    from pasr.train.data import records_to_dataset
    from pasr.train.grpo import system_prompt_text

    tokenizer = load_tokenizer(init_path)
    model = load_model(init_path, dtype=model_config.dtype)
    model.config.name_or_path = reference  # TRL builds the reference model from the policy's name_or_path
    rewards = ScoreRewards(scorer, stage=stage, alpha=config.score_alpha)
    with warnings.catch_warnings():  # TRL warns that rollout_func is experimental; pasr pins the TRL it is built on
        warnings.filterwarnings("ignore", message="You are using 'rollout_func'", category=UserWarning)
        return ScoreTrainer(
            model=model,
            reward_funcs=rewards.functions(),
            args=config,
            train_dataset=records_to_dataset(records, system_prompt_text(config.system_prompt)),
            processing_class=tokenizer,
            peft_config=get_peft_config(model_config),
            rollout_func=score_rollout,
            cpu_bf16_generation=config.cpu_bf16_generation,
            first_kl_weight=config.first_kl(stage),
        )


def stage_config(config: ScoreConfig, stage: int, output_dir: Path) -> ScoreConfig:
    """A copy of ``config`` for ``stage``: its folder and its steps (:meth:`ScoreConfig.stage_steps`)."""
    staged = copy.deepcopy(config)
    staged.output_dir = str(output_dir)
    staged.max_steps = config.stage_steps(stage)
    return staged


def train_stage(config: ScoreConfig, model_config: ModelConfig, stage: int, records: list[Record], scorer: Any,
                init_path: str, reference: str, output: Path, say: Any) -> Path:
    """Train ``stage`` into ``output/stageK`` (resuming from its last complete checkpoint) and save
    ``output/stageK/final``; a finished stage is reused as it is. Returns the final folder."""
    import gc

    from pasr.train.progress import Phase, use_phase_progress
    from pasr.train.saving import checkpoint_step, last_complete_checkpoint, save_final_model

    folder = output / STAGE_FOLDERS[stage]
    final = folder / "final"
    if is_saved_model(final):
        say(f"{STAGE_NAMES[stage]}: done before ({final})", highlight=False)
        return final
    staged = stage_config(config, stage, folder)
    checkpoint = last_complete_checkpoint(folder) if folder.is_dir() else None
    finished = checkpoint is not None and checkpoint_step(checkpoint) >= staged.max_steps
    if finished and not model_config.use_peft:  # killed after the last checkpoint, before the final save
        init_path, checkpoint = checkpoint, None
    say(f"{STAGE_NAMES[stage]}: {staged.max_steps} steps from {init_path}, attempt-1 KL {config.first_kl(stage)}, "
        f"attempt-2 KL {config.beta}, reward " + ("r2" if stage == 1 else f"r1 + r2 + {config.score_alpha} * (r2 - r1)")
        + (f", resuming from {checkpoint}" if checkpoint else "") + f" -> {final}", highlight=False)
    trainer = build_trainer(staged, model_config, stage, records, scorer, init_path, reference)
    use_phase_progress(trainer, Phase(stage, 2, STAGE_NAMES[stage], SCORE_METRICS,
                                      later=(STAGE_NAMES[2],) if stage == 1 else ()))
    if not (finished and not model_config.use_peft):
        trainer.train(resume_from_checkpoint=checkpoint)
    save_final_model(trainer, folder)
    if trainer.accelerator.is_main_process:
        history = list(trainer.state.log_history)
        write_text_atomic(folder / "stage_summary.json", json.dumps({
            "stage": stage, "steps": max((h.get("step", 0) for h in history), default=0),
            "first_kl_weight": config.first_kl(stage), "beta": config.beta,
            "alpha": config.score_alpha if stage == 2 else None, "log_history": history}, indent=2) + "\n")
    trainer.accelerator.wait_for_everyone()
    del trainer
    gc.collect()
    return final


# --- the run --------------------------------------------------------------------------------------------------


@dataclass
class ScoreResult:
    """Where the model and the log are; ``rows``: the summary table (one row per evaluated model)."""

    model_dir: str
    log_path: str
    seconds: float
    rows: list[dict[str, str]]
    evaluations: list[dict] = field(default_factory=list)


def summary_rows(evaluations: Sequence[dict]) -> list[dict[str, str]]:
    """Per evaluated model: held-out accuracy after attempt 1 and 2, their difference, fixed / broken answers and
    mean generated tokens of both attempts."""
    rows = []
    for ev in evaluations:
        rounds = ev.get("rounds") or []
        if len(rounds) < 2:
            continue
        a1, a2 = rounds[0]["accuracy"], rounds[1]["accuracy"]
        rows.append({
            "model": ev["model"],
            "accuracy@t1": f"{a1:.3f}",
            "accuracy@t2": f"{a2:.3f}",
            "Δ(t1,t2)": f"{a2 - a1:+.3f}",
            "fixed (i->c)": str(ev.get("fixed")),
            "broken (c->i)": str(ev.get("broken")),
            "tokens": f"{rounds[1]['tokens_mean']:.0f}",
        })
    return rows


def default_backend_factory(config: ScoreConfig) -> BackendFactory:
    return backend_factory(config.score_backend, batch_size=config.score_generation_batch_size, seed=config.seed,
                           dtype=config.score_generation_dtype)


def heldout_records(config: ScoreConfig, exclude: set[str] = frozenset()) -> list[Record]:
    """Held-out questions: the built-in task's test split (same family and difficulty), or a benchmark; any question
    in ``exclude`` (the training questions) is left out (:func:`pasr.baselines.common.heldout_records`)."""
    return common.heldout_records(config, config.score_heldout_n, config.score_heldout_benchmark,
                                  config.score_heldout_file, exclude=exclude)


RUNTIME_FIELDS = ("score_generation_batch_size", "score_backend", "score_generation_dtype", "score_eval_base")
"""SCoRe fields that change how a run goes, not what it makes (a rerun may change them)."""

GRPO_FIELDS = ("system_prompt", "learning_rate", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps",
               "weight_decay", "max_grad_norm", "optim", "per_device_train_batch_size", "gradient_accumulation_steps",
               "steps_per_generation", "generation_batch_size", "num_generations", "num_iterations",
               "max_completion_length", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "beta",
               "epsilon", "epsilon_high", "delta", "loss_type", "scale_rewards", "importance_sampling_level",
               "use_bias_correction_kl", "vllm_importance_sampling_correction", "mask_truncated_completions", "top_entropy_quantile", "max_steps", "chat_template_kwargs",
               "completion_prefix", "seed")
"""The GRPO hyperparameters that shape the trained model."""


def settings(config: ScoreConfig, model_config: ModelConfig) -> dict[str, Any]:
    """What shapes a SCoRe run's stages and evaluation (:func:`pasr.baselines.common.hold_settings`): the base model,
    the training questions, every ``score_*`` field but :data:`RUNTIME_FIELDS`, the GRPO hyperparameters."""
    from dataclasses import fields

    own = [f.name for f in fields(config) if f.name.startswith("score_") and f.name not in RUNTIME_FIELDS]
    return common.run_settings(config, model_config, [*common.DATA_FIELDS, *own, *GRPO_FIELDS])


def _read_log(path: Path) -> dict[str, dict]:
    """Logged evaluations by model (``base``, ``trained``) (:func:`pasr.baselines.common.read_run_log`)."""
    return common.read_run_log(path, "model", common.text, "text")


def run_score(
    config: ScoreConfig,
    model_config: ModelConfig,
    *,
    backend_factory: BackendFactory | None = None,
    scorer: Any = None,
    console: Any = None,
) -> ScoreResult:
    """Evaluate the base model, train SCoRe's stage I and stage II, evaluate the trained model.

    Holds OUTPUT_DIR as its only writer (:class:`pasr.run_folder.RunLock`); a rerun resumes (finished stages and
    logged evaluations are reused). ``scorer``: the caller's (not closed here), default
    :func:`pasr.scoring.build_scorer` of ``config``; ``backend_factory``: held-out generation (default
    ``score_backend``).
    """
    if model_config.use_peft:
        raise PasrError("use_peft: SCoRe's stage II needs the base model as its reference, and with LoRA TRL's "
                        "reference is the adapter-free model, i.e. stage I's merged model; train SCoRe without LoRA")
    with RunLock(config.output_dir, COMMAND, option="output_dir", distributed=True):
        return _run_score(config, model_config, backend_factory, scorer, console)


def _run_score(config: ScoreConfig, model_config: ModelConfig, factory, scorer, console) -> ScoreResult:
    from pasr.models import resolve
    from pasr.train.data import load_training_records

    run = common.start_run(config, model_config, console)
    state, main, say, base, output = run.state, run.main, run.say, run.base, run.output
    log_path, final = output / LOG_FILE, output / "final"

    records = load_training_records(config)
    heldout = heldout_records(config, exclude={r.question for r in records})
    common.check_records(config, records, heldout, config.score_heldout_benchmark)
    common.hold_settings(output, settings(config, model_config), main=main)
    say(f"SCoRe: {len(records)} training questions, G={config.num_generations}, stage I {config.stage_steps(1)} "
        f"steps + stage II {config.stage_steps(2)} steps, {len(heldout)} held-out, from {base}", highlight=False)

    done = _read_log(log_path)
    evaluations = [done[k] for k in ("base", "trained") if k in done]
    max_tokens = config.score_max_new_tokens or config.max_completion_length

    def evaluate(name: str, path: str, extra: dict | None = None) -> None:
        t0 = time.perf_counter()
        found = heldout_rounds(slot.get(path), heldout, scorer, method="score", rounds=1, max_tokens=max_tokens,
                               batch_size=config.score_generation_batch_size, progress=progress,
                               label=f"held-out, {name} model")
        row = {"model": name, "path": path, **found, **(extra or {}), "seconds": round(time.perf_counter() - t0, 1)}
        evaluations.append(row)
        if main:
            append_jsonl(log_path, [row])
        accs = " -> ".join(f"{r['accuracy']:.3f}" for r in row["rounds"])
        say(f"{name} model: held-out accuracy attempt 1 -> 2: {accs} (fixed {row['fixed']}, broken "
            f"{row['broken']})", highlight=False)

    with common.run_scorer(config, scorer) as scorer, \
            BackendSlot(factory or default_backend_factory(config)) as slot, run.progress() as progress:
        if config.score_eval_base and heldout and "base" not in done:
            evaluate("base", base)
        if not is_saved_model(final):
            slot.close()
            reference = resolve(base)
            stage1 = train_stage(config, model_config, 1, records, scorer, reference, reference, output, say)
            stage2 = train_stage(config, model_config, 2, records, scorer, str(stage1), reference, output, say)
            if main:
                os.replace(stage2, final)
            state.wait_for_everyone()
        if heldout and "trained" not in done:
            evaluate("trained", str(final), {"stage_steps": [config.stage_steps(1), config.stage_steps(2)]})

    seconds = run.seconds()
    rows = summary_rows(evaluations)
    if main:
        summary = {"model_dir": str(final), "base": base, "alpha": config.score_alpha,
                   "first_kl": [config.first_kl(1), config.first_kl(2)], "beta": config.beta,
                   "stage_steps": [config.stage_steps(1), config.stage_steps(2)], "evaluations": evaluations,
                   "rows": rows}
        common.write_summary(output / SUMMARY_FILE, summary, seconds)
    state.wait_for_everyone()
    return ScoreResult(model_dir=str(final), log_path=str(log_path), seconds=seconds, rows=rows,
                       evaluations=evaluations)


Config = ScoreConfig
"""The registry protocol (:mod:`pasr.baselines.registry`): the config dataclass of ``pasr baseline score``."""
run = run_score
"""The registry protocol: ``run(config, model_config, *, backend_factory=None, scorer=None, console=None)``."""

__all__ = ["COMMAND", "Config", "ScoreConfig", "ScoreResult", "ScoreRewards", "ScoreTrainer", "bridge_ids",
           "build_trainer", "check_score_values", "heldout_records", "join_attempts", "run", "run_score",
           "score_rollout", "settings", "stage_config", "stage_rewards", "summary_rows", "train_stage"]
