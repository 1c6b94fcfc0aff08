"""Run by tests/test_train_distributed.py under `torchrun --nproc_per_node 2`: a short PASR run whose
groups span both ranks. Writes the rollout log to OUTPUT_DIR/rollouts.jsonl for the test to check."""

import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from train_helpers import LengthScorer, tiny_config, tiny_records  # noqa: E402

from pasr.train.config import ModelConfig  # noqa: E402
from pasr.train.grpo import train_pasr  # noqa: E402

if __name__ == "__main__":
    out = sys.argv[1]
    # 2 ranks x 6 slots = 12 = 3 questions x G 4: the middle question's group spans both ranks.
    config = tiny_config(out, per_device_train_batch_size=6, baseline_samples=6, max_steps=2)
    train_pasr(config, ModelConfig(model_name_or_path="tiny-random"), scorer=LengthScorer(), records=tiny_records(12))
