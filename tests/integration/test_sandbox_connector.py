"""The sandbox carrier over HTTP: the carrier app and its connector, on a loopback port.

The carrier runs in the test's event loop with a fixed clock and a seeded dice, so
every answer can be compared with the pure `decide` given the same draws.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from batgate.channels.base import Outbound
from batgate.channels.sandbox_http import RemoteSandbox, carrier_app
from batgate.channels.simulator import Submission, decide
from batgate.config import SandboxSettings
from batgate.domain.messages import Channel, MessageType, Step
from batgate.domain.outcomes import Failed

NOW = 1_700_000_000.0
SETTINGS = SandboxSettings(delivery_delay=2.0, slow_delay=20.0, jitter=0.5)
TYPES = {
    Channel.SMS: MessageType.SMS,
    Channel.VIBER: MessageType.VIBER_PROMO,
    Channel.RCS: MessageType.RCS,
    Channel.FLASHCALL: MessageType.FLASHCALL,
}


def outbound(
    to: str, channel: Channel = Channel.SMS, attempt: int = 1, mid: str = "m-1"
) -> Outbound:
    return Outbound(mid, Step(TYPES[channel], to, "Shop", "hi", None, 600, 1), attempt)


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def connector(url: str, timeout: float = 30.0) -> AsyncIterator[RemoteSandbox]:
    """The connector; its timeout only bites where a test means it to (the carrier runs
    in this event loop: its answers never take long but on a starved machine)."""
    remote = RemoteSandbox(url, timeout, connections=8, clock=lambda: NOW)
    try:
        yield remote
    finally:
        await remote.aclose()


@pytest.mark.parametrize("channel", list(Channel))
@pytest.mark.parametrize("ending", ["4567", "0001", "0002", "0003", "0004", "0005"])
async def test_answers_what_decide_does(ending: str, channel: Channel) -> None:
    app = carrier_app(SETTINGS, clock=lambda: NOW, rng=random.Random(11))
    draws = random.Random(11)
    async with serving(app) as url, connector(url) as remote:
        for attempt in (1, 2):
            message = outbound("+38050123" + ending, channel, attempt)
            expected = decide(Submission.of(message), NOW, SETTINGS, draws.uniform(-1, 1))
            assert await remote.send(message) == expected


async def test_counts_every_submission_per_hand_over() -> None:
    async with serving(carrier_app(SETTINGS)) as url, connector(url) as remote:
        sends = [
            outbound("+380501234567", mid="a"),
            outbound("+380501234567", mid="a"),  # the same hand-over again: a repeat
            outbound("+380501234567", mid="a", attempt=2),  # a retry: a new hand-over
            outbound("+380501234567", Channel.VIBER, mid="b"),
            outbound("+380501234567", Channel.SMS, mid="b"),  # the next fallback step
            outbound("+380501234567", mid="c"),
        ]
        await asyncio.gather(*(remote.send(m) for m in sends))
        async with aiohttp.ClientSession() as http, http.get(f"{url}/stats") as answer:
            stats = await answer.json()
    assert stats == {
        "submissions": 6,
        "handovers": 5,
        "messages": 3,
        "repeats": 1,
        "repeated": [{"messageId": "a", "channel": "sms", "attempt": 1, "count": 2}],
        "submittedMoreThanOnce": {"a": 3, "b": 2},
    }


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"messageId": "m", "attempt": 1, "channel": "sms"}',
        b'{"messageId": "m", "attempt": 0, "channel": "sms", "to": "+380501234567"}',
        b'{"messageId": "m", "attempt": "1", "channel": "sms", "to": "+380501234567"}',
        b'{"messageId": "m", "attempt": 1, "channel": "telex", "to": "+380501234567"}',
        b'{"messageId": 7, "attempt": 1, "channel": "sms", "to": "+380501234567"}',
    ],
    ids=["not-json", "not-an-object", "no-to", "attempt-0", "attempt-string", "channel", "id"],
)
async def test_a_malformed_submission_is_a_400_and_not_counted(body: bytes) -> None:
    async with serving(carrier_app(SETTINGS)) as url, aiohttp.ClientSession() as http:
        async with http.post(f"{url}/messages", data=body) as answer:
            assert answer.status == 400
            assert "bad submission" in (await answer.json())["error"]
        async with http.get(f"{url}/stats") as answer:
            assert (await answer.json())["submissions"] == 0


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _hang(_request: web.Request) -> web.Response:
    await asyncio.sleep(1)
    return web.Response()


async def _status_500(_request: web.Request) -> web.Response:
    return web.Response(status=500)


async def _status_404(_request: web.Request) -> web.Response:
    return web.Response(status=404)


async def _garbage(_request: web.Request) -> web.Response:
    return web.Response(body=b'{"accepted": true}')


# what the carrier does -> the connector's timeout, retryable?, words in the reason. The
# hanging carrier answers after 1 s, in this event loop: the 0.3 s timer always fires first.
FAILURES: list[tuple[str, Handler, float, bool, str]] = [
    ("no-answer-in-time", _hang, 0.3, True, "no answer"),
    ("server-error", _status_500, 30.0, True, "HTTP 500"),
    ("refused-submission", _status_404, 30.0, False, "HTTP 404"),
    ("unreadable-answer", _garbage, 30.0, True, "unreadable"),
]


@pytest.mark.parametrize(
    ("handler", "timeout", "retryable", "words"),
    [pytest.param(h, t, r, w, id=name) for name, h, t, r, w in FAILURES],
)
async def test_carrier_trouble_is_a_typed_failure(
    handler: Handler, timeout: float, retryable: bool, words: str
) -> None:
    app = web.Application()
    app.router.add_post("/messages", handler)
    async with serving(app) as url, connector(url, timeout=timeout) as remote:
        result = await remote.send(outbound("+380501234567"))
    assert isinstance(result, Failed)
    assert result.retryable is retryable
    assert words in result.reason


async def test_a_carrier_that_is_down_is_a_retryable_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket is closed
    async with connector(f"http://127.0.0.1:{port}") as remote:
        result = await remote.send(outbound("+380501234567"))
    assert isinstance(result, Failed)
    assert result.retryable is True
    assert "no answer" in result.reason


async def test_one_connection_serves_one_send_after_another() -> None:
    peers: list[object] = []

    @web.middleware
    async def note_peer(request: web.Request, handler: Handler) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return await handler(request)

    app = carrier_app(SETTINGS)
    app.middlewares.append(note_peer)
    async with serving(app) as url, connector(url) as remote:
        for n in range(20):
            await remote.send(outbound("+380501234567", mid=f"m{n}"))
    assert len(peers) == 20 and len(set(peers)) == 1
