"""Arm-against-arm evidence (pasr.report.evidence) on hand-made `pasr eval` result folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pasr.errors import PasrError
from pasr.report.evidence import (Arm, check_targets, refine_claims, compare, comparisons_markdown, load_arm, refine_vs_standard,
                                  targets_markdown, training_markdown, training_refine_vs_baseline)


def write_run(folder: Path, method: str, scores: list[float], *, tokens: float = 50.0,
              refined: list[bool] | None = None) -> Path:
    """A RUN_DIR holding synthetic/<method>.jsonl with problems p0, p1, ..."""
    bench = folder / "synthetic"
    bench.mkdir(parents=True, exist_ok=True)
    refined = refined or [False] * len(scores)
    lines = [{"id": f"p{i}", "score": s, "tokens": tokens, "refined": r, "format_valid": True, "task": "arith"}
             for i, (s, r) in enumerate(zip(scores, refined))]
    (bench / f"{method}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return folder


def test_load_arm_averages_seeds_per_problem(tmp_path):
    a = write_run(tmp_path / "s0", "pasr", [1, 0, 1, 0], refined=[True, False, False, False])
    b = write_run(tmp_path / "s1", "pasr", [1, 1, 0, 0])
    result = load_arm(Arm("pasr", "PASR", "pasr", [a, b]))
    assert result.scores == {"p0": 1.0, "p1": 0.5, "p2": 0.5, "p3": 0.0}
    assert result.accuracy == pytest.approx(0.5)
    assert [s["accuracy"] for s in result.per_seed] == [0.5, 0.5]
    assert result.refine_rate == pytest.approx(0.125)  # 1 of 4, then 0 of 4


def test_load_arm_refuses_seeds_on_different_problems(tmp_path):
    a = write_run(tmp_path / "s0", "pasr", [1, 0, 1])
    b = write_run(tmp_path / "s1", "pasr", [1, 0])
    with pytest.raises(PasrError, match="same problems"):
        load_arm(Arm("pasr", "PASR", "pasr", [a, b]))
    with pytest.raises(PasrError, match="no synthetic/vanilla.jsonl"):
        load_arm(Arm("x", "X", "vanilla", [a]))


def test_compare_is_paired_and_reports_noise_as_no_difference(tmp_path):
    n = 200
    better = load_arm(Arm("pasr", "PASR", "pasr", [write_run(tmp_path / "a", "pasr", [1.0] * n, tokens=60)]))
    worse = load_arm(Arm("c", "C", "pasr", [write_run(tmp_path / "b", "pasr", [1.0] * 100 + [0.0] * 100,
                                                        tokens=50)]))
    c = compare(better, worse)
    assert c["n"] == n and c["delta_points"] == pytest.approx(50.0)
    assert c["significant"] and c["ci_points"][0] > 40
    assert c["token_ratio"] == pytest.approx(1.2)
    # one problem apart out of 200: inside the noise
    close = load_arm(Arm("d", "D", "pasr", [write_run(tmp_path / "d", "pasr", [1.0] * (n - 1) + [0.0])]))
    c = compare(better, close)
    assert c["delta_points"] == pytest.approx(0.5) and not c["significant"]
    assert "no difference" in comparisons_markdown({"pasr-vs-d": c}, {"d": close})


def test_refine_vs_standard_pairs_refining_answers_with_the_same_seed(tmp_path):
    s0 = tmp_path / "s0"
    write_run(s0, "pasr", [1, 1, 0, 0], refined=[True, True, True, False])
    write_run(s0, "vanilla", [0, 1, 0, 1])
    pasr = load_arm(Arm("pasr", "PASR", "pasr", [s0]))
    standard = load_arm(Arm("std", "standard", "vanilla", [s0]))
    out = refine_vs_standard(pasr, standard)
    assert out["pairs"] == 3  # p3 did not refine
    assert out["refining_accuracy"] == pytest.approx(2 / 3) and out["standard_accuracy"] == pytest.approx(1 / 3)


def test_training_refines_against_their_baseline(tmp_path):
    log = tmp_path / "rollouts.jsonl"
    rows = [
        {"trace": {"refined": True}, "accuracy": 1.0, "baseline": [0.0, 0.0, 1.0, 1.0]},
        {"trace": {"refined": True}, "accuracy": 0.0, "baseline": [0.0, 0.0, 0.0, 0.0]},
        {"trace": {"refined": False}, "accuracy": 1.0, "baseline": [0.0, 0.0, 0.0, 0.0]},
        {"trace": {"refined": True}, "accuracy": 1.0, "baseline": []},  # lazy step: no baseline logged
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"trace": {"ref', encoding="utf-8")
    out = training_refine_vs_baseline([log])
    assert out["pairs"] == 2
    assert out["refining_accuracy"] == 0.5 and out["standard_accuracy"] == 0.25
    assert "2 refining completions" in training_markdown(out)
    assert training_refine_vs_baseline([])["pairs"] == 0


@pytest.mark.parametrize("refine,verdict", [
    ("Check 14 + 8: it is 22, not 24.", True),
    ("Wait, 22 - 8 is 16, not 16.", False),
    ("Let me recheck 24 - 7. It equals 15, so 19 was wrong.", False),
    ("3 * 4 = 12", True),
    ("Wait, I should reread the question.", None),
])
def test_a_refines_stated_calculation_is_checked(refine, verdict):
    from pasr.data.synthetic import refine_claim_is_right

    assert refine_claim_is_right(refine) is verdict


def test_refine_claims_count_over_rollout_logs(tmp_path):
    log = tmp_path / "rollouts.jsonl"
    rows = [
        {"trace": {"refines": [{"text": "Check 14 + 8: it is 22."}, {"text": "Wait, 9 - 2 is 6."}]}},
        {"trace": {"refines": [{"text": "Let me reread the question."}]}},
        {"trace": {"refines": []}},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"trace": {"ref', encoding="utf-8")
    assert refine_claims([log]) == {"refines": 3, "checkable": 2, "right": 1}
    assert refine_claims([]) == {"refines": 0, "checkable": 0, "right": 0}


def test_targets_fail_on_noise_and_pass_on_a_clear_win(tmp_path):
    n = 300

    def arm(name, method, scores, tokens, refined=None):
        folder = write_run(tmp_path / name, method, scores, tokens=tokens, refined=refined)
        return load_arm(Arm(name, name, method, [folder]))

    clear = {
        "pasr": arm("pasr", "pasr", [1.0] * 240 + [0.0] * 60, 50, refined=[True] * 30 + [False] * 270),
        "warmup": arm("warmup", "pasr", [1.0] * 150 + [0.0] * 150, 48),
        "control": arm("control", "pasr", [1.0] * 160 + [0.0] * 140, 45),
        "self-refine": arm("self-refine", "self-refine", [1.0] * 200 + [0.0] * 100, 120),
    }
    training = {"pairs": 40, "refining_accuracy": 0.8, "standard_accuracy": 0.5, "delta_points": 30.0,
                "ci_points": [15.0, 45.0]}
    targets, comparisons = check_targets(clear, training=training)
    assert [t.passed for t in targets] == [True] * 5, targets_markdown(targets)
    assert comparisons["pasr-vs-control"]["delta_points"] == pytest.approx(100 * (240 - 160) / n)

    tie = dict(clear, pasr=arm("pasr2", "pasr", [1.0] * 152 + [0.0] * 148, 50, refined=[False] * n))
    targets, _ = check_targets(tie, training={"pairs": 0})
    passed = {t.name: t.passed for t in targets}
    assert not passed["PASR beats warm-up only"] and not passed["PASR beats plain-GRPO control"]
    assert not passed["refinement does not collapse"]
    assert "**no**" in targets_markdown(targets)
    with pytest.raises(PasrError, match="missing control"):
        check_targets({k: v for k, v in clear.items() if k != "control"})


def test_arms_evaluated_with_another_dtype_are_refused(tmp_path):
    def arm(name, dtype):
        folder = write_run(tmp_path / name, "pasr", [1.0, 0.0, 1.0])
        info = {"model": name, "max_tokens": 128, "temperature": 0.0}
        if dtype is not None:  # None: a folder written before run.json recorded the dtype (it meant auto)
            info["dtype"] = dtype
        (folder / "run.json").write_text(json.dumps(info))
        return load_arm(Arm(name, name, "pasr", [folder]))

    same = {"pasr": arm("pasr", "bfloat16"), "warmup": arm("warmup", "bfloat16"), "control": arm("control", "bfloat16")}
    check_targets(same, training={"pairs": 0})  # agreeing settings compare fine
    mixed = dict(same, warmup=arm("old-warmup", None))
    with pytest.raises(PasrError, match=r"old-warmup/run.json and .*pasr/run.json .*dtype 'auto' vs 'bfloat16'"):
        check_targets(mixed, training={"pairs": 0})


def test_arms_plot_draws_every_arm(tmp_path):
    arms = {name: load_arm(Arm(name, f"arm {name}", "pasr", [write_run(tmp_path / name, "pasr", scores)]))
            for name, scores in (("pasr", [1, 0, 1, 1]), ("control", [1, 0, 0, 1]), ("warmup", [0, 0, 1, 0]))}
    from pasr.report.evidence import arms_plot

    path = arms_plot(arms, tmp_path / "plots" / "arms.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_refines_by_phase_splits_training_by_step(tmp_path):
    from pasr.report.evidence import refines_by_phase

    log = tmp_path / "rollouts.jsonl"
    rows = [{"step": step, "trace": {"refines": [{"text": "x"}] if step <= 2 and k == 0 else []}}
            for step in range(1, 7) for k in range(2)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 7, "tra')  # killed mid-write
    assert refines_by_phase([log]) == [{"completions": 4, "refining": 2}, {"completions": 4, "refining": 0},
                                       {"completions": 4, "refining": 0}]
    assert refines_by_phase([log], phases=2) == [{"completions": 6, "refining": 2}, {"completions": 6, "refining": 0}]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert refines_by_phase([empty]) == []
