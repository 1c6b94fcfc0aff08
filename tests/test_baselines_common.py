"""Run bookkeeping every baseline shares (pasr.baselines.common): summaries over reruns, what a folder holds."""

from __future__ import annotations

import json

from pasr.baselines import common


def test_a_rerun_adds_its_time_to_the_summary_instead_of_replacing_it(tmp_path):
    path = tmp_path / "x_summary.json"
    first = common.write_summary(path, {"rows": [1]}, 94.12)
    assert first == {"rows": [1], "seconds": 94.1, "invocation_seconds": [94.1]}
    second = common.write_summary(path, {"rows": [2]}, 0.1)  # a rerun that found everything done
    assert second["seconds"] == 94.2 and second["invocation_seconds"] == [94.1, 0.1] and second["rows"] == [2]
    assert json.loads(path.read_text()) == second


def test_a_summary_from_before_the_list_and_an_unreadable_one(tmp_path):
    path = tmp_path / "x_summary.json"
    path.write_text(json.dumps({"seconds": 60.0}))
    assert common.write_summary(path, {}, 5)["invocation_seconds"] == [60.0, 5.0]
    path.write_text("{")
    assert common.write_summary(path, {}, 5)["invocation_seconds"] == [5.0]


def test_produced_ignores_the_folders_bookkeeping(tmp_path):
    for name in (common.SETTINGS_FILE, ".pasr-run.json", ".pasr.lock", ".pasr.lock.json"):
        (tmp_path / name).write_text("{}")
    assert common.produced(tmp_path) == [] and common.produced(tmp_path / "missing") == []
    (tmp_path / "stage1").mkdir()
    assert common.produced(tmp_path) == [tmp_path / "stage1"]
