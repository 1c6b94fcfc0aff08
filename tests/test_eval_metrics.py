"""Summary metrics on hand-computed fixtures."""

from __future__ import annotations

import json

import pytest

from pasr.eval.metrics import (
    bootstrap_ci,
    paired_bootstrap_ci,
    read_lines,
    refine_rate,
    refines_per_response,
    summarize,
    transitions,
)

CONTRACT_SUMMARY_KEYS = {
    "benchmark", "method", "model", "label", "metric", "n", "score", "score_ci", "tokens_mean", "refine_rate",
    "refines_per_response", "format_valid_rate", "transitions",
}


def line(id_, score, tokens=10, refines=0, valid=True):
    return {"id": id_, "score": score, "tokens": tokens, "refines": refines, "refined": refines > 0,
            "format_valid": valid, "task": "arith"}


VANILLA = [line("a", 1.0), line("b", 0.0), line("c", 1.0), line("d", 0.0), line("e", 0.0)]
METHOD = [line("a", 1.0, 20, 2), line("b", 1.0, 30, 1), line("c", 0.0, 10), line("d", 0.0, 40), line("e", 0.7, 0, 1),
          line("z", 1.0)]  # "z" has no vanilla partner


def test_transitions_pair_by_id():
    t = transitions(METHOD, VANILLA)
    # pairs: a R->R, b W->R, c R->W, d W->W, e W->R (0.7 >= 0.5 counts as right); z unpaired
    assert t == {"right->right": 0.2, "wrong->right": 0.4, "right->wrong": 0.2, "wrong->wrong": 0.2}
    assert sum(t.values()) == pytest.approx(1.0)
    assert transitions(METHOD, []) is None


def test_refine_rate_and_refines_per_response():
    assert refine_rate(METHOD) == pytest.approx(3 / 6)
    assert refines_per_response(METHOD) == pytest.approx(4 / 6)
    assert refine_rate([]) is None


def test_bootstrap_ci_contains_mean_and_is_seeded():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    lo, hi = bootstrap_ci(values, seed=3)
    assert lo <= 0.7 <= hi and lo < hi
    assert bootstrap_ci(values, seed=3) == [lo, hi]
    assert bootstrap_ci([0.5]) == [0.5, 0.5]
    assert bootstrap_ci([]) is None


def test_paired_bootstrap_difference():
    a = [1.0, 1.0, 0.0, 1.0]
    b = [0.0, 1.0, 0.0, 0.0]
    got = paired_bootstrap_ci(a, b, seed=1)
    assert got["delta"] == pytest.approx(0.5) and got["n"] == 4
    assert got["ci"][0] <= 0.5 <= got["ci"][1]
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0], [1.0, 0.0])


def test_summarize_has_contract_keys_and_values():
    s = summarize(METHOD, benchmark="gsm8k", method="pasr", model="m", label="L", metric="accuracy", vanilla=VANILLA)
    assert CONTRACT_SUMMARY_KEYS <= set(s)
    assert s["n"] == 6
    assert s["score"] == pytest.approx((1 + 1 + 0 + 0 + 0.7 + 1) / 6)
    assert s["score_ci"][0] <= s["score"] <= s["score_ci"][1]
    assert s["tokens_mean"] == pytest.approx((20 + 30 + 10 + 40 + 0 + 10) / 6)
    assert s["format_valid_rate"] == 1.0
    assert s["transitions"]["wrong->right"] == pytest.approx(0.4)
    assert s["delta_vs_vanilla"]["n"] == 5
    assert s["delta_vs_vanilla"]["delta"] == pytest.approx((0 + 1 - 1 + 0 + 0.7) / 5)
    v = summarize(VANILLA, benchmark="gsm8k", method="vanilla", model="m", label="L", metric="accuracy", vanilla=VANILLA)
    assert v["transitions"] is None and v["delta_vs_vanilla"] is None
    empty = summarize([], benchmark="gsm8k", method="pasr", model="m", label="L", metric="accuracy")
    assert empty["n"] == 0 and empty["score"] is None and empty["transitions"] is None


def test_read_lines_skips_torn_last_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(line("a", 1.0)) + "\n" + json.dumps(line("b", 0.0)) + "\n" + '{"id": "c", "sc')
    assert [r["id"] for r in read_lines(path)] == ["a", "b"]
    assert read_lines(tmp_path / "missing.jsonl") == []
