"""Progress of `pasr eval` per finished example, with tokens/s (issue 16, point A).

Backends report rows as they finish (transformers: each decode step, both engines; OpenAI: each request;
vLLM: each finished request through its progress-bar hook), the hook never changes what is generated,
methods say which turn runs and when examples end, and the runner's bar moves per example while results
are still written per chunk.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Callable
from io import StringIO

import pytest
from fake_openai_server import FakeOpenAIServer, Reply
from rich.console import Console
from rich.progress import Progress
from test_eval_fakes import ScriptedBackend, answer, question_of, records
from tqdm import tqdm

from pasr.eval.methods import ChainConfig, run_method, takes_progress
from pasr.eval.progress import ChainProgress, MethodProgress, TokenRateColumn
from pasr.generation.backends import (
    OpenAIBackend,
    RowFinishWatcher,
    TransformersBackend,
    VLLMBackend,
)


class Calls:
    """An ``on_progress`` that records its calls (and, optionally, whether ``generate`` had returned yet)."""

    def __init__(self):
        self.calls: list[tuple[int, int]] = []
        self.returned = False
        self.before_return = 0

    def __call__(self, finished: int, tokens: int) -> None:
        self.calls.append((finished, tokens))
        if not self.returned:
            self.before_return += finished

    @property
    def finished(self) -> int:
        return sum(f for f, _ in self.calls)

    @property
    def tokens(self) -> int:
        return sum(t for _, t in self.calls)


def conv(text: str) -> list[dict]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def prompts(n: int) -> list[list[dict]]:
    return [conv("word " * (1 + 3 * i) + f"question {i}") for i in range(n)]


# --- transformers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    from pasr.models import load_model, load_tokenizer, resolve

    path = resolve("tiny-random")
    return path, load_model(path), load_tokenizer(path)


@pytest.fixture
def eos_at_steps(tiny):
    """Make row r of a ``model.generate`` batch say <|im_end|> at decode step ``steps[r]`` (rows end apart)."""
    import torch

    _, model, tok = tiny
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    original = model.lm_head.forward
    state = {"steps": {}, "calls": 0}

    def forward(hidden):
        logits = original(hidden)
        step = state["calls"]
        state["calls"] += 1
        for row, at in state["steps"].items():
            if step == at and row < logits.shape[0]:
                bias = torch.zeros(logits.shape[-1], dtype=logits.dtype)
                bias[eos] = 1e4
                logits[row, -1] = logits[row, -1] + bias
        return logits

    def arm(steps: dict[int, int]):
        state["steps"], state["calls"] = steps, 0

    model.lm_head.forward = forward
    yield arm
    model.lm_head.forward = original


@pytest.mark.parametrize("engine", ["loop", "generate"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_transformers_progress_hook_changes_no_output(tiny, engine, temperature):
    path, model, tok = tiny
    backend = TransformersBackend(path, batch_size=3, seed=3, dtype="float32", model_obj=model, tokenizer=tok)
    backend.engine = engine
    convs = prompts(7)
    plain = backend.generate(convs, max_tokens=10, temperature=temperature)
    calls = Calls()
    backend.calls = 0  # the same call of the same seed: each call draws new noise (request_seeds)
    watched = backend.generate(convs, max_tokens=10, temperature=temperature, on_progress=calls)
    assert watched == plain
    assert calls.finished == 7 and calls.tokens == sum(n for _, n in plain)
    # the rows of the first batch finish before the last batch starts: reports come during the call
    assert len([c for c in calls.calls if c[0]]) >= 3


@pytest.mark.parametrize("engine", ["loop", "generate"])
def test_transformers_reports_each_row_when_it_finishes(tiny, eos_at_steps, engine):
    """One batch of three rows that stop at different steps: three separate finish reports, in step order."""
    path, model, tok = tiny
    backend = TransformersBackend(path, batch_size=3, dtype="float32", model_obj=model, tokenizer=tok)
    backend.engine = engine
    convs = prompts(3)
    eos_at_steps({0: 2, 1: 5})  # forward call 0 is the prefill: row 0 stops at its 2nd token, row 1 at its 5th
    plain = backend.generate(convs, max_tokens=8)
    eos_at_steps({0: 2, 1: 5})
    calls = Calls()
    watched = backend.generate(convs, max_tokens=8, on_progress=calls)
    assert watched == plain
    assert sorted(n for _, n in watched) == [3, 6, 8]  # rows really ended apart (counts include the stop token)
    finishes = [(i, f) for i, (f, _) in enumerate(calls.calls) if f]
    assert [f for _, f in finishes] == [1, 1, 1], calls.calls
    assert calls.tokens == 3 + 6 + 8
    # tokens per report: one per row still running at that step
    assert [t for _, t in calls.calls][:3] == [3, 3, 3]


def test_row_finish_watcher_stops_nothing():
    import torch

    calls = Calls()
    watch = RowFinishWatcher(rows=3, prompt_width=2, max_tokens=4, stop_ids={9}, on_progress=calls)
    seq = torch.tensor([[1, 1], [1, 1], [1, 1]])
    for step_tokens in ([5, 9, 5], [5, 0, 9], [5, 0, 0], [7, 0, 0]):  # row 1 stops, then row 2, row 0 hits max
        seq = torch.cat([seq, torch.tensor(step_tokens)[:, None]], dim=1)
        assert not watch(seq, None).any()
    watch.finish()
    # step 1: row 1 stops; step 2: row 2 stops; step 3: row 0 alone; step 4: row 0 reaches max_tokens.
    # The pads after a stop count for nothing: tokens 1 + 2 + 4 = 7, as the backend counts them.
    assert calls.calls == [(1, 3), (1, 2), (0, 1), (1, 1)]


# --- OpenAI-compatible server -------------------------------------------------------------------


def test_openai_reports_each_request_as_it_completes():
    def responder(request):
        n = int(request.user_text.split()[-1])
        return Reply(content=f"answer {n}", completion_tokens=n + 1, delay=0.05 * n)

    with FakeOpenAIServer(responder, models=["served"]) as server:
        backend = OpenAIBackend(server.base_url, "served", concurrency=5, retries=0)
        calls = Calls()
        out = backend.generate([conv(f"item {i}") for i in range(5)], max_tokens=9, on_progress=calls)
        calls.returned = True
    assert out == [(f"answer {i}", i + 1) for i in range(5)]
    assert calls.calls == [(1, i + 1) for i in range(5)]  # completion order: the quick ones first
    assert calls.before_return == 5


def test_openai_check_names_the_served_models():
    from pasr.errors import PasrError

    def strict(request):  # vllm serve: an unknown model name is a 404
        if request.body.get("model") not in ("a", "b"):
            return Reply(status=404, error_message="The model does not exist.")
        return "x"

    with FakeOpenAIServer(strict, models=["a", "b"]) as server:
        OpenAIBackend(server.base_url, "b", retries=0).check()
        assert server.count == 0  # a listed name needs no request
        with pytest.raises(PasrError, match="'c' is not served.*a, b"):
            OpenAIBackend(server.base_url, "c", retries=0).check()
    with FakeOpenAIServer(lambda r: "x", models=["model.gguf"]) as server:  # llama.cpp: any name is served
        OpenAIBackend(server.base_url, "whatever", retries=0).check()
        assert server.count == 1  # the one-token probe


# --- vLLM (a stand-in engine: vLLM needs a GPU) ---------------------------------------------------


class _Output:
    def __init__(self, text, ids, prompt):
        self.outputs = [types.SimpleNamespace(text=text, token_ids=ids)]
        self.prompt_token_ids = prompt
        self.finished = True


def fake_vllm(monkeypatch, *, factory: bool):
    """A ``vllm`` module whose ``LLM.chat`` runs like vLLM's ``_run_engine``: requests finish one by one,
    the bar gets ``postfix`` (speeds from ``format_dict['elapsed']``) then ``update(n)``."""
    seen: dict[str, object] = {}

    class LLM:
        def __init__(self, model, seed=0, dtype="auto", **kwargs):
            self.model = model

        def _chat(self, messages, params, use_tqdm=True):
            outs = [_Output(f"reply {i}", list(range(i + 2)), [0] * 5) for i in range(len(messages))]
            if not use_tqdm:
                return outs
            make = use_tqdm if callable(use_tqdm) else tqdm
            for _ in make(messages, desc="Adding requests"):
                pass
            bar = make(total=len(messages), desc="Processed prompts", dynamic_ncols=True,
                       postfix=f"est. speed input: {0:.2f} toks/s, output: {0:.2f} toks/s")
            seen["bar"] = bar
            total_out = 0
            for o in outs:
                total_out += sum(len(s.token_ids) for s in o.outputs)
                bar.postfix = f"est. speed input: 1.00 toks/s, output: {total_out / bar.format_dict['elapsed']:.2f} toks/s"
                bar.update(len(o.outputs))
                seen.setdefault("updates", []).append(len(o.outputs))
            bar.close()
            return outs

        def chat(self, messages, sampling_params=None, use_tqdm: bool = True):  # as in vLLM 0.9: bool, passed on
            return self._run_engine(messages, sampling_params, use_tqdm=use_tqdm)

        if factory:
            def _run_engine(self, messages, params, *, use_tqdm: bool | Callable[..., tqdm] = True):
                return self._chat(messages, params, use_tqdm)
        else:
            def _run_engine(self, messages, params, *, use_tqdm: bool = True):
                return self._chat(messages, params, bool(use_tqdm))

    module = types.ModuleType("vllm")
    module.LLM = LLM
    module.SamplingParams = lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", module)
    return seen


def test_vllm_reports_each_finished_request(monkeypatch):
    seen = fake_vllm(monkeypatch, factory=True)
    backend = VLLMBackend("some/model")
    calls = Calls()
    out = backend.generate([conv(f"q{i}") for i in range(4)], 8, on_progress=calls)
    assert out == [(f"reply {i}", i + 2) for i in range(4)]
    assert calls.calls == [(1, i + 2) for i in range(4)]  # per request, with its tokens, as it finished
    assert seen["updates"] == [1, 1, 1, 1]


def test_vllm_without_a_bar_factory_reports_per_batch(monkeypatch, capsys):
    fake_vllm(monkeypatch, factory=False)
    backend = VLLMBackend("some/model")
    calls = Calls()
    out = backend.generate([conv(f"q{i}") for i in range(3)], 8, on_progress=calls)
    assert calls.calls == [(3, sum(n for _, n in out))]
    assert "Processed prompts" not in capsys.readouterr().err  # vLLM's own bar stays off


# --- methods ------------------------------------------------------------------------------------


class Recorder(ChainProgress):
    def __init__(self):
        self.events: list[tuple] = []
        self.examples = 0
        self.final = True

    def turn(self, name, size, *, final):
        self.events.append(("turn", name, size, final))
        self.final = final

    def generated(self, finished, tokens):
        self.events.append(("generated", finished, tokens))
        if self.final:
            self.examples += finished

    def examples_done(self, count):
        self.events.append(("done", count))
        self.examples += count

    def end(self):
        self.events.append(("end",))


class PerRowBackend(ScriptedBackend):
    """ScriptedBackend that reports each conversation through ``on_progress`` as it 'finishes'."""

    def generate(self, conversations, max_tokens, temperature=0.0, *, on_progress=None):
        out = super().generate(conversations, max_tokens, temperature)
        for _, n in out:
            if on_progress:
                on_progress(1, n)
        return out


def exact(recs, texts):
    return [1.0 if f"<answer>{r.reference}</answer>" in t else 0.0 for r, t in zip(recs, texts)]


@pytest.mark.parametrize("method", ["vanilla", "pasr", "self-refine", "self-refine-oracle"])
@pytest.mark.parametrize("rounds", [1, 3])
@pytest.mark.parametrize("per_row", [True, False])
def test_every_example_is_counted_once(method, rounds, per_row):
    from pasr.prompts import SELF_REFINE_CONFIRMATION

    recs = records(6)

    def reply(c):
        i = int(question_of(c).split()[2])  # "What is i + i?"
        if len(c) > 2:  # a review (self-refine) or revision (Self-Refine+) turn: some confirm, some fix
            return SELF_REFINE_CONFIRMATION if i % 3 == 0 else answer(2 * i)
        return answer(2 * i if i % 2 else 0)  # odd ones right at once

    backend = (PerRowBackend if per_row else ScriptedBackend)(reply)
    rec = Recorder()
    run_method(method, recs, ChainConfig(backend=backend, rounds=rounds, score=exact, progress=rec))
    assert rec.examples == len(recs), rec.events
    turns = [e for e in rec.events if e[0] == "turn"]
    assert turns[0][1] == "answer" and turns[0][3] == (method in ("vanilla", "pasr"))
    assert all(e[1].startswith(("review", "revision")) for e in turns[1:])
    if method.startswith("self-refine") and rounds > 1:
        assert any(e[0] == "done" and e[1] for e in rec.events)  # chains that end between turns count too


def test_backend_without_on_progress_is_reported_after_its_call():
    assert not takes_progress(ScriptedBackend(lambda c: "x").generate)
    assert takes_progress(PerRowBackend(lambda c: "x").generate)
    assert takes_progress(lambda conversations, max_tokens, temperature=0.0, **kw: [])


# --- the bar ------------------------------------------------------------------------------------


def test_method_progress_moves_per_example_and_names_turns():
    progress = Progress(console=Console(file=StringIO()), auto_refresh=False)
    task = progress.add_task("synthetic / self-refine", total=4, tokens=0)
    mp = MethodProgress(progress, task, "synthetic / self-refine")
    mp.turn("answer", 4, final=False)
    mp.generated(1, 10)
    t = progress.tasks[0]
    assert t.completed == 0 and t.description == "synthetic / self-refine · answer 1/4" and t.fields["tokens"] == 10
    mp.generated(3, 30)
    mp.examples_done(1)  # one confirmed
    mp.turn("review 1", 3, final=True)
    mp.generated(2, 5)
    assert t.completed == 3 and t.description == "synthetic / self-refine · review 1 2/3"
    mp.generated(1, 5)
    mp.end()
    assert t.completed == 4 and t.description == "synthetic / self-refine" and t.fields["tokens"] == 50


def test_token_rate_column():
    progress = Progress(console=Console(file=StringIO()), auto_refresh=False)
    task = progress.add_task("x", total=2, tokens=0)
    column = TokenRateColumn()
    assert column.render(progress.tasks[0]).plain == ""
    time.sleep(0.05)
    progress.update(task, tokens=1000)
    assert column.render(progress.tasks[0]).plain.endswith(" tok/s")


def test_runner_bar_moves_per_example_and_results_stay_per_chunk(tmp_path, monkeypatch):
    """Six examples in chunks of three: the bar passes 1, 2, ... while the file grows by three at a time."""
    import json

    import pasr.eval.runner as runner_module
    from pasr.data.benchmarks import load_benchmark
    from pasr.eval.runner import EvalSettings, run_eval

    recs = load_benchmark("synthetic", limit=6)
    out = tmp_path / "run"
    path = out / "synthetic" / "vanilla.jsonl"
    seen: list[tuple[float, int]] = []

    class Spy(MethodProgress):
        def generated(self, finished, tokens):
            super().generated(finished, tokens)
            lines = len(path.read_text().splitlines()) if path.exists() else 0
            seen.append((self.progress.tasks[0].completed, lines))

    monkeypatch.setattr(runner_module, "MethodProgress", Spy)
    refs = {r.question: r.reference for r in recs}
    backend = PerRowBackend(lambda c: (answer(refs[question_of(c)]), 4), chunk_size=3)
    settings = EvalSettings(model="fake", benchmarks=["synthetic"], methods=["vanilla"], output=out, limit=6)
    run_eval(settings, backend=backend, console=Console(file=StringIO()))
    assert [c for c, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert [n for _, n in seen] == [0, 0, 0, 3, 3, 3]  # lines still land a chunk at a time
    assert len([json.loads(x) for x in path.read_text().splitlines()]) == 6


def test_openai_progress_from_a_helper_thread_inside_an_event_loop():
    """generate() called where a loop runs (a notebook) reports from its helper thread."""
    import asyncio

    with FakeOpenAIServer(lambda r: Reply(content="ok", completion_tokens=2), models=["m"]) as server:
        backend = OpenAIBackend(server.base_url, "m", retries=0)
        calls = Calls()
        threads = set()

        def record(f, t):
            threads.add(threading.get_ident())
            calls(f, t)

        async def main():
            return backend.generate([conv("a"), conv("b")], 4, on_progress=record)

        assert asyncio.run(main()) == [("ok", 2), ("ok", 2)]
    assert calls.finished == 2 and calls.tokens == 4 and threading.get_ident() not in threads
