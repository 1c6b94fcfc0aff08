"""The judge honours the server's wait hints (Retry-After, retry-after-ms) on HTTP 429/503.

The server is an ``httpx.MockTransport`` behind the real ``openai`` client, so the
judge sees genuine ``APIStatusError``s with the response headers; the judge's sleep
between attempts is recorded instead of slept, so these tests take milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from openai import AsyncOpenAI

import pasr.judge as judge_module
from pasr.judge import Judge, JudgeConfig, _retry_after_seconds


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    monkeypatch.delenv("PASR_JUDGE_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def sleeps(monkeypatch):
    """Every wait the judge asks for between attempts, in seconds (nothing is really slept)."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(judge_module, "_sleep", fake_sleep)
    return recorded


def _completion(text: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
    )


def _error(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"message": f"slow down ({status})", "type": "rate_limit", "code": status}}
    return httpx.Response(status, json=body, headers=headers or {})


class MockServer:
    """Answers chat completions from a script of responses (the last one repeats)."""

    def __init__(self, *script: httpx.Response | str) -> None:
        self.script = list(script)
        self.count = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/chat/completions")
        json.loads(request.content)
        step = self.script[min(self.count, len(self.script) - 1)]
        self.count += 1
        return _completion(step) if isinstance(step, str) else step


def make_judge(monkeypatch, server: MockServer, **overrides) -> Judge:
    cfg = {
        "base_url": "http://judge.test/v1",
        "model": "fake-model",
        "cache_dir": None,
        "timeout": 5.0,
        "retries": 2,
        "backoff": 0.01,
    }
    cfg.update(overrides)
    judge = Judge(JudgeConfig(**cfg))

    def new_client():
        return AsyncOpenAI(
            base_url=cfg["base_url"],
            api_key="k",
            max_retries=0,  # as in Judge._new_client: the judge does the retrying
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(server.handle)),
        )

    monkeypatch.setattr(judge, "_new_client", new_client)
    return judge


def item(answer: str = "4") -> dict:
    return {"question": "What is 2+2?", "reference": "4", "answer": answer, "task": "open"}


# --- the header parser ------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 2.5 "}, 2.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),  # milliseconds win
        ({"retry-after-ms": "soon", "Retry-After": "3"}, 3.0),  # unusable ms: the seconds header
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=30), usegmt=True)}, 30.0),
        ({"Retry-After": "Wed, 01 May 2024 12:00:10 -0000"}, 10.0),  # naive date: UTC
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "1e999"}, float("inf")),  # overflow means "very long"; the caller caps it
        ({"Retry-After": format_datetime(NOW - timedelta(seconds=5), usegmt=True)}, None),  # past
        ({"Retry-After": "-3"}, None),
        ({"retry-after-ms": "-100"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": ""}, None),
        ({}, None),
    ],
)
def test_retry_after_parsing(headers, expected):
    assert _retry_after_seconds(httpx.Headers(headers), now=NOW) == expected


def test_retry_after_parsing_without_headers():
    assert _retry_after_seconds(None) is None


# --- honouring the hint ----------------------------------------------------------------------


def test_retry_after_seconds_honoured_then_success_scores(monkeypatch, sleeps):
    server = MockServer(_error(429, {"Retry-After": "2"}), "0.9")
    judge = make_judge(monkeypatch, server)

    assert judge.score_many([item()]) == [pytest.approx(0.9)]

    assert server.count == 2
    assert sleeps == [pytest.approx(2.0)]  # not the 0.01 s backoff
    assert (judge.calls, judge.retries, judge.failures) == (1, 1, 0)
    assert judge.rate_limited == 1 and judge.rate_limit_wait_s == pytest.approx(2.0)


def test_fractional_retry_after(monkeypatch, sleeps):
    judge = make_judge(monkeypatch, MockServer(_error(429, {"Retry-After": "0.75"}), "1"))
    assert judge.score_many([item()]) == [1.0]
    assert sleeps == [pytest.approx(0.75)]


def test_retry_after_http_date(monkeypatch, sleeps):
    when = datetime.now(timezone.utc) + timedelta(seconds=3)
    judge = make_judge(monkeypatch, MockServer(_error(429, {"Retry-After": format_datetime(when, usegmt=True)}), "1"))
    assert judge.score_many([item()]) == [1.0]
    # HTTP-dates have whole seconds, and some time passes before the header is read
    assert len(sleeps) == 1 and 1.0 < sleeps[0] <= 3.0
    assert judge.rate_limit_wait_s == pytest.approx(sleeps[0])


def test_retry_after_ms(monkeypatch, sleeps):
    judge = make_judge(monkeypatch, MockServer(_error(429, {"retry-after-ms": "1250"}), "1"))
    assert judge.score_many([item()]) == [1.0]
    assert sleeps == [pytest.approx(1.25)]


def test_hint_longer_than_timeout_waits_timeout(monkeypatch, sleeps, caplog):
    judge = make_judge(monkeypatch, MockServer(_error(429, {"Retry-After": "3600"}), "1"), timeout=1.5)
    with caplog.at_level(logging.DEBUG, logger="pasr.judge"):
        assert judge.score_many([item()]) == [1.0]
    assert sleeps == [pytest.approx(1.5)]
    assert judge.rate_limit_wait_s == pytest.approx(1.5)
    assert "asked to wait 3600.00s" in caplog.text and "timeout 1.5s" in caplog.text


@pytest.mark.parametrize("headers", [{"Retry-After": "whenever"}, {"Retry-After": "-5"}, {}])
def test_unusable_hint_falls_back_to_backoff(monkeypatch, sleeps, headers):
    judge = make_judge(monkeypatch, MockServer(_error(429, headers), "1"), backoff=0.2)
    assert judge.score_many([item()]) == [1.0]
    assert len(sleeps) == 1 and 0.1 <= sleeps[0] <= 0.2  # backoff * 2**0 with jitter in [0.5, 1]
    assert judge.rate_limited == 1 and judge.rate_limit_wait_s == 0.0


def test_own_backoff_wins_over_a_shorter_hint(monkeypatch, sleeps):
    judge = make_judge(monkeypatch, MockServer(_error(429, {"Retry-After": "0.01"}), "1"), backoff=1.0)
    assert judge.score_many([item()]) == [1.0]
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0
    assert judge.rate_limit_wait_s == 0.0  # the wait was ours, not the server's


def test_503_with_hint(monkeypatch, sleeps):
    judge = make_judge(monkeypatch, MockServer(_error(503, {"Retry-After": "1"}), "0.5"))
    assert judge.score_many([item()]) == [0.5]
    assert sleeps == [pytest.approx(1.0)]
    assert judge.rate_limited == 1 and judge.rate_limit_wait_s == pytest.approx(1.0)


def test_hint_on_other_status_is_ignored(monkeypatch, sleeps):
    judge = make_judge(monkeypatch, MockServer(_error(500, {"Retry-After": "30"}), "1"), backoff=0.2)
    assert judge.score_many([item()]) == [1.0]
    assert len(sleeps) == 1 and sleeps[0] <= 0.2
    assert judge.rate_limited == 0 and judge.rate_limit_wait_s == 0.0


def test_counters_over_a_batch_and_in_stats(monkeypatch, sleeps):
    # every item is first rate-limited once (1 s hint), then answered
    seen: set[str] = set()

    def handle(request: httpx.Request) -> httpx.Response:
        user = json.loads(request.content)["messages"][-1]["content"]
        if user not in seen:
            seen.add(user)
            return _error(429, {"Retry-After": "1"})
        return _completion("0.8")

    server = MockServer()
    server.handle = handle
    judge = make_judge(monkeypatch, server)

    assert judge.score_many([item("a"), item("b"), item("c")]) == [pytest.approx(0.8)] * 3

    assert judge.rate_limited == 3 and judge.rate_limit_wait_s == pytest.approx(3.0)
    stats = judge.stats()
    assert stats["rate_limited"] == 3 and stats["rate_limit_wait_s"] == pytest.approx(3.0)
    assert (stats["calls"], stats["retries"], stats["failures"], stats["cache_hits"]) == (3, 3, 0, 0)
    assert isinstance(stats["rate_limit_wait_s"], float)


def test_persistent_429_uses_all_retries_then_falls_back(monkeypatch, sleeps, caplog):
    server = MockServer(_error(429, {"Retry-After": "0.5"}))
    judge = make_judge(monkeypatch, server, retries=3, fallback_score=0.25)

    with caplog.at_level(logging.WARNING, logger="pasr.judge"):
        assert judge.score_many([item()]) == [0.25]

    assert server.count == 4  # 1 + retries attempts
    assert sleeps == [pytest.approx(0.5)] * 3
    assert (judge.failures, judge.retries, judge.rate_limited) == (1, 3, 4)
    assert judge.rate_limit_wait_s == pytest.approx(1.5)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "rate-limited (HTTP 429) after 4 attempt(s)" in warning
    assert "waited 1.5s in total" in warning and "fallback score 0.25" in warning


def test_non_rate_limit_failure_keeps_plain_wording(monkeypatch, sleeps, caplog):
    judge = make_judge(monkeypatch, MockServer(_error(429, {"Retry-After": "1"}), _error(500)), retries=1)
    with caplog.at_level(logging.WARNING, logger="pasr.judge"):
        assert judge.score_many([item()]) == [0.0]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "failed after 2 attempt(s): HTTP 500" in warning and "rate-limited" not in warning
    assert judge.rate_limited == 1


def test_batch_metrics_log_rate_limit_counters(monkeypatch, sleeps):
    from types import SimpleNamespace

    from pasr.train.reward_functions import batch_metrics

    judge = make_judge(monkeypatch, MockServer(_error(429, {"Retry-After": "2"}), "1"))
    judge.score_many([item()])
    row = {"trace": {"refined": False, "refines": [], "valid": True}, "accuracy": 1.0, "baseline": None}
    metrics = batch_metrics([row], SimpleNamespace(judge=judge))
    assert metrics["judge/rate_limited"] == 1.0 and metrics["judge/rate_limit_wait_s"] == pytest.approx(2.0)
    assert metrics["judge/failures"] == 0.0
