"""Self-tests of the third-party SMSC peers the SMPP connector's tests and benchmarks run.

A connector test that fails should mean the connector is wrong, not the peer: so each
behaviour the connector tests rely on is checked here against the real script, started
as a subprocess exactly as they start it, and driven by smpp34's client or a raw socket.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import smpp34
from peers_support import (
    DATA_SM,
    DELIVER_SM,
    ESME_RINVPASWD,
    RESP,
    SUBMIT_SM,
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
    UNBIND,
    Peer,
    RawEsme,
    control,
    start_peer,
    stop_peer,
    wait_stats,
)

StartPeer = Callable[..., Peer]
STEP = 5.0  # seconds any single SMPP step may take
RECEIPT_TEXT = re.compile(
    r"id:(?P<id>\w+) sub:001 dlvrd:(?P<dlvrd>\d{3}) submit date:\d{10} done date:\d{10} "
    r"stat:(?P<stat>[A-Z]+) err:(?P<err>\d{3}) text:(?P<text>.*)"
)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[StartPeer]:
    """Start peer scripts for a test; every one is stopped (and must stop cleanly) after."""
    peers: list[Peer] = []

    def _start(script: str, *args: str) -> Peer:
        peer = start_peer(script, list(args), tmp_path)
        peers.append(peer)
        return peer

    yield _start
    codes = {peer.port: stop_peer(peer) for peer in peers}
    assert all(code == 0 for code in codes.values()), codes


@pytest.fixture
def smsc34(start: StartPeer) -> Peer:
    return start("smsc34.py")


@pytest.fixture
def twisted(start: StartPeer) -> Peer:
    return start("smsc_twisted.py", "--system-id", "bat", "--password", "secret")


@asynccontextmanager
async def session(
    peer: Peer, system_id: str = "bat", password: str = "secret"
) -> AsyncIterator[smpp34.Smsc]:
    client = smpp34.Client("127.0.0.1", peer.port, system_id, password, connect_timeout_ms=3000)
    smsc = await asyncio.wait_for(client.connect(), STEP)
    try:
        yield smsc
    finally:
        try:
            await asyncio.wait_for(smsc.unbind(), STEP)
        except (smpp34.SmppError, TimeoutError):
            pass


@asynccontextmanager
async def raw(peer: Peer, password: str = "secret") -> AsyncIterator[RawEsme]:
    esme = await RawEsme.connect(peer.port)
    try:
        bound = await esme.bind("bat", password)
        assert bound.status == 0, hex(bound.status)
        yield esme
    finally:
        await esme.close()


async def receipt(smsc: smpp34.Smsc) -> smpp34.DeliverSmEvent:
    event = await asyncio.wait_for(smsc.next(), STEP)
    assert isinstance(event, smpp34.DeliverSmEvent), event
    return event


def tlvs(event: smpp34.DeliverSmEvent) -> dict[int, bytes]:
    return {tlv.tag: tlv.value for tlv in event.tlvs}


# ── smsc34 (smpp34's server) ────────────────────────────────────────────────


async def test_default_submit_is_accepted_and_gets_a_delivrd_receipt(smsc34: Peer) -> None:
    async with session(smsc34) as smsc:
        resp = await smsc.submit_sm(
            "380501234567", b"hello world", source_addr="BAT", registered_delivery=1
        )
        assert resp.is_success and resp.message_id == "1000001"

        event = await receipt(smsc)
        assert event.esm_class == 0x04
        assert (event.source_addr, event.destination_addr) == ("380501234567", "BAT")
        assert tlvs(event) == {TLV_RECEIPTED_MESSAGE_ID: b"1000001\x00", TLV_MESSAGE_STATE: b"\x02"}
        text = RECEIPT_TEXT.fullmatch(event.short_message.decode())
        assert text is not None, event.short_message
        assert text.group("id", "dlvrd", "stat", "err", "text") == (
            "1000001",
            "001",
            "DELIVRD",
            "000",
            "hello world",
        )

    stats = await wait_stats(smsc34, "receiptsAcked", 1)
    assert (stats["submits"], stats["accepted"], stats["receiptsSent"]) == (1, 1, 1)
    assert stats["byDestination"] == {"380501234567": 1}
    [message] = (await control(smsc34, "GET", "/stats?messages=1"))["messages"]
    assert message["messageId"] == "1000001" and message["status"] == "accepted"
    assert message["shortMessage"] == b"hello world".hex()


async def test_0002_is_throttled_twice_then_accepted(smsc34: Peer) -> None:
    async with session(smsc34) as smsc:
        # smpp34's client returns a refused submit_sm_resp; it does not raise.
        for _ in range(2):
            refused = await smsc.submit_sm("+380500000002", b"x", source_addr="BAT")
            assert refused.command_status == smpp34.ESME_RTHROTTLED
            assert refused.message_id is None
        resp = await smsc.submit_sm("+380500000002", b"x", source_addr="BAT")
        assert resp.is_success
        assert tlvs(await receipt(smsc))[TLV_MESSAGE_STATE] == b"\x02"

    stats = await control(smsc34, "GET", "/stats")
    assert (stats["submits"], stats["rejected"], stats["accepted"]) == (3, 2, 1)


async def test_0003_is_rejected_invdstadr_without_a_receipt(smsc34: Peer) -> None:
    async with session(smsc34) as smsc:
        refused = await smsc.submit_sm("380500000003", b"x", source_addr="BAT")
        assert refused.command_status == smpp34.ESME_RINVDSTADR
        accepted = await smsc.submit_sm("380501234567", b"x", source_addr="BAT")
        # The first receipt to arrive is the accepted message's: 0003 got none.
        event = await receipt(smsc)
        assert tlvs(event)[TLV_RECEIPTED_MESSAGE_ID] == f"{accepted.message_id}\x00".encode()


async def test_receipt_states_follow_the_destination(smsc34: Peer) -> None:
    expected = {
        "380500000001": [b"\x05"],  # UNDELIV
        "380500000004": [b"\x08"],  # REJECTD
        "380500000005": [],  # no receipt
        "380500000007": [b"\x01", b"\x02"],  # ENROUTE, then DELIVRD
        "380500000009": [b"\x03"],  # EXPIRED
    }
    async with session(smsc34) as smsc:
        ids = {}
        for destination in expected:
            resp = await smsc.submit_sm(destination, b"x", source_addr="BAT")
            ids[destination] = resp.message_id
        seen: dict[str, list[bytes]] = {destination: [] for destination in expected}
        for _ in range(sum(len(states) for states in expected.values())):
            event = await receipt(smsc)
            seen[event.source_addr].append(tlvs(event)[TLV_MESSAGE_STATE])
            receipted = tlvs(event)[TLV_RECEIPTED_MESSAGE_ID]
            assert receipted == f"{ids[event.source_addr]}\x00".encode()
    assert seen == expected
    stats = await wait_stats(smsc34, "receiptsAcked", 5)
    assert stats["receiptsSent"] == 5


async def test_text_only_receipts_with_seconds(start: StartPeer) -> None:
    peer = start("smsc34.py", "--receipt-format", "text", "--date-digits", "12")
    async with session(peer) as smsc:
        await smsc.submit_sm("380500000001", b"\x00binary", source_addr="BAT")
        event = await receipt(smsc)
    assert event.tlvs == []
    assert re.fullmatch(
        rb"id:1000001 sub:001 dlvrd:000 submit date:\d{12} done date:\d{12} "
        rb"stat:UNDELIV err:001 text:",  # the message was not printable: no text
        event.short_message,
    ), event.short_message


async def test_0006_receipt_comes_before_the_submit_sm_resp(smsc34: Peer) -> None:
    async with raw(smsc34) as esme:
        esme.submit("380500000006", b"early")
        first = await esme.read()
        assert first.command_id == DELIVER_SM
        # While the receipt is unacknowledged, the submit stays unanswered.
        with pytest.raises(TimeoutError):
            await esme.read(timeout=0.3)
        esme.answer(first)
        resp = await esme.read()
        assert resp.command_id == SUBMIT_SM | RESP and resp.status == 0
        deliver_sm = smpp34.decode(first.wire())
        assert isinstance(deliver_sm, smpp34.DeliverSm) and deliver_sm.esm_class == 0x04
        receipted = {tlv.tag: tlv.value for tlv in deliver_sm.tlvs}[TLV_RECEIPTED_MESSAGE_ID]
        assert receipted == resp.message_id().encode() + b"\x00"


async def test_0008_is_held_until_a_drop_and_never_answered(smsc34: Peer) -> None:
    async with raw(smsc34) as esme:
        esme.submit("380500000008", b"held")
        with pytest.raises(TimeoutError):
            await esme.read(timeout=0.3)
        assert await control(smsc34, "POST", "/drop") == {"dropped": 1}
        with pytest.raises(asyncio.IncompleteReadError):  # closed, no submit_sm_resp
            await esme.read()
    stats = await control(smsc34, "GET", "/stats")
    assert (stats["held"], stats["accepted"], stats["rejected"], stats["drops"]) == (1, 0, 0, 1)


async def test_drop_closes_the_connection_and_a_new_bind_works(smsc34: Peer) -> None:
    async with session(smsc34) as smsc:
        assert await control(smsc34, "POST", "/drop") == {"dropped": 1}
        assert isinstance(await asyncio.wait_for(smsc.next(), STEP), smpp34.Disconnected)

    async with session(smsc34) as smsc:
        resp = await smsc.submit_sm("380501234567", b"again", source_addr="BAT")
        assert resp.is_success
        await receipt(smsc)

    stats = await wait_stats(smsc34, "unbinds", 2)
    assert (stats["binds"], stats["unbinds"], stats["drops"]) == (2, 2, 1)


async def test_a_receipt_due_after_a_drop_comes_on_the_next_session(start: StartPeer) -> None:
    peer = start("smsc34.py", "--receipt-delay", "0.3")
    async with session(peer) as smsc:
        resp = await smsc.submit_sm("380501234567", b"x", source_addr="BAT")
        await control(peer, "POST", "/drop")
        assert isinstance(await asyncio.wait_for(smsc.next(), STEP), smpp34.Disconnected)
    await wait_stats(peer, "receiptsRequeued", 1)

    async with session(peer) as smsc:
        event = await receipt(smsc)
        assert tlvs(event)[TLV_RECEIPTED_MESSAGE_ID] == f"{resp.message_id}\x00".encode()
    stats = await wait_stats(peer, "receiptsAcked", 1)
    assert (stats["receiptsRequeued"], stats["receiptsPending"]) == (1, 0)


async def test_hex_ids_and_padded_tlv_only_receipts(start: StartPeer) -> None:
    peer = start(
        "smsc34.py", "--id-format", "hex", "--receipt-id-format", "decimal",
        "--id-zero-pad", "10", "--receipt-format", "tlv",
    )  # fmt: skip
    async with session(peer) as smsc:
        resp = await smsc.submit_sm("380501234567", b"x", source_addr="BAT")
        assert resp.message_id == format(1000001, "x")
        event = await receipt(smsc)
        assert event.short_message == b""
        assert tlvs(event)[TLV_RECEIPTED_MESSAGE_ID] == b"0001000001\x00"


# ── smsc_twisted (smpp.twisted3's server) ───────────────────────────────────


async def test_twisted_refuses_a_wrong_password(twisted: Peer) -> None:
    esme = await RawEsme.connect(twisted.port)
    try:
        resp = await esme.bind("bat", "wrong")
    finally:
        await esme.close()
    assert resp.status == ESME_RINVPASWD
    stats = await control(twisted, "GET", "/stats")
    assert (stats["binds"], stats["bindFailures"]) == (0, 1)


async def test_twisted_binds_accepts_and_sends_a_receipt(twisted: Peer) -> None:
    async with session(twisted) as smsc:
        resp = await smsc.submit_sm("380501234567", b"hello", source_addr="BAT")
        assert resp.message_id == "1000001"
        event = await receipt(smsc)
        assert event.esm_class == 0x04
        assert tlvs(event) == {TLV_RECEIPTED_MESSAGE_ID: b"1000001\x00", TLV_MESSAGE_STATE: b"\x02"}
        text = RECEIPT_TEXT.fullmatch(event.short_message.decode())
        assert text is not None and text.group("stat", "text") == ("DELIVRD", "hello")

        await smsc.submit_sm("380500000001", b"hello", source_addr="BAT")
        assert tlvs(await receipt(smsc))[TLV_MESSAGE_STATE] == b"\x05"  # UNDELIV

    stats = await wait_stats(twisted, "unbindResps", 1)
    assert (stats["binds"], stats["submits"], stats["receiptsAcked"]) == (1, 2, 2)
    assert stats["unbinds"] == 1


async def test_twisted_answers_unbind_with_unbind_resp(twisted: Peer) -> None:
    async with raw(twisted) as esme:
        sequence = esme.send(UNBIND)
        resp = await esme.read()
        assert (resp.command_id, resp.status, resp.sequence) == (UNBIND | RESP, 0, sequence)
        assert await esme.reader.read() == b""  # and closes the connection
    stats = await control(twisted, "GET", "/stats")
    assert (stats["unbinds"], stats["unbindResps"]) == (1, 1)


async def test_twisted_sends_a_data_sm_receipt_for_0010(twisted: Peer) -> None:
    async with raw(twisted) as esme:
        esme.submit("380500000010", b"hello")
        resp = await esme.read()
        assert resp.command_id == SUBMIT_SM | RESP
        data_sm = await esme.read()
        assert data_sm.command_id == DATA_SM
        assert data_sm.data_sm_tlvs() == {
            TLV_RECEIPTED_MESSAGE_ID: resp.message_id().encode() + b"\x00",
            TLV_MESSAGE_STATE: b"\x02",
        }
        esme.answer(data_sm)
    await wait_stats(twisted, "receiptsAcked", 1)
