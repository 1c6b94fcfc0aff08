"""LLM analyses of refining responses: reply parsing, what the judge sees, resume, judge failures."""

from __future__ import annotations

import json

import pytest
from test_eval_fakes import ScriptedJudge

from pasr.eval.analysis import aggregate, analyse, context_of, parse_score, parse_type, prompts_for
from pasr.format import parse


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("Error correction", "error correction"),
        ("1. error-correction: it fixes the sum", "error correction"),
        ("3", "solution improvement"),
        ('{"type": "Task Alignment"}', "task alignment"),
        ("The refinement adds missing information (information complement).", "information complement"),
        ("I cannot tell", None),
        (None, None),
    ],
)
def test_parse_type(reply, expected):
    assert parse_type(reply) == expected


@pytest.mark.parametrize(
    "reply,expected",
    [("8", 0.8), ("Score: 7.5", 0.75), ("4/5", 0.8), ('{"score": 10}', 1.0), ("12", 1.0), ("none", None), (None, None)],
)
def test_parse_score(reply, expected):
    got = parse_score(reply)
    assert got == (pytest.approx(expected) if expected is not None else None)


def pasr_line(id_, refined=True):
    text = ("<think>3 + 4 = 8 <refine>3 + 4 is 7, not 8</refine> so 7</think><answer>7</answer>" if refined
            else "<think>3 + 4 = 7</think><answer>7</answer>")
    return {"id": id_, "question": "What is 3 + 4?", "final": text, "trace": parse(text).to_dict(),
            "turns": [{"name": "answer", "prompt": "q", "text": text, "tokens": 9}], "refined": refined}


def revision_line(id_):
    return {"id": id_, "question": "What is 3 + 4?", "final": "It is 7. <answer>7</answer>", "trace": {},
            "refined": True, "turns": [{"name": "answer", "text": "It is 8. <answer>8</answer>"},
                                       {"name": "revision", "text": "It is 7. <answer>7</answer>"}]}


def test_judge_sees_refines_or_the_revision():
    inline = context_of(pasr_line("a"))
    assert "3 + 4 is 7, not 8" in inline and "<refine>" in inline
    revised = context_of(revision_line("b"))
    assert "It is 8." in revised and "It is 7." in revised
    assert context_of(pasr_line("c", refined=False)) is None
    assert set(prompts_for(pasr_line("a"))) == {"type", "coherence", "consistency"}


def test_analyse_appends_resumes_and_leaves_failures_for_later(tmp_path):
    path = tmp_path / "pasr.analysis.jsonl"
    lines = [pasr_line("a"), pasr_line("b"), pasr_line("c", refined=False), revision_line("d")]
    down = {"b"}

    def reply(conv):
        text = conv[-1]["content"]
        if "It is 8." not in text and down and "b-marker" in text:
            return None
        return "information complement" if "main purpose" in text else "6/10"

    lines[1]["question"] = "What is 3 + 4? b-marker"
    judge = ScriptedJudge(reply)
    result = analyse(lines, judge, path, "pasr")
    assert len(judge.prompts) == 9  # a, b, d; not the non-refining c
    assert result["n"] == 2 and result["eligible"] == 3 and result["judge_failures"] == 1
    assert result["types"]["information complement"] == 1.0 and result["coherence_mean"] == pytest.approx(0.6)
    stored = [json.loads(x) for x in path.read_text().splitlines()]
    assert {s["id"] for s in stored} == {"a", "d"}
    assert {s["kind"] for s in stored} == {"inline", "revision"}
    down.clear()
    judge.prompts.clear()
    result = analyse(lines, judge, path, "pasr")
    assert len(judge.prompts) == 3  # only b is asked again
    assert result["n"] == 3 and result["judge_failures"] == 0


def test_aggregate_counts_unparsed():
    agg = aggregate([
        {"type": "error correction", "coherence": 1.0, "consistency": 0.5},
        {"type": None, "coherence": None, "consistency": 1.0},
    ])
    assert agg["types"]["error correction"] == 1.0
    assert agg["unparsed"] == {"type": 1, "coherence": 1, "consistency": 0}
    assert agg["consistency_mean"] == pytest.approx(0.75)
