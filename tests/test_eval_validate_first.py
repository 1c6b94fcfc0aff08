"""`pasr eval` checks every input before it writes anything (issue 16, point B).

A bad model name, benchmark, method, data file, option, backend, judge or output path ends the command
with exit code 2 and one ``error:`` line on stderr, before any progress line, and leaves ``--output`` as it
was: absent when it was absent (no folder, run.json, lock file or benchmark folder), byte for byte the
same when it existed. Most cases run the command in-process (Typer's runner); a few run the real
``pasr`` script, as tests/test_cli_bad_input.py does for the training commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from typer.testing import CliRunner

from pasr.cli import app

PASR = Path(sys.executable).parent / "pasr"
runner = CliRunner()
BASE = ["eval", "--benchmark", "synthetic", "--limit", "2", "--max-tokens", "4", "--methods", "vanilla"]


def snapshot(path: Path) -> dict[str, bytes | None] | None:
    """Every file and folder under ``path`` (hidden ones too) with its bytes; None when ``path`` is absent."""
    if not path.exists():
        return None
    if path.is_file():
        return {".": path.read_bytes()}
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


def refused(args: list[str], output: Path, *needles: str) -> str:
    """Run `pasr eval ARGS --output OUTPUT` in-process; check the refusal and that OUTPUT is untouched."""
    before = snapshot(output)
    result = runner.invoke(app, [*args, "--output", str(output)])
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout.strip() == "", result.stdout  # no progress line, no table
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert snapshot(output) == before, f"{output} changed"
    return lines[0]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PASR_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


# --- the model --------------------------------------------------------------------------------


def test_unknown_model_name(tmp_path):
    refused([*BASE, "--model", "no-such-model"], tmp_path / "run", "no-such-model", "built-in")


def test_missing_model_folder(tmp_path):
    refused([*BASE, "--model", str(tmp_path / "runs" / "pasr-cpu" / "final")], tmp_path / "run", "no such folder")


def test_hub_id_that_is_not_available(tmp_path):
    refused([*BASE, "--model", "nobody-here/no-such-model"], tmp_path / "run", "nobody-here/no-such-model")


def test_folder_without_a_model(tmp_path):
    (tmp_path / "empty-model").mkdir()
    refused([*BASE, "--model", str(tmp_path / "empty-model")], tmp_path / "run", "holds no model")


def test_folder_whose_config_does_not_load(tmp_path):
    """config.json is there, so the name resolves; reading it fails: still before anything is written."""
    broken = tmp_path / "broken" / "final"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{ not json")
    refused([*BASE, "--model", str(broken)], tmp_path / "run", "broken", "not a valid JSON")


@pytest.fixture(scope="module")
def cut_weights(tmp_path_factory):
    """A copy of the tiny model whose weights file was cut short (a copy killed halfway)."""
    import shutil

    from pasr.models import resolve

    folder = tmp_path_factory.mktemp("cut") / "pasr-cpu" / "final"
    shutil.copytree(resolve("tiny-random"), folder)
    for weights in folder.glob("*.safetensors"):
        weights.write_bytes(weights.read_bytes()[:1000])
    return folder


def test_model_whose_weights_do_not_load(tmp_path, cut_weights):
    """The tokenizer loads, the weights do not (a library error, not an OSError): one line, nothing written."""
    refused([*BASE, "--model", str(cut_weights)], tmp_path / "run", str(cut_weights), "cannot load")


def test_model_that_does_not_load_leaves_an_existing_run_folder_as_it_was(tmp_path, cut_weights):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused([*BASE, "--model", str(cut_weights)], out)


# --- names, data, options -----------------------------------------------------------------------


@pytest.mark.parametrize("args, needles", [
    (["--benchmark", "gsm9k"], ["unknown benchmark 'gsm9k'"]),
    (["--methods", "vanilla,reflexion"], ["unknown method 'reflexion'"]),
    (["--methods", " , "], ["--methods"]),
    (["--backend", "tgi"], ["unknown backend 'tgi'"]),
    (["--dtype", "float16"], ["--dtype", "float16"]),
    (["--limit", "0"], ["--limit"]),
    (["--rounds", "0"], ["--rounds"]),
    (["--max-tokens", "0"], ["--max-tokens"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--chunk-size", "0"], ["--chunk-size"]),
    (["--temperature", "-1"], ["--temperature"]),
    (["--temperature", "nan"], ["--temperature"]),
    (["--seed", "-3"], ["--seed"]),
    (["--label", " "], ["--label"]),
    (["--backend", "openai"], ["--base-url"]),
    (["--backend", "openai", "--base-url", "localhost:8000"], ["--base-url", "http"]),
    (["--judge-url", "http://127.0.0.1:9/v1"], ["--judge-url", "--judge-model"]),
    (["--analyses"], ["--analyses"]),
    (["--benchmark", "synthetic,gsm8k", "--data-file", "x.jsonl"], ["single --benchmark"]),
])
def test_bad_names_and_options(tmp_path, args, needles):
    refused([*BASE, "--model", "tiny-random", *args], tmp_path / "run", *needles)


def test_missing_data_file(tmp_path):
    refused([*BASE, "--model", "tiny-random", "--data-file", str(tmp_path / "nope.jsonl")], tmp_path / "run",
            "--data-file", "no such file")


def test_data_file_is_a_folder_and_data_dir_is_a_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data.jsonl").write_text("{}\n")
    refused([*BASE, "--model", "tiny-random", "--data-file", str(tmp_path / "data")], tmp_path / "run", "folder")
    refused([*BASE, "--model", "tiny-random", "--data-dir", str(tmp_path / "data.jsonl")], tmp_path / "run", "file")


def test_data_file_that_does_not_load(tmp_path):
    bad = tmp_path / "gsm8k.jsonl"
    bad.write_text('{"question": "1+1?", "answer": "#### 2"}\nnot json at all\n')
    refused(["eval", "--model", "tiny-random", "--benchmark", "gsm8k", "--data-file", str(bad)], tmp_path / "run",
            "gsm8k.jsonl")


def test_vllm_backend_without_vllm(tmp_path):
    try:
        import vllm  # noqa: F401
    except ImportError:
        refused([*BASE, "--model", "tiny-random", "--backend", "vllm"], tmp_path / "run", "vllm", "pip install")
    else:
        pytest.skip("vllm is installed")


# --- servers: the OpenAI backend and the judge ---------------------------------------------------


def like_vllm_serve(served: str):
    """A responder that, like `vllm serve`, answers 404 for a model it does not serve."""
    def reply(request):
        if request.body.get("model") != served:
            return Reply(status=404, error_message=f"The model `{request.body.get('model')}` does not exist.")
        return "<answer>1</answer>"
    return reply


def test_openai_backend_model_not_served(tmp_path):
    with FakeOpenAIServer(like_vllm_serve("served-model"), models=["served-model"]) as server:
        refused([*BASE, "--backend", "openai", "--base-url", server.base_url, "--model", "wrong-name"],
                tmp_path / "run", "wrong-name", "served-model")
        assert server.count <= 1  # at most the one-token probe


def test_openai_backend_server_down(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused([*BASE, "--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m"],
            tmp_path / "run", f"127.0.0.1:{port}", "did not answer")


def test_judge_model_not_served_when_analyses_need_it(tmp_path):
    with FakeOpenAIServer(lambda r: "x", models=["judge-a"]) as server:
        refused([*BASE, "--model", "tiny-random", "--analyses", "--judge-url", server.base_url,
                 "--judge-model", "judge-b"], tmp_path / "run", "judge-b")


# --- the output path ----------------------------------------------------------------------------


def test_output_is_a_file(tmp_path):
    target = tmp_path / "run"
    target.write_text("not a folder")
    refused([*BASE, "--model", "tiny-random"], target, "not a folder")


def test_output_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    refused([*BASE, "--model", "tiny-random"], tmp_path / "afile" / "run", "afile")


def test_output_of_another_command(tmp_path):
    out = tmp_path / "train-run"
    out.mkdir()
    (out / ".pasr-run.json").write_text(json.dumps({"command": "pasr train"}) + "\n")
    message = refused([*BASE, "--model", "tiny-random"], out, "pasr train")
    assert not (out / ".pasr.lock").exists() and "pasr eval" in message


def test_rerun_with_other_settings_touches_nothing(tmp_path):
    out = tmp_path / "run"
    ok = runner.invoke(app, [*BASE, "--model", "tiny-random", "--output", str(out)])
    assert ok.exit_code == 0, ok.output
    refused([*BASE, "--model", "tiny-random", "--max-tokens", "5"], out, "max_tokens=4")
    refused([*BASE, "--model", "tiny-random", "--methods", "magic"], out, "magic")
    refused([*BASE, "--model", "no-such-model"], out, "no-such-model")


# --- the real script ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory):
    """A few real `pasr eval` runs, started together."""
    root = tmp_path_factory.mktemp("eval-cli")
    (root / "afile").write_text("x")
    runs = {
        "unknown model": (["--model", "no-such-model"], ["no-such-model"], root / "o1"),
        "hub-shaped missing folder": (["--model", "runs/final"], ["runs/final"], root / "o2"),
        "output a file": (["--model", "tiny-random"], ["afile", "not a folder"], root / "afile"),
        "missing data file": (["--model", "tiny-random", "--data-file", str(root / "no.jsonl")], ["no.jsonl"],
                              root / "o4"),
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "80", "HF_HUB_OFFLINE": "1"}
    before = {name: snapshot(out) for name, (_, _, out) in runs.items()}
    procs = {name: subprocess.Popen([str(PASR), *BASE, *args, "--output", str(out)], cwd=root, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (args, _, out) in runs.items()}
    results = {name: (proc.wait(timeout=300), *proc.communicate()) for name, proc in procs.items()}
    return runs, results, before


@pytest.mark.parametrize("name", ["unknown model", "hub-shaped missing folder", "output a file", "missing data file"])
def test_real_script_refuses_with_one_line_and_writes_nothing(script_runs, name):
    runs, results, before = script_runs
    _, needles, out = runs[name]
    rc, stdout, stderr = results[name]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2, (rc, stdout, stderr)
    assert "Traceback" not in stderr and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert stdout.strip() == "", stdout  # no progress line before the error
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert snapshot(out) == before[name]


def test_build_backend_errors_are_one_pasr_error(tmp_path, monkeypatch):
    """A hub-shaped name that fails to load says no such local folder exists either; a library's own
    exception (not OSError/ValueError) becomes a PasrError naming the model."""
    from pasr import models
    from pasr.errors import PasrError
    from pasr.eval.runner import EvalSettings, build_backend
    from pasr.generation import backends

    monkeypatch.setattr(models, "resolve", lambda name, cache_dir=None: name)

    def fail(kind, model, **kwargs):
        if model == "runs/final":
            raise PasrError("model 'runs/final': cannot load its tokenizer from runs/final: not on the hub")
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(backends, "make_backend", fail)
    s = EvalSettings(model="runs/final", benchmarks=["synthetic"], methods=["vanilla"], output=tmp_path / "r")
    with pytest.raises(PasrError, match=r"not on the hub \(there is no local folder runs/final either\)"):
        build_backend(s)
    s.model = "tiny-random"
    with pytest.raises(PasrError, match=r"model 'tiny-random': the transformers backend cannot load it "
                                        r"\(RuntimeError: CUDA out of memory\)"):
        build_backend(s)
