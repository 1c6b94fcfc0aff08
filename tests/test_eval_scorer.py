"""`pasr eval --scorer rule|judge|both` against a real judge client and an HTTP judge server (fake model).

The judge server grades by reading the prompt it gets: the reference and the model answer. It can be told
to disagree with the rule on chosen questions, to fail (HTTP 503) or to reply without a number, so the
tests check the judge's protocol end to end: which prompt each benchmark gets, both scores per line, the
agreement summary, and that an outage never becomes a score.
"""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from rich.console import Console
from test_eval_fakes import ScriptedBackend, question_of

from pasr.data.benchmarks import load_benchmark
from pasr.errors import PasrError
from pasr.eval.runner import EvalSettings, run_eval, unjudged_path
from pasr.judge import Judge, JudgeConfig
from pasr.prompts import JUDGE_TEMPLATES

N = 8


@pytest.fixture(scope="module")
def recs():
    return load_benchmark("synthetic", limit=N)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    monkeypatch.delenv("PASR_JUDGE_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def reply_fn(recs, right_every=2):
    """Backend: the right answer for every ``right_every``-th question, else the reference + 1."""
    index = {r.question: (i, r.reference) for i, r in enumerate(recs)}

    def reply(conv):
        i, ref = index[question_of(conv)]
        value = ref if i % right_every == 0 else str(int(ref) + 1)
        return f"<think>adding</think><answer>{value}</answer>", 5

    return reply


class Grader:
    """The fake judge model: 1 when the answer equals the reference, flipped on ``flip`` questions;
    HTTP 503 on ``down`` questions, a reply without a number on ``mute`` questions."""

    def __init__(self, flip=(), down=(), mute=()):
        self.flip, self.down, self.mute = set(flip), set(down), set(mute)
        self.prompts: list[str] = []

    def __call__(self, request):
        text = request.user_text
        self.prompts.append(text)
        reference = re.search(r"Reference answer:\n(.*?)\n\nModel answer:", text, re.S).group(1).strip()
        answer = re.search(r"Model answer:\n(.*?)\n\n", text, re.S).group(1).strip()
        question = re.search(r"Question:\n(.*?)\n\nReference answer", text, re.S).group(1)
        if any(q in question for q in self.down):
            return Reply(status=503)
        if any(q in question for q in self.mute):
            return "I cannot grade this."
        right = answer == reference
        if any(q in question for q in self.flip):
            right = not right
        return "1" if right else "0"


def make_settings(tmp_path, scorer, url, methods=("vanilla",), **kw):
    return EvalSettings(model="fake-model", benchmarks=["synthetic"], methods=list(methods), output=tmp_path / "run",
                        limit=N, max_tokens=32, scorer=scorer, judge_url=url, judge_model="judge" if url else None,
                        **kw)


def make_judge(server, tmp_path, **kw):
    cfg = dict(base_url=server.base_url, model="judge", retries=0, backoff=0.0, timeout=5.0,
               cache_dir=str(tmp_path / "cache"))
    cfg.update(kw)
    return Judge(JudgeConfig(**cfg))


def quiet():
    return Console(file=StringIO())


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_judge_scores_every_example_with_the_papers_general_prompt(tmp_path, recs):
    grader = Grader()
    with FakeOpenAIServer(grader, models=["judge"]) as server:
        s = make_settings(tmp_path, "judge", server.base_url)
        (summary,) = run_eval(s, backend=ScriptedBackend(reply_fn(recs)), judge=make_judge(server, tmp_path),
                              console=quiet())
    rows = lines(tmp_path / "run" / "synthetic" / "vanilla.jsonl")
    assert len(rows) == N and len(grader.prompts) == N
    general = JUDGE_TEMPLATES["general"].split("{answer}")[1]
    assert all(general.strip() in p for p in grader.prompts)  # synthetic gets the authors' general 0/1 prompt
    assert all(r["scores"]["rule"] is None and r["scores"]["judge"] == r["score"] for r in rows)
    assert all(r["judge_status"] == "scored" for r in rows)
    assert summary["score"] == pytest.approx(0.5) and summary["scorer"] == "judge"
    assert summary["judge_model"] == "judge" and summary["score_rule"] is None
    assert summary["judge_rule_agreement"] is None  # no rule side to agree with
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["scorer"] == "judge" and info["judge_model"] == "judge"


@pytest.mark.parametrize("flip", [[0, 1], [3], []])
def test_both_keeps_both_scores_and_summarises_agreement(tmp_path, recs, flip):
    flipped = [recs[i].question for i in flip]
    with FakeOpenAIServer(Grader(flip=flipped), models=["judge"]) as server:
        s = make_settings(tmp_path, "both", server.base_url)
        (summary,) = run_eval(s, backend=ScriptedBackend(reply_fn(recs)), judge=make_judge(server, tmp_path),
                              console=quiet())
    rows = {r["id"]: r for r in lines(tmp_path / "run" / "synthetic" / "vanilla.jsonl")}
    for i, record in enumerate(recs):
        row = rows[record.id]
        rule = 1.0 if i % 2 == 0 else 0.0
        judge = 1.0 - rule if i in flip else rule
        assert row["scores"] == {"rule": rule, "judge": judge}
        assert row["score"] == judge  # the judge's is the score under both
    agreement = summary["judge_rule_agreement"]
    assert agreement["n"] == N and agreement["agree"] == pytest.approx(1 - len(flip) / N)
    right_wrong = [recs[i].id for i in flip if i % 2 == 1]  # judge right where the rule says wrong
    wrong_right = [recs[i].id for i in flip if i % 2 == 0]
    assert agreement["judge_right_rule_wrong"] == len(right_wrong)
    assert agreement["judge_wrong_rule_right"] == len(wrong_right)
    assert agreement["examples"]["judge_right_rule_wrong"] == right_wrong
    assert agreement["examples"]["judge_wrong_rule_right"] == wrong_right
    assert summary["score_rule"] == pytest.approx(0.5)
    if not flip:
        assert agreement["kappa"] == pytest.approx(1.0)
    else:
        assert agreement["kappa"] < 1.0


def test_judge_outage_is_never_a_score_and_a_rerun_judges_what_waited(tmp_path, recs):
    down = [recs[1].question, recs[2].question]
    backend = ScriptedBackend(reply_fn(recs))
    with FakeOpenAIServer(Grader(down=down), models=["judge"]) as server:
        s = make_settings(tmp_path, "both", server.base_url)
        (summary,) = run_eval(s, backend=backend, judge=make_judge(server, tmp_path), console=quiet())
    path = tmp_path / "run" / "synthetic" / "vanilla.jsonl"
    waiting = unjudged_path(tmp_path / "run", "synthetic", "vanilla")
    kept = lines(path)
    assert len(kept) == N - 2 and {recs[1].id, recs[2].id}.isdisjoint(r["id"] for r in kept)
    parked = lines(waiting)
    assert [r["id"] for r in parked] == [recs[1].id, recs[2].id]
    assert all(r["score"] is None and r["scores"]["judge"] is None for r in parked)  # not the rule's score
    assert parked[1]["scores"]["rule"] == 1.0  # the rule said right; still no score without the judge
    assert summary["n"] == N - 2 and summary["unjudged"] == 2
    generated = len(backend.conversations)

    # The judge is back: the rerun judges the waiting responses without generating them again.
    with FakeOpenAIServer(Grader(), models=["judge"]) as server:
        (summary,) = run_eval(s, backend=backend, judge=make_judge(server, tmp_path), console=quiet())
    assert len(backend.conversations) == generated
    assert not waiting.exists()
    rows = {r["id"]: r for r in lines(path)}
    assert len(rows) == N and rows[recs[2].id]["score"] == 1.0 and rows[recs[1].id]["score"] == 0.0
    assert rows[recs[1].id]["final"] == parked[0]["final"]
    assert summary["n"] == N and summary["unjudged"] == 0


def test_a_reply_without_a_score_is_the_fallback_and_counted(tmp_path, recs):
    with FakeOpenAIServer(Grader(mute=[recs[0].question]), models=["judge"]) as server:
        s = make_settings(tmp_path, "both", server.base_url)
        (summary,) = run_eval(s, backend=ScriptedBackend(reply_fn(recs)),
                              judge=make_judge(server, tmp_path, retries=1), console=quiet())
    rows = {r["id"]: r for r in lines(tmp_path / "run" / "synthetic" / "vanilla.jsonl")}
    assert rows[recs[0].id]["judge_status"] == "fallback" and rows[recs[0].id]["score"] == 0.0
    assert rows[recs[0].id]["scores"]["rule"] == 1.0
    assert summary["judge_fallbacks"] == 1 and summary["unjudged"] == 0


def test_self_refine_oracle_decides_with_the_judge_and_stops_on_an_outage(tmp_path, recs):
    # The judge calls question 0 wrong (flipped): the oracle revises it although the rule says right.
    with FakeOpenAIServer(Grader(flip=[recs[0].question]), models=["judge"]) as server:
        s = make_settings(tmp_path, "judge", server.base_url, methods=["self-refine-oracle"])
        backend = ScriptedBackend(reply_fn(recs))
        run_eval(s, backend=backend, judge=make_judge(server, tmp_path), console=quiet())
    rows = {r["id"]: r for r in lines(tmp_path / "run" / "synthetic" / "self-refine-oracle.jsonl")}
    assert rows[recs[0].id]["turns"][-1]["name"] == "revision"
    assert rows[recs[2].id]["turns"][-1]["name"] == "answer"  # judged right: no revision

    # The judge is down for one decision: Self-Refine+ stops after its saved chunk, vanilla runs to the end,
    # both get summaries, and the stop is said (the command exits 1 on it).
    with FakeOpenAIServer(Grader(down=[recs[5].question]), models=["judge"]) as server:
        s = make_settings(tmp_path / "b", "judge", server.base_url, methods=["self-refine-oracle", "vanilla"],
                          chunk_size=4)
        backend = ScriptedBackend(reply_fn(recs), chunk_size=4)
        summaries = {x["method"]: x for x in run_eval(s, backend=backend,
                                                       judge=make_judge(server, tmp_path, cache_dir=None),
                                                       console=quiet())}
    run = tmp_path / "b" / "run" / "synthetic"
    saved = lines(run / "self-refine-oracle.jsonl")
    assert [r["id"] for r in saved] == [r.id for r in recs[:4]]  # the first chunk is kept
    assert not unjudged_path(tmp_path / "b" / "run", "synthetic", "self-refine-oracle").exists()
    assert "the judge did not answer for 1 of the answers" in summaries["self-refine-oracle"]["stopped"]
    assert "4 of 8 examples are saved" in summaries["self-refine-oracle"]["stopped"]
    assert summaries["self-refine-oracle"]["n"] == 4
    assert summaries["vanilla"]["stopped"] is None and summaries["vanilla"]["n"] == N - 1
    assert summaries["vanilla"]["unjudged"] == 1  # its response to question 5 waits for the judge


def test_a_rerun_with_another_scorer_or_judge_is_refused(tmp_path, recs):
    with FakeOpenAIServer(Grader(), models=["judge", "other"]) as server:
        run_eval(make_settings(tmp_path, "rule", None), backend=ScriptedBackend(reply_fn(recs)), console=quiet())
        with pytest.raises(PasrError, match="scorer='rule'"):
            run_eval(make_settings(tmp_path, "judge", server.base_url), backend=ScriptedBackend(reply_fn(recs)),
                     judge=make_judge(server, tmp_path), console=quiet())
        other = tmp_path / "o"
        run_eval(make_settings(other, "judge", server.base_url), backend=ScriptedBackend(reply_fn(recs)),
                 judge=make_judge(server, tmp_path), console=quiet())
        s = make_settings(other, "judge", server.base_url)
        s.judge_model = "other"
        with pytest.raises(PasrError, match="judge_model='judge'"):
            run_eval(s, backend=ScriptedBackend(reply_fn(recs)),
                     judge=make_judge(server, tmp_path, model="other"), console=quiet())


@pytest.mark.parametrize(
    "scorer, url, message",
    [
        ("judge", None, "--scorer judge needs a judge"),
        ("both", None, "--scorer both needs a judge"),
        ("llm", "http://127.0.0.1:9/v1", "--scorer: unknown scorer 'llm'"),
        ("Judge", "http://127.0.0.1:9/v1", "unknown scorer 'Judge'"),
    ],
)
def test_bad_scorer_options_fail_before_anything_is_written(tmp_path, scorer, url, message):
    s = make_settings(tmp_path, scorer, url)
    with pytest.raises(PasrError, match=re.escape(message)):
        run_eval(s, backend=ScriptedBackend(lambda conv: "x"), console=quiet())
    assert not (tmp_path / "run").exists()


def test_an_unreachable_judge_fails_at_start(tmp_path):
    s = make_settings(tmp_path, "judge", "http://127.0.0.1:9/v1")
    with pytest.raises(PasrError, match="did not answer /models"):
        run_eval(s, backend=ScriptedBackend(lambda conv: "x"), console=quiet())
    assert not (tmp_path / "run").exists()


def test_benchmarks_get_the_authors_judge_prompt_kind(tmp_path):
    from pasr.scoring import Scorer

    prompts = []

    def grade(request):
        prompts.append(request.user_text)
        return "1"

    with FakeOpenAIServer(grade, models=["judge"]) as server, Scorer(judge=make_judge(server, tmp_path)) as scorer:
        sides = scorer.score_sides(
            ["arc", "commonsenseqa", "xsum", "drop"],
            ["<answer>A</answer>", "<answer>B</answer>", "<answer>A short summary.</answer>", "<answer>7</answer>"],
            ["A", "B", "The summary.", '["7", ["Smith", "Jones"]]'],
            ["Q1\nA: x\nB: y", "Q2\nA: x\nB: y", "Long text.", "Passage. How many?"],
            rule=True, judge=True,
        )
    assert sides.judge == [1.0, 1.0, 1.0, 1.0] and sides.judge_status == ["scored"] * 4
    assert sides.rule[0] == 1.0 and sides.rule[1] == 1.0 and sides.rule[3] == 1.0
    by_question = {p.split("\n")[1] if p.startswith("Question") else p: p for p in prompts}
    arc = next(p for p in prompts if "Q1" in p)
    csqa = next(p for p in prompts if "Q2" in p)
    xsum = next(p for p in prompts if "Long text." in p)
    drop = next(p for p in prompts if "Passage." in p)
    assert "same option as the reference" in arc  # ARC: the multiple-choice prompt
    assert "same option" not in csqa and "counts as correct" in csqa  # CommonsenseQA: the general one
    assert "Reference summary" in xsum and "from 0 to 1" in xsum
    assert 'Reference answer:\nany of: "7"; "Smith, Jones"\n' in drop  # the JSON reference as its answers
    assert by_question


def test_cli_scorer_both_outage_exit_1_then_rerun_and_report(tmp_path, monkeypatch):
    """The whole path a user takes: `pasr eval --scorer both` (tiny model, an HTTP judge that is down for
    generation-time scoring), exit 1 naming the waiting examples; the rerun judges them; `pasr report`."""
    from typer.testing import CliRunner

    from pasr.cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path))  # the judge's cache (~/.cache/pasr/judge) stays in the test
    state = {"down": True}

    def grade(request):
        return Reply(status=503) if state["down"] else "1"

    out = tmp_path / "run"
    cli = CliRunner()
    with FakeOpenAIServer(grade, models=["judge"]) as server:
        args = ["eval", "--model", "tiny-random", "--benchmark", "synthetic", "--limit", "3", "--max-tokens", "8",
                "--methods", "vanilla", "--scorer", "both", "--judge-url", server.base_url, "--judge-model", "judge",
                "--output", str(out)]
        first = cli.invoke(app, args)
        assert first.exit_code == 1, first.output
        text = " ".join(first.output.split())
        assert "the judge did not answer for 3 example(s) (synthetic/vanilla 3)" in text
        assert not (out / "synthetic" / "vanilla.jsonl").exists()
        assert len(lines(out / "synthetic" / "vanilla.unjudged.jsonl")) == 3
        summary = json.loads((out / "synthetic" / "vanilla.summary.json").read_text())
        assert summary["n"] == 0 and summary["unjudged"] == 3 and summary["score"] is None
        state["down"] = False
        second = cli.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "judge vs rule, synthetic / vanilla:" in " ".join(second.output.split())
    rows = lines(out / "synthetic" / "vanilla.jsonl")
    assert len(rows) == 3 and all(r["scores"]["judge"] == 1.0 for r in rows)
    summary = json.loads((out / "synthetic" / "vanilla.summary.json").read_text())
    assert summary["unjudged"] == 0 and summary["judge_rule_agreement"]["n"] == 3
    report = cli.invoke(app, ["report", str(out), "-o", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    agreement = (tmp_path / "report" / "agreement.md").read_text()
    assert "synthetic" in agreement and "vanilla" in agreement
    assert "Judge vs rule" in (tmp_path / "report" / "report.html").read_text()


def test_report_names_responses_that_wait_for_the_judge(tmp_path, recs):
    from pasr.report.loading import load_run

    with FakeOpenAIServer(Grader(down=[recs[0].question]), models=["judge"]) as server:
        s = make_settings(tmp_path, "both", server.base_url)
        run_eval(s, backend=ScriptedBackend(reply_fn(recs)), judge=make_judge(server, tmp_path), console=quiet())
    run = load_run(tmp_path / "run")
    assert len(run.get("synthetic", "vanilla").examples) == N - 1
    assert any("1 response(s) wait for the judge" in w for w in run.warnings)


def test_waiting_responses_count_as_results_of_the_folder(tmp_path, recs):
    """Only unjudged responses so far: a rerun with other generation settings is still refused."""
    with FakeOpenAIServer(Grader(down=[r.question for r in recs]), models=["judge"]) as server:
        s = make_settings(tmp_path, "judge", server.base_url)
        run_eval(s, backend=ScriptedBackend(reply_fn(recs)), judge=make_judge(server, tmp_path), console=quiet())
        assert not (tmp_path / "run" / "synthetic" / "vanilla.jsonl").exists()
        s.max_tokens = 64
        with pytest.raises(PasrError, match="max_tokens=32"):
            run_eval(s, backend=ScriptedBackend(reply_fn(recs)), judge=make_judge(server, tmp_path), console=quiet())


@pytest.mark.parametrize(
    "reference, shown",
    [
        ("21|21 points", 'any of: "21"; "21 points"'),
        ('["7", ["Smith", "Jones"]]', 'any of: "7"; "Smith, Jones"'),
        ('[["Glim", "Trax"]]', "Glim, Trax"),
        (" 1967 ", "1967"),
    ],
)
def test_drop_reference_for_the_judge(reference, shown):
    from pasr.scoring.scorer import judge_reference

    assert judge_reference("drop", reference) == shown
    assert judge_reference("gsm8k", reference) == reference  # other families as they are


def test_waiting_outside_the_selection_does_not_keep_the_run_incomplete(tmp_path, recs):
    small = load_benchmark("synthetic", limit=4)
    outside = [r.question for r in recs if r.id not in {x.id for x in small}]
    assert outside
    with FakeOpenAIServer(Grader(down=outside), models=["judge"]) as server:
        s = make_settings(tmp_path, "both", server.base_url)
        (summary,) = run_eval(s, backend=ScriptedBackend(reply_fn(recs)), judge=make_judge(server, tmp_path,
                              cache_dir=None), console=quiet())
        assert summary["unjudged"] == len(outside)
        s.limit = 4
        (summary,) = run_eval(s, backend=ScriptedBackend(reply_fn(recs)), judge=make_judge(server, tmp_path,
                              cache_dir=None), console=quiet())
    assert summary["unjudged"] == 0  # the ones still waiting belong to the larger selection
    waiting = lines(unjudged_path(tmp_path / "run", "synthetic", "vanilla"))
    assert len(waiting) == len(outside)  # kept for that selection's rerun


def test_responses_are_saved_before_judging_so_an_interrupt_keeps_them(tmp_path, recs):
    class Interrupting:
        def verdicts(self, items):
            raise KeyboardInterrupt

    backend = ScriptedBackend(reply_fn(recs))
    s = make_settings(tmp_path, "judge", "http://127.0.0.1:9/v1")
    with pytest.raises(KeyboardInterrupt):
        run_eval(s, backend=backend, judge=Interrupting(), console=quiet())
    assert len(lines(unjudged_path(tmp_path / "run", "synthetic", "vanilla"))) == N
    generated = len(backend.conversations)
    with FakeOpenAIServer(Grader(), models=["judge"]) as server:
        (summary,) = run_eval(s, backend=backend, judge=make_judge(server, tmp_path), console=quiet())
    assert len(backend.conversations) == generated and summary["n"] == N and summary["unjudged"] == 0


def test_unusable_waiting_lines_are_set_aside_and_rerun(tmp_path, recs):
    with FakeOpenAIServer(Grader(down=[recs[0].question, recs[1].question]), models=["judge"]) as server:
        s = make_settings(tmp_path, "judge", server.base_url)
        run_eval(s, backend=ScriptedBackend(reply_fn(recs)), judge=make_judge(server, tmp_path, cache_dir=None),
                 console=quiet())
    waiting = unjudged_path(tmp_path / "run", "synthetic", "vanilla")
    text = waiting.read_text().splitlines()
    waiting.write_text(text[0] + "\n" + '{"id": "x", "no final": 1}\n' + "not json\n" + text[1] + "\n" + '{"id": "to')
    out = StringIO()
    backend = ScriptedBackend(reply_fn(recs))
    with FakeOpenAIServer(Grader(), models=["judge"]) as server:
        (summary,) = run_eval(s, backend=backend, judge=make_judge(server, tmp_path), console=Console(file=out))
    assert "unusable line(s)" in out.getvalue() and waiting.with_name(waiting.name + ".corrupt").exists()
    assert summary["n"] == N and not waiting.exists() and len(backend.conversations) == 0


def test_out_of_range_scores_do_not_count(tmp_path):
    from pasr.eval.metrics import summarize
    from pasr.scoring.agreement import agreement_from_lines

    rows = [{"id": "a", "score": 1.0, "tokens": 1, "scores": {"rule": 5.0, "judge": 1.0}},
            {"id": "b", "score": 0.0, "tokens": 1, "scores": {"rule": 0.0, "judge": -3}},
            {"id": "c", "score": 1.0, "tokens": 1, "scores": {"rule": 1.0, "judge": 1.0}}]
    assert agreement_from_lines(rows)["n"] == 1
    summary = summarize(rows, benchmark="b", method="vanilla", model="m", label="m", metric="accuracy")
    assert summary["score_rule"] == pytest.approx(0.5) and summary["score_judge"] == pytest.approx(1.0)


def test_judge_messages_name_the_eval_options(tmp_path):
    with FakeOpenAIServer(Grader(), models=["judge"]) as server:
        s = make_settings(tmp_path, "judge", server.base_url.replace("http://", "HTTP://"))  # any case
        s.judge_model = "nope"
        with pytest.raises(PasrError, match=r"--judge-model='nope' is not served"):
            run_eval(s, backend=ScriptedBackend(lambda conv: "x"), console=quiet())
        s = make_settings(tmp_path, "judge", server.base_url[: -len("/v1")])
        with pytest.raises(PasrError, match=r"usually ends in /v1"):
            run_eval(s, backend=ScriptedBackend(lambda conv: "x"), console=quiet())
    s = make_settings(tmp_path, "judge", "http://127.0.0.1:9/v1")
    s.judge_max_tokens = 0
    with pytest.raises(PasrError, match="--judge-max-tokens must be at least 1"):
        run_eval(s, backend=ScriptedBackend(lambda conv: "x"), console=quiet())


def test_the_command_says_when_the_judge_gave_no_scores():
    from pasr.eval.command import report_judge_problems

    out = StringIO()
    summaries = [{"benchmark": "gsm8k", "method": "vanilla", "n": 6, "judge_fallbacks": 6, "unjudged": 0,
                  "stopped": None}]
    assert report_judge_problems(Console(file=out, width=200), summaries, "RUN") is True
    assert "held no score for 6 of 6 responses" in out.getvalue() and "--judge-max-tokens" in out.getvalue()
    summaries[0].update(unjudged=2, stopped="the judge did not answer")
    assert report_judge_problems(Console(file=StringIO()), summaries, "RUN") is False
