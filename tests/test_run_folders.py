"""Run folders (issue 11): one writer at a time, nothing lost or doubled after kill -9, bad output paths refused.

The kill tests run the real commands in subprocesses and SIGKILL them: `pasr train` through
tests/train_kill_script.py (kills itself at a named moment), `pasr eval` against the fake
OpenAI server (killed from here once its results file reaches a given size).
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fake_openai_server import FakeOpenAIServer, Reply
from pasr.cli import app
from pasr.errors import PasrError
from pasr.jsonl import append_jsonl, read_jsonl, repair_tail, set_aside_corrupt
from pasr.run_folder import HOLDER_FILE, RunLock, check_output_folder

TESTS = Path(__file__).resolve().parent
PASR = str(Path(sys.executable).with_name("pasr"))
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


# --- the lock ----------------------------------------------------------------------------------------------

HOLD = """
import sys, time
from pasr.run_folder import RunLock
held = RunLock(sys.argv[1], "pasr eval").acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_is_refused_naming_the_holder_and_a_kill_9_frees_the_folder(tmp_path):
    folder = tmp_path / "run"
    proc = _holder(folder)
    try:
        with pytest.raises(PasrError, match=rf"in use by another pasr eval \(pid {proc.pid} on .*since"):
            RunLock(folder, "pasr eval").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (folder / HOLDER_FILE).exists()  # the dead holder's record stays; it does not block
    with RunLock(folder, "pasr eval"):
        assert json.loads((folder / HOLDER_FILE).read_text())["pid"] == os.getpid()
    assert not (folder / HOLDER_FILE).exists()
    with RunLock(folder, "pasr eval"):  # released on exit: taken again at once
        pass


def test_check_refuses_a_held_folder_and_creates_nothing(tmp_path):
    absent = tmp_path / "absent"
    RunLock(absent, "pasr eval").check()
    assert not absent.exists()
    folder = tmp_path / "run"
    proc = _holder(folder)
    try:
        before = sorted(p.name for p in folder.iterdir())
        with pytest.raises(PasrError, match=rf"in use by another pasr eval \(pid {proc.pid} "):
            RunLock(folder, "pasr eval").check()
        with pytest.raises(PasrError, match="holds a `pasr eval` run; `pasr train` needs its own folder"):
            RunLock(folder, "pasr train").check()
        assert sorted(p.name for p in folder.iterdir()) == before
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    RunLock(folder, "pasr eval").check()  # the holder died: free again


def test_eval_refuses_a_held_run_folder_before_loading_the_model(tmp_path):
    folder = tmp_path / "run"
    proc = _holder(folder)
    try:
        started = time.monotonic()
        done = subprocess.run([PASR, "eval", "--model", "tiny-random", "--benchmark", "synthetic", "--limit", "1",
                               "--output", str(folder)], capture_output=True, text=True, env=_env(), timeout=300)
        assert done.returncode == 2 and "is in use by another pasr eval" in done.stderr
        assert "loading" not in done.stderr + done.stdout and time.monotonic() - started < 60
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_lock_is_released_when_the_command_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with RunLock(tmp_path, "pasr eval"):
            raise RuntimeError("boom")
    with RunLock(tmp_path, "pasr eval"):
        pass


def test_non_writing_ranks_take_no_lock(tmp_path, monkeypatch):
    proc = _holder(tmp_path)
    try:
        monkeypatch.setenv("RANK", "1")
        with RunLock(tmp_path, "pasr train", distributed=True):  # rank 1 writes nothing of its own: no refusal
            pass
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(PasrError, match="in use"):
            RunLock(tmp_path, "pasr train", distributed=True).acquire()
    finally:
        proc.kill()
        proc.wait()


def test_holder_record_unreadable_still_refuses_clearly(tmp_path):
    proc = _holder(tmp_path)
    try:
        (tmp_path / HOLDER_FILE).write_text("{torn")
        with pytest.raises(PasrError, match="in use by another pasr process"):
            RunLock(tmp_path, "pasr eval").acquire()
    finally:
        proc.kill()
        proc.wait()


# --- output paths ------------------------------------------------------------------------------------------


def test_output_folder_checks(tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("x")
    with pytest.raises(PasrError, match=r"--output .*results.txt: exists and is not a folder"):
        check_output_folder(a_file, "--output")
    with pytest.raises(PasrError, match=r"output_dir .*results.txt/run: .*results.txt is a file"):
        check_output_folder(a_file / "run", "output_dir")
    with pytest.raises(PasrError, match=r"is a file"):
        check_output_folder(a_file / "deeper" / "run", "output_dir")
    assert check_output_folder(tmp_path / "new" / "run", "--output") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()  # checking creates nothing


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_read_only_output_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PasrError, match="not writable"):
            check_output_folder(ro, "--output")
        with pytest.raises(PasrError, match="cannot be created"):
            check_output_folder(ro / "run", "--output")
    finally:
        ro.chmod(0o700)


def _eval_args(run: Path, *extra: str) -> list[str]:
    return ["eval", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
            "--benchmark", "synthetic", "--limit", "4", "--output", str(run), *extra]


@pytest.mark.parametrize(
    ("extra", "message"),
    [(("--chunk-size", "0"), r"--chunk-size must be at least 1"),
     (("--chunk-size", "-3"), r"--chunk-size must be at least 1"),
     ((), r"--output .*: exists and is not a folder"),
     (("--limit", "0"), r"--limit must be at least 1"),
     (("--seed", "-1"), r"--seed must be >= 0"),
     (("--temperature", "nan"), r"--temperature must be a number >= 0"),
     (("--temperature", "-0.5"), r"--temperature must be a number >= 0"),
     (("--dtype", "float16"), r"--dtype: unknown dtype 'float16'; use auto, float32, bfloat16"),
     (("--base-url", "localhost:8000"), r"--base-url 'localhost:8000': give an http\(s\) URL"),
     (("--judge-url", "ftp://x", "--judge-model", "j"), r"--judge-url 'ftp://x': give an http\(s\) URL"),
     (("--data-dir", "/no/such/dir"), r"--data-dir /no/such/dir: no such folder"),
     (("--data-file", "/no/such.jsonl"), r"--data-file /no/such.jsonl: no such file"),
     (("--data-file", "/"), r"--data-file /: is a folder"),
     (("--data-dir", __file__), r"--data-dir .*: is a file"),
     (("--max-tokens", "0"), r"--max-tokens must be at least 1"),
     (("--batch-size", "-2"), r"--batch-size must be at least 1"),
     (("--rounds", "0"), r"--rounds must be at least 1"),
     (("--methods", "vanilla,magic"), r"--methods: unknown method 'magic'")],
)
def test_eval_bad_options_are_one_line_rc_2_and_write_nothing(tmp_path, extra, message):
    target = tmp_path / "run"
    if not extra:
        target.write_text("not a folder")
    result = CliRunner().invoke(app, _eval_args(target, *extra))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1, result.output
    import re

    assert re.search(message, result.output.replace("\n", "")), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == (["run"] if not extra else [])


def test_eval_output_inside_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    result = CliRunner().invoke(app, _eval_args(tmp_path / "f" / "run"))
    assert result.exit_code == 2 and "is a file" in result.output


def test_failed_start_leaves_no_run_file_that_blocks_the_corrected_command(tmp_path):
    """`--model` at a folder that is not a model fails before writing; an old run.json without results never blocks."""
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", "--model", str(not_a_model), "--benchmark", "synthetic",
                                      "--limit", "2", "--output", str(run)])
    assert result.exit_code == 2
    assert "holds no model" in result.output and "sentencepiece" not in result.output
    assert not run.exists()
    # A run.json from an older start that died before its first example (no results) is replaced, not obeyed.
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"model": "something-else", "max_tokens": 99}))
    (run / "synthetic").mkdir()
    (run / "synthetic" / "vanilla.jsonl").write_text("")
    with FakeOpenAIServer(lambda r: "<answer>1</answer>") as server:
        result = CliRunner().invoke(app, ["eval", "--backend", "openai", "--base-url", server.base_url, "--model", "m",
                                          "--benchmark", "synthetic", "--limit", "2", "--methods", "vanilla",
                                          "--output", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "run.json").read_text())["model"] == "m"
    # Once results exist, other settings are refused as before.
    result = CliRunner().invoke(app, _eval_args(run, "--max-tokens", "7"))
    assert result.exit_code == 2 and "holds results with max_tokens" in result.output


# --- JSONL rule --------------------------------------------------------------------------------------------


def test_jsonl_rule(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n[1]\nnot json\n\n{"a": 2}\n\xff\xfe\n{"a": 3}\n{"a": 4, "b"')
    found = read_jsonl(path)
    assert [r["a"] for r in found.rows] == [1, 2, 3]
    assert found.numbers == [1, 5, 7]
    assert found.bad_lines == [2, 3, 6]
    assert [p.split(": ", 1)[0] for p in found.problems] == [f"{path}, line {n}" for n in (2, 3, 6)]
    assert repair_tail(path) and not repair_tail(path)
    aside = set_aside_corrupt(path, found.bad_lines)
    assert aside.read_bytes() == b'[1]\nnot json\n\xff\xfe\n'
    assert [r["a"] for r in read_jsonl(path).rows] == [1, 2, 3] and not read_jsonl(path).problems
    append_jsonl(path, [{"a": 5}])
    assert [r["a"] for r in read_jsonl(path).rows] == [1, 2, 3, 5]
    assert read_jsonl(tmp_path / "missing.jsonl").rows == []


# --- pasr train: kill -9 at named moments, then --resume ---------------------------------------------------

STEPS, ROWS_PER_STEP = 4, 8  # train_kill_script: 4 steps, 2 questions x G 4, checkpoints at steps 2 and 4


def _train(out: Path, moment: str, resume: bool) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(TESTS / "train_kill_script.py"), str(out), moment] + (["--resume"] if resume else [])
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)


def _complete_checkpoints(out: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists())


def _steps(out: Path) -> collections.Counter:
    return collections.Counter(r["step"] for r in read_jsonl(out / "rollouts.jsonl").rows)


@pytest.mark.parametrize(
    "moments",
    [
        # before any checkpoint (a torn write), then mid-save of the first checkpoint, then after a step
        ["mid-append:1", "mid-checkpoint:1", "after-append:1"],
        # right after the first checkpoint, then a step past it, then a torn write past it
        ["after-checkpoint:1", "after-append:1", "mid-append:1"],
    ],
    ids=["before-checkpoints", "after-checkpoints"],
)
def test_train_killed_at_moments_resumes_with_each_step_once(tmp_path, moments):
    out = tmp_path / "run"
    for i, moment in enumerate(moments):
        killed = _train(out, moment, resume=i > 0)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        steps = _steps(out)
        assert all(n <= ROWS_PER_STEP for n in steps.values()), steps  # no step twice
    newest = max(_complete_checkpoints(out), default=0)
    assert not list(out.glob("final")), "a killed run has no final model"
    done = _train(out, "none", resume=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["appended_steps"] == list(range(newest + 1, STEPS + 1))
    assert _steps(out) == {s: ROWS_PER_STEP for s in range(1, STEPS + 1)}
    raw = (out / "rollouts.jsonl").read_bytes()
    assert raw.endswith(b"\n") and not read_jsonl(out / "rollouts.jsonl").problems
    assert _complete_checkpoints(out) == [2, 4] and (out / "final" / "config.json").exists()
    if any(m.startswith("mid-checkpoint") for m in moments):
        assert (out / "incomplete-checkpoint-2").is_dir()
    discarded = read_jsonl(out / "rollouts.discarded.jsonl").rows
    assert discarded, "the killed runs' steps past their checkpoint were set aside, not deleted"


@pytest.mark.slow
@pytest.mark.parametrize("run", range(3))
def test_train_killed_at_random_times_resumes_with_each_step_once(tmp_path, run):
    """SIGKILL from outside at a random time (not a named moment), twice, then --resume to the end."""
    out = tmp_path / "run"
    rng = random.Random()
    for i in range(2):
        cmd = [sys.executable, str(TESTS / "train_kill_script.py"), str(out), "none"] + (["--resume"] if i else [])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        time.sleep(rng.uniform(8, 30))
        proc.kill()
        proc.communicate()
    newest = max(_complete_checkpoints(out), default=0)
    done = _train(out, "none", resume=True)
    assert done.returncode == 0, done.stderr[-3000:]
    appended = json.loads(done.stdout.strip().splitlines()[-1])["appended_steps"]
    assert appended == list(range(newest + 1, STEPS + 1)) or (newest == STEPS and appended == [])
    assert _steps(out) == {s: ROWS_PER_STEP for s in range(1, STEPS + 1)}


def test_resume_without_checkpoint_sets_earlier_rows_aside_and_repairs_a_torn_tail(tmp_path):
    """The unit behind the kill tests: what `--resume` does to the rollout log before training."""
    from pasr.train.rollout_log import RolloutLog

    log = RolloutLog(tmp_path / "rollouts.jsonl")
    log.append([{"step": 1, "i": 0}, {"step": 1, "i": 1}, {"step": 2, "i": 0}])
    with log.path.open("a") as fh:
        fh.write("not json\n")
    log.append([{"step": 3, "i": 0}])
    with log.path.open("a") as fh:
        fh.write('{"step": 3, "i"')
    assert log.truncate_after(0) == 4
    assert log.path.read_text() == ""
    assert (tmp_path / "rollouts.jsonl.corrupt").read_text() == "not json\n"
    assert [r["step"] for r in read_jsonl(tmp_path / "rollouts.discarded.jsonl").rows] == [1, 1, 2, 3]


# --- pasr eval: two writers, kill -9, torn and corrupt lines ---------------------------------------------


def _slow_server() -> FakeOpenAIServer:
    return FakeOpenAIServer(lambda r: Reply(content="<think>x</think><answer>1</answer>", delay=0.15))


def _eval_cmd(server: FakeOpenAIServer, run: Path, limit: int = 12) -> list[str]:
    return [PASR, "eval", "--backend", "openai", "--base-url", server.base_url, "--model", "m",
            "--benchmark", "synthetic", "--limit", str(limit), "--methods", "vanilla,pasr",
            "--batch-size", "2", "--chunk-size", "2", "--output", str(run)]


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _check_complete(run: Path, n: int) -> None:
    for method in ("vanilla", "pasr"):
        rows = read_jsonl(run / "synthetic" / f"{method}.jsonl").rows
        ids = [r["id"] for r in rows]
        assert len(ids) == n and len(set(ids)) == n, (method, collections.Counter(ids))
        assert json.loads((run / "synthetic" / f"{method}.summary.json").read_text())["n"] == n


def test_two_evals_into_one_run_folder_one_is_refused_and_nothing_doubles(tmp_path):
    run = tmp_path / "run"
    with _slow_server() as server:
        first = subprocess.Popen(_eval_cmd(server, run), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=_env())
        deadline = time.time() + 60
        while not (run / HOLDER_FILE).exists() and time.time() < deadline:
            time.sleep(0.1)
        second = subprocess.run(_eval_cmd(server, run), capture_output=True, text=True, env=_env(), timeout=120)
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2, second.stderr
    message = " ".join((second.stdout + second.stderr).split())
    assert f"is in use by another pasr eval (pid {first.pid}" in message and "Traceback" not in message
    _check_complete(run, 12)


@pytest.mark.parametrize("kill_at", [("vanilla", 4), ("pasr", 2)])
def test_eval_killed_then_rerun_finishes_each_id_once(tmp_path, kill_at):
    method, lines = kill_at
    run = tmp_path / "run"
    target = run / "synthetic" / f"{method}.jsonl"
    with _slow_server() as server:
        proc = subprocess.Popen(_eval_cmd(server, run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
        deadline = time.time() + 120
        while _lines(target) < lines and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 0 < _lines(target) < 12
        with target.open("a") as fh:  # what a kill mid-write leaves: a torn last line
            fh.write('{"id": "synthetic-9", "sco')
        done = subprocess.run(_eval_cmd(server, run), capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    _check_complete(run, 12)
    assert not (run / HOLDER_FILE).exists()


def test_eval_corrupt_middle_line_is_named_set_aside_and_redone(tmp_path):
    run = tmp_path / "run"
    with FakeOpenAIServer(lambda r: "<answer>1</answer>") as server:
        cmd = _eval_cmd(server, run, limit=6)
        assert subprocess.run(cmd, capture_output=True, env=_env(), timeout=300).returncode == 0
        path = run / "synthetic" / "pasr.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        victim = json.loads(lines[2])["id"]
        lines[2] = lines[2][:30] + "\n"  # a corrupt middle line
        lines.append(lines[0])  # and a doubled id, as two unlocked writers left them
        path.write_text("".join(lines))
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    said = " ".join((done.stdout + done.stderr).split())
    assert "pasr.jsonl, line 3: not valid JSON" in said and "moved to" in said
    assert "repeat an id" in said
    assert (run / "synthetic" / "pasr.jsonl.corrupt").read_text() == lines[2]
    rows = read_jsonl(path).rows
    assert [r["id"] for r in rows].count(victim) == 1  # redone once
    assert json.loads((run / "synthetic" / "pasr.summary.json").read_text())["n"] == 6
    report = CliRunner().invoke(app, ["report", str(run), "-o", str(tmp_path / "report")])
    assert report.exit_code == 0 and "repeat an id" in report.output


# --- found by a new user trying to break the above -----------------------------------------------------------


def test_checkpoint_with_a_cut_trainer_state_is_not_complete(tmp_path):
    from pasr.train.saving import last_complete_checkpoint

    for step, state in ((2, '{"global_step": 2}'), (4, '{"global_st'), (6, None)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert (tmp_path / "incomplete-checkpoint-4").is_dir() and (tmp_path / "incomplete-checkpoint-6").is_dir()


@pytest.mark.parametrize(("window", "kept"), [(1, [1, 1, 2, 3]), (2, [1, 1, 2]), (3, [1, 1])])
def test_resume_sets_aside_generations_whose_window_reaches_past_the_checkpoint(tmp_path, window, kept):
    """steps_per_generation > 1: a generation made for step g covers g..g+window-1; resumed at 3, TRL generates anew."""
    from pasr.train.rollout_log import RolloutLog

    log = RolloutLog(tmp_path / "rollouts.jsonl")
    log.append([{"step": s} for s in (1, 1, 2, 3, 4, 5)])
    log.truncate_after(3, window)
    assert [r["step"] for r in read_jsonl(log.path).rows] == kept


def test_generation_window_follows_trl():
    from types import SimpleNamespace

    from pasr.train.saving import generation_window

    def cfg(spg, ni, ga):
        return SimpleNamespace(steps_per_generation=spg, num_iterations=ni, gradient_accumulation_steps=ga)

    assert generation_window(cfg(1, 1, 1)) == 1 and generation_window(cfg(4, 1, 4)) == 1
    assert generation_window(cfg(2, 1, 1)) == 2 and generation_window(cfg(1, 2, 1)) == 2
    assert generation_window(cfg(4, 2, 2)) == 4 and generation_window(cfg(None, 1, 3)) == 1


def test_other_kind_of_command_is_refused_in_a_run_folder(tmp_path):
    with RunLock(tmp_path, "pasr train"):
        pass
    with pytest.raises(PasrError, match=r"holds a `pasr train` run; `pasr sft` needs its own folder"):
        RunLock(tmp_path, "pasr sft").acquire()
    with RunLock(tmp_path, "pasr train"):  # the same kind resumes; the refusal released the lock
        pass


def test_eval_locks_even_under_a_rank_variable(tmp_path, monkeypatch):
    proc = _holder(tmp_path)
    try:
        monkeypatch.setenv("RANK", "1")
        with pytest.raises(PasrError, match="in use"):
            RunLock(tmp_path, "pasr eval").acquire()
        with RunLock(tmp_path, "pasr eval", distributed=True):  # train-like commands: rank 1 takes no lock
            pass
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("value", ["", " "])
def test_empty_output_is_refused(value):
    with pytest.raises(PasrError, match="--output is empty"):
        check_output_folder(value, "--output")


def test_eval_error_is_one_line_on_stderr(tmp_path):
    not_a_model = tmp_path / "m"
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text("{}")  # looks like a model, cannot load
    done = subprocess.run([PASR, "eval", "--model", str(not_a_model), "--benchmark", "synthetic", "--limit", "1",
                           "--output", str(tmp_path / "run")], capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error:"), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    out = tmp_path / "run"
    assert _train(out, "none", resume=False).returncode == 0
    before = (out / "rollouts.jsonl").read_bytes()
    final = (out / "final" / "model.safetensors").stat().st_mtime_ns
    again = _train(out, "none", resume=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["appended_steps"] == []
    assert (out / "rollouts.jsonl").read_bytes() == before
    assert (out / "final" / "model.safetensors").stat().st_mtime_ns == final
    # Killed after the last checkpoint but before the final save: --resume saves that checkpoint's model, no step.
    import shutil

    shutil.rmtree(out / "final")
    again = _train(out, "none", resume=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["appended_steps"] == []
    assert (out / "final" / "config.json").exists() and _steps(out) == {s: ROWS_PER_STEP for s in range(1, STEPS + 1)}
