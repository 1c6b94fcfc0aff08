"""Run by tests/test_run_folders.py: a 4-step PASR run on the tiny model that kills itself (SIGKILL) at a chosen moment.

    python train_kill_script.py OUTPUT_DIR MOMENT [--resume]

MOMENT is ``none`` or ``EVENT:K``, the K-th occurrence (1-based) of EVENT:

* ``after-append``      the rollout rows of a step were written (flushed and fsynced)
* ``mid-append``        half of a step's rollout rows were written, the last one cut mid-line
* ``mid-checkpoint``    a checkpoint folder holds the model but not yet its trainer_state.json
* ``after-checkpoint``  a checkpoint was saved completely

Checkpoints every 2 steps (2 and 4). On a normal exit it prints one JSON line:
``{"appended_steps": [...]}``, the steps whose rows this process appended.
"""

import json
import os
import signal
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from train_helpers import LengthScorer, tiny_config, tiny_records  # noqa: E402

from pasr.train.config import ModelConfig  # noqa: E402
from pasr.train.grpo import PasrGRPOTrainer, train_pasr  # noqa: E402
from pasr.train.rollout_log import RolloutLog  # noqa: E402


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    out, moment = sys.argv[1], sys.argv[2]
    resume = "--resume" in sys.argv
    event, _, k = moment.partition(":")
    k = int(k or 0)
    seen = {"after-append": 0, "mid-append": 0, "mid-checkpoint": 0, "after-checkpoint": 0}
    appended: list[int] = []

    def hit(name: str) -> bool:
        seen[name] += 1
        return event == name and seen[name] == k

    original_append = RolloutLog.append

    def append(self, rows):
        rows = list(rows)
        if hit("mid-append"):
            half = rows[: len(rows) // 2]
            original_append(self, half)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(rows[len(half)])[:40])
                fh.flush()
                os.fsync(fh.fileno())
            die()
        original_append(self, rows)
        appended.extend(sorted({r["step"] for r in rows}))
        if hit("after-append"):
            die()

    original_state_save = None

    def save_checkpoint(self, model, trial):
        from transformers.trainer_callback import TrainerState

        nonlocal original_state_save
        original_state_save = TrainerState.save_to_json

        def cut(state, path):
            if hit("mid-checkpoint"):
                die()
            original_state_save(state, path)

        TrainerState.save_to_json = cut
        try:
            super(PasrGRPOTrainer, self)._save_checkpoint(model, trial)
        finally:
            TrainerState.save_to_json = original_state_save
        if hit("after-checkpoint"):
            die()

    RolloutLog.append = append
    PasrGRPOTrainer._save_checkpoint = save_checkpoint
    config = tiny_config(out, max_steps=4, save_strategy="steps", save_steps=2)
    train_pasr(config, ModelConfig(model_name_or_path="tiny-random"), scorer=LengthScorer(),
               records=tiny_records(), resume=resume)
    print(json.dumps({"appended_steps": appended}))


if __name__ == "__main__":
    main()
