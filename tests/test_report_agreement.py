"""Judge-vs-rule agreement (pasr.scoring.agreement), and the report's agreement, per-question and scorer parts.

The result folders are written by hand with known numbers. Run "judged" (scorer both, judge judge-7b):
gsm8k/pasr has 10 responses whose (rule, judge) verdicts form the 2x2 table
both right 4, judge right & rule wrong 2, judge wrong & rule right 1, both wrong 3; by hand:
p_o = 7/10, rule right 5/10, judge right 6/10, p_e = .5 * .6 + .5 * .4 = .5, kappa = (.7 - .5) / (1 - .5) = .4.
drop/pasr has 2 responses both call right (F1 1.0 vs judge 0.8): agree 100%, kappa undefined.
gsm8k/vanilla has a line without scores and one without a rule score (both skipped).
Run "rules" (no scorer in run.json: rule) has gpqa/vanilla: 2 questions x 4 option orders.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pasr.cli import app
from pasr.report.agreement import agreement_rows
from pasr.report.build import build_report
from pasr.report.loading import load_runs
from pasr.scoring.agreement import agreement, agreement_from_lines

FIXTURES = Path(__file__).parent / "fixtures" / "report"


# ---- agreement() -----------------------------------------------------------------------------------------

# the 2x2 table of the module docstring, as graded scores (threshold 0.5): 4 both right, 2 judge right & rule
# wrong, 1 judge wrong & rule right, 3 both wrong
RULE = [1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 1.0, 0.0, 0.0, 0.4]
JUDGE = [1.0, 0.9, 0.6, 0.5, 1.0, 0.7, 0.2, 0.0, 0.4, 0.0]
IDS = [f"e{i}" for i in range(10)]


def test_agreement_counts_and_kappa_by_hand():
    a = agreement(RULE, JUDGE, IDS)
    assert (a["n"], a["threshold"]) == (10, 0.5)
    assert (a["both_right"], a["judge_right_rule_wrong"], a["judge_wrong_rule_right"], a["both_wrong"]) == (4, 2, 1, 3)
    counts = ("both_right", "both_wrong", "judge_right_rule_wrong", "judge_wrong_rule_right")
    assert all(type(a[k]) is int for k in counts)
    assert a["agree"] == pytest.approx(0.7)
    p_o, p_e = 0.7, 0.5 * 0.6 + 0.5 * 0.4
    assert a["kappa"] == pytest.approx((p_o - p_e) / (1 - p_e)) and a["kappa"] == pytest.approx(0.4)
    assert a["rule_score"] == pytest.approx(4.9 / 10) and a["judge_score"] == pytest.approx(5.3 / 10)
    diffs = [abs(r - j) for r, j in zip(RULE, JUDGE)]
    assert a["mean_abs_diff"] == pytest.approx(sum(diffs) / 10)
    assert a["examples"] == {"judge_right_rule_wrong": ["e4", "e5"], "judge_wrong_rule_right": ["e6"]}


def test_kappa_undefined_when_both_give_one_same_verdict():
    a = agreement([1.0, 0.9, 0.7], [0.8, 1.0, 0.5])
    assert a["agree"] == 1.0 and a["kappa"] is None and a["both_right"] == 3
    assert agreement([0.0], [0.1])["kappa"] is None
    # one constant rater: defined, no better than chance
    assert agreement([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0])["kappa"] == pytest.approx(0.0)
    # perfect agreement with both verdicts present
    assert agreement([1.0, 0.0], [1.0, 0.0])["kappa"] == pytest.approx(1.0)


def test_none_and_nan_positions_are_skipped():
    a = agreement([1.0, None, 0.0, 1.0, math.nan], [1.0, 1.0, None, 0.0, 0.0], ["a", "b", "c", "d", "e"])
    assert a["n"] == 2 and a["judge_wrong_rule_right"] == 1 and a["examples"]["judge_wrong_rule_right"] == ["d"]
    assert agreement([None, 1.0], [0.0, None]) is None
    assert agreement([], []) is None


def test_length_mismatch_raises_naming_both_lengths():
    with pytest.raises(ValueError, match=r"3 rule vs 2 judge"):
        agreement([1.0, 0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"1 ids vs 2"):
        agreement([1.0, 0.0], [1.0, 0.0], ["x"])
    with pytest.raises(ValueError, match="max_examples"):
        agreement([1.0], [1.0], max_examples=-1)


def test_threshold_is_respected():
    rule, judge = [0.6, 0.35], [0.4, 0.2]
    a = agreement(rule, judge)
    assert (a["judge_wrong_rule_right"], a["both_wrong"], a["agree"]) == (1, 1, 0.5)
    b = agreement(rule, judge, threshold=0.3)
    assert (b["threshold"], b["both_right"], b["judge_wrong_rule_right"], b["agree"]) == (0.3, 1, 1, 0.5)
    c = agreement(rule, judge, threshold=0.1)
    assert c["agree"] == 1.0 and c["kappa"] is None
    assert agreement([0.5], [0.49])["judge_wrong_rule_right"] == 1  # right means >= threshold


def test_examples_are_capped_and_in_order():
    rule, judge = [0.0] * 8 + [1.0] * 3, [1.0] * 8 + [0.0] * 3
    ids = list(range(11))
    a = agreement(rule, judge, ids, max_examples=3)
    assert a["examples"] == {"judge_right_rule_wrong": [0, 1, 2], "judge_wrong_rule_right": [8, 9, 10]}
    assert a["judge_right_rule_wrong"] == 8  # the counts are not capped
    assert agreement(rule, judge, ids)["examples"]["judge_right_rule_wrong"] == [0, 1, 2, 3, 4]  # default 5
    assert agreement(rule, judge, ids, max_examples=0)["examples"] == {"judge_right_rule_wrong": [],
                                                                       "judge_wrong_rule_right": []}
    assert agreement(rule, judge)["examples"] == {"judge_right_rule_wrong": [], "judge_wrong_rule_right": []}


def test_agreement_from_lines_skips_lines_without_scores():
    lines = [{"id": "a", "score": 1.0},
             {"id": "b", "score": 1.0, "scores": {"rule": 0.0, "judge": 1.0}},
             {"id": "c", "score": 0.0, "scores": {"rule": None, "judge": 0.0}},
             {"id": "d", "score": 1.0, "scores": {"rule": 1.0, "judge": 1.0}},
             {"id": "e", "score": 1.0, "scores": {"rule": "high", "judge": 1.0}},
             {"id": "f", "score": 1.0, "scores": None}]
    a = agreement_from_lines(lines, threshold=0.5)
    assert a["n"] == 2 and a["examples"]["judge_right_rule_wrong"] == ["b"] and a["both_right"] == 1
    assert agreement_from_lines([{"id": "a", "score": 1.0}]) is None
    assert agreement_from_lines([]) is None


# ---- report: hand-written run folders --------------------------------------------------------------------

def _line(id_, score, *, rule=None, judge=None, scored=True, question="What is it?", reference="7", final=None,
          task="gsm8k", **extra):
    line = {"id": id_, "question": question, "reference": reference, "task": task, "score": score, "tokens": 10,
            "turns": [{"name": "answer", "text": final or f"<think>t</think><answer>{id_}-answer</answer>"}],
            "final": final or f"<think>t</think><answer>{id_}-answer</answer>", "format_valid": True, **extra}
    if scored:
        line["scores"] = {"rule": rule, "judge": judge}
    return line


def write_run(root: Path, info: dict | None, results: dict[str, dict[str, list[dict]]]) -> Path:
    root.mkdir(parents=True)
    if info is not None:
        (root / "run.json").write_text(json.dumps(info))
    for bench, by_method in results.items():
        (root / bench).mkdir()
        for method, lines in by_method.items():
            (root / bench / f"{method}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def judged_run(root: Path) -> Path:
    pasr = [_line(f"g{i}", j, rule=r, judge=j) for i, (r, j) in enumerate(zip(RULE, JUDGE))]
    pasr[4]["question"] = "Is <script>alert('x')</script> & <b>bold</b> safe?"
    pasr[4]["final"] = "<think>hm</think><answer>42 <i>exactly</i></answer>"
    vanilla = [_line("v0", 1.0, rule=1.0, judge=1.0), _line("v1", 1.0, rule=0.0, judge=1.0),
               _line("v2", 1.0, rule=None, judge=1.0), _line("v3", 0.0, rule=0.0, judge=0.0),
               _line("v4", 0.0, scored=False)]
    drop = [_line("d0", 0.8, rule=1.0, judge=0.8, task="drop"), _line("d1", 0.8, rule=1.0, judge=0.8, task="drop")]
    return write_run(root, {"model": "m", "label": "judged", "scorer": "both", "judge_model": "judge-7b"},
                     {"gsm8k": {"pasr": pasr, "vanilla": vanilla}, "drop": {"pasr": drop}})


# gpqa: q1 right in all 4 orders, q2 right in 1 of 4
GPQA = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def rules_run(root: Path) -> Path:
    lines = [_line(f"q{k // 4 + 1}-o{k % 4}", s, scored=False, task="gpqa", question_id=f"q{k // 4 + 1}")
             for k, s in enumerate(GPQA)]
    return write_run(root, {"model": "m2", "label": "rules"}, {"gpqa": {"vanilla": lines}})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("agreement")
    judged, rules = judged_run(tmp / "judged"), rules_run(tmp / "rules")
    out = tmp / "out"
    result = CliRunner().invoke(app, ["report", str(judged), str(rules), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output, (judged, rules)


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_agreement_rows_recomputed_from_the_lines(built):
    _, _, dirs = built
    rows = {(r.run, r.method, r.benchmark): r.stats for r in agreement_rows(load_runs(dirs))}
    assert list(rows) == [("judged", "vanilla", "gsm8k"), ("judged", "vanilla", "all"),
                          ("judged", "pasr", "gsm8k"), ("judged", "pasr", "drop"), ("judged", "pasr", "all")]
    g = rows[("judged", "pasr", "gsm8k")]
    assert (g["n"], g["agree"], g["kappa"]) == (10, pytest.approx(0.7), pytest.approx(0.4))
    d = rows[("judged", "pasr", "drop")]
    assert (d["n"], d["agree"], d["kappa"], d["mean_abs_diff"]) == (2, 1.0, None, pytest.approx(0.2))
    pooled = rows[("judged", "pasr", "all")]  # 12 pairs: 6 both right, 2, 1, 3 both wrong
    # p_o = 9/12, rule right 7/12, judge right 8/12, p_e = (7*8 + 5*4)/144 = 76/144, kappa = 32/68
    assert (pooled["n"], pooled["agree"], pooled["kappa"]) == (12, pytest.approx(0.75), pytest.approx(32 / 68))
    v = rows[("judged", "vanilla", "gsm8k")]  # v2 (no rule score) and v4 (no scores) skipped
    # verdicts rule [1, 0, 0], judge [1, 1, 0]: p_o = 2/3, p_e = 1/3 * 2/3 + 2/3 * 1/3 = 4/9, kappa = 0.4
    assert (v["n"], v["judge_right_rule_wrong"], v["kappa"]) == (3, 1, pytest.approx((2 / 3 - 4 / 9) / (5 / 9)))


def test_agreement_files(built):
    out, output, _ = built
    for name in ("agreement.md", "agreement.csv", "per_question.md", "per_question.csv"):
        assert (out / name).is_file() and name in output
    rows = {(r["run"], r["method"], r["benchmark"]): r for r in _csv(out / "agreement.csv")}
    assert len(rows) == 5 and not any(run == "rules" for run, _, _ in rows)
    g = rows[("judged", "pasr", "gsm8k")]
    assert (g["n"], float(g["agree_pct"]), float(g["kappa"])) == ("10", 70.0, 0.4)
    assert (g["both_right"], g["judge_right_rule_wrong"], g["judge_wrong_rule_right"], g["both_wrong"]) == (
        "4", "2", "1", "3")
    assert (float(g["rule_score_pct"]), float(g["judge_score_pct"])) == (49.0, 53.0)
    d = rows[("judged", "pasr", "drop")]
    assert d["kappa"] == "" and float(d["agree_pct"]) == 100.0 and float(d["mean_abs_diff"]) == 0.2
    assert float(rows[("judged", "pasr", "all")]["kappa"]) == pytest.approx(32 / 68, abs=1e-4)
    md = (out / "agreement.md").read_text().splitlines()
    assert md[0] == ("| Model | Method | Benchmark | n | agree % | kappa | judge right, rule wrong | "
                     "judge wrong, rule right | rule score % | judge score % |")
    assert "| judged | pasr | gsm8k | 10 | 70.0 | 0.400 | 2 | 1 | 49.0 | 53.0 |" in md
    assert "| judged | pasr | drop | 2 | 100.0 | – | 0 | 0 | 100.0 | 80.0 |" in md
    assert "| judged | pasr | **all** | 12 | 75.0 | 0.471 | 2 | 1 | 57.5 | 57.5 |" in md


def test_per_question_table_numbers(built):
    out, _, _ = built
    [row] = _csv(out / "per_question.csv")
    assert (row["run"], row["method"], row["benchmark"]) == ("rules", "vanilla", "gpqa")
    assert (row["questions"], row["lines"], row["orders_min"], row["orders_max"]) == ("2", "8", "4", "4")
    # question means 1 and 1/4: pooled 62.5; q1 right in all orders, q2 in some; q1 consistent, q2 not
    assert float(row["score"]) == 62.5
    assert (float(row["all_right"]), float(row["any_right"]), float(row["consistent"])) == (50.0, 100.0, 50.0)
    # bootstrap over the 2 question means {1, .25}: resampled means in {.25, .625, 1}, each end 25% likely
    assert (float(row["ci_low"]), float(row["ci_high"])) == (25.0, 100.0)
    md = (out / "per_question.md").read_text()
    assert "| rules | vanilla | gpqa | 2 | 4 | 62.5 | 25.0–100.0 | 50.0 | 100.0 | 50.0 |" in md


def test_html_sections_examples_and_escaping(built):
    out, _, _ = built
    page = (out / "report.html").read_text()
    assert "<h2 id=\"judge-vs-rule\">Judge vs rule</h2>" in page and 'id="agreement"' in page
    assert "Per question (pooled over option orders)</h2>" in page and 'id="per-question"' in page
    section = page.split('id="judge-vs-rule"')[1].split("<h2")[0]
    # gsm8k/pasr disagreements: g4, g5 judge right & rule wrong, g6 judge wrong & rule right; vanilla: v1
    assert re.findall(r"<tr><td class=\"text-cell\">(\w+)</td>", section) == ["v1", "g4", "g5", "g6"]
    assert "judge right, rule wrong (showing 2 of 2)" in section
    assert "judge wrong, rule right (showing 1 of 1)" in section
    assert 'g6-answer</td><td class="num">1.00</td><td class="num">0.20</td>' in section
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp;" in section
    assert "42 &lt;i&gt;exactly&lt;/i&gt;" in section  # the final answer, escaped
    assert page.count("<script>") == 1
    assert "d0" not in section  # drop: no disagreement, no examples


def test_runs_table_shows_scorer_and_mixed_scorer_warning(built):
    out, output, _ = built
    page = (out / "report.html").read_text()
    assert "<th>scorer</th><th>judge model</th>" in page
    assert "<td>both</td><td>judge-7b</td>" in page and "<td>rule</td><td>–</td>" in page
    warning = "Table 1 mixes rule- and judge-scored numbers"
    assert warning in page and "judged: both (judge-7b); rules: rule" in page
    assert warning in " ".join(output.split())
    assert warning in (out / "table1.md").read_text()


def _judge_section(report) -> str:
    page = report.files[-1].read_text()
    assert report.files[-1].name == "report.html"
    return page.split('id="judge-vs-rule"')[1].split("<h2")[0]


def test_examples_capped_at_five_and_by_max_examples(tmp_path):
    lines = [_line(f"x{i}", 1.0, rule=0.0, judge=1.0) for i in range(7)]
    run = write_run(tmp_path / "r", {"scorer": "judge", "judge_model": "j"}, {"gsm8k": {"pasr": lines}})
    section = _judge_section(build_report([run], tmp_path / "o1"))
    assert "judge right, rule wrong (showing 5 of 7)" in section
    assert "x4-answer" in section and "x5-answer" not in section
    section = _judge_section(build_report([run], tmp_path / "o2", max_examples=2))
    assert "(showing 2 of 7)" in section and "x1-answer" in section and "x2-answer" not in section
    report = build_report([run], tmp_path / "o3", max_examples=0)
    section = _judge_section(report)
    assert 'id="agreement"' in section and "showing" not in section
    assert report.report_warnings == []  # one scorer only


def test_different_judge_models_warn(tmp_path):
    a = write_run(tmp_path / "a", {"label": "a", "scorer": "judge", "judge_model": "j1"},
                  {"gsm8k": {"vanilla": [_line("x", 1.0, rule=None, judge=1.0)]}})
    b = write_run(tmp_path / "b", {"label": "b", "scorer": "both", "judge_model": "j2"},
                  {"gsm8k": {"vanilla": [_line("x", 1.0, rule=1.0, judge=1.0)]}})
    report = build_report([a, b], tmp_path / "out")
    assert report.report_warnings == ["Table 1 mixes numbers scored by different judge models (a: j1; b: j2)"]
    assert {p.name for p in report.files} >= {"agreement.md", "agreement.csv"}  # b has both scores


def test_rule_only_runs_write_no_agreement_or_per_question(tmp_path):
    report = build_report([FIXTURES / "run_a", FIXTURES / "run_b"], tmp_path / "out", max_examples=1)
    names = {p.name for p in report.files}
    assert not names & {"agreement.md", "agreement.csv", "per_question.md", "per_question.csv"}
    assert report.agreement == [] and report.questions == []
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Judge vs rule" not in page and "Per question" not in page and 'id="agreement"' not in page
    assert "Table 1 mixes" not in page and "<td>rule</td><td>–</td>" in page
    assert "Warning" not in (tmp_path / "out" / "table1.md").read_text()
