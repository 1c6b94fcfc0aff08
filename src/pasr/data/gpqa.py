"""GPQA as a local file in the layout of the PASR authors' evaluation files.

The layout: a JSONL file (or a JSON list) where each item is one *prompt*, with its question and its
options (lettered ``A) ...``, ``A. ...``, ``A: ...`` or ``(A) ...``, one per line) built into the text,
and the correct option's letter as the answer. Every question appears up to four times, its options in
a different order each time (so the letter differs from line to line). An item is either

* ``{"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...], ...}``: the question
  is the user message (several are joined by a blank line); a system message goes to ``meta["system"]``;
  a final assistant message may carry the answer letter; or
* ``{"question": "...", ...}``: pasr's own layout, options inlined.

The answer is the first present of :data:`ANSWER_FIELDS`, else the final assistant message, and must be
one letter A-D (decorations such as ``(C)``, ``C.`` or ``The answer is C`` are read). The question id is
the first present of :data:`QUESTION_ID_FIELDS` (or ``meta.question_id``, as pasr writes records), else
derived from the question's stem (:func:`derived_question_id`), so the orders of one question share it.
"""

from __future__ import annotations

import hashlib
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasr.data.records import Record, read_rows
from pasr.errors import PasrError

ANSWER_FIELDS = ("answer", "std", "reference", "label", "correct_answer", "gold")
"""Fields that may hold the answer letter, tried in this order."""

QUESTION_ID_FIELDS = ("question_id", "qid", "Record ID", "record_id")
"""Fields that may hold the question id (shared by the option orders of one question), tried in this order."""

MAX_ORDERS = 4
ANSWER_LETTERS = "ABCD"
ROLES = ("system", "user", "assistant")

# An option line, as the choice scorer reads them (pasr.scoring.choice), letters only.
_OPTION_LINE = re.compile(r"^[ \t]*\(?([A-Z])[ \t]*[\).:][ \t]+(\S.*)$", re.MULTILINE)
# One letter, bare or decorated: "C", "(C)", "[C]", "C.", "C)", "Answer: C", "The answer is (C).".
_LETTER = re.compile(
    r"(?:(?i:the )?(?i:correct )?(?i:answer)(?i: is)?(?:: ?| ))?"
    r"(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z])[.):]?)\.?"
)


def answer_letter(value: Any) -> str | None:
    """The one letter A-D that ``value`` gives (``"C"``, ``"(C)"``, ``"C."``, ``"The answer is C"``), else None."""
    if not isinstance(value, str):
        return None
    match = _LETTER.fullmatch(" ".join(value.split()))
    letter = match and next(g for g in match.groups() if g)
    return letter if letter and letter in ANSWER_LETTERS else None


def question_parts(question: str) -> tuple[str, dict[str, str]]:
    """The stem (the text before the first option line) and the options, label -> text.

    Options are read as the choice scorer reads them: the last line with each letter, the run of
    letters that starts at A. The stem ends where the option A line starts.
    """
    found: dict[str, tuple[int, str]] = {}
    for match in _OPTION_LINE.finditer(question):
        found[match.group(1)] = (match.start(), " ".join(match.group(2).split()))
    options: dict[str, str] = {}
    for label in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if label not in found:
            break
        options[label] = found[label][1]
    stem = question[: found["A"][0]] if options else question
    return stem, options


def normalized_stem(stem: str) -> str:
    """Whitespace runs as one space, ends stripped, case-folded."""
    return " ".join(stem.split()).casefold()


def derived_question_id(stem: str) -> str:
    """``q-`` and the first 12 hex digits of the sha256 of the normalised stem (:func:`normalized_stem`)."""
    return "q-" + hashlib.sha256(normalized_stem(stem).encode("utf-8")).hexdigest()[:12]


@dataclass
class _Line:
    number: int
    question: str
    reference: str
    question_id: str
    stem: str
    options: tuple[str, ...]
    file_id: str | None
    meta: dict[str, Any] = field(default_factory=dict)


def read_gpqa(path: str | Path, *, benchmark: str = "gpqa") -> list[Record]:
    """The records of a GPQA file in the PASR authors' layout (see the module), one per line, in file order.

    Each record has ``task="choice"``, the question with its options, the answer letter as reference, and
    ``meta`` with ``question_id``, ``option_order`` (0, 1, ... over the lines of its question, in file order),
    ``benchmark``, ``source`` (the path), ``system`` (when the prompt has one) and the line's other fields.
    Record ids are the file's ``id`` fields when every line has one and they are unique, else
    ``<question_id>#<option_order>``. Bad input raises :class:`PasrError` naming the file and the line.
    """
    path = Path(path)
    lines = [_read_line(path, number, row) for number, row in read_rows(path)]
    if not lines:
        raise PasrError(f"{path}: no records")
    by_question: dict[str, list[_Line]] = {}
    by_content: dict[tuple[str, frozenset[str]], _Line] = {}  # (stem, option set) -> its first line
    for line in lines:
        seen = by_question.setdefault(line.question_id, [])
        where = f"{path}, line {line.number}"
        content = (normalized_stem(line.stem), frozenset(" ".join(o.split()).casefold() for o in line.options))
        first = by_content.setdefault(content, line)
        if first.question_id != line.question_id:
            raise PasrError(f"{where}: the same question (text and options) as line {first.number} under another "
                            f"question id ({line.question_id!r}, there {first.question_id!r}); give all its option "
                            "orders one id, or none")
        if seen and normalized_stem(seen[0].stem) != normalized_stem(line.stem):
            raise PasrError(f"{where}: question id {line.question_id!r} is also given to line {seen[0].number}, "
                            f"a different question; the file gives one id to two questions")
        twin = next((other for other in seen if other.options == line.options), None)
        if twin is not None:
            raise PasrError(f"{where}: duplicate line: question {line.question_id!r} has the same option order "
                            f"on line {twin.number}")
        seen.append(line)
        if len(seen) > MAX_ORDERS:
            derived = line.question_id == derived_question_id(line.stem)
            hint = "; lines with the same question text are one question unless a question_id field tells them apart"
            raise PasrError(f"{where}: question {line.question_id!r} appears {len(seen)} times (lines "
                            f"{', '.join(str(other.number) for other in seen)}); a question has at most "
                            f"{MAX_ORDERS} option orders{hint if derived else ''}")
    file_ids = [line.file_id for line in lines]
    use_file_ids = None not in file_ids and len(set(file_ids)) == len(file_ids)
    records = []
    for line in lines:
        order = next(i for i, other in enumerate(by_question[line.question_id]) if other is line)
        meta = dict(line.meta)
        if use_file_ids:
            meta.pop("id", None)
        meta.update(question_id=line.question_id, option_order=order, benchmark=benchmark, source=str(path))
        record_id = line.file_id if use_file_ids else f"{line.question_id}#{order}"
        records.append(Record(id=record_id, question=line.question, reference=line.reference, task="choice",
                              meta=meta))
    return records


def _read_line(path: Path, number: int, row: Any) -> _Line:
    where = f"{path}, line {number}"
    if not isinstance(row, dict):
        raise PasrError(f"{where}: expected a JSON object, got {type(row).__name__}")
    used = {"messages", "question", "meta", "task"}
    meta: dict[str, Any] = dict(row["meta"]) if isinstance(row.get("meta"), dict) else {}
    final_answer: str | None = None
    if "messages" in row:
        question, system, final_answer = _read_messages(row["messages"], f"{where}, field 'messages'")
        if system is not None:
            meta["system"] = system
    elif "question" in row:
        question = row["question"]
        if not isinstance(question, str):
            raise PasrError(f"{where}, field 'question': must be a string, got {type(question).__name__}")
    else:
        raise PasrError(f"{where}: no 'messages' (the chat prompt) or 'question' field")
    if not question.strip():
        raise PasrError(f"{where}: the question is empty")
    stem, options = question_parts(question)
    if len(options) < 2:
        raise PasrError(f"{where}: found {len(options)} option lines ('A) ...', 'A. ...', 'A: ...' or '(A) ...') "
                        f"in the question; expected 2 or more")
    if not stem.strip():
        raise PasrError(f"{where}: the question has no text before its options")

    source = next((name for name in ANSWER_FIELDS if name in row), None)
    if source is not None:
        used.add(source)
        raw, what = row[source], f"field {source!r}"
    elif final_answer is not None:
        raw, what = final_answer, "final assistant message"
    else:
        raise PasrError(f"{where}: no answer; expected one of the fields {', '.join(ANSWER_FIELDS)} "
                        f"or a final assistant message with the letter")
    reference = answer_letter(raw)
    if reference is None:
        shown = repr(raw) if isinstance(raw, (str, numbers.Number)) else type(raw).__name__
        raise PasrError(f"{where}, {what}: {shown} is not one letter A-D")
    if reference not in options:
        raise PasrError(f"{where}, {what}: answer {reference} is not among the options found in the question "
                        f"({', '.join(options)})")

    id_source = next((name for name in QUESTION_ID_FIELDS if name in row), None)
    if id_source is not None:
        used.add(id_source)
        question_id = _id_text(row[id_source], f"{where}, field {id_source!r}", "question id")
    elif "question_id" in meta:
        question_id = _id_text(meta["question_id"], f"{where}, field 'meta.question_id'", "question id")
    else:
        question_id = derived_question_id(stem)
    file_id = _id_text(row["id"], f"{where}, field 'id'", "id") if "id" in row else None

    meta.update({key: value for key, value in row.items() if key not in used})
    return _Line(number=number, question=question, reference=reference, question_id=question_id, stem=stem,
                 options=tuple(options.values()), file_id=file_id, meta=meta)


def _read_messages(messages: Any, where: str) -> tuple[str, str | None, str | None]:
    """(question, system text or None, final assistant content or None) of a chat prompt."""
    if not isinstance(messages, list) or not messages:
        got = "an empty list" if isinstance(messages, list) else type(messages).__name__
        raise PasrError(f"{where}: expected a list of {{'role', 'content'}} messages, got {got}")
    parts: dict[str, list[str]] = {role: [] for role in ROLES}
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise PasrError(f"{where}: message {index} is not a {{'role', 'content'}} object with text content")
        role = message.get("role")
        if role not in ROLES:
            raise PasrError(f"{where}: message {index} has role {role!r}; expected system, user or assistant")
        if role == "assistant" and index != len(messages):
            raise PasrError(f"{where}: message {index} is an assistant message before the end; only a final "
                            f"assistant message (the answer) is read")
        parts[role].append(message["content"])
    if not parts["user"]:
        raise PasrError(f"{where}: no user message (the question)")
    system = "\n\n".join(parts["system"]) if parts["system"] else None
    answer = parts["assistant"][0] if parts["assistant"] else None
    return "\n\n".join(parts["user"]), system, answer


def _id_text(value: Any, where: str, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Integral)) or not str(value).strip():
        raise PasrError(f"{where}: {what} must be a non-empty string or an integer, got {value!r}")
    return str(value)
