"""PASR(+IFT): supervised fine-tuning on PASR's own good rollouts instead of RL.

The paper's ablation asks whether RL is needed at all: take the completions a PASR run generated,
keep those that refined *and* whose refinement paid off (valid format, positive refine reward), and
fine-tune the base model on them under the PASR system prompt. This module turns a rollout log
(:mod:`pasr.train.rollout_log`) into that chat JSONL; training is plain ``pasr sft`` with
``dataset: file`` (recipes ``cpu-ift.yaml``, ``<model>/ift.yaml``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from pasr.data.records import read_objects
from pasr.errors import PasrError
from pasr.prompts import PASR_SYSTEM_PROMPT, chat

REQUIRED = ("question", "task", "completion", "trace", "rewards", "accuracy")
"""Keys every rollout row needs for the filters and the chat example."""


@dataclass
class IftFilter:
    """Which rollouts become training examples; every enabled test must pass.

    ``min_refine_reward``: keep rows whose refine reward is strictly greater (the default 0.0 keeps
    only refinements that beat the standard-sample baseline, +1); None switches the test off.
    ``min_accuracy``: keep rows whose accuracy is at least this; None switches it off.
    ``dedupe``: keep one row per distinct (question, completion).
    """

    require_valid: bool = True
    require_refine: bool = True
    min_refine_reward: float | None = 0.0
    min_accuracy: float | None = None
    dedupe: bool = False

    def stages(self) -> list[tuple[str, object]]:
        """The enabled tests in order, as (funnel label, predicate or 'dedupe')."""
        out: list[tuple[str, object]] = []
        if self.require_valid:
            out.append(("valid format", lambda r: bool(r["trace"]["valid"])))
        if self.require_refine:
            out.append(("refines", lambda r: bool(r["trace"]["refined"])))
        if self.min_refine_reward is not None and not (
            math.isinf(self.min_refine_reward) and self.min_refine_reward < 0
        ):
            threshold = self.min_refine_reward
            out.append((f"refine reward > {threshold:g}", lambda r: float(r["rewards"]["refine"]) > threshold))
        if self.min_accuracy is not None:
            low = self.min_accuracy
            out.append((f"accuracy >= {low:g}", lambda r: float(r["accuracy"]) >= low))
        if self.dedupe:
            out.append(("distinct (question, completion)", "dedupe"))
        return out


def read_rollout_log(path: str | Path) -> list[dict]:
    """Rows of a rollout log, checked for the keys the filters read; errors name file, line and key."""
    path = Path(path)
    if not path.is_file():
        raise PasrError(f"{path}: rollout log not found (`pasr train` writes OUTPUT_DIR/rollouts.jsonl)")
    rows = []
    for lineno, row in read_objects(path):
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise PasrError(f"{path}, line {lineno}: rollout row lacks {', '.join(missing)}")
        trace, rewards = row["trace"], row["rewards"]
        if not isinstance(trace, dict) or not {"valid", "refined"} <= trace.keys():
            raise PasrError(f"{path}, line {lineno}: field 'trace' needs 'valid' and 'refined'")
        if not isinstance(rewards, dict) or "refine" not in rewards:
            raise PasrError(f"{path}, line {lineno}: field 'rewards' needs 'refine'")
        for key, value in (("rewards.refine", rewards["refine"]), ("accuracy", row["accuracy"])):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PasrError(f"{path}, line {lineno}: field '{key}' must be a number, got {value!r}")
        if not isinstance(row["completion"], str) or not isinstance(row["question"], str):
            raise PasrError(f"{path}, line {lineno}: fields 'question' and 'completion' must be text")
        row["_line"] = lineno
        rows.append(row)
    return rows


def filter_rollouts(rows: list[dict], flt: IftFilter) -> tuple[list[dict], list[tuple[str, int]]]:
    """The rows that pass every enabled test, and the funnel: (stage, rows left after it), cumulative."""
    kept = list(rows)
    funnel = [("rollouts", len(kept))]
    for label, test in flt.stages():
        if test == "dedupe":
            seen: set[tuple[str, str]] = set()
            unique = []
            for row in kept:
                key = (row["question"], row["completion"])
                if key not in seen:
                    seen.add(key)
                    unique.append(row)
            kept = unique
        else:
            kept = [row for row in kept if test(row)]
        funnel.append((label, len(kept)))
    return kept, funnel


def ift_example(row: dict, system_prompt: str = PASR_SYSTEM_PROMPT) -> dict:
    """One chat example: the PASR prompt of the row's question, the completion as the assistant turn.

    Extra keys (id, step, accuracy, refine_reward, line) are for inspection; ``pasr sft`` reads only
    ``prompt`` and ``completion``.
    """
    return {
        "prompt": chat(system_prompt, row["question"], row["task"]),
        "completion": [{"role": "assistant", "content": row["completion"]}],
        "id": row.get("id"),
        "step": row.get("step"),
        "accuracy": row["accuracy"],
        "refine_reward": row["rewards"]["refine"],
        "line": row.get("_line"),
    }


@dataclass
class IftData:
    """What :func:`build_ift_data` produced."""

    path: Path
    examples: int
    funnel: list[tuple[str, int]]


def write_ift_data(rows: list[dict], out_path: str | Path) -> Path:
    """Write the chat examples of ``rows`` to ``out_path`` (whole file, atomically); returns the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(ift_example(row), ensure_ascii=False) + "\n")
    tmp.replace(out_path)
    return out_path


def build_ift_data(log_path: str | Path, out_path: str | Path, flt: IftFilter | None = None) -> IftData:
    """Filter a rollout log into a chat JSONL for ``pasr sft --data_file``; PasrError when nothing passes."""
    rows = read_rollout_log(log_path)
    kept, funnel = filter_rollouts(rows, flt or IftFilter())
    if not kept:
        stages = "; ".join(f"{label}: {n}" for label, n in funnel)
        raise PasrError(
            f"{log_path}: no rollout passed the filters ({stages}); loosen them "
            "(e.g. --min-refine-reward -inf, --no-require-refine) or use a longer PASR run"
        )
    return IftData(path=write_ift_data(kept, out_path), examples=len(kept), funnel=funnel)


def default_output(log_path: str | Path) -> Path:
    """``ift-data.jsonl`` beside the rollout log (what ``cpu-ift.yaml`` reads for ``runs/pasr-cpu``)."""
    return Path(log_path).parent / "ift-data.jsonl"
