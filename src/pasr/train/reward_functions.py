"""PASR's three rewards as TRL reward functions, sharing one scoring pass per completion.

TRL calls each reward function in turn on the same local batch. ``format`` and
``accuracy`` fill a per-batch cache; ``refine`` (always last) reads it, generates the
standard-sample baseline when needed, gathers the batch across ranks, logs the PASR
metrics and writes the rollout log. The arithmetic of each reward lives in
:mod:`pasr.rewards` and :mod:`pasr.format`; this module only wires it into TRL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import torch
from accelerate.utils import gather_object

from pasr.format import parse
from pasr.prompts import STANDARD_SYSTEM_PROMPT, chat
from pasr.rewards import RewardWeights, refine_reward, total_reward
from pasr.scoring.agreement import agreement_from_lines, score_value
from pasr.train.baseline import StandardBaseline
from pasr.train.rollout_log import RolloutLog
from pasr.train.trl_adapter import reward_metric_logger, reward_step

log = logging.getLogger(__name__)


def completion_text(completion: Any) -> str:
    """The assistant text of a TRL completion (conversational or plain)."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")
    return str(completion)


class PasrRewards:
    """The reward functions of one PASR run, bound to its trainer after construction.

    ``mode='none'`` gives the plain-GRPO control: format and accuracy rewards only, with
    the same logging, so both arms are measured the same way.
    """

    def __init__(
        self,
        scorer: Any,
        *,
        mode: str = "comparison",
        zeta: float = 0.0,
        baseline_samples: int = 8,
        lazy: bool = True,
        weights: RewardWeights | None = None,
        rollout_log: RolloutLog | None = None,
        standard_system_prompt: str = STANDARD_SYSTEM_PROMPT,
        completion_prefix: str = "",
        judge_agreement: bool = False,
    ):
        self.scorer = scorer
        self.mode = mode
        self.zeta = zeta
        self.baseline_samples = baseline_samples
        self.lazy = lazy
        self.weights = weights or RewardWeights()
        self.rollout_log = rollout_log
        self.standard_system_prompt = standard_system_prompt
        self.completion_prefix = completion_prefix  # what the chat template prefills (e.g. '<think>\n')
        # Score with both the judge and the rules, to log their agreement (a metric; the reward is unchanged).
        judge_all = bool(getattr(scorer, "judge_all", False))
        self.agreement = getattr(scorer, "judge", None) is not None and (judge_all or judge_agreement)
        self._sides: list[dict[str, float | None]] | None = None
        self.trainer: Any = None
        self._batch_key: tuple | None = None
        self._traces: list = []
        self._accuracy: list[float] | None = None
        self._errors: dict[int, str] = {}  # completion index -> why its scoring failed (it scored 0)
        self.baseline_generations = 0  # steps on which the baseline was generated (lazy skips the rest)

    def bind(self, trainer: Any) -> None:
        self.trainer = trainer

    def functions(self) -> list:
        """The callables to pass to ``GRPOTrainer(reward_funcs=...)``, in weight order."""
        funcs = [self.format_reward, self.accuracy_reward]
        if self.mode != "none":
            funcs.append(self.refine_reward)
        return funcs

    # -- shared per-batch state ------------------------------------------------------

    def _prepare(self, completions: Sequence[Any]) -> list[str]:
        texts = [completion_text(c) for c in completions]
        key = (id(completions), tuple(texts))  # TRL passes one list object to every reward function of a batch
        if key != self._batch_key:
            self._batch_key = key
            self._traces = [parse(t, prefix=self.completion_prefix) for t in texts]
            self._accuracy = None
            self._sides = None
            self._errors = {}
        return texts

    def _accuracies(self, texts, question, reference, task, log_metric=None) -> list[float]:
        if self._accuracy is None:
            start = time.perf_counter()
            if self.agreement:
                self._accuracy, self._sides, self._errors = score_with_agreement(
                    self.scorer, task, texts, reference, question
                )
            else:
                self._accuracy, self._errors = score_batch(self.scorer, task, texts, reference, question)
            if log_metric is not None:
                log_metric("time/scoring", time.perf_counter() - start)
        return self._accuracy

    # -- the TRL reward functions ---------------------------------------------------------

    def format_reward(self, prompts, completions, **kwargs) -> list[float]:
        """+1 for a well-formed think/refine/answer response, -1 otherwise."""
        self._prepare(completions)
        return [1.0 if trace.valid else -1.0 for trace in self._traces]

    def accuracy_reward(self, prompts, completions, question, reference, task, **kwargs) -> list[float]:
        """Score in [0, 1] of the answer against the reference (rule-based or judge)."""
        texts = self._prepare(completions)
        accuracies = self._accuracies(texts, question, reference, task, reward_metric_logger(kwargs))
        if self.mode == "none":
            self._finish_batch(prompts, texts, question, reference, task, None, None, kwargs)
        return list(accuracies)

    def refine_reward(self, prompts, completions, question, reference, task, **kwargs) -> list[float]:
        """Comparison of a refining completion with the standard-sample baseline (0 when it does not refine)."""
        texts = self._prepare(completions)
        log_metric = reward_metric_logger(kwargs)
        accuracies = self._accuracies(texts, question, reference, task, log_metric)
        refined = [trace.refined for trace in self._traces]
        baselines = samples = None
        if self.mode in ("comparison", "single") and self._needs_baseline(refined):
            start = time.perf_counter()
            baselines, samples = self._baseline(question, reference, task, log_metric)
            if log_metric is not None:
                log_metric("time/baseline_generation", time.perf_counter() - start)
        rewards = [
            refine_reward(acc, baselines[i] if baselines else [], was_refined, zeta=self.zeta, mode=self.mode)
            if was_refined
            else 0.0
            for i, (acc, was_refined) in enumerate(zip(accuracies, refined))
        ]
        self._finish_batch(prompts, texts, question, reference, task, baselines, samples, kwargs, rewards)
        return rewards

    # -- baseline -------------------------------------------------------------------------

    def _needs_baseline(self, refined: list[bool]) -> bool:
        if not self.lazy:
            return True
        # Every rank must take the same branch: generation is collective under vLLM and DDP.
        local = torch.tensor([float(any(refined))], device=self.trainer.accelerator.device)
        return bool(self.trainer.accelerator.gather(local).sum().item() > 0)

    def _baseline(self, question, reference, task, log_metric):
        self.baseline_generations += 1
        prompts = [chat(self.standard_system_prompt, q, t) for q, t in zip(question, task)]

        def score(slots: list[int], texts: list[str]) -> list[float]:
            return score_batch(
                self.scorer, [task[s] for s in slots], texts, [reference[s] for s in slots], [question[s] for s in slots]
            )[0]

        baseline = StandardBaseline(self.trainer, self.baseline_samples)
        per_slot, samples, own_scores = baseline.baselines(prompts, score)
        return per_slot, list(zip(samples, own_scores))

    # -- metrics and rollout log ----------------------------------------------------------

    def _finish_batch(self, prompts, texts, question, reference, task, baselines, samples, kwargs, refine_r=None):
        """Gather the batch, log PASR metrics (identical on every rank) and append the rollout log."""
        accuracies = self._accuracy or []
        rows = []
        for i, text in enumerate(texts):
            trace = self._traces[i]
            format_r = 1.0 if trace.valid else -1.0
            ref_r = refine_r[i] if refine_r is not None else 0.0
            rows.append(
                {
                    "question": question[i],
                    "reference": reference[i],
                    "task": task[i],
                    "id": kwargs.get("id", [None] * len(texts))[i],
                    "completion": text,
                    "trace": trace.to_dict(),
                    "accuracy": accuracies[i],
                    "baseline": baselines[i] if baselines else None,
                    "baseline_samples": (
                        [{"text": t, "accuracy": a} for t, a in zip(*samples[i])] if samples else None
                    ),
                    "rewards": {"format": format_r, "accuracy": accuracies[i], "refine": ref_r},
                    "total": total_reward(format_r, accuracies[i], ref_r, self.weights),
                    "rank": self.trainer.accelerator.process_index if self.trainer else 0,
                }
            )
            if i in self._errors:
                rows[-1]["scoring_error"] = self._errors[i]
            if self._sides is not None:
                rows[-1]["scores"] = self._sides[i]
        all_rows = gather_object(rows) if self.trainer is not None else rows
        step = reward_step(kwargs)
        for row in all_rows:
            row["step"] = step
        log_metric = reward_metric_logger(kwargs)
        if log_metric is not None:
            for name, value in batch_metrics(all_rows, self.scorer).items():
                log_metric(name, value)
        if self.rollout_log is not None and (self.trainer is None or self.trainer.accelerator.is_main_process):
            self.rollout_log.append(all_rows)


def score_batch(scorer: Any, tasks, texts, references, questions) -> tuple[list[float], dict[int, str]]:
    """``(accuracies, errors)`` of a batch; a completion whose scoring fails scores 0 and is named in ``errors``.

    The scorer already isolates per-response failures; should the whole call still raise
    (a reference the scorer rejects, a judge that breaks), the batch is scored item by item
    so only the items that fail get 0. A score that is not a number in [0, 1] (a custom scorer's None,
    NaN, 1.5, a string), or a batch of the wrong length, counts as a failure of that item too. A training
    run never ends on one completion's score.
    """
    try:
        if hasattr(scorer, "score_many_with_errors"):
            scores, errors = scorer.score_many_with_errors(tasks, texts, references, questions)
            scores, errors = list(scores), dict(errors)
        else:
            scores, errors = list(scorer.score_many(tasks, texts, references, questions)), {}
        if len(scores) != len(texts):
            raise ValueError(f"the scorer returned {len(scores)} scores for {len(texts)} completions")
        return _checked_scores(scores, errors)
    except Exception as exc:  # noqa: BLE001 - isolate the culprit below
        log.warning("scoring the batch failed (%s: %s); scoring item by item", type(exc).__name__, exc)
    scores = []
    errors = {}
    for i in range(len(texts)):
        try:
            one = scorer.score_many([tasks[i]], [texts[i]], [references[i]], [questions[i]])[0]
        except Exception as exc:  # noqa: BLE001
            one, errors[i] = 0.0, f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("scoring completion %d failed, scoring 0: %s", i, errors[i])
        scores.append(one)
    return _checked_scores(scores, errors)


def _checked_scores(scores: list, errors: dict[int, str]) -> tuple[list[float], dict[int, str]]:
    """``scores`` as floats, each one that is not a finite number in [0, 1] replaced by 0 and named in ``errors``."""
    checked: list[float] = []
    for i, value in enumerate(scores):
        number = score_value(value)
        if number is None:
            errors[i] = f"the scorer returned {value!r:.60}, not a number in [0, 1]"
            log.warning("completion %d: %s; scoring 0", i, errors[i])
            number = 0.0
        checked.append(number)
    return checked, errors


def score_with_agreement(scorer: Any, tasks, texts, references, questions):
    """``(accuracies, sides, errors)``: the accuracies :func:`score_batch` gives, plus both scorers' scores per
    completion (``sides[i] = {"rule": float|None, "judge": float|None}``) for the agreement metrics.

    One :meth:`pasr.scoring.Scorer.score_sides` pass asks the judge and the rules; the accuracy is what the
    run's scorer would give on its own (the judge's for ``judge_all`` and task ``open``, its fallback when it
    failed; the rule's otherwise), so logging agreement never changes the reward. Should that pass raise,
    the batch is scored as :func:`score_batch` scores it, without sides.
    """
    try:
        sides = scorer.score_sides(tasks, texts, references, questions, rule=True, judge=True)
    except Exception as exc:  # noqa: BLE001 - the metric is optional; the reward is not
        log.warning("scoring for the judge-vs-rule agreement failed (%s: %s); scoring as usual",
                    type(exc).__name__, exc)
        accuracies, errors = score_batch(scorer, tasks, texts, references, questions)
        return accuracies, None, errors
    return scorer.primary(sides), [{"rule": r, "judge": j} for r, j in zip(sides.rule, sides.judge)], sides.errors


def batch_metrics(rows: list[dict], scorer: Any = None) -> dict[str, float]:
    """PASR's per-step metrics over a gathered batch of rollout rows."""
    n = len(rows)
    refining = [r for r in rows if r["trace"]["refined"]]
    plain = [r for r in rows if not r["trace"]["refined"]]
    metrics = {
        "scoring/errors": float(sum("scoring_error" in r for r in rows)),
        "pasr/refine_rate": len(refining) / n,
        "pasr/refines_per_completion": sum(len(r["trace"]["refines"]) for r in rows) / n,
        "pasr/format_valid_rate": sum(r["trace"]["valid"] for r in rows) / n,
        "pasr/accuracy": sum(r["accuracy"] for r in rows) / n,
    }
    if refining:
        metrics["pasr/accuracy_refining"] = sum(r["accuracy"] for r in refining) / len(refining)
    if plain:
        metrics["pasr/accuracy_non_refining"] = sum(r["accuracy"] for r in plain) / len(plain)
    with_baseline = [r for r in rows if r["baseline"]]
    if with_baseline:
        metrics["pasr/baseline_accuracy"] = sum(sum(r["baseline"]) / len(r["baseline"]) for r in with_baseline) / len(
            with_baseline
        )
    agreement = agreement_from_lines(rows)
    if agreement is not None:  # judge-vs-rule agreement on this batch: the reward's noise (a metric only)
        metrics["judge/agreement"] = agreement["agree"]
        if agreement["kappa"] is not None:
            metrics["judge/kappa"] = agreement["kappa"]
        metrics["judge/judge_right_rule_wrong"] = agreement["judge_right_rule_wrong"] / agreement["n"]
        metrics["judge/judge_wrong_rule_right"] = agreement["judge_wrong_rule_right"] / agreement["n"]
    judge = getattr(scorer, "judge", None)
    if judge is not None:
        metrics["judge/failures"] = float(getattr(judge, "failures", 0))
        metrics["judge/rate_limited"] = float(getattr(judge, "rate_limited", 0))
        metrics["judge/rate_limit_wait_s"] = float(getattr(judge, "rate_limit_wait_s", 0.0))
    return metrics
