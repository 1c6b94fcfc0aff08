"""The runner: results layout, vanilla first, resume after an interruption, bad names, run.json checks."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from rich.console import Console
from test_eval_fakes import FailingBackend, ScriptedBackend, ScriptedJudge, question_of

from pasr.data.benchmarks import load_benchmark
from pasr.errors import PasrError
from pasr.eval.runner import EvalSettings, run_eval
from pasr.prompts import PASR_SYSTEM_PROMPT, STANDARD_SYSTEM_PROMPT

LINE_KEYS = {"id", "benchmark", "method", "model", "question", "reference", "task", "turns", "final", "trace",
             "score", "tokens", "refines", "refined", "format_valid"}
N = 6


@pytest.fixture(scope="module")
def recs():
    return load_benchmark("synthetic", limit=N)


def oracle_reply(recs, right_every=2, refine=False):
    """A backend reply function: the right answer for every ``right_every``-th question, else a wrong one."""
    index = {r.question: (i, r.reference) for i, r in enumerate(recs)}

    def reply(conv):
        i, ref = index[question_of(conv)]
        value = ref if i % right_every == 0 else str(int(ref) + 1)
        think = "adding <refine>check the sum</refine> again" if refine and conv[0]["content"] == PASR_SYSTEM_PROMPT else "adding"
        return f"<think>{think}</think><answer>{value}</answer>", 7

    return reply


def settings(tmp_path, methods=("vanilla",), **kw):
    return EvalSettings(model="fake-model", benchmarks=["synthetic"], methods=list(methods),
                        output=tmp_path / "run", limit=N, max_tokens=32, **kw)


def quiet():
    return Console(file=StringIO())


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_layout_and_vanilla_first(tmp_path, recs):
    backend = ScriptedBackend(oracle_reply(recs, refine=True))
    summaries = run_eval(settings(tmp_path, methods=["pasr", "vanilla"]), backend=backend, console=quiet())
    run = tmp_path / "run"
    info = json.loads((run / "run.json").read_text())
    assert {"model", "label", "backend", "max_tokens", "seed", "limit", "temperature", "created",
            "pasr_version"} <= set(info)
    assert info["model"] == "fake-model" and info["max_tokens"] == 32 and info["limit"] == N
    # vanilla ran first although listed second
    assert backend.calls[0][0][0]["content"] == STANDARD_SYSTEM_PROMPT
    assert backend.calls[1][0][0]["content"] == PASR_SYSTEM_PROMPT
    for method in ("vanilla", "pasr"):
        lines = read(run / "synthetic" / f"{method}.jsonl")
        assert len(lines) == N and {line["id"] for line in lines} == {r.id for r in recs}
        for line in lines:
            assert LINE_KEYS <= set(line)
            assert line["benchmark"] == "synthetic" and line["method"] == method
            assert line["tokens"] == 7 and line["turns"][0]["tokens"] == 7
        summary = json.loads((run / "synthetic" / f"{method}.summary.json").read_text())
        assert summary["n"] == N and summary["score"] == pytest.approx(0.5)
    pasr_lines = read(run / "synthetic" / "pasr.jsonl")
    assert all(line["refines"] == 1 and line["refined"] and line["format_valid"] for line in pasr_lines)
    by_method = {s["method"]: s for s in summaries}
    assert by_method["pasr"]["refine_rate"] == 1.0
    assert by_method["pasr"]["transitions"] == {"right->right": 0.5, "wrong->right": 0.0, "right->wrong": 0.0,
                                                "wrong->wrong": 0.5}
    assert by_method["vanilla"]["transitions"] is None


def test_interrupted_run_resumes_without_redoing(tmp_path, recs):
    reply = oracle_reply(recs)
    failing = FailingBackend(reply, ok=4, chunk_size=2)  # two chunks of two, then the server dies
    with pytest.raises(PasrError, match="rerun the same command") as err:
        run_eval(settings(tmp_path), backend=failing, console=quiet())
    assert "after 4 of 6 examples" in str(err.value)
    path = tmp_path / "run" / "synthetic" / "vanilla.jsonl"
    kept = read(path)
    assert len(kept) == 4
    # a kill mid-write leaves a torn line: the rerun drops it and appends cleanly
    with path.open("a") as fh:
        fh.write('{"id": "torn", "sco')
    again = ScriptedBackend(reply, chunk_size=2)
    summaries = run_eval(settings(tmp_path), backend=again, console=quiet())
    done_before = {line["id"] for line in kept}
    asked = {question_of(c) for c in again.conversations}
    assert asked == {r.question for r in recs if r.id not in done_before}
    final = read(path)
    assert sorted(line["id"] for line in final) == sorted(r.id for r in recs)  # each id once
    assert summaries[0]["n"] == N
    # a third run has nothing to do and builds no backend
    run_eval(settings(tmp_path), backend=FailingBackend(reply, ok=0), console=quiet())
    assert len(read(path)) == N


def test_rerun_with_other_settings_is_refused(tmp_path, recs):
    run_eval(settings(tmp_path), backend=ScriptedBackend(oracle_reply(recs)), console=quiet())
    other = settings(tmp_path)
    other.max_tokens = 64
    with pytest.raises(PasrError, match="max_tokens=32"):
        run_eval(other, backend=ScriptedBackend(oracle_reply(recs)), console=quiet())


def test_rerun_with_another_dtype_is_refused_even_for_folders_older_than_the_dtype_field(tmp_path, recs):
    run_eval(settings(tmp_path), backend=ScriptedBackend(oracle_reply(recs)), console=quiet())
    run_file = tmp_path / "run" / "run.json"
    info = json.loads(run_file.read_text())
    assert info["dtype"] == "auto"
    del info["dtype"]  # as written before dtype was recorded
    run_file.write_text(json.dumps(info))
    other = settings(tmp_path)
    other.dtype = "bfloat16"
    with pytest.raises(PasrError, match="dtype='auto'"):
        run_eval(other, backend=ScriptedBackend(oracle_reply(recs)), console=quiet())


@pytest.mark.parametrize(
    "change,message",
    [
        ({"benchmarks": ["nope"]}, "unknown benchmark 'nope'; known: .*gsm8k.*synthetic"),
        ({"methods": ["vanilla", "magic"]}, "unknown method 'magic'; known: vanilla, pasr, self-refine, self-refine-oracle"),
        ({"backend": "tgi"}, "unknown backend 'tgi'"),
        ({"backend": "openai"}, "needs --base-url"),
        ({"analyses": True}, "--analyses needs a judge"),
        ({"judge_url": "http://x/v1"}, "both --judge-url and --judge-model"),
        ({"benchmarks": ["synthetic", "gsm8k"], "data_file": "x.jsonl"}, "single --benchmark"),
        ({"rounds": 0}, "--rounds must be at least 1"),
    ],
)
def test_bad_input_fails_before_any_work(tmp_path, change, message):
    s = settings(tmp_path)
    for key, value in change.items():
        setattr(s, key, value)
    backend = ScriptedBackend(lambda conv: "x")
    with pytest.raises(PasrError, match=message):
        run_eval(s, backend=backend, console=quiet())
    assert backend.calls == []
    assert not (tmp_path / "run").exists()


def test_analyses_aggregate_into_summary(tmp_path, recs):
    backend = ScriptedBackend(oracle_reply(recs, refine=True))
    judge = ScriptedJudge(lambda conv: "error correction" if "main purpose" in conv[-1]["content"] else "8")
    s = settings(tmp_path, methods=["vanilla", "pasr"], judge_url="http://judge/v1", judge_model="j", analyses=True)
    summaries = {x["method"]: x for x in run_eval(s, backend=backend, judge=judge, console=quiet())}
    assert len(judge.prompts) == 3 * N  # three questions per refining pasr response, none for vanilla
    analysis = summaries["pasr"]["analysis"]
    assert analysis["n"] == N and analysis["types"]["error correction"] == 1.0
    assert analysis["coherence_mean"] == pytest.approx(0.8)
    assert summaries["vanilla"]["analysis"]["n"] == 0
    assert len(read(tmp_path / "run" / "synthetic" / "pasr.analysis.jsonl")) == N
