"""The SMPP connector with the whole engine, against a third-party SMSC (smpp34's Server).

The SMSC runs as a process of its own (tests/peers/smsc34.py): smpp34's Rust server
handles binds, framing and PDUs; its small driver decides outcomes by the
destination's last four digits and sends receipts with esm_class 0x04, the
`receipted_message_id` and `message_state` TLVs and the classic text. The store and
the engine are real (both backends); messages go in through the store, statuses
are read back from it, and the SMSC's own records say what it was sent.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from peers_support import Peer, control, start_peer, stop_peer

from batgate.channels.smpp.connector import SmppConnector
from batgate.config import DispatcherSettings, Settings
from batgate.domain.messages import MessageType, NewMessage, Step
from batgate.domain.parts import sms_parts
from batgate.domain.records import Account, MessageRecord
from batgate.domain.status import ChannelStatus as CS
from batgate.domain.status import DeliveryStatus as DS
from batgate.engine.runner import Engine
from batgate.store.manager import Store
from smpp_support import Part, reassemble
from waiting import bounded, until

_serial = itertools.count(100)
FINAL_WAIT = 20.0


def number(ending: str) -> str:
    """A fresh Ukrainian mobile number ending in `ending` (unique within the test run)."""
    return f"+38050{next(_serial):03d}{ending}"


def sms(to: str, text: str = "Order #1001 confirmed", ttl: int = 3600) -> NewMessage:
    step = Step(MessageType.SMS, to, "Shop", text, None, ttl, sms_parts(text).parts)
    return NewMessage(customer_message_id=None, steps=(step,))


def carrier(peer: Peer, **overrides: Any) -> dict[str, Any]:
    return {
        "kind": "smpp",
        "host": "127.0.0.1",
        "port": peer.port,
        "system_id": "batgate",
        "password": "secret",
        "window": 16,
        "reconnect_delay": 0.2,
        "reconnect_max_delay": 1.0,
        "throttle_delay": 0.2,
        "response_timeout": 5.0,
        **overrides,
    }


def running(store: Store, connector: dict[str, Any]) -> AbstractAsyncContextManager[Engine]:
    """The engine of one process, its SMS routed to `connector`, bound before it yields."""
    return engine_with(store, connectors={"carrier": connector}, routes={"sms": "carrier"})


@asynccontextmanager
async def engine_with(store: Store, **settings: Any) -> AsyncIterator[Engine]:
    """The engine of one process with these settings (and quick polls and retries),
    bound to its carriers before it yields, stopped (and unbound) after."""
    quick = DispatcherSettings(poll_interval=0.05, retry_delays=[0.2, 0.2])
    engine = Engine(store, Settings(dispatcher=quick, **settings))
    await bounded(engine.start(), "the engine to start (and bind)")
    try:
        yield engine
    finally:
        await bounded(engine.stop(), "the engine to stop (and unbind)")


def smpp_of(engine: Engine) -> SmppConnector:
    connector = engine.connectors["carrier"]
    assert isinstance(connector, SmppConnector)
    return connector


async def send(store: Store, account: Account, engine: Engine, *batch: NewMessage) -> list[str]:
    _, ids = await store.insert_batch(account, batch, time.time())
    engine.wake()
    return ids


async def wait_final(
    store: Store, ids: Sequence[str], timeout: float = FINAL_WAIT
) -> dict[str, MessageRecord]:
    async def records() -> dict[str, MessageRecord | None]:
        return {i: await store.get_message(i) for i in ids}

    found = await until(
        records,
        lambda seen: all(r is not None and r.progress.status.is_final for r in seen.values()),
        f"{len(ids)} messages to be final",
        timeout,
    )
    return {i: r for i, r in found.items() if r is not None}


async def stats(peer: Peer, messages: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = await control(
        peer, "GET", "/stats?messages=1" if messages else "/stats"
    )
    return found


async def wait_stats(peer: Peer, ready: Any, timeout: float = 10.0) -> dict[str, Any]:
    return await until(lambda: stats(peer), ready, "the SMSC's counters", timeout)


@pytest.fixture(scope="module")
def smsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_peer("smsc34.py", [], tmp_path_factory.mktemp("smsc34"))
    try:
        yield peer
    finally:
        assert stop_peer(peer) == 0, peer.log()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[list[Peer]]:
    """Peers of this test alone, with other command-line options; stopped after it."""
    peers: list[Peer] = []
    yield peers
    for peer in peers:
        assert stop_peer(peer) == 0, peer.log()


def start(fresh: list[Peer], tmp_path: Path, script: str, *args: str) -> Peer:
    peer = start_peer(script, list(args), tmp_path)
    fresh.append(peer)
    return peer


# -- outcomes by destination -------------------------------------------------------------

# (ending, what the SMSC does, final status, submits the SMSC sees)
OUTCOMES = [
    ("4567", "accepts, DELIVRD", DS.DELIVERED, 1),
    ("0001", "accepts, UNDELIV", DS.UNDELIVERABLE, 1),
    ("0002", "ESME_RTHROTTLED twice, then accepts", DS.DELIVERED, 3),
    ("0003", "ESME_RINVDSTADR", DS.UNDELIVERABLE, 1),
    ("0004", "accepts, REJECTD", DS.UNDELIVERABLE, 1),
    ("0006", "the receipt before the submit_sm_resp", DS.DELIVERED, 1),
    ("0007", "ENROUTE, then DELIVRD", DS.DELIVERED, 1),
    ("0009", "accepts, EXPIRED", DS.UNDELIVERABLE, 1),
]


@pytest.mark.parametrize(
    ("ending", "final", "submits"),
    [(e, f, s) for e, _, f, s in OUTCOMES],
    ids=[o[1] for o in OUTCOMES],
)
async def test_outcomes_by_destination(
    store: Store, account: Account, smsc: Peer, ending: str, final: DS, submits: int
) -> None:
    to = number(ending)
    async with running(store, carrier(smsc)) as engine:
        (message_id,) = await send(store, account, engine, sms(to))
        record = (await wait_final(store, [message_id]))[message_id]
    assert record.progress.status is final
    assert record.progress.steps == (CS(final.value),)
    assert record.progress.attempts == 0  # throttling waits without using attempts
    assert (await stats(smsc))["byDestination"][to.removeprefix("+")] == submits


async def test_no_receipt_ends_undeliverable_at_the_ttl(
    store: Store, account: Account, smsc: Peer
) -> None:
    async with running(store, carrier(smsc)) as engine:
        # Handed over (processing) well before its TTL passes, even on a busy machine.
        (message_id,) = await send(store, account, engine, sms(number("0005"), ttl=3))
        await until(
            lambda: store.get_message(message_id),
            lambda seen: seen is not None and seen.progress.status is not DS.SCHEDULED,
            "the hand-over",
        )
        waiting = await store.get_message(message_id)
        assert waiting is not None and waiting.progress.status is DS.PROCESSING
        record = (await wait_final(store, [message_id]))[message_id]
    assert record.progress.status is DS.UNDELIVERABLE


# -- long messages -------------------------------------------------------------------

GSM_LONG = "Your order #1001 {is} [ready] for pick-up at €12.50 - thank you! " * 6
UCS_LONG = "Ваше замовлення №1001 готове 😀 — дякуємо! " * 4
# (id, text, split, packed GSM-7, data_coding the SMSC must see)
LONG = [
    ("gsm7 udh", GSM_LONG, "udh", False, 0x00),
    ("gsm7 udh packed", GSM_LONG, "udh", True, 0x00),
    ("gsm7 udh16", GSM_LONG, "udh16", False, 0x00),
    ("gsm7 sar", GSM_LONG, "sar", False, 0x00),
    ("gsm7 payload", GSM_LONG, "payload", False, 0x00),
    ("ucs2 udh", UCS_LONG, "udh", False, 0x08),
    ("ucs2 sar", UCS_LONG, "sar", False, 0x08),
    ("ucs2 payload", UCS_LONG, "payload", False, 0x08),
]


@pytest.mark.parametrize(
    ("text", "split", "packed", "coding"), [c[1:] for c in LONG], ids=[c[0] for c in LONG]
)
async def test_long_messages_arrive_whole(
    store: Store,
    account: Account,
    smsc: Peer,
    text: str,
    split: str,
    packed: bool,
    coding: int,
) -> None:
    to = number("4567")
    settings = carrier(smsc, split=split, gsm7_packed=packed)
    async with running(store, settings) as engine:
        (message_id,) = await send(store, account, engine, sms(to, text))
        record = (await wait_final(store, [message_id]))[message_id]
    assert record.progress.status is DS.DELIVERED
    seen = [m for m in (await stats(smsc, messages=True))["messages"] if m["destination"] == to[1:]]
    expected_parts = 1 if split == "payload" else sms_parts(text).parts
    assert len(seen) == expected_parts > 0
    assert {m["dataCoding"] for m in seen} == {coding}
    parts = [
        Part(
            bytes.fromhex(m["shortMessage"]),
            m["esmClass"],
            {int(tag, 16): bytes.fromhex(value) for tag, value in m["tlvs"].items()},
        )
        for m in seen
    ]
    back, numbering = reassemble(parts, coding, packed)
    assert back == text
    if expected_parts > 1:
        references = {ref for ref, _, _ in numbering}
        assert len(references) == 1
        assert [(total, index) for _, total, index in numbering] == [
            (expected_parts, i) for i in range(1, expected_parts + 1)
        ]


# -- receipts as SMSCs spell them ---------------------------------------------------------

SPELLINGS = [
    ("text only, 12-digit dates", ["--receipt-format", "text", "--date-digits", "12"], "auto"),
    ("TLVs only", ["--receipt-format", "tlv"], "auto"),
    ("hex ids, decimal receipts", ["--id-format", "hex", "--receipt-id-format", "decimal"], "auto"),
    ("decimal ids, hex receipts", ["--receipt-id-format", "hex"], "decimal_to_hex"),
    ("leading zeros", ["--id-zero-pad", "12", "--receipt-format", "text"], "same"),
]


@pytest.mark.parametrize(
    ("args", "receipt_ids"), [c[1:] for c in SPELLINGS], ids=[c[0] for c in SPELLINGS]
)
async def test_receipts_as_smscs_spell_them(
    store: Store,
    account: Account,
    fresh: list[Peer],
    tmp_path: Path,
    args: list[str],
    receipt_ids: str,
) -> None:
    peer = start(fresh, tmp_path, "smsc34.py", *args)
    batch = [sms(number("4567")) for _ in range(20)] + [sms(number("0001")) for _ in range(5)]
    async with running(store, carrier(peer, receipt_ids=receipt_ids)) as engine:
        ids = await send(store, account, engine, *batch)
        records = await wait_final(store, ids)
    statuses = [records[i].progress.status for i in ids]
    assert statuses == [DS.DELIVERED] * 20 + [DS.UNDELIVERABLE] * 5


# -- the connection -------------------------------------------------------------------


async def test_connection_dropped_mid_window(store: Store, account: Account, smsc: Peer) -> None:
    """Nothing is lost, and only the submits that had no answer are sent again."""
    await control(smsc, "POST", "/reset")
    held = [number("0008") for _ in range(5)]  # the SMSC keeps these unanswered
    answered = [number("4567") for _ in range(40)]
    async with running(store, carrier(smsc, window=64)) as engine:
        ids = await send(store, account, engine, *(sms(to) for to in held + answered))
        # A receipt acknowledged means its submit's answer came first (one TCP stream):
        # only then is the answer ours, and not lost in flight when the SMSC drops.
        await wait_stats(smsc, lambda s: s["held"] == 5 and s["receiptsAcked"] == 40)
        dropped = await control(smsc, "POST", "/drop")
        assert dropped["dropped"] >= 1
        records = await wait_final(store, ids)
        resends = smpp_of(engine).resends
    assert {r.progress.status for r in records.values()} == {DS.DELIVERED}
    by_destination = (await stats(smsc))["byDestination"]
    assert [by_destination[to[1:]] for to in held] == [2] * 5
    assert [by_destination[to[1:]] for to in answered] == [1] * 40
    assert resends == 5


async def test_the_window_is_enforced(store: Store, account: Account, smsc: Peer) -> None:
    """Two held submits fill a window of 2: the four others of the batch wait for a slot
    (none is written meanwhile), and go out after the drop."""
    await control(smsc, "POST", "/reset")
    async with running(store, carrier(smsc, window=2)) as engine:
        held = [sms(number("0008")) for _ in range(2)]
        ids = await send(store, account, engine, *held, *(sms(number("4567")) for _ in range(4)))
        links = smpp_of(engine).transmitters
        await until(
            lambda: sum(s.outstanding for s in links),
            lambda outstanding: outstanding == 6,
            "all six sends to be in the window or waiting for a slot",
        )
        found = await wait_stats(smsc, lambda s: s["held"] == 2)
        assert found["submits"] == 2
        await control(smsc, "POST", "/drop")
        records = await wait_final(store, ids)
    assert {r.progress.status for r in records.values()} == {DS.DELIVERED}


async def test_no_answer_in_time_is_sent_again_and_counted(
    store: Store, account: Account, smsc: Peer
) -> None:
    to = number("0008")
    async with running(store, carrier(smsc, response_timeout=0.5)) as engine:
        (message_id,) = await send(store, account, engine, sms(to))
        record = (await wait_final(store, [message_id]))[message_id]
        resends = smpp_of(engine).resends
    assert record.progress.status is DS.DELIVERED
    assert record.progress.attempts == 1  # the unanswered submit was an attempt
    assert (await stats(smsc))["byDestination"][to[1:]] == 2
    assert resends == 1


async def test_several_connections(
    store: Store, account: Account, fresh: list[Peer], tmp_path: Path
) -> None:
    peer = start(fresh, tmp_path, "smsc34.py")
    async with running(store, carrier(peer, connections=3)) as engine:
        assert smpp_of(engine).bound_links == 3
        # The SMSC's driver counts a bind a moment after its server answered it.
        await wait_stats(peer, lambda found: found["binds"] == 3)
        ids = await send(store, account, engine, *(sms(number("4567")) for _ in range(60)))
        records = await wait_final(store, ids)
    assert {r.progress.status for r in records.values()} == {DS.DELIVERED}


async def test_throughput_is_limited_per_connection(
    store: Store, account: Account, fresh: list[Peer], tmp_path: Path
) -> None:
    """Every submit_sm takes a slot of its link's pacer (whose spacing is unit-tested
    on a clock of its own, tests/unit/test_ratelimit.py): no timing is measured here."""
    peer = start(fresh, tmp_path, "smsc34.py")
    async with running(store, carrier(peer, throughput=20, connections=2)) as engine:
        ids = await send(store, account, engine, *(sms(number("4567")) for _ in range(15)))
        records = await wait_final(store, ids)
        links = smpp_of(engine).transmitters
        assert [s.pacer.rate for s in links] == [20.0, 20.0]
        assert sum(s.pacer.granted for s in links) == 15
    assert {r.progress.status for r in records.values()} == {DS.DELIVERED}
    assert len((await stats(peer, messages=True))["messages"]) == 15


# -- smpp.twisted3's server: real bind authentication, unbind_resp, data_sm receipts -----------


def twisted_peer(fresh: list[Peer], tmp_path: Path) -> Peer:
    return start(
        fresh, tmp_path, "smsc_twisted.py", "--system-id", "batgate", "--password", "secret"
    )


async def test_wrong_password_marks_the_connector_down_and_messages_wait(
    store: Store, account: Account, fresh: list[Peer], tmp_path: Path
) -> None:
    peer = twisted_peer(fresh, tmp_path)
    async with running(store, carrier(peer, password="wrong")) as engine:
        connector = smpp_of(engine)
        assert connector.bound_links == 0
        assert "ESME_RINVPASWD" in connector.down_reason
        assert "check system_id and password" in connector.down_reason
        (message_id,) = await send(store, account, engine, sms(number("4567")))
        sent = await store.get_message(message_id)
        assert sent is not None
        # Tried and put back to wait for the link: a write of its row.
        record = await until(
            lambda: store.get_message(message_id),
            lambda seen: seen is not None and seen.version > sent.version,
            "the dispatcher to try it and put it back",
        )
    assert record is not None
    assert record.progress.status is DS.SCHEDULED  # waiting, its attempts untouched
    assert record.progress.attempts == 0
    found = await stats(peer)
    assert found["bindFailures"] >= 1 and found["binds"] == 0 and found["submits"] == 0


@pytest.mark.parametrize("bind", ["transceiver", "transmitter_receiver"])
async def test_twisted_smsc_delivers_and_is_unbound_gracefully(
    store: Store, account: Account, fresh: list[Peer], tmp_path: Path, bind: str
) -> None:
    peer = twisted_peer(fresh, tmp_path)
    batch = [sms(number("4567")), sms(number("0001")), sms(number("0010"))]  # 0010: data_sm
    async with running(store, carrier(peer, bind=bind)) as engine:
        ids = await send(store, account, engine, *batch)
        records = await wait_final(store, ids)
    statuses = [records[i].progress.status for i in ids]
    assert statuses == [DS.DELIVERED, DS.UNDELIVERABLE, DS.DELIVERED]
    binds = 2 if bind == "transmitter_receiver" else 1
    found = await wait_stats(peer, lambda s: s["unbindResps"] == binds)
    assert found["binds"] == binds
    assert found["unbinds"] == binds  # every session unbound by us, none dropped
    assert found["receiptsAcked"] == 3
