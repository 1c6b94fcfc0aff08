"""Training questions: from the built-in task (its ``synthetic_family``: arith or sums), a benchmark spec, WizardLM
or a local file, into a TRL dataset.

Everything here runs before any model is loaded, so bad data fails in seconds.
"""

from __future__ import annotations

from typing import Any

from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.prompts import chat

WIZARDLM_HUB_ID = "WizardLMTeam/WizardLM_evol_instruct_70k"
"""The paper's training data (it filtered the 70k pairs to about 40k); answers are judged (task 'open')."""


def parse_field_mapping(text: str | None) -> dict[str, str] | None:
    """'question=instruction,reference=output' -> {'question': 'instruction', 'reference': 'output'}."""
    if not text:
        return None
    mapping = {}
    for part in text.split(","):
        if "=" not in part:
            raise PasrError(f"data_fields: {part!r} is not of the form record_field=file_field")
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in ("id", "question", "reference"):
            raise PasrError(f"data_fields: {key!r} is not a record field (id, question, reference)")
        mapping[key] = value
    return mapping


def load_training_records(config: Any) -> list[Record]:
    """The training records a config names (train splits only; evaluation never sees them)."""
    from pasr.data import benchmarks, synthetic
    from pasr.data.records import read_records

    name = config.dataset
    if name == "synthetic":
        family = synthetic.check_family(getattr(config, "synthetic_family", None) or "arith", "synthetic_family")
        records = synthetic.generate_family(
            family, config.train_size or 2000, seed=config.seed + config.data_seed_offset, split="train",
            difficulty=config.synthetic_difficulty,
        )
    elif config.data_file:
        fields = parse_field_mapping(config.data_fields)
        if name == "wizardlm":
            fields = fields or {"question": "instruction", "reference": "output"}
        task = config.data_task or ("open" if name == "wizardlm" else None)
        if name not in ("file", "wizardlm") and name in benchmarks.BENCHMARKS:
            records = benchmarks.load_benchmark(name, data_file=config.data_file)
        else:
            if task is None:
                raise PasrError(f"--data_file {config.data_file}: set --data_task (the answer family of its records)")
            records = read_records(config.data_file, fields=fields, task=task)
    elif name == "wizardlm":
        records = load_wizardlm()
    elif name in benchmarks.BENCHMARKS:
        records = benchmarks.load_benchmark(name)
    else:
        raise PasrError(
            f"unknown training dataset {name!r}: use 'synthetic', 'wizardlm', 'file' with --data_file, "
            f"or one of {', '.join(sorted(benchmarks.BENCHMARKS))}"
        )
    if config.train_size is not None and name != "synthetic":
        import random

        rng = random.Random(config.seed + config.data_seed_offset)
        records = rng.sample(records, min(config.train_size, len(records)))
    return records


def load_wizardlm() -> list[Record]:
    """WizardLM evol-instruct 70k from the hub (users with internet)."""
    from pasr import hub

    rows = hub.load_dataset(WIZARDLM_HUB_ID, split="train", what="wizardlm",
                            hint="Offline? Pass --data_file with a local copy of its JSON (WizardLM_evol_instruct_70k).")
    return [
        Record(id=f"wizardlm-{i}", question=row["instruction"], reference=row["output"], task="open")
        for i, row in enumerate(rows)
    ]


def records_to_dataset(records: list[Record], system_prompt: str):
    """A ``datasets.Dataset`` in TRL's conversational prompt format plus the columns the rewards read."""
    import datasets

    return datasets.Dataset.from_list(
        [
            {
                "prompt": chat(system_prompt, r.question, r.task),
                "question": r.question,
                "reference": r.reference,
                "task": r.task,
                "id": r.id,
            }
            for r in records
        ]
    )
