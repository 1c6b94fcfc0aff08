"""The response grammar, hardened: invisible characters, other model families' end tokens, prefilled prompts.

Three kinds of fault, each checked on the reported instance and on variants:

* invisible characters (zero-width, bidi, format and control characters, blank filler letters) are not
  content: a refine, think or answer holding only them is empty, and outside the tags they count as
  whitespace;
* the end-of-turn tokens of every common model family (and any the caller passes) may follow
  ``</answer>``, nowhere else;
* a completion of a prompt that already opened ``<think>`` parses as the prompt's continuation, with
  offsets still counted in the completion; training (``completion_prefix``) and ``pasr eval``
  (``--completion-prefix``) pass it through.

And the parser stays total and linear: it never raises and parses 100k characters of any shape fast.
"""

from __future__ import annotations

import dataclasses
import json
import time
import unicodedata
from io import StringIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pasr.format import (
    END_OF_TURN_TOKENS,
    TAGS,
    extract_answer,
    format_reward,
    is_blank,
    parse,
    strip_blank,
)

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# One or more of every kind of invisible character, by name (the parametrize ids).
INVISIBLE = {
    # Cf: format characters
    "zero-width-space": "\u200b",
    "zero-width-non-joiner": "\u200c",
    "zero-width-joiner": "\u200d",
    "left-to-right-mark": "\u200e",
    "right-to-left-mark": "\u200f",
    "word-joiner": "\u2060",
    "function-application": "\u2061",
    "invisible-times": "\u2062",
    "invisible-separator": "\u2063",
    "invisible-plus": "\u2064",
    "bom-zero-width-no-break-space": "\ufeff",
    "soft-hyphen": "\u00ad",
    "bidi-embeddings-overrides": "\u202a\u202b\u202c\u202d\u202e",
    "bidi-isolates": "\u2066\u2067\u2068\u2069",
    "arabic-letter-mark": "\u061c",
    "mongolian-vowel-separator": "\u180e",
    "language-tag": "\U000e0001",
    "tag-characters": "\U000e0020\U000e0041\U000e007f",
    # Cc: control characters (not whitespace)
    "nul": "\x00",
    "bell": "\x07",
    "escape": "\x1b",
    "delete": "\x7f",
    "c1-control": "\x9f",
    # blank filler letters and other default-ignorable characters
    "hangul-filler": "\u3164",
    "hangul-choseong-filler": "\u115f",
    "hangul-jungseong-filler": "\u1160",
    "halfwidth-hangul-filler": "\uffa0",
    "braille-pattern-blank": "\u2800",
    "variation-selector-16": "\ufe0f",
    "variation-selector-256": "\U000e01ef",
    "combining-grapheme-joiner": "\u034f",
    # non-ASCII whitespace (str.isspace), for completeness
    "no-break-space": "\u00a0",
    "ideographic-space": "\u3000",
    "figure-space": "\u2007",
    "narrow-no-break-space": "\u202f",
    "line-separator": "\u2028",
    # mixtures
    "mixture": " \u200b\n\u3164\t\u2800\ufeff\u00ad\u00a0",
}
INVISIBLE_IDS, INVISIBLE_CHARS = list(INVISIBLE), list(INVISIBLE.values())


def valid_text(think: str = "reasoning", answer: str = "42") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


# --- the reported instance ------------------------------------------------------------------------


def test_zero_width_refine_is_empty_and_not_a_refine():
    trace = parse("<think>x<refine>\u200b</refine></think><answer>5</answer>")
    assert not trace.valid
    assert trace.violations == ["empty <refine> at char 8"]
    assert trace.refines == [] and not trace.refined
    assert trace.to_dict()["refined"] is False
    assert format_reward("<think>x<refine>\u200b</refine></think><answer>5</answer>") == -1.0


def test_blank_and_strip_blank():
    assert is_blank("") and is_blank(" \n\t") and is_blank("".join(INVISIBLE_CHARS))
    for visible in ["a", "5", "-", ".", "思", "é", "😀", "\u2801", "<", "\u0301x"]:
        assert not is_blank(visible) and not is_blank("\u200b" + visible + "\u3164")
    assert strip_blank("\u200b\u00a0 5\u200b7 \u2060\ufeff") == "5\u200b7"  # inner ones are kept
    assert strip_blank("\u3164\u2800") == "" and strip_blank("abc") == "abc"


def test_every_control_and_format_character_is_blank():
    # Whatever Unicode version this Python has: the categories, not a frozen list, are the rule.
    chars = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in ("Cc", "Cf")]
    assert len(chars) > 150
    assert is_blank("".join(chars))
    assert [c for c in chars if not is_blank(c)] == []


# --- invisible characters inside refine, think and answer --------------------------------------------


@pytest.mark.parametrize("blank", INVISIBLE_CHARS, ids=INVISIBLE_IDS)
def test_invisible_only_refine_is_empty(blank):
    text = f"<think>step<refine>{blank}</refine>more</think><answer>5</answer>"
    trace = parse(text)
    assert trace.violations == ["empty <refine> at char 11"]
    assert trace.refines == [] and not trace.refined


@pytest.mark.parametrize("blank", INVISIBLE_CHARS, ids=INVISIBLE_IDS)
def test_invisible_only_think_is_empty(blank):
    assert parse(valid_text(think=blank)).violations == ["empty <think>: it needs reasoning text outside <refine>"]
    # refining with nothing but invisible reasoning around it is not reasoning either
    with_refine = parse(valid_text(think=f"{blank}<refine>real fix</refine>{blank}"))
    assert with_refine.violations == ["empty <think>: it needs reasoning text outside <refine>"]
    assert with_refine.refined  # best effort: the refine itself has text


@pytest.mark.parametrize("blank", INVISIBLE_CHARS, ids=INVISIBLE_IDS)
def test_invisible_only_answer_is_empty(blank):
    trace = parse(valid_text(answer=blank))
    assert trace.violations == ["empty <answer>"]
    assert trace.answer == "" == extract_answer(valid_text(answer=blank))


@pytest.mark.parametrize("blank", INVISIBLE_CHARS, ids=INVISIBLE_IDS)
def test_invisible_characters_around_real_text_stay_valid_and_are_stripped(blank):
    text = (
        f"{blank}<think>{blank}step one{blank}<refine>{blank}fix{blank}it{blank}</refine>{blank}</think>{blank}"
        f"<answer>{blank}5{blank}</answer>{blank}"
    )
    trace = parse(text)
    assert trace.valid, trace.violations
    assert trace.answer == "5" == extract_answer(text)
    assert [r.text for r in trace.refines] == [f"fix{blank}it"]  # stripped at the ends, kept inside
    assert trace.think.startswith("step one") and trace.think.endswith("</refine>")
    assert trace.refined


def test_several_refines_only_the_empty_ones_are_dropped():
    text = "<think>a<refine>one</refine>b<refine>\u200d\u200c</refine>c<refine>two</refine>d</think><answer>1</answer>"
    trace = parse(text)
    assert trace.violations == [f"empty <refine> at char {text.index('<refine>', 20)}"]
    assert [r.text for r in trace.refines] == ["one", "two"]
    assert trace.refined and len(trace.to_dict()["refines"]) == 2


def test_invisible_refine_in_an_invalid_completion_is_not_a_refine_either():
    trace = parse("<think>cut off <refine>\u2800\u3164</refine> and then")  # truncated: no rule-4 checks
    assert not trace.valid and trace.refines == [] and not trace.refined


@pytest.mark.parametrize("blank", INVISIBLE_CHARS, ids=INVISIBLE_IDS)
@pytest.mark.parametrize("where", ["before", "between", "after"])
def test_invisible_characters_outside_the_tags_are_like_whitespace(blank, where):
    parts = {"before": "", "between": "", "after": ""}
    parts[where] = blank
    text = f"{parts['before']}<think>r</think>{parts['between']}<answer>5</answer>{parts['after']}"
    assert parse(text).valid, parse(text).violations


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\u200bx\u200b<think>r</think><answer>5</answer>", "text before <think> at char 0: 'x'"),
        ("<think>r</think>\u2060so\u2060<answer>5</answer>", "text between </think> and <answer> at char 16: 'so'"),
        ("<think>r</think><answer>5</answer>\u3164!", "text after </answer> at char 34: '!'"),
    ],
)
def test_visible_text_among_invisible_characters_outside_the_tags_is_reported(text, message):
    assert parse(text).violations == [message]


def test_tag_with_an_invisible_character_inside_is_text():
    trace = parse("<think>r</think><ans\u200bwer>5</answer>")
    assert "missing <answer>" in trace.violations


# --- end-of-turn tokens ---------------------------------------------------------------------------------

FAMILY_TOKENS = {
    "qwen-chatml": ["<|im_end|>", "<|endoftext|>"],
    "gemma": ["<end_of_turn>", "<eos>"],
    "deepseek-v3-r1": ["<\uff5cend\u2581of\u2581sentence\uff5c>"],
    "deepseek-ascii": ["<|end_of_sentence|>", "<|end\u2581of\u2581sentence|>"],
    "deepseek-coder": ["<|EOT|>"],
    "llama3": ["<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"],
    "llama4": ["<|eot|>", "<|eom|>"],
    "llama2-mistral": ["</s>"],
    "phi3": ["<|end|>", "<|endoftext|>"],
    "command-r": ["<|END_OF_TURN_TOKEN|>", "<|END_RESPONSE|>"],
    "openchat": ["<|end_of_turn|>"],
}


def test_the_deepseek_token_is_spelled_with_full_width_bars_and_lower_one_eighth_blocks():
    token = FAMILY_TOKENS["deepseek-v3-r1"][0]
    assert token == "<｜end▁of▁sentence｜>"
    assert [unicodedata.name(c) for c in token if not c.isascii()] == [
        "FULLWIDTH VERTICAL LINE", "LOWER ONE EIGHTH BLOCK", "LOWER ONE EIGHTH BLOCK", "FULLWIDTH VERTICAL LINE",
    ]


@pytest.mark.parametrize("family", list(FAMILY_TOKENS))
def test_each_family_s_end_tokens_are_allowed_after_the_answer(family):
    for token in FAMILY_TOKENS[family]:
        assert token in END_OF_TURN_TOKENS
        assert parse(valid_text() + token).valid, token
        assert parse(valid_text() + "\n" + token + "\n").valid, token
        assert format_reward(valid_text() + token) == 1.0


def test_the_reported_gemma_instance():
    assert parse("<think>r</think><answer>5</answer><end_of_turn>").valid


def test_several_end_tokens_in_a_row_with_blank_text_between():
    every = [t for ts in FAMILY_TOKENS.values() for t in ts]
    assert parse(valid_text() + "".join(every)).valid
    assert parse(valid_text() + " \n".join(every)).valid
    assert parse(valid_text() + "\u200b".join(every) + "\ufeff\u3000").valid
    assert parse(valid_text() + "<end_of_turn>\n<eos>").valid  # Gemma ends a turn, then the sequence
    assert parse(valid_text() + "<|eot_id|><|end_of_text|>").valid


@pytest.mark.parametrize(
    "text",
    [
        "<think>r</think><answer>5<end_of_turn>",  # end of turn before </answer>: the answer is never closed
        "<think>r</think><answer>5<eos>\n",
        "<think>r<|im_end|></think>",  # ... or before the answer at all
        "<think>r</think><end_of_turn><answer>5</answer>",  # between think and answer
        "<eos><think>r</think><answer>5</answer>",  # before think
        "<|im_start|><think>r</think><answer>5</answer>",
    ],
)
def test_end_tokens_are_allowed_only_after_the_answer(text):
    assert not parse(text).valid


@pytest.mark.parametrize(
    "tail",
    [
        "<end>",
        "<EOS>",
        "<|im_end|",
        "<|im_end>",
        "<|endoftext|>x",
        "<eo\u200bs>",  # a token with an invisible character inside is text
        "<|end_of_sentence｜>",  # mixed bar widths
        "<end_of_turn>.",
        "</s></",
    ],
)
def test_unknown_or_malformed_end_tokens_are_text(tail):
    trace = parse(valid_text() + tail)
    assert not trace.valid
    assert trace.violations[0].startswith(f"text after </answer> at char {len(valid_text())}:")


def test_caller_end_tokens():
    text = valid_text() + "<|my_eos|>\n<|im_end|>"
    assert not parse(text).valid
    assert parse(text, end_tokens=["<|my_eos|>"]).valid
    assert parse(text, end_tokens="<|my_eos|>").valid  # a string is one token, not its characters
    assert parse(text, end_tokens=(" <|my_eos|>\n",)).valid  # blank around a token is ignored
    assert parse(text, end_tokens=["", None, "<|my_eos|>"]).valid  # type: ignore[list-item]
    assert format_reward(text, end_tokens=["<|my_eos|>"]) == 1.0 and format_reward(text) == -1.0
    assert not parse(valid_text() + "<|other|>", end_tokens=["<|my_eos|>"]).valid
    # the caller's tokens add to the built-in ones, and are still allowed only after the answer
    assert parse(valid_text() + "<eos>", end_tokens=["<|my_eos|>"]).valid
    assert not parse("<|my_eos|>" + valid_text(), end_tokens=["<|my_eos|>"]).valid


def test_caller_end_tokens_that_share_a_start():
    tokens = ["<a>", "<a><b>", "<a>x"]
    for tail in ["<a>", "<a><b>", "<a>x<a>", "<a><a><b><a>x"]:
        assert parse(valid_text() + tail, end_tokens=tokens).valid, tail
    assert not parse(valid_text() + "<a><b", end_tokens=tokens).valid


@pytest.mark.parametrize("bad", [None, (), [], "", 0, 12, object()])
def test_odd_end_tokens_arguments_do_not_raise(bad):
    trace = parse(valid_text() + "<eos>", end_tokens=bad)
    assert trace.valid


# --- continuation of a prompt that already opened <think> --------------------------------------------

R1_PREFIX = "<think>\n"


def test_deepseek_r1_style_continuation_is_valid():
    completion = "Let me add.\n<refine>wait, carry the one</refine>\nSo 12.\n</think>\n\n<answer>12</answer><｜end▁of▁sentence｜>"
    trace = parse(completion, prefix=R1_PREFIX)
    assert trace.valid, trace.violations
    assert trace.answer == "12" and trace.think.startswith("Let me add.") and trace.think.endswith("So 12.")
    assert not parse(completion).valid  # without the prefix it is missing <think>
    assert format_reward(completion, prefix=R1_PREFIX) == 1.0 and format_reward(completion) == -1.0
    (refine,) = trace.refines
    # offsets count in the completion; the position is relative to the whole think content
    assert completion.startswith("<refine>", refine.offset)
    full = R1_PREFIX + completion
    content_start, content_end = len("<think>"), full.index("</think>")
    assert refine.position == pytest.approx((refine.offset + len(R1_PREFIX) - content_start) / (content_end - content_start))


@pytest.mark.parametrize("prefix", ["<think>", "<think>\n", "<think>\n\n", "\n<think>\u200b"])
def test_prefix_whitespace_does_not_change_the_verdict(prefix):
    assert parse("r</think><answer>5</answer>", prefix=prefix).valid
    assert parse("r</think><answer>5</answer><|im_end|>", prefix=prefix).valid


@pytest.mark.parametrize(
    ("completion", "violations"),
    [
        ("<think>r</think><answer>5</answer>", ["duplicate <think>: found 2, expected exactly one"]),
        ("</think><answer>5</answer>", ["empty <think>: it needs reasoning text outside <refine>"]),
        ("\u200b\n</think><answer>5</answer>", ["empty <think>: it needs reasoning text outside <refine>"]),
        ("r<answer>5</answer>", ["missing </think>"]),
        ("r</think><answer></answer>", ["empty <answer>"]),
        ("r</think>so<answer>5</answer>", ["text between </think> and <answer> at char 9: 'so'"]),
        ("r</think><answer>5</answer>ok", ["text after </answer> at char 27: 'ok'"]),
        ("a</refine>b</think><answer>1</answer>", ["</refine> at char 1 has no opening <refine>"]),
        ("a<refine>\u200b</refine>b</think><answer>1</answer>", ["empty <refine> at char 1"]),
    ],
)
def test_continuation_violations_count_in_the_completion(completion, violations):
    trace = parse(completion, prefix=R1_PREFIX)
    assert trace.violations == violations


def test_refines_in_the_prefix_have_negative_offsets():
    prefix = "<think>x<refine>fix</refine>"
    trace = parse("y</think><answer>1</answer>", prefix=prefix)
    assert trace.valid
    (refine,) = trace.refines
    assert refine.offset == 8 - len(prefix) < 0
    assert (prefix + "y</think>").startswith("<refine>", refine.offset + len(prefix))


def test_text_before_think_in_the_prefix_is_reported_at_a_negative_offset():
    trace = parse("r</think><answer>5</answer>", prefix="Sure! <think>")
    assert trace.violations == ["text before <think> at char -13: 'Sure!'"]


@pytest.mark.parametrize("prefix", ["", None])
def test_empty_prefix_is_no_prefix(prefix):
    text = "<think>a<refine>b</refine>c</think><answer>1</answer>"
    assert parse(text, prefix=prefix) == parse(text)


def test_the_answer_comes_from_prefix_and_completion_together():
    assert parse("5</answer>", prefix="<think>r</think><answer>").answer == "5"


# --- training and evaluation pass the prefix through ----------------------------------------------------


def test_config_field():
    from pasr.train.config import PasrGRPOConfig

    (f,) = [f for f in dataclasses.fields(PasrGRPOConfig) if f.name == "completion_prefix"]
    assert f.default == "" and "DeepSeek-R1" in f.metadata["help"] and "continuation" in f.metadata["help"]


def test_reward_functions_parse_completions_as_continuations():
    from pasr.train.reward_functions import PasrRewards

    completions = ["r <refine>fix</refine> s</think><answer>5</answer>", "<think>r</think><answer>5</answer>"]
    plain = PasrRewards(scorer=None)
    assert plain.format_reward(["p", "p"], completions) == [-1.0, 1.0]
    prefixed = PasrRewards(scorer=None, completion_prefix=R1_PREFIX)
    assert prefixed.completion_prefix == R1_PREFIX
    assert prefixed.format_reward(["p", "p"], list(completions)) == [1.0, -1.0]
    assert [t.refined for t in prefixed._traces] == [True, False]
    # conversational completions too
    assert prefixed.format_reward(["p"], [[{"role": "assistant", "content": completions[0]}]]) == [1.0]


def test_build_trainer_passes_the_config_prefix(tmp_path):
    from train_helpers import LengthScorer, tiny_config, tiny_records
    from trl import ModelConfig

    from pasr.train.grpo import build_trainer

    config = tiny_config(tmp_path, completion_prefix=R1_PREFIX)
    _, rewards = build_trainer(config, ModelConfig(model_name_or_path="tiny-random"), tiny_records(), LengthScorer())
    assert rewards.completion_prefix == R1_PREFIX


def _eval_settings(tmp_path, **kw):
    from pasr.eval.runner import EvalSettings

    return EvalSettings(model="fake-model", benchmarks=["synthetic"], methods=["pasr"], output=tmp_path / "run",
                        limit=3, max_tokens=32, **kw)


def _r1_reply(conv):
    return "adding <refine>check</refine> again</think><answer>7</answer>", 5  # the prompt opened <think>


def test_eval_parses_with_the_completion_prefix(tmp_path):
    from rich.console import Console
    from test_eval_fakes import ScriptedBackend

    from pasr.errors import PasrError
    from pasr.eval.runner import run_eval

    quiet = Console(file=StringIO())
    run_eval(_eval_settings(tmp_path, completion_prefix=R1_PREFIX), backend=ScriptedBackend(_r1_reply), console=quiet)
    run = tmp_path / "run"
    lines = [json.loads(x) for x in (run / "synthetic" / "pasr.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    assert all(line["format_valid"] and line["refined"] and line["trace"]["refines"][0]["offset"] == 7 for line in lines)
    assert json.loads((run / "run.json").read_text())["completion_prefix"] == R1_PREFIX
    # a rerun into the same folder with another prefix would mix verdicts: refused
    with pytest.raises(PasrError, match="completion_prefix"):
        run_eval(_eval_settings(tmp_path), backend=ScriptedBackend(_r1_reply), console=quiet)
    # without the prefix, the same replies are invalid
    run_eval(_eval_settings(tmp_path / "plain"), backend=ScriptedBackend(_r1_reply), console=quiet)
    plain = [json.loads(x) for x in (tmp_path / "plain" / "run" / "synthetic" / "pasr.jsonl").read_text().splitlines()]
    assert not any(line["format_valid"] for line in plain)


def test_eval_cli_has_the_option():
    from typer.testing import CliRunner

    from pasr.cli import app

    result = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--completion-prefix" in result.output


def test_eval_cli_passes_the_option(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import pasr.eval.runner as runner_module
    from pasr.cli import app

    seen = {}

    def fake_run_eval(settings, console=None):
        seen["settings"] = settings
        return []

    monkeypatch.setattr(runner_module, "run_eval", fake_run_eval)
    result = CliRunner().invoke(
        app, ["eval", "--benchmark", "synthetic", "--output", str(tmp_path / "o"), "--completion-prefix", "<think>\n"]
    )
    assert result.exit_code == 0, result.output
    assert seen["settings"].completion_prefix == "<think>\n"


# --- total and linear ------------------------------------------------------------------------------------

PIECES = [
    *TAGS, *INVISIBLE_CHARS, *END_OF_TURN_TOKENS[:6], "<end_of_turn>", "<eos>", "<｜end▁of▁sentence｜>",
    "a", "x y", "7", "\n", " ", "<", ">", "</", "<|", "|>", "思", "😀", "<think", "answer>",
]
random_text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=40).map("".join)


def _best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _check_trace(trace, completion: str, prefix: str = "") -> None:
    assert trace.valid == (not trace.violations)
    for r in trace.refines:
        assert r.text and not is_blank(r.text) and r.text == strip_blank(r.text)
        assert (prefix + completion).startswith("<refine>", r.offset + len(prefix))
        assert 0.0 <= r.position <= 1.0
    assert trace.refined == bool(trace.refines)
    if trace.answer is not None:
        assert trace.answer == strip_blank(trace.answer)
    json.dumps(trace.to_dict())


@PROPS
@given(random_text, st.sampled_from(["", "<think>", R1_PREFIX, "<think>a<refine>", "\u200b"]), st.data())
def test_random_text_never_raises(text, prefix, data):
    end_tokens = data.draw(st.sampled_from([(), ["<|my_eos|>"], "<eos>", ["", "<a>", "<a><b>"]]))
    trace = parse(text, prefix=prefix, end_tokens=end_tokens)
    _check_trace(trace, text, prefix)
    assert format_reward(text, prefix=prefix, end_tokens=end_tokens) == (1.0 if trace.valid else -1.0)
    if not prefix:
        assert trace.answer == extract_answer(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=30).map("".join))
def test_random_text_repeated_to_100k_characters_parses_fast(unit):
    text = (unit * (100_000 // len(unit) + 1))[:100_000]
    assert _best_of(2, lambda: parse(text, prefix=R1_PREFIX)) < 0.25
    _check_trace(parse(text), text)


@pytest.mark.parametrize(
    "text",
    [
        "<answer>" * 12_500,  # a lazy <answer>(.*?)</answer> regex is quadratic here
        "<answer>" * 6_250 + "</answer>" * 6_250,
        "<think>" + "<refine>" * 12_500 + "</think><answer>1</answer>",
        "<think>" + "\u200b" * 100_000 + "</think><answer>" + "\u0600" * 100_000 + "</answer>",
        valid_text() + "<eos>" * 20_000,
        valid_text() + "\u200b<|im_end|> " * 8_000 + "x",
        valid_text() + " " * 100_000 + "x",
        "\u3164" * 100_000 + "x",
        "<" * 100_000,
        "<|" * 50_000,
        "x" * 100_000,
    ],
    ids=["answers", "answer-pairs", "refines", "invisible", "end-tokens", "end-tokens-then-text", "spaces",
         "fillers", "angles", "bars", "plain"],
)
def test_adversarial_100k_shapes_parse_fast(text):
    assert _best_of(3, lambda: parse(text)) < 0.25  # about 20 ms at worst on a laptop core
    assert _best_of(2, lambda: extract_answer(text)) < 0.25
