"""The built-in `sums` family: easy/hard definitions, disjoint splits, the column check, slips, warm-up examples,
slip spans for masking, and the family selectable in benchmarks, the CLI and training configs."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pasr.data import sums, synthetic
from pasr.data.records import Record
from pasr.errors import PasrError
from pasr.format import parse
from pasr.prompts import PASR_SYSTEM_PROMPT, STANDARD_SYSTEM_PROMPT, chat


def _carries(a: int, b: int) -> int:
    """Carries of a + b counted independently of the module: a carry leaves column k when the digits below
    column k+1 add up to 10^(k+1) or more."""
    return sum((a % 10**k + b % 10**k) >= 10**k for k in range(1, max(len(str(a)), len(str(b))) + 1))


# --- problems ---------------------------------------------------------------------


def test_records_are_right_and_follow_the_definitions():
    records = sums.generate(400, seed=1)
    assert len(records) == 400
    assert len({r.id for r in records}) == 400 and len({r.question for r in records}) == 400
    assert all(r.id.startswith("sums-") for r in records)
    counts = Counter(r.meta["difficulty"] for r in records)
    assert counts == {"easy": 160, "hard": 240}  # easy_share 0.4, exact
    for record in records:
        a, b = record.meta["addends"]
        assert record.task == "arith" and record.meta["family"] == "sums" and record.meta["split"] == "train"
        assert record.reference == str(a + b)
        assert re.search(rf"\b{a}\b.*\b{b}\b", record.question), record.question
        assert record.meta["carries"] == _carries(a, b) == sums.carries(a, b)
        assert sums.difficulty_of(a, b) == record.meta["difficulty"]
        if record.meta["difficulty"] == "easy":
            assert 10 <= a <= 99 and 10 <= b <= 99 and record.meta["carries"] == 0  # two digits each
        else:
            assert 1000 <= a <= 9999 and 1000 <= b <= 9999 and record.meta["carries"] >= 2
    # distinct calculations within a set (the easy pool is large enough for 160)
    assert len({sums.content_key(*r.meta["addends"]) for r in records}) == 400
    # the easy and hard problems are interleaved, not in two blocks
    first_half = Counter(r.meta["difficulty"] for r in records[:200])
    assert 50 < first_half["easy"] < 110


@pytest.mark.parametrize("share", [0.0, 0.25, 1.0])
def test_easy_share(share):
    records = sums.generate(40, seed=2, easy_share=share)
    assert sum(r.meta["difficulty"] == "easy" for r in records) == round(share * 40)


@pytest.mark.parametrize("pair, difficulty", [
    ((23, 41), "easy"), ((10, 89), "easy"),
    ((46, 1), None), ((3, 5), None), ((9, 90), None),  # a one-digit addend: where the warm-up's direct answers slipped
    ((25, 37), None),  # a carry
    ((4738, 2965), "hard"), ((1000, 1000), None),  # no carry
])
def test_difficulty_definitions(pair, difficulty):
    assert sums.difficulty_of(*pair) == difficulty


def test_wording_varies():
    records = sums.generate(300, seed=0)
    skeletons = Counter(re.sub(r"\d+", "N", r.question) for r in records)
    assert 4 <= len(skeletons) <= 6
    assert max(skeletons.values()) < 0.35 * len(records)
    orders = Counter(a < b for a, b in (r.meta["addends"] for r in records if r.meta["difficulty"] == "easy"))
    assert orders[True] > 20 and orders[False] > 20  # easy pairs come in both orders


def test_reproducible_and_seed_dependent():
    first = sums.generate(50, seed=7)
    assert first == sums.generate(50, seed=7)
    assert [r.id for r in first] != [r.id for r in sums.generate(50, seed=8)]


def test_splits_never_share_a_calculation_across_seeds():
    train, test = [], []
    for seed in range(4):
        train += sums.generate(500, seed=seed, split="train")
        test += sums.generate(150, seed=seed + 100, split="test")
    keys = lambda records: {sums.content_key(*r.meta["addends"]) for r in records}  # noqa: E731
    assert not keys(train) & keys(test)
    assert not {r.question for r in train} & {r.question for r in test}
    assert all(r.meta["split"] == "train" for r in train) and all(r.meta["split"] == "test" for r in test)
    assert all(sums.split_of(*r.meta["addends"]) == r.meta["split"] for r in train + test)


def test_split_is_a_function_of_the_calculation_with_a_fifth_held_out():
    rng = random.Random(0)
    pairs = [(rng.randint(1000, 9999), rng.randint(1000, 9999)) for _ in range(5000)]
    shares = Counter(sums.split_of(a, b) for a, b in pairs)
    assert 0.17 < shares["test"] / len(pairs) < 0.23
    assert all(sums.split_of(a, b) == sums.split_of(b, a) for a, b in pairs[:500])  # either order: one calculation


def test_easy_pool_runs_out_into_other_wordings_then_fails():
    pool = len(sums._easy_pool("test"))
    records = sums.generate(pool + 30, seed=0, split="test", easy_share=1.0)  # more easy problems than calculations
    assert len({r.question for r in records}) == len(records)
    assert len({sums.content_key(*r.meta["addends"]) for r in records}) == pool
    with pytest.raises(PasrError, match="ask for fewer"):
        sums.generate(pool * 2 * 6 + 1, seed=0, split="test", easy_share=1.0)


def test_bad_arguments():
    with pytest.raises(PasrError, match="split"):
        sums.generate(3, split="dev")
    with pytest.raises(PasrError, match="easy_share"):
        sums.generate(3, easy_share=1.5)
    with pytest.raises(PasrError, match="n must be"):
        sums.generate(-1)
    assert sums.generate(0) == []


# --- the column check ---------------------------------------------------------------

_STEP = re.compile(r"([a-z-]+) (\d) \+ (\d) = (\d+), \+ ([01]) = (\d+), write (\d+)(, carry [01])?, so far (\d+)\.")
_SPLIT = re.compile(r"Check by columns: (\d+) is ([a-z0-9 ,-]+); (\d+) is ([a-z0-9 ,-]+)\. ")


def _check_steps(a: int, b: int) -> None:
    text = sums.column_check(a, b)
    width = max(len(str(a)), len(str(b)))
    places = sums.PLACES[:width]
    split = _SPLIT.match(text)
    assert split, text
    # each number restated column by column, left to right, zero-padded to the same width
    for number, restated in ((split[1], split[2]), (split[3], split[4])):
        assert restated == ", ".join(f"{places[p]} {int(number) // 10**p % 10}" for p in reversed(range(width)))
    assert (int(split[1]), int(split[3])) == (a, b)
    assert text.endswith(f" So {a} + {b} = {a + b}.")
    steps = _STEP.findall(text[split.end():])
    assert len(steps) == width
    # nothing but the split, the steps and the result
    body = " ".join(m.group(0) for m in _STEP.finditer(text[split.end():]))
    assert text == f"{split.group(0)}{body} So {a} + {b} = {a + b}."
    carry, written = 0, []
    for place, (name, da, db, digits, carry_in, total, write, carry_out, so_far) in enumerate(steps):
        assert name == places[place]  # the column named as in the split
        assert (int(da), int(db)) == (a // 10**place % 10, b // 10**place % 10)  # the column's digits
        assert int(digits) == int(da) + int(db)  # first the two digits, a two-number addition
        assert int(carry_in) == carry  # the carry from the column before, always written
        assert int(total) == int(digits) + carry  # then the carry, a second two-number addition
        last = place == width - 1
        assert write == (total if last else str(int(total) % 10))
        assert carry_out == ("" if last else f", carry {1 if int(total) > 9 else 0}")
        carry = 1 if int(total) > 9 else 0
        written.append(write)
        assert so_far == "".join(reversed(written))  # the digits written so far, read left to right
    assert "".join(reversed(written)) == str(a + b)  # the digits written are the sum
    assert sum(int(step[5]) > 9 for step in steps) == sums.carries(a, b)


def test_column_check_example():
    assert sums.column_check(4738, 2965) == (
        "Check by columns: 4738 is thousands 4, hundreds 7, tens 3, ones 8; 2965 is thousands 2, hundreds 9, tens 6, "
        "ones 5. ones 8 + 5 = 13, + 0 = 13, write 3, carry 1, so far 3. tens 3 + 6 = 9, + 1 = 10, write 0, carry 1, "
        "so far 03. hundreds 7 + 9 = 16, + 1 = 17, write 7, carry 1, so far 703. thousands 4 + 2 = 6, + 1 = 7, "
        "write 7, so far 7703. So 4738 + 2965 = 7703.")
    assert sums.column_check(9738, 8965).endswith(
        "thousands 9 + 8 = 17, + 1 = 18, write 18, so far 18703. So 9738 + 8965 = 18703.")
    assert sums.column_check(23, 4) == (
        "Check by columns: 23 is tens 2, ones 3; 4 is tens 0, ones 4. ones 3 + 4 = 7, + 0 = 7, write 7, carry 0, so "
        "far 7. tens 2 + 0 = 2, + 0 = 2, write 2, so far 27. So 23 + 4 = 27.")
    assert sums.carries(4738, 2965) == 3 and sums.carries(23, 41) == 0 and sums.carries(9999, 1) == 4
    with pytest.raises(PasrError, match="columns at most"):
        sums.column_check(1_000_000, 1)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=99_999), st.integers(min_value=0, max_value=99_999))
def test_column_check_computes_every_sum(a, b):
    _check_steps(a, b)
    assert sums.carries(a, b) == _carries(a, b)


# --- slips and solutions ----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=9999), st.integers(min_value=1, max_value=9999), st.integers(0, 10**6))
def test_slips_are_wrong_and_plausible(a, b, seed):
    wrong, how = sums.slip(a, b, random.Random(seed))
    right = a + b
    assert wrong != right and wrong >= 0
    assert abs(wrong - right) in {10**k for k in range(len(str(right)) + 1)}  # one digit or one carry off
    if how == "dropped_carry":
        assert wrong < right and sums.carries(a, b) > 0
    else:
        assert how == "digit_off_by_one" and len(str(wrong)) == len(str(right))


def test_slip_kinds_on_hard_and_easy():
    hard = [r for r in sums.generate(300, seed=3) if r.meta["difficulty"] == "hard"]
    kinds = Counter(sums.slip(*r.meta["addends"], random.Random(r.id))[1] for r in hard)
    assert kinds["dropped_carry"] > 0.5 * len(hard) and kinds["digit_off_by_one"] > 0.15 * len(hard)
    easy = [r for r in sums.generate(100, seed=3, easy_share=1.0)]
    assert {sums.slip(*r.meta["addends"], random.Random(r.id))[1] for r in easy} == {"digit_off_by_one"}


def test_solution_kinds():
    record = Record("x", "What is 4738 + 2965?", "7703", "arith", {"addends": [4738, 2965]})
    assert sums.solution(record) == "<think>4738 + 2965 = 7703.</think><answer>7703</answer>"
    confirm = sums.solution(record, kind="confirm")
    assert confirm == ("<think>4738 + 2965 = 7703. <refine>" + sums.column_check(4738, 2965)[:-1]
                       + ", which matches.</refine> The answer is 7703.</think><answer>7703</answer>")
    text, spans = sums.solution_with_slips(record, kind="slip", rng=random.Random(0))
    [[start, end]] = spans
    wrong = text[start:end]
    assert text.startswith(f"<think>4738 + 2965 = {wrong}. <refine>Check by columns: ")
    assert text.endswith(f"So 4738 + 2965 = 7703, not {wrong}.</refine> The answer is 7703.</think>"
                         "<answer>7703</answer>")
    assert int(wrong) != 7703
    with pytest.raises(PasrError, match="kind"):
        sums.solution(record, kind="guess")
    with pytest.raises(PasrError, match="addends"):
        sums.solution(Record("y", "q?", "1", "arith"))


# --- warm-up examples ---------------------------------------------------------------


def test_warmup_mix_prompts_validity_and_spans():
    records = sums.generate(400, seed=4)
    examples = sums.warmup_examples(records, seed=0)
    assert len(examples) == 400
    kinds = Counter(e["kind"] for e in examples)
    assert kinds == {"standard": 100, "slip": 75, "confirm": 75, "clean": 150}
    assert examples == sums.warmup_examples(records, seed=0)
    assert [e["kind"] for e in sums.warmup_examples(records, seed=1)] != [e["kind"] for e in examples]
    for example, record in zip(examples, records):
        a, b = record.meta["addends"]
        system = STANDARD_SYSTEM_PROMPT if example["kind"] == "standard" else PASR_SYSTEM_PROMPT
        assert example["prompt"] == chat(system, record.question, "arith") and example["id"] == record.id
        [message] = example["completion"]
        text = message["content"]
        trace = parse(text)
        assert trace.valid, (trace.violations, text)
        assert trace.answer == record.reference == str(a + b)
        assert trace.refined == (example["kind"] in ("slip", "confirm"))
        direct = re.match(rf"<think>{a} \+ {b} = (\d+)\.", text)
        assert direct, text
        if example["kind"] in ("standard", "clean"):
            assert text == f"<think>{a} + {b} = {a + b}.</think><answer>{a + b}</answer>"
            assert "mask_spans" not in example
        else:
            [refine] = trace.refines
            _check_steps(a, b)
            assert refine.text.startswith(sums.column_check(a, b)[:-1])  # the check computes the sum
        if example["kind"] == "confirm":
            assert direct[1] == str(a + b) and "mask_spans" not in example
        if example["kind"] == "slip":
            wrong = direct[1]
            assert wrong != str(a + b)
            [[start, end]] = example["mask_spans"]
            assert text[start:end] == wrong and (start, end) == direct.span(1)  # exactly the wrong number
            assert refine.text.endswith(f", not {wrong}.")


def test_refines_do_not_depend_on_difficulty():
    records = sums.generate(1000, seed=5)
    examples = sums.warmup_examples(records, seed=0, standard_share=0.0)
    refined = Counter((r.meta["difficulty"], e["kind"] in ("slip", "confirm")) for r, e in zip(records, examples))
    for difficulty in ("easy", "hard"):
        share = refined[(difficulty, True)] / (refined[(difficulty, True)] + refined[(difficulty, False)])
        assert 0.4 < share < 0.6, (difficulty, share)
    slips = Counter(r.meta["difficulty"] for r, e in zip(records, examples) if e["kind"] == "slip")
    assert slips["easy"] > 50 and slips["hard"] > 80


def test_warmup_shares():
    records = sums.generate(100, seed=6)
    examples = sums.warmup_examples(records, refine_share=1.0, slip_share_of_refines=1.0, standard_share=0.0)
    assert Counter(e["kind"] for e in examples) == {"slip": 100}
    examples = sums.warmup_examples(records, refine_share=0.0, standard_share=0.5)
    assert Counter(e["kind"] for e in examples) == {"standard": 50, "clean": 50}
    for name in ("refine_share", "slip_share_of_refines", "standard_share"):
        with pytest.raises(PasrError, match=name):
            sums.warmup_examples(records, **{name: -0.1})
    with pytest.raises(PasrError, match="addends"):
        sums.warmup_examples(synthetic.generate(3))


# --- the arith family's slip spans ----------------------------------------------------

_RESULT_AT_END = re.compile(r"(\d+) ([-+*]) (\d+) = (-?\d+)\.$")


def test_arith_warmup_mask_spans_point_at_the_slips():
    records = [r for d in synthetic.LEVELS for r in synthetic.generate(60, seed=8, difficulty=d)]
    examples = synthetic.warmup_examples(records, refine_share=0.6, seed=3)
    late = wrong_ops = 0
    for example, record in zip(examples, records):
        text = example["completion"][0]["content"]
        if example["kind"] != "refine":
            assert "mask_spans" not in example
            continue
        spans = example["mask_spans"]
        assert spans == sorted(spans) and all(end <= text.index("<refine>") for _, end in spans)
        steps = {(s["before"], s["operand"]): s for s in record.meta["steps"]}
        numbers = [text[start:end] for start, end in spans if text[start:end] not in "+-*"]
        for start, end in spans:
            piece = text[start:end]
            sentence_end = text.index(".", end)
            equation = _RESULT_AT_END.search(text[:sentence_end + 1])
            assert equation is not None and text[sentence_end - 1] != " ", text
            before, op, operand, result = int(equation[1]), equation[2], int(equation[3]), int(equation[4])
            if piece in "+-*":  # a wrong operation: the operator of the slipped step
                assert start == equation.start(2) and op != steps[(before, operand)]["op"]
                wrong_ops += 1
            else:  # a wrong result: the equation's result, and it is false
                assert (start, end) == equation.span(4) and piece == str(result)
                step = steps.get((before, operand))
                assert step is None or result != step["result"] or op != step["op"]
        assert 1 <= len(numbers) <= 2
        late += len(numbers) == 2
    assert late > 5 and wrong_ops > 5


# --- selectable everywhere ------------------------------------------------------------


def test_sums_benchmark():
    from pasr.data.benchmarks import BENCHMARKS, load_benchmark

    spec = BENCHMARKS["sums"]
    assert spec.generated and spec.task == "arith" and spec.size == 500
    records = load_benchmark("sums")
    assert len(records) == 500 and all(r.meta["split"] == "test" and r.meta["benchmark"] == "sums" for r in records)
    assert Counter(r.meta["difficulty"] for r in records) == {"easy": 200, "hard": 300}
    assert len({sums.content_key(*r.meta["addends"]) for r in records}) == 500  # 500 different sums
    subset = load_benchmark("sums", limit=20, seed=3)
    assert [r.id for r in subset] == [r.id for r in load_benchmark("sums", limit=20, seed=3)]
    assert load_benchmark("synthetic", limit=3)[0].id.startswith("arith")  # the arith benchmark is unchanged


def test_generate_family():
    assert synthetic.generate_family("arith", 5, seed=1) == synthetic.generate(5, seed=1)
    assert synthetic.generate_family("sums", 5, seed=1, split="test") == sums.generate(5, seed=1, split="test")
    assert synthetic.generate_family("sums", 5, easy_share=1.0) == sums.generate(5, easy_share=1.0)
    with pytest.raises(PasrError, match="difficulty applies to the arith family only"):
        synthetic.generate_family("sums", 5, difficulty=3)
    with pytest.raises(PasrError, match="easy_share applies to the sums family only"):
        synthetic.generate_family("arith", 5, easy_share=0.5)
    with pytest.raises(PasrError, match="family 'words': must be one of arith, sums"):
        synthetic.generate_family("words", 5)
    assert synthetic.family_of(sums.generate(3)) == "sums" and synthetic.family_of(synthetic.generate(3)) == "arith"


def test_cli_synthetic_and_warmup_with_sums(tmp_path):
    from typer.testing import CliRunner

    from pasr.cli import app
    from pasr.data.records import read_records

    runner = CliRunner()
    out = tmp_path / "sums.jsonl"
    result = runner.invoke(app, ["data", "synthetic", "--family", "sums", "-n", "5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote 5 sums train problems (easy share 0.4, seed 0) to {out}" in " ".join(result.output.split())
    assert read_records(out) == sums.generate(5)

    result = runner.invoke(app, ["data", "synthetic", "--family", "sums", "-n", "10", "--easy-share", "0.5",
                                 "--split", "test", "--seed", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert read_records(out) == sums.generate(10, seed=3, split="test", easy_share=0.5)

    for args, message in [
        (["--family", "sums", "--difficulty", "3"], "--difficulty applies to --family arith only"),
        (["--easy-share", "0.5"], "--easy-share applies to --family sums only"),
        (["--family", "sums", "--easy-share", "1.5"], "--easy-share 1.5: must be in [0, 1]"),
        (["--family", "words"], "--family 'words': must be one of arith, sums"),
    ]:
        result = runner.invoke(app, ["data", "synthetic", "-n", "5", "-o", str(tmp_path / "x.jsonl"), *args])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "x.jsonl").exists()

    warm = tmp_path / "warm.jsonl"
    result = runner.invoke(app, ["data", "warmup", "--family", "sums", "--n", "40", "-o", str(warm)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in warm.read_text().splitlines()]
    assert len(rows) == 40 and Counter(r["kind"] for r in rows) == {"standard": 10, "slip": 8, "confirm": 7,
                                                                     "clean": 15}
    assert "8 fixing a slip, 7 confirming, 15 direct, 10 standard-prompt" in " ".join(result.output.split())
    assert all(r["completion"][0]["content"][s:e].isdigit() for r in rows for s, e in r.get("mask_spans", []))
    result = runner.invoke(app, ["data", "warmup", "--records", str(out), "-o", str(warm)])  # family from records
    assert result.exit_code == 0, result.output
    assert {json.loads(line)["kind"] for line in warm.read_text().splitlines()} <= {"standard", "slip", "confirm",
                                                                                      "clean"}


def _config(**overrides):
    values = dict(dataset="synthetic", synthetic_family="sums", synthetic_difficulty=None, train_size=30, seed=0,
                  data_seed_offset=0, data_file=None, data_fields=None, data_task=None)
    return SimpleNamespace(**{**values, **overrides})


def test_load_training_records_with_sums():
    from pasr.train.data import load_training_records

    records = load_training_records(_config())
    assert records == sums.generate(30, seed=0, split="train")
    assert load_training_records(_config(synthetic_family="arith")) == synthetic.generate(30, seed=0)
    with pytest.raises(PasrError, match="synthetic_family 'words'"):
        load_training_records(_config(synthetic_family="words"))


def test_sft_warmup_examples_with_sums():
    from pasr.train.config import PasrSFTConfig
    from pasr.train.sft import sft_examples

    config = PasrSFTConfig(output_dir="unused", dataset="warmup", warmup_examples=16, synthetic_family="sums",
                           use_cpu=True, report_to="none")
    examples = sft_examples(config)
    records = sums.generate(16, seed=config.seed, split="train")
    assert examples == sums.warmup_examples(records, refine_share=config.warmup_refine_share, seed=config.seed)


@pytest.mark.parametrize(("args", "message"), [
    (["--synthetic_family", "words"], "synthetic_family"),
    (["--synthetic_family", "sums", "--synthetic_difficulty", "3"], "synthetic_difficulty"),
])
def test_config_checks(args, message):
    from pasr.train.command import DEFAULT_TRAIN_RECIPE, parse_config

    with pytest.raises(PasrError, match=message) as error:
        parse_config("train", args, DEFAULT_TRAIN_RECIPE)
    assert "\n" not in str(error.value)


def test_sums_recipe_parses():
    from pasr.train.command import DEFAULT_TRAIN_RECIPE, RECIPES, parse_config

    config, _ = parse_config("train", ["--config", str(RECIPES / "cpu-sums.yaml")], DEFAULT_TRAIN_RECIPE)
    assert config.synthetic_family == "sums" and config.max_completion_length == 288
    assert config.warmup_examples == 640 and config.warmup_mask_slips  # the measured warm-up (README)
    default, _ = parse_config("train", [], DEFAULT_TRAIN_RECIPE)
    assert default.synthetic_family == "arith"


def test_star_uses_the_family(tmp_path):
    from pasr.baselines.star import StarConfig, fewshot_examples, heldout_records, training_records

    config = StarConfig(output_dir=str(tmp_path / "star"), dataset="synthetic", synthetic_family="sums",
                        star_questions=8, star_fewshot=2, star_heldout=5, use_cpu=True, bf16=False, report_to="none")
    records, heldout = training_records(config), heldout_records(config)
    assert records == sums.generate(8, seed=config.seed + config.data_seed_offset, split="train")
    assert heldout == sums.generate(5, seed=config.seed, split="test")
    shots = fewshot_examples(config, exclude={r.question for r in records + heldout})
    assert len(shots) == 2
    for shot in shots:
        a, b = (int(x) for x in re.findall(r"\d+", shot.question))
        assert shot.solution == f"<think>{a} + {b} = {a + b}.</think><answer>{a + b}</answer>"
