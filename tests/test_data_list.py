"""`pasr data list` reads well at any terminal width: one line per benchmark, no line wider than the terminal
(issue 16: at 80 columns the table wrapped into ~100 lines). Run as a user runs it, with COLUMNS set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pasr.data.benchmarks import BENCHMARKS

HEADER_AND_FOOTER = 3  # column names, the rule under them, the hint line


def _data_list(columns: int, *args: str) -> list[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("LINES", None)
    done = subprocess.run([sys.executable, "-c", "from pasr.cli import main; main()", "data", "list", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.fixture(scope="module")
def outputs():
    return {columns: _data_list(columns) for columns in (80, 120, 200)}


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_one_line_per_benchmark_within_the_width(outputs, columns):
    lines = outputs[columns]
    assert len(lines) <= len(BENCHMARKS) + HEADER_AND_FOOTER, "\n".join(lines)
    assert max(len(line) for line in lines) <= columns, "\n".join(lines)
    starts = [line.split()[0] for line in lines if line.strip()]
    assert [name for name in starts if name in BENCHMARKS] == list(BENCHMARKS)  # each one, once, in order
    for spec in BENCHMARKS.values():
        [line] = [line for line in lines if line.split() and line.split()[0] == spec.name]
        assert f" {spec.task} " in line and (spec.local_file or " - ") in line
        if spec.size:
            assert f" {spec.size} " in line
    assert "--long" in lines[-1]


def test_wide_terminal_shows_sources_and_descriptions(outputs):
    text = "\n".join(outputs[200])
    for spec in BENCHMARKS.values():
        hub = "generated" if spec.generated else " ".join(filter(None, [spec.hub_id, spec.hub_config, spec.split]))
        assert hub in text  # whole at 200 columns
        assert spec.description[:40] in text
    narrow = "\n".join(outputs[80])
    assert "openai/gsm8k main test" in narrow and "HuggingFaceH4/" in narrow  # cut with … only where needed


def test_long_prints_every_description_whole_at_80_columns():
    lines = _data_list(80, "--long")
    assert max(len(line) for line in lines) <= 80
    words = " ".join(lines).split()
    text = " ".join(words)
    for spec in BENCHMARKS.values():
        assert " ".join(spec.description.split()) in text, spec.name
