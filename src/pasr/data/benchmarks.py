"""Evaluation benchmarks as small declarative specs, loaded from a local file, a data folder or the hub.

A :class:`BenchmarkSpec` says where a benchmark lives (hub id, config, split), which fields hold the question
and the reference, how the answer is scored (``task``), and, where a hub dataset keeps its choices apart from
the question, a ``build_question`` hook that inlines them the way the PASR authors' files do. Adding a
benchmark is one entry in :data:`BENCHMARKS`.

Sources, first match wins: ``data_file``; ``data_dir/<local_file>`` (the layout of the authors' data folder:
gsm8k.jsonl, math.json, aime24.jsonl, arc.jsonl, gpqa.jsonl, ...); the hub (``datasets.load_dataset``, needs internet;
offline, as :mod:`pasr.hub` decides, only what the local datasets cache holds, and a missing one fails at once).
``synthetic`` and ``sums`` are generated (the built-in task's held-out split, of its ``arith`` and ``sums``
families) and need neither.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasr.data.gpqa import read_gpqa
from pasr.data.records import Record, read_records
from pasr.errors import PasrError

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark comes from and how its rows become :class:`Record` s.

    ``question_field``/``reference_field``/``id_field`` name hub fields; ``local_fields`` maps record fields
    to the local file's fields when they differ from the hub's (read by :func:`pasr.data.records.read_records`).
    ``build_question``/``build_reference`` take a hub row and return the text, for datasets that keep choices
    or answer alternatives in separate fields; ``build_meta`` takes a hub row and returns extra ``meta``.
    ``read_local`` reads a local file whose layout is its own (instead of
    :func:`~pasr.data.records.read_records` with ``local_fields``). ``reference_transform`` names an entry
    of :data:`REFERENCE_TRANSFORMS` applied to every reference, whatever the source.
    """

    name: str
    task: str
    hub_id: str | None = None
    hub_config: str | None = None
    split: str = "test"
    train_split: str | None = None
    """The hub split ``pasr train --dataset NAME`` (and the trained baselines) train on, never the evaluation
    ``split``; None: the benchmark has no training split of its own (:func:`training_split` refuses it)."""
    question_field: str = "question"
    reference_field: str = "answer"
    id_field: str | None = None
    local_file: str | None = None
    local_fields: Mapping[str, str] = field(default_factory=dict)
    build_question: Callable[[Mapping[str, Any]], str] | None = None
    build_reference: Callable[[Mapping[str, Any]], str] | None = None
    build_meta: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    read_local: Callable[[Path], list[Record]] | None = None
    reference_transform: str | None = None
    description: str = ""
    generated: bool = False
    size: int | None = None
    """Rows in the full set, where fixed (the generated set's size; documentation for the others)."""

    def record_from_row(self, row: Mapping[str, Any], index: int) -> Record:
        """A hub row as a Record (the conversion the hub path uses; testable without the hub)."""
        where = f"{self.name} ({self.hub_id}) row {index}"
        try:
            question = self.build_question(row) if self.build_question else row[self.question_field]
            reference = self.build_reference(row) if self.build_reference else row[self.reference_field]
            row_id = str(row[self.id_field]) if self.id_field else f"{self.name}-{index}"
            extra = self.build_meta(row) if self.build_meta else {}
        except KeyError as error:
            raise PasrError(f"{where}: missing field {error}; the hub dataset changed shape, "
                            f"use a local file (--data-file) instead") from None
        if not isinstance(question, str) or not question.strip():
            raise PasrError(f"{where}: empty or non-text question")
        if isinstance(reference, (int, float)) and not isinstance(reference, bool):
            reference = str(reference)
        if not isinstance(reference, str):
            raise PasrError(f"{where}: reference is {type(reference).__name__}, expected text")
        record = Record(id=row_id, question=question, reference=reference, task=self.task,
                        meta={**extra, "benchmark": self.name, "source": f"hub:{self.hub_id}"})
        return self.transform(record)

    def transform(self, record: Record) -> Record:
        if self.reference_transform:
            record.reference = REFERENCE_TRANSFORMS[self.reference_transform](record)
        return record


# --- hooks: hub rows -> question / reference text -------------------------------------------


def inline_choices(question: str, labels: list[str], texts: list[str], sep: str = ": ") -> str:
    """``question`` followed by one ``A: text`` line per choice, as the authors' files write them."""
    return question.strip() + "".join(f"\n{label}{sep}{text}" for label, text in zip(labels, texts))


def _arc_question(row: Mapping[str, Any]) -> str:
    return inline_choices(row["question"], list(row["choices"]["label"]), list(row["choices"]["text"]))


def _winogrande_question(row: Mapping[str, Any]) -> str:
    return f"{row['sentence']}\nOption1: {row['option1']}\nOption2: {row['option2']}"


def _mmlu_question(row: Mapping[str, Any]) -> str:
    choices = list(row["choices"])
    return inline_choices(row["question"], list(LETTERS[: len(choices)]), choices, sep=". ")


def _mmlu_reference(row: Mapping[str, Any]) -> str:
    answer = row["answer"]
    return LETTERS[answer] if isinstance(answer, int) else str(answer)


def _drop_question(row: Mapping[str, Any]) -> str:
    return f"{row['passage'].strip()}\nHere is the question: {row['question'].strip()}"


def _drop_reference(row: Mapping[str, Any]) -> str:
    """A ``ucinlp/drop`` row's answers as a DROP reference (encoding: :mod:`pasr.scoring.drop`).

    The hub's loading script (``drop.py`` of huggingface/datasets, ``build_answers``) flattens a row's
    answers into ``answers_spans = {"spans": [...], "types": [...]}``, one entry per number, date or span.
    In the train split that is the row's one answer; in the validation split (the benchmark) it is every
    validated answer in turn (the release's ``validated_answers``), so where one answer's spans end and the
    next answer begins is lost. Read back as: each number and each date is an answer of its own; a run of
    span entries that is k >= 2 copies of one block (the same normalised spans, in any order) is that block
    as one answer (annotators agreeing, on one span or on several); any other run is one single-span
    alternative per span. So ``["Chaz Schilens", "JaMarcus Russell"]`` (a dev question whose two validated
    answers are these, the release's sample) is two alternatives, and ``["Smith", "Jones", "Smith", "Jones"]``
    is the answer with the spans Smith and Jones. A multi-span answer that only one annotator gave, or two
    gave differently, reads as single-span alternatives (scored leniently, as before).
    """
    from pasr.scoring.drop import format_reference  # the scoring package is imported only when needed

    entries = row["answers_spans"]
    spans = [str(span).strip() for span in entries["spans"]]
    types = [str(kind) for kind in (entries.get("types") or [])]
    types += ["span"] * (len(spans) - len(types))
    answers: list[str | list[str]] = []
    run: list[str] = []
    for span, kind in zip(spans, types):
        if kind == "span":
            run.append(span)
            continue
        answers += _drop_span_run(run)
        run = []
        answers.append(span)
    answers += _drop_span_run(run)
    return format_reference(answers)


def _drop_span_run(spans: list[str]) -> list[str | list[str]]:
    """Consecutive span entries of a hub row: one answer if they are k >= 2 copies of a block, else one per span."""
    from pasr.scoring.drop import normalize_answer

    spans = [span for span in spans if span]
    norms = [normalize_answer(span) for span in spans]
    for copies in range(len(spans), 1, -1):
        if len(spans) % copies:
            continue
        size = len(spans) // copies
        blocks = [sorted(norms[i * size:(i + 1) * size]) for i in range(copies)]
        if all(block == blocks[0] for block in blocks):
            return [spans[:size]]
    return list(spans)


def _gpqa_choices(row: Mapping[str, Any]) -> tuple[list[str], int]:
    """The four options in an order fixed by the question's text, and the index of the correct one.

    The hub keeps the correct answer first; a shuffle seeded by the question makes the letter of the right
    answer vary across questions and stay the same across runs and machines.
    """
    options = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    options = [str(o).strip() for o in options]
    order = list(range(4))
    seed = int.from_bytes(hashlib.sha256(str(row["Question"]).encode()).digest()[:8], "big")
    random.Random(seed).shuffle(order)
    return [options[i] for i in order], order.index(0)


def _gpqa_question(row: Mapping[str, Any]) -> str:
    options, _ = _gpqa_choices(row)
    return inline_choices(row["Question"], list(LETTERS[:4]), options)


def _gpqa_reference(row: Mapping[str, Any]) -> str:
    return LETTERS[_gpqa_choices(row)[1]]


def _gpqa_meta(row: Mapping[str, Any]) -> dict[str, Any]:
    """The hub row's ``Record ID`` as the question id; the hub gives each question in one order (0)."""
    return {"question_id": str(row["Record ID"]), "option_order": 0}


# --- reference transforms, by name -------------------------------------------------------


def _alternatives(record: Record) -> str:
    """DROP: the accepted answers (the file's ``ref_text`` when present, else the answer) as a DROP reference.

    ``ref_text`` is the authors' plain form (alternatives separated by ``|``, each one span; their file seems
    to write a multi-span answer as one span joined by " and ", which stays one span), or the JSON form, as a
    string or as a JSON list in the file (see :mod:`pasr.scoring.drop`). Spans are stripped, blank and
    repeated alternatives dropped; the result is written back in the plain form when it can say the answers,
    else in the JSON form.
    """
    from pasr.scoring.drop import format_reference, parse_reference

    text = record.meta.get("ref_text") or record.reference
    return format_reference(parse_reference(text)) or str(record.reference).strip()


REFERENCE_TRANSFORMS: dict[str, Callable[[Record], str]] = {
    "strip": lambda record: record.reference.strip(),
    "alternatives": _alternatives,
}
"""Reference clean-ups by name. gsm8k has none on purpose: its scorer reads the ``#### N`` solution."""


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in [
        BenchmarkSpec(
            name="gsm8k", task="gsm8k", hub_id="openai/gsm8k", hub_config="main", split="test", train_split="train",
            local_file="gsm8k.jsonl", size=1319,
            description="Grade-school math word problems; reference is the worked solution ending '#### N'.",
        ),
        BenchmarkSpec(
            name="math500", task="math", hub_id="HuggingFaceH4/MATH-500", split="test",
            question_field="problem", reference_field="answer", id_field="unique_id",
            local_file="math.json", local_fields={"question": "question", "reference": "answer", "id": "unique_id"},
            size=500, description="MATH-500: competition math, LaTeX final answers.",
        ),
        BenchmarkSpec(
            name="aime24", task="math", hub_id="HuggingFaceH4/aime_2024", split="train",
            question_field="problem", reference_field="answer", id_field="id",
            local_file="aime24.jsonl", local_fields={"question": "problem", "reference": "solution", "id": "id"},
            size=30, description="AIME 2024 problems; integer answers (the local file has them as \\boxed{N}).",
        ),
        BenchmarkSpec(
            name="arc", task="choice", hub_id="allenai/ai2_arc", hub_config="ARC-Challenge", split="test",
            train_split="train",
            reference_field="answerKey", id_field="id", build_question=_arc_question,
            local_file="arc.jsonl", reference_transform="strip", size=1172,
            description="ARC-Challenge science questions; choices inlined as 'A: ...'; reference a letter "
                        "(a few items use 1-4). The authors' local file has 299 items.",
        ),
        BenchmarkSpec(
            name="gpqa", task="choice", hub_id="Idavidrein/gpqa", hub_config="gpqa_diamond", split="train",
            question_field="Question", id_field="Record ID", build_question=_gpqa_question,
            build_reference=_gpqa_reference, build_meta=_gpqa_meta, local_file="gpqa.jsonl",
            read_local=read_gpqa, size=198,
            description="GPQA diamond: from the hub (gated: accept its terms and log in), choices shuffled "
                        "deterministically per question, or from the authors' local gpqa.jsonl of chat prompts "
                        "with each question in up to four option orders; reference the correct option's letter.",
        ),
        BenchmarkSpec(
            name="winogrande", task="winogrande", hub_id="allenai/winogrande", hub_config="winogrande_xl",
            split="validation", train_split="train", build_question=_winogrande_question,
            local_file="winogrande.jsonl",
            reference_transform="strip", size=1267,
            description="Winogrande (dev): fill the blank; Option1/Option2 inlined; reference '1' or '2'.",
        ),
        BenchmarkSpec(
            name="commonsenseqa", task="choice", hub_id="tau/commonsense_qa", split="validation", train_split="train",
            reference_field="answerKey", id_field="id", build_question=_arc_question,
            local_file="commonsenseqa.jsonl", reference_transform="strip", size=1221,
            description="CommonsenseQA (dev): five choices inlined; reference a letter A-E.",
        ),
        BenchmarkSpec(
            name="drop", task="drop", hub_id="ucinlp/drop", split="validation", train_split="train", id_field="query_id",
            build_question=_drop_question, build_reference=_drop_reference, local_file="drop.jsonl",
            reference_transform="alternatives", size=9535,
            description="DROP reading comprehension, scored by the official DROP F1 (spans aligned one to one). "
                        "Reference: alternative answers joined by '|', each one span; where an answer has "
                        "several spans, a JSON list of alternatives, each a span or a list of spans "
                        "('[[\"Smith\", \"Jones\"], \"Smith\"]'). The authors' local file is a 313-item sample.",
        ),
        BenchmarkSpec(
            name="mmlu", task="choice", hub_id="cais/mmlu", hub_config="all", split="test", train_split="auxiliary_train",
            build_question=_mmlu_question, build_reference=_mmlu_reference,
            local_file="mmlu.json", local_fields={"question": "Question", "reference": "Ground_truth"},
            reference_transform="strip", size=14042,
            description="MMLU: choices inlined as 'A. ...'; reference a letter. The local file is a 100-item sample.",
        ),
        BenchmarkSpec(
            name="xsum", task="summary", hub_id="EdinburghNLP/xsum", split="test", train_split="train",
            question_field="document", reference_field="summary", id_field="id",
            local_file="xsum.jsonl", size=11334,
            description="XSum: one-sentence summary of a BBC article, scored by ROUGE-L. The local file is "
                        "a 313-item sample.",
        ),
        BenchmarkSpec(
            name="synthetic", task="arith", split="test", train_split="train", generated=True, size=500,
            description="The built-in arithmetic word problems (pasr.data.synthetic), held-out split, "
                        "default difficulty; generated, or --data-file from `pasr data synthetic --split test`.",
        ),
        BenchmarkSpec(
            name="sums", task="arith", split="test", train_split="train", generated=True, size=500,
            description="The built-in sums of two numbers (pasr.data.sums), held-out split: 40% easy (2-digit "
                        "numbers, no carry), 60% hard (4 digits, 2+ carries); generated, or --data-file from "
                        "`pasr data synthetic --family sums --split test`.",
        ),
    ]
}
"""Every benchmark pasr knows by name."""


def benchmark_family(name: str) -> str | None:
    """The answer family of benchmark ``name`` (``arc`` -> ``choice``; case-insensitive), or None for no benchmark."""
    spec = BENCHMARKS.get(str(name).strip().lower())
    return spec.task if spec is not None else None


def get_spec(name: str) -> BenchmarkSpec:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise PasrError(f"unknown benchmark {name!r}; known benchmarks: {', '.join(BENCHMARKS)}") from None


def training_split(name: str) -> str:
    """The split of benchmark ``name`` to train on (its ``train_split``), never the one pasr evaluates on.

    :class:`PasrError` (one line, naming the option) for a benchmark without one: MATH-500, AIME 2024 and GPQA
    diamond are evaluation sets only, so training on them by name would train on the test questions.
    """
    spec = get_spec(name)
    if spec.train_split is None or spec.train_split == spec.split:
        which = (f": its only split, {spec.split!r}, is the one pasr evaluates on" if spec.split == "train"
                 else f" apart from the {spec.split!r} split pasr evaluates on")
        raise PasrError(f"dataset={name!r}: the benchmark has no training split{which}; train on records of your own "
                        f"(dataset file, data_file PATH, data_task {spec.task})")
    return spec.train_split


def load_benchmark(
    name: str,
    *,
    data_file: str | Path | None = None,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    split: str | None = None,
) -> list[Record]:
    """The records of benchmark ``name``.

    Source: ``data_file`` if given (for ``synthetic`` and ``sums``: a file from ``pasr data synthetic``),
    else the generated split, else ``data_dir/<spec.local_file>``, else the hub. ``limit`` keeps a
    random subset of that many records, the same for the same ``seed`` (in file order). ``split`` overrides
    the hub split (and the synthetic split); it does not apply to local files.
    """
    spec = get_spec(name)
    if limit is not None and limit < 1:
        raise PasrError(f"limit must be a positive number of records, got {limit}")
    if data_file is not None:
        records = _local(spec, Path(data_file))
    elif spec.generated:
        records = _generated(spec, split or spec.split)
    elif data_dir is not None and spec.local_file is not None:
        path = Path(data_dir) / spec.local_file
        if not path.is_file():
            raise PasrError(f"{name}: {path} not found; the data folder should hold {spec.local_file} "
                            f"(or pass a file with --data-file)")
        records = _local(spec, path)
    else:
        records = _hub(spec, split or spec.split)
    if not records:
        raise PasrError(f"{name}: no records")
    return pick_subset(records, limit, seed=seed, name=name)


def pick_subset(records: list[Record], limit: int | None, *, seed: int = 0, name: str = "") -> list[Record]:
    """A random subset of ``limit`` records in their original order; the same for the same seed and name.

    Records that share a ``meta["question_id"]`` (one question in several option orders, GPQA) are kept or
    left out together: whole questions are drawn, in a seeded order, while they fit in ``limit``, so every
    question in the subset keeps all its orders (when not even one fits, the first ``limit`` orders of one).
    """
    if limit is None or limit >= len(records):
        return records
    if limit < 1:
        raise PasrError(f"limit must be a positive number of records, got {limit}")
    rng = random.Random(f"pasr-subset:{name}:{seed}")
    groups: dict[Any, list[int]] = {}
    for i, record in enumerate(records):
        qid = record.meta.get("question_id")
        groups.setdefault(("q", str(qid)) if qid not in (None, "") else ("i", i), []).append(i)
    if all(len(g) == 1 for g in groups.values()):
        keep = sorted(rng.sample(range(len(records)), limit))
    else:
        keys = list(groups)
        rng.shuffle(keys)
        keep = []
        for key in keys:
            if len(keep) + len(groups[key]) <= limit:
                keep += groups[key]
            if len(keep) == limit:
                break
        keep = sorted(keep or groups[keys[0]][:limit])  # no whole question fits: part of one
    return [records[i] for i in keep]


def _local(spec: BenchmarkSpec, path: Path) -> list[Record]:
    if spec.read_local is not None:
        records = spec.read_local(path)
    else:
        records = read_records(path, fields=dict(spec.local_fields), task=spec.task)
    for record in records:
        record.meta.setdefault("benchmark", spec.name)
        record.meta.setdefault("source", str(path))
        spec.transform(record)
    return records


GENERATED_FAMILIES = {"synthetic": "arith", "sums": "sums"}
"""The built-in task family each generated benchmark draws from (:func:`pasr.data.synthetic.generate_family`)."""


def _generated(spec: BenchmarkSpec, split: str) -> list[Record]:
    from pasr.data import synthetic

    records = synthetic.generate_family(GENERATED_FAMILIES[spec.name], spec.size or 500, seed=0, split=split)
    for record in records:
        record.meta["benchmark"] = spec.name
    return records


def _hub(spec: BenchmarkSpec, split: str) -> list[Record]:
    """The hub dataset's rows as records; offline (:mod:`pasr.hub`), only from the local datasets cache."""
    if spec.hub_id is None:
        raise PasrError(f"{spec.name}: no hub dataset; pass --data-file")
    from pasr import hub

    gated = " It is gated: accept its terms on the hub and log in (hf auth login)." if spec.name == "gpqa" else ""
    local = f" or --data-dir with {spec.local_file}" if spec.local_file else ""
    rows = hub.load_dataset(spec.hub_id, spec.hub_config, split=split, what=spec.name,
                            hint=f"{gated.strip()} Offline? Pass --data-file{local}.".strip())
    return [spec.record_from_row(row, index) for index, row in enumerate(rows)]
