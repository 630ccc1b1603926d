"""Mobile-originated messages through the SMPP connector, from a third-party SMSC.

The SMSC runs as a process of its own (tests/peers/smsc34.py, smpp34's server): on
`POST /mo` it splits a text into deliver_sm parts itself (UDH, 16-bit UDH, `sar_*`
TLVs, `message_payload`), sends them all at once, counts the deliver_sm_resp it gets
and sends again what was NAKed. The connector is the real one; what it hands over
goes to a recording desk (what the engine does with an inbound message is tested
with the engine).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from peers_support import HOST, Peer, control, start_peer, stop_peer
from prometheus_client import Counter

from batgate.channels.smpp.connector import SmppConnector
from batgate.config import SmppSettings
from batgate.domain.inbound import InboundText
from batgate.domain.outcomes import CarrierCost, JournaledBatch, PartReceipt
from batgate.observability import metrics
from waiting import bounded, until

SENDER = "+380501234567"
SHORT_CODE = "4040"
WAIT = 5.0
_serial = itertools.count(1)


@dataclass
class Desk:
    """What the engine offers a connector (CarrierDesk), recorded. `failures`: how many
    of the next `inbound` calls raise; `gate`, when given, holds every call until set."""

    failures: int = 0
    gate: asyncio.Event | None = None
    calls: list[list[InboundText]] = field(default_factory=list)
    stored: list[InboundText] = field(default_factory=list)

    async def inbound(self, connector: str, messages: Sequence[InboundText]) -> None:
        self.calls.append(list(messages))
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the database is down")
        self.stored.extend(messages)

    async def receipts(self, connector: str, receipts: Sequence[PartReceipt]) -> None:
        raise AssertionError("no message was sent: no receipt can come")

    async def costs(self, connector: str, costs: Sequence[CarrierCost]) -> None:
        return None

    async def awaiting(self, connector: str, handed_before: float, limit: int) -> list[str]:
        return []

    async def journal(
        self, connector: str, key: str, body: bytes, members: Sequence[tuple[str, int]]
    ) -> None:
        return None

    async def journaled(
        self, connector: str, members: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], JournaledBatch]:
        return {}


def _post(url: str, doc: dict[str, Any]) -> tuple[int, Any]:
    body = json.dumps(doc).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


@dataclass
class Line:
    """A bound connector, and the SMSC that sends to its system_id."""

    peer: Peer
    system_id: str
    connector: SmppConnector

    async def mo(
        self, text: str, coding: str = "gsm7", split: str | None = None, **more: Any
    ) -> int:
        """Have the SMSC send a message from a phone; how many parts it sent. Tried again
        while the SMSC has not seen the bind yet (its driver counts it a moment later)."""
        doc: dict[str, Any] = {"system_id": self.system_id, "from": SENDER, "to": SHORT_CODE}
        doc |= {"text": text, "coding": coding, "split": split, **more}
        url = f"http://{HOST}:{self.peer.control_port}/mo"

        async def attempt() -> tuple[int, Any]:
            return await asyncio.to_thread(_post, url, doc)

        status, answer = await until(
            attempt,
            lambda seen: seen[0] != 409,
            "the SMSC to see the bind",
            WAIT,
        )
        assert status == 200, answer
        sent: int = answer["sent"]
        return sent

    closed: bool = False

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await bounded(self.connector.aclose(), "the connector to close", WAIT)


async def stats(peer: Peer) -> dict[str, Any]:
    found: dict[str, Any] = await control(peer, "GET", "/stats")
    return found


async def wait_stats(peer: Peer, ready: Any, what: str) -> dict[str, Any]:
    return await until(lambda: stats(peer), ready, what, WAIT)


async def wait_stored(desk: Desk, count: int) -> list[InboundText]:
    return await until(lambda: desk.stored, lambda s: len(s) >= count, f"{count} stored", WAIT)


@pytest.fixture(scope="module")
def smsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    # NAKed parts are sent again after 0.2 s (a real SMSC waits longer).
    args = ["--receipt-retry", "0.2"]
    peer = start_peer("smsc34.py", args, tmp_path_factory.mktemp("smsc34-mo"))
    try:
        yield peer
    finally:
        assert stop_peer(peer) == 0, peer.log()


@pytest.fixture(autouse=True)
async def _fresh_counters(smsc: Peer) -> None:
    await control(smsc, "POST", "/reset")


@asynccontextmanager
async def line(smsc: Peer, desk: Desk, **overrides: Any) -> AsyncIterator[Line]:
    """A connector bound to the SMSC under a system_id of its own (so that what another
    test left for its own system_id never reaches it), closed after."""
    n = next(_serial)
    settings = SmppSettings.model_validate(
        {
            "kind": "smpp",
            "host": HOST,
            "port": smsc.port,
            "system_id": f"mo{n}",
            "password": "secret",
            "reconnect_delay": 0.2,
            "reconnect_max_delay": 1.0,
            "response_timeout": 5.0,
            "unbind_timeout": 2.0,
            **overrides,
        }
    )
    connector = SmppConnector(f"mo{n}", settings, desk)
    await bounded(connector.start(wait=WAIT), "the connector to bind", WAIT)
    opened = Line(smsc, settings.system_id, connector)
    try:
        assert connector.bound_links == 1, connector.down_reason
        yield opened
    finally:
        await opened.aclose()


def inbound(text: str, parts: int = 1, incomplete: bool = False) -> InboundText:
    return InboundText(SENDER, SHORT_CODE, text, parts=parts, incomplete=incomplete)


# -- messages in one part, and in many ------------------------------------------------------

GSM_TEXT = "Hello {world}: [€5] @ home ~ Ä|ö^"
UCS_TEXT = "Привіт \U0001f600 — так!"
# (id, text, coding, split)
SINGLE = [
    ("gsm7", GSM_TEXT, "gsm7", None),
    ("ucs2 with an emoji", UCS_TEXT, "ucs2", None),
    ("latin1", "Grüße aus Köln, ½ Preis", "latin1", None),
    ("gsm7 in message_payload", GSM_TEXT * 8, "gsm7", "payload"),
    ("ucs2 in message_payload", UCS_TEXT * 8, "ucs2", "payload"),
]


@pytest.mark.parametrize(
    ("text", "coding", "split"), [c[1:] for c in SINGLE], ids=[c[0] for c in SINGLE]
)
async def test_a_message_in_one_deliver_sm(
    smsc: Peer, text: str, coding: str, split: str | None
) -> None:
    desk = Desk()
    async with line(smsc, desk) as mo:
        assert await mo.mo(text, coding, split) == 1
        assert await wait_stored(desk, 1) == [inbound(text)]
        await wait_stats(smsc, lambda s: s["moAcked"] == 1, "the part acknowledged")
    assert (await stats(smsc))["moNacked"] == 0


LONG_GSM = "Order #1001: {ready} at [desk 5] for €12.50 - thanks! " * 6
LONG_UCS = "Ваше замовлення №1001 готове \U0001f600 — дякуємо! " * 4
# (id, text, coding, split)
MULTI = [
    ("gsm7 udh", LONG_GSM, "gsm7", "udh"),
    ("gsm7 udh16", LONG_GSM, "gsm7", "udh16"),
    ("gsm7 sar", LONG_GSM, "gsm7", "sar"),
    ("ucs2 udh", LONG_UCS, "ucs2", "udh"),
    ("ucs2 udh16", LONG_UCS, "ucs2", "udh16"),
    ("ucs2 sar", LONG_UCS, "ucs2", "sar"),
]


@pytest.mark.parametrize(
    ("text", "coding", "split"), [c[1:] for c in MULTI], ids=[c[0] for c in MULTI]
)
async def test_a_message_in_parts_is_stored_whole_once(
    smsc: Peer, text: str, coding: str, split: str
) -> None:
    desk = Desk()
    async with line(smsc, desk) as mo:
        parts = await mo.mo(text, coding, split)
        assert parts >= 2
        assert await wait_stored(desk, 1) == [inbound(text, parts)]
        await wait_stats(smsc, lambda s: s["moAcked"] == parts, "every part acknowledged")
    assert [len(call) for call in desk.calls] == [1]


# -- parts that never come --------------------------------------------------------------------


async def test_parts_are_held_until_the_timeout_then_stored_incomplete(smsc: Peer) -> None:
    desk = Desk()
    async with line(smsc, desk, mo_reassembly_timeout=1.5) as mo:
        text = "a" * 10 + "b" * 10 + "c" * 10
        assert await mo.mo(text, split="udh", parts_per=10, only=[1, 3]) == 2
        await until(lambda: mo.connector.assembling, lambda n: n == 1, "the parts held", WAIT)
        await asyncio.sleep(0.3)
        assert desk.calls == []  # part 2 may still come: nothing stored, nothing answered
        assert (await stats(smsc))["moAcked"] == 0
        stored = await wait_stored(desk, 1)
        await wait_stats(smsc, lambda s: s["moAcked"] == 2, "both parts acknowledged")
    assert stored == [inbound("a" * 10 + "c" * 10, parts=2, incomplete=True)]


async def test_closing_stores_what_waits_incomplete_before_unbinding(smsc: Peer) -> None:
    desk = Desk()
    async with line(smsc, desk, mo_reassembly_timeout=30.0) as mo:
        assert await mo.mo("x" * 10 + "y" * 10, split="sar", parts_per=10, only=[1]) == 1
        await until(lambda: mo.connector.assembling, lambda n: n == 1, "the part held", WAIT)
        assert desk.calls == []
        await mo.aclose()
        assert desk.stored == [inbound("x" * 10, parts=1, incomplete=True)]
        found = await wait_stats(smsc, lambda s: s["unbinds"] >= 1, "the unbind")
    assert found["moAcked"] == 1  # answered before the unbind


# -- storing fails -----------------------------------------------------------------------------

# (id, text, split)
FAILING = [
    ("one part", GSM_TEXT, None),
    ("three parts", "p" * 10 + "q" * 10 + "r" * 10, "udh"),
]


@pytest.mark.parametrize(("text", "split"), [c[1:] for c in FAILING], ids=[c[0] for c in FAILING])
async def test_a_failed_store_is_nacked_and_the_smsc_sends_it_again(
    smsc: Peer, text: str, split: str | None
) -> None:
    desk = Desk(failures=1)
    async with line(smsc, desk) as mo:
        parts = await mo.mo(text, split=split, parts_per=10)
        stored = await wait_stored(desk, 1)
        found = await wait_stats(smsc, lambda s: s["moAcked"] == parts, "the parts acknowledged")
    assert stored == [inbound(text, parts)]
    assert found["moNacked"] == parts  # ESME_RX_T_APPN, every part of it
    assert found["moSent"] == 2 * parts
    assert [[m.text for m in call] for call in desk.calls] == [[text], [text]]


# -- batches ------------------------------------------------------------------------------------


async def test_many_messages_go_to_the_store_in_few_calls(smsc: Peer) -> None:
    desk = Desk(gate=asyncio.Event())
    async with line(smsc, desk) as mo:
        texts = [f"message {n}" for n in range(40)]
        for text in texts:
            await mo.mo(text)
        await until(lambda: desk.calls, bool, "the first store", WAIT)
        # The others arrive while the first store waits: all 40 are read and queued.
        await until(
            lambda: counted(metrics.SMPP_INBOUND_MESSAGES, mo.connector.name, "complete"),
            lambda count: count == 40,
            "the connector to read all 40",
            WAIT,
        )
        assert desk.gate is not None
        desk.gate.set()
        await wait_stored(desk, 40)
        await wait_stats(smsc, lambda s: s["moAcked"] == 40, "40 acknowledged")
    # smpp34 writes each deliver_sm from a task of its own: their order is not promised.
    assert sorted(m.text for m in desk.stored) == sorted(texts)
    assert len(desk.calls) <= 2  # the first, and all that came while it was stored


def counted(metric: Counter, connector: str, state: str) -> float:
    """A counter's value for one connector and state (0 when never counted)."""
    for family in metric.collect():
        for sample in family.samples:
            labels = {"connector": connector, "state": state}
            if sample.name.endswith("_total") and sample.labels == labels:
                return float(sample.value)
    return 0.0
