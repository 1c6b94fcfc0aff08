"""Backends: OpenAI-compatible (against the fake HTTP server) and transformers (on the tiny random model)."""

from __future__ import annotations

import json
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
