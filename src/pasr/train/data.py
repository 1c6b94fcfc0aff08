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


def check_records(records: list[Record], config: Any, *, what: str | None = None) -> None:
    """Fail before any model is loaded on data the scorer cannot score: empty data, unknown tasks, open-ended
    questions (or ``judge_all``) without a judge. ``what`` names the data in the message (default: the training
    data, ``config.dataset``). Used by ``pasr train`` and every trained baseline
    (:func:`pasr.baselines.common.check_records`)."""
    from pasr.scoring import family

    what = what or f"the training data ({config.dataset})"
    if not records:
        raise PasrError(f"{what} is empty")
    for task in sorted({r.task for r in records}):
        try:
            family(task)  # an answer family or a benchmark name
        except PasrError as err:
            raise PasrError(f"{what}: {err}") from None
    if not getattr(config, "judge_url", None) and any(r.task == "open" for r in records):
        raise PasrError(
            f"{what} has open-ended questions (task 'open'), which need the LLM judge: "
            "set --judge_url and --judge_model (e.g. a `vllm serve` endpoint)"
        )
    if getattr(config, "judge_all", False) and not getattr(config, "judge_url", None):
        raise PasrError("judge_all needs a judge: set --judge_url and --judge_model")


def load_training_records(config: Any) -> list[Record]:
    """The training records a config names: the built-in task's train split, a file, WizardLM, or a benchmark's
    training split (:func:`pasr.data.benchmarks.training_split`; a benchmark without one is refused), never the
    split pasr evaluates on."""
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
        records = benchmarks.load_benchmark(name, split=benchmarks.training_split(name))
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
