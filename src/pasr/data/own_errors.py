"""Warm-up examples whose refines follow the model's *own* mistakes, not planted slips.

Why: a warm-up on planted slips taught the built-in model to refine as a style (most of its refines were
vacuous, "11 + 3 = 14, not 14"). Here a model that already writes the format (a warm-up without refines)
samples solutions of training problems; where it really got an equation wrong, its own text is kept up to
that equation and a ``<refine>`` fixes it (:func:`pasr.data.synthetic.splice_refine`). A smaller share of the
examples refine, and each refine sits where this model's errors occur.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from pasr.data.records import Record
from pasr.errors import PasrError


def own_error_examples(
    records: list[Record],
    texts: list[str],
    *,
    refine_share: float = 0.3,
    standard_share: float = 0.25,
    seed: int = 0,
    fill: list[Record] | None = None,
) -> tuple[list[dict], dict[str, Any]]:
    """Chat examples from the model's sampled ``texts`` (one per record) and counts of what was found.

    Every spliced refine is kept; clean worked solutions of the other records, then of ``fill``, make the
    refines ``refine_share`` of the PASR-prompt examples, and standard-prompt clean solutions are added so they
    make ``standard_share`` of the whole (as in :func:`pasr.data.synthetic.warmup_examples`).
    """
    from pasr.data import synthetic
    from pasr.format import parse
    from pasr.prompts import PASR_SYSTEM_PROMPT, chat
    from pasr.scoring import default_scorer, score_records

    if len(records) != len(texts):
        raise PasrError(f"{len(records)} records but {len(texts)} sampled texts")
    if not 0.0 < refine_share <= 1.0:
        raise PasrError(f"refine_share must be in (0, 1], got {refine_share}")
    if not 0.0 <= standard_share < 1.0:
        raise PasrError(f"standard_share must be in [0, 1), got {standard_share}")
    rng = random.Random(f"pasr-own-errors:{seed}")
    spliced, unused, right = [], [], 0
    scores = score_records(default_scorer(), records, texts)
    for record, text, accuracy in zip(records, texts, scores):
        correct = accuracy >= 0.5
        right += correct
        fixed = synthetic.splice_refine(record, text, rng=rng)  # any wrong equation, even if the answer is right
        if fixed is None:
            unused.append(record)
            continue
        trace = parse(fixed)
        if not (trace.valid and trace.refined):
            raise AssertionError(f"spliced solution for {record.id} breaks the PASR format: {trace.violations}")
        spliced.append({"prompt": chat(PASR_SYSTEM_PROMPT, record.question, record.task),
                        "completion": [{"role": "assistant", "content": fixed}], "id": record.id, "kind": "refine"})
    if not spliced:
        raise PasrError(f"none of the {len(records)} sampled solutions ({right} right answers) has a wrong equation to "
                        "splice a refine after; does the model write the <think> format?")
    unused += [r for r in fill or [] if r.id not in {s["id"] for s in spliced}]
    n_pasr = round(len(spliced) / refine_share)
    n_clean = min(len(unused), n_pasr - len(spliced))
    n_standard = min(len(unused) - n_clean, round(standard_share / (1 - standard_share) * (len(spliced) + n_clean)))
    clean = synthetic.warmup_examples(unused[: n_clean + n_standard], refine_share=0.0, seed=seed,
                                      standard_share=n_standard / max(1, n_clean + n_standard))
    examples = spliced + clean
    rng.shuffle(examples)
    kinds = Counter(e["kind"] for e in examples)
    stats = {"sampled": len(records), "sample_accuracy": right / max(1, len(records)),
             "wrong_answers": len(records) - right, "spliced": len(spliced), **{f"{k}_examples": v for k, v in kinds.items()}}
    return examples, stats


def sample_solutions(model: str, records: list[Record], *, temperature: float = 0.9, max_tokens: int = 128,
                     batch_size: int = 16, seed: int = 0) -> list[str]:
    """One PASR-prompt solution per record from ``model`` (transformers backend, continuous batching)."""
    from pasr.generation.runtime import BackendSlot, backend_factory
    from pasr.prompts import PASR_SYSTEM_PROMPT, chat

    with BackendSlot(backend_factory("transformers", batch_size=batch_size, seed=seed)) as slot:
        outputs = slot.get(model).generate([chat(PASR_SYSTEM_PROMPT, r.question, r.task) for r in records],
                                           max_tokens, temperature)
    return [text for text, _ in outputs]


__all__ = ["own_error_examples", "sample_solutions"]
