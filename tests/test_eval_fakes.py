"""Scripted stand-ins for a chat backend and a judge, shared by the eval tests (and checked here)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from pasr.data.records import Record


class ScriptedBackend:
    """A backend whose reply to a conversation comes from ``reply(conversation) -> str | (str, tokens)``.

    Records every ``generate`` call (a deep copy of the conversations), so tests can check turn order,
    prompts and batching. Token count defaults to the number of words of the reply.
    """

    name = "scripted"

    def __init__(self, reply: Callable, chunk_size: int = 100):
        self.reply = reply
        self.chunk_size = chunk_size
        self.calls: list[list[list[dict]]] = []
        self.closed = False

    def generate(self, conversations, max_tokens, temperature=0.0):
        self.calls.append(copy.deepcopy(list(conversations)))
        out = []
        for conv in conversations:
            got = self.reply(conv)
            out.append(got if isinstance(got, tuple) else (got, len(got.split())))
        return out

    def close(self):
        self.closed = True

    @property
    def conversations(self) -> list[list[dict]]:
        return [c for call in self.calls for c in call]


class FailingBackend(ScriptedBackend):
    """Answers like ScriptedBackend for the first ``ok`` conversations, then raises ConnectionError."""

    def __init__(self, reply, ok: int, chunk_size: int = 2):
        super().__init__(reply, chunk_size)
        self.ok = ok
        self.served = 0

    def generate(self, conversations, max_tokens, temperature=0.0):
        if self.served + len(conversations) > self.ok:
            raise ConnectionError("server went away")
        self.served += len(conversations)
        return super().generate(conversations, max_tokens, temperature)


class ScriptedJudge:
    """A judge with ``complete_many``: replies from ``reply(conversation) -> str | None``."""

    def __init__(self, reply: Callable):
        self.reply = reply
        self.prompts: list[list[dict]] = []

    def complete_many(self, prompts, **kwargs):
        self.prompts.extend(prompts)
        return [self.reply(p) for p in prompts]

    def score_many(self, items):
        return [1.0 for _ in items]


def user_text(conv) -> str:
    return conv[-1]["content"]


def question_of(conv) -> str:
    return conv[1]["content"].split("\n\n")[0]


def records(n: int = 3, task: str = "arith") -> list[Record]:
    return [Record(id=f"q{i}", question=f"What is {i} + {i}?", reference=str(2 * i), task=task) for i in range(n)]


def answer(value) -> str:
    return f"<think>adding up</think><answer>{value}</answer>"


def test_scripted_backend_records_calls_and_counts_words():
    backend = ScriptedBackend(lambda conv: "two words")
    out = backend.generate([[{"role": "user", "content": "hi"}]], 5)
    assert out == [("two words", 2)]
    assert backend.calls == [[[{"role": "user", "content": "hi"}]]]


def test_failing_backend_fails_after_budget():
    backend = FailingBackend(lambda conv: "x", ok=1)
    backend.generate([[{"role": "user", "content": "a"}]], 5)
    with pytest.raises(ConnectionError):
        backend.generate([[{"role": "user", "content": "b"}]], 5)
