"""Backends: OpenAI-compatible (against the fake HTTP server) and transformers (on the tiny random model)."""

from __future__ import annotations

import json
import sys
from io import StringIO

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from rich.console import Console

from pasr.errors import PasrError
from pasr.eval.runner import EvalSettings, run_eval
from pasr.generation.backends import OpenAIBackend, TransformersBackend, make_backend


def conv(text: str) -> list[dict]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    monkeypatch.delenv("PASR_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_openai_backend_texts_tokens_order_and_concurrency():
    def responder(request):
        n = int(request.user_text.split()[-1])
        return Reply(content=f" answer {n} ", completion_tokens=n + 1, delay=0.05)

    with FakeOpenAIServer(responder, models=["served"]) as server:
        backend = OpenAIBackend(server.base_url, "served", concurrency=3, retries=0)
        out = backend.generate([conv(f"item {i}") for i in range(9)], max_tokens=17, temperature=0.0)
        assert out == [(f"answer {i}", i + 1) for i in range(9)]  # order kept, tokens from usage
        assert server.max_in_flight <= 3
        body = server.chat_requests[0].body
        assert body["model"] == "served" and body["max_tokens"] == 17 and body["temperature"] == 0.0
        assert body["messages"] == conv("item " + server.chat_requests[0].user_text.split()[-1])


def test_openai_backend_without_usage_counts_zero():
    with FakeOpenAIServer(lambda r: Reply(content="hi", usage=False)) as server:
        backend = OpenAIBackend(server.base_url, "fake-model", retries=0)
        assert backend.generate([conv("x")], 5) == [("hi", 0)]
        assert backend.missing_usage == 1


def test_openai_backend_failure_keeps_finished_examples(tmp_path):
    from pasr.data.benchmarks import load_benchmark

    recs = load_benchmark("synthetic", limit=4)
    refs = {r.question: r.reference for r in recs}

    def responder(request):
        question = request.user_text.split("\n\n")[0]
        if request.index >= 2:
            return Reply(status=500)
        return f"<think>sum</think><answer>{refs[question]}</answer>"

    with FakeOpenAIServer(responder) as server:
        backend = OpenAIBackend(server.base_url, "fake-model", concurrency=1, retries=0, chunk_size=2)
        s = EvalSettings(model="fake-model", benchmarks=["synthetic"], methods=["vanilla"], output=tmp_path / "run",
                         limit=4, backend="openai", base_url=server.base_url, max_tokens=16)
        with pytest.raises(PasrError, match="openai backend failed after 2 of 4 examples.*rerun the same command"):
            run_eval(s, backend=backend, console=Console(file=StringIO()))
    lines = (tmp_path / "run" / "synthetic" / "vanilla.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x)["score"] == 1.0 for x in lines)


def test_make_backend_errors():
    with pytest.raises(PasrError, match="--base-url"):
        make_backend("openai", "m")
    with pytest.raises(PasrError, match="known backends"):
        make_backend("tgi", "m")


def test_vllm_missing_gives_clear_error():
    try:  # vllm is a GPU extra; where it is installed this test does not apply
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(PasrError, match="pip install 'pasr\\[vllm\\]'"):
            make_backend("vllm", "m")
    else:
        pytest.skip("vllm is installed")


@pytest.fixture(scope="module")
def tiny():
    from pasr.models import load_model, load_tokenizer, resolve

    path = resolve("tiny-random")
    return path, load_model(path), load_tokenizer(path)


def prompts(n: int) -> list[list[dict]]:
    return [conv("word " * (1 + 3 * i) + f"question {i}") for i in range(n)]


def test_transformers_loop_matches_generate(tiny):
    """Continuous batching (rows leave and join the batch) gives exactly model.generate's greedy outputs."""
    path, model, tok = tiny
    backend = TransformersBackend(path, batch_size=3, dtype="float32", model_obj=model, tokenizer=tok)
    assert backend.engine == "loop"
    convs = prompts(7)
    looped = backend.generate(convs, max_tokens=12)
    backend.engine = "generate"
    reference = backend.generate(convs, max_tokens=12)
    assert looped == reference
    assert all(0 < n <= 12 for _, n in looped)
    one = TransformersBackend(path, batch_size=1, dtype="float32", model_obj=model, tokenizer=tok)
    assert one.generate(convs, max_tokens=12) == looped  # batching and padding do not change the outputs


def test_bf16_weights_on_cpu_decode_with_eager_attention(tiny):
    """The fast CPU path (bench/bench_cpu_decode.py): bf16 weights switch SDPA to eager attention."""
    import copy

    import torch

    path, model, tok = tiny
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    assert bf16.config._attn_implementation != "eager"
    backend = TransformersBackend(path, batch_size=3, dtype="bfloat16", device="cpu", model_obj=bf16, tokenizer=tok)
    assert backend.model.config._attn_implementation == "eager" and not backend.autocast
    first = backend.generate(prompts(4), max_tokens=8)
    assert first == backend.generate(prompts(4), max_tokens=8) and all(0 < n <= 8 for _, n in first)
    fp32 = TransformersBackend(path, batch_size=3, dtype="float32", device="cpu", model_obj=model, tokenizer=tok)
    assert fp32.model.config._attn_implementation != "eager"  # fp32 keeps the model's own attention


def test_transformers_stops_rows_at_eos(tiny):
    path, model, tok = tiny
    backend = TransformersBackend(path, batch_size=4, dtype="float32", model_obj=model, tokenizer=tok)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    assert eos in backend.stop_ids
    first = backend.generate(prompts(2), max_tokens=6)
    # make the model say <|im_end|> at once for any input: each row stops after one token, text empty
    import torch

    with torch.no_grad():
        bias = torch.zeros(model.config.vocab_size)
        bias[eos] = 1e4
        original = model.lm_head.forward
        model.lm_head.forward = lambda x: original(x) + bias.to(x.dtype)
        try:
            stopped = backend.generate(prompts(3), max_tokens=6)
        finally:
            model.lm_head.forward = original
    assert stopped == [("", 1)] * 3
    assert backend.generate(prompts(2), max_tokens=6) == first


def test_transformers_sampling_is_seeded(tiny):
    path, model, tok = tiny
    a = TransformersBackend(path, batch_size=2, seed=5, dtype="float32", model_obj=model, tokenizer=tok)
    b = TransformersBackend(path, batch_size=2, seed=5, dtype="float32", model_obj=model, tokenizer=tok)
    assert a.generate(prompts(3), 8, temperature=1.0) == b.generate(prompts(3), 8, temperature=1.0)
    assert a.generate(prompts(3), 8, temperature=1.0) != a.generate(prompts(3), 8, temperature=0.0)


# --- sampling seeds: copies of one prompt sample apart, on every backend ---------------------------------


def test_request_seeds_differ_per_request_and_per_call():
    from pasr.generation.backends import request_seeds

    first, second = request_seeds(7, 0, 4), request_seeds(7, 1, 4)
    assert len(set(first + second)) == 8 and first == request_seeds(7, 0, 4)
    assert all(0 <= s < 2**31 for s in request_seeds(2**31 - 1, 5, 3))


def test_openai_backend_sends_each_copy_its_own_seed():
    """Best-of-N sends N copies of a conversation: one shared seed would make a seeded server reply N times alike."""
    with FakeOpenAIServer(lambda r: "x") as server:
        backend = OpenAIBackend(server.base_url, "fake-model", concurrency=2, retries=0, seed=3)
        backend.generate([conv("same")] * 4, 5, temperature=0.8)
        backend.generate([conv("same")] * 4, 5, temperature=0.8)
        seeds = [r.body["seed"] for r in server.chat_requests]
        assert len(seeds) == 8 and len(set(seeds)) == 8
    with FakeOpenAIServer(lambda r: "x") as server:
        OpenAIBackend(server.base_url, "fake-model", retries=0, seed=None).generate([conv("a")] * 2, 5, 0.8)
        assert all("seed" not in r.body for r in server.chat_requests)


def test_vllm_backend_gives_each_sampled_request_its_own_seed(monkeypatch):
    """vLLM seeds per request: one seeded SamplingParams shared by a batch samples every copy of a prompt alike."""
    import types

    from pasr.generation import backends

    class Params:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    calls = []

    class LLM:
        def chat(self, messages, params, use_tqdm=False):
            calls.append(params)
            out = types.SimpleNamespace(text="t", token_ids=[1])
            return [types.SimpleNamespace(outputs=[out]) for _ in messages]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=Params))
    backend = backends.VLLMBackend.__new__(backends.VLLMBackend)
    backend.llm, backend.seed, backend.calls, backend.chunk_size = LLM(), 11, 0, 256
    backend.generate([conv("same")] * 3, 5, temperature=0.7)
    backend.generate([conv("same")] * 3, 5, temperature=0.7)
    backend.generate([conv("same")] * 3, 5, temperature=0.0)
    sampled = [p.seed for call in calls[:2] for p in call]
    assert len(sampled) == 6 and len(set(sampled)) == 6
    assert not isinstance(calls[2], list) and calls[2].temperature == 0.0  # greedy: one params object


def test_transformers_copies_of_a_prompt_sample_apart_and_calls_draw_new_noise(tiny):
    path, model, tok = tiny
    backend = TransformersBackend(path, batch_size=4, seed=5, dtype="float32", model_obj=model, tokenizer=tok)
    same = prompts(1) * 4
    first = backend.generate(same, 8, temperature=1.0)
    assert len({text for text, _ in first}) > 1  # four samples of one prompt in one call differ
    assert backend.generate(same, 8, temperature=1.0) != first  # a later call draws new noise


SYSTEM = "You are a careful assistant. Think step by step, check your work, then answer in one line. " * 2


def shared_prompts(n: int) -> list[list[dict]]:
    return [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "word " * (1 + 3 * i) + f"q {i}"}]
            for i in range(n)]


def test_prefix_cache_encodes_the_shared_opening_once_and_changes_no_output(tiny):
    """The system prompt's KV cache is computed once and copied into every row ([prefix][pad][own tokens]);
    greedy and sampled outputs equal the uncached path's, and the last logits agree to fp32 rounding."""
    import torch

    from pasr.generation.backends import MIN_SHARED_PREFIX

    path, model, tok = tiny
    cached = TransformersBackend(path, batch_size=3, seed=2, dtype="float32", model_obj=model, tokenizer=tok)
    plain = TransformersBackend(path, batch_size=3, seed=2, dtype="float32", model_obj=model, tokenizer=tok,
                                prefix_cache=False)
    convs = shared_prompts(7)
    encoded = [cached.encode(c) for c in convs]
    prefix = cached._shared_prefix(encoded)
    length = prefix[0][0].shape[-2]
    assert length >= MIN_SHARED_PREFIX and len(prefix) == model.config.num_hidden_layers
    assert all(p[:length] == encoded[0][:length] for p in encoded)
    assert encoded[0][length] != encoded[1][length]  # the longest shared prefix, no further
    assert plain._shared_prefix(encoded) is None
    calls = []
    original = model.forward
    model.forward = lambda *a, **k: calls.append(k["input_ids"].shape) or original(*a, **k)
    try:
        outputs = cached.generate(convs, max_tokens=10)
    finally:
        model.forward = original
    assert outputs == plain.generate(convs, max_tokens=10)
    prefills = [shape for shape in calls if shape[1] > 1]  # one prefix pass, then prefills of own tokens only
    assert prefills[0] == (1, length)
    own = sum(rows * width for rows, width in prefills[1:])
    assert own < sum(len(p) for p in encoded) - 6 * length  # the prefix ran once, not in 7 rows
    assert cached.generate(convs, 10, temperature=1.0) == plain.generate(convs, 10, temperature=1.0)
    with torch.inference_mode():
        _, mask, positions, logits = cached._prefill(encoded[:3], prefix)
        _, plain_mask, plain_positions, plain_logits = plain._prefill(encoded[:3])
    assert torch.equal(positions, plain_positions) and torch.equal(mask.sum(1), plain_mask.sum(1))
    assert torch.allclose(logits, plain_logits, atol=1e-4)


def test_prefix_cache_leaves_every_row_a_token_and_skips_short_or_lone_prompts(tiny):
    path, model, tok = tiny
    backend = TransformersBackend(path, batch_size=2, dtype="float32", model_obj=model, tokenizer=tok)
    plain = TransformersBackend(path, batch_size=2, dtype="float32", model_obj=model, tokenizer=tok,
                                prefix_cache=False)
    same = shared_prompts(1) * 3  # identical prompts: the prefix stops one token short of the end
    encoded = [backend.encode(c) for c in same]
    assert backend._shared_prefix(encoded)[0][0].shape[-2] == len(encoded[0]) - 1
    assert backend.generate(same, max_tokens=6) == plain.generate(same, max_tokens=6)
    assert backend._shared_prefix(encoded[:1]) is None  # one prompt: nothing to share
    assert backend._shared_prefix([backend.encode(c) for c in prompts(3)]) is None  # "be brief": under 16 shared


def test_grouped_sdpa_equals_transformers_sdpa_under_a_padding_mask():
    """pasr.generation.attention: SDPA with enable_gqa under a mask gives bitwise transformers' repeat_kv result;
    calls it does not speed up go to transformers' own function."""
    import types

    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from pasr.generation.attention import grouped_sdpa_forward

    torch.manual_seed(0)
    module = types.SimpleNamespace(num_key_value_groups=3, is_causal=True)
    query, key, value = torch.randn(4, 9, 1, 64), torch.randn(4, 3, 50, 64), torch.randn(4, 3, 50, 64)
    mask = torch.ones(4, 1, 1, 50, dtype=torch.bool)
    mask[1:, :, :, :7] = False  # left padding in three rows
    additive = torch.zeros(4, 1, 1, 50).masked_fill(~mask, torch.finfo(torch.float32).min)
    for m in (mask, additive):
        ours, _ = grouped_sdpa_forward(module, query, key, value, m, scaling=0.125)
        theirs, _ = sdpa_attention_forward(module, query, key, value, m, scaling=0.125)
        assert ours.shape == (4, 1, 9, 64) and torch.equal(ours, theirs)
    prefill = torch.randn(4, 9, 50, 64)  # no mask: transformers' causal path, unchanged
    assert torch.equal(grouped_sdpa_forward(module, prefill, key, value, None)[0],
                       sdpa_attention_forward(module, prefill, key, value, None)[0])


def test_cpu_backend_decodes_with_grouped_sdpa_and_the_same_logits(tiny):
    import copy

    import torch

    from pasr.generation.attention import NAME, use_grouped_sdpa

    path, model, tok = tiny
    reference = copy.deepcopy(model)
    reference.set_attn_implementation("sdpa")
    backend = TransformersBackend(path, batch_size=3, dtype="float32", device="cpu",
                                  model_obj=copy.deepcopy(reference), tokenizer=tok, prefix_cache=False)
    assert backend.model.config._attn_implementation == NAME
    plain = TransformersBackend(path, batch_size=3, dtype="float32", device="cpu", model_obj=reference,
                                tokenizer=tok, prefix_cache=False)
    plain.model.set_attn_implementation("sdpa")
    encoded = [backend.encode(c) for c in shared_prompts(3)]
    with torch.inference_mode():
        logits = backend._prefill(encoded)[3]
        plain_logits = plain._prefill(encoded)[3]
    assert plain.model.config._attn_implementation == "sdpa" and torch.equal(logits, plain_logits)
    assert backend.generate(shared_prompts(5), 8) == plain.generate(shared_prompts(5), 8)
    eager = copy.deepcopy(reference)
    eager.set_attn_implementation("eager")
    assert not use_grouped_sdpa(eager) and eager.config._attn_implementation == "eager"
