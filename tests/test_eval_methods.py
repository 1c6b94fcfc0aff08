"""Each evaluation method's chain over a scripted backend: turn order, prompts, what is scored, tokens."""

from __future__ import annotations

import pytest
from test_eval_fakes import ScriptedBackend, answer, question_of, records, user_text

from pasr.eval.methods import ChainConfig, confirms, is_wrong, run_method
from pasr.prompts import (
    PASR_SYSTEM_PROMPT,
    SELF_REFINE_CONFIRMATION,
    SELF_REFINE_FEEDBACK,
    SELF_REFINE_ORACLE_FEEDBACK,
    STANDARD_SYSTEM_PROMPT,
    user_message,
)


def exact_score(recs, texts):
    """1.0 when the <answer> content equals the reference, else 0.0 (a stand-in for pasr.scoring)."""
    from pasr.format import extract_answer

    return [1.0 if extract_answer(t) == r.reference else 0.0 for r, t in zip(recs, texts)]


def cfg(backend, **kw):
    return ChainConfig(backend=backend, max_tokens=50, score=exact_score, **kw)


@pytest.mark.parametrize("method,system", [("vanilla", STANDARD_SYSTEM_PROMPT), ("pasr", PASR_SYSTEM_PROMPT)])
def test_single_turn_methods_send_system_and_task_prompt(method, system):
    recs = records(3)
    backend = ScriptedBackend(lambda conv: (answer(7), 5))
    outcomes = run_method(method, recs, cfg(backend))
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 3  # one batched turn
    for rec, conv, out in zip(recs, backend.calls[0], outcomes):
        assert conv == [
            {"role": "system", "content": system},
            {"role": "user", "content": user_message(rec.question, rec.task)},
        ]
        assert out.final == answer(7)
        assert out.tokens == 5
        assert [t["name"] for t in out.turns] == ["answer"]
        assert out.turns[0]["prompt"] == user_message(rec.question, rec.task)


def test_self_refine_confirmed_scores_first_answer_and_sums_tokens():
    recs = records(2)

    def reply(conv):
        if user_text(conv) == SELF_REFINE_FEEDBACK:
            return f"{SELF_REFINE_CONFIRMATION}. <answer>999</answer>", 4
        return answer(1), 10

    backend = ScriptedBackend(reply)
    outcomes = run_method("self-refine", recs, cfg(backend))
    # all first turns in one batch, then all feedback turns in one batch
    assert [len(c) for c in backend.calls] == [2, 2]
    second = backend.calls[1][0]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[0]["content"] == STANDARD_SYSTEM_PROMPT
    assert second[2]["content"] == answer(1) and second[3]["content"] == SELF_REFINE_FEEDBACK
    for out in outcomes:
        assert out.final == answer(1)  # confirmed: the first answer is scored, not the confirmation
        assert [t["name"] for t in out.turns] == ["answer", "feedback"]
        assert out.tokens == 14
        assert out.revisions == 0


def test_self_refine_revision_is_scored():
    recs = records(1)
    backend = ScriptedBackend(lambda conv: answer(2) if user_text(conv) == SELF_REFINE_FEEDBACK else answer(5))
    (out,) = run_method("self-refine", recs, cfg(backend))
    assert out.final == answer(2)
    assert [t["name"] for t in out.turns] == ["answer", "revision"]
    assert out.turns[1]["prompt"] == SELF_REFINE_FEEDBACK
    assert out.revisions == 1


def test_self_refine_rounds_stop_early_once_confirmed():
    recs = records(3)
    plan = {  # question -> replies to the feedback turns, in order
        recs[0].question: [SELF_REFINE_CONFIRMATION],
        recs[1].question: ["revised once <answer>11</answer>", SELF_REFINE_CONFIRMATION],
        recs[2].question: ["r1 <answer>1</answer>", "r2 <answer>2</answer>", "r3 <answer>3</answer>"],
    }

    def reply(conv):
        asked = sum(1 for m in conv if m["role"] == "user" and m["content"] == SELF_REFINE_FEEDBACK)
        if asked == 0:
            return "first <answer>0</answer>"
        return plan[question_of(conv)][asked - 1]

    backend = ScriptedBackend(reply)
    outcomes = run_method("self-refine", recs, cfg(backend, rounds=3))
    assert [len(c) for c in backend.calls] == [3, 3, 2, 1]
    assert outcomes[0].final == "first <answer>0</answer>"
    assert outcomes[1].final == "revised once <answer>11</answer>"  # confirmed the revision in round 2
    assert [t["name"] for t in outcomes[1].turns] == ["answer", "revision", "feedback"]
    assert outcomes[2].final == "r3 <answer>3</answer>"
    assert outcomes[2].revisions == 3
    # a later round shows the model the whole history, its revision included
    last = backend.calls[3][0]
    assert [m["content"] for m in last if m["role"] == "assistant"] == [
        "first <answer>0</answer>", "r1 <answer>1</answer>", "r2 <answer>2</answer>"
    ]


def test_oracle_revises_only_wrong_answers():
    recs = records(4)  # references 0, 2, 4, 6

    def reply(conv):
        q = question_of(conv)
        rec = next(r for r in recs if r.question == q)
        if user_text(conv) == SELF_REFINE_ORACLE_FEEDBACK:
            return answer(rec.reference), 3
        right = rec.id in ("q0", "q2")
        return answer(rec.reference if right else "wrong"), 10

    backend = ScriptedBackend(reply)
    outcomes = run_method("self-refine-oracle", recs, cfg(backend))
    assert [len(c) for c in backend.calls] == [4, 2]
    revised = {question_of(c) for c in backend.calls[1]}
    assert revised == {recs[1].question, recs[3].question}
    assert all(c[-1]["content"] == SELF_REFINE_ORACLE_FEEDBACK for c in backend.calls[1])
    assert [len(o.turns) for o in outcomes] == [1, 2, 1, 2]
    assert [o.tokens for o in outcomes] == [10, 13, 10, 13]
    assert [o.score for o in outcomes] == [1.0, 1.0, 1.0, 1.0]  # the revision was re-scored
    assert outcomes[1].final == answer("2") and outcomes[1].turns[1]["name"] == "revision"


def test_oracle_rounds_continue_while_still_wrong():
    recs = records(2)
    backend = ScriptedBackend(lambda conv: answer("nope"))
    outcomes = run_method("self-refine-oracle", recs[1:], cfg(backend, rounds=3))
    assert [len(c) for c in backend.calls] == [1, 1, 1, 1]
    assert outcomes[0].revisions == 3 and outcomes[0].score == 0.0


def test_oracle_threshold_depends_on_metric():
    assert is_wrong(0.99, "accuracy") and not is_wrong(1.0, "accuracy")
    assert not is_wrong(0.6, "f1") and is_wrong(0.4, "f1")
    assert not is_wrong(0.5, "rouge_l") and is_wrong(0.49, "rouge_l")

    recs = records(2, task="drop")
    scores = iter([[0.6, 0.4], [0.45]])
    backend = ScriptedBackend(lambda conv: "some answer")
    outcomes = run_method(
        "self-refine-oracle",
        recs,
        ChainConfig(backend=backend, score=lambda r, t: next(scores), metric_of=lambda task: "f1"),
    )
    assert [len(o.turns) for o in outcomes] == [1, 2]
    assert [o.score for o in outcomes] == [0.6, 0.45]


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("I believe the above solution is correct.", True),
        ("Checked every step.\nI BELIEVE the above   solution\nis correct. <answer>4</answer>", True),
        ("The above solution is not correct; fixing it.", False),
        ("", False),
    ],
)
def test_confirmation_detection(reply, expected):
    assert confirms(reply) is expected
