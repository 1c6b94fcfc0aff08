"""The record every stage passes along, and readers for JSON/JSONL files of records."""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pasr.errors import PasrError


@dataclass
class Record:
    """One question with its reference answer.

    ``task`` names the answer family that scores it (see ``pasr.scoring``): math, gsm8k,
    arith, choice, winogrande, drop, summary or open.
    """

    id: str
    question: str
    reference: str
    task: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RECORD_FIELDS = ("id", "question", "reference", "task")
"""Record fields a file field can be mapped onto (``meta`` is built from everything left over)."""

_DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "question": ("question",),
    "reference": ("reference", "answer"),
    "task": ("task",),
}
"""File fields tried, in order, when no mapping is given: pasr's own files and the common question/answer."""


def read_rows(path: str | Path) -> list[tuple[int, Any]]:
    """The items of a JSON list or JSONL file, each with the 1-based line it starts on.

    A file whose first non-blank character is ``[`` is a JSON list; anything else is read as JSONL.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PasrError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PasrError(f"{path}: cannot read it as UTF-8 text ({error})") from error
    if not text.strip():
        raise PasrError(f"{path}: the file is empty; expected a JSON list or JSON lines of records")
    if text.lstrip().startswith("["):
        return _json_list_rows(path, text)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise PasrError(
                f"{path}, line {number}: malformed JSON ({error.msg} at column {error.colno}); "
                "expected one JSON object per line (JSONL) or a single JSON list"
            ) from None
    return rows


def read_objects(path: str | Path) -> list[tuple[int, dict]]:
    """Like :func:`read_rows`, for files whose every item must be a JSON object."""
    rows = read_rows(path)
    for number, row in rows:
        if not isinstance(row, dict):
            raise PasrError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
    return rows


def _json_list_rows(path: Path, text: str) -> list[tuple[int, Any]]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise PasrError(f"{path}, line {error.lineno}: malformed JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(items, list):  # e.g. "[1] [2]" cannot get here; kept for clarity
        raise PasrError(f"{path}: expected a JSON list of objects")
    if not items:
        raise PasrError(f"{path}: the JSON list is empty; expected records")
    # Walk the list again with raw_decode to learn where each item starts, for error messages.
    decoder = json.JSONDecoder()
    rows = []
    index = text.index("[") + 1
    for item in items:
        while text[index] in " \t\r\n,":
            index += 1
        _, end = decoder.raw_decode(text, index)
        rows.append((text.count("\n", 0, index) + 1, item))
        index = end
    return rows


def read_records(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    task: str | None = None,
    id_field: str | None = None,
) -> list[Record]:
    """Records from a JSON list or JSONL file.

    ``fields`` maps record field -> file field, e.g. ``{"question": "problem", "reference": "solution"}``;
    unmapped record fields use pasr's names (reference falls back to ``answer``). ``task`` sets the answer
    family of every record (else each row's ``task`` field is used); ``id_field`` names the id field
    (default ``id``; rows without one get ``<file stem>-<index>``). File fields not mapped onto the record
    go into ``meta``. Errors name the file, the line and the field.
    """
    from pasr.data.benchmarks import (
        benchmark_family,  # a benchmark name ("arc") means its family; imports us
    )

    path = Path(path)
    mapping = dict(fields or {})
    unknown = sorted(set(mapping) - set(RECORD_FIELDS))
    if unknown:
        raise PasrError(f"fields: {unknown} are not record fields; map any of {list(RECORD_FIELDS)} to file fields")
    if id_field is not None:
        mapping["id"] = id_field
    records = []
    for index, (line, row) in enumerate(read_rows(path)):
        where = f"{path}, line {line}"
        if not isinstance(row, dict):
            raise PasrError(f"{where}: expected a JSON object, got {type(row).__name__}")
        used: set[str] = set()

        def value(name: str, required: bool) -> Any:
            sources = (mapping[name],) if name in mapping else _DEFAULT_SOURCES[name]
            for source in sources:
                if source in row:
                    used.add(source)
                    return row[source]
            if required or name in mapping:
                hint = f" (map it with fields={{'{name}': '<file field>'}})" if name not in mapping else ""
                raise PasrError(f"{where}: missing field {' or '.join(repr(s) for s in sources)}{hint}")
            return None

        question = value("question", True)
        if not isinstance(question, str):
            raise PasrError(f"{where}, field {_source(mapping, 'question', used)!r}: question must be a string, "
                            f"got {type(question).__name__}")
        if not question.strip():
            raise PasrError(f"{where}, field {_source(mapping, 'question', used)!r}: question is empty")
        reference = _text(value("reference", True), where, _source(mapping, "reference", used), "reference")
        row_task = value("task", False) if task is None else task
        if row_task is None:
            raise PasrError(f"{where}: missing field 'task'; pass task=... (CLI: --task) to set the answer family")
        if not isinstance(row_task, str) or not row_task:
            raise PasrError(f"{where}, field 'task': must be a non-empty string, got {row_task!r}")
        row_task = benchmark_family(row_task) or row_task
        row_id = value("id", False)
        if row_id is None:
            row_id = f"{path.stem}-{index}"
        else:
            row_id = _text(row_id, where, _source(mapping, "id", used), "id")
        meta = dict(row["meta"]) if isinstance(row.get("meta"), dict) else {}
        meta.update({key: val for key, val in row.items() if key not in used and key != "meta"})
        records.append(Record(id=row_id, question=question, reference=reference, task=row_task, meta=meta))
    return records


def _source(mapping: Mapping[str, str], name: str, used: set[str]) -> str:
    if name in mapping:
        return mapping[name]
    return next((s for s in _DEFAULT_SOURCES[name] if s in used), _DEFAULT_SOURCES[name][0])


def _text(value: Any, where: str, source: str, what: str) -> str:
    """Strings pass; numbers (not booleans) become their decimal text; anything else is an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    raise PasrError(f"{where}, field {source!r}: {what} must be a string or a number, got {type(value).__name__}")


def write_records(path: str | Path, records: Iterable[Record]) -> Path:
    """Write records as JSONL (one ``Record.to_dict()`` per line), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    return path
