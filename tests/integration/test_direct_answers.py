"""api.server's shortcut with an answer that takes time (PostgreSQL's shared read):
the connection holds what the client sends meanwhile, answers in order, and a
shutdown or a lost client in the middle loses nothing and breaks nothing.

A real uvicorn server on loopback with the protocol class `batgate serve` uses, its
`Direct` a stand-in whose answers the test gives when it chooses (the e2e tests in
tests/e2e/test_status_shortcut.py run the real one on both databases); raw sockets,
so that each request goes exactly as written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from batgate.api.server import LimitedHttpProtocol, Response, protocol_class
from batgate.config import HttpSettings
from waiting import until

ORDINARY = b"the ordinary way"


@dataclass
class Lookups:
    """The stand-in for api.fastpath's `respond_now`: ids starting "now" are answered
    at once, "later" ones when the test sets their future (only if the connection may
    wait: else the ordinary way), anything else the ordinary way."""

    calls: list[tuple[str, bool]] = field(default_factory=list)
    pending: dict[str, asyncio.Future[Response]] = field(default_factory=dict)

    def __call__(
        self, headers: list[tuple[bytes, bytes]], message_id: str, can_wait: bool
    ) -> Response | asyncio.Future[Response] | None:
        self.calls.append((message_id, can_wait))
        if message_id.startswith("now"):
            return answer(message_id)
        if message_id.startswith("later") and can_wait:
            future = asyncio.get_running_loop().create_future()
            self.pending[message_id] = future
            return future
        return None


def answer(message_id: str) -> Response:
    body = message_id.encode()
    return 200, [(b"content-length", b"%d" % len(body))], body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"%d" % len(ORDINARY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ORDINARY})


@dataclass
class Running:
    server: uvicorn.Server
    port: int
    lookups: Lookups
    clients: list[Client] = field(default_factory=list)

    async def connect(self) -> Client:
        client = Client(*await asyncio.open_connection("127.0.0.1", self.port))
        self.clients.append(client)
        return client

    def connections(self) -> list[LimitedHttpProtocol]:
        return list(self.server.server_state.connections)  # type: ignore[arg-type]


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    lookups = Lookups()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=protocol_class(HttpSettings(), lookups),
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    await until(lambda: server.started, bool, "the server started")
    port = server.servers[0].sockets[0].getsockname()[1]
    running = Running(server, port, lookups)
    yield running
    for client in running.clients:
        await client.close()
    server.should_exit = True
    for future in lookups.pending.values():
        if not future.done():
            future.cancel()
    await task


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, *paths: str) -> None:
        """The requests in one write."""
        self.writer.write(b"".join(get(path) for path in paths))
        await self.writer.drain()

    async def answer(self) -> bytes:
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return await self.reader.readexactly(length)

    async def closed(self) -> bool:
        return await self.reader.read(1) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


async def awaited(running: Running, count: int = 1) -> None:
    await until(lambda: len(running.lookups.pending), lambda n: n >= count, "answers being made")


async def holding(running: Running) -> None:
    await until(lambda: any(c._held for c in running.connections()), bool, "data held")


async def test_what_the_client_sends_while_an_answer_is_made_waits_for_it(
    running: Running,
) -> None:
    client = await running.connect()
    await client.send("/bat/message/later1")
    await awaited(running)
    await client.send("/bat/message/now2", "/healthz")
    await holding(running)
    assert running.lookups.calls == [("later1", True)]  # nothing after it parsed yet
    running.lookups.pending["later1"].set_result(answer("later1"))
    assert [await client.answer() for _ in range(3)] == [b"later1", b"now2", ORDINARY]
    assert running.lookups.calls == [("later1", True), ("now2", False)]


# (the requests of one write, the answers in order, the calls of the lookups)
IN_ONE_WRITE = [
    (["/bat/message/now1"], [b"now1"], [("now1", True)]),
    # (the second waits in uvicorn's pipeline for the first's answer, made by the app)
    (["/bat/message/later1", "/bat/message/later2"], [ORDINARY, ORDINARY], [("later1", False)]),
    (
        ["/bat/message/now1", "/bat/message/later2", "/bat/message/now3"],
        [b"now1", ORDINARY, ORDINARY],
        [("now1", False), ("later2", False)],
    ),
]


@pytest.mark.parametrize(("paths", "answers", "calls"), IN_ONE_WRITE)
async def test_only_a_request_that_came_alone_may_wait(
    running: Running, paths: list[str], answers: list[bytes], calls: list[tuple[str, bool]]
) -> None:
    """Requests after it in the same write would have to be parsed while it waits."""
    client = await running.connect()
    await client.send(*paths)
    assert [await client.answer() for _ in answers] == answers
    assert running.lookups.calls == calls


async def test_a_shutdown_while_an_answer_is_made_answers_it_then_closes(
    running: Running,
) -> None:
    client = await running.connect()
    await client.send("/bat/message/later1")
    await awaited(running)
    running.server.should_exit = True
    await until(
        lambda: any(c._close_after_answer for c in running.connections()), bool, "the shutdown"
    )
    running.lookups.pending["later1"].set_result(answer("later1"))
    assert await client.answer() == b"later1"
    assert await client.closed()


async def test_a_client_gone_while_its_answer_is_made_harms_no_other(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    gone = await running.connect()
    await gone.send("/bat/message/later1")
    await awaited(running)
    await gone.close()
    await until(lambda: len(running.connections()), lambda n: n == 0, "the connection closed")
    running.lookups.pending["later1"].set_result(answer("later1"))
    other = await running.connect()
    await other.send("/bat/message/now2")
    assert await other.answer() == b"now2"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_answer_that_fails_closes_its_connection_and_is_logged(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    client = await running.connect()
    await client.send("/bat/message/later1")
    await awaited(running)
    running.lookups.pending["later1"].set_exception(RuntimeError("a bug"))
    assert await client.closed()
    assert any("a status lookup failed" in r.getMessage() for r in caplog.records)
