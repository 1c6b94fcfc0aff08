"""Two processes (torchrun, gloo): a question's baseline is the mean over its own n samples, even when
its group is split across ranks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from itertools import groupby
from pathlib import Path

import pytest

from pasr.train.rollout_log import read_rollouts

G, N = 4, 6


@pytest.fixture(scope="module")
def two_rank_rollouts(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "run"
    script = Path(__file__).with_name("dist_baseline_script.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # One retry of the start-up: once, in a full-suite run, the two-process start failed and did not recur in 6
    # reruns (probably the free-port race below). Every assertion applies to the run that finished.
    for attempt in range(2):
        with socket.socket() as sock:  # torchrun's --master_port 0 hangs with gloo; pick a free port instead
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
        proc = subprocess.run([*torchrun, str(script), str(out / f"try{attempt}")], env=env, capture_output=True,
                              text=True, timeout=300)
        if proc.returncode == 0:
            break
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = out / f"try{attempt}"
    return read_rollouts(out / "rollouts.jsonl")


def test_groups_span_ranks_and_baselines_match_recomputation(two_rank_rollouts):
    rows = two_rank_rollouts
    assert len(rows) == 2 * 12
    spanning = 0
    for _, step_rows in groupby(rows, key=lambda r: r["step"]):
        step_rows = list(step_rows)
        assert len(step_rows) == 12
        for start in range(0, 12, G):
            group = step_rows[start : start + G]
            assert len({r["id"] for r in group}) == 1, "a GRPO group must hold one question"
            spanning += len({r["rank"] for r in group}) > 1
            # independent recomputation from the logged standard samples' texts
            pooled = [(len(s["text"]) % 7) / 6 for r in group for s in r["baseline_samples"]]
            assert len(pooled) == G * 2  # ceil(N / G) = 2 samples per slot
            for r in group:
                assert r["baseline"] == pooled[:N]
    assert spanning >= 2  # the middle question of each of the 2 steps
