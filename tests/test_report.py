"""`pasr report`: numbers checked against the hand-computed fixture runs in tests/fixtures/report.

run_a (label "smollm2-pasr"): gsm8k (4 ex.), winogrande (2), drop (3, F1) x vanilla, pasr, self-refine,
self-refine-oracle. run_b (no label -> model "tiny-random"): gsm8k x vanilla, pasr, self-refine; drop x vanilla,
pasr; its gsm8k/vanilla.summary.json is deliberately stale (says 0.9, the JSONL gives 0.25).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pasr.cli import app
from pasr.errors import PasrError
from pasr.report import stats, tables
from pasr.report.build import build_report
from pasr.report.html import highlight
from pasr.report.loading import load_run, load_runs

FIXTURES = Path(__file__).parent / "fixtures" / "report"
RUN_A, RUN_B = FIXTURES / "run_a", FIXTURES / "run_b"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs():
    return load_runs([RUN_A, RUN_B])


@pytest.fixture(scope="module")
def table(runs):
    return tables.table1(runs)


def _row(table, run, method):
    [row] = [r for r in table.rows if r.run == run and r.method == method]
    return row


def _csv(text):
    return list(csv.DictReader(io.StringIO(text)))


# ---- loading ---------------------------------------------------------------------------------------------

def test_labels_methods_and_side_files(runs):
    a, b = runs
    assert (a.label, b.label) == ("smollm2-pasr", "tiny-random")  # label, then model
    assert a.methods == ["vanilla", "pasr", "self-refine", "self-refine-oracle"]  # pasr.analysis.jsonl ignored
    assert a.benchmarks == ["gsm8k", "winogrande", "drop"]
    assert b.methods == ["vanilla", "pasr", "self-refine"]
    assert a.get("drop", "pasr").metric == "f1" and a.get("gsm8k", "pasr").metric == "accuracy"


def test_label_falls_back_to_folder_and_clashes_are_disambiguated(tmp_path):
    plain = tmp_path / "my-run"
    shutil.copytree(RUN_B, plain)
    (plain / "run.json").unlink()
    assert load_run(plain).label == "my-run"
    twin = tmp_path / "twin"
    shutil.copytree(RUN_B, twin)
    labels = [r.label for r in load_runs([RUN_B, twin])]
    assert labels == ["tiny-random (run_b)", "tiny-random (twin)"]


def test_stale_summary_warns_and_jsonl_wins(runs, table):
    a, b = runs
    assert a.warnings == []  # run_a's summary agrees with its JSONL
    assert len(b.warnings) == 1 and "vanilla.summary.json" in b.warnings[0] and "0.2500" in b.warnings[0]
    assert _row(table, "tiny-random", "vanilla").cells["gsm8k"].score == pytest.approx(0.25)


def test_duplicate_ids_keep_first_and_truncated_last_line_is_skipped(tmp_path):
    run = tmp_path / "run"
    (run / "gsm8k").mkdir(parents=True)
    lines = [{"id": "x", "score": 1.0, "tokens": 10}, {"id": "y", "score": 0.0, "tokens": 30},
             {"id": "x", "score": 0.0, "tokens": 99}]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"id": "z", "sco'
    (run / "gsm8k" / "vanilla.jsonl").write_text(text)
    examples = load_run(run).get("gsm8k", "vanilla").examples
    assert [(e["id"], e["score"]) for e in examples] == [("x", 1.0), ("y", 0.0)]


# ---- statistics and tables -------------------------------------------------------------------------------

def test_table1_cells_match_hand_computation(table):
    assert table.benchmarks == ["gsm8k", "winogrande", "drop"]
    assert table.metrics == {"gsm8k": "accuracy", "winogrande": "accuracy", "drop": "f1"}
    pasr = _row(table, "smollm2-pasr", "pasr")
    assert [pasr.cells[b].score for b in table.benchmarks] == pytest.approx([0.75, 1.0, 0.75])
    assert [pasr.cells[b].tokens for b in table.benchmarks] == pytest.approx([100, 30, 45])
    assert pasr.avg_score == pytest.approx(2.5 / 3) and pasr.avg_tokens == pytest.approx(175 / 3)
    sr = _row(table, "smollm2-pasr", "self-refine")
    assert sr.cells["drop"].score == pytest.approx(1 / 3) and sr.avg_score == pytest.approx(0.8333333 / 3)
    assert sr.avg_tokens == pytest.approx(120)
    oracle = _row(table, "smollm2-pasr", "self-refine-oracle")
    assert oracle.avg_score == pytest.approx((1 + 1 + 2.5 / 3) / 3) and oracle.avg_tokens == pytest.approx(350 / 3)
    b_sr = _row(table, "tiny-random", "self-refine")
    assert list(b_sr.cells) == ["gsm8k"] and b_sr.avg_score == pytest.approx(0.5) and table.incomplete


def test_confidence_interval_and_behaviour_rates(table):
    c = _row(table, "smollm2-pasr", "pasr").cells["gsm8k"]
    # scores 1,1,1,0, bootstrap means in {0, .25, ..., 1}: P(0) = .4% < 2.5% < P(<= .25) = 5.1%, P(1) = 32%
    assert (c.score, c.ci_low, c.ci_high) == pytest.approx((0.75, 0.25, 1.0))
    assert (c.refine_rate, c.refines_per_response, c.format_valid_rate) == pytest.approx((0.5, 0.75, 1.0))
    sr = _row(table, "smollm2-pasr", "self-refine").cells["gsm8k"]  # every revision counts as a refinement
    assert (sr.refine_rate, sr.refines_per_response, sr.format_valid_rate) == (1.0, 1.0, 0.0)
    oracle = _row(table, "smollm2-pasr", "self-refine-oracle").cells["gsm8k"]
    assert (oracle.score, oracle.ci_low, oracle.ci_high) == (1.0, 1.0, 1.0)
    assert stats.mean_ci([0.5]) == (0.5, 0.5, 0.5)


def test_numbers_agree_with_the_eval_summaries(runs, table):
    """The report reuses pasr.eval.metrics, so a fresh summary of the same lines gives the same numbers."""
    from pasr.eval.metrics import summarize

    a = runs[0]
    for b in a.benchmarks:
        vanilla = a.get(b, "vanilla").examples
        for method in a.methods:
            lines = a.get(b, method).examples
            s = summarize(lines, benchmark=b, method=method, model="m", label="l", metric="accuracy", vanilla=vanilla)
            c = _row(table, a.label, method).cells[b]
            assert (c.n, c.score, c.tokens, c.refine_rate, c.format_valid_rate) == pytest.approx(
                (s["n"], s["score"], s["tokens_mean"], s["refine_rate"], s["format_valid_rate"]))
            assert [c.ci_low, c.ci_high] == pytest.approx(s["score_ci"])
            if method != "vanilla":
                [t] = [t for t in tables.transitions(runs) if (t.run, t.method, t.benchmark) == (a.label, method, b)]
                assert t.shares == pytest.approx(s["transitions"])


def test_table1_csv_values(table):
    rows = {(r["run"], r["method"]): r for r in _csv(tables.table1_csv(table))}
    assert len(rows) == 7
    pasr = rows[("smollm2-pasr", "pasr")]
    assert float(pasr["gsm8k_score"]) == 75.0 and float(pasr["winogrande_score"]) == 100.0
    assert float(pasr["drop_score"]) == 75.0 and pasr["drop_metric"] == "f1" and pasr["drop_n"] == "3"
    assert float(pasr["avg_score"]) == pytest.approx(83.3333) and float(pasr["avg_tokens"]) == pytest.approx(58.3333)
    sr = rows[("smollm2-pasr", "self-refine")]
    assert float(sr["drop_score"]) == pytest.approx(33.3333) and float(sr["avg_score"]) == pytest.approx(27.7778)
    b_van = rows[("tiny-random", "vanilla")]
    assert float(b_van["gsm8k_score"]) == 25.0 and b_van["winogrande_score"] == "" and b_van["avg_n_benchmarks"] == "2"
    assert float(b_van["avg_score"]) == 37.5 and float(b_van["avg_tokens"]) == 35.0


def test_table1_markdown(table):
    md = tables.table1_markdown(table)
    lines = md.splitlines()
    assert lines[0] == ("| Model | Method | gsm8k Acc % | gsm8k tokens | winogrande Acc % | winogrande tokens | "
                        "drop F1 % | drop tokens | Average % | Average tokens |")
    assert "| smollm2-pasr | pasr | 75.0 | 100 | 100.0 | 30 | 75.0 | 45 | 83.3 | 58 |" in lines
    assert "| tiny-random | self-refine | 50.0 | 100 | – | – | – | – | 50.0† | 100† |" in lines
    assert "† averaged over only" in md


def test_metrics_csv_long_form(table):
    rows = _csv(tables.metrics_csv(table))
    assert len(rows) == 12 + 5
    [r] = [r for r in rows if (r["run"], r["method"], r["benchmark"]) == ("smollm2-pasr", "pasr", "drop")]
    assert (float(r["score"]), float(r["tokens_mean"]), float(r["refine_rate"])) == pytest.approx((75, 45, 33.3333))


def test_transitions_match_hand_computation(runs):
    rows = {(r.run, r.method, r.benchmark): r for r in tables.transitions(runs)}
    t = stats.TRANSITIONS  # right->right, wrong->right, right->wrong, wrong->wrong
    assert [rows[("smollm2-pasr", "pasr", "all")].counts[k] for k in t] == [5, 2, 0, 2]
    assert [rows[("smollm2-pasr", "self-refine", "gsm8k")].counts[k] for k in t] == [1, 1, 1, 1]
    assert [rows[("smollm2-pasr", "self-refine-oracle", "drop")].counts[k] for k in t] == [2, 1, 0, 0]
    assert [rows[("tiny-random", "pasr", "all")].counts[k] for k in t] == [2, 1, 0, 3]
    assert ("tiny-random", "self-refine", "drop") not in rows  # no self-refine results on drop
    assert not any(r.method == "vanilla" for r in rows.values())
    csv_rows = {(r["run"], r["method"], r["benchmark"]): r for r in _csv(tables.transitions_csv(list(rows.values())))}
    pooled = csv_rows[("smollm2-pasr", "pasr", "all")]
    assert pooled["pairs"] == "9" and float(pooled["wrong_to_right_pct"]) == pytest.approx(22.2222)


def test_refine_positions_of_pasr_responses(runs):
    a = runs[0]
    positions = stats.refine_positions([e for b in a.benchmarks for e in a.get(b, "pasr").examples])
    assert sorted(positions) == [0.1, 0.25, 0.5, 0.75, 0.9]


# ---- HTML ------------------------------------------------------------------------------------------------

def test_highlight_segments_and_escaping():
    out = highlight("<think>a < b & <refine>fix</refine> c</think><answer>x</answer>")
    assert out.startswith('<span class="seg-think"><span class="tag">&lt;think&gt;</span>a &lt; b &amp; ')
    assert '<span class="seg-refine"><span class="tag">&lt;refine&gt;</span>fix' in out
    assert '<span class="seg-answer"><span class="tag">&lt;answer&gt;</span>x' in out
    assert out.count("<span") == out.count("</span>")
    # malformed: stray closing tag, unclosed segments, foreign markup
    bad = highlight("</refine><think>oops <script>alert(1)</script><refine>never closed")
    assert "<script>" not in bad and "&lt;script&gt;alert(1)&lt;/script&gt;" in bad
    assert bad.count("<span") == bad.count("</span>")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(app, ["report", str(RUN_A), str(RUN_B), "-o", str(out), "--max-examples", "2"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_cli_writes_every_file_and_lists_them(built):
    out, output = built
    expected = ["table1.md", "table1.csv", "metrics.csv", "transitions.md", "transitions.csv", "report.html",
                "plots/accuracy_vs_tokens.png", "plots/tokens_per_benchmark.png", "plots/transitions.png",
                "plots/refine_positions.png"]
    for name in expected:
        assert (out / name).is_file(), name
        assert name in output  # the closing summary names each file
    assert "warning" in output and "vanilla.summary.json" in output


def test_plots_are_valid_pngs(built):
    from PIL import Image

    out, _ = built
    for png in sorted((out / "plots").glob("*.png")):
        assert png.read_bytes()[:8] == PNG_MAGIC
        with Image.open(png) as im:
            im.verify()
        with Image.open(png) as im:
            assert im.size[0] > 300 and im.size[1] > 200


def test_html_is_self_contained_and_capped(built):
    out, _ = built
    page = (out / "report.html").read_text()
    assert "<title>PASR report</title>" in page and 'id="table1"' in page and 'id="transitions"' in page
    assert "Content-Security-Policy" in page
    srcs = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert len([s for s in srcs if s.startswith("data:image/png;base64,")]) == 4
    assert all(s.startswith("data:") for s in srcs)
    assert "http://" not in page and "https://" not in page
    # --max-examples 2: run_a 3 benchmarks x 4 methods, run_b 3 + 2 groups; every group has >= 2 examples
    assert page.count('<details class="example"') == 2 * (12 + 5)
    assert page.count('<section class="group"') == 17 and "(showing 2 of 4)" in page


def test_html_escapes_model_text(built):
    out, _ = built
    page = (out / "report.html").read_text()
    assert "<script>window.__pwned" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the report's own inline script
    assert "format invalid" not in page  # only flagged for methods that ever produce the PASR format
    assert "1 revision<" in page and "1 refine<" in page
    assert "3 packs of 4 pens &amp; gives away" in page and "Mia has 9 &lt;b&gt;shells&lt;/b&gt;." in page


def test_no_vanilla_means_no_transitions(tmp_path):
    run = tmp_path / "only-pasr"
    shutil.copytree(RUN_A / "drop", run / "drop")
    for f in (run / "drop").glob("*.jsonl"):
        if f.stem != "pasr":
            f.unlink()
    report = build_report([run], tmp_path / "out", max_examples=1)
    names = {p.name for p in report.files}
    assert names == {"table1.md", "table1.csv", "metrics.csv", "report.html", "accuracy_vs_tokens.png",
                     "tokens_per_benchmark.png", "refine_positions.png"}
    assert report.transitions == []


# ---- errors ----------------------------------------------------------------------------------------------

def test_empty_run_dir_is_an_error_naming_the_folder(tmp_path):
    empty = tmp_path / "empty-run"
    (empty / "gsm8k").mkdir(parents=True)
    with pytest.raises(PasrError, match=r"empty-run.*no results.*<benchmark>/<method>\.jsonl"):
        load_run(empty)
    result = CliRunner().invoke(app, ["report", str(RUN_A), str(empty), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0 and isinstance(result.exception, PasrError)
    assert "empty-run" in str(result.exception)
    assert not (tmp_path / "out" / "report.html").exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [("not json", r"vanilla\.jsonl, line 2: not valid JSON"),
     ('{"id": "x", "tokens": 3}', r"vanilla\.jsonl, line 2: missing field 'score'"),
     ('{"score": 1}', r"vanilla\.jsonl, line 2: missing field 'id'"),
     ('{"id": "x", "score": "high"}', r"line 2: field 'score' is not a number"),
     ('{"id": "x", "score": true}', r"line 2: field 'score' is not a number"),
     ('{"id": "x", "score": 1, "tokens": "many"}', r"line 2: field 'tokens' is not a number"),
     ('[1, 2]', r"line 2: expected a JSON object"),
     ('{"id": "x", "score": 1', r"line 2: not valid JSON")],
)
def test_bad_middle_line_is_a_warning_naming_file_and_line_and_the_report_builds(tmp_path, bad, message):
    """One rule for `pasr eval` and `pasr report` (issue 11): skip the line, say where it is, keep going."""
    (tmp_path / "gsm8k").mkdir()
    content = '{"id": "a", "score": 1, "tokens": 5}\n' + bad + '\n{"id": "b", "score": 0, "tokens": 7}\n'
    (tmp_path / "gsm8k" / "vanilla.jsonl").write_text(content)
    run = load_run(tmp_path)
    assert [e["id"] for e in run.get("gsm8k", "vanilla").examples] == ["a", "b"]
    assert any(re.search(message, w) for w in run.warnings), run.warnings
    result = CliRunner().invoke(app, ["report", str(tmp_path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.html").exists()
    assert re.search(message, result.output.replace("\n", ""))


def test_only_bad_lines_is_no_results(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "vanilla.jsonl").write_text('{"id": "a", "score": "high"}\n')
    with pytest.raises(PasrError, match="no results found"):
        load_run(tmp_path)


def test_missing_folder_and_repeated_folder(tmp_path):
    with pytest.raises(PasrError, match="nope: not a folder"):
        load_runs([tmp_path / "nope"])
    with pytest.raises(PasrError, match="given twice"):
        load_runs([RUN_A, RUN_A / ".." / "run_a"])
    with pytest.raises(PasrError, match="no RUN_DIR"):
        load_runs([])
