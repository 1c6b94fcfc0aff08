"""The response grammar: examples for every rule and message, and properties over generated text.

The properties generate completions from the grammar itself (think chunks with interleaved
refines, an answer, optional whitespace and end-of-turn tokens) and check that they parse back
to the same segments, that each kind of rule-breaking mutation is rejected, and that arbitrary
text mixed with tag fragments never raises and is judged like an independent regex oracle.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from hypothesis import assume, HealthCheck, given, settings
from hypothesis import strategies as st

from pasr.format import END_OF_TURN_TOKENS, TAGS, Refine, Trace, extract_answer, format_reward, is_blank, parse

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAG_RE = re.compile(r"</?(?:think|refine|answer)>")


def valid_text(think: str = " reasoning ", answer: str = " 42 ") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


# --- examples: valid completions --------------------------------------------------------


def test_plain_valid_completion():
    trace = parse("<think> 2+2 is 4 </think>\n<answer> 4 </answer>")
    assert trace.valid and trace.violations == []
    assert trace.think == "2+2 is 4"
    assert trace.answer == "4"
    assert trace.refines == [] and not trace.refined
    assert format_reward("<think> 2+2 is 4 </think>\n<answer> 4 </answer>") == 1.0


def test_refines_are_extracted_with_offset_and_position():
    text = "<think>abc<refine>fix one</refine>def<refine> fix two </refine></think><answer>x</answer>"
    trace = parse(text)
    assert trace.valid, trace.violations
    assert [r.text for r in trace.refines] == ["fix one", "fix two"]
    assert [r.offset for r in trace.refines] == [text.index("<refine>"), text.rindex("<refine>")]
    content = text[len("<think>") : text.index("</think>")]
    assert trace.refines[0].position == pytest.approx(3 / len(content))
    assert trace.refines[1].position == pytest.approx(content.rindex("<refine>") / len(content))
    assert trace.refined
    assert trace.think == content


def test_refine_at_the_very_start_of_think_has_position_zero():
    trace = parse("<think><refine>first</refine>then</think><answer>1</answer>")
    assert trace.valid
    assert trace.refines == [Refine(text="first", offset=7, position=0.0)]


def test_multiline_content_everywhere():
    text = (
        "\n<think>\nStep 1: read.\nStep 2: add.\n<refine>\nwait,\nI misread\n</refine>\n"
        "Step 3: redo.\n</think>\n\n<answer>\nline one\nline two\n</answer>\n"
    )
    trace = parse(text)
    assert trace.valid, trace.violations
    assert trace.think.startswith("Step 1: read.\nStep 2") and trace.think.endswith("Step 3: redo.")
    assert trace.refines[0].text == "wait,\nI misread"
    assert trace.answer == "line one\nline two"


@pytest.mark.parametrize("eot", END_OF_TURN_TOKENS)
def test_trailing_end_of_turn_tokens_are_allowed(eot):
    assert parse(valid_text() + eot).valid
    assert parse(valid_text() + f"\n{eot}\n{eot}  ").valid


def test_end_of_turn_tokens_elsewhere_outside_tags_are_text():
    assert parse("<|im_end|>" + valid_text()).violations == ["text before <think> at char 0: '<|im_end|>'"]
    bad = parse("<think>a</think><|im_end|><answer>1</answer>")
    assert bad.violations == ["text between </think> and <answer> at char 16: '<|im_end|>'"]


def test_end_of_turn_token_inside_think_is_just_text():
    assert parse("<think>a <|im_end|> b</think><answer>1</answer>").valid


def test_tags_are_case_sensitive_and_exact():
    trace = parse("<Think>a</Think><think>b</think><answer>1</answer>")
    assert not trace.valid
    assert trace.violations == ["text before <think> at char 0: '<Think>a</Think>'"]
    assert parse("<think>a < refine >x</ refine></think><answer>1</answer>").refines == []


# --- examples: each violation message -----------------------------------------------------


@pytest.mark.parametrize("tag", ["<think>", "</think>", "<answer>", "</answer>"])
def test_missing_skeleton_tag(tag):
    text = valid_text().replace(tag, "", 1)
    trace = parse(text)
    assert not trace.valid
    assert f"missing {tag}" in trace.violations
    assert format_reward(text) == -1.0


@pytest.mark.parametrize("tag", ["<think>", "</think>", "<answer>", "</answer>"])
def test_duplicate_skeleton_tag(tag):
    text = valid_text().replace(tag, tag + tag, 1)
    assert parse(text).violations == [f"duplicate {tag}: found 2, expected exactly one"]


def test_two_answer_blocks_are_invalid():
    # A regex for the first think/answer pair (and the reference code's `not m or a and b`
    # check) accepts this; the answer scored would then be ambiguous.
    trace = parse("<think>a</think><answer>1</answer><answer>2</answer>")
    assert not trace.valid
    assert trace.violations == [
        "duplicate <answer>: found 2, expected exactly one",
        "duplicate </answer>: found 2, expected exactly one",
    ]
    assert trace.answer == "2" == extract_answer("<think>a</think><answer>1</answer><answer>2</answer>")


def test_two_think_blocks_are_invalid():
    trace = parse("<think>a</think><think>b</think><answer>1</answer>")
    assert "duplicate <think>: found 2, expected exactly one" in trace.violations
    assert trace.think == "a"


def test_answer_before_think_is_out_of_order():
    trace = parse("<answer>1</answer><think>a</think>")
    assert trace.violations == [
        "tags out of order: expected <think> </think> <answer> </answer>, found <answer> </answer> <think> </think>"
    ]
    assert trace.think == "a" and trace.answer == "1"


def test_closing_before_opening_is_out_of_order():
    trace = parse("</think>a<think><answer>1</answer>")
    assert trace.violations[0].startswith("tags out of order:")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("<refine>x</refine><think>a</think><answer>1</answer>", 0),
        ("<think>a</think><refine>x</refine><answer>1</answer>", 16),
        ("<think>a</think><answer><refine>x</refine>1</answer>", 24),
        ("<think>a</think><answer>1</answer><refine>x</refine>", 34),
    ],
)
def test_refine_outside_think(text, where):
    trace = parse(text)
    assert not trace.valid
    assert f"<refine> at char {where} is outside <think>" in trace.violations
    assert any(v.startswith("</refine> at char") and v.endswith("is outside <think>") for v in trace.violations)
    assert trace.refined  # still reported, best effort
    assert trace.refines[0].text == "x"


def test_refine_outside_think_positions_are_clamped():
    before = parse("<refine>x</refine><think>a</think><answer>1</answer>")
    after = parse("<think>a</think><answer>1</answer><refine>x</refine>")
    assert before.refines[0].position == 0.0
    assert after.refines[0].position == 1.0


def test_nested_refine():
    text = "<think>a<refine>b<refine>c</refine>d</refine>e</think><answer>1</answer>"
    trace = parse(text)
    assert trace.violations == ["nested <refine> at char 17: the <refine> at char 8 is still open"]
    assert [r.offset for r in trace.refines] == [8, 17]


def test_unclosed_refine():
    trace = parse("<think>a<refine>b</think><answer>1</answer>")
    assert trace.violations == ["unclosed <refine> at char 8"]
    assert trace.refines == []


def test_refine_closed_outside_think():
    trace = parse("<think>a<refine>b</think><answer>1</answer></refine>")
    assert trace.violations == ["</refine> at char 43 is outside <think>"]


def test_stray_closing_refine():
    trace = parse("<think>a</refine>b</think><answer>1</answer>")
    assert trace.violations == ["</refine> at char 8 has no opening <refine>"]


def test_empty_refine():
    trace = parse("<think>a<refine> \n </refine>b</think><answer>1</answer>")
    assert trace.violations == ["empty <refine> at char 8"]


@pytest.mark.parametrize("think", ["", "  \n ", "<refine>only a fix</refine>", " <refine>x</refine>\n<refine>y</refine> "])
def test_empty_think(think):
    trace = parse(valid_text(think=think))
    assert trace.violations == ["empty <think>: it needs reasoning text outside <refine>"]


@pytest.mark.parametrize("answer", ["", " \n\t "])
def test_empty_answer(answer):
    trace = parse(valid_text(answer=answer))
    assert trace.violations == ["empty <answer>"]
    assert trace.answer == ""


def test_text_outside_tags():
    trace = parse("Sure! <think>a</think> so: <answer>1</answer> Hope this helps.<|im_end|>")
    assert trace.violations == [
        "text before <think> at char 0: 'Sure!'",
        "text between </think> and <answer> at char 22: 'so:'",
        "text after </answer> at char 45: 'Hope this helps.<|im_end|>'",
    ]


def test_long_outside_text_is_shortened_in_the_message():
    trace = parse(valid_text() + "x" * 500)
    assert len(trace.violations) == 1 and len(trace.violations[0]) < 100
    assert trace.violations[0].endswith("…'")


def test_several_violations_are_all_reported():
    trace = parse("<think>a<refine>b<refine>c</think><answer></answer>")
    assert trace.violations == [
        "nested <refine> at char 17: the <refine> at char 8 is still open",
        "unclosed <refine> at char 8",
        "unclosed <refine> at char 17",
        "empty <answer>",
    ]


def test_truncated_completion_keeps_finished_refines():
    text = "<think>step one <refine>oops, redo</refine> step two <refine>half a thou"
    trace = parse(text)
    assert not trace.valid
    assert trace.violations == [
        "missing </think>",
        "missing <answer>",
        "missing </answer>",
        f"unclosed <refine> at char {text.rindex('<refine>')}",
    ]
    assert [r.text for r in trace.refines] == ["oops, redo"]
    assert trace.answer is None
    assert trace.think.startswith("step one") and trace.think.endswith("half a thou")


def test_missing_think_close_ends_think_at_answer():
    trace = parse("<think>a <refine>b</refine> c<answer>1</answer>")
    assert trace.think == "a <refine>b</refine> c"
    assert trace.violations == ["missing </think>"]  # the refine still counts as inside think
    assert trace.answer == "1"


def test_no_tags_at_all():
    trace = parse("The answer is 4.")
    assert trace == Trace(
        think=None,
        refines=[],
        answer=None,
        valid=False,
        violations=["missing <think>", "missing </think>", "missing <answer>", "missing </answer>"],
    )


def test_refine_without_think_is_positioned_in_the_whole_text():
    text = "ab<refine>x</refine>cdefghij"
    trace = parse(text)
    assert trace.think is None
    assert trace.refines[0].position == pytest.approx(2 / len(text))


@pytest.mark.parametrize("text", ["", None, 123])
def test_degenerate_input_does_not_raise(text):
    trace = parse(text)  # type: ignore[arg-type]
    assert not trace.valid and trace.answer is None


def test_to_dict_is_json_able_with_the_documented_keys():
    trace = parse("<think>a<refine>b</refine>c</think><answer>1</answer>")
    d = json.loads(json.dumps(trace.to_dict()))
    assert d == {
        "think": "a<refine>b</refine>c",
        "refines": [{"text": "b", "offset": 8, "position": pytest.approx(1 / 20)}],
        "answer": "1",
        "valid": True,
        "violations": [],
        "refined": True,
    }


def test_extract_answer():
    assert extract_answer("<answer> 1 </answer> and <answer>\n2\n</answer>") == "2"
    assert extract_answer("no answer here") is None
    assert extract_answer("<answer>unclosed") is None
    assert extract_answer("") is None and extract_answer(None) is None  # type: ignore[arg-type]
    assert extract_answer("<answer></answer>") == ""


# --- properties -----------------------------------------------------------------------------

TEXT_PIECES = ["a", "Z", "7", " ", "\n", "\t", "<", ">", "/", "=", "é", "思", "think", "refine", "answer", "<|im_end|>"]
content = st.lists(st.sampled_from(TEXT_PIECES), max_size=8).map("".join).filter(lambda s: not TAG_RE.search(s))
nonblank = content.filter(lambda s: s.strip())
space = st.text(alphabet=" \t\n\r", max_size=3)


@dataclass
class Generated:
    """A valid completion built from the grammar, with the segments it must parse back to."""

    before: str
    think_block: str  # "<think>...</think>"
    between: str
    answer_block: str  # "<answer>...</answer>"
    after: str
    think: str
    refines: list[tuple[str, int]]  # (stripped text, offset of <refine> in the full text)
    answer: str

    @property
    def text(self) -> str:
        return self.before + self.think_block + self.between + self.answer_block + self.after

    def tag_spans(self) -> list[tuple[int, int]]:
        return [m.span() for m in TAG_RE.finditer(self.text)]

    def boundaries(self, lo: int = 0, hi: int | None = None) -> list[int]:
        """Insertion points in [lo, hi] that do not split a tag."""
        hi = len(self.text) if hi is None else hi
        spans = self.tag_spans()
        return [i for i in range(lo, hi + 1) if not any(s < i < e for s, e in spans)]


@st.composite
def completions(draw, min_refines: int = 0) -> Generated:
    refine_texts = draw(st.lists(nonblank, min_size=min_refines, max_size=4))
    chunks = draw(st.lists(content, min_size=len(refine_texts) + 1, max_size=len(refine_texts) + 1))
    anchor = draw(st.integers(0, len(chunks) - 1))
    chunks[anchor] = chunks[anchor] + draw(nonblank)  # reasoning outside the refines
    assume(not TAG_RE.search(chunks[anchor]))  # "<" + "think>" would join into a tag
    before, between = draw(space), draw(space)
    eots = draw(st.lists(st.tuples(st.sampled_from(END_OF_TURN_TOKENS), space), max_size=2))
    after = draw(space) + "".join(tok + ws for tok, ws in eots)
    answer = draw(nonblank)

    inner, refines = chunks[0], []
    start = len(before) + len("<think>")
    for refine, chunk in zip(refine_texts, chunks[1:], strict=True):
        refines.append((refine.strip(), start + len(inner)))
        inner += f"<refine>{refine}</refine>{chunk}"
    return Generated(
        before=before,
        think_block=f"<think>{inner}</think>",
        between=between,
        answer_block=f"<answer>{answer}</answer>",
        after=after,
        think=inner.strip(),
        refines=refines,
        answer=answer.strip(),
    )


@PROPS
@given(completions())
def test_generated_completions_parse_back(gen: Generated):
    trace = parse(gen.text)
    assert trace.valid, (gen.text, trace.violations)
    assert trace.think == gen.think
    assert [(r.text, r.offset) for r in trace.refines] == gen.refines
    assert trace.answer == gen.answer == extract_answer(gen.text)
    content_start = len(gen.before) + len("<think>")
    content_len = len(gen.think_block) - len("<think></think>")
    for r in trace.refines:
        assert gen.text.startswith("<refine>", r.offset)
        assert r.position == pytest.approx((r.offset - content_start) / max(1, content_len))
        assert 0.0 <= r.position < 1.0
    assert [r.position for r in trace.refines] == sorted(r.position for r in trace.refines)
    assert format_reward(gen.text) == 1.0


@PROPS
@given(completions(), st.data())
def test_dropping_a_closing_tag_is_rejected(gen: Generated, data):
    text = gen.text
    closings = [m for m in TAG_RE.finditer(text) if m.group().startswith("</")]
    m = data.draw(st.sampled_from(closings))
    mutated = text[: m.start()] + text[m.end() :]
    assert not parse(mutated).valid, mutated


@PROPS
@given(completions(), st.data())
def test_duplicating_a_tag_anywhere_is_rejected(gen: Generated, data):
    tag = data.draw(st.sampled_from(TAGS))
    at = data.draw(st.sampled_from(gen.boundaries()))
    mutated = gen.text[:at] + tag + gen.text[at:]
    assert not parse(mutated).valid, mutated


@PROPS
@given(completions(), st.data())
def test_refine_outside_think_is_rejected(gen: Generated, data):
    think_start = len(gen.before)
    think_end = think_start + len(gen.think_block)
    at = data.draw(st.sampled_from(gen.boundaries(0, think_start) + gen.boundaries(think_end)))
    mutated = gen.text[:at] + "<refine>fix</refine>" + gen.text[at:]
    trace = parse(mutated)
    assert not trace.valid, mutated
    assert any("is outside <think>" in v for v in trace.violations)
    assert trace.refined


@PROPS
@given(completions(min_refines=1), st.data())
def test_nested_refine_is_rejected(gen: Generated, data):
    text = gen.text
    _, offset = data.draw(st.sampled_from(gen.refines))
    close = text.index("</refine>", offset)
    at = data.draw(st.sampled_from(gen.boundaries(offset + len("<refine>"), close)))
    mutated = text[:at] + "<refine>inner</refine>" + text[at:]
    trace = parse(mutated)
    assert not trace.valid, mutated
    assert any(v.startswith("nested <refine>") for v in trace.violations)


@PROPS
@given(completions())
def test_answer_before_think_is_rejected(gen: Generated):
    mutated = gen.before + gen.answer_block + gen.between + gen.think_block + gen.after
    trace = parse(mutated)
    assert not trace.valid
    assert trace.violations[0].startswith("tags out of order")
    assert trace.answer == gen.answer  # still extracted


@PROPS
@given(completions(), st.data())
def test_text_outside_tags_is_rejected(gen: Generated, data):
    think_end = len(gen.before) + len(gen.think_block)
    answer_start = think_end + len(gen.between)
    answer_end = answer_start + len(gen.answer_block)
    at = data.draw(st.sampled_from([0, len(gen.before), think_end, answer_start, answer_end, len(gen.text)]))
    junk = data.draw(st.sampled_from(["x", "Sure!", "The answer is", "</s", "<|im_end", "思"]))
    mutated = gen.text[:at] + junk + gen.text[at:]
    trace = parse(mutated)
    assert not trace.valid, mutated
    assert any(v.startswith("text ") for v in trace.violations)


# Independent oracle for the whole grammar: one regular expression plus the emptiness rules.
_NOTAG = r"(?:(?!</?(?:think|refine|answer)>)[\s\S])*"
_EOT = "|".join(re.escape(t) for t in END_OF_TURN_TOKENS)
_ORACLE = re.compile(
    rf"({_NOTAG})<think>((?:{_NOTAG}<refine>{_NOTAG}</refine>)*{_NOTAG})</think>({_NOTAG})"
    rf"<answer>({_NOTAG})</answer>({_NOTAG})"
)


def oracle_valid(text: str) -> bool:
    # Blank text is whitespace or invisible characters (pasr.format.is_blank; tested on its own in
    # test_format_hardening.py), not only str.isspace.
    m = _ORACLE.fullmatch(text)
    if not m:
        return False
    before, think, between, answer, after = m.groups()
    refines = re.findall(r"<refine>(.*?)</refine>", think, re.DOTALL)
    outside = re.sub(r"<refine>.*?</refine>", "", think, flags=re.DOTALL)
    outside_tags = is_blank(before) and is_blank(between) and is_blank(re.sub(_EOT, " ", after))
    return outside_tags and not is_blank(answer) and not is_blank(outside) and not any(is_blank(r) for r in refines)


FRAGMENTS = list(TAGS) + ["<", "</", ">", "think", "refine", "answer", "x", " ", "\n", "<|im_end|>", "</s>", "<|"]


@PROPS
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=20).map("".join))
def test_arbitrary_text_never_raises_and_matches_the_oracle(text: str):
    trace = parse(text)
    assert trace.valid == (not trace.violations)
    assert trace.valid == oracle_valid(text), (text, trace.violations)
    assert trace.answer == extract_answer(text)
    assert format_reward(text) == (1.0 if trace.valid else -1.0)
    for r in trace.refines:
        assert text.startswith("<refine>", r.offset)
        assert 0.0 <= r.position <= 1.0
    json.dumps(trace.to_dict())


@PROPS
@given(completions(), st.data())
def test_oracle_agrees_on_near_valid_text(gen: Generated, data):
    # Random single-fragment insertions into valid text reach the grammar's edges more often
    # than fully random text does.
    at = data.draw(st.integers(0, len(gen.text)))
    piece = data.draw(st.sampled_from(FRAGMENTS))
    text = gen.text[:at] + piece + gen.text[at:]
    assert parse(text).valid == oracle_valid(text), (text, parse(text).violations)
