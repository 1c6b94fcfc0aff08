"""The record every stage passes along, and readers for JSON/JSONL files of records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
