"""The trained baselines' evaluation chains (score, rise, rise-oracle) and their turn-by-turn held-out reading."""

from __future__ import annotations

import pytest
from test_eval_fakes import ScriptedBackend, answer, records

from pasr.baselines.heldout import READINGS, answer_after, heldout_rounds
from pasr.eval.methods import METHODS, ChainConfig, majority_turn, run_method
from pasr.prompts import RISE_FEEDBACK, SCORE_CORRECTION_INSTRUCTION, STANDARD_SYSTEM_PROMPT


def exact_score(recs, texts):
    from pasr.format import extract_answer

    return [1.0 if extract_answer(t) == r.reference else 0.0 for r, t in zip(recs, texts)]


class ExactScorer:
    """A scorer as :func:`pasr.scoring.score_records` takes it: 1.0 when the <answer> equals the reference."""

    def score_many(self, tasks, texts, references, questions):
        from pasr.format import extract_answer

        return [1.0 if extract_answer(t) == ref else 0.0 for t, ref in zip(texts, references)]


def turn_of(conv) -> int:
    """0 for the first answer, k for the k-th turn after it."""
    return sum(1 for m in conv if m["role"] == "user") - 1


def by_turn(answers: dict[int, list]):
    """Reply to example i (its reference 2i) at turn k with answers[k][i]."""

    def reply(conv):
        i = int(conv[1]["content"].split(" + ")[0].split()[-1])
        return answer(answers[turn_of(conv)][i]), 4

    return reply


def test_methods_are_known():
    assert {"score", "rise", "rise-oracle"} <= set(METHODS)
    assert set(READINGS) == {"ptr", "score", "rise", "rise-oracle"}


@pytest.mark.parametrize("rounds", [1, 2])
def test_score_sends_the_correction_instruction_and_scores_the_last_attempt(rounds):
    recs = records(2)
    backend = ScriptedBackend(by_turn({0: [5, 2], 1: [0, 7], 2: [9, 2]}))
    outcomes = run_method("score", recs, ChainConfig(backend=backend, max_tokens=9, rounds=rounds))
    assert len(backend.calls) == rounds + 1  # no early stop
    last = backend.calls[-1][0]
    assert [m["role"] for m in last] == ["system", "user"] + ["assistant", "user"] * rounds
    assert last[0]["content"] == STANDARD_SYSTEM_PROMPT
    assert [m["content"] for m in last[3::2]] == [SCORE_CORRECTION_INSTRUCTION] * rounds
    for i, out in enumerate(outcomes):
        assert out.final == out.turns[-1]["text"] and out.tokens == 4 * (rounds + 1)
    # example 0: 5 -> 0 (changed: revision); example 1: 2 -> 7 (changed); round 2: 0 -> 9 revision, 7 -> 2 revision
    assert [t["name"] for t in outcomes[0].turns] == ["answer"] + ["revision"] * rounds


def test_score_turn_that_keeps_the_answer_is_feedback():
    recs = records(1)
    backend = ScriptedBackend(by_turn({0: [3], 1: [3]}))
    [out] = run_method("score", recs, ChainConfig(backend=backend, max_tokens=9, rounds=1))
    assert [t["name"] for t in out.turns] == ["answer", "feedback"] and out.revisions == 0


def test_rise_oracle_retries_only_wrong_answers_until_right():
    recs = records(3)  # references 0, 2, 4
    backend = ScriptedBackend(by_turn({0: [0, 1, 1], 1: [None, 2, 3], 2: [None, None, 4], 3: [None, None, 8]}))
    outcomes = run_method("rise-oracle", recs, ChainConfig(backend=backend, max_tokens=9, rounds=3,
                                                            score=exact_score))
    assert [len(o.turns) for o in outcomes] == [1, 2, 3]  # stops once right
    assert [exact_score([r], [o.final])[0] for r, o in zip(recs, outcomes)] == [1.0, 1.0, 1.0]
    for conv in backend.conversations:
        assert all(m["content"] == RISE_FEEDBACK for m in conv[3::2])
    assert [len(call) for call in backend.calls] == [3, 2, 1]


def test_rise_oracle_needs_a_scorer():
    with pytest.raises(ValueError, match="rise-oracle needs a scorer"):
        run_method("rise-oracle", records(1), ChainConfig(backend=ScriptedBackend(lambda c: "x"), rounds=1))


def test_rise_without_oracle_runs_every_turn_and_answers_by_majority():
    recs = records(3)
    # example 0: 5, 0, 0, 5 -> tie 2:2, the latest tied answer (5, turn 3) wins
    # example 1: 2, 7, 2, 9 -> 2 (twice): turn 2's text
    # example 2: 1, 4, 3, 6 -> all once: the latest (turn 3)
    answers = {0: [5, 2, 1], 1: [0, 7, 4], 2: [0, 2, 3], 3: [5, 9, 6]}
    backend = ScriptedBackend(by_turn(answers))
    outcomes = run_method("rise", recs, ChainConfig(backend=backend, max_tokens=9, rounds=3))
    assert [len(call) for call in backend.calls] == [3, 3, 3, 3]  # no oracle: nobody stops
    assert [o.final for o in outcomes] == [answer(5), answer(2), answer(6)]
    assert outcomes[1].final == outcomes[1].turns[2]["text"]
    assert all(o.tokens == 16 for o in outcomes)


@pytest.mark.parametrize("texts, index", [
    (["<answer>1</answer>"], 0),
    (["<answer>1</answer>", "<answer>2</answer>"], 1),
    (["<answer>1</answer>", "<answer> 1 </answer>", "<answer>2</answer>"], 1),
    (["a <answer>3</answer>", "<answer>4</answer>", "b <answer>3</answer>", "<answer>4</answer>"], 3),
    (["no tags", "no  tags", "other"], 2),  # nothing states an answer: the last turn
    (["<answer>42</answer>", "", ""], 0),  # empty turns do not vote
    (["<answer>42</answer>", "<answer></answer>", "I am not sure"], 0),
    (["<answer>5</answer>", "<answer>5.0</answer>", "<answer>$5</answer>", "<answer>7</answer>"], 2),  # one value
    (["So the answer is 12.", "<answer>12</answer>", "<answer>3</answer>"], 1),  # untagged votes with its number
    (["<answer>red</answer>", "<answer>Red </answer>", "<answer>blue</answer>"], 2),  # text answers as written
])
def test_majority_turn(texts, index):
    assert majority_turn(texts) == index


def test_majority_turn_of_nothing_is_an_error():
    with pytest.raises(IndexError):
        majority_turn([])


def test_answer_after_reads_each_method():
    turns = [{"text": answer(v)} for v in (1, 2, 1, 3)]
    assert answer_after("ptr", turns, 2) == answer(1) and answer_after("score", turns, 1) == answer(2)
    assert answer_after("rise", turns, 2) == answer(1)  # 1 twice by turn 2
    assert answer_after("rise", turns, 1) == answer(2)  # tie 1:1, the latest
    assert answer_after("rise-oracle", turns[:2], 3) == answer(2)  # a stopped chain keeps its last answer


@pytest.mark.parametrize("method, accuracy, tokens", [
    # references 0, 2, 4; answers by turn: ex0 0, 9, 0 | ex1 1, 2, 1 | ex2 1, 1, 1
    ("score", [1 / 3, 1 / 3, 1 / 3], [4, 8, 12]),  # the last reply: ex0 right, wrong, right; ex1 only at turn 1
    # majority: turn 1 ex0 {0, 9} tie -> 9 (latest) wrong, ex1 {1, 2} tie -> 2 right; turn 2 ex0 0 twice right,
    # ex1 1 twice wrong
    ("rise", [1 / 3, 1 / 3, 1 / 3], [4, 8, 12]),
    # oracle stop: ex0 right at once (stops, 4 tokens), ex1 right at turn 1 (8 tokens), ex2 never (12 tokens)
    ("rise-oracle", [1 / 3, 2 / 3, 2 / 3], [4, 20 / 3, 8]),
])
def test_heldout_rounds_reads_each_turn(method, accuracy, tokens):
    recs = records(3)
    backend = ScriptedBackend(by_turn({0: [0, 1, 1], 1: [9, 2, 1], 2: [0, 1, 1]}))
    found = heldout_rounds(backend, recs, ExactScorer(), rounds=2, max_tokens=9, method=method)
    assert [r["accuracy"] for r in found["rounds"]] == pytest.approx(accuracy, abs=1e-4)
    assert [r["tokens_mean"] for r in found["rounds"]] == pytest.approx(tokens, abs=0.05)
    assert found["method"] == method and found["heldout_n"] == 3
    assert found["fixed"] == (1 if method == "rise-oracle" else 0) and found["broken"] == 0


def test_rise_oracle_heldout_reads_the_scores_the_chain_stopped_on():
    """A flaky judge: the second reading of a text contradicts the first. The oracle chain stopped on its first
    reading, so the held-out accuracy must follow that reading, and every turn keeps its score."""

    class Flaky(ExactScorer):
        def __init__(self):
            self.seen: dict[str, int] = {}

        def score_many(self, tasks, texts, references, questions):
            right = super().score_many(tasks, texts, references, questions)
            out = []
            for t, r in zip(texts, right):
                self.seen[t] = self.seen.get(t, 0) + 1
                out.append(r if self.seen[t] == 1 else 1.0 - r)  # every later reading says the opposite
            return out

    recs = records(2)  # references 0, 2
    backend = ScriptedBackend(by_turn({0: [0, 1], 1: [None, 2]}))
    found = heldout_rounds(backend, recs, Flaky(), rounds=1, max_tokens=9, method="rise-oracle")
    assert [r["accuracy"] for r in found["rounds"]] == [0.5, 1.0]
    assert found["fixed"] == 1 and found["broken"] == 0
    outcomes = run_method("rise-oracle", recs, ChainConfig(backend=ScriptedBackend(by_turn({0: [0, 1], 1: [None, 2]})),
                                                            max_tokens=9, rounds=1, score=exact_score))
    assert [[t["score"] for t in o.turns] for o in outcomes] == [[1.0], [0.0, 1.0]]


def test_heldout_rounds_refuses_a_single_turn_method():
    with pytest.raises(ValueError, match="vanilla"):
        heldout_rounds(ScriptedBackend(lambda c: "x"), records(1), ExactScorer(), rounds=1, max_tokens=9,
                       method="vanilla")


def test_report_knows_the_new_methods():
    from pasr.report.loading import METHOD_ORDER
    from pasr.report.plots import METHOD_COLORS

    for method in ("score", "rise", "rise-oracle"):
        assert method in METHOD_ORDER and method in METHOD_COLORS
    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)


@pytest.mark.parametrize("method, turns", [("score", 2), ("rise", 3)])
def test_eval_cli_runs_the_method_and_the_report_counts_every_turn(tmp_path, method, turns):
    import json

    from typer.testing import CliRunner

    from pasr.cli import app

    out, report = tmp_path / "eval", tmp_path / "report"
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--model", "tiny-random", "--benchmark", "synthetic", "--limit", "2",
                                 "--max-tokens", "4", "--methods", method, "--rounds", str(turns - 1),
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "synthetic" / f"{method}.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(len(line["turns"]) == turns for line in lines)
    assert all(line["tokens"] == sum(t["tokens"] for t in line["turns"]) for line in lines)
    summary = json.loads((out / "synthetic" / f"{method}.summary.json").read_text())
    result = runner.invoke(app, ["report", str(out), "-o", str(report)])
    assert result.exit_code == 0, result.output
    [row] = [r for r in (report / "table1.md").read_text().splitlines() if r.startswith(f"| tiny-random | {method} |")]
    assert f"| {summary['tokens_mean']:.0f} |" in row
    html = (report / "report.html").read_text()
    assert "<th>rounds</th>" in html and f"<td>{turns - 1}</td>" in html  # the runs table says how many turns


def test_rise_oracle_names_a_retry_a_revision_only_when_its_answer_changed():
    """An empty or repeated answer after the retry feedback is no refinement (the report's refine rate)."""
    recs = records(2)  # references 0, 2
    backend = ScriptedBackend(by_turn({0: [5, 7], 1: [5, 9], 2: [5, 2]}))
    outcomes = run_method("rise-oracle", recs, ChainConfig(backend=backend, max_tokens=9, rounds=2,
                                                            score=exact_score))
    assert [t["name"] for t in outcomes[0].turns] == ["answer", "feedback", "feedback"]
    assert [t["name"] for t in outcomes[1].turns] == ["answer", "revision", "revision"]
    assert outcomes[0].revisions == 0 and outcomes[1].revisions == 2
