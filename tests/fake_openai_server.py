"""A small OpenAI-compatible HTTP server for tests (not a test module itself).

Tests of the LLM judge and of the OpenAI-compatible evaluation backend need a
real server to talk to: the ``openai`` client, its HTTP stack, timeouts, status
codes and concurrency are exactly what can go wrong. This one runs the stdlib
``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0) in a background thread and
answers

* ``POST /v1/chat/completions`` with whatever a *responder* function returns,
* ``GET /v1/models`` with the configured model ids.

It records every request (body and headers), counts them, and tracks the largest
number of requests in flight at once. Pytest puts ``tests/`` on ``sys.path``, so
test modules import it as ``from fake_openai_server import FakeOpenAIServer, Reply``.

Example::

    def responder(req: Request) -> str | Reply:
        if req.index < 2:
            return Reply(status=500)            # first two requests fail
        return "0.8"                            # then a normal completion

    with FakeOpenAIServer(responder) as server:
        client = OpenAI(base_url=server.base_url, api_key="x")
        ...
        assert server.count == 3

A responder returns either the reply text (``str``), a list of texts (one choice
each, for requests with ``n > 1``), or a :class:`Reply` for anything special:
an HTTP error status, a delay, a raw (garbage) body, or explicit token counts.
Token counts default to whitespace word counts of the prompt and the reply.
Streaming is not supported.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAIServer", "Reply", "Request", "constant", "sequence"]


@dataclass
class Reply:
    """What the server sends back for one chat-completions request.

    ``content``: the assistant text, or a list of texts (one choice each).
    ``status``: HTTP status; anything but 200 sends an OpenAI-style error body.
    ``delay``: seconds to wait before answering (to provoke client timeouts).
    ``body``: raw bytes sent as-is with ``content_type`` instead of a completion (garbage).
    ``prompt_tokens`` / ``completion_tokens``: usage counts; ``None`` means word counts.
    ``usage``: ``False`` leaves the ``usage`` field out of the response.
    """

    content: str | list[str] | None = ""
    status: int = 200
    delay: float = 0.0
    body: bytes | None = None
    content_type: str = "text/plain"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    usage: bool = True
    error_message: str = "fake server error"


@dataclass
class Request:
    """One request the server received (a chat completion or a models listing)."""

    index: int  # 0-based position among chat-completions requests (-1 for other paths)
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def user_text(self) -> str:
        """Content of the last user message (what most responders key on)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text(message.get("content"))
        return ""


Responder = Callable[[Request], "str | list[str] | Reply"]


def constant(reply: str | Reply) -> Responder:
    """A responder that always answers ``reply``."""
    return lambda request: reply


def sequence(*replies: str | Reply) -> Responder:
    """A responder answering the i-th chat request with ``replies[i]`` (the last one repeats)."""
    if not replies:
        raise ValueError("sequence() needs at least one reply")
    return lambda request: replies[min(request.index, len(replies) - 1)]


def _text(content: Any) -> str:
    """Message content as text (plain strings, or the list-of-parts form)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _words(text: str) -> int:
    return len(text.split())


class FakeOpenAIServer:
    """OpenAI-compatible server on localhost; use as a context manager or call start()/stop().

    ``api_key``: when set, requests without ``Authorization: Bearer <api_key>`` get a 401
    (whose message echoes the presented key, as real servers partly do, so tests can check
    that clients keep it out of their logs). ``models`` are listed by ``/v1/models``.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        models: tuple[str, ...] | list[str] = ("fake-model",),
        api_key: str | None = None,
        delay: float = 0.0,
    ) -> None:
        self.responder: Responder = responder or constant("1")
        self.models = list(models)
        self.api_key = api_key
        self.delay = delay
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        handler = _make_handler(self)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False  # slow handlers are released via _stopping instead
        self._httpd = httpd
        self._stopping.clear()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what tests look at -----------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """Base URL for OpenAI clients, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.index >= 0]

    @property
    def count(self) -> int:
        """Number of chat-completions requests received so far."""
        return len(self.chat_requests)

    def reset(self) -> None:
        """Forget recorded requests and counters (the responder stays)."""
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0

    # --- request handling (called from handler threads) -------------------

    def _record(self, path: str, headers: dict[str, str], body: dict[str, Any], chat: bool) -> Request:
        with self._lock:
            index = sum(1 for r in self.requests if r.index >= 0) if chat else -1
            request = Request(index=index, path=path, headers=headers, body=body)
            self.requests.append(request)
            return request

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _completion(self, request: Request) -> tuple[int, bytes, str]:
        """Status, body and content type for one chat-completions request."""
        result = self.responder(request)
        reply = result if isinstance(result, Reply) else Reply(content=result)
        self._sleep(self.delay + reply.delay)
        if reply.body is not None:
            return reply.status, reply.body, reply.content_type
        if reply.status != 200:
            return reply.status, _error(reply.error_message, "server_error"), "application/json"
        n = int(request.body.get("n") or 1)
        contents = reply.content if isinstance(reply.content, list) else [reply.content] * n
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
            for i, text in enumerate(contents)
        ]
        payload: dict[str, Any] = {
            "id": f"chatcmpl-fake-{request.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model or (self.models[0] if self.models else "fake-model"),
            "choices": choices,
        }
        if reply.usage:
            prompt = reply.prompt_tokens
            if prompt is None:
                prompt = sum(_words(_text(m.get("content"))) for m in request.messages)
            completion = reply.completion_tokens
            if completion is None:
                completion = sum(_words(t or "") for t in contents)
            payload["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return 200, json.dumps(payload).encode(), "application/json"


def _error(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}}).encode()


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout); nothing to do

        def _authorized(self) -> bool:
            if server.api_key is None:
                return True
            presented = self.headers.get("Authorization", "")
            if presented == f"Bearer {server.api_key}":
                return True
            key = presented.removeprefix("Bearer ")
            self._send(401, _error(f"Incorrect API key provided: {key}", "invalid_request_error"))
            return False

        def _headers(self) -> dict[str, str]:
            return {k.lower(): v for k, v in self.headers.items()}

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            server._record(path, self._headers(), {}, chat=False)
            if not self._authorized():
                return
            if path == "/v1/models":
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in server.models]
                self._send(200, json.dumps({"object": "list", "data": data}).encode())
            else:
                self._send(404, _error(f"no route {path}", "not_found"))

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            chat = path == "/v1/chat/completions"
            request = server._record(path, self._headers(), body if isinstance(body, dict) else {}, chat=chat)
            if not chat:
                self._send(404, _error(f"no route {path}", "not_found"))
                return
            server._enter()
            try:
                if not self._authorized():
                    return
                if body.get("stream"):
                    self._send(400, _error("streaming is not supported by the fake server", "invalid_request_error"))
                    return
                try:
                    status, payload, content_type = server._completion(request)
                except Exception as exc:  # a broken responder shows up as a 500 with its message
                    status, payload, content_type = 500, _error(f"responder raised {exc!r}", "server_error"), "application/json"
            finally:
                server._leave()
            self._send(status, payload, content_type)

    return Handler
