"""Erroneous-step masking of the warm-up SFT (``warmup_mask_slips``, pasr.train.masking)."""

from __future__ import annotations

import logging

import datasets
import pytest
import trl
from train_helpers import tiny_config

from pasr.data import synthetic
from pasr.errors import PasrError
from pasr.models import load_model, load_tokenizer, resolve
from pasr.train.config import ModelConfig, PasrSFTConfig
from pasr.train.masking import MASK_KEY, mask_examples, sft_dataset, tokenize_with_masks

TOKENIZERS = ["smollm2-135m-instruct", "tiny-random"]


@pytest.fixture(scope="module")
def tokenizers():
    return {name: load_tokenizer(resolve(name)) for name in TOKENIZERS}


@pytest.fixture(scope="module")
def tiny_model():
    return load_model(resolve("tiny-random"))


def examples(n: int = 8, seed: int = 0) -> list[dict]:
    """Warm-up examples, every one with a span: the synthetic slip spans where present, else a word of the content."""
    records = synthetic.generate(n, seed=seed, split="train")
    rows = synthetic.warmup_examples(records, refine_share=0.75, seed=seed)
    for row in rows:
        if not row.get(MASK_KEY):
            content = row["completion"][0]["content"]
            at = content.index("starts with") + len("starts ")
            row[MASK_KEY] = [[at, at + len("with")]]
    return rows


def trl_rows(examples: list[dict], tokenizer, model, output_dir) -> list[dict]:
    """The train dataset TRL's own SFTTrainer builds from the raw examples (``input_ids``, ``labels``)."""
    config = PasrSFTConfig(output_dir=str(output_dir), use_cpu=True, report_to="none", bf16=False, max_length=None)
    raw = [{k: v for k, v in e.items() if k != MASK_KEY} for e in examples]
    trainer = trl.SFTTrainer(model=model, args=config, train_dataset=datasets.Dataset.from_list(raw),
                             processing_class=tokenizer)
    return list(trainer.train_dataset)


def labels_of(row: dict) -> list[int]:
    return [t if m else -100 for t, m in zip(row["input_ids"], row["completion_mask"], strict=True)]


@pytest.mark.parametrize("name", TOKENIZERS)
def test_ids_and_unmasked_completion_mask_are_trls(name, tokenizers, tiny_model, tmp_path):
    tokenizer = tokenizers[name]
    data = examples()
    ours = tokenize_with_masks(data, tokenizer)
    plain = tokenize_with_masks([{k: v for k, v in e.items() if k != MASK_KEY} for e in data], tokenizer)
    theirs = trl_rows(data, tokenizer, tiny_model, tmp_path)
    assert len(ours) == len(plain) == len(theirs) == len(data)
    for mine, unmasked, trl_row in zip(ours, plain, theirs, strict=True):
        assert set(mine) == {"input_ids", "completion_mask"}
        assert mine["input_ids"] == unmasked["input_ids"] == trl_row["input_ids"]
        assert labels_of(unmasked) == trl_row["labels"]  # no spans: exactly TRL's completion mask
        assert 0 < sum(mine["completion_mask"]) < sum(unmasked["completion_mask"])
        assert all(m <= u for m, u in zip(mine["completion_mask"], unmasked["completion_mask"], strict=True))


@pytest.mark.parametrize("name", TOKENIZERS)
def test_masked_tokens_cover_the_span_and_at_most_one_token_more_each_side(name, tokenizers):
    tokenizer = tokenizers[name]
    data = examples(12, seed=3)
    assert sum(e["kind"] == "refine" for e in data) >= 3
    for example in data:
        content = example["completion"][0]["content"]
        plain = tokenize_with_masks([{k: v for k, v in example.items() if k != MASK_KEY}], tokenizer)[0]
        for span in example[MASK_KEY]:
            row = tokenize_with_masks([{**example, MASK_KEY: [span]}], tokenizer)[0]
            ids, mask = row["input_ids"], row["completion_mask"]
            prompt_len = plain["completion_mask"].index(1)
            assert mask[:prompt_len] == [0] * prompt_len  # prompt tokens never carry loss
            masked = [i for i, (m, u) in enumerate(zip(mask, plain["completion_mask"], strict=True)) if u and not m]
            assert masked == list(range(masked[0], masked[-1] + 1))  # one run of tokens
            text = content[span[0]:span[1]]
            assert text in tokenizer.decode(ids[masked[0]:masked[-1] + 1])
            if len(masked) > 1:  # no wider than needed: dropping either end token loses part of the span
                assert text not in tokenizer.decode(ids[masked[0] + 1:masked[-1] + 1])
                assert text not in tokenizer.decode(ids[masked[0]:masked[-1]])


def test_a_span_touching_part_of_a_token_masks_that_token(tokenizers):
    tokenizer = tokenizers["tiny-random"]
    example = examples(1)[0]
    content = example["completion"][0]["content"]
    at = content.index("starts with") + len("st")  # inside the word "starts"
    row = tokenize_with_masks([{**example, MASK_KEY: [[at, at + 1]]}], tokenizer)[0]
    plain = tokenize_with_masks([{**example, MASK_KEY: []}], tokenizer)[0]
    gone = [i for i, (m, u) in enumerate(zip(row["completion_mask"], plain["completion_mask"], strict=True)) if u != m]
    assert len(gone) == 1 and "starts" in tokenizer.decode([row["input_ids"][gone[0]]])


@pytest.mark.parametrize("spans, needle", [
    ([[-1, 3]], "outside"), ([[0, 10_000]], "outside"), ([[5, 5]], "outside"), ([[7, 3]], "outside"),
    ([[1, 2, 3]], "pair"), ([["a", 2]], "pair"), ([[1.0, 2]], "pair"), ("0-4", "list"),
])
def test_bad_spans_are_clear_errors(spans, needle, tokenizers):
    example = {**examples(1)[0], MASK_KEY: spans}
    with pytest.raises(PasrError, match=needle) as info:
        tokenize_with_masks([example], tokenizers["tiny-random"])
    assert "example 0" in str(info.value) and MASK_KEY in str(info.value)


def test_spans_need_a_prompt_completion_example(tokenizers):
    with pytest.raises(PasrError, match="prompt-completion"):
        tokenize_with_masks([{"messages": [{"role": "user", "content": "hi"}], MASK_KEY: [[0, 1]]}],
                            tokenizers["tiny-random"])


def test_sft_dataset_off_drops_only_the_spans_and_refuses_loss_settings_that_ignore_the_mask(tokenizers, tmp_path):
    tokenizer = tokenizers["tiny-random"]
    data = examples(4)
    off = PasrSFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", bf16=False)
    args, dataset = sft_dataset(off, data, tokenizer)
    assert args is off and set(dataset.column_names) == {"prompt", "completion", "id", "kind"}
    on = PasrSFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", bf16=False, warmup_mask_slips=True)
    args, dataset = sft_dataset(on, data, tokenizer)
    assert args is not on and args.completion_only_loss is True and on.completion_only_loss is None
    assert set(dataset.column_names) == {"input_ids", "completion_mask"}
    args, dataset = sft_dataset(on, [{k: v for k, v in e.items() if k != MASK_KEY} for e in data], tokenizer)
    assert args is on and "prompt" in dataset.column_names  # nothing to mask: trained as without the option
    for field, value in (("completion_only_loss", False), ("assistant_only_loss", True)):
        bad = PasrSFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", bf16=False,
                            warmup_mask_slips=True, **{field: value})
        with pytest.raises(PasrError, match=field):
            sft_dataset(bad, data, tokenizer)


def test_mask_examples_counts(tokenizers):
    data = examples(4)
    data[0][MASK_KEY] = []
    masked = mask_examples(data, tokenizers["tiny-random"])
    assert masked.masked_examples == 3 and masked.masked_tokens >= 3
    assert masked.rows == tokenize_with_masks(data, tokenizers["tiny-random"])


# --- a real tiny `pasr sft` run -------------------------------------------------------------------


def run_tiny_sft(tmp_path, monkeypatch, *flags: str):
    """``pasr sft`` as its command runs it (parse_config, then run_sft) on tiny-random, one step; the trainer."""
    from pasr.train.command import DEFAULT_SFT_RECIPE, parse_config
    from pasr.train.sft import run_sft, sft_examples

    trainers = []

    class Spy(trl.SFTTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(trl, "SFTTrainer", Spy)
    args = ["--model_name_or_path", "tiny-random", "--output_dir", str(tmp_path / "out"), "--warmup_examples", "8",
            "--warmup_refine_share", "0.75", "--max_steps", "1", "--per_device_train_batch_size", "8",
            "--save_strategy", "no", "--logging_steps", "1", "--bf16", "false", *flags]
    config, model_config = parse_config("sft", args, DEFAULT_SFT_RECIPE)
    run_sft(config, model_config)
    (trainer,) = trainers
    return trainer, sft_examples(config)


def collated_labels(trainer) -> list[list[int]]:
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    batch = trainer.data_collator(rows)
    lengths = [len(r["input_ids"]) for r in rows]
    return [batch["labels"][i, :n].tolist() for i, n in enumerate(lengths)], rows


def test_tiny_sft_run_masks_exactly_the_span_tokens(tmp_path, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="pasr.train"):
        trainer, data = run_tiny_sft(tmp_path, monkeypatch, "--warmup_mask_slips", "true")
    assert any(e.get(MASK_KEY) for e in data), "the built-in warm-up examples carry no mask_spans"
    expected = tokenize_with_masks(data, trainer.processing_class)
    labels, rows = collated_labels(trainer)
    assert len(labels) == len(expected)
    for got, want, row in zip(labels, expected, rows, strict=True):
        assert row["input_ids"] == want["input_ids"]
        assert got == labels_of(want)  # -100 on the prompt and exactly the masked completion tokens
    n_masked = sum(e.get(MASK_KEY) is not None and len(e[MASK_KEY]) > 0 for e in data)
    lines = [r.getMessage() for r in caplog.records if "slip masking" in r.getMessage()]
    assert len(lines) == 1 and f"in {n_masked} of {len(data)} examples" in lines[0]
    assert (tmp_path / "out" / "final" / "config.json").is_file()


def test_tiny_sft_run_without_the_option_trains_as_before(tmp_path, monkeypatch, tiny_model):
    trainer, data = run_tiny_sft(tmp_path, monkeypatch)
    assert any(e.get(MASK_KEY) for e in data)
    plain = tokenize_with_masks([{k: v for k, v in e.items() if k != MASK_KEY} for e in data],
                                trainer.processing_class)
    labels, rows = collated_labels(trainer)
    theirs = trl_rows(data, trainer.processing_class, tiny_model, tmp_path / "ref")
    for got, want, row, ref in zip(labels, plain, rows, theirs, strict=True):
        assert row["input_ids"] == want["input_ids"] == ref["input_ids"]
        assert got == labels_of(want) == ref["labels"]  # only the prompt is -100


def test_the_option_passes_the_field_checks():
    from pasr.train.command import DEFAULT_SFT_RECIPE, DEFAULT_TRAIN_RECIPE, parse_config

    config, _ = parse_config("train", ["--warmup_mask_slips", "true"], DEFAULT_TRAIN_RECIPE)
    assert config.warmup_mask_slips is True
    config, _ = parse_config("sft", ["--warmup_mask_slips"], DEFAULT_SFT_RECIPE)
    assert config.warmup_mask_slips is True
    config, _ = parse_config("train", [], DEFAULT_TRAIN_RECIPE)
    assert config.warmup_mask_slips is False
    with pytest.raises(PasrError, match="warmup_mask_slips"):
        parse_config("train", ["--warmup_mask_slips", "perhaps"], DEFAULT_TRAIN_RECIPE)


def test_grpo_warmup_passes_the_option_to_its_sft(tmp_path, monkeypatch):
    import pasr.train.sft as sft

    seen = []
    monkeypatch.setattr(sft, "run_sft", lambda config, model_config, phase=None: seen.append(config) or "x")
    for value in (True, False):
        grpo = tiny_config(tmp_path / str(value), warmup_examples=8, warmup_mask_slips=value)
        sft.warmup_model("tiny-random", grpo, ModelConfig(model_name_or_path="tiny-random"))
    assert [c.warmup_mask_slips for c in seen] == [True, False]


def test_chat_example_files_keep_their_mask_spans(tmp_path):
    """`pasr data warmup` output read back by `pasr sft --dataset file` keeps the slips it marks."""
    import json

    from pasr.train.sft import read_chat_examples

    prompt = [{"role": "user", "content": "What is 2 + 2?"}]
    completion = [{"role": "assistant", "content": "<think>2 + 2 = 5. <refine>No: 4.</refine></think><answer>4</answer>"}]
    path = tmp_path / "warmup.jsonl"
    path.write_text(json.dumps({"prompt": prompt, "completion": completion, "mask_spans": [[15, 16]]}) + "\n"
                    + json.dumps({"prompt": prompt, "completion": completion}) + "\n")
    first, second = read_chat_examples(str(path))
    assert first["mask_spans"] == [[15, 16]] and "mask_spans" not in second
    assert completion[0]["content"][15:16] == "5"
