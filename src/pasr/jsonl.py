"""Append-only JSONL files (eval results, rollout logs, run logs): one rule for appending, repairing and reading.

* Appending writes whole lines, then flushes and ``fsync``s, so a finished batch survives a crash.
* A process killed mid-write leaves a *torn tail*: a last line without its newline.
  :func:`repair_tail` cuts it before the next append (the writer redoes that work); readers
  drop it silently, since it is the expected trace of an interruption.
* Any other line that is not a JSON object (a corrupt *middle* line) is skipped by every reader
  with a warning naming the file and line (:attr:`JsonlRows.problems`); a writer that resumes
  the file moves such lines to ``<file>.corrupt`` first (:func:`set_aside_corrupt`) so they are
  kept for inspection and not warned about again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasr.errors import PasrError


@dataclass
class JsonlRows:
    """What :func:`read_jsonl` found: the rows, their 1-based line numbers, and one message per bad line."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)


def read_jsonl(path: str | os.PathLike) -> JsonlRows:
    """The JSON-object lines of ``path`` (none when it does not exist), by the module's rule.

    Raises :class:`~pasr.errors.PasrError` only when the file cannot be read at all.
    """
    path = Path(path)
    out = JsonlRows()
    if not path.exists():
        return out
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PasrError(f"{path}: cannot read ({err.strerror or err})") from None
    lines = data.split(b"\n")
    torn_tail = bool(lines) and lines[-1] != b""  # the last line lacks its newline
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            if torn_tail and number == len(lines):
                continue
            why = err.msg if isinstance(err, json.JSONDecodeError) else "not UTF-8"
            out.problems.append(f"{path}, line {number}: not valid JSON ({why}); skipped")
            out.bad_lines.append(number)
            continue
        if not isinstance(row, dict):
            out.problems.append(f"{path}, line {number}: expected a JSON object, found {type(row).__name__}; skipped")
            out.bad_lines.append(number)
            continue
        out.rows.append(row)
        out.numbers.append(number)
    return out


def repair_tail(path: str | os.PathLike) -> bool:
    """Cut a torn last line (no trailing newline: the writer died mid-line); True when something was cut."""
    path = Path(path)
    if not path.exists():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    with path.open("r+b") as fh:
        fh.truncate(data.rfind(b"\n") + 1)
    return True


def set_aside_corrupt(path: str | os.PathLike, bad_lines: Iterable[int]) -> Path | None:
    """Move the given 1-based lines of ``path`` to ``<path>.corrupt`` (appended); return that file, or None."""
    bad = set(bad_lines)
    if not bad:
        return None
    path = Path(path)
    lines = path.read_bytes().split(b"\n")
    kept = [line for n, line in enumerate(lines, start=1) if n not in bad]
    aside = path.with_name(path.name + ".corrupt")
    with aside.open("ab") as fh:
        fh.write(b"".join(lines[n - 1] + b"\n" for n in sorted(bad)))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"\n".join(kept))
    tmp.replace(path)
    return aside


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Append ``rows`` as whole lines, flushed and fsynced; returns the number written."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if not text:
        return 0
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return text.count("\n")


def rewrite_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with ``rows`` atomically (a temp file renamed over it)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


__all__ = ["JsonlRows", "append_jsonl", "read_jsonl", "repair_tail", "rewrite_jsonl", "set_aside_corrupt"]
