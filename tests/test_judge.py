"""The LLM judge against a real (fake) OpenAI-compatible HTTP server on localhost."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest
from fake_openai_server import FakeOpenAIServer, Reply, constant, sequence
from openai import OpenAI

from pasr.errors import PasrError
from pasr.judge import DUMMY_API_KEY, Judge, JudgeConfig, judge_messages, parse_score
from pasr.prompts import JUDGE_SYSTEM_PROMPT


@pytest.fixture
def server():
    srv = FakeOpenAIServer()
    with srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    monkeypatch.delenv("PASR_JUDGE_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def make_judge(server: FakeOpenAIServer, tmp_path, **overrides) -> Judge:
    cfg = {
        "base_url": server.base_url,
        "model": "fake-model",
        "cache_dir": str(tmp_path / "cache"),
        "timeout": 2.0,
        "retries": 2,
        "backoff": 0.01,
    }
    cfg.update(overrides)
    return Judge(JudgeConfig(**cfg))


def item(answer: str, task: str = "open", question: str = "What is 2+2?", reference: str = "4") -> dict:
    return {"question": question, "reference": reference, "answer": answer, "task": task}


# --- parsing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("0.8", 0.8),
        ("1", 1.0),
        ("0", 0.0),
        (" **0.6**.\n", 0.6),
        ("The score is 0.7", 0.7),
        ("Score: 7/10", 0.7),
        ("0.8/1", 0.8),
        ("3 out of 4", 0.75),
        ("80%", 0.8),
        ("1e-1", 0.1),
        ("1.5", 1.0),  # clamped, not rescaled
        ("7", 1.0),
        ("-0.3", 0.0),
        ("between 0.2 and 0.4, so 0.3", 0.3),  # the last number wins
        ("<think>maybe 0.2</think>0.9", 0.9),
        ("<think>still thinking, 0.2", None),  # truncated reasoning
        ("I cannot grade this.", None),
        ("nan", None),
        ("inf", None),
        ("5/0", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_score(reply, expected):
    got = parse_score(reply)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_judge_messages_use_task_templates():
    math = judge_messages("Solve x+1=2", "1", "x=1", "gsm8k")
    summary = judge_messages("Long text", "Short", "Summary", "summary")
    assert math[0] == {"role": "system", "content": JUDGE_SYSTEM_PROMPT}
    assert "equivalent to the reference counts as correct" in math[1]["content"]
    assert "Solve x+1=2" in math[1]["content"]
    assert "summary" in summary[1]["content"].lower() and "Long text" in summary[1]["content"]


@pytest.mark.parametrize(
    "task, kind",
    [
        # benchmark names follow the PASR authors' evaluation mapping
        ("arc", "choice"), ("mmlu", "choice"), ("xsum", "summary"), ("commonsenseqa", "general"),
        ("gpqa", "general"), ("winogrande", "general"), ("math500", "general"), ("AIME24", "general"),
        # answer families (training rewards)
        ("choice", "choice"), ("math", "general"), ("drop", "general"), ("summary", "summary"),
        ("open", "open"), ("something-else", "open"),
    ],
)
def test_judge_template_kind_by_benchmark_and_family(task, kind):
    from pasr.prompts import JUDGE_TEMPLATES, judge_template

    assert judge_template(task) == JUDGE_TEMPLATES[kind]
    # braces in user text are data, not format fields
    assert "{x}" in judge_messages("f({x})", "r", "a", "open")[1]["content"]


# --- scoring over HTTP ------------------------------------------------------------


def test_scores_parsed_and_request_shape(server, tmp_path):
    scores = {"four": "1", "five": "0", "roughly four": "The score is 0.7"}
    server.responder = lambda req: next(v for k, v in scores.items() if f"Model answer:\n{k}\n" in req.user_text)
    judge = make_judge(server, tmp_path, max_tokens=8)

    got = judge.score_many([item("four"), item("five"), item("roughly four")])

    assert got == [1.0, 0.0, pytest.approx(0.7)]
    assert (judge.calls, judge.failures, judge.cache_hits) == (3, 0, 0)
    req = server.chat_requests[0]
    assert req.model == "fake-model"
    assert req.body["max_tokens"] == 8 and req.body["temperature"] == 0.0
    assert req.messages[0] == {"role": "system", "content": JUDGE_SYSTEM_PROMPT}
    assert "What is 2+2?" in req.user_text and "Reference answer:\n4" in req.user_text
    assert req.authorization == f"Bearer {DUMMY_API_KEY}"


@pytest.mark.parametrize("bad", ["I cannot grade this.", Reply(body=b"<html>oops</html>"), Reply(content="")])
def test_garbage_gives_fallback_and_counts_failures(server, tmp_path, caplog, bad):
    server.responder = constant(bad)
    judge = make_judge(server, tmp_path, retries=1, fallback_score=0.25)

    with caplog.at_level(logging.WARNING, logger="pasr.judge"):
        got = judge.score_many([item("a"), item("b")])

    assert got == [0.25, 0.25]
    assert judge.failures == 2 and judge.calls == 2 and judge.retries == 2
    assert server.count == 4  # each item tried 1 + retries times
    warnings = [r for r in caplog.records if r.name == "pasr.judge" and r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("fallback" in r.getMessage() for r in warnings)
    # failures are not cached: the next batch asks again
    judge.score_many([item("a")])
    assert server.count == 6


def test_server_errors_are_retried_then_succeed(server, tmp_path):
    server.responder = sequence(Reply(status=500), Reply(status=503), "0.9")
    judge = make_judge(server, tmp_path, retries=3)

    assert judge.score_many([item("x")]) == [pytest.approx(0.9)]
    assert server.count == 3
    assert (judge.calls, judge.retries, judge.failures) == (1, 2, 0)


def test_client_errors_are_not_retried(server, tmp_path):
    server.responder = constant(Reply(status=404, error_message="model not found"))
    judge = make_judge(server, tmp_path, retries=3)

    assert judge.score_many([item("x")]) == [0.0]
    assert server.count == 1 and judge.failures == 1 and judge.retries == 0


def test_retries_exhausted_gives_fallback(server, tmp_path):
    server.responder = constant(Reply(status=500))
    judge = make_judge(server, tmp_path, retries=2, fallback_score=0.5)
    assert judge.score_many([item("x")]) == [0.5]
    assert server.count == 3 and judge.failures == 1


def test_slow_server_times_out_to_fallback(server, tmp_path):
    server.responder = constant(Reply(content="1", delay=3.0))
    judge = make_judge(server, tmp_path, timeout=0.3, retries=1, fallback_score=0.1)

    start = time.monotonic()
    got = judge.score_many([item("x"), item("y")])
    elapsed = time.monotonic() - start

    assert got == [0.1, 0.1]
    assert judge.failures == 2 and server.count == 4
    assert elapsed < 2.0  # two attempts of 0.3 s each, concurrently, not the server's 3 s


def test_cache_hits_and_survives_new_instance(server, tmp_path):
    server.responder = lambda req: "0.6" if "alpha" in req.user_text else "0.2"
    items = [item("alpha"), item("beta")]
    judge = make_judge(server, tmp_path)

    assert judge.score_many(items) == [0.6, 0.2]
    assert server.count == 2 and judge.cache_hits == 0
    assert judge.score_many(items) == [0.6, 0.2]
    assert server.count == 2 and judge.cache_hits == 2 and judge.calls == 2

    fresh = make_judge(server, tmp_path)
    assert fresh.score_many(items) == [0.6, 0.2]
    assert server.count == 2 and fresh.cache_hits == 2 and fresh.calls == 0

    # the key covers the model and the prompt: another model or task asks again
    other = make_judge(server, tmp_path, model="other-model")
    other.score_many(items)
    assert server.count == 4
    fresh.score_many([item("alpha", task="math")])
    assert server.count == 5

    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 5
    assert all(json.loads(f.read_text())["reply"] in {"0.6", "0.2"} for f in files)


def test_cache_disabled(server, tmp_path):
    judge = make_judge(server, tmp_path, cache_dir=None)
    judge.score_many([item("a")])
    judge.score_many([item("a")])
    assert server.count == 2 and judge.cache_hits == 0
    assert not (tmp_path / "cache").exists()


def test_identical_prompts_in_one_batch_are_sent_once(server, tmp_path):
    server.responder = constant(Reply(content="1", delay=0.1))
    judge = make_judge(server, tmp_path, cache_dir=None)
    assert judge.score_many([item("same")] * 5 + [item("other")]) == [1.0] * 6
    assert server.count == 2 and judge.calls == 2 and judge.cache_hits == 4


def test_concurrency_bound_respected(server, tmp_path):
    server.responder = constant(Reply(content="1", delay=0.15))
    judge = make_judge(server, tmp_path, concurrency=3, cache_dir=None)

    start = time.monotonic()
    got = judge.score_many([item(f"answer {i}") for i in range(12)])

    assert got == [1.0] * 12
    assert server.max_in_flight == 3
    assert time.monotonic() - start >= 4 * 0.15 * 0.9  # 12 requests, 3 at a time


def test_api_key_from_env_sent_and_never_logged(server, tmp_path, monkeypatch, caplog):
    secret = "sk-test-very-secret-0123456789"
    monkeypatch.setenv("PASR_JUDGE_API_KEY", secret)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-be-used")
    server.responder = sequence("I refuse", "I refuse", "0.4")
    judge = make_judge(server, tmp_path, retries=1)

    with caplog.at_level(logging.DEBUG):
        scores = judge.score_many([item("a")])  # two garbage replies -> a logged failure
        assert judge.score_many([item("b")]) == [0.4]

    assert scores == [0.0] and judge.failures == 1
    assert {r.authorization for r in server.chat_requests} == {f"Bearer {secret}"}
    assert secret not in caplog.text and "judge request" in caplog.text
    assert secret not in repr(judge) and secret not in repr(judge.config) and secret not in str(vars(judge))
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text()


def test_rejected_key_is_redacted_from_warnings(tmp_path, monkeypatch, caplog):
    secret = "sk-wrong-key-abcdef987654"
    monkeypatch.setenv("MY_JUDGE_KEY", secret)
    with FakeOpenAIServer(api_key="sk-right") as srv:  # its 401 message echoes the presented key
        judge = make_judge(srv, tmp_path, api_key_env="MY_JUDGE_KEY")
        with caplog.at_level(logging.WARNING, logger="pasr.judge"):
            assert judge.score_many([item("a")]) == [0.0]
        assert srv.count == 1  # 401 is not retried
    assert "HTTP 401" in caplog.text and secret not in caplog.text and "***" in caplog.text


def test_api_key_fallbacks(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    make_judge(server, tmp_path, cache_dir=None).score_many([item("a")])
    monkeypatch.delenv("OPENAI_API_KEY")
    make_judge(server, tmp_path, cache_dir=None).score_many([item("a")])
    assert [r.authorization for r in server.chat_requests] == ["Bearer sk-openai", f"Bearer {DUMMY_API_KEY}"]


# --- calling conventions ------------------------------------------------------------


def test_score_many_inside_running_loop_and_ascore(server, tmp_path):
    server.responder = constant("0.3")
    judge = make_judge(server, tmp_path, cache_dir=None)

    async def main():
        from_sync = judge.score_many([item("a")])  # runs on a worker thread with its own loop
        from_async = await judge.ascore("q", "r", "b", "math")
        many = await judge.ascore_many([item("c"), item("d")])
        await judge.aclose()
        return from_sync, from_async, many

    assert asyncio.run(main()) == ([0.3], 0.3, [0.3, 0.3])
    assert judge.calls == 4


def test_score_many_from_thread_without_loop(server, tmp_path):
    judge = make_judge(server, tmp_path, cache_dir=None)
    results: list = []
    threads = [threading.Thread(target=lambda i=i: results.append(judge.score_many([item(f"t{i}")]))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == [[1.0]] * 3 and judge.calls == 3


def test_complete_many_returns_texts_and_none(server, tmp_path):
    server.responder = lambda req: Reply(status=500) if "fail" in req.user_text else f"type: {req.user_text}"
    judge = make_judge(server, tmp_path, retries=1)
    prompts = [[{"role": "user", "content": "classify this"}], [{"role": "user", "content": "fail please"}]]

    assert judge.complete_many(prompts, max_tokens=64) == ["type: classify this", None]
    assert server.chat_requests[0].body["max_tokens"] == 64
    assert judge.failures == 1
    # a text reply cached for analyses is reused; an unusable one is not
    before = server.count
    assert judge.complete_many(prompts[:1], max_tokens=64) == ["type: classify this"]
    assert server.count == before and judge.cache_hits == 1


def test_check_lists_models(server, tmp_path):
    assert make_judge(server, tmp_path).check() == ["fake-model"]
    with pytest.raises(PasrError, match="not served"):
        make_judge(server, tmp_path, model="missing").check()


def test_check_unreachable_server(tmp_path):
    srv = FakeOpenAIServer().start()
    url = srv.base_url
    srv.stop()
    judge = Judge(JudgeConfig(base_url=url, model="m", timeout=1.0, cache_dir=None))
    with pytest.raises(PasrError, match="did not answer"):
        judge.check()
    # scoring against it degrades instead of raising
    judge.config.retries = 0
    assert judge.score_many([item("a")]) == [0.0] and judge.failures == 1


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("concurrency", 0), ("timeout", 0), ("retries", -1), ("fallback_score", 1.5), ("max_tokens", 0), ("model", "")],
)
def test_config_validation_names_field(field, value):
    kwargs = {"base_url": "http://localhost:1/v1", "model": "m", field: value}
    with pytest.raises(PasrError, match=f"JudgeConfig.{field}"):
        JudgeConfig(**kwargs)


def test_bad_items_raise_before_any_request(server, tmp_path):
    judge = make_judge(server, tmp_path)
    with pytest.raises(PasrError, match="item 1: missing field 'reference'"):
        judge.score_many([item("a"), {"question": "q", "answer": "a"}])
    assert server.count == 0
    assert judge.score_many([]) == []


# --- the fake server itself (other tests rely on it) -------------------------------


def test_fake_server_usage_choices_and_models(server):
    server.responder = lambda req: Reply(content=["one two", "three"], completion_tokens=7)
    client = OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    out = client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "a b c"}], n=2)
    assert [c.message.content for c in out.choices] == ["one two", "three"]
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (3, 7, 10)
    server.responder = constant("four words of text")
    out = client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hi"}])
    assert out.usage.completion_tokens == 4
    assert [m.id for m in client.models.list().data] == ["fake-model"]
