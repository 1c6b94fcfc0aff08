"""Time the README's main command, part by part, in a clone: the figure the README states for it.

Why: the README promises "set up + train + evaluate + report" on the built-in default in a stated time, and
a new user plans their first hour by it. This reads the first ``bash`` block under "## Two commands" of the
clone's README, splits it at ``&&``, runs the parts in order in the clone (stopping at the first failure),
writes each part's output to ``LOG_DIR/<n>.log`` and prints each part's wall time and exit code, then the
total. Run it from a fresh clone on a quiet machine (nothing else running), since the time is the figure.

    git clone REPO /tmp/fresh && python bench/readme_main_command.py --clone /tmp/fresh [--log-dir /tmp/fresh-logs]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path


def main_command(readme: Path) -> list[str]:
    """The parts (split at ``&&``) of the first bash block under the "Two commands" heading."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    if block is None:
        raise SystemExit(f"{readme}: no bash block under '## Two commands'")
    command = " ".join(line.rstrip("\\").strip() for line in block.group(1).strip().splitlines())
    return [part.strip() for part in command.split("&&")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clone", type=Path, required=True, help="A fresh clone of the repository.")
    parser.add_argument("--log-dir", type=Path, default=None, help="Default: CLONE/../<clone name>-logs")
    args = parser.parse_args()
    clone = args.clone.resolve()
    logs = args.log_dir or clone.parent / f"{clone.name}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    started = time.perf_counter()
    for n, part in enumerate(main_command(clone / "README.md"), 1):
        t0 = time.perf_counter()
        with open(logs / f"{n}.log", "w", encoding="utf-8") as log:
            rc = subprocess.run(part, shell=True, cwd=clone, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        rows.append({"part": part, "seconds": round(time.perf_counter() - t0, 1), "rc": rc, "log": str(logs / f"{n}.log")})
        print(f"{rows[-1]['seconds'] / 60:6.1f} min  rc {rc}  {part[:100]}", flush=True)
        if rc:
            break
    total = time.perf_counter() - started
    print(f"{total / 60:6.1f} min  total")
    (logs / "timing.json").write_text(json.dumps({"parts": rows, "total_seconds": round(total, 1)}, indent=2) + "\n")
    return max(r["rc"] for r in rows)


if __name__ == "__main__":
    raise SystemExit(main())
