"""PASR(+IFT) as one run: filter a PASR rollout log (:mod:`pasr.baselines.ift`), then fine-tune on what passed.

``pasr baseline ift --config recipes/cpu-ift.yaml --ift_rollout_log runs/pasr-cpu/rollouts.jsonl`` writes the
kept examples to ``OUTPUT_DIR/ift-data.jsonl`` and the model to ``OUTPUT_DIR/final``. Without
``ift_rollout_log`` it fine-tunes on ``data_file`` as it is (IFT data written earlier by ``pasr ift-data``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasr.baselines.ift import IftFilter, filter_rollouts, ift_example, read_rollout_log, write_ift_data
from pasr.errors import PasrError
from pasr.train.config import ModelConfig, PasrSFTConfig
from pasr.train.saving import is_saved_model

DATA_NAME = "ift-data.jsonl"
"""The filtered examples, in OUTPUT_DIR."""
COMMAND = "pasr baseline ift"
"""The run folder's kind (:class:`pasr.run_folder.RunLock`)."""

logger = logging.getLogger("pasr.ift")


@dataclass
class IftConfig(PasrSFTConfig):
    """SFTConfig (the fine-tuning) plus the rollout filters of :class:`pasr.baselines.ift.IftFilter`."""

    ift_rollout_log: str | None = field(
        default=None,
        metadata={"help": "Rollout log of a PASR run (`pasr train` writes OUTPUT_DIR/rollouts.jsonl): its good "
                          "refining rollouts become OUTPUT_DIR/ift-data.jsonl, used instead of data_file. Unset: "
                          "fine-tune on data_file as it is."},
    )
    ift_require_valid: bool = field(default=True, metadata={"help": "Keep only rollouts of valid format."})
    ift_require_refine: bool = field(default=True, metadata={"help": "Keep only rollouts with a <refine> segment."})
    ift_min_refine_reward: float = field(
        default=0.0, metadata={"help": "Keep refine reward strictly greater than this (-2: no refine-reward test)."}
    )
    ift_min_accuracy: float | None = field(default=None, metadata={"help": "Keep accuracy >= this (default: off)."})
    ift_dedupe: bool = field(default=False, metadata={"help": "Keep one of identical (question, completion)."})

    def __post_init__(self):
        super().__post_init__()
        if self.ift_rollout_log:
            self.dataset, self.data_file = "file", None  # the data comes from the log
        elif not (self.dataset == "file" and self.data_file):
            raise PasrError("ift: give --ift_rollout_log (a PASR run's rollouts.jsonl) or dataset 'file' with "
                            "--data_file (IFT data from `pasr ift-data`)")

    def ift_filter(self) -> IftFilter:
        return IftFilter(require_valid=self.ift_require_valid, require_refine=self.ift_require_refine,
                         min_refine_reward=self.ift_min_refine_reward, min_accuracy=self.ift_min_accuracy,
                         dedupe=self.ift_dedupe)


@dataclass
class IftResult:
    """The fine-tuned model, the data it was trained on (``log_path``) and the summary ``rows``."""

    model_dir: str
    log_path: str
    seconds: float
    rows: list[dict[str, str]]


def run_ift(config: IftConfig, model_config: ModelConfig, *, console: Any = None) -> IftResult:
    """Filter ``ift_rollout_log`` (when set) into ``OUTPUT_DIR/ift-data.jsonl`` and fine-tune the base model on it.

    Holds OUTPUT_DIR as its only writer for the whole run (:class:`pasr.run_folder.RunLock`, kind
    :data:`COMMAND`), before anything is written there. ``OUTPUT_DIR/run_settings.json`` ties the folder to the
    base model, the SFT hyperparameters, the filters and the data's digest
    (:func:`pasr.baselines.common.hold_settings`): a rerun with the same ones and a saved ``OUTPUT_DIR/final``
    skips the fine-tuning; a rerun with others is refused. Raises :class:`PasrError` when no rollout passes the
    filters (the message lists the funnel).
    """
    from pasr.run_folder import RunLock

    with RunLock(config.output_dir, COMMAND, option="output_dir", distributed=True):
        return _run_ift(config, model_config)


def settings(config: IftConfig, model_config: ModelConfig, data_sha256: str) -> dict[str, Any]:
    """What shapes an IFT run's model: base model, SFT hyperparameters, the filters, the data's digest."""
    from dataclasses import fields

    from pasr.baselines import common

    ift_fields = [f.name for f in fields(config) if f.name.startswith("ift_")]
    return common.run_settings(config, model_config, [*ift_fields, *common.SFT_FIELDS], data_sha256=data_sha256)


def _run_ift(config: IftConfig, model_config: ModelConfig) -> IftResult:
    import hashlib

    from accelerate import PartialState

    from pasr.baselines import common
    from pasr.train.sft import read_chat_examples, run_sft

    started = time.perf_counter()
    output = Path(config.output_dir)
    state = PartialState()
    if config.ift_rollout_log:
        kept, funnel = filter_rollouts(read_rollout_log(config.ift_rollout_log), config.ift_filter())
        if not kept:
            stages = "; ".join(f"{label}: {n}" for label, n in funnel)
            raise PasrError(f"{config.ift_rollout_log}: no rollout passed the filters ({stages}); loosen them "
                            "(e.g. --ift_min_refine_reward -2, --no_ift_require_refine) or use a longer PASR run")
        data = output / DATA_NAME
        rows = [ift_example(row) for row in kept]
        digest = hashlib.sha256("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()).hexdigest()
        same = common.hold_settings(output, settings(config, model_config, digest), main=state.is_main_process)
        if state.is_main_process and not (same and data.is_file()):
            write_ift_data(kept, data)  # the same bytes as the digest
        state.wait_for_everyone()
        examples = [{k: r[k] for k in ("prompt", "completion")} for r in rows]
    else:
        data = Path(config.data_file)
        examples = read_chat_examples(str(data))
        funnel = [("examples in data_file", len(examples))]
        digest = common.file_digest(data)
        same = common.hold_settings(output, settings(config, model_config, digest), main=state.is_main_process)
    final_dir = output / "final"
    if same and is_saved_model(final_dir):
        final = str(final_dir)  # this data and these settings were fine-tuned before
        logger.info("ift: %s is done with these settings and data; not fine-tuned again", final)
    else:
        final = run_sft(config, model_config, examples=examples, held=True)
    summary_path = output / "sft_summary.json"
    sft = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    total = funnel[0][1]
    rows = [{"stage": label, "count": str(n), "share": f"{100 * n / total:.1f}%" if total else "-"}
            for label, n in funnel]
    loss = sft.get("last_loss")
    rows.append({"stage": "fine-tuning steps", "count": str(sft.get("steps", "-")), "share": "-"})
    rows.append({"stage": "last loss", "count": "-" if loss is None else f"{loss:.3f}", "share": "-"})
    return IftResult(model_dir=final, log_path=str(data), seconds=time.perf_counter() - started, rows=rows)


__all__ = ["IftConfig", "IftResult", "run_ift"]
