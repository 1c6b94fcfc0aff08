"""LLM analyses of refining responses (the PASR paper's section 3.3 / appendix B.2), by a judge model.

For every response that refined, a judge answers three questions:

- refinement type: error correction, information complement, solution improvement or task alignment;
- refinement coherence (0-10, stored as a share in [0, 1]): does the refinement address what was
  actually said before it, and does what follows build on it?
- thought-answer consistency (0-10, stored in [0, 1]): does the final answer follow from the reasoning?

A ``pasr``-style response is shown whole, with its ``<refine>`` segments listed; a self-refine response
is shown as the first answer and the revision that replaced it. Replies are parsed leniently (a bare
label, a number, "7/10", a JSON object); what cannot be parsed is stored as null and counted.
Results: ``RUN_DIR/<benchmark>/<method>.analysis.jsonl`` (one line per analysed id; a rerun only asks
about ids not there yet, and a judge failure leaves the id for the next run), aggregated into the
summary's ``analysis`` key.

The prompt texts live here for now; they belong in ``pasr.prompts`` with the other prompts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pasr.eval.metrics import mean, read_lines
from pasr.jsonl import append_jsonl, repair_tail
from pasr.prompts import ANALYSIS_SYSTEM_PROMPT, COHERENCE_PROMPT, CONSISTENCY_PROMPT, TYPE_PROMPT

REFINEMENT_TYPES = ("error correction", "information complement", "solution improvement", "task alignment")

REPLY_TOKENS = 32
"""Room for a category name or a rating (the judge's default is sized for a bare score)."""

ANALYSES = {"type": TYPE_PROMPT, "coherence": COHERENCE_PROMPT, "consistency": CONSISTENCY_PROMPT}

_ALIASES = {
    "error correction": ("error correction", "error-correction", "correction", "fixes a mistake"),
    "information complement": ("information complement", "complement", "missing information", "adds"),
    "solution improvement": ("solution improvement", "improvement", "improves"),
    "task alignment": ("task alignment", "alignment", "aligns"),
}


def context_of(line: dict[str, Any]) -> str | None:
    """The text the judge sees for one result line, or None when the line did not refine."""
    if not line.get("refined"):
        return None
    question = line.get("question", "")
    turns = line.get("turns") or []
    revisions = [t for t in turns if t.get("name") == "revision"]
    if revisions:
        first = turns[0]["text"] if turns else ""
        return (
            f"Question:\n{question}\n\nThe model's first response:\n{first}\n\n"
            f"Asked to review it, the model replaced it with this revised response:\n{line.get('final', '')}"
        )
    refines = (line.get("trace") or {}).get("refines") or []
    listed = "\n".join(f"- {r.get('text', '')}" for r in refines)
    return (
        f"Question:\n{question}\n\nThe model's response (refinements are marked <refine> ... </refine>):\n"
        f"{line.get('final', '')}\n\nIts refinements:\n{listed}"
    )


def prompts_for(line: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """The three judge conversations for one refining line."""
    context = context_of(line)
    if context is None:
        return {}
    return {
        key: [
            {"role": "system", "content": ANALYSIS_SYSTEM_PROMPT},
            {"role": "user", "content": template.format(context=context)},
        ]
        for key, template in ANALYSES.items()
    }


def parse_type(reply: str | None) -> str | None:
    """The refinement category named in a judge reply (label, number 1-4 or JSON), else None."""
    if not reply:
        return None
    text = reply.strip()
    try:
        obj = json.loads(text)
        if isinstance(obj, dict):
            text = str(obj.get("type") or obj.get("category") or next(iter(obj.values()), ""))
    except (json.JSONDecodeError, StopIteration):
        pass
    low = text.lower().replace("_", " ")
    for name in REFINEMENT_TYPES:  # exact names first: "error correction" before "correction"
        if name in low or name.replace(" ", "-") in low:
            return name
    number = re.match(r"\W*([1-4])\b", low)
    if number:
        return REFINEMENT_TYPES[int(number.group(1)) - 1]
    for name, aliases in _ALIASES.items():
        if any(re.search(rf"\b{re.escape(a)}\b", low) for a in aliases):
            return name
    return None


def parse_score(reply: str | None, scale: float = 10.0) -> float | None:
    """A 0..scale rating from a judge reply ("8", "Score: 7.5", "8/10", '{"score": 8}') as a share in [0, 1]."""
    if not reply:
        return None
    match = re.search(r"(-?\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?))?", reply)
    if not match:
        return None
    value = float(match.group(1))
    top = float(match.group(2)) if match.group(2) else scale
    if top <= 0:
        return None
    return min(1.0, max(0.0, value / top))


def analyse(lines: Sequence[dict[str, Any]], judge: Any, path: str | Path, method: str) -> dict[str, Any]:
    """Ask the judge about every refining line not yet in ``path``; append results; return the aggregate."""
    path = Path(path)
    done = {a["id"] for a in read_lines(path)}
    todo = [line for line in lines if line.get("refined") and line["id"] not in done]
    convs: list[list[dict[str, str]]] = []
    keys: list[tuple[int, str]] = []
    for i, line in enumerate(todo):
        for key, conv in prompts_for(line).items():
            convs.append(conv)
            keys.append((i, key))
    replies = judge.complete_many(convs, max_tokens=REPLY_TOKENS) if convs else []
    per_line: dict[int, dict[str, str | None]] = {}
    for (i, key), reply in zip(keys, replies):
        per_line.setdefault(i, {})[key] = reply
    failed = 0
    finished = []
    for i, line in enumerate(todo):
        got = per_line.get(i, {})
        if any(got.get(k) is None for k in ANALYSES):
            failed += 1  # judge unreachable for this one: leave it for the next run
            continue
        finished.append({
            "id": line["id"],
            "method": method,
            "kind": "revision" if any(t.get("name") == "revision" for t in line.get("turns", [])) else "inline",
            "type": parse_type(got["type"]),
            "coherence": parse_score(got["coherence"]),
            "consistency": parse_score(got["consistency"]),
            "replies": got,
        })
    repair_tail(path)
    append_jsonl(path, finished)
    wanted = {line["id"] for line in lines if line.get("refined")}
    result = aggregate([a for a in read_lines(path) if a["id"] in wanted])
    result["eligible"] = len(wanted)
    result["judge_failures"] = failed
    return result


def aggregate(analyses: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Type shares (over parsed types), mean coherence and consistency, and how many replies were unparsable."""
    types = [a["type"] for a in analyses if a.get("type")]
    coherence = [a["coherence"] for a in analyses if a.get("coherence") is not None]
    consistency = [a["consistency"] for a in analyses if a.get("consistency") is not None]
    return {
        "n": len(analyses),
        "types": {t: (types.count(t) / len(types) if types else 0.0) for t in REFINEMENT_TYPES},
        "coherence_mean": mean(coherence),
        "consistency_mean": mean(consistency),
        "unparsed": {
            "type": len(analyses) - len(types),
            "coherence": len(analyses) - len(coherence),
            "consistency": len(analyses) - len(consistency),
        },
    }
