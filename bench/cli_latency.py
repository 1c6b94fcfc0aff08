"""How long the CLI takes to answer before any work: version, option listing, typos, bad input, offline hub ids.

Why: a new user's first minutes are `pasr --version`, `pasr train --fields`, a mistyped flag, an unknown
model and, on a machine without internet, a hub id. Each should answer in a second or two, not after
importing TRL (6-40 s) or retrying the hub for a minute. Each case runs `--repeats` times in a fresh
process (no warm Python) and prints the median and worst wall time, the exit code and stderr's line count.

    OMP_NUM_THREADS=1 python bench/cli_latency.py [--repeats 3] [--pasr .venv/bin/pasr]
    # another checkout, e.g. the commit before a change:
    PYTHONPATH=/tmp/before/src python bench/cli_latency.py --pasr "python -m pasr.cli"
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {  # name: (arguments, extra environment)
    "pasr --version": (["--version"], {}),
    "pasr train --fields": (["train", "--fields"], {}),
    "pasr train --fields lora": (["train", "--fields", "lora"], {}),
    "typo: pasr train --max_stpes 3": (["train", "--max_stpes", "3"], {}),
    "typo: pasr sft --lerning_rate 1": (["sft", "--lerning_rate", "1"], {}),
    "bad value: pasr train --max_steps 0": (["train", "--max_steps", "0"], {}),
    "unknown model: pasr eval": (["eval", "--model", "no-such-model", "--benchmark", "synthetic", "--limit", "1",
                                  "--output", "{tmp}/run"], {}),
    "hub dataset, HF_HUB_OFFLINE=1: pasr eval -b gsm8k": (
        ["eval", "--model", "tiny-random", "--benchmark", "gsm8k", "--limit", "1", "--output", "{tmp}/run"],
        {"HF_HUB_OFFLINE": "1"}),
    "hub dataset, no network: pasr eval -b gsm8k": (
        ["eval", "--model", "tiny-random", "--benchmark", "gsm8k", "--limit", "1", "--output", "{tmp}/run"], {}),
    "hub model, no network: pasr eval -m Org/Model": (
        ["eval", "--model", "HuggingFaceTB/SmolLM2-135M-Instruct", "--benchmark", "synthetic", "--limit", "1",
         "--output", "{tmp}/run"], {}),
}


def run(pasr: str, args: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """Seconds, exit code and stderr line count of one ``pasr`` call in a fresh temp folder."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*shlex.split(pasr), *(a.format(tmp=tmp) for a in args)]
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=600,
                              check=False)
        seconds = time.perf_counter() - started
    return seconds, done.returncode, len(done.stderr.strip().splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pasr", default=str(Path(sys.executable).parent / "pasr"), help="The command to time.")
    parser.add_argument("--only", default="", help="Run only cases whose name holds this text.")
    args = parser.parse_args()
    print(f"{'case':55} {'median s':>9} {'max s':>7} {'rc':>3} {'stderr lines':>12}")
    for name, (argv, env) in CASES.items():
        if args.only not in name:
            continue
        runs = [run(args.pasr, argv, env) for _ in range(args.repeats)]
        seconds = [r[0] for r in runs]
        print(f"{name:55} {statistics.median(seconds):9.2f} {max(seconds):7.2f} {runs[-1][1]:3d} {runs[-1][2]:12d}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
