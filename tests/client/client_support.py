"""Helpers of the SDK and CLI tests (imported by name: tests are not a package).

- `LoopThread`: an asyncio loop in a thread, so that blocking test code can drive
  async code (the in-process app, an AsyncClient) without a loop of its own.
- `BlockingASGITransport`: a sync httpx transport in front of `httpx.ASGITransport`,
  so the blocking `Client` reaches the real app in-process too.
- `Blocking`: an AsyncClient seen through blocking methods, so one table of cases
  runs against both clients.
- `ScriptedServer`: a real HTTP server on 127.0.0.1 answering from a script
  (429 with Retry-After, 503, dropped connections, …) and recording every request.
- `Proxy`: a real HTTP proxy to a batgate server that can lose answers or hold a
  request, to interrupt the CLI at a chosen point.
- `LiveServer`: `batgate serve` as a subprocess on a free port.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx

from batgate.client import AsyncClient, BatgateError, PollPolicy, Retries
from batgate.client.core import Call, Gather, Op, Sleep

T = TypeVar("T")

BATGATE = Path(sys.executable).parent / "batgate"

# Quick polling and retries, so that waits and retries take milliseconds in tests.
FAST_POLL = PollPolicy.exponential(first=0.05, factor=1.5, max_interval=0.3, min_interval=0.05)
FAST_RETRIES = Retries.exponential(retries=3, first=0.01, factor=2.0, jitter=0.1)

# Sandbox timing of every server the tests start: fast delivery, "slow" (0004) never
# finishing within a test, no rate limit.
SERVER_ENV = {
    "BATGATE_SANDBOX__DELIVERY_DELAY": "0.1",
    "BATGATE_SANDBOX__SLOW_DELAY": "60",
    "BATGATE_SANDBOX__JITTER": "0.2",
    "BATGATE_DISPATCHER__POLL_INTERVAL": "0.05",
    "BATGATE_DISPATCHER__RETRY_DELAYS": "[0.05,0.05]",
    "BATGATE_RATE_LIMIT__ENABLED": "false",
    # Wrong credentials are tried on purpose: no login throttling (tested in test_auth.py).
    "BATGATE_AUTH__FAILURES_PER_ADDRESS": "1000000",
    "BATGATE_AUTH__FAILURES_PER_USERNAME": "1000000",
}


PASSWORD = "s3cret-Pa55"  # alice's password on every target

MakeClient = Callable[..., Any]  # make_client(**options) -> a client


class LoopThread:
    """An event loop running in a daemon thread; `run(coro)` blocks for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Target:
    """Where the clients of a test go, and the accounts there."""

    name: str
    url: str
    loop: LoopThread  # where AsyncClients run
    sync_transport: Callable[[], httpx.BaseTransport | None]
    async_transport: Callable[[], httpx.AsyncBaseTransport | None]
    alice: str  # username of an account with a password
    alice_key: str
    bob_key: str
    database_url: str = ""  # the server's database, to seed through the real store


class BlockingASGITransport(httpx.BaseTransport):
    """Sync requests to an ASGI app served by `httpx.ASGITransport` in a LoopThread."""

    def __init__(self, app: Any, loop: LoopThread) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(request)
            body = await response.aread()
            return response.status_code, response.headers.raw, body

        status, headers, body = self._loop.run(call())
        return httpx.Response(status, headers=headers, content=body)


class Blocking:
    """An AsyncClient whose coroutine methods block, running on a LoopThread."""

    def __init__(self, client: AsyncClient, loop: LoopThread) -> None:
        self._client = client
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *args, **kwargs: self._loop.run(attr(*args, **kwargs))
        return attr

    def close(self) -> None:
        self._loop.run(self._client.aclose())


# -- a scripted HTTP server ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One scripted answer: a status, headers and a JSON body; or an action."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    action: str = ""  # "drop": close the connection without answering
    delay: float = 0.0  # seconds before answering
    raw: bytes | None = None  # a body sent as it is, instead of `body` as JSON


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers each request from `script` (path → answers, used in order; the last repeats)."""

    def __init__(self) -> None:
        self.script: dict[str, list[Answer]] = {}
        self.default: Callable[[Seen], Answer] = _not_found
        self.seen: list[Seen] = []
        # Requests being answered, counted from when one arrives until its answer is
        # written, for the requests of the current test only (`generation`): one a
        # previous test left sleeping (a client timed out) must not count here.
        self.inflight = 0
        self.max_inflight = 0
        self.generation = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.default = _not_found
            self.seen.clear()
            self.inflight = self.max_inflight = 0
            self.generation += 1

    def on(self, path: str, *answers: Answer) -> None:
        self.script[path] = list(answers)

    def requests(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if path is None or s.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _next(self, seen: Seen) -> tuple[Answer, int]:
        """The answer to `seen`, and the generation it is counted in."""
        with self._lock:
            self.seen.append(seen)
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            answers = self.script.get(seen.path)
            if not answers:
                return self.default(seen), self.generation
            return (answers.pop(0) if len(answers) > 1 else answers[0]), self.generation

    def _done(self, generation: int) -> None:
        with self._lock:
            if generation == self.generation:
                self.inflight -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, dict(self.headers.items()), body)
                answer, generation = server._next(seen)
                answered = False
                try:
                    if answer.delay:
                        time.sleep(answer.delay)
                    if answer.action == "drop":
                        self.close_connection = True
                        return
                    payload = (
                        answer.raw if answer.raw is not None else json.dumps(answer.body).encode()
                    )
                    # No longer in flight once its answer starts: the client may send its
                    # next request (on another connection) as soon as it has read it.
                    server._done(generation)
                    answered = True
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    if not answered:
                        server._done(generation)

            do_GET = do_POST = do_DELETE = _serve

        return Handler


def _not_found(seen: Seen) -> Answer:
    return Answer(404, _error("NOT_FOUND"))


def _error(code: str, message: str = "scripted") -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_answer(status: int, code: str, **headers: str) -> Answer:
    return Answer(status, _error(code), headers)


def status_doc(message_id: str, status: str = "delivered", **extra: Any) -> dict[str, Any]:
    doc = {"messagelistId": 1, "messageId": message_id, "deliverystatus": status, "partscount": 1}
    if status in ("delivered", "undeliverable", "permanenterror"):
        doc["cost"] = 0.05 if status == "delivered" else 0.0
    return {**doc, **extra}


# -- a proxy that can interrupt the CLI ------------------------------------------------------


class Proxy:
    """Forwards to a batgate server; records every messagelistId the server answered.

    `lose_after=n`: the (n+1)-th send is forwarded (so it is stored) but its answer is
    lost (the connection is closed), and every later request gets 503.
    `hold_after=n`: the (n+1)-th send waits for `release` before it is forwarded;
    `held` is set when it arrives.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lose_after: int | None = None
        self.hold_after: int | None = None
        self.held = threading.Event()
        self.release = threading.Event()
        self.forwarded = threading.Event()
        self.list_ids: list[int] = []
        self.sends = 0
        self._broken = False
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=upstream, timeout=30)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def heal(self) -> None:
        """The network is back: pass everything through from now on."""
        with self._lock:
            self.lose_after = self.hold_after = None
            self._broken = False

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
        self._http.close()

    def _decide(self, method: str) -> str:
        with self._lock:
            if self._broken:
                return "fail"
            if method != "POST":
                return "pass"
            n = self.sends
            self.sends += 1
            if self.lose_after is not None and n == self.lose_after:
                self._broken = True
                return "lose"
            if self.hold_after is not None and n == self.hold_after:
                return "hold"
            return "pass"

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> httpx.Response:
        keep = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        response = self._http.request(method, path, headers=keep, content=body)
        if method == "POST" and response.status_code == 200:
            with self._lock:
                self.list_ids.append(int(response.json()["messagelistId"]))
        return response

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                decision = proxy._decide(self.command)
                try:
                    if decision == "fail":
                        self._answer(503, json.dumps(_error("INTERNAL_ERROR")).encode(), {})
                        return
                    if decision == "hold":
                        proxy.held.set()
                        proxy.release.wait(30)
                    response = proxy._forward(self.command, self.path, headers, body)
                    if decision in ("hold", "lose"):
                        proxy.forwarded.set()
                    if decision == "lose":
                        self.close_connection = True
                        return
                    self._answer(response.status_code, response.content, response.headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _answer(self, status: int, content: bytes, headers: Mapping[str, str]) -> None:
                self.send_response(status)
                for name in ("Content-Type", "Retry-After", "WWW-Authenticate"):
                    if name in headers:
                        self.send_header(name, headers[name])
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _serve

        return Handler


# -- a live batgate server -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str) -> dict[str, str]:
    """Our environment without any BATGATE_* variable, plus the test server's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATGATE_")}
    return {**env, **SERVER_ENV, "BATGATE_DATABASE_URL": database_url}


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    workdir: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def cli(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BATGATE), *args],
            env=dict(env or self.env),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def create_account(self, prefix: str, password: str | None = None) -> tuple[str, str]:
        """A new account made by the real CLI: (username, api key)."""
        username = f"{prefix}{next(self._names)}"
        args = ["accounts", "create", username] + (["--password", password] if password else [])
        done = self.cli(*args)
        assert done.returncode == 0, done.stderr
        return username, json.loads(done.stdout)["apiKey"]


@contextmanager
def live_server(workdir: Path, database_url: str | None = None) -> Iterator[LiveServer]:
    """`batgate serve` on a free port on `database_url` (default a fresh SQLite file)."""
    env = server_env(database_url or f"sqlite:///{workdir / 'batgate.db'}")
    port = free_port()
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(BATGATE), "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, workdir / "server.log")
        yield LiveServer(url, env, workdir)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"batgate serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"batgate serve not healthy in 30 s:\n{log.read_text()}")


# -- the sans-I/O core, driven by hand ---------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Answerer = Callable[[httpx.Request], httpx.Response]


class Driver:
    """Runs an op: answers Calls with `answer`, records (time, request), moves the clock."""

    def __init__(self, answer: Answerer, clock: Clock) -> None:
        self.answer = answer
        self.clock = clock
        self.calls: list[tuple[float, httpx.Request]] = []
        self.sleeps: list[float] = []

    def run(self, op: Op[Any]) -> Any:
        reply: Any = None
        while True:
            try:
                command = op.send(reply)
            except StopIteration as done:
                return done.value
            reply = self.do(command)

    def do(self, command: Any) -> Any:
        if isinstance(command, Call):
            self.calls.append((self.clock.now, command.request))
            return self.answer(command.request)
        if isinstance(command, Sleep):
            assert command.seconds >= 0
            self.sleeps.append(command.seconds)
            self.clock.now += command.seconds
            return None
        assert isinstance(command, Gather)
        results = []
        for op in command.ops:
            try:
                results.append(self.run(op))
            except BatgateError as exc:
                results.append(exc)
        return results

    def requests(self, method: str | None = None) -> list[httpx.Request]:
        return [r for _, r in self.calls if method is None or r.method == method]

    def times_of(self, message_id: str) -> list[float]:
        return [t for t, r in self.calls if r.url.path.endswith("/" + message_id)]
