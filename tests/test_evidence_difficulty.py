"""Issue 12's measurements (pasr.report.evidence): refines on easy and hard problems, refining against non-refining
answers, tokens against trigger, and the targets, on hand-made `pasr eval` result folders of the sums benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pasr.errors import PasrError
from pasr.report.evidence import (
    Arm,
    check_targets,
    difficulty_breakdown,
    difficulty_evidence,
    difficulty_markdown,
    hard_vs_easy,
    load_arm,
    read_difficulties,
    refining_vs_not_same_problems,
    refining_vs_reference,
    targets_markdown,
)


def write_records(path: Path, labels: dict[str, str | int]) -> Path:
    """A held-out records file: id -> meta["difficulty"]."""
    rows = [{"id": pid, "question": f"What is {i} + 1?", "reference": str(i + 1), "task": "arith",
             "meta": {"family": "sums", "difficulty": label}} for i, (pid, label) in enumerate(labels.items())]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_answers(folder: Path, method: str, answers: dict[str, tuple[float, float, bool]]) -> Path:
    """A RUN_DIR holding sums/<method>.jsonl: id -> (score, tokens, refined)."""
    bench = folder / "sums"
    bench.mkdir(parents=True, exist_ok=True)
    lines = [{"id": pid, "score": score, "tokens": tokens, "refined": refined, "format_valid": True, "task": "arith",
              "trace": {"refined": refined}} for pid, (score, tokens, refined) in answers.items()]
    (bench / f"{method}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return folder


def arm(name: str, method: str, folders: list[Path]):
    return load_arm(Arm(name, name, method, folders, benchmark="sums"))


# Two easy and four hard problems, two seeds:
#   seed 0 refines e0 (right, 80 tokens), h0 (right), h1 (wrong), h2 (right); seed 1 refines h0 (right), h1 (right).
#   Non-refining answers: easy always right (20 tokens), hard right on h3 only (34 tokens); refines take 160 on hard.
LABELS = {"e0": "easy", "e1": "easy", "h0": "hard", "h1": "hard", "h2": "hard", "h3": "hard"}
SEED0 = {"e0": (1, 80, True), "e1": (1, 20, False), "h0": (1, 160, True), "h1": (0, 160, True),
         "h2": (1, 160, True), "h3": (1, 34, False)}
SEED1 = {"e0": (1, 20, False), "e1": (1, 20, False), "h0": (1, 160, True), "h1": (1, 160, True),
         "h2": (0, 34, False), "h3": (0, 34, False)}
STANDARD = {"e0": (1, 20, False), "e1": (0, 20, False), "h0": (0, 34, False), "h1": (0, 34, False),
            "h2": (1, 34, False), "h3": (1, 34, False)}


@pytest.fixture
def small(tmp_path):
    labels = read_difficulties(write_records(tmp_path / "test.jsonl", LABELS))
    pasr = arm("pasr", "pasr", [write_answers(tmp_path / "s0", "pasr", SEED0),
                                write_answers(tmp_path / "s1", "pasr", SEED1)])
    standard = arm("warmup-standard", "vanilla", [write_answers(tmp_path / "w", "vanilla", STANDARD)])
    return labels, pasr, standard


def test_read_difficulties_takes_labels_not_levels(tmp_path):
    assert read_difficulties(write_records(tmp_path / "sums.jsonl", LABELS)) == LABELS
    # arith records carry a numeric level, the same for every problem: nothing to split by
    assert read_difficulties(write_records(tmp_path / "arith.jsonl", {"a0": 3, "a1": 3})) == {}


def test_refine_rate_accuracy_and_tokens_by_difficulty(small):
    labels, pasr, _ = small
    b = difficulty_breakdown(pasr, labels)
    assert list(b) == ["easy", "hard", "all"]
    easy, hard, every = b["easy"], b["hard"], b["all"]
    assert (easy["problems"], easy["answers"], hard["problems"], hard["answers"]) == (2, 4, 4, 8)
    assert easy["refine_rate"] == pytest.approx(1 / 4)  # e0 in one of two seeds
    assert hard["refine_rate"] == pytest.approx(5 / 8)  # h0 2/2, h1 2/2, h2 1/2, h3 0/2
    assert every["refine_rate"] == pytest.approx(6 / 12)
    lo, hi = hard["refine_ci"]
    assert 0 <= lo <= 5 / 8 <= hi <= 1
    assert easy["accuracy"] == 1.0 and hard["accuracy"] == pytest.approx(5 / 8)
    assert easy["tokens"] == pytest.approx((80 + 20 + 20 + 20) / 4)
    assert hard["tokens"] == pytest.approx((160 * 5 + 34 * 3) / 8)
    # refining answers against non-refining ones of the same difficulty
    assert hard["refining"]["n"] == 5 and hard["refining"]["accuracy"] == pytest.approx(4 / 5)
    assert hard["non_refining"]["n"] == 3 and hard["non_refining"]["accuracy"] == pytest.approx(1 / 3)
    assert easy["refining"]["n"] == 1 and easy["non_refining"]["accuracy"] == 1.0
    assert every["refining"]["accuracy"] == pytest.approx(5 / 6)


def test_hard_against_easy_ratio_and_its_edges(small, tmp_path):
    labels, pasr, standard = small
    r = hard_vs_easy(pasr, labels)
    assert r["hard"] == pytest.approx(5 / 8) and r["easy"] == pytest.approx(1 / 4)
    assert r["ratio"] == pytest.approx(2.5) and r["difference_points"] == pytest.approx(37.5)
    lo, hi = r["ratio_ci"]
    assert lo is not None and lo <= 2.5  # with 2 easy problems many resamples hold no easy refine: unbounded
    assert hi is None
    # no easy answer refines: the ratio is unbounded, not a number
    only_hard = arm("h", "pasr", [write_answers(tmp_path / "only-hard", "pasr",
                                                {**SEED0, "e0": (1, 20, False)})])
    r = hard_vs_easy(only_hard, labels)
    assert r["easy"] == 0 and r["hard"] == pytest.approx(3 / 4) and r["ratio"] is None
    # nothing refines at all
    r = hard_vs_easy(standard, labels)
    assert r["hard"] == 0 and r["ratio"] is None and r["ratio_ci"] == [None, None]


def test_refining_answers_against_the_warmups_standard_answers(small):
    labels, pasr, standard = small
    out = refining_vs_reference(pasr, standard, labels)
    # refining answers: s0 e0, h0, h1, h2; s1 h0, h1 -> paired with the standard answer to the same problem
    assert out["all"]["pairs"] == 6
    assert out["all"]["refining_accuracy"] == pytest.approx(5 / 6)
    assert out["all"]["standard_accuracy"] == pytest.approx((1 + 0 + 0 + 1 + 0 + 0) / 6)
    assert out["all"]["delta_points"] == pytest.approx(100 * (5 - 2) / 6)
    assert out["easy"]["pairs"] == 1 and out["easy"]["delta_points"] == 0
    assert out["hard"]["pairs"] == 5 and out["hard"]["standard_accuracy"] == pytest.approx(1 / 5)


def test_refining_against_not_refining_on_the_same_problems(small):
    _, pasr, standard = small
    out = refining_vs_not_same_problems(pasr)
    # e0 (refined right, not refined right) and h2 (refined right, not refined wrong) are mixed
    assert out["problems"] == 2
    assert out["refining_accuracy"] == 1.0 and out["non_refining_accuracy"] == 0.5
    assert refining_vs_not_same_problems(standard)["problems"] == 0


def test_a_problem_the_records_do_not_label_is_an_error(small, tmp_path):
    labels, pasr, _ = small
    with pytest.raises(PasrError, match="h3 of .* has no difficulty"):
        difficulty_breakdown(pasr, {k: v for k, v in labels.items() if k != "h3"})
    with pytest.raises(PasrError, match="no held-out record"):
        difficulty_evidence({"pasr": pasr}, {})


def clear_case(tmp_path: Path, *, pasr_easy_refines: int = 4, pasr_hard_refines: int = 60,
               pasr_hard_refine_tokens: float = 160, control_hard_right: int = 80):
    """200 problems (80 easy, 120 hard), one seed per arm, and what each arm answered."""
    easy = [f"e{i}" for i in range(80)]
    hard = [f"h{i}" for i in range(120)]
    labels = read_difficulties(write_records(tmp_path / "test.jsonl", {**dict.fromkeys(easy, "easy"),
                                                                       **dict.fromkeys(hard, "hard")}))

    def answers(easy_refines, hard_refines, hard_right, *, refine_tokens=160.0, tokens=34.0):
        out = {p: (1.0, 80.0 if i < easy_refines else 20.0, i < easy_refines) for i, p in enumerate(easy)}
        for i, p in enumerate(hard):
            refined = i < hard_refines
            out[p] = (1.0 if i < hard_right else 0.0, refine_tokens if refined else tokens, refined)
        return out

    def one(name, method, table):
        return arm(name, method, [write_answers(tmp_path / name, method, table)])

    # PASR refines on hard problems h0-h59, all right; of the others it gets h60-h89 right
    pasr_table = answers(pasr_easy_refines, pasr_hard_refines, 60, refine_tokens=pasr_hard_refine_tokens)
    for i in range(60, 90):
        pasr_table[f"h{i}"] = (1.0, 34.0, False)
    # the warm-up's standard answers get the same easy ones and hard h60-h89 right: wrong where PASR refined
    standard_table = {p: (1.0, 20.0, False) for p in easy}
    standard_table.update({f"h{i}": (1.0 if 60 <= i < 90 else 0.0, 34.0, False) for i in range(120)})
    arms = {
        "pasr": one("pasr", "pasr", pasr_table),
        "control": one("control", "pasr", answers(0, 0, control_hard_right)),
        "trigger": one("trigger", "pasr", answers(80, 120, 80)),
        "warmup": one("warmup", "pasr", answers(40, 60, 30)),
        "warmup-standard": one("warmup-standard", "vanilla", standard_table),
    }
    return arms, labels


TRAINING = {"pairs": 40, "refining_accuracy": 0.8, "standard_accuracy": 0.5, "delta_points": 30.0,
            "ci_points": [15.0, 45.0]}


def test_issue_12_targets_met(tmp_path):
    arms, labels = clear_case(tmp_path)
    detail = difficulty_evidence(arms, labels)
    pasr = detail["arms"]["pasr"]
    assert pasr["hard_vs_easy"]["easy"] == pytest.approx(4 / 80) and pasr["hard_vs_easy"]["hard"] == 0.5
    assert pasr["hard_vs_easy"]["ratio"] == pytest.approx(10.0)
    assert pasr["tokens"] == pytest.approx((4 * 80 + 76 * 20 + 60 * 160 + 60 * 34) / 200)
    ref = detail["refining_vs_reference"]["pasr"]
    assert ref["all"]["pairs"] == 64 and ref["all"]["refining_accuracy"] == 1.0
    assert ref["all"]["standard_accuracy"] == pytest.approx(4 / 64) and ref["all"]["ci_points"][0] > 0
    assert set(detail["refining_vs_reference"]) == {"pasr", "control", "trigger", "warmup"}  # PASR-prompt arms
    c = detail["pasr_vs_trigger"]
    assert c["token_ratio"] == pytest.approx(pasr["tokens"] / ((80 * 80 + 120 * 160) / 200))
    assert c["delta_points"] == pytest.approx(100 * (170 - 160) / 200)

    targets, comparisons = check_targets(arms, training=TRAINING, difficulty=detail)
    met = {t.name: t.passed for t in targets}
    assert met == {
        "PASR beats warm-up only": True,
        "PASR is not worse than the plain-GRPO control": True,
        "refinement does not collapse": True,
        "PASR refines more on hard problems": True,
        "refining responses are right more often (held-out, vs the warm-up's standard-prompt answers to the same "
        "problems)": True,
        "refining responses are right more often (training rollouts, vs the baseline samples)": True,
        "PASR needs fewer tokens than the trigger reward": True,
    }, targets_markdown(targets)
    assert "PASR beats plain-GRPO control" not in met  # issue 12 asks "not worse", not a 5-point win
    warmup_target = next(t for t in targets if t.name == "PASR beats warm-up only")
    assert "tokens" not in warmup_target.wanted  # issue 12 states no token cap for the gain over the warm-up
    by_name = {t.name: t for t in targets}
    assert "hard 50.0% vs easy 5.0%: 10.00x" in by_name["PASR refines more on hard problems"].measured
    assert by_name["PASR needs fewer tokens than the trigger reward"].measured.startswith(f"{c['token_ratio']:.2f}x")
    assert any(k.startswith("refining-vs-standard (held-out, vs the warm-up") for k in comparisons)

    text = difficulty_markdown(detail, arms)
    for heading in ("### Refine rate, accuracy and tokens by difficulty", "### Hard against easy",
                    "### Refining answers against the warm-up's standard-prompt answers to the same problems",
                    "### Tokens: PASR against the trigger reward"):
        assert heading in text
    assert "| pasr | hard | 120 | 75.0 |" in text
    assert "| pasr | 5.0% | 50.0% | 10.00x (95% CI" in text
    json.dumps(detail)  # evidence.json holds it


def test_issue_12_targets_not_met(tmp_path):
    # PASR refines as often on easy as on hard problems, at trigger's length, and the control is far ahead
    arms, labels = clear_case(tmp_path, pasr_easy_refines=40, pasr_hard_refines=60, pasr_hard_refine_tokens=400,
                              control_hard_right=120)
    detail = difficulty_evidence(arms, labels)
    assert detail["arms"]["pasr"]["hard_vs_easy"]["ratio"] == pytest.approx(1.0)
    targets, _ = check_targets(arms, training={"pairs": 0}, difficulty=detail)
    met = {t.name: t.passed for t in targets}
    assert not met["PASR is not worse than the plain-GRPO control"]
    assert not met["PASR refines more on hard problems"]
    assert not met["PASR needs fewer tokens than the trigger reward"]
    assert not met["refining responses are right more often (training rollouts, vs the baseline samples)"]
    assert met["refinement does not collapse"]
    # without a trigger arm that target is not checked at all
    no_trigger = {k: v for k, v in arms.items() if k != "trigger"}
    targets, _ = check_targets(no_trigger, difficulty=difficulty_evidence(no_trigger, labels))
    assert "PASR needs fewer tokens than the trigger reward" not in {t.name for t in targets}
    assert "pasr_vs_trigger" not in difficulty_evidence(no_trigger, labels)


def test_without_difficulty_the_targets_are_as_before(tmp_path):
    arms, _ = clear_case(tmp_path)
    names = [t.name for t in check_targets(arms, training=TRAINING)[0]]
    assert names == ["PASR beats warm-up only", "PASR beats plain-GRPO control", "refinement does not collapse",
                     "refining responses are right more often (training rollouts, vs the baseline samples)"]
