"""A generic HTTP carrier (`kind = "http"`) against a provider: an aiohttp app in this
test's event loop, on loopback, that takes JSON, answers JSON and posts status reports.

First the connector alone, one row per class of answer (taken, refused, throttled,
5xx, timeout, no connection, refused credentials): what comes back and whether the
provider saw the request. Then the whole gateway in this process (the real app served
by uvicorn on loopback, its engine, the store on both backends): messages go out as
JSON, come back by the provider's calls to `/callbacks/{connector}`, and end
delivered or undeliverable; a call without the token changes nothing. Messages from
phones come the same way (an `inbound` table): stored for the account that owns their
number, or unrouted, before the call is answered, whatever character set their text
came in.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import uvicorn
from aiohttp import web
from peers_support import free_port
from test_smpp_carrier import wait_final

from batgate.api.app import create_app
from batgate.channels.base import Outbound
from batgate.channels.http_carrier.connector import HttpConnector
from batgate.config import DispatcherSettings, HttpCarrierSettings, RouteRule, Settings
from batgate.domain.messages import MessageType, NewMessage, Step
from batgate.domain.outcomes import Accepted, CarrierId, Failed, Handover
from batgate.domain.records import Account
from batgate.domain.status import DeliveryStatus as DS
from batgate.store.manager import Store
from waiting import bounded, until

FIXED_TOKEN = "console-token-0123456789"
_serial = itertools.count(100)


def number(prefix: str, ending: str) -> str:
    return f"{prefix}{next(_serial):03d}{ending}"


@dataclass
class Provider:
    """What the provider was sent, and where it reports statuses: to each message's
    `report` URL (batgate's {callback_url}), or to `console_url` when it has none."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    console_url: str = ""
    reports: list[tuple[str, int]] = field(default_factory=list)  # (what was posted, answer)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def sent_to(self, to: str) -> int:
        return sum(1 for r in self.requests if r.get("to") == to)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        doc = await request.json()
        doc["authorization"] = request.headers.get("Authorization")
        self.requests.append(doc)
        ending = str(doc.get("to", ""))[-4:]
        if ending == "0408":
            await self.released.wait()  # an answer the connector stops waiting for
        answer = ANSWERS.get(ending)
        if answer is not None:
            status, body, headers = answer
            return web.json_response(body, status=status, headers=headers)
        carrier_id = f"p-{next(self._ids)}"
        states = REPORTS.get(ending, ("DELIVERED",))
        self._report(doc.get("report"), carrier_id, states)
        return web.json_response({"status": "queued", "id": carrier_id})

    def _report(self, url: str | None, carrier_id: str, states: tuple[str, ...]) -> None:
        task = asyncio.create_task(self._post(url or self.console_url, carrier_id, states))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, carrier_id: str, states: tuple[str, ...]) -> None:
        async with aiohttp.ClientSession() as session:
            for state in states:
                body = {"message": {"id": carrier_id, "state": state}}
                async with session.post(url, json=body) as answer:
                    self.reports.append((state, answer.status))


# Destination ending → the provider's answer (status, JSON, headers); others are taken.
ANSWERS: dict[str, tuple[int, Any, dict[str, str]]] = {
    "0200": (200, {"status": "rejected", "error": "blacklisted"}, {}),
    "0400": (400, {"error": "invalid number"}, {}),
    "0401": (401, {"error": "bad key"}, {}),
    "0429": (429, {"error": "slow down"}, {"Retry-After": "3"}),
    "0500": (500, {"error": "oops"}, {}),
    "0503": (503, {"error": "maintenance"}, {}),
    "0302": (302, {}, {"Location": "http://127.0.0.1:1/elsewhere"}),
}
# Destination ending → the states reported after taking it (default: DELIVERED).
REPORTS = {"0001": ("FAILED",), "0007": ("SENT", "DELIVERED"), "0009": ("??",)}


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    found = Provider()
    app = web.Application()
    app.router.add_post("/v1/sms", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    found.url = f"http://127.0.0.1:{port}/v1/sms"
    try:
        yield found
    finally:
        found.released.set()
        for task in list(found._tasks):
            task.cancel()
        await runner.cleanup()


def table(url: str, **changes: Any) -> dict[str, Any]:
    """A JSON provider's connector table: {callback_url} in the body (by default)."""
    return {
        "kind": "http",
        "url": url,
        "password": "api-key-1",
        "timeout": 0.5,
        "send": {
            "headers": {"Authorization": "Bearer {password}"},
            "json": {
                "to": "{to}",
                "text": "{text}",
                "parts": "{parts}",
                "report": "{callback_url}",
            },
        },
        "answer": {"success": "json:/status", "success_values": ["queued"], "id": "json:/id"},
        "callback": {
            "status": "json:/message/state",
            "delivered": ["DELIVERED"],
            "undeliverable": ["FAILED", "EXPIRED"],
            "pending": ["SENT"],
        },
        **changes,
    }


def console_table(url: str) -> dict[str, Any]:
    """The same provider with its callback URL set at the provider: ids and a fixed token;
    messages from phones come to it as GETs marked `kind=mo` (Kannel's get-url)."""
    settings = table(url, callback_token=FIXED_TOKEN)
    del settings["send"]["json"]["report"]
    settings["callback"] = {**settings["callback"], "id": "json:/message/id"}
    settings["inbound"] = {
        "when": "param:kind",
        "when_values": ["mo"],
        "from": "param:from",
        "to": "param:to",
        "text": "param:text",
        "charset": "param:charset",
        "id": "param:id",
    }
    return settings


def outbound(to: str, text: str | None = "Order #1001 confirmed") -> Outbound:
    step = Step(MessageType.SMS, to, "Shop", text, None, 3600, 1)
    return Outbound(f"m{next(_serial)}", step, attempt=1)


# -- the connector alone: one row per class of answer ------------------------------------

# (id, destination ending, what the connector says: accepted, or Failed's fields)
CLASSES: list[tuple[str, str, str | tuple[bool, float | None, bool]]] = [
    ("taken", "4567", "accepted"),
    ("2xx without the success value: refused", "0200", (False, None, False)),
    ("400: refused", "0400", (False, None, False)),
    ("302: refused", "0302", (False, None, False)),
    ("429: not taken, wait Retry-After", "0429", (True, 3.0, False)),
    ("503: not taken", "0503", (True, None, False)),
    ("500: maybe taken", "0500", (True, None, True)),
    ("no answer in time: maybe taken", "0408", (True, None, True)),
]


@pytest.mark.parametrize(
    ("ending", "expected"), [c[1:] for c in CLASSES], ids=[c[0] for c in CLASSES]
)
async def test_each_class_of_answer(
    provider: Provider, ending: str, expected: str | tuple[bool, float | None, bool]
) -> None:
    connector = HttpConnector("prov", HttpCarrierSettings(**table(provider.url)), "http://gw")
    message = outbound(number("+38050", ending))
    try:
        result = await bounded(connector.send(message), "the hand-over")
    finally:
        await connector.aclose()
    assert provider.sent_to(message.step.to) == 1
    sent = provider.requests[-1]
    assert sent["authorization"] == "Bearer api-key-1"
    assert (sent["text"], sent["parts"]) == ("Order #1001 confirmed", 1)
    ref = f"{message.message_id}.0"
    assert sent["report"].startswith(f"http://gw/callbacks/prov?ref={ref}&token=")
    if expected == "accepted":
        assert result == Accepted("p-1", handover=Handover("prov", (CarrierId(ref),)))
        return
    assert isinstance(result, Failed)
    assert (result.retryable, result.retry_after, result.maybe_taken) == expected
    assert result.reason.startswith("prov: ")
    assert "api-key-1" not in result.reason


async def test_no_connection_is_not_taken_and_waits() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/sms"  # nothing listens there
    connector = HttpConnector("prov", HttpCarrierSettings(**table(url)), "http://gw")
    try:
        result = await bounded(connector.send(outbound(number("+38050", "4567"))), "the hand-over")
    finally:
        await connector.aclose()
    assert isinstance(result, Failed)
    assert (result.retryable, result.retry_after, result.maybe_taken) == (True, 1.0, False)
    assert result.reason.startswith("prov: cannot reach the carrier: 127.0.0.1:")


async def test_refused_credentials_take_the_connector_down_until_the_cool_down(
    provider: Provider,
) -> None:
    clock = [1000.0]
    settings = HttpCarrierSettings(**table(provider.url, circuit_cooldown=30))
    connector = HttpConnector("prov", settings, "http://gw", clock=lambda: clock[0])
    try:
        first = await connector.send(outbound(number("+38050", "0401")))
        assert isinstance(first, Failed) and first.retry_after == 30
        assert connector.bound_links == 0  # the switchboard passes it over meanwhile
        assert connector.down_reason is not None and "HTTP 401" in connector.down_reason
        asked = len(provider.requests)
        waiting = await connector.send(outbound(number("+38050", "4567")))
        assert isinstance(waiting, Failed) and waiting.retry_after == 30
        assert len(provider.requests) == asked  # not asked while down
        clock[0] += 30
        again = await connector.send(outbound(number("+38050", "4567")))
        assert isinstance(again, Accepted)
        assert connector.bound_links is None and connector.down_reason is None
    finally:
        await connector.aclose()


async def test_a_step_without_text_is_refused_without_asking(provider: Provider) -> None:
    connector = HttpConnector("prov", HttpCarrierSettings(**table(provider.url)), "http://gw")
    result = await connector.send(outbound(number("+38050", "4567"), text=None))
    await connector.aclose()
    assert isinstance(result, Failed) and not result.retryable
    assert provider.requests == []


# -- the whole gateway: messages out, the provider's calls back ---------------------------


@contextlib.asynccontextmanager
async def gateway(database_url: str, provider: Provider) -> AsyncIterator[str]:
    """The real app with its engine, served by uvicorn on a loopback port: "+38050…"
    goes to `prov` ({callback_url} in the body), "+38067…" to `console` (callbacks to
    the URL set at the provider)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider.console_url = f"{url}/callbacks/console?token={FIXED_TOKEN}"
    settings = Settings(
        database_url=database_url,
        port=port,  # {callback_url} is this address by default
        dispatcher=DispatcherSettings(poll_interval=0.05, retry_delays=[0.2, 0.2]),
        connectors={"prov": table(provider.url), "console": console_table(provider.url)},
        routes=[
            RouteRule(channels=["sms"], prefixes=["+38050"], connectors=["prov"]),
            RouteRule(channels=["sms"], prefixes=["+38067"], connectors=["console"]),
        ],
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    await until(lambda: server.started or task.done(), bool, "the gateway to serve")
    assert server.started, task.exception() if task.done() else "not started"
    try:
        yield url
    finally:
        server.should_exit = True
        await bounded(task, "the gateway to stop")


def sms(to: str) -> NewMessage:
    text = "Order #1001 confirmed"
    step = Step(MessageType.SMS, to, "Shop", text, None, 3600, 1)
    return NewMessage(customer_message_id=None, steps=(step,))


# (id, destination, final status)
CHAIN = [
    ("delivered", number("+38050", "4567"), DS.DELIVERED),
    ("failed report", number("+38050", "0001"), DS.UNDELIVERABLE),
    ("pending, then delivered", number("+38050", "0007"), DS.DELIVERED),
    ("refused by the provider", number("+38050", "0400"), DS.UNDELIVERABLE),
    ("console callback: delivered", number("+38067", "4567"), DS.DELIVERED),
    ("console callback: failed", number("+38067", "0001"), DS.UNDELIVERABLE),
]


async def test_statuses_come_back_by_the_providers_calls(
    database_url: str, store: Store, account: Account, provider: Provider
) -> None:
    async with gateway(database_url, provider) as url:
        _, ids = await store.insert_batch(account, [sms(to) for _, to, _ in CHAIN], time.time())
        records = await wait_final(store, ids)
        async with aiohttp.ClientSession() as session:
            forged = {"message": {"id": "p-1", "state": "FAILED"}}
            for path in ("/callbacks/prov", "/callbacks/console", "/callbacks/console?token=x"):
                async with session.post(url + path, json=forged) as answer:
                    assert answer.status == 401, path
        again = {i: await store.get_message(i) for i in ids}
    finals = [records[i].progress.status for i in ids]
    assert finals == [final for _, _, final in CHAIN]
    assert {i: r.progress.status for i, r in again.items() if r} == dict(
        zip(ids, finals, strict=True)
    )
    for _, to, _ in CHAIN:
        assert provider.sent_to(to) == 1, to
    assert {answer for _, answer in provider.reports} == {200}
    refused = ids[3]
    story = [line.reason for line in await store.story(refused) if line.reason]
    assert any(
        'prov: refused by the carrier: HTTP 400: {"error": "invalid number"}' in why
        for why in story
    ), story


OURS = "+380441230000"
UKRAINIAN = "Так, підтверджую замовлення №1001 — дякую!"


def mo_query(to: str, text: bytes, charset: str, token: str | None = FIXED_TOKEN) -> str:
    """A GET's query as Kannel's get-url sends it: the text's octets percent-encoded."""
    fields = {"kind": "mo", "from": "+380671234567", "to": to, "charset": charset, "id": "k-1"}
    if token is not None:
        fields["token"] = token
    return urllib.parse.urlencode(fields) + "&text=" + urllib.parse.quote_from_bytes(text)


async def test_messages_from_phones_are_stored_before_the_answer(
    database_url: str, store: Store, account: Account, provider: Provider
) -> None:
    await store.inbox.add_number(account.id, OURS, time.time())
    async with gateway(database_url, provider) as url, aiohttp.ClientSession() as session:
        for token in (None, "not-the-token-0123456789"):
            query = mo_query(OURS, b"forged", "UTF-8", token)
            async with session.get(f"{url}/callbacks/console?{query}") as answer:
                assert answer.status == 401
        sent = [
            (OURS, UKRAINIAN.encode("utf-16-be"), "UTF-16BE"),
            (OURS, "Très bien".encode("latin-1"), "ISO-8859-1"),
            ("+380449999999", b"anyone there?", "UTF-8"),
        ]
        for to, text, charset in sent:
            async with session.get(
                f"{url}/callbacks/console?{mo_query(to, text, charset)}"
            ) as answer:
                assert answer.status == 200, await answer.text()
                assert await answer.read() == b""
                assert answer.content_type == "text/plain"
        # A status call to the same connector is still one (no `kind=mo`): pending here.
        forged = {"message": {"id": "p-404", "state": "SENT"}}
        async with session.post(
            f"{url}/callbacks/console?token={FIXED_TOKEN}", json=forged
        ) as answer:
            assert answer.status == 200
    owned = await store.inbox.page(account.id, 0, 10)
    assert [(m.sender, m.recipient, m.text, m.connector) for m in owned] == [
        ("+380671234567", OURS, UKRAINIAN, "console"),
        ("+380671234567", OURS, "Très bien", "console"),
    ]
    unrouted = await store.inbox.page(None, 0, 10)
    assert [(m.recipient, m.text) for m in unrouted] == [("+380449999999", "anyone there?")]
    assert all("forged" not in m.text for m in [*owned, *unrouted])
