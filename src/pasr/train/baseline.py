"""The refine reward's baseline: standard samples from the *current* policy, per question.

PASR compares a refining completion's accuracy with the mean accuracy of n standard
responses (plain system prompt, no refine instructions) to the same question. They are
generated through the trainer's own generation path (:func:`pasr.train.trl_adapter.tokenize_prompts` and
:func:`~pasr.train.trl_adapter.generate_single_turn`), so transformers generation on CPU, vLLM colocate and vLLM
server mode all work, with the same sampling settings as the rollouts. They are scored
but never trained on.

Layout. TRL lays a global batch out as consecutive groups of G completion slots per
question, concatenated over ranks in rank order; a group may span ranks. Each local slot
asks for ``m = ceil(n / G)`` standard samples, so the gathered request list holds runs of
``m * G`` identical prompts per question, which is the layout vLLM server mode expects
(it generates once per run). After scoring, accuracies are gathered, grouped per question,
cut to the first n, and each slot gets its question's list back (the same slicing TRL
uses for advantages).

That path is TRL private API, reached only through :mod:`pasr.train.trl_adapter`; pasr pins trl==1.16.0 and
``tests/test_trl_adapter.py`` fails loudly when that API changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from accelerate.utils import gather_object

from pasr.train.trl_adapter import generate_single_turn, tokenize_prompts


def samples_per_slot(baseline_samples: int, group_size: int) -> int:
    """Standard samples each completion slot generates so that a group yields at least n."""
    return max(1, math.ceil(baseline_samples / group_size))


def group_baselines(
    slot_accuracies: Sequence[Sequence[float]], group_size: int, baseline_samples: int
) -> list[list[float]]:
    """Per global slot, its question's first ``baseline_samples`` standard-sample accuracies.

    ``slot_accuracies`` is the global (gathered) list, one entry per completion slot, each the
    accuracies of the standard samples that slot generated.
    """
    if len(slot_accuracies) % group_size:
        raise ValueError(f"{len(slot_accuracies)} slots do not split into groups of {group_size}")
    per_slot: list[list[float]] = []
    for start in range(0, len(slot_accuracies), group_size):
        pooled = [acc for slot in slot_accuracies[start : start + group_size] for acc in slot]
        question_baseline = pooled[:baseline_samples]
        per_slot.extend([list(question_baseline)] * group_size)
    return per_slot


class StandardBaseline:
    """Generates and scores the standard samples of a batch through a bound GRPO trainer."""

    def __init__(self, trainer: Any, baseline_samples: int):
        self.trainer = trainer
        self.baseline_samples = baseline_samples
        self.group_size = trainer.num_generations

    def generate(self, standard_prompts: Sequence[list[dict[str, str]]]) -> list[list[str]]:
        """Standard completions for each local slot (``m`` per slot), decoded to text."""
        trainer = self.trainer
        m = samples_per_slot(self.baseline_samples, self.group_size)
        requests = [prompt for prompt in standard_prompts for _ in range(m)]
        prompt_ids, images, multimodal_fields = tokenize_prompts(trainer, requests)
        completion_ids, _ = generate_single_turn(trainer, prompt_ids, images, multimodal_fields, m * self.group_size)
        texts = trainer.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
        return [texts[i * m : (i + 1) * m] for i in range(len(standard_prompts))]

    def baselines(
        self,
        standard_prompts: Sequence[list[dict[str, str]]],
        score: Callable[[list[int], list[str]], list[float]],
    ) -> tuple[list[list[float]], list[list[str]], list[list[float]]]:
        """Baseline accuracy lists for the local slots.

        ``score(slot_indices, texts)`` scores standard completions of the given local slots.
        Returns (per-slot question baselines, per-slot own samples, per-slot own sample accuracies).
        """
        samples = self.generate(standard_prompts)
        flat_slots = [i for i, texts in enumerate(samples) for _ in texts]
        flat_texts = [t for texts in samples for t in texts]
        flat_scores = score(flat_slots, flat_texts)
        own_scores: list[list[float]] = [[] for _ in samples]
        for slot, value in zip(flat_slots, flat_scores):
            own_scores[slot].append(value)
        global_scores = gather_object([own_scores])  # one entry per rank, in rank order
        global_slots = [slot for rank_slots in global_scores for slot in rank_slots]
        per_slot = group_baselines(global_slots, self.group_size, self.baseline_samples)
        rank = self.trainer.accelerator.process_index
        local = slice(rank * len(standard_prompts), (rank + 1) * len(standard_prompts))
        return per_slot[local], samples, own_scores
