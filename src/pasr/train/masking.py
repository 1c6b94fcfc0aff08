"""Erroneous-step masking for the warm-up SFT: the planted slip a ``<refine>`` fixes carries no loss.

A refine warm-up example shows a slip (a wrong number in the reasoning) and then a ``<refine>`` that
fixes it. Trained as is, the model also learns to make the slip. S^3c-Math and ISC leave the erroneous
step out of the loss, so the warm-up teaches the check and the fix only; ``warmup_mask_slips`` does
the same here.

An example marks the text to leave out with ``"mask_spans": [[start, end], ...]``: character offsets
(end exclusive) into ``completion[0]["content"]``. :func:`tokenize_with_masks` tokenizes each
conversational prompt-completion example exactly as TRL's ``SFTTrainer`` does (the same
``apply_chat_template`` calls, the completion starting where the tokenized prompt and prompt+completion
diverge) and clears ``completion_mask`` on every completion token that overlaps a span, using the fast
tokenizer's character offsets into the rendered conversation. The result is a pre-tokenized dataset
(``input_ids``, ``completion_mask``) that TRL takes as it is: with completion-only loss it turns
``completion_mask == 0`` into label -100.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from typing import Any

from pasr.errors import PasrError
from pasr.train.trl_adapter import common_prefix_length

logger = logging.getLogger("pasr.train")

#: The example key holding the character spans of the completion that carry no loss.
MASK_KEY = "mask_spans"


@dataclass(frozen=True)
class Masked:
    """Pre-tokenized rows plus how much :func:`mask_examples` took out of the loss."""

    rows: list[dict]
    masked_tokens: int
    masked_examples: int


def _spans(example: dict, content_length: int, where: str) -> list[tuple[int, int]]:
    spans = example.get(MASK_KEY) or []
    if not isinstance(spans, (list, tuple)):
        raise PasrError(f"{where}: {MASK_KEY} must be a list of [start, end] pairs, got {spans!r}")
    checked = []
    for span in spans:
        if not (isinstance(span, (list, tuple)) and len(span) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in span)):
            raise PasrError(f"{where}: each {MASK_KEY} entry must be a [start, end] pair of integers, got {span!r}")
        start, end = span
        if not 0 <= start < end <= content_length:
            raise PasrError(
                f"{where}: {MASK_KEY} entry [{start}, {end}] is outside the completion's content "
                f"(needs 0 <= start < end <= {content_length}, end exclusive)"
            )
        checked.append((start, end))
    return checked


def _tokenize_one(example: dict, tokenizer: Any, chat_template: str | None, where: str) -> tuple[list, list, int]:
    """``(input_ids, completion_mask, masked)`` for one example; ``masked`` counts completion tokens taken out."""
    prompt, completion = example.get("prompt"), example.get("completion")
    if not (isinstance(prompt, list) and isinstance(completion, list) and prompt and completion
            and all(isinstance(m, dict) and "role" in m and "content" in m for m in prompt + completion)):
        raise PasrError(f"{where}: slip masking needs a conversational prompt-completion example "
                        "(prompt and completion as lists of chat messages)")
    # TRL's tokenize_fn (trl/trainer/sft_trainer.py, _prepare_dataset): the same keyword arguments (declared in
    # pasr.train.trl_adapter.TRL_PRIVATE_API, so a change there fails its contract test).
    tools = example.get("tools")
    tools = json.loads(tools) if isinstance(tools, str) else tools
    kwargs = {"chat_template": chat_template, "tools": tools, **(example.get("chat_template_kwargs") or {})}
    conversation = prompt + completion
    prompt_ids = tokenizer.apply_chat_template(prompt, tokenize=True, return_dict=True, add_generation_prompt=True,
                                               **kwargs)["input_ids"]
    spans = []
    if example.get(MASK_KEY):
        content = completion[0]["content"]
        if not isinstance(content, str):
            raise PasrError(f"{where}: {MASK_KEY} needs the completion's content to be text")
        spans = _spans(example, len(content), where)
        if len(completion) != 1:
            raise PasrError(f"{where}: {MASK_KEY} needs a completion of one message, got {len(completion)}")
    if not spans:
        ids = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True, **kwargs)["input_ids"]
        prompt_len = common_prefix_length(prompt_ids, ids)
        return list(ids), [0] * prompt_len + [1] * (len(ids) - prompt_len), 0

    if not getattr(tokenizer, "is_fast", False):
        raise PasrError("slip masking needs a fast tokenizer (character offsets); this one is not")
    # One render, tokenized as TRL tokenizes it, with the character offset of each token.
    encoded = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True,
                                            tokenizer_kwargs={"return_offsets_mapping": True}, **kwargs)
    ids, offsets = list(encoded["input_ids"]), encoded["offset_mapping"]
    text = tokenizer.apply_chat_template(conversation, tokenize=False, **kwargs)
    base = text.rfind(content)
    if base < 0:
        raise PasrError(f"{where}: the chat template changes the completion's text, so {MASK_KEY} cannot be "
                        "placed in the rendered conversation")
    prompt_len = common_prefix_length(prompt_ids, ids)
    mask = [0] * prompt_len + [1] * (len(ids) - prompt_len)
    masked = 0
    for start, end in spans:
        lo, hi = base + start, base + end
        for index, (tok_start, tok_end) in enumerate(offsets):
            # A token overlapping the span at all is masked; an empty range counts where it sits.
            overlaps = tok_start < hi and tok_end > lo if tok_end > tok_start else lo <= tok_start < hi
            if overlaps and mask[index]:
                mask[index] = 0
                masked += 1
    return ids, mask, masked


def mask_examples(examples: list[dict], tokenizer: Any, *, chat_template: str | None = None) -> Masked:
    """Each example tokenized as TRL's ``SFTTrainer`` does, with its ``mask_spans`` out of ``completion_mask``.

    ``chat_template``: the one TRL passes (``None`` unless ``assistant_only_loss`` swaps in a training template).
    """
    rows, masked_tokens, masked_examples = [], 0, 0
    for index, example in enumerate(examples):
        where = f"example {index}" + (f" ({example['id']})" if example.get("id") is not None else "")
        ids, mask, masked = _tokenize_one(example, tokenizer, chat_template, where)
        rows.append({"input_ids": ids, "completion_mask": mask})
        masked_tokens += masked
        masked_examples += masked > 0
    return Masked(rows, masked_tokens, masked_examples)


def tokenize_with_masks(examples: list[dict], tokenizer: Any) -> list[dict]:
    """Per example ``{"input_ids", "completion_mask"}``: the ids TRL's ``SFTTrainer`` would build, and a mask that is
    1 on completion tokens that carry loss, 0 on prompt tokens and on completion tokens overlapping a ``mask_spans``
    entry (character offsets, end exclusive, into ``completion[0]["content"]``; a token partly inside is masked).

    Raises :class:`PasrError` for a span outside the content or an example that is not a conversational
    prompt-completion one.
    """
    return mask_examples(examples, tokenizer).rows


def has_mask_spans(examples: list[dict]) -> bool:
    """Whether some example carries a non-empty ``mask_spans``."""
    return any(example.get(MASK_KEY) for example in examples)


def sft_dataset(config: Any, examples: list[dict], tokenizer: Any) -> tuple[Any, Any]:
    """``(args, train_dataset)`` for TRL's ``SFTTrainer``.

    With ``config.warmup_mask_slips`` and some example carrying ``mask_spans``: a pre-tokenized dataset from
    :func:`mask_examples`, and a copy of ``config`` with ``completion_only_loss=True`` (what TRL infers for
    prompt-completion examples, but not for a pre-tokenized dataset). Otherwise the examples as they are, less
    ``mask_spans``; their other keys (``id``, ``kind``) pass through and TRL's unused-column removal drops them.
    """
    import datasets

    plain = [{k: v for k, v in example.items() if k != MASK_KEY} for example in examples]
    if not (getattr(config, "warmup_mask_slips", False) and has_mask_spans(examples)):
        return config, datasets.Dataset.from_list(plain)
    for name, problem in (("completion_only_loss", config.completion_only_loss is False),
                          ("assistant_only_loss", bool(config.assistant_only_loss)),
                          ("chat_template_path", config.chat_template_path is not None)):
        if problem:
            raise PasrError(f"warmup_mask_slips does not combine with {name}={getattr(config, name)!r}: it masks "
                            "through TRL's completion mask of the prompt-completion examples")
    if config.eos_token is not None and config.eos_token in tokenizer.get_vocab():
        tokenizer.eos_token = config.eos_token  # as SFTTrainer sets it before tokenizing (templates may use it)
    # The rows TRL would read (through Arrow and back: a message gains the keys any other message has).
    rows = [{**row, MASK_KEY: example.get(MASK_KEY)} for row, example in zip(datasets.Dataset.from_list(plain), examples)]
    masked = mask_examples(rows, tokenizer)
    logger.info("warm-up slip masking: %d completion tokens left out of the loss in %d of %d examples",
                masked.masked_tokens, masked.masked_examples, len(examples))
    args = copy.copy(config)
    args.completion_only_loss = True
    return args, datasets.Dataset.from_list(masked.rows)


__all__ = ["MASK_KEY", "Masked", "has_mask_spans", "mask_examples", "sft_dataset", "tokenize_with_masks"]
