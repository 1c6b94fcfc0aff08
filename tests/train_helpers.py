"""Shared pieces of the training tests (also imported by the two-process script)."""

from __future__ import annotations

from pasr.data.records import Record


class LengthScorer:
    """A deterministic stand-in scorer with varied values: (characters mod 7) / 6.

    A tiny random model never answers right, so a real scorer would give all zeros and
    could not tell whether baselines were grouped and sliced correctly.
    """

    judge = None

    def __init__(self):
        self.calls = 0

    def score_many(self, tasks, responses, references, questions=None):
        self.calls += 1
        return [(len(r) % 7) / 6 for r in responses]

    def close(self):
        pass


class AlwaysRight:
    """Scores every answer 1: lets a random model's answers through so a baseline's real pipeline runs."""

    judge = None

    def score_many(self, tasks, responses, references, questions=None):
        return [1.0] * len(responses)

    def close(self):
        pass


def generate_with(model_dir, max_tokens: int = 3, system: str | None = None, question: str = "What is 1 + 1?"):
    """``(text, tokens)`` of one greedy answer from the saved model in ``model_dir`` (the eval backend loads it)."""
    from pasr.generation.backends import make_backend
    from pasr.models import resolve
    from pasr.prompts import STANDARD_SYSTEM_PROMPT, chat

    backend = make_backend("transformers", resolve(str(model_dir)), batch_size=1, dtype="float32")
    try:
        [(text, tokens)] = backend.generate([chat(system or STANDARD_SYSTEM_PROMPT, question, "arith")], max_tokens)
    finally:
        backend.close()
    assert 1 <= tokens <= max_tokens and isinstance(text, str)
    return text, tokens


def tiny_records(n: int = 8) -> list[Record]:
    return [Record(id=f"q{i}", question=f"What is {i} + {i + 1}?", reference=str(2 * i + 1), task="arith") for i in range(n)]


def tiny_config(output_dir, **overrides):
    from pasr.train.config import PasrGRPOConfig

    values = dict(
        output_dir=str(output_dir),
        max_steps=2,
        num_generations=4,
        per_device_train_batch_size=8,
        max_completion_length=8,
        use_cpu=True,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        baseline_samples=4,
        lazy_baseline=False,
        learning_rate=1e-4,
        beta=0.0,
        seed=0,
        bf16=False,
        cpu_bf16_generation=False,
        dataloader_num_workers=0,
    )
    values.update(overrides)
    return PasrGRPOConfig(**values)
