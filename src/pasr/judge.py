"""LLM judge over any OpenAI-compatible chat-completions server.

Some answers (open questions, summaries, or all of them with ``judge_all``) need
a model to grade them. The judge talks to vLLM ``serve``, a llama.cpp server or a
hosted API through the ``openai`` client, and is built so that a judge outage
degrades a training run instead of killing it:

* bounded concurrency (one ``asyncio.Semaphore`` per event loop), a hard
  per-request timeout, retries with exponential backoff and jitter;
* rate limits honoured: when the server answers HTTP 429 or 503 with a wait hint
  (``retry-after-ms`` in milliseconds, or ``Retry-After`` in seconds, fractional
  allowed, or as an HTTP-date), the next attempt waits the larger of the judge's
  own backoff and that hint, the hint capped at ``timeout`` seconds. A hint that
  is absent, unparsable, negative or already past leaves the plain backoff;
* an on-disk cache keyed by sha256(model, messages, temperature, max_tokens), one
  small JSON file per key written atomically, so several processes can share it;
  identical prompts in flight at the same time are sent once;
* a request that still fails after its retries counts as a failure, logs one
  warning with the reason and gets ``fallback_score`` (``None`` for raw completions);
  :meth:`Judge.verdicts` says per item whether the server answered without a usable
  score (the fallback is then the verdict) or never answered (``unavailable``, no score),
  so an evaluation can keep an outage from becoming a score.

Counters (read them after a batch, e.g. to log them during training):
``calls`` completions requested from the server (one per item, however many
attempts), ``retries`` extra attempts, ``failures`` items that gave up, and
``cache_hits`` items answered without a request (disk cache or a shared
in-flight request). ``calls + cache_hits`` is the number of items asked for.
``rate_limited`` counts attempts the server answered with HTTP 429 or 503, and
``rate_limit_wait_s`` is the total time in seconds (float) slept before retries
whose wait was set by a server hint (longer than the judge's own backoff would
have been); the whole of such a wait counts, capped as above.

The API key is read from the environment variable named by
``JudgeConfig.api_key_env`` (default ``PASR_JUDGE_API_KEY``), then
``OPENAI_API_KEY``, else the dummy ``"EMPTY"`` that local servers accept. It is
never stored on the judge, logged, put in a repr or in a cache key.

Score parsing (:func:`parse_score`) is documented there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import hashlib
import json
import logging
import math
import os
import random
import re
import tempfile
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from pasr.errors import PasrError
from pasr.prompts import JUDGE_SYSTEM_PROMPT, judge_template

log = logging.getLogger("pasr.judge")

__all__ = ["JudgeConfig", "Judge", "Verdict", "parse_score", "judge_messages", "resolve_api_key", "DUMMY_API_KEY"]

DUMMY_API_KEY = "EMPTY"
"""Key sent when no key is configured: vLLM and llama.cpp accept any key unless started with one."""

_FALLBACK_KEY_ENV = "OPENAI_API_KEY"

T = TypeVar("T")


# --- configuration -----------------------------------------------------------


@dataclass
class JudgeConfig:
    """Where the judge is and how hard to try.

    ``base_url`` is the server's OpenAI root, usually ending in ``/v1``
    (``http://localhost:8000/v1`` for ``vllm serve``). ``api_key_env`` names the
    environment variable holding the key (the key itself never goes in a config).
    ``timeout`` is the hard limit in seconds for one request, ``retries`` the extra
    attempts after a failed one, waiting ``backoff * 2**i`` seconds (with jitter)
    before retry ``i``. After an HTTP 429 or 503 carrying a wait hint
    (``retry-after-ms`` or ``Retry-After``) the wait is ``max(own backoff, hint)``,
    with the hint capped at ``timeout`` seconds (a longer hint waits ``timeout``);
    so a rate-limited item can take up to ``retries * timeout`` seconds of waiting
    on top of its attempts. ``cache_dir=None`` disables the cache. ``max_tokens`` and
    ``temperature`` apply to scoring requests; ``fallback_score`` is the score of an
    item whose request failed.
    """

    base_url: str
    model: str
    api_key_env: str = "PASR_JUDGE_API_KEY"
    concurrency: int = 8
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0
    cache_dir: str | None = "~/.cache/pasr/judge"
    fallback_score: float = 0.0
    max_tokens: int = 16
    temperature: float = 0.0

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> PasrError:
            return PasrError(f"JudgeConfig.{name}={getattr(self, name)!r}: {why}")

        if not isinstance(self.base_url, str) or not self.base_url.strip():
            raise bad("base_url", "give the server's OpenAI root URL, e.g. http://localhost:8000/v1")
        if not isinstance(self.model, str) or not self.model.strip():
            raise bad("model", "give the model name the server serves (see its /v1/models)")
        if not isinstance(self.api_key_env, str) or not self.api_key_env.strip():
            raise bad("api_key_env", "name an environment variable, e.g. PASR_JUDGE_API_KEY (not the key itself)")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise bad("concurrency", "must be an integer >= 1")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise bad("retries", "must be an integer >= 0")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise bad("max_tokens", "must be an integer >= 1")
        for name in ("timeout", "backoff", "fallback_score", "temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad(name, "must be a number")
        if self.timeout <= 0:
            raise bad("timeout", "must be > 0 seconds")
        if self.backoff < 0:
            raise bad("backoff", "must be >= 0 seconds")
        if not 0.0 <= self.fallback_score <= 1.0:
            raise bad("fallback_score", "must be in [0, 1]")
        if self.temperature < 0:
            raise bad("temperature", "must be >= 0")


def resolve_api_key(config: JudgeConfig) -> str:
    """The key to send: ``$<api_key_env>``, else ``$OPENAI_API_KEY``, else :data:`DUMMY_API_KEY`."""
    return os.environ.get(config.api_key_env) or os.environ.get(_FALLBACK_KEY_ENV) or DUMMY_API_KEY


SCORED, FALLBACK, UNAVAILABLE = "scored", "fallback", "unavailable"


@dataclass(frozen=True)
class Verdict:
    """The judge's outcome for one item (:meth:`Judge.verdicts`).

    ``status`` is ``"scored"`` (the reply held a score), ``"fallback"`` (the server answered, but
    with no usable score after the retries, or refused the request as such: ``score`` is
    ``fallback_score``, as the PASR authors' evaluation scores a reply without a number 0) or
    ``"unavailable"`` (no answer: timeouts, connection errors, HTTP 429/5xx to the last retry;
    ``score`` is None, so that an outage is never mistaken for a verdict).
    """

    score: float | None
    status: str


# --- prompts and parsing -------------------------------------------------------


def judge_messages(question: str, reference: str, answer: str, task: str) -> list[dict[str, str]]:
    """Chat messages asking the judge to grade ``answer`` against ``reference`` (template by ``task``)."""
    user = judge_template(task).format(question=question, reference=reference, answer=answer)
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": user}]


_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_WHOLE = re.compile(rf"\s*{_NUM}\s*")
_TOKEN = re.compile(
    rf"(?P<a>{_NUM})\s*(?:(?:/|\bout\s+of\b)\s*(?P<b>{_NUM})|(?P<pct>%))?",
    re.IGNORECASE,
)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_DECORATION = " \t\r\n*_`'\".,;:!)(][}{"


def parse_score(text: str | None) -> float | None:
    """Read a score in [0, 1] from a judge reply; ``None`` when the reply holds no usable number.

    Rules, in order:

    1. Closed ``<think>...</think>`` blocks (reasoning judges) are dropped; a reply
       with an unclosed ``<think>`` is truncated reasoning and gives ``None``.
    2. If the reply, stripped of whitespace and markdown/punctuation around it, is
       one number, that number.
    3. Otherwise the *last* number in the reply, where ``a/b`` and ``a out of b``
       (with ``b != 0``) count as the fraction ``a/b`` ("Score: 7/10" -> 0.7,
       "0.8/1" -> 0.8) and ``a%`` counts as ``a/100``.
    4. The value is clamped to [0, 1] ("1.5" -> 1.0, "-1" -> 0.0); NaN/inf give ``None``.

    A bare number above 1 is *not* rescaled ("7" -> 1.0): the prompts ask for 0..1,
    so a judge that ignores them should show up in the results rather than be guessed at.
    """
    if not text:
        return None
    text = _THINK.sub(" ", text)
    if re.search(r"<think>", text, re.IGNORECASE):
        return None
    core = text.strip(_DECORATION)
    value: float | None = None
    if _WHOLE.fullmatch(core):
        value = float(core)
    else:
        for match in _TOKEN.finditer(text):
            a = float(match.group("a"))
            if match.group("b") is not None:
                b = float(match.group("b"))
                if b == 0:
                    continue
                value = a / b
            elif match.group("pct"):
                value = a / 100.0
            else:
                value = a
    if value is None or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, value))


# --- cache ---------------------------------------------------------------------


def _cache_key(model: str, messages: Sequence[dict[str, Any]], temperature: float, max_tokens: int) -> str:
    blob = json.dumps(
        {"model": model, "messages": list(messages), "temperature": temperature, "max_tokens": max_tokens},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class _DiskCache:
    """One JSON file per key under ``root/<key[:2]>/``, written to a temp file then renamed.

    Renames are atomic, so concurrent processes never see a half-written entry and
    need no lock; the last writer of a key wins, which is harmless (same prompt).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._write_failed = False

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            with open(self._path(key), encoding="utf-8") as f:
                reply = json.load(f).get("reply")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, AttributeError):
            return None  # unreadable or corrupt entry: a miss, rewritten on success
        return reply if isinstance(reply, str) else None

    def put(self, key: str, model: str, reply: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({"model": model, "reply": reply}, f, ensure_ascii=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            if not self._write_failed:  # say it once; the judge keeps working without the cache
                log.warning("judge cache %s is not writable (%s); continuing without caching", self.root, exc)
                self._write_failed = True


# --- the judge -------------------------------------------------------------------


class _Failure(Exception):
    """A failed attempt; ``retry`` says whether another attempt can help.

    ``status`` is the HTTP status when the server answered with an error, and
    ``retry_after`` the server's wait hint in seconds (see :func:`_retry_after_seconds`).
    ``answered``: the server did answer about this very item (an empty reply, or a request it
    refused as such: HTTP 400, 413, 422), as opposed to not answering at all.
    """

    def __init__(
        self, reason: str, retry: bool = True, *, status: int | None = None, retry_after: float | None = None,
        answered: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.status = status
        self.retry_after = retry_after
        self.answered = answered


class _LoopState:
    """What must belong to one event loop: the HTTP client, the semaphore, shared in-flight requests."""

    def __init__(self, client: Any, concurrency: int) -> None:
        self.client = client
        self.semaphore = asyncio.Semaphore(concurrency)
        self.inflight: dict[tuple[str, str], asyncio.Future[str | None]] = {}


_RETRY_STATUS = {408, 409, 425, 429}
_RATE_LIMIT_STATUS = {429, 503}  # statuses whose wait hint (Retry-After) the judge honours
_ITEM_REFUSED_STATUS = {400, 413, 422}  # the server refuses this request as such (too long, malformed)

_sleep = asyncio.sleep  # the judge's only sleep, between attempts (tests replace it)


def _retry_after_seconds(headers: Any, now: datetime | None = None) -> float | None:
    """The server's wait hint in seconds from response headers, or ``None`` without a usable one.

    Checked in order, the first usable one wins: ``retry-after-ms`` (milliseconds,
    OpenAI's header), ``Retry-After`` as delay-seconds (fractional allowed), then
    ``Retry-After`` as an HTTP-date (seconds from ``now``, default the current UTC
    time). Negative, NaN, spelled-out infinite, unparsable and past values are not
    usable; a number too large for a float is (it means "very long", capped by the caller).
    """
    if not callable(getattr(headers, "get", None)):
        return None

    def number(text: str, divisor: float) -> float | None:
        try:
            value = float(text)
        except (TypeError, ValueError):
            return None
        if math.isnan(value) or value < 0:
            return None
        if math.isinf(value) and text.strip().lower().lstrip("+") in ("inf", "infinity"):
            return None  # a literal infinity is garbage, not a wait
        return value / divisor

    ms = headers.get("retry-after-ms")  # httpx.Headers: case-insensitive
    value = headers.get("retry-after")
    if isinstance(ms, str):
        hint = number(ms, 1000.0)
        if hint is not None:
            return hint
    if not isinstance(value, str) or not value.strip():
        return None
    hint = number(value, 1.0)
    if hint is not None:
        return hint
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=timezone.utc)
    seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return seconds if seconds > 0 else None


class Judge:
    """Scores answers with an LLM behind an OpenAI-compatible API (see the module docstring).

    Sync entry points (``score_many``, ``complete_many``, ``check``) run their own event
    loop, in a worker thread when called from inside a running loop; async code can
    ``await`` ``ascore`` / ``ascore_many`` / ``acomplete`` / ``acomplete_many`` directly.
    """

    def __init__(self, config: JudgeConfig) -> None:
        if not isinstance(config, JudgeConfig):
            raise PasrError(f"Judge needs a JudgeConfig, got {type(config).__name__}")
        self.config = config
        self.calls = 0
        self.failures = 0
        self.cache_hits = 0
        self.retries = 0
        self.rate_limited = 0
        self.rate_limit_wait_s = 0.0
        self._counter_lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
        self._states_lock = threading.Lock()
        self._cache = _DiskCache(Path(config.cache_dir).expanduser()) if config.cache_dir else None

    def __repr__(self) -> str:
        return (
            f"Judge(base_url={self.config.base_url!r}, model={self.config.model!r}, "
            f"calls={self.calls}, failures={self.failures}, cache_hits={self.cache_hits}, "
            f"rate_limited={self.rate_limited})"
        )

    def stats(self) -> dict[str, int | float]:
        """The counters as a dict (for logging); ``rate_limit_wait_s`` is in seconds."""
        with self._counter_lock:
            return {
                "calls": self.calls,
                "failures": self.failures,
                "cache_hits": self.cache_hits,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "rate_limit_wait_s": self.rate_limit_wait_s,
            }

    def _count(self, name: str, n: float = 1) -> None:
        with self._counter_lock:
            setattr(self, name, getattr(self, name) + n)

    # --- scoring ------------------------------------------------------------

    async def ascore(self, question: str, reference: str, answer: str, task: str) -> float:
        """Score one answer in [0, 1]; ``fallback_score`` when the judge fails."""
        verdict = await self.averdict(question, reference, answer, task)
        return self.config.fallback_score if verdict.score is None else verdict.score

    async def averdict(self, question: str, reference: str, answer: str, task: str) -> "Verdict":
        """The judge's :class:`Verdict` on one answer: a score, the fallback, or ``unavailable``."""
        messages = judge_messages(str(question), str(reference), "" if answer is None else str(answer), task)
        reply, answered = await self._complete(messages, self.config.max_tokens, "score")
        score = parse_score(reply)
        if score is not None:
            return Verdict(score, SCORED)
        if answered:
            return Verdict(self.config.fallback_score, FALLBACK)
        return Verdict(None, UNAVAILABLE)

    async def ascore_many(self, items: Sequence[dict[str, Any]]) -> list[float]:
        """Score many items concurrently (at most ``concurrency`` requests at a time)."""
        checked = [_check_item(i, item) for i, item in enumerate(items)]
        return list(await asyncio.gather(*(self.ascore(*fields) for fields in checked)))

    def score_many(self, items: Sequence[dict[str, Any]]) -> list[float]:
        """Scores for items with keys question, reference, answer (and task, default "open")."""
        return [self.config.fallback_score if v.score is None else v.score for v in self.verdicts(items)]

    def verdicts(self, items: Sequence[dict[str, Any]]) -> list["Verdict"]:
        """One :class:`Verdict` per item (keys as :meth:`score_many`), so callers can tell a score, the
        fallback for a reply without a score, and a judge that never answered apart."""
        checked = [_check_item(i, item) for i, item in enumerate(items)]  # bad input fails before any request
        if not checked:
            return []

        async def run() -> list[Verdict]:
            return list(await asyncio.gather(*(self.averdict(*fields) for fields in checked)))

        return self._run(run)

    # --- raw completions (LLM analyses) -----------------------------------------

    async def acomplete(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None) -> str | None:
        """The judge model's reply to ``messages``, or ``None`` when it fails (cached like scores)."""
        return (await self._complete(messages, max_tokens or self.config.max_tokens, "text"))[0]

    async def acomplete_many(
        self, prompts: Sequence[list[dict[str, Any]]], *, max_tokens: int | None = None
    ) -> list[str | None]:
        return list(await asyncio.gather(*(self.acomplete(p, max_tokens=max_tokens) for p in prompts)))

    def complete_many(
        self, prompts: Sequence[list[dict[str, Any]]], *, max_tokens: int | None = None
    ) -> list[str | None]:
        """Raw reply texts for chat prompts (``None`` where a request failed).

        ``max_tokens`` defaults to ``config.max_tokens``, which is sized for a bare
        score: pass a larger value for analyses that need sentences.
        """
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, list) or not all(isinstance(m, dict) and "role" in m for m in prompt):
                raise PasrError(f"complete_many: prompt {i} must be a list of chat messages ({{'role', 'content'}} dicts)")
        if not prompts:
            return []
        return self._run(lambda: self.acomplete_many(prompts, max_tokens=max_tokens))

    async def aclose(self) -> None:
        """Close the HTTP client of the running loop (only needed after awaiting the a* methods)."""
        await self._close_state()

    # --- health check -------------------------------------------------------------

    def check(self) -> list[str]:
        """Ask the server for its models; raise PasrError unless it answers and serves ``config.model``.

        Call it once before a long run so a typo in the URL or model name fails at once
        rather than turning every score into the fallback.
        """

        async def models() -> list[str]:
            client = self._state().client
            try:
                page = await asyncio.wait_for(client.models.list(), timeout=self.config.timeout)
            except Exception as exc:
                hint = ""
                if getattr(exc, "status_code", None) == 404 and not self.config.base_url.rstrip("/").endswith("/v1"):
                    hint = " (an OpenAI-compatible root usually ends in /v1)"
                raise PasrError(
                    f"judge server {self.config.base_url} did not answer /models ({self._redact(_describe(exc))}); "
                    f"check JudgeConfig.base_url{hint} and that the server is running"
                ) from None
            return [m.id for m in page.data]

        ids = self._run(models)
        if self.config.model not in ids:
            raise PasrError(
                f"JudgeConfig.model={self.config.model!r} is not served by {self.config.base_url} "
                f"(it serves: {', '.join(ids) or 'nothing'})"
            )
        return ids

    # --- machinery ------------------------------------------------------------------

    def _run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine to completion on a fresh event loop, off-thread if a loop is running here."""

        async def main() -> T:
            try:
                return await make()
            finally:
                await self._close_state()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        # Called from async code: asyncio.run() would fail here, so use a worker thread
        # with its own loop. This blocks the caller's loop; async callers should await
        # the a* methods instead.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pasr-judge") as pool:
            return pool.submit(asyncio.run, main()).result()

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._states_lock:
            state = self._states.get(loop)
            if state is None:
                state = _LoopState(self._new_client(), self.config.concurrency)
                self._states[loop] = state
            return state

    async def _close_state(self) -> None:
        loop = asyncio.get_running_loop()
        with self._states_lock:
            state = self._states.pop(loop, None)
        if state is not None:
            await state.client.close()

    def _new_client(self) -> Any:
        import httpx
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        limits = httpx.Limits(max_connections=self.config.concurrency, max_keepalive_connections=self.config.concurrency)
        return AsyncOpenAI(
            base_url=self.config.base_url,
            api_key=resolve_api_key(self.config),
            timeout=self.config.timeout,
            max_retries=0,  # retries are ours: counted, logged, with our backoff
            http_client=DefaultAsyncHttpxClient(limits=limits, timeout=self.config.timeout),
        )

    def _redact(self, text: str) -> str:
        key = resolve_api_key(self.config)
        if key and key != DUMMY_API_KEY:
            text = text.replace(key, "***")
        return text

    async def _complete(self, messages: list[dict[str, Any]], max_tokens: int, kind: str) -> tuple[str | None, bool]:
        """``(reply, answered)``: a usable reply from the cache, a shared in-flight request, or the server.

        ``reply`` is None on failure; ``answered`` then says whether the server did answer (a reply
        without a usable score, or a request it refused for good, e.g. HTTP 400) rather than never
        answering (timeouts, connection errors, HTTP 429/5xx to the last retry). ``kind`` is "score"
        (the reply must hold a number, see :func:`parse_score`) or "text" (any non-empty reply).
        """
        cfg = self.config
        key = _cache_key(cfg.model, messages, cfg.temperature, max_tokens)
        if self._cache is not None:
            cached = self._cache.get(key)
            if cached is not None and _usable(cached, kind):
                self._count("cache_hits")
                return cached, True
        state = self._state()
        shared = state.inflight.get((key, kind))
        if shared is not None:  # the same prompt is being asked right now: wait for that answer
            self._count("cache_hits")
            reply, answered = await asyncio.shield(shared)
            if reply is None:
                self._count("failures")
            return reply, answered
        future: asyncio.Future[tuple[str | None, bool]] = asyncio.get_running_loop().create_future()
        state.inflight[(key, kind)] = future
        try:
            self._count("calls")
            reply, answered = await self._request(state, messages, max_tokens, kind)
            if reply is not None and self._cache is not None:
                self._cache.put(key, cfg.model, reply)
            future.set_result((reply, answered))
            return reply, answered
        finally:
            if not future.done():
                future.set_result((None, False))  # cancelled or crashed: waiters degrade, this caller sees the error
            state.inflight.pop((key, kind), None)

    async def _request(
        self, state: _LoopState, messages: list[dict[str, Any]], max_tokens: int, kind: str
    ) -> tuple[str | None, bool]:
        """``(reply, answered)`` as :meth:`_complete` returns them, after the retries."""
        cfg = self.config
        reason = "no attempt"
        answered = False  # whether the last attempt got an answer from the server (unusable or refused)
        attempts = 0
        hint: float | None = None  # the last failure's server wait hint, seconds
        rate_limit_status: int | None = None  # set while the last failure was a 429/503
        waited = 0.0  # seconds slept between this item's attempts
        while attempts <= cfg.retries:
            if attempts:
                self._count("retries")
                delay = cfg.backoff * 2 ** (attempts - 1) * random.uniform(0.5, 1.0)
                if hint is not None:
                    if hint > cfg.timeout:
                        log.debug(
                            "judge: server asked to wait %.2fs; waiting at most the judge timeout %gs instead",
                            hint,
                            cfg.timeout,
                        )
                    if min(hint, cfg.timeout) > delay:  # the server's wait is longer than ours: honour it
                        delay = min(hint, cfg.timeout)
                        self._count("rate_limit_wait_s", delay)
                log.debug("judge retry %d/%d in %.2fs after: %s", attempts, cfg.retries, delay, self._redact(reason))
                await _sleep(delay)
                waited += delay
            attempts += 1
            hint, rate_limit_status = None, None
            try:
                async with state.semaphore:
                    text = await asyncio.wait_for(self._once(state, messages, max_tokens), timeout=cfg.timeout)
            except _Failure as exc:
                reason = exc.reason
                answered = exc.answered
                if exc.status in _RATE_LIMIT_STATUS:
                    self._count("rate_limited")
                    hint, rate_limit_status = exc.retry_after, exc.status
                if not exc.retry:
                    break
                continue
            except asyncio.TimeoutError:
                reason, answered = f"timed out after {cfg.timeout:g}s", False
                continue
            if _usable(text, kind):
                return text, True
            reason, answered = f"no score in reply {_shorten(text)!r}", True
        self._count("failures")
        if kind != "score":
            outcome = "returning None"
        elif answered:
            outcome = f"using fallback score {cfg.fallback_score:g}"
        else:
            outcome = (f"no answer: fallback score {cfg.fallback_score:g} in training; `pasr eval` keeps the "
                       "example unjudged for a rerun")
        if rate_limit_status is not None:
            log.warning(
                "judge request to %s (model %s) %s (HTTP %d) after %d attempt(s); "
                "waited %.1fs in total between attempts: %s; %s",
                cfg.base_url,
                cfg.model,
                "rate-limited" if rate_limit_status == 429 else "unavailable",
                rate_limit_status,
                attempts,
                waited,
                self._redact(reason),
                outcome,
            )
        else:
            log.warning(
                "judge request to %s (model %s) failed after %d attempt(s): %s; %s",
                cfg.base_url,
                cfg.model,
                attempts,
                self._redact(reason),
                outcome,
            )
        return None, answered

    async def _once(self, state: _LoopState, messages: list[dict[str, Any]], max_tokens: int) -> str:
        """One request; raises _Failure saying what went wrong and whether a retry can help."""
        import openai

        try:
            response = await state.client.chat.completions.create(
                model=self.config.model,
                messages=messages,
                max_tokens=max_tokens,
                temperature=self.config.temperature,
            )
        except openai.APIStatusError as exc:
            status = exc.status_code
            retry = status in _RETRY_STATUS or status >= 500
            hint = None
            if status in _RATE_LIMIT_STATUS:
                hint = _retry_after_seconds(getattr(getattr(exc, "response", None), "headers", None))
            raise _Failure(f"HTTP {status}: {_describe(exc)}", retry=retry, status=status, retry_after=hint,
                           answered=status in _ITEM_REFUSED_STATUS) from None
        except openai.APITimeoutError:
            raise _Failure(f"timed out after {self.config.timeout:g}s") from None
        except openai.APIConnectionError as exc:
            raise _Failure(f"connection error: {_describe(exc.__cause__ or exc)}") from None
        except (asyncio.CancelledError, asyncio.TimeoutError):
            raise
        except Exception as exc:  # malformed responses surface as assorted errors
            raise _Failure(f"bad response: {_describe(exc)}") from None
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raise _Failure(f"bad response: no choices in {_shorten(str(response))!r}") from None
        if not isinstance(content, str) or not content.strip():
            raise _Failure("empty reply", answered=True)
        return content


def _usable(text: str, kind: str) -> bool:
    return bool(text.strip()) if kind == "text" else parse_score(text) is not None


def _check_item(index: int, item: Any) -> tuple[str, str, Any, str]:
    if not isinstance(item, dict):
        raise PasrError(f"judge item {index}: expected a dict with question, reference, answer, task; got {type(item).__name__}")
    for field in ("question", "reference", "answer"):
        if field not in item:
            raise PasrError(f"judge item {index}: missing field {field!r} (items need question, reference, answer, task)")
    return item["question"], item["reference"], item["answer"], item.get("task") or "open"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return _shorten(text, 300)


def _shorten(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_ARGUMENT_FIELDS = {
    "base_url": "judge_url",
    "model": "judge_model",
    "max_tokens": "judge_max_tokens",
    "api_key_env": "judge_api_key_env",
    "concurrency": "judge_concurrency",
    "timeout": "judge_timeout",
    "retries": "judge_retries",
    "cache_dir": "judge_cache_dir",
    "fallback_score": "judge_fallback_score",
}


def judge_from_args(args: Any, *, check: bool = True, names: dict[str, str] | None = None) -> "Judge | None":
    """The one construction of a judge from command settings, or None when no ``judge_url`` is set.

    ``args`` is anything with ``judge_*`` attributes (``pasr.train.config.JudgeArguments`` for
    ``pasr train`` / ``pasr sft`` / STaR, ``pasr.eval.runner.EvalSettings`` for ``pasr eval``);
    an attribute it lacks keeps :class:`JudgeConfig`'s default. ``check`` asks the server for
    its models first (:meth:`Judge.check`), so a wrong URL or model name fails before work
    starts. Raises :class:`~pasr.errors.PasrError` for a half-given or invalid judge; its message names
    the settings as the user gave them: ``names`` maps a JudgeConfig field to that name (default: the
    ``judge_*`` attribute, as recipes spell it).
    """
    if not getattr(args, "judge_url", None):
        if getattr(args, "judge_model", None):
            raise PasrError("judge_model needs judge_url too: set both or neither")
        return None
    values = {name: getattr(args, attr) for name, attr in _ARGUMENT_FIELDS.items() if hasattr(args, attr)}
    if not values.get("model"):
        raise PasrError("judge_url needs judge_model too: set both or neither")
    shown = {**_ARGUMENT_FIELDS, **(names or {})}
    try:
        judge = Judge(JudgeConfig(**values))
        if check:
            judge.check()
    except PasrError as err:
        text = str(err)
        for field in sorted(shown, key=len, reverse=True):
            text = text.replace(f"JudgeConfig.{field}", shown[field])
        raise PasrError(text) from None
    return judge
