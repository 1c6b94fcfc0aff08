"""PASR(+IFT): the rollout filters keep exactly the right lines; the SFT set and a short fine-tune work."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from train_helpers import generate_with
from typer.testing import CliRunner

from pasr.baselines.ift import IftFilter, build_ift_data, filter_rollouts, read_rollout_log
from pasr.cli import app
from pasr.errors import PasrError
from pasr.prompts import PASR_SYSTEM_PROMPT, chat
from pasr.train.sft import read_chat_examples

LOG = Path(__file__).parent / "fixtures" / "ift" / "rollouts.jsonl"
"""Hand-made log; each row's id says whether the default filters must keep it and why not."""


def kept_ids(flt: IftFilter) -> list[str]:
    kept, _ = filter_rollouts(read_rollout_log(LOG), flt)
    return [row["id"] for row in kept]


def test_default_filters_keep_valid_refining_rows_with_positive_refine_reward():
    assert kept_ids(IftFilter()) == ["keep-plus-one", "keep-duplicate", "keep-partial-f1"]
    # the fixture's ids encode the expectation; keep the two in step
    assert all(row["id"].startswith("drop-") for row in read_rollout_log(LOG)
               if row["id"] not in kept_ids(IftFilter()))


def test_funnel_counts_are_cumulative():
    _, funnel = filter_rollouts(read_rollout_log(LOG), IftFilter(min_accuracy=1.0, dedupe=True))
    assert funnel == [
        ("rollouts", 9),
        ("valid format", 7),
        ("refines", 5),
        ("refine reward > 0", 3),
        ("accuracy >= 1", 2),
        ("distinct (question, completion)", 1),
    ]


@pytest.mark.parametrize(
    "flt, expected",
    [
        # the invalid row that refined with reward +1 comes back once validity is not required
        (IftFilter(require_valid=False), ["keep-plus-one", "drop-invalid-format", "keep-duplicate", "keep-partial-f1"]),
        # -0.5 passes a threshold of -1 (strictly greater), -1 does not
        (IftFilter(min_refine_reward=-1.0),
         ["keep-plus-one", "drop-refine-minus-half", "keep-duplicate", "keep-partial-f1"]),
        # refine reward 0 (no refine) never passes "> 0", even without the refine test
        (IftFilter(require_refine=False), ["keep-plus-one", "keep-duplicate", "keep-partial-f1"]),
        # both off: every valid row
        (IftFilter(require_refine=False, min_refine_reward=-math.inf),
         ["keep-plus-one", "drop-no-refine", "drop-refine-minus-half", "drop-refine-minus-one", "keep-duplicate",
          "keep-partial-f1", "drop-no-refine-wrong"]),
        (IftFilter(min_refine_reward=None, require_refine=True),
         ["keep-plus-one", "drop-refine-minus-half", "drop-refine-minus-one", "keep-duplicate", "keep-partial-f1"]),
        (IftFilter(min_accuracy=1.0), ["keep-plus-one", "keep-duplicate"]),
        (IftFilter(dedupe=True), ["keep-plus-one", "keep-partial-f1"]),
    ],
)
def test_each_filter_option(flt, expected):
    assert kept_ids(flt) == expected


def test_examples_are_pasr_chat_and_read_by_sft(tmp_path):
    out = build_ift_data(LOG, tmp_path / "data.jsonl")
    assert out.examples == 3
    rows = {row["id"]: row for row in read_rollout_log(LOG)}
    lines = [json.loads(line) for line in out.path.read_text().splitlines()]
    for line in lines:
        source = rows[line["id"]]
        assert line["prompt"] == chat(PASR_SYSTEM_PROMPT, source["question"], source["task"])
        assert line["completion"] == [{"role": "assistant", "content": source["completion"]}]
        assert line["refine_reward"] > 0
    examples = read_chat_examples(str(out.path))
    assert [e["completion"][0]["content"] for e in examples] == [rows[line["id"]]["completion"] for line in lines]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"bad\.jsonl, line 3: malformed JSON"),
        ('["a list"]', r"bad\.jsonl, line 3: expected a JSON object"),
        ('{"question": "q", "task": "arith", "completion": "c", "trace": {"valid": true, "refined": true}, '
         '"accuracy": 1.0}', r"bad\.jsonl, line 3: rollout row lacks rewards"),
        ('{"question": "q", "task": "arith", "completion": "c", "trace": {"valid": true}, "rewards": {"refine": 1}, '
         '"accuracy": 1.0}', r"bad\.jsonl, line 3: field 'trace' needs"),
        ('{"question": "q", "task": "arith", "completion": "c", "trace": {"valid": true, "refined": true}, '
         '"rewards": {"refine": "high"}, "accuracy": 1.0}', r"bad\.jsonl, line 3: field 'rewards.refine' must be a number"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    good = LOG.read_text().splitlines()[:2]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*good, line]) + "\n")
    with pytest.raises(PasrError, match=message):
        read_rollout_log(bad)


def test_cli_prints_funnel_and_writes_beside_log_by_default(tmp_path):
    log = tmp_path / "run" / "rollouts.jsonl"
    log.parent.mkdir()
    log.write_text(LOG.read_text())
    result = CliRunner().invoke(app, ["ift-data", str(log), "--min-accuracy", "1", "--dedupe"])
    assert result.exit_code == 0, result.output
    for label, count in (("rollouts", 9), ("valid format", 7), ("refines", 5), ("refine reward > 0", 3),
                         ("accuracy >= 1", 2), ("distinct", 1)):
        assert any(label in row and f" {count} " in row for row in result.output.splitlines()), (label, result.output)
    written = tmp_path / "run" / "ift-data.jsonl"
    assert [json.loads(x)["id"] for x in written.read_text().splitlines()] == ["keep-plus-one"]


def test_cli_no_survivors_is_an_error_and_writes_nothing(tmp_path):
    out = tmp_path / "data.jsonl"
    result = CliRunner().invoke(app, ["ift-data", str(LOG), "-o", str(out), "--min-refine-reward", "1"])
    assert isinstance(result.exception, PasrError)
    assert "no rollout passed" in str(result.exception)
    assert "refine reward > 1" in result.output  # the funnel is still shown
    assert not out.exists()


def test_short_ift_run_saves_a_model_eval_loads(tmp_path):
    """`pasr sft` with the CPU IFT recipe on the tiny model: 2 steps, saved, loadable by the eval backend."""
    data = build_ift_data(LOG, tmp_path / "data.jsonl").path
    out = tmp_path / "ift"
    result = CliRunner().invoke(app, [
        "sft", "--config", "cpu-ift.yaml", "--model_name_or_path", "tiny-random", "--data_file", str(data),
        "--output_dir", str(out), "--max_steps", "2", "--bf16", "false", "--max_length", "256",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "sft_summary.json").read_text())
    assert summary["examples"] == 3 and summary["steps"] == 2
    generate_with(out / "final", 4, PASR_SYSTEM_PROMPT, "What is 2 + 3?")
