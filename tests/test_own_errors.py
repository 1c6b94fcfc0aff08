"""Warm-up refines spliced after the model's own mistakes (splice_refine, own_error_examples, the CLI)."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from pasr.data import synthetic
from pasr.data.own_errors import own_error_examples
from pasr.errors import PasrError
from pasr.format import parse
from pasr.scoring import score

RECORDS = synthetic.generate(40, seed=5, split="train", difficulty=3)


def with_error(record, *, step: int = 0, kind: str = "value") -> str:
    """The right worked solution with one equation broken the way a model breaks it."""
    text = synthetic.solution(record)
    s = record.meta["steps"][step]
    right = f"{s['before']} {s['op']} {s['operand']} = {s['result']}"
    if kind == "value":
        wrong = f"{s['before']} {s['op']} {s['operand']} = {s['result'] + 1}"
    elif kind == "op":
        other = "-" if s["op"] == "+" else "+"
        value = s["before"] - s["operand"] if other == "-" else s["before"] + s["operand"]
        wrong = f"{s['before']} {other} {s['operand']} = {value}"
    else:  # a wrong number carried in
        wrong = f"{s['before'] + 2} {s['op']} {s['operand']} = {s['result'] + (2 if s['op'] == '+' else 2)}"
    assert right in text
    return text.replace(right, wrong, 1)


@pytest.mark.parametrize("kind", ["value", "op", "carried"])
@pytest.mark.parametrize("step", [0, 1])
def test_splice_fixes_the_first_wrong_equation(kind, step):
    for record in RECORDS[:10]:
        broken = with_error(record, step=step, kind=kind)
        fixed = synthetic.splice_refine(record, broken, rng=random.Random(0))
        trace = parse(fixed)
        assert trace.valid and trace.refined, trace.violations
        assert score("arith", fixed, record.reference) == 1.0
        # the model's own text is kept up to and including its wrong equation, the fix follows at once
        before, _, after = fixed.partition("<refine>")
        assert broken.split("<think>")[1].startswith(before.removeprefix("<think>").strip()[:40])
        s = record.meta["steps"][step]
        assert after.split("</refine>")[1].lstrip().startswith(
            f"So {s['before']} {s['op']} {s['operand']} = {s['result']}.")


def test_splice_needs_a_wrong_equation():
    record = RECORDS[0]
    right = synthetic.solution(record)
    assert synthetic.splice_refine(record, right) is None
    assert synthetic.splice_refine(record, "the answer is 3") is None
    assert synthetic.splice_refine(record, synthetic.solution(record, refine=True)) is None  # refines already
    with pytest.raises(PasrError, match="no arithmetic steps"):
        synthetic.splice_refine(synthetic.Record("x", "q", "1", "arith"), right)


def test_examples_keep_every_splice_and_the_shares():
    texts = [with_error(r) if i % 2 == 0 else synthetic.solution(r) for i, r in enumerate(RECORDS)]
    texts[1] = texts[1].replace("<answer>", "<answer>1").replace("The answer is", "The answer is 1")  # no bad equation
    examples, stats = own_error_examples(RECORDS, texts, refine_share=0.4, standard_share=0.25, seed=3)
    # a slip in the first step with the right chain after it still counts: the equation was wrong
    assert stats["spliced"] == 20 and stats["wrong_answers"] == 1 and stats["sample_accuracy"] == 39 / 40
    kinds = [e["kind"] for e in examples]
    refine, clean, standard = kinds.count("refine"), kinds.count("clean"), kinds.count("standard")
    assert refine == 20
    # 20 refines are 40% of the PASR-prompt examples only if 30 clean ones exist; 20 records are left in all
    assert clean + standard == 20 and clean == 20 - standard
    more = synthetic.generate(60, seed=6, split="train", difficulty=3)
    examples, _ = own_error_examples(RECORDS, texts, refine_share=0.4, standard_share=0.25, seed=3, fill=more)
    kinds = [e["kind"] for e in examples]
    assert (kinds.count("refine"), kinds.count("clean"), kinds.count("standard")) == (20, 30, 17)
    assert all(parse(e["completion"][0]["content"]).valid for e in examples if e["kind"] != "standard")
    assert len({e["id"] for e in examples}) == len(examples)  # no record used twice


def test_examples_fail_clearly_when_nothing_can_be_spliced():
    with pytest.raises(PasrError, match="none of the 3 sampled solutions \\(0 right answers\\)"):
        own_error_examples(RECORDS[:3], ["no format here"] * 3)
    with pytest.raises(PasrError, match="records but"):
        own_error_examples(RECORDS[:3], ["x"])


def test_cli_writes_examples_from_a_models_samples(tmp_path, monkeypatch):
    from pasr.cli import app
    from pasr.data import own_errors

    def fake_samples(model, records, **kwargs):
        return [with_error(r) for r in records]

    monkeypatch.setattr(own_errors, "sample_solutions", fake_samples)
    out = tmp_path / "own.jsonl"
    result = CliRunner().invoke(app, ["data", "own-errors", "--model", "m", "--n", "12", "--difficulty", "3",
                                      "--refine-share", "0.5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(r["kind"] == "refine" for r in rows) == 12
    assert sum(r["kind"] == "clean" for r in rows) == 12  # filled from problems that were not sampled
    assert json.loads(out.with_suffix(".stats.json").read_text())["spliced"] == 12
    assert "12 with a located wrong equation" in " ".join(result.output.split())
