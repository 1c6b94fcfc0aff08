"""SDPA attention that keeps grouped-query heads grouped under a padding mask (decoding and training on a CPU).

transformers' ``"sdpa"`` attention passes ``enable_gqa=True`` to torch's SDPA only when no attention mask is
given (``transformers.integrations.sdpa_attention.use_gqa_in_sdpa``: on CUDA a mask sends SDPA to its math
kernel, which cannot group heads). With a mask it first copies every layer's keys and values
``num_key_value_groups`` times (``repeat_kv``). :class:`pasr.generation.backends.TransformersBackend` batches
rows of different lengths, so it always passes a padding mask, and each decode step copied the whole KV cache
once per layer: for the built-in model (9 query heads over 3 KV heads, 30 layers) 42% of a CPU decode step at
batch 12 over a 300-token cache. GRPO's rollouts (TRL's ``generate``) decode under a padding mask too. On a
CPU, torch's SDPA takes ``enable_gqa=True`` together with a mask and gives bitwise the same output at a quarter
of the time (0.54 against 2.02 ms a layer there).

:func:`use_grouped_sdpa` switches a model from ``"sdpa"`` to this function (the eval backend, the GRPO and SFT
trainers, each on a CPU only), registered through transformers' own extension points (``AttentionInterface``
and ``AttentionMaskInterface``; its masks are ``"sdpa"``'s). Every call it does not speed up (no mask, a
position bias, head sizes SDPA cannot group) goes to transformers' ``sdpa_attention_forward`` unchanged.
"""

from __future__ import annotations

from typing import Any

NAME = "pasr_grouped_sdpa"
"""The attention implementation's registered name (``model.config._attn_implementation`` once switched)."""


def grouped_sdpa_forward(module: Any, query, key, value, attention_mask, dropout: float = 0.0,
                         scaling: float | None = None, is_causal: bool | None = None, **kwargs: Any):
    """transformers' attention-function signature: query ``[batch, heads, q_len, head_dim]``, key and value
    ``[batch, kv_heads, kv_len, head_dim]``, a boolean or additive ``attention_mask`` ``[batch, 1, q_len,
    kv_len]``; returns (``[batch, q_len, heads, head_dim]``, None)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    grouped = query.shape[1] != key.shape[1] and key.shape[-1] == value.shape[-1] <= 256
    if attention_mask is None or kwargs.get("position_bias") is not None or not grouped:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    # With a mask, transformers' sdpa_attention_forward also runs SDPA non-causal on the mask as given.
    output = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, enable_gqa=True
    )
    return output.transpose(1, 2).contiguous(), None


def use_grouped_sdpa(model: Any) -> bool:
    """Switch ``model`` (a transformers model on a CPU, or a peft model around one) from ``"sdpa"`` to
    :data:`NAME`; False (unchanged) for any other attention implementation. Training on it gives the same loss
    and gradients (bitwise on the tiny model) and a forward + backward no slower (built-in model, batch 8 x 160
    tokens with padding: 14.5-15.8 s against 15.0-18.8 s at one thread)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(NAME, grouped_sdpa_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return True
